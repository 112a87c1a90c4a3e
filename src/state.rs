//! Local state: what ad2entra remembers between runs. Only an optimisation and a
//! safety aid — ownership lives in Entra — so losing it never causes a wrong write.
//!
//! Today it holds the objectGUID of every OU and group the policy names, so that an OU
//! renamed or moved in AD is followed by its GUID instead of looking like "everything
//! under it left scope".

use crate::model::ObjectGuid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The remembered state, as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Normalised DN as the policy writes it → the objectGUID it resolved to.
    #[serde(default)]
    pub scope_guids: BTreeMap<String, ObjectGuid>,
    /// Writes Graph refused, held back by the next plans until they change.
    #[serde(
        default,
        skip_serializing_if = "crate::plan::refused::RefusedWrites::is_empty"
    )]
    pub refused_writes: crate::plan::refused::RefusedWrites,
}

impl State {
    /// Reads the state; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| StateError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.scope_guids.insert(
            "ou=staff,dc=corp".into(),
            ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap(),
        );
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Parse { .. })));
    }
}
