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
    /// unless the endpoint itself failed (5xx), which is transient.
    #[error("token request failed ({status}): {code}: {description}")]
    Auth {
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
    /// The caller's deadline passed or it was cancelled before the request was sent:
    /// nothing was sent. Transient (a later run may send it).
    #[error("not sent: the deadline passed or the run was cancelled")]
    Stopped,
}

impl GraphError {
    /// True when retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Config(_) | GraphError::Decode { .. } => false,
            GraphError::Auth { status, .. } => *status >= 500 || *status == 429 || *status == 0,
            GraphError::Api { status, .. } => is_transient_status(*status),
            GraphError::Transport { .. } | GraphError::Stopped => true,
        }
    }

    /// HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            GraphError::Auth { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's error code (`Request_ResourceNotFound`, `Authorization_RequestDenied`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. } | GraphError::Auth { code, .. } => Some(code),
            _ => None,
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
