//! Secrets and how they stay out of every output.
//!
//! - Secret references: a policy names where a secret lives (`env:NAME`, `file:PATH`),
//!   never the secret itself, so a policy repository can be public and a plan can be
//!   shared without leaking a password.
//! - [`Secret`]: a credential held in memory (client secret, client assertion, access
//!   token, git token, trigger token) whose `Debug` and `Display` never show it.
//! - [`RedactedJson`]: a request body as `Debug` shows it, with the values that are
//!   secrets (a new user's `passwordProfile.password`) masked, so that a derived `Debug`
//!   of a request is safe to log or put in a panic message.

use serde_json::Value;
use std::fmt;
use std::path::PathBuf;

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// A string that must never be printed: `Debug` and `Display` show [`REDACTED`]. The
/// value is reachable only through [`Secret::expose`], at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// JSON member names whose string values are secrets in anything ad2entra sends or
/// receives: Graph's `passwordProfile.password` (the initial password apply generates)
/// and `passwordCredential.secretText`, and the OAuth token endpoint's fields.
const SECRET_MEMBERS: &[&str] = &[
    "password",
    "secretText",
    "client_secret",
    "client_assertion",
    "access_token",
    "refresh_token",
];

/// True when a JSON member of this name holds a secret.
fn is_secret_member(name: &str) -> bool {
    SECRET_MEMBERS.iter().any(|m| m.eq_ignore_ascii_case(name))
}

/// `value` with every string under a secret member name replaced by [`REDACTED`].
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_member(k) && v.is_string() {
                        Value::String(REDACTED.into())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// `Debug` of a JSON body with its secrets masked ([`redact_json`]): what the `Debug`
/// impls of request types print for their bodies.
pub struct RedactedJson<'a>(pub &'a Value);

impl fmt::Debug for RedactedJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_json(self.0), f)
    }
}

/// [`RedactedJson`] of an optional body.
pub fn redacted_body(body: &Option<Value>) -> Option<RedactedJson<'_>> {
    body.as_ref().map(RedactedJson)
}

/// Why a secret reference could not be resolved. Messages name the reference, never
/// the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} (named by a secret reference) is not set")]
    MissingEnv(String),
    #[error("cannot read the secret file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secrets must be referenced as env:NAME or file:PATH")]
    BadReference,
}

/// Resolves `env:NAME` / `file:PATH` (one trailing newline of a file is dropped, as
/// Kubernetes secret volumes and `echo` leave one).
pub fn resolve(reference: &str) -> Result<String, SecretError> {
    if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_string()))
    } else if let Some(path) = reference.strip_prefix("file:") {
        let s = std::fs::read_to_string(path).map_err(|source| SecretError::File {
            path: path.into(),
            source,
        })?;
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        Err(SecretError::BadReference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_reference_drops_trailing_newline_and_errors_name_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(resolve(&format!("file:{}", p.display())).unwrap(), "s3cret");
        let e = resolve("env:AD2ENTRA_SURELY_UNSET_VAR").unwrap_err();
        assert!(e.to_string().contains("AD2ENTRA_SURELY_UNSET_VAR"));
        assert!(matches!(resolve("s3cret"), Err(SecretError::BadReference)));
        assert!(!SecretError::BadReference.to_string().contains("s3cret"));
    }

    #[test]
    fn secret_shows_in_no_format() {
        let s = Secret::new("hunter2");
        assert_eq!(s.expose(), "hunter2");
        let shown = format!("{s} {s:?} {s:#?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(REDACTED));
    }

    #[test]
    fn redacted_json_masks_passwords_at_any_depth_and_keeps_the_rest() {
        let body = serde_json::json!({
            "userPrincipalName": "ann@corp.example.com",
            "passwordPolicies": "DisablePasswordExpiration",
            "passwordProfile": {"password": "Xy7#pq9!Lm", "forceChangePasswordNextSignIn": true},
            "requests": [{"body": {"passwordProfile": {"Password": "Qw3+er5~Ty"}}}],
        });
        let shown = format!("{:?}", RedactedJson(&body));
        assert!(
            !shown.contains("Xy7#pq9!Lm") && !shown.contains("Qw3+er5~Ty"),
            "{shown}"
        );
        assert!(shown.contains("ann@corp.example.com"), "{shown}");
        assert!(shown.contains("DisablePasswordExpiration"), "{shown}");
        assert!(shown.contains("forceChangePasswordNextSignIn"), "{shown}");
        let redacted = redact_json(&body);
        assert_eq!(redacted["passwordProfile"]["password"], REDACTED);
        assert_eq!(
            redacted["passwordProfile"]["forceChangePasswordNextSignIn"],
            true
        );
        assert!(format!("{:?}", redacted_body(&None)).contains("None"));
    }
}
