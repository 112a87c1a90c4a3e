//! Graph's documented value rules for users and groups, enforced on create and update.
//!
//! Written from Microsoft's documentation (the user and group resource pages, the
//! username policies; sources in ad2entra's `docs/graph-rules.md`), separately from
//! ad2entra's planner, which checks the same rules before it writes: a write refused here
//! for a rule the planner knows is a planner bug, and the tests show it.
//!
//! Graph's answer to a value it refuses is 400 `Request_BadRequest` with an
//! `InvalidValue` detail naming the property ("Invalid value specified for property
//! 'mail' of resource 'User'.", as observed for `mail` with accents and for
//! `mailNickname`). For `businessPhones`, `otherMails`, `preferredLanguage` and the UPN
//! shape no response is documented or observed: the same shape is used (undocumented
//! wording).
//!
//! [`UndocumentedRule`]s let a test make the emulator refuse a value for a reason no
//! documentation gives, as Graph sometimes does.

use crate::errors::{GraphError, GraphResult};
use crate::model::{self, Kind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// ISO 3166-1 alpha-2, the officially assigned codes (usageLocation: "A two-letter
/// country code (ISO standard 3166)").
const ISO_3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// ISO 639-1 (preferredLanguage: "an ISO 639 two-letter lowercase culture code").
const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// "Can store up to 250 values, each with a limit of 250 characters" (otherMails).
const OTHER_MAILS_MAX: usize = 250;

fn listed(list: &str, code: &str) -> bool {
    code.len() == 2 && list.split(' ').any(|c| c == code)
}

/// A value refusal no documentation gives, configured by a test: writes of `property`
/// on `resource` (`User`, `Group`) whose string value contains `contains`
/// (case-insensitive) get Graph's InvalidValue error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndocumentedRule {
    pub resource: String,
    pub property: String,
    pub contains: String,
}

/// Checks the properties of a create or update body against the documented rules.
pub fn check(kind: Kind, props: &Map<String, Value>) -> GraphResult<()> {
    for (k, v) in props {
        if v.is_null() {
            continue;
        }
        let ok = valid(kind, k, v);
        if !ok {
            return Err(GraphError::invalid_value(k, kind.resource()));
        }
    }
    Ok(())
}

/// Checks the configured undocumented rules.
pub fn check_undocumented(
    rules: &[UndocumentedRule],
    kind: Kind,
    props: &Map<String, Value>,
) -> GraphResult<()> {
    for r in rules
        .iter()
        .filter(|r| r.resource.eq_ignore_ascii_case(kind.resource()))
    {
        let hit = props
            .get(&r.property)
            .and_then(Value::as_str)
            .is_some_and(|s| s.to_lowercase().contains(&r.contains.to_lowercase()));
        if hit {
            return Err(GraphError::invalid_value(&r.property, kind.resource()));
        }
    }
    Ok(())
}

fn valid(kind: Kind, k: &str, v: &Value) -> bool {
    let texts: Vec<&str> = match v {
        Value::String(s) => vec![s],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if let Some(max) = model::max_length(kind, k)
        && texts.iter().any(|s| s.chars().count() > max)
    {
        return false;
    }
    match (kind, k) {
        (Kind::User, "mail") => texts.iter().all(|s| smtp_address(s)),
        (Kind::User, "otherMails") => {
            texts.len() <= OTHER_MAILS_MAX
                && texts
                    .iter()
                    .all(|s| s.chars().count() <= OTHER_MAILS_MAX && smtp_address(s))
        }
        (Kind::User, "businessPhones") => texts.len() <= 1,
        (Kind::User, "usageLocation") => texts.iter().all(|s| listed(ISO_3166, s)),
        (Kind::User, "preferredLanguage") => texts.iter().all(|s| {
            s.split_once('-')
                .is_some_and(|(l, r)| listed(ISO_639_1, l) && listed(ISO_3166, r))
        }),
        (_, "mailNickname") => texts.iter().all(|s| mail_nickname(s)),
        (Kind::User, "userPrincipalName") => texts.iter().all(|s| upn_shape(s)),
        _ => true,
    }
}

/// ASCII only ("can't contain accent characters") and `local@domain.tld`.
fn smtp_address(s: &str) -> bool {
    if !s.is_ascii()
        || s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// ASCII 0–127 except `@ ( ) \ / [ ] " ' ; : < > ,`, space and control characters (the
/// union of the group resource page's and the metadata's lists).
fn mail_nickname(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii() && !c.is_ascii_control() && c != ' ' && !"@()\\/[]\"';:<>,".contains(c)
        })
}

/// The username policy: `A-Z a-z 0-9 ' . - _ ! # ^ ~` before one `@`, no `.` right
/// before it (nor first, nor two in a row: RFC 5322's dot-atom, the documentation being
/// silent), at most 64 characters before the `@` and 48 after. The domain's verification
/// is checked by the directory.
fn upn_shape(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && local.chars().count() <= 64
        && domain.chars().count() <= 48
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn code_lists_hold_every_assigned_code() {
        assert_eq!(ISO_3166.split(' ').count(), 249);
        assert_eq!(ISO_639_1.split(' ').count(), 183);
    }

    #[test]
    fn values_and_their_verdicts() {
        let u = |k: &str, v: Value| valid(Kind::User, k, &v);
        assert!(!u("mail", json!("jürgen@corp.example.com")));
        assert!(u("mail", json!("jurgen@corp.example.com")));
        assert!(!u("mail", json!("nobody")));
        assert!(!u("usageLocation", json!("UK")) && u("usageLocation", json!("GB")));
        assert!(!u("businessPhones", json!(["1", "2"])) && u("businessPhones", json!(["1"])));
        assert!(
            !u("preferredLanguage", json!("english")) && u("preferredLanguage", json!("en-GB"))
        );
        assert!(!u("userPrincipalName", json!("a..b@x.com")));
        assert!(!u("mailNickname", json!("a b")) && u("mailNickname", json!("a.b")));
        assert!(valid(Kind::Group, "mailNickname", &json!("sales.team")));
    }
}
