//! LDAP search filters (RFC 4515) the reader sends. Built here, in one place, so that
//! values from outside (DNs of groups, USNs) are always escaped.

/// OID of LDAP_MATCHING_RULE_IN_CHAIN: transitive membership evaluated by the DC.
pub(super) const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// The object classes a read returns: users (and computers, which the model tells
/// apart), groups, and the containers scoping works with.
pub(super) const OBJECTS: &str = "(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container))";

/// Escapes a value for use inside a filter: `*`, `(`, `)`, `\` and NUL become `\2a`,
/// `\28`, `\29`, `\5c`, `\00`. Non-ASCII stays UTF-8, which RFC 4515 allows.
pub fn escape_filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Objects of the read's classes changed after `usn` (`uSNChanged >= usn + 1`).
pub(super) fn changed_since(usn: u64) -> String {
    format!("(&{OBJECTS}(uSNChanged>={}))", usn.saturating_add(1))
}

/// Tombstones (seen only with the show-deleted control) changed after `usn`.
pub(super) fn deleted_since(usn: u64) -> String {
    format!("(&(isDeleted=TRUE)(uSNChanged>={}))", usn.saturating_add(1))
}

/// Every object that is a direct or nested member of `group_dn`.
pub(super) fn member_in_chain(group_dn: &str) -> String {
    format!("(memberOf:{IN_CHAIN}:={})", escape_filter_value(group_dn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(
            escape_filter_value("a*b(c)d\\e\0"),
            "a\\2ab\\28c\\29d\\5ce\\00"
        );
        assert_eq!(escape_filter_value("Zoë Müller"), "Zoë Müller");
    }

    #[test]
    fn builds_filters() {
        assert_eq!(
            member_in_chain(r"CN=grp \(x\),OU=G,DC=c"),
            r"(memberOf:1.2.840.113556.1.4.1941:=CN=grp \5c\28x\5c\29,OU=G,DC=c)"
        );
        assert!(changed_since(41).ends_with("(uSNChanged>=42))"));
        assert_eq!(
            deleted_since(u64::MAX),
            format!("(&(isDeleted=TRUE)(uSNChanged>={}))", u64::MAX)
        );
        assert!(OBJECTS.starts_with("(|") && OBJECTS.ends_with("))"));
    }
}
