//! RFC 4515 LDAP filters, parsed at load time and evaluated locally against objects read
//! from LDIF (a live read sends the same filter to the DC). Includes AD's bitwise
//! matching rules, which administrators use for `userAccountControl`.

use crate::model::{ObjectKind, SourceObject};

/// AD's bitwise AND matching rule.
pub const RULE_BIT_AND: &str = "1.2.840.113556.1.4.803";
/// AD's bitwise OR matching rule.
pub const RULE_BIT_OR: &str = "1.2.840.113556.1.4.804";
/// LDAP_MATCHING_RULE_IN_CHAIN (transitive membership).
pub const RULE_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equal(String, String),
    Substring {
        attr: String,
        initial: Option<String>,
        any: Vec<String>,
        fin: Option<String>,
    },
    Present(String),
    GreaterOrEqual(String, String),
    LessOrEqual(String, String),
    Approx(String, String),
    Extensible {
        attr: String,
        rule: String,
        value: String,
    },
}

/// A syntax error with the 0-based character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct FilterError {
    pub message: String,
    pub offset: usize,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    _src: &'a str,
}

impl Filter {
    /// Parses a filter; a bare `attr=value` without parentheses is accepted as AD tools do.
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        let trimmed = src.trim();
        let text = if trimmed.starts_with('(') {
            trimmed.to_string()
        } else {
            format!("({trimmed})")
        };
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            _src: src,
        };
        let f = p.filter()?;
        p.skip_ws();
        if p.pos != p.chars.len() {
            return Err(p.err("unexpected text after the filter"));
        }
        Ok(f)
    }

    /// Attribute names the filter tests.
    pub fn attributes(&self, out: &mut std::collections::BTreeSet<String>) {
        match self {
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.attributes(out)),
            Filter::Not(f) => f.attributes(out),
            Filter::Equal(a, _)
            | Filter::Present(a)
            | Filter::GreaterOrEqual(a, _)
            | Filter::LessOrEqual(a, _)
            | Filter::Approx(a, _)
            | Filter::Substring { attr: a, .. }
            | Filter::Extensible { attr: a, .. } => {
                out.insert(a.clone());
            }
        }
    }

    /// Evaluates against an object. `in_chain(attr, object, dn)` answers the
    /// LDAP_MATCHING_RULE_IN_CHAIN rule (transitive memberOf/member).
    pub fn matches(
        &self,
        obj: &SourceObject,
        in_chain: &dyn Fn(&str, &SourceObject, &str) -> bool,
    ) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(obj, in_chain)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(obj, in_chain)),
            Filter::Not(f) => !f.matches(obj, in_chain),
            Filter::Present(a) => {
                a.eq_ignore_ascii_case("objectClass") || !values(obj, a).is_empty()
            }
            Filter::Equal(a, v) | Filter::Approx(a, v) => {
                values(obj, a).iter().any(|x| x.eq_ignore_ascii_case(v))
            }
            Filter::Substring {
                attr,
                initial,
                any,
                fin,
            } => values(obj, attr)
                .iter()
                .any(|x| substring_match(&x.to_lowercase(), initial, any, fin)),
            Filter::GreaterOrEqual(a, v) => values(obj, a)
                .iter()
                .any(|x| compare(x, v) != std::cmp::Ordering::Less),
            Filter::LessOrEqual(a, v) => values(obj, a)
                .iter()
                .any(|x| compare(x, v) != std::cmp::Ordering::Greater),
            Filter::Extensible { attr, rule, value } => match rule.as_str() {
                RULE_BIT_AND | RULE_BIT_OR => {
                    let Ok(mask) = value.trim().parse::<i64>() else {
                        return false;
                    };
                    values(obj, attr).iter().any(|x| {
                        x.trim().parse::<i64>().is_ok_and(|n| {
                            if rule == RULE_BIT_AND {
                                n & mask == mask
                            } else {
                                n & mask != 0
                            }
                        })
                    })
                }
                RULE_IN_CHAIN => in_chain(attr, obj, value),
                _ => false,
            },
        }
    }
}

