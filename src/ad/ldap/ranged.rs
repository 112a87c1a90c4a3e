//! Ranged retrieval of large multi-valued attributes (AD's MaxValRange).
//!
//! AD returns at most MaxValRange values (1500 by default) of an attribute such as
//! `member`, named `member;range=0-1499`; the rest must be fetched with base searches
//! for `member;range=1500-*` until a window ends in `*`. Missing this silently truncates
//! big groups, which the planner would turn into membership removals.

use super::LdapError;
use super::connect::Session;
use super::entry::RawEntry;

/// An attribute description carrying a range option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Range {
    /// The description without the range option (`member`, or `member;binary`).
    pub base: String,
    pub low: u64,
    /// `None` for `*`: this window is the last one.
    pub high: Option<u64>,
}

/// Parses `member;range=0-1499` / `member;Range=1500-*`. `None` when there is no range
/// option; an error when there is one but it is malformed.
pub(super) fn parse_range(desc: &str) -> Result<Option<Range>, String> {
    let mut base = Vec::new();
    let mut range = None;
    for (i, part) in desc.split(';').enumerate() {
        let lower = part.to_ascii_lowercase();
        match lower.strip_prefix("range=") {
            Some(spec) if i > 0 => {
                let (lo, hi) = spec
                    .split_once('-')
                    .ok_or_else(|| format!("malformed range option in {desc:?}"))?;
                let low = lo
                    .parse::<u64>()
                    .map_err(|_| format!("malformed range start in {desc:?}"))?;
                let high = if hi == "*" {
                    None
                } else {
                    let h = hi
                        .parse::<u64>()
                        .map_err(|_| format!("malformed range end in {desc:?}"))?;
                    if h < low {
                        return Err(format!("range end before start in {desc:?}"));
                    }
                    Some(h)
                };
                range = Some((low, high));
            }
            _ => base.push(part),
        }
    }
    Ok(range.map(|(low, high)| Range {
        base: base.join(";"),
        low,
        high,
    }))
}

/// The description that asks for the window `[low, low + step)` (or `low-*` when `step`
/// is `None`).
pub(super) fn window(base: &str, low: u64, step: Option<u64>) -> String {
    match step {
        Some(step) => format!("{base};range={low}-{}", low + step.max(1) - 1),
        None => format!("{base};range={low}-*"),
    }
}

/// Replaces every ranged attribute of `entry` by its complete value list, fetching the
/// remaining windows from the server. Follow-up windows have the size of the first one
/// the server chose, which is how AD answers anyway and lets tests force several steps.
pub(super) async fn complete_ranges(
    s: &mut Session,
    entry: &mut RawEntry,
) -> Result<(), LdapError> {
    let server = s.server().to_string();
    let dn = entry.dn.clone();
    let protocol = |reason: String| LdapError::Protocol {
        server: server.clone(),
        during: format!("reading ranged values of {dn}"),
        reason,
    };
    let mut i = 0;
    while i < entry.attrs.len() {
        let Some(first) = parse_range(&entry.attrs[i].0).map_err(protocol)? else {
            i += 1;
            continue;
        };
        let mut values = std::mem::take(&mut entry.attrs[i].1);
        let mut current = first.clone();
        let mut rounds = 0u32;
        while let Some(high) = current.high {
            rounds += 1;
            if rounds > 100_000 {
                return Err(protocol(format!(
                    "ranged retrieval of {} does not end",
                    first.base
                )));
            }
            let step = high - current.low + 1;
            let next = high + 1;
            let during = format!("reading {} of {} from value {next}", first.base, entry.dn);
            let want = vec![window(&first.base, next, Some(step))];
            let Some(more) = s.base(&during, &entry.dn, &want, Vec::new()).await? else {
                return Err(LdapError::Protocol {
                    server: s.server().to_string(),
                    during,
                    reason: "the object disappeared during ranged retrieval".into(),
                });
            };
            let mut found = None;
            for (name, vals) in more.attrs {
                if let Some(r) = parse_range(&name).map_err(protocol)?
                    && r.base.eq_ignore_ascii_case(&first.base)
                {
                    found = Some((r, vals));
                }
            }
            match found {
                // Past the last value Samba omits the attribute (AD answers `n-*`, empty).
                None => break,
                Some((r, vals)) => {
                    if r.low != next {
                        return Err(LdapError::Protocol {
                            server: s.server().to_string(),
                            during,
                            reason: format!(
                                "asked for values from {next}, got a window from {}",
                                r.low
                            ),
                        });
                    }
                    values.extend(vals);
                    current = r;
                }
            }
        }
        entry.attrs[i] = (first.base, values);
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("member").unwrap(), None);
        assert_eq!(
            parse_range("member;range=0-1499").unwrap(),
            Some(Range {
                base: "member".into(),
                low: 0,
                high: Some(1499)
            })
        );
        assert_eq!(
            parse_range("member;Range=1500-*").unwrap(),
            Some(Range {
                base: "member".into(),
                low: 1500,
                high: None
            })
        );
        assert_eq!(
            parse_range("member;binary;range=5-9").unwrap(),
            Some(Range {
                base: "member;binary".into(),
                low: 5,
                high: Some(9)
            })
        );
        assert!(parse_range("member;range=x-1").is_err());
        assert!(parse_range("member;range=5").is_err());
        assert!(parse_range("member;range=9-5").is_err());
        // "range=" as the attribute name itself is not an option
        assert_eq!(parse_range("range=1-2").unwrap(), None);
    }

    #[test]
    fn builds_windows() {
        assert_eq!(window("member", 1500, Some(1500)), "member;range=1500-2999");
        assert_eq!(window("member", 10, None), "member;range=10-*");
        assert_eq!(window("member", 3, Some(0)), "member;range=3-3");
    }
}
