//! Graph's documented rules for the user and group properties ad2entra writes, checked
//! when the desired state is computed: a value Graph would refuse becomes a per-object
//! diagnostic in the plan instead of a failed write at apply time (and the same failed
//! write again every cycle).
//!
//! Every rule, with the Microsoft page it comes from, is listed in `docs/graph-rules.md`;
//! where the documentation is silent the choice is marked there. The emulator enforces
//! the same rules (`emulator/src/rules.rs`), written separately from the documentation so
//! that a planner mistake shows up as a refused write in the tests.
//!
//! Pure: values in, violations out.

pub mod iso;
pub mod unique;

use crate::plan::ObjectType;
use crate::policy::graph_props;
use serde_json::Value;

/// A value longer than Graph allows (characters), or a collection with too many values.
pub const LENGTH: &str = "graph-rule-length";
/// `mail` or `otherMails` with a character outside ASCII ("can't contain accent characters").
pub const ACCENTED_MAIL: &str = "graph-rule-accented-mail";
/// `mail` or `otherMails` that is not `local@domain`.
pub const MAIL_FORMAT: &str = "graph-rule-mail-format";
/// `userPrincipalName` outside the username policy (characters, dots, one `@`).
pub const UPN: &str = "graph-rule-upn";
/// `mailNickname` with a character Graph refuses.
pub const MAIL_NICKNAME: &str = "graph-rule-mail-nickname";
/// `usageLocation` that is not an ISO 3166-1 alpha-2 code in upper case.
pub const USAGE_LOCATION: &str = "graph-rule-usage-location";
/// `preferredLanguage` that is not `ll-CC` (ISO 639-1 language, ISO 3166-1 region).
pub const PREFERRED_LANGUAGE: &str = "graph-rule-preferred-language";
/// A collection Graph takes only one value of (`businessPhones`) with more.
pub const SINGLE_VALUED: &str = "graph-rule-single-valued";
/// `mail` already used as the mail or a proxy address of another object in Entra.
pub const UNIQUE_ADDRESS: &str = "graph-rule-unique-address";
/// `userPrincipalName` already used by another object in Entra.
pub const UNIQUE_UPN: &str = "graph-rule-unique-upn";

/// Every rule code, for documentation checks.
pub const CODES: &[&str] = &[
    LENGTH,
    ACCENTED_MAIL,
    MAIL_FORMAT,
    UPN,
    MAIL_NICKNAME,
    USAGE_LOCATION,
    PREFERRED_LANGUAGE,
    SINGLE_VALUED,
    UNIQUE_ADDRESS,
    UNIQUE_UPN,
];

/// `otherMails`: "Can store up to 250 values, each with a limit of 250 characters."
pub const OTHER_MAILS_MAX_VALUES: usize = 250;
/// Username policy: at most 64 characters before the `@`.
pub const UPN_LOCAL_MAX: usize = 64;
/// Username policy: at most 48 characters after the `@`.
pub const UPN_DOMAIN_MAX: usize = 48;

/// One broken rule: which, on which property, the offending value, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Stable diagnostic code (one of [`CODES`]).
    pub code: &'static str,
    /// The Graph property.
    pub property: &'static str,
    /// What is wrong, naming the value.
    pub message: String,
    pub hint: String,
}

impl Violation {
    fn new(
        code: &'static str,
        property: &'static str,
        message: String,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            code,
            property,
            message,
            hint: hint.into(),
        }
    }
}

/// Characters the username policy allows in a UPN besides letters and digits.
const UPN_SYMBOLS: &str = "'.-_!#^~";

/// Characters the group resource forbids in `mailNickname`, besides space and anything
/// outside ASCII 0–127. The union of the two lists Microsoft publishes (the group
/// resource page: `@ () \ [] " ; : <> ,`; the metadata: `@ () / [] ' ; : <> ,`).
const NICKNAME_FORBIDDEN: &str = "@()\\/[]\"';:<>,";

/// Whether Graph accepts `c` in a `mailNickname` (users and groups alike).
pub fn mail_nickname_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && c != ' ' && !NICKNAME_FORBIDDEN.contains(c)
}

/// The documented maximum length of a property, in characters (per value for lists).
pub fn max_len(ty: ObjectType, property: &str) -> Option<usize> {
    let p = match ty {
        ObjectType::User => graph_props::user_prop(property),
        ObjectType::Group => graph_props::group_prop(property),
        // A domain's federation settings are checked when the policy loads.
        ObjectType::Domain => None,
    };
    p.and_then(|p| p.max_len)
}

