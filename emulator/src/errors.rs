//! Graph error bodies and the library's own error type.
//!
//! Every Graph error the emulator returns goes through [`GraphError`], so that all of them share
//! the documented shape `{"error":{"code","message","details"?,"innerError":{"date","request-id",
//! "client-request-id"}}}` (see samples/not-found-404.json and samples/conflict-*.json).

use serde_json::{Map, Value, json};

/// Errors of the emulator as a library (start-up, seeding, configuration).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listener could not be bound.
    #[error("cannot bind emulator listener: {0}")]
    Bind(#[from] std::io::Error),
    /// Seed data was rejected; the message names the offending object.
    #[error("invalid seed: {0}")]
    Seed(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A Graph error response before the per-request innerError is added.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    /// HTTP status code.
    pub status: u16,
    /// `error.code`, e.g. `Request_BadRequest`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// `error.details` entries (`ObjectConflict`, `InvalidValue`, ...).
    pub details: Vec<ErrorDetail>,
    /// Extra response headers (Retry-After, Location, WWW-Authenticate...).
    pub headers: Vec<(String, String)>,
    /// Overrides the innerError object (the 429 sample has its own innerError layout).
    pub inner_override: Option<Box<Map<String, Value>>>,
}

/// One `error.details` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    /// Detail code, e.g. `ObjectConflict`.
    pub code: String,
    /// Detail message.
    pub message: String,
    /// The property the detail is about.
    pub target: String,
}

impl GraphError {
    /// A plain error with status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
            inner_override: None,
        }
    }

    /// 400 `Request_BadRequest`, the directory's generic validation error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "Request_BadRequest", message)
    }

    /// 400 `BadRequest`, the OData layer's error (unknown segments, bad payloads).
    pub fn odata_bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 `Request_ResourceNotFound` with Graph's message for a missing object.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            404,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// 400 with `ObjectConflict` details, as Graph reports uniqueness violations.
    pub fn conflict(property: &str) -> Self {
        let message =
            format!("Another object with the same value for property {property} already exists.");
        let mut e = Self::bad_request(message.clone());
        e.details.push(ErrorDetail {
            code: "ObjectConflict".into(),
            message,
            target: property.into(),
        });
        e
    }

    /// 400 with an `InvalidValue` detail for a property of a resource type.
    pub fn invalid_value(property: &str, resource: &str) -> Self {
        let message =
            format!("Invalid value specified for property '{property}' of resource '{resource}'.");
        let mut e = Self::bad_request(message.clone());
        e.details.push(ErrorDetail {
            code: "InvalidValue".into(),
            message,
            target: property.into(),
        });
        e
    }

    /// 400 for writes to objects mastered on-premises (`onPremisesSyncEnabled == true`).
    pub fn on_premises_mastered() -> Self {
        Self::bad_request(
            "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
        )
    }

    /// 403 `Authorization_RequestDenied`.
    pub fn forbidden() -> Self {
        Self::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    /// 401 `InvalidAuthenticationToken`.
    pub fn unauthorized(message: &str) -> Self {
        let mut e = Self::new(401, "InvalidAuthenticationToken", message);
        e.headers.push((
            "WWW-Authenticate".into(),
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"".into(),
        ));
        e
    }

    /// 405 for a known target with an unsupported method (as in samples/batch-response.json).
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    /// 400 for a URL segment Graph does not know.
    pub fn unknown_segment(segment: &str) -> Self {
        Self::odata_bad_request(format!("Resource not found for the segment '{segment}'."))
    }

    /// 400 `Request_UnsupportedQuery` for operators that need advanced query parameters.
    pub fn needs_advanced_query(operator: &str) -> Self {
        Self::new(
            400,
            "Request_UnsupportedQuery",
            format!(
                "Operator '{operator}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
            ),
        )
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Renders the JSON body for one request.
    pub fn body(&self, request_id: &str, client_request_id: &str) -> Value {
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut error = Map::new();
        error.insert("code".into(), Value::String(self.code.clone()));
        error.insert("message".into(), Value::String(self.message.clone()));
        if !self.details.is_empty() {
            let details: Vec<Value> = self
                .details
                .iter()
                .map(|d| json!({"code": d.code, "message": d.message, "target": d.target}))
                .collect();
            error.insert("details".into(), Value::Array(details));
        }
        let inner = match &self.inner_override {
            Some(m) => {
                let mut m = (**m).clone();
                m.insert("date".into(), Value::String(date));
                m.insert("request-id".into(), Value::String(request_id.into()));
                Value::Object(m)
            }
            None => json!({
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            }),
        };
        error.insert("innerError".into(), inner);
        json!({ "error": Value::Object(error) })
    }
}

/// Result type of Graph handlers.
pub type GraphResult<T> = Result<T, GraphError>;