/// String values of an attribute, with AD's `objectCategory` short names understood.
fn values(obj: &SourceObject, attr: &str) -> Vec<String> {
    let vals: Vec<String> = obj.texts(attr).map(str::to_string).collect();
    if attr.eq_ignore_ascii_case("objectCategory") {
        if vals.is_empty() {
            let implied = match obj.kind {
                ObjectKind::User => "person",
                ObjectKind::Group => "group",
                ObjectKind::Computer => "computer",
                ObjectKind::OrganizationalUnit => "organizationalUnit",
                ObjectKind::Container => "container",
                ObjectKind::Other => return vals,
            };
            return vec![implied.to_string()];
        }
        // CN=Person,CN=Schema,... also matches the short name `person`.
        let mut out = vals.clone();
        for v in &vals {
            if let Ok(dn) = crate::model::Dn::parse(v)
                && let Some(leaf) = dn.leaf_value()
            {
                out.push(leaf.to_string());
            }
        }
        return out;
    }
    vals
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

fn substring_match(
    value: &str,
    initial: &Option<String>,
    any: &[String],
    fin: &Option<String>,
) -> bool {
    let mut rest = value;
    if let Some(i) = initial {
        let i = i.to_lowercase();
        match rest.strip_prefix(i.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for a in any {
        let a = a.to_lowercase();
        match rest.find(a.as_str()) {
            Some(idx) => rest = &rest[idx + a.len()..],
            None => return false,
        }
    }
    match fin {
        Some(f) => rest.ends_with(f.to_lowercase().as_str()),
        None => true,
    }
}

impl Parser<'_> {
    fn err(&self, message: &str) -> FilterError {
        FilterError {
            message: message.to_string(),
            offset: self.pos,
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), FilterError> {
        self.skip_ws();
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{c}'")))
        }
    }

    fn filter(&mut self) -> Result<Filter, FilterError> {
        self.expect('(')?;
        self.skip_ws();
        let f = match self.chars.get(self.pos) {
            Some('&') => {
                self.pos += 1;
                Filter::And(self.list()?)
            }
            Some('|') => {
                self.pos += 1;
                Filter::Or(self.list()?)
            }
            Some('!') => {
                self.pos += 1;
                Filter::Not(Box::new(self.filter()?))
            }
            Some(_) => self.item()?,
            None => return Err(self.err("unexpected end of filter")),
        };
        self.expect(')')?;
        Ok(f)
    }

    fn list(&mut self) -> Result<Vec<Filter>, FilterError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.chars.get(self.pos) {
                Some('(') => out.push(self.filter()?),
                Some(')') => break,
                _ => return Err(self.err("expected '(' or ')' in a filter list")),
            }
        }
        if out.is_empty() {
            return Err(self.err("empty filter list"));
        }
        Ok(out)
    }

    fn item(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        let mut lhs = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            if matches!(c, '=' | '~' | '<' | '>' | '(' | ')') {
                break;
            }
            lhs.push(c);
            self.pos += 1;
        }
        let lhs = lhs.trim().to_string();
        let op = match (self.chars.get(self.pos), self.chars.get(self.pos + 1)) {
            (Some('='), _) => {
                self.pos += 1;
                "="
            }
            (Some('~'), Some('=')) => {
                self.pos += 2;
                "~="
            }
            (Some('>'), Some('=')) => {
                self.pos += 2;
                ">="
            }
            (Some('<'), Some('=')) => {
                self.pos += 2;
                "<="
            }
            _ => return Err(self.err("expected '=', '~=', '>=' or '<='")),
        };
        if lhs.is_empty() {
            return Err(FilterError {
                message: "missing attribute name".into(),
                offset: start,
            });
        }
        let raw_start = self.pos;
        let mut raw = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            if c == ')' {
                break;
            }
            if c == '(' {
                return Err(self.err("unescaped '(' in a value (write \\28)"));
            }
            raw.push(c);
            self.pos += 1;
        }
        if lhs.contains(':') {
            // extensible: attr:rule:=value (dn attributes not supported)
            if op != "=" || !lhs.ends_with(':') {
                return Err(FilterError {
                    message: "extensible match must look like attr:RULE-OID:=value".into(),
                    offset: start,
                });
            }
            let parts: Vec<&str> = lhs.trim_end_matches(':').split(':').collect();
            let (attr, rule) = match parts.as_slice() {
                [a, r] if !a.is_empty() && !r.is_empty() => (a.to_string(), r.to_string()),
                _ => {
                    return Err(FilterError {
                        message: "extensible match must look like attr:RULE-OID:=value".into(),
                        offset: start,
                    });
                }
            };
            if ![RULE_BIT_AND, RULE_BIT_OR, RULE_IN_CHAIN].contains(&rule.as_str()) {
                return Err(FilterError {
                    message: format!("unsupported matching rule {rule}"),
                    offset: start,
                });
            }
            let value = unescape(&raw, raw_start)?;
            return Ok(Filter::Extensible { attr, rule, value });
        }
        if !lhs
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';')
        {
            return Err(FilterError {
                message: format!("invalid attribute name {lhs:?}"),
                offset: start,
            });
        }
        match op {
            "=" if raw == "*" => Ok(Filter::Present(lhs)),
            "=" if raw.contains('*') => {
                let pieces: Vec<&str> = raw.split('*').collect();
                let n = pieces.len();
                let un = |s: &str| -> Result<Option<String>, FilterError> {
                    if s.is_empty() {
                        Ok(None)
                    } else {
                        unescape(s, raw_start).map(Some)
                    }
                };
                let initial = un(pieces[0])?;
                let fin = un(pieces[n - 1])?;
                let mut any = Vec::new();
                for p in &pieces[1..n - 1] {
                    if let Some(v) = un(p)? {
                        any.push(v);
                    }
                }
                Ok(Filter::Substring {
                    attr: lhs,
                    initial,
                    any,
                    fin,
                })
            }
            "=" => Ok(Filter::Equal(lhs, unescape(&raw, raw_start)?)),
            "~=" => Ok(Filter::Approx(lhs, unescape(&raw, raw_start)?)),
            ">=" => Ok(Filter::GreaterOrEqual(lhs, unescape(&raw, raw_start)?)),
            _ => Ok(Filter::LessOrEqual(lhs, unescape(&raw, raw_start)?)),
        }
    }
}

