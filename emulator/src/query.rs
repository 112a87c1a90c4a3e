//! OData system query options (`$select`, `$top`, `$filter`, `$count`, `$search`, `$orderby`,
//! `$skiptoken`) and Graph's advanced-query rules (`ConsistencyLevel: eventual`).

use crate::errors::{GraphError, GraphResult};
use crate::filter::Filter;
use crate::model::Kind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Parsed query options of a collection or entity GET.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `$select`, as given (validated against the type).
    pub select: Option<Vec<String>>,
    /// `$top`.
    pub top: Option<usize>,
    /// `$filter`.
    pub filter: Option<Filter>,
    /// Raw `$filter` text.
    pub filter_text: Option<String>,
    /// `$count=true` honoured (only with advanced query parameters).
    pub count: bool,
    /// `$search` terms: (property, value) pairs combined with OR.
    pub search: Option<Vec<(String, String)>>,
    /// `$orderby` property and whether descending.
    pub orderby: Option<(String, bool)>,
    /// `$skiptoken`.
    pub skiptoken: Option<String>,
    /// `$deltatoken`.
    pub deltatoken: Option<String>,
    /// Whether `$expand` was given (affects throttling cost only).
    pub expand: bool,
    /// `ConsistencyLevel: eventual` was sent.
    pub eventual: bool,
}

/// Properties that can be used in `$filter` (besides directory extensions).
pub fn filterable(kind: Kind, property: &str) -> bool {
    let common = [
        "id",
        "displayName",
        "mail",
        "mailNickname",
        "onPremisesSyncEnabled",
        "proxyAddresses",
    ];
    let user = [
        "userPrincipalName",
        "onPremisesImmutableId",
        "createdDateTime",
        "givenName",
        "surname",
        "accountEnabled",
        "employeeId",
        "usageLocation",
        "jobTitle",
        "department",
        "companyName",
        "city",
        "country",
        "state",
        "userType",
        "otherMails",
        "onPremisesSamAccountName",
        "onPremisesUserPrincipalName",
        "onPremisesSecurityIdentifier",
        "employeeType",
        "officeLocation",
        "preferredLanguage",
        "mobilePhone",
        "businessPhones",
    ];
    let group = [
        "securityEnabled",
        "mailEnabled",
        "description",
        "groupTypes",
        "onPremisesSecurityIdentifier",
        "onPremisesSamAccountName",
        "isAssignableToRole",
    ];
    if common.contains(&property) || property.starts_with("extension_") {
        return true;
    }
    match kind {
        Kind::User => user.contains(&property),
        Kind::Group => group.contains(&property),
    }
}

