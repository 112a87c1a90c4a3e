//! Simple Paged Results (RFC 2696, OID 1.2.840.113556.1.4.319) and the other request
//! controls the reader sends, encoded by hand so the BER is unit-tested and a malformed
//! response control is an error instead of a panic.

use super::LdapError;
use super::connect::Session;
use super::entry::RawEntry;
use ldap3::Scope;
use ldap3::asn1::{PL, parse_tag};
use ldap3::controls::RawControl;

pub(super) const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
/// LDAP_SERVER_SHOW_DELETED_OID: makes tombstones visible.
pub(super) const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

fn ber_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn ber_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    ber_len(out, content.len());
    out.extend_from_slice(content);
}

/// Minimal two's-complement encoding of a non-negative integer.
fn ber_uint(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    let mut out = bytes[skip..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

/// `realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }`.
pub(super) fn encode_paged(size: u32, cookie: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(cookie.len() + 8);
    ber_tlv(&mut inner, 0x02, &ber_uint(size));
    ber_tlv(&mut inner, 0x04, cookie);
    let mut out = Vec::with_capacity(inner.len() + 4);
    ber_tlv(&mut out, 0x30, &inner);
    out
}

/// Decodes the server's paged-results response value into (size estimate, cookie).
pub(super) fn decode_paged(value: &[u8]) -> Result<(u64, Vec<u8>), String> {
    let (_, tag) = parse_tag(value).map_err(|_| "paged-results value is not BER".to_string())?;
    let PL::C(parts) = tag.payload else {
        return Err("paged-results value is not a sequence".into());
    };
    let mut parts = parts.into_iter();
    let size = match parts.next().map(|t| t.payload) {
        Some(PL::P(b)) if b.len() <= 8 => b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)),
        _ => return Err("paged-results value without a size".into()),
    };
    let cookie = match parts.next().map(|t| t.payload) {
        Some(PL::P(b)) => b,
        _ => return Err("paged-results value without a cookie".into()),
    };
    Ok((size, cookie))
}

pub(super) fn paged_control(size: u32, cookie: &[u8]) -> RawControl {
    RawControl {
        ctype: PAGED_RESULTS_OID.to_string(),
        // Critical: a server that cannot page must fail, not return a truncated set.
        crit: true,
        val: Some(encode_paged(size, cookie)),
    }
}

pub(super) fn show_deleted_control() -> RawControl {
    RawControl {
        ctype: SHOW_DELETED_OID.to_string(),
        crit: true,
        val: None,
    }
}

/// A subtree search walked page by page. Between pages the caller may run other
/// operations on the same session (ranged follow-ups).
pub(super) struct PagedSearch {
    pub base: String,
    pub filter: String,
    pub attrs: Vec<String>,
    pub extra_controls: Vec<RawControl>,
    pub page_size: u32,
    pub during: String,
    cookie: Vec<u8>,
    done: bool,
}

impl PagedSearch {
    pub(super) fn new(
        during: impl Into<String>,
        base: impl Into<String>,
        filter: impl Into<String>,
        attrs: Vec<String>,
        page_size: u32,
    ) -> Self {
        Self {
            base: base.into(),
            filter: filter.into(),
            attrs,
            extra_controls: Vec::new(),
            page_size: page_size.max(1),
            during: during.into(),
            cookie: Vec::new(),
            done: false,
        }
    }

    /// The next page, or `None` after the last one.
    pub(super) async fn next_page(
        &mut self,
        s: &mut Session,
    ) -> Result<Option<Vec<RawEntry>>, LdapError> {
        if self.done {
            return Ok(None);
        }
        let mut controls = vec![paged_control(self.page_size, &self.cookie)];
        controls.extend(self.extra_controls.iter().cloned());
        let (entries, ctrls) = s
            .search(
                &self.during,
                &self.base,
                Scope::Subtree,
                &self.filter,
                &self.attrs,
                controls,
            )
            .await?;
        let resp = ctrls.iter().find(|c| c.ctype == PAGED_RESULTS_OID);
        self.cookie = match resp {
            // A server that ignored a critical control would have failed the search;
            // without a response control the result set is complete.
            None => Vec::new(),
            Some(c) => {
                decode_paged(c.val.as_deref().unwrap_or_default())
                    .map_err(|reason| LdapError::Protocol {
                        server: s.server().to_string(),
                        during: self.during.clone(),
                        reason,
                    })?
                    .1
            }
        };
        self.done = self.cookie.is_empty();
        Ok(Some(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_rfc() {
        // SEQUENCE { INTEGER 1000, OCTET STRING "" }
        assert_eq!(
            encode_paged(1000, b""),
            vec![0x30, 0x06, 0x02, 0x02, 0x03, 0xe8, 0x04, 0x00]
        );
        // 128 needs a leading zero byte to stay positive.
        assert_eq!(
            encode_paged(128, b"ab"),
            vec![0x30, 0x08, 0x02, 0x02, 0x00, 0x80, 0x04, 0x02, b'a', b'b']
        );
        assert_eq!(
            encode_paged(0, b""),
            vec![0x30, 0x05, 0x02, 0x01, 0x00, 0x04, 0x00]
        );
    }

    #[test]
    fn long_cookies_use_long_form_lengths() {
        let cookie = vec![7u8; 300];
        let enc = encode_paged(5, &cookie);
        assert_eq!(&enc[..4], &[0x30, 0x82, 0x01, 0x33]);
        let (size, back) = decode_paged(&enc).unwrap();
        assert_eq!((size, back), (5, cookie));
    }

    #[test]
    fn decodes_round_trip_and_rejects_garbage() {
        let (size, cookie) = decode_paged(&encode_paged(1000, b"\x01\x02")).unwrap();
        assert_eq!((size, cookie.as_slice()), (1000, &[1u8, 2][..]));
        assert!(decode_paged(b"").is_err());
        assert!(decode_paged(&[0x30, 0x03, 0x02, 0x01, 0x05]).is_err());
        assert!(decode_paged(&[0x04, 0x00]).is_err());
    }

    #[test]
    fn controls_are_critical() {
        assert!(paged_control(10, b"").crit);
        let sd = show_deleted_control();
        assert!(sd.crit && sd.val.is_none() && sd.ctype == SHOW_DELETED_OID);
    }
}