/// Decodes `\XX` escapes (RFC 4515 §3).
fn unescape(s: &str, offset: usize) -> Result<String, FilterError> {
    let mut bytes = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = s.get(i + 1..i + 3).ok_or(FilterError {
                message: "incomplete escape (\\XX expected)".into(),
                offset: offset + i,
            })?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| FilterError {
                message: format!("invalid escape \\{hex}"),
                offset: offset + i,
            })?;
            bytes.push(v);
            i += 3;
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| FilterError {
        message: "escaped value is not UTF-8".into(),
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dn, ObjectGuid};

    fn obj(attrs: &[(&str, &str)]) -> SourceObject {
        let mut v: Vec<(String, Vec<Vec<u8>>)> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.as_bytes().to_vec()]))
            .collect();
        v.push(("objectGUID".into(), vec![ObjectGuid([7; 16]).0.to_vec()]));
        SourceObject::from_attrs(Dn::parse("CN=x,DC=corp").unwrap(), v).unwrap()
    }

    fn m(f: &str, o: &SourceObject) -> bool {
        Filter::parse(f).unwrap().matches(o, &|_, _, _| false)
    }

    #[test]
    fn evaluates_common_filters() {
        let u = obj(&[
            ("objectClass", "user"),
            ("sAMAccountName", "svc_backup"),
            ("userAccountControl", "514"),
            ("department", "Sales"),
        ]);
        assert!(m("(&(objectCategory=person)(objectClass=user))", &u));
        assert!(m("(sAMAccountName=svc_*)", &u));
        assert!(m("(sAMAccountName=*back*)", &u));
        assert!(!m("(sAMAccountName=*x*)", &u));
        assert!(m("(userAccountControl:1.2.840.113556.1.4.803:=2)", &u));
        assert!(!m("(!(userAccountControl:1.2.840.113556.1.4.803:=2))", &u));
        assert!(m("(userAccountControl:1.2.840.113556.1.4.804:=3)", &u));
        assert!(m("(|(department=nope)(department=sales))", &u));
        assert!(m("(department=*)", &u));
        assert!(!m("(title=*)", &u));
        assert!(m("(userAccountControl>=500)", &u));
        assert!(!m("(userAccountControl<=500)", &u));
        assert!(m("department=Sales", &u));
    }

    #[test]
    fn escapes() {
        let u = obj(&[("cn", "a*b(c)")]);
        assert!(m(r"(cn=a\2ab\28c\29)", &u));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let e = Filter::parse("(&(cn=a)(sn=b)").unwrap_err();
        assert!(e.message.contains("expected"));
        assert!(Filter::parse("(cn=a(b)").is_err());
        assert!(Filter::parse("(=a)").is_err());
        assert!(Filter::parse("(x:1.2.3:=4)").is_err());
        assert!(Filter::parse("(cn=\\zz)").is_err());
    }
}
