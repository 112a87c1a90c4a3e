//! Secret references: a policy names where a secret lives (`env:NAME`, `file:PATH`),
//! never the secret itself, so a policy repository can be public and a plan can be
//! shared without leaking a password.

use std::path::PathBuf;

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
}
