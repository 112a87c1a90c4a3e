//! Errors from the Graph edge, classified so callers know whether to retry.

use std::time::Duration;

/// A failure talking to Entra (token endpoint or Graph).
///
/// Every variant says whether it is transient ([`GraphError::is_transient`]): the
/// reconciler retries transient errors with backoff and stalls on terminal ones.
/// No variant ever carries a secret, a token or a password.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Missing or malformed configuration (environment, certificate file…). Terminal.
    #[error("graph configuration: {0}")]
    Config(String),
    /// The token endpoint refused the credentials (AADSTS code and description). Terminal
    /// unless the endpoint itself failed (5xx), which is transient. Names the app and
    /// tenant that asked (the account to fix), never the credential.
    #[error(
        "token request for app {client_id} in tenant {tenant_id} failed ({status}): {code}: {description}"
    )]
    Auth {
        client_id: String,
        tenant_id: String,
        status: u16,
        code: String,
        description: String,
    },
    /// Graph answered with an error status and its error body.
    #[error("graph {method} {path} -> {status} {code}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        code: String,
        message: String,
        /// Retry-After, when Graph sent one (429, 503).
        retry_after: Option<Duration>,
    },
    /// The request never got an answer: connect error, timeout, dropped connection.
    /// Transient, but the outcome of a non-idempotent request is unknown.
    #[error("graph {method} {path}: transport error: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    /// Graph answered 2xx with a body we could not understand. Terminal (a bug on one side).
    #[error("graph {method} {path}: unexpected response: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    /// A paged read stopped before its end: a next link failed after its retries, a page
    /// was not JSON or had no `value`, a delta round ended without a delta link. The read
    /// returns this instead of what it had so far: a partial snapshot would look like
    /// objects that vanished. Transient when the cause is (or when a page was malformed:
    /// the next read may well get a whole one).
    #[error("reading {collection} stopped after {pages} page(s): {reason}")]
    IncompleteRead {
        /// The collection path (`/users`, `/groups/{id}/members`, `/users/delta`).
        collection: String,
        /// Pages read whole before the failure.
        pages: usize,
        /// What went wrong.
        reason: String,
        /// The request error behind it, when a request failed.
        #[source]
        source: Option<Box<GraphError>>,
    },
    /// Delta links that cannot continue for another reason than Graph's answer: they were
    /// taken for another selection of properties (a policy change). A full read is needed.
    #[error("delta links unusable: {0}")]
    DeltaLinksUnusable(String),
    /// The caller's deadline passed or it was cancelled before the request was sent:
    /// nothing was sent. Transient (a later run may send it).
    #[error("not sent: the deadline passed or the run was cancelled")]
    Stopped,
}

/// Graph's error codes for a delta token that no longer works (errors page: "resyncRequired:
/// the delta token is no longer valid, and the app must reset the sync state";
/// "syncStateNotFound: the sync state generation is not found. The delta token is expired").
pub const DELTA_RESET_CODES: [&str; 2] = ["syncStateNotFound", "resyncRequired"];

impl GraphError {
    /// True when retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Config(_)
            | GraphError::Decode { .. }
            | GraphError::DeltaLinksUnusable(_) => false,
            GraphError::Auth { status, .. } => *status >= 500 || *status == 429 || *status == 0,
            GraphError::Api { status, .. } => is_transient_status(*status),
            GraphError::Transport { .. } | GraphError::Stopped => true,
            GraphError::IncompleteRead { source, .. } => {
                source.as_ref().is_none_or(|s| s.is_transient())
            }
        }
    }

    /// HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            GraphError::Auth { status, .. } => Some(*status),
            GraphError::IncompleteRead {
                source: Some(s), ..
            } => s.status(),
            _ => None,
        }
    }

    /// Graph's error code (`Request_ResourceNotFound`, `Authorization_RequestDenied`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. } | GraphError::Auth { code, .. } => Some(code),
            GraphError::IncompleteRead {
                source: Some(s), ..
            } => s.code(),
            _ => None,
        }
    }

    /// True when delta links can no longer be followed and the caller must read everything
    /// again: 410 Gone (the delta query overview's "synchronization reset"), a 4xx with
    /// [`DELTA_RESET_CODES`] (expired tokens answer 400 `syncStateNotFound`), or
    /// [`GraphError::DeltaLinksUnusable`].
    pub fn is_delta_expired(&self) -> bool {
        match self {
            GraphError::DeltaLinksUnusable(_) => true,
            GraphError::Api { status, code, .. } => {
                *status == 410
                    || ((400..500).contains(status)
                        && DELTA_RESET_CODES
                            .iter()
                            .any(|c| c.eq_ignore_ascii_case(code)))
            }
            GraphError::IncompleteRead {
                source: Some(s), ..
            } => s.is_delta_expired(),
            _ => false,
        }
    }
}

/// 429, 5xx (except 501 Not Implemented) and 408 are worth retrying.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505)
}

/// Parses Graph's `{"error":{"code","message"}}` body into (code, message); falls back
/// to the HTTP reason when the body is not Graph-shaped.
pub fn parse_error_body(status: u16, body: &serde_json::Value) -> (String, String) {
    let err = body.get("error");
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("http{status}"));
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .unwrap_or_default();
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_statuses() {
        assert!(is_transient_status(429));
        assert!(is_transient_status(503));
        assert!(!is_transient_status(501));
        assert!(!is_transient_status(404));
        assert!(!is_transient_status(400));
    }

    fn api(status: u16, code: &str) -> GraphError {
        GraphError::Api {
            method: "GET".into(),
            path: "/users/delta".into(),
            status,
            code: code.into(),
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn recognises_expired_delta_tokens() {
        assert!(api(410, "whatever").is_delta_expired());
        assert!(api(400, "syncStateNotFound").is_delta_expired());
        assert!(api(400, "resyncRequired").is_delta_expired());
        assert!(!api(400, "Request_BadRequest").is_delta_expired());
        assert!(!api(500, "syncStateNotFound").is_delta_expired());
        assert!(!api(404, "Request_ResourceNotFound").is_delta_expired());
        let wrapped = GraphError::IncompleteRead {
            collection: "/users/delta".into(),
            pages: 2,
            reason: "next link failed".into(),
            source: Some(Box::new(api(410, "resyncRequired"))),
        };
        assert!(wrapped.is_delta_expired());
        assert_eq!(wrapped.status(), Some(410));
        assert!(!wrapped.is_transient());
        assert!(GraphError::DeltaLinksUnusable("x".into()).is_delta_expired());
    }

    #[test]
    fn incomplete_reads_are_transient_unless_their_cause_is_not() {
        let malformed = GraphError::IncompleteRead {
            collection: "/users".into(),
            pages: 3,
            reason: "page 4 has no value".into(),
            source: None,
        };
        assert!(malformed.is_transient());
        assert_eq!(
            malformed.to_string(),
            "reading /users stopped after 3 page(s): page 4 has no value"
        );
        let forbidden = GraphError::IncompleteRead {
            collection: "/users".into(),
            pages: 1,
            reason: "denied".into(),
            source: Some(Box::new(api(403, "Authorization_RequestDenied"))),
        };
        assert!(!forbidden.is_transient());
        assert_eq!(forbidden.code(), Some("Authorization_RequestDenied"));
    }

    #[test]
    fn parses_graph_error_body() {
        let (c, m) = parse_error_body(
            404,
            &json!({"error":{"code":"Request_ResourceNotFound","message":"gone"}}),
        );
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("Request_ResourceNotFound", "gone")
        );
        let (c, _) = parse_error_body(502, &json!("oops"));
        assert_eq!(c, "http502");
    }
}