impl Query {
    /// Parses and validates query options for a read of `kind`.
    ///
    /// `is_collection` says whether the target is a collection (paging and `$filter` apply).
    /// `known` decides whether a `$select` item names a property of the type.
    pub fn parse(
        pairs: &[(String, String)],
        eventual: bool,
        kind: Option<Kind>,
        is_collection: bool,
        known: &dyn Fn(&str) -> bool,
    ) -> GraphResult<Query> {
        let mut q = Query {
            eventual,
            ..Query::default()
        };
        let mut count_requested = false;
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "$select" => {
                    let items = select_items(v);
                    for item in &items {
                        if !known(item) {
                            let type_name = kind
                                .map(Kind::schema)
                                .unwrap_or("microsoft.graph.directoryObject");
                            return Err(unknown_property(item, type_name));
                        }
                    }
                    q.select = Some(items);
                }
                "$top" => {
                    let n: i64 = v.trim().parse().map_err(|_| {
                        GraphError::odata_bad_request(format!(
                            "Invalid value '{v}' for $top query option found."
                        ))
                    })?;
                    if !(1..=999).contains(&n) {
                        return Err(GraphError::bad_request(format!(
                            "Invalid page size specified: '{n}'. Must be between 1 and 999 inclusive."
                        )));
                    }
                    q.top = usize::try_from(n).ok();
                }
                "$skip" => {
                    return Err(GraphError::bad_request(
                        "'$skip' is not supported by the service.",
                    ));
                }
                "$filter" => {
                    let f = parse_filter(v)?;
                    q.filter = Some(f);
                    q.filter_text = Some(v.clone());
                }
                "$count" => {
                    count_requested = v.eq_ignore_ascii_case("true");
                }
                "$search" => q.search = Some(parse_search(v)?),
                "$orderby" => {
                    let mut parts = v.split_whitespace();
                    let prop = parts.next().unwrap_or_default().to_string();
                    let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                    q.orderby = Some((prop, desc));
                }
                "$skiptoken" => q.skiptoken = Some(v.clone()),
                "$deltatoken" => q.deltatoken = Some(v.clone()),
                "$expand" => q.expand = true,
                _ => {}
            }
        }
        let advanced = eventual && count_requested;
        // $count=true without the header is silently ignored (notes/06-query-paging.md).
        q.count = advanced;
        if q.search.is_some() && !eventual {
            return Err(GraphError::new(
                400,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        if let (Some(f), Some(kind)) = (&q.filter, kind) {
            if !is_collection {
                return Err(GraphError::odata_bad_request(
                    "The query specified in the URI is not valid. $filter is not supported on a single entity.",
                ));
            }
            if let Some(op) = f.advanced_operator()
                && !advanced
            {
                return Err(GraphError::needs_advanced_query(op));
            }
            for p in f.properties() {
                if !filterable(kind, p) {
                    return Err(GraphError::new(
                        400,
                        "Request_UnsupportedQuery",
                        format!(
                            "Unsupported or invalid query filter clause specified for property '{p}' of resource '{}'.",
                            kind.resource()
                        ),
                    ));
                }
            }
        }
        if let (Some((prop, _)), Some(kind)) = (&q.orderby, kind) {
            let default_sortable = matches!(
                (kind, prop.as_str()),
                (_, "displayName") | (Kind::User, "userPrincipalName")
            );
            if !known(prop) {
                return Err(GraphError::odata_bad_request(format!(
                    "Could not find a property named '{prop}' on type '{}'.",
                    kind.schema()
                )));
            }
            if !advanced && (!default_sortable || q.filter.is_some()) {
                return Err(GraphError::new(
                    400,
                    "Request_UnsupportedQuery",
                    "Sorting not supported for current query.",
                ));
            }
        }
        Ok(q)
    }
}

/// The items of a `$select` value: comma-separated, trimmed, empty ones dropped.
pub(crate) fn select_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The error for a `$select` item that is not a property of `type_name`.
pub(crate) fn unknown_property(item: &str, type_name: &str) -> GraphError {
    GraphError::odata_bad_request(format!(
        "Could not find a property named '{item}' on type '{type_name}'."
    ))
}

/// A `$filter` value, or Graph's error for a clause it cannot parse.
pub(crate) fn parse_filter(v: &str) -> GraphResult<Filter> {
    Filter::parse(v)
        .map_err(|e| GraphError::odata_bad_request(format!("Invalid filter clause: {e}")))
}

fn parse_search(v: &str) -> GraphResult<Vec<(String, String)>> {
    // "displayName:room" OR "mail:adele"
    let mut out = Vec::new();
    for part in v.split(" OR ").flat_map(|p| p.split(" AND ")) {
        let p = part.trim().trim_matches('"');
        let Some((prop, value)) = p.split_once(':') else {
            return Err(GraphError::new(
                400,
                "Request_UnsupportedQuery",
                "Syntax error: the $search query must use the form \"property:value\".",
            ));
        };
        out.push((prop.trim().to_string(), value.trim().to_lowercase()));
    }
    Ok(out)
}

/// Encodes an opaque `$skiptoken` pointing after `last_id`.
pub fn encode_skiptoken(last_id: &str) -> String {
    let raw = format!("X'44537074{}'", hex_encode(last_id.as_bytes()));
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a `$skiptoken` made by [`encode_skiptoken`].
pub fn decode_skiptoken(token: &str) -> GraphResult<String> {
    let bad = || GraphError::bad_request("Invalid paging token.");
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let hex = raw
        .strip_prefix("X'44537074")
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(bad)?;
    let bytes = hex_decode(hex).ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Rebuilds a query string from pairs, replacing `$skiptoken`.
pub fn with_skiptoken(pairs: &[(String, String)], token: &str) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !k.eq_ignore_ascii_case("$skiptoken") {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("$skiptoken", token);
    ser.finish().replace("%24", "$").replace("%2C", ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptoken_round_trips_and_rejects_garbage() {
        let t = encode_skiptoken("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0");
        assert_eq!(
            decode_skiptoken(&t).unwrap(),
            "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0"
        );
        assert!(decode_skiptoken("nonsense!").is_err());
    }

    #[test]
    fn top_bounds() {
        let known = |_: &str| true;
        let p = |v: &str| vec![("$top".to_string(), v.to_string())];
        assert!(Query::parse(&p("999"), false, Some(Kind::User), true, &known).is_ok());
        let e = Query::parse(&p("1000"), false, Some(Kind::User), true, &known).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
        );
        assert!(Query::parse(&p("0"), false, Some(Kind::User), true, &known).is_err());
    }
}
