//! Counters exposed by `GET /_emulator/stats` and [`crate::Emulator::stats`], so that tests can
//! assert how many requests, writes, throttles and injected faults a client caused.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Request and fault counters since start or the last reset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Graph requests by `METHOD /path/class` (ids replaced by `{id}`); `$batch` inner requests
    /// are counted here too.
    pub requests: BTreeMap<String, u64>,
    /// All Graph requests (outer HTTP requests plus inner batch requests).
    pub total_requests: u64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Committed writes (POST/PATCH/PUT/DELETE that succeeded).
    pub writes: u64,
    /// 429 responses (outer and inner).
    pub throttled: u64,
    /// Graph requests (a `$batch` counts once) that arrived after a 429 was given to the app
    /// and before its Retry-After instant: a client that waits as Graph asks sends none
    /// (requests already in flight when the 429 was given are not counted).
    pub early_requests: u64,
    /// `$batch` requests.
    pub batches: u64,
    /// Inner requests of all batches.
    pub batch_requests: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Token requests refused.
    pub token_errors: u64,
    /// Requests refused with 401.
    pub unauthorized: u64,
    /// Injected faults.
    pub faults: FaultStats,
}

/// Injected fault counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultStats {
    /// Random 500/503 answers.
    pub errors: u64,
    /// Connections closed before processing.
    pub dropped: u64,
    /// Connections closed after a committed write.
    pub dropped_after_commit: u64,
    /// Reads that missed an object because of replication lag.
    pub lagged_reads: u64,
    /// Requests delayed by added latency.
    pub delayed: u64,
    /// Continuation pages answered with a body that is not JSON.
    pub non_json_pages: u64,
    /// Continuation pages answered without `value`.
    pub pages_without_value: u64,
    /// `@odata.nextLink`s handed out broken.
    pub broken_next_links: u64,
    /// Requests to a broken next link (each answered 500).
    pub broken_link_requests: u64,
    /// Delta pages answered with neither next link nor delta link.
    pub truncated_delta_pages: u64,
}

/// `GET /users/6ea9...` → `GET /users/{id}`.
pub fn path_class(method: &str, path: &str) -> String {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .enumerate()
        .map(|(i, s)| {
            // Alternate keys: `applications(appId='x')` → `applications(appId='{id}')`.
            if let Some((set, key)) = s.split_once("(")
                && !set.is_empty()
                && !set.starts_with("microsoft.graph")
                && let Some((name, _)) = key.split_once("='")
            {
                return format!("{set}({name}='{{id}}')");
            }
            let is_id =
                crate::conformance::is_guid(s) || s.contains('@') || s.starts_with("(appId=");
            let after_collection =
                i > 0 && !s.starts_with('$') && !s.starts_with("microsoft.graph") && i % 2 == 1;
            if is_id || (after_collection && !is_known_segment(s)) {
                "{id}".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("{method} /{}", segs.join("/"))
}

fn is_known_segment(s: &str) -> bool {
    matches!(
        s,
        "delta"
            | "deletedItems"
            | "$count"
            | "$ref"
            | "$batch"
            | "members"
            | "manager"
            | "memberOf"
            | "assignLicense"
            | "extensionProperties"
            | "restore"
            | "owners"
            | "microsoft.graph.user"
            | "microsoft.graph.group"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn classes() {
        use super::path_class;
        assert_eq!(path_class("GET", "/users"), "GET /users");
        assert_eq!(path_class("GET", "/users/a@b.com"), "GET /users/{id}");
        assert_eq!(path_class("GET", "/users/delta"), "GET /users/delta");
        assert_eq!(
            path_class(
                "DELETE",
                "/groups/6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0/members/6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0/$ref"
            ),
            "DELETE /groups/{id}/members/{id}/$ref"
        );
        assert_eq!(
            path_class("GET", "/directory/deletedItems/microsoft.graph.user"),
            "GET /directory/deletedItems/microsoft.graph.user"
        );
        assert_eq!(
            path_class("POST", "/applications(appId='abc')/extensionProperties"),
            "POST /applications(appId='{id}')/extensionProperties"
        );
        assert_eq!(
            path_class("GET", "/directoryRoles/abc/members"),
            "GET /directoryRoles/{id}/members"
        );
    }
}