/// The string values of a property: the string itself, or a list's strings (no
/// allocation: this runs for every property of every object).
fn strings(v: &Value) -> impl Iterator<Item = &str> + Clone {
    let (one, many) = match v {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Array(a) => (None, Some(a.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// Checks every property of one desired object against Graph's rules. Uniqueness
/// against other objects is [`unique`]'s job.
pub fn check_props<'a>(
    ty: ObjectType,
    props: impl IntoIterator<Item = (&'static str, &'a Value)>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, v) in props {
        check_value(ty, name, v, &mut out);
    }
    out
}

fn check_value(ty: ObjectType, name: &'static str, v: &Value, out: &mut Vec<Violation>) {
    let values = strings(v);
    if let Some(max) = max_len(ty, name)
        && let Some(longest) = values.clone().map(|s| s.chars().count()).max()
        && longest > max
    {
        out.push(Violation::new(
            LENGTH,
            name,
            format!("{longest} characters; Graph allows at most {max}"),
            format!(
                "shorten it in AD, or truncate in the mapping: {{{{ ... | truncate({max}, true, '') }}}}"
            ),
        ));
    }
    match (ty, name) {
        (ObjectType::User, "mail") => {
            for s in values {
                check_address(name, s, out);
            }
        }
        (ObjectType::User, "otherMails") => {
            let n = values.clone().count();
            if n > OTHER_MAILS_MAX_VALUES {
                out.push(Violation::new(
                    LENGTH,
                    name,
                    format!("{n} addresses; Graph stores at most {OTHER_MAILS_MAX_VALUES}"),
                    "map fewer addresses",
                ));
            }
            for s in values {
                check_address(name, s, out);
            }
        }
        (ObjectType::User, "userPrincipalName") => {
            for s in values {
                check_upn(s, out);
            }
        }
        (_, "mailNickname") => {
            for s in values {
                if let Some(bad) = s.chars().find(|c| !mail_nickname_char(*c)) {
                    out.push(Violation::new(
                        MAIL_NICKNAME,
                        name,
                        format!("`{s}` has {}, which Graph refuses in a mailNickname", describe(bad)),
                        "use the `mail_nickname` filter in the mapping; it folds accents and drops the characters Graph refuses",
                    ));
                }
            }
        }
        (ObjectType::User, "usageLocation") => {
            for s in values {
                if !iso::is_country(s) {
                    out.push(Violation::new(
                        USAGE_LOCATION,
                        name,
                        format!("`{s}` is not an ISO 3166-1 alpha-2 country code in upper case (US, DE, GB…)"),
                        "map AD's two-letter `c` attribute: `usageLocation: \"{{ c | upper }}\"` (not `co`, the country's name)",
                    ));
                }
            }
        }
        (ObjectType::User, "preferredLanguage") => {
            for s in values {
                if !is_language_tag(s) {
                    out.push(Violation::new(
                        PREFERRED_LANGUAGE,
                        name,
                        format!("`{s}` is not a language-REGION code such as en-US (ISO 639-1 in lower case, `-`, ISO 3166-1 in upper case)"),
                        "map a value such as `en-US`, e.g. from AD's `preferredLanguage`",
                    ));
                }
            }
        }
        (ObjectType::User, "businessPhones") if values.clone().count() > 1 => {
            let all: Vec<&str> = values.collect();
            out.push(Violation::new(
                SINGLE_VALUED,
                name,
                format!(
                    "{} numbers ({}); Graph's businessPhones takes only one",
                    all.len(),
                    all.join(", ")
                ),
                "map one number: `businessPhones: \"{{ telephoneNumber }}\"`; map others to mobilePhone",
            ));
        }
        _ => {}
    }
}

/// `ll-CC`: an ISO 639-1 language and an ISO 3166-1 region.
fn is_language_tag(s: &str) -> bool {
    s.split_once('-')
        .is_some_and(|(l, r)| iso::is_language(l) && iso::is_country(r))
}

/// Names a character for a message: `'é' (U+00E9)`.
fn describe(c: char) -> String {
    if c == ' ' {
        "a space".to_string()
    } else if c.is_control() || !c.is_ascii() {
        format!("'{c}' (U+{:04X})", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// `mail` and `otherMails`: ASCII only ("can't contain accent characters"), and an
/// address of the form `local@domain`.
fn check_address(property: &'static str, s: &str, out: &mut Vec<Violation>) {
    if let Some(bad) = s.chars().find(|c| !c.is_ascii()) {
        out.push(Violation::new(
            ACCENTED_MAIL,
            property,
            format!(
                "`{s}` has {}; Graph refuses accented and other non-ASCII characters in {property}",
                describe(bad)
            ),
            format!(
                "fold accents in the mapping: `{property}: \"{{{{ mail | normalize_diacritics }}}}\"`, or fix the address in AD"
            ),
        ));
        return;
    }
    let well_formed = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s
                    .chars()
                    .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        }
        None => false,
    };
    if !well_formed {
        out.push(Violation::new(
            MAIL_FORMAT,
            property,
            format!("`{s}` is not an SMTP address (local@domain)"),
            "fix the address in AD, or leave the property unmapped for this object",
        ));
    }
}

/// The username policy: `A-Z a-z 0-9 ' . - _ ! # ^ ~`, one `@`, no `.` right before it,
/// at most 64 characters before it and 48 after (113 in all, checked as the length).
fn check_upn(upn: &str, out: &mut Vec<Violation>) {
    let hint = "UPNs allow A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @; fold accents with `normalize_diacritics` in the mapping";
    let Some((local, domain)) = upn.rsplit_once('@') else {
        out.push(Violation::new(
            UPN,
            "userPrincipalName",
            format!("`{upn}` has no @domain part"),
            hint,
        ));
        return;
    };
    let problem = if let Some(bad) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || UPN_SYMBOLS.contains(*c)))
    {
        Some(format!("{} before the @", describe(bad)))
    } else if local.is_empty() {
        Some("nothing before the @".to_string())
    } else if local.ends_with('.') {
        Some("a '.' right before the @".to_string())
    } else if local.starts_with('.') {
        Some("a '.' at the start".to_string())
    } else if local.contains("..") {
        Some("two '.' in a row".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        out.push(Violation::new(
            UPN,
            "userPrincipalName",
            format!("`{upn}` has {p}, which the username policy refuses"),
            hint,
        ));
    }
    for (part, len, max) in [
        ("before", local.chars().count(), UPN_LOCAL_MAX),
        ("after", domain.chars().count(), UPN_DOMAIN_MAX),
    ] {
        if len > max {
            out.push(Violation::new(
                LENGTH,
                "userPrincipalName",
                format!("`{upn}` has {len} characters {part} the @; Graph allows at most {max}"),
                "shorten the UPN in AD, or build a shorter one in the mapping",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(ty: ObjectType, name: &'static str, v: Value) -> Vec<&'static str> {
        check_props(ty, [(name, &v)])
            .into_iter()
            .map(|v| v.code)
            .collect()
    }

    #[test]
    fn each_rule_refuses_its_bad_value_and_accepts_the_good_one() {
        use ObjectType::{Group, User};
        #[rustfmt::skip]
        let cases: &[(ObjectType, &'static str, Value, Value, &str)] = &[
            (User, "mail", json!("jürgen@corp.example.com"), json!("jurgen@corp.example.com"), ACCENTED_MAIL),
            (User, "mail", json!("n/a"), json!("a.b@corp.example.com"), MAIL_FORMAT),
            (User, "otherMails", json!(["ok@x.com", "zoë@x.com"]), json!(["ok@x.com"]), ACCENTED_MAIL),
            (User, "usageLocation", json!("UK"), json!("GB"), USAGE_LOCATION),
            (User, "usageLocation", json!("de"), json!("DE"), USAGE_LOCATION),
            (User, "preferredLanguage", json!("en_US"), json!("en-US"), PREFERRED_LANGUAGE),
            (User, "businessPhones", json!(["1", "2"]), json!(["1"]), SINGLE_VALUED),
            (User, "userPrincipalName", json!("josé@corp.example.com"), json!("jose@corp.example.com"), UPN),
            (User, "userPrincipalName", json!("a..b@corp.example.com"), json!("a.b@corp.example.com"), UPN),
            (User, "userPrincipalName", json!("ab.@corp.example.com"), json!("ab@corp.example.com"), UPN),
            (User, "userPrincipalName", json!(format!("{}@corp.example.com", "a".repeat(65))), json!(format!("{}@corp.example.com", "a".repeat(64))), LENGTH),
            (User, "mailNickname", json!("o'brien"), json!("obrien"), MAIL_NICKNAME),
            (Group, "mailNickname", json!("sales team"), json!("sales.team"), MAIL_NICKNAME),
            (User, "displayName", json!("x".repeat(257)), json!("x".repeat(256)), LENGTH),
            (User, "employeeId", json!("x".repeat(17)), json!("x".repeat(16)), LENGTH),
            (Group, "displayName", json!("x".repeat(257)), json!("x".repeat(256)), LENGTH),
        ];
        for (ty, name, bad, good, code) in cases {
            assert_eq!(codes(*ty, name, bad.clone()), vec![*code], "{name} {bad}");
            assert!(codes(*ty, name, good.clone()).is_empty(), "{name} {good}");
        }
    }

    #[test]
    fn other_mails_holds_250_values() {
        let many: Vec<String> = (0..251).map(|i| format!("a{i}@x.com")).collect();
        assert_eq!(
            codes(ObjectType::User, "otherMails", json!(many)),
            vec![LENGTH]
        );
        assert!(codes(ObjectType::User, "otherMails", json!(many[..250])).is_empty());
    }

    #[test]
    fn messages_name_the_character() {
        let v = check_props(ObjectType::User, [("mail", &json!("zoë@x.com"))]);
        assert!(v[0].message.contains("'ë' (U+00EB)"), "{}", v[0].message);
        assert!(v[0].hint.contains("normalize_diacritics"));
    }
}
