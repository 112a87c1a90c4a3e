//! The Graph properties a mapping may target, with the length limits Microsoft documents
//! for them, so a policy that maps into a read-only or unknown property fails validation,
//! and a value over a limit becomes a per-object diagnostic instead of a failed write
//! (`graph_rules` checks the values; `docs/graph-rules.md` gives each limit's source).

/// How a mapped string becomes a Graph value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    Text,
    /// Graph takes a list; the template's value becomes a one-item list.
    TextList,
    Bool,
}

/// One writable property.
#[derive(Clone, Copy, Debug)]
pub struct GraphProp {
    pub name: &'static str,
    pub kind: PropKind,
    pub max_len: Option<usize>,
}

const fn text(name: &'static str, max: usize) -> GraphProp {
    GraphProp {
        name,
        kind: PropKind::Text,
        max_len: Some(max),
    }
}

/// A text property with no documented length limit (a format rule may still apply:
/// see `graph_rules`).
const fn free_text(name: &'static str) -> GraphProp {
    GraphProp {
        name,
        kind: PropKind::Text,
        max_len: None,
    }
}

/// User properties ad2entra can write (Graph v1.0 `user` resource, cloud-managed).
pub const USER_PROPS: &[GraphProp] = &[
    GraphProp {
        name: "accountEnabled",
        kind: PropKind::Bool,
        max_len: None,
    },
    GraphProp {
        name: "businessPhones",
        kind: PropKind::TextList,
        max_len: None,
    },
    text("city", 128),
    text("companyName", 64),
    text("country", 128),
    text("department", 64),
    text("displayName", 256),
    text("employeeId", 16),
    free_text("employeeType"),
    free_text("faxNumber"),
    text("givenName", 64),
    text("jobTitle", 128),
    free_text("mail"),
    text("mailNickname", 64),
    text("mobilePhone", 64),
    text("officeLocation", 128),
    text("postalCode", 40),
    free_text("preferredLanguage"),
    text("state", 128),
    text("streetAddress", 1024),
    text("surname", 64),
    free_text("usageLocation"),
    text("userPrincipalName", 113),
    GraphProp {
        name: "otherMails",
        kind: PropKind::TextList,
        max_len: Some(250),
    },
];

/// Group properties ad2entra can write (security groups).
pub const GROUP_PROPS: &[GraphProp] = &[
    text("displayName", 256),
    text("description", 1024),
    text("mailNickname", 64),
];

/// Properties Graph refuses to write, with what to do instead.
pub const READ_ONLY: &[(&str, &str)] = &[
    (
        "proxyAddresses",
        "Graph cannot write proxyAddresses: map the primary SMTP address to `mail`; secondary addresses cannot be synced through Graph",
    ),
    ("onPremisesSyncEnabled", "set by Entra Connect only"),
    ("onPremisesDistinguishedName", "read-only in Graph"),
    ("onPremisesSamAccountName", "read-only in Graph"),
    ("onPremisesSecurityIdentifier", "read-only in Graph"),
    ("onPremisesUserPrincipalName", "read-only in Graph"),
    ("onPremisesDomainName", "read-only in Graph"),
    (
        "onPremisesImmutableId",
        "ad2entra sets it to the source anchor itself",
    ),
    ("id", "assigned by Graph"),
    (
        "mailEnabled",
        "ad2entra creates security groups only (mailEnabled: false)",
    ),
    (
        "securityEnabled",
        "ad2entra creates security groups only (securityEnabled: true)",
    ),
];

pub fn user_prop(name: &str) -> Option<&'static GraphProp> {
    USER_PROPS.iter().find(|p| p.name == name)
}

pub fn group_prop(name: &str) -> Option<&'static GraphProp> {
    GROUP_PROPS.iter().find(|p| p.name == name)
}

pub fn read_only_hint(name: &str) -> Option<&'static str> {
    READ_ONLY
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, h)| *h)
}
