//! Local state: what ad2entra remembers between cycles and restarts.
//!
//! Only an optimisation and a safety aid — ownership lives in Entra, on the objects —
//! so losing the file never causes a wrong write: it costs one full cycle. What it holds:
//!
//! * the objectGUID of every OU and group the policy names, so an OU renamed or moved in
//!   AD is followed instead of looking like "everything under it left scope";
//! * AD watermarks per domain controller (invocationId + highest USN), and the Graph
//!   delta links, so status can say where the next delta starts and a watermark of
//!   another DC is recognised;
//! * when the last full cycle ran and which policy commit was last applied;
//! * the last [`MAX_RUNS`] runs of the reconciler (start, end, commit, kind, counts,
//!   errors), for `/status` and `ad2entra status`.
//!
//! The file is JSON with a `formatVersion`. Writes are crash-safe: a temporary file in
//! the same directory, fsync, rename over the old file, fsync of the directory. A file
//! that cannot be parsed (or comes from a newer ad2entra) is renamed aside and reported,
//! never silently overwritten and never trusted.

use crate::ad::ldap::Watermark;
use crate::model::ObjectGuid;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state file's format. Version 1 (before the reconciler) had only `scopeGuids` and
/// no version field; it reads as version 2 with everything else empty.
pub const STATE_FORMAT_VERSION: u32 = 2;

/// How many runs the history keeps.
pub const MAX_RUNS: usize = 50;

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

/// A domain controller's change watermark, with the time it was taken (a watermark
/// older than the tombstone lifetime cannot be trusted for deletions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdWatermark {
    pub invocation_id: ObjectGuid,
    pub highest_usn: u64,
    pub taken_at: DateTime<Utc>,
}

impl AdWatermark {
    /// The watermark the LDAP delta reader resumes from.
    pub fn watermark(&self) -> Watermark {
        Watermark {
            invocation_id: self.invocation_id,
            highest_usn: self.highest_usn,
        }
    }
}

/// Where the next Graph delta round starts, for users and for groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphDeltaState {
    pub users: String,
    pub groups: String,
    pub taken_at: DateTime<Utc>,
}

/// Whether a cycle read everything or only what changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleKind {
    Full,
    Delta,
}

impl CycleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::Full => "full",
            CycleKind::Delta => "delta",
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Nothing to change.
    InSync,
    /// The plan was applied completely (per-object errors may remain).
    Applied,
    /// `--plan-only`: planned and logged, nothing written.
    Planned,
    /// Applied in part: the deadline or shutdown came first; the rest is pending.
    Interrupted,
    /// A transient error (network, LDAP unavailable, 5xx): retried with backoff.
    Failed,
    /// A terminal error (bad credentials, deletion gate, source-failure guard, invalid
    /// policy): waits for a new commit or a manual trigger.
    Stalled,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::InSync => "in-sync",
            RunOutcome::Applied => "applied",
            RunOutcome::Planned => "planned",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Failed => "failed",
            RunOutcome::Stalled => "stalled",
        }
    }
}

/// Counts of what apply did in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCounts {
    pub ok: usize,
    pub failed: usize,
    pub stale: usize,
    pub skipped: usize,
    pub pending: usize,
}

/// One reconciler run, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The cycle id that every log line of the cycle carries.
    pub id: String,
    pub kind: CycleKind,
    /// What started it: `startup`, `interval`, `commit`, `ad-change`, `api`, `sighup`…
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// The policy commit (git) the run used, if the policy came from git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The policy's content hash.
    pub policy_hash: String,
    pub outcome: RunOutcome,
    /// The plan's summary, when a plan was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedCounts>,
    /// AD entries read (full: everything in the base DN; delta: what changed).
    pub ldap_entries: u64,
    /// HTTP requests sent to Graph.
    pub graph_requests: u64,
    /// Cycle-level errors and the first per-object errors (capped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The remembered state, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default = "v1")]
    pub format_version: u32,
    /// Normalised DN as the policy writes it → the objectGUID it resolved to.
    #[serde(default)]
    pub scope_guids: BTreeMap<String, ObjectGuid>,
    /// LDAP server (URL) → its watermark after the last successful read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ad_watermarks: BTreeMap<String, AdWatermark>,
    /// Graph delta links after the last successful read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_delta: Option<GraphDeltaState>,
    /// When the last full cycle completed (the next one is due `fullEvery` later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_cycle_at: Option<DateTime<Utc>>,
    /// The policy commit (or content hash without git) last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// The most recent runs, oldest first.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub runs: VecDeque<RunRecord>,
}

fn v1() -> u32 {
    1
}

impl Default for State {
    fn default() -> Self {
        State {
            format_version: STATE_FORMAT_VERSION,
            scope_guids: BTreeMap::new(),
            ad_watermarks: BTreeMap::new(),
            graph_delta: None,
            last_full_cycle_at: None,
            last_applied_revision: None,
            runs: VecDeque::new(),
        }
    }
}

/// The result of [`State::load_or_recover`].
#[derive(Debug)]
pub struct LoadedState {
    pub state: State,
    /// There was no usable state: the next cycle must be full.
    pub fresh: bool,
    /// Set when the file was unreadable as state and was moved aside: say so.
    pub set_aside: Option<PathBuf>,
    /// Why it was set aside.
    pub problem: Option<String>,
}

impl State {
    /// Reads the state; a missing file is an empty state; an invalid one is an error.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, StateError> {
        let mut s: State = serde_json::from_str(text).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if s.format_version > STATE_FORMAT_VERSION {
            return Err(StateError::Parse {
                path: path.to_path_buf(),
                source: serde::de::Error::custom(format!(
                    "formatVersion {} is newer than this ad2entra understands ({STATE_FORMAT_VERSION})",
                    s.format_version
                )),
            });
        }
        s.format_version = STATE_FORMAT_VERSION;
        Ok(s)
    }

    /// Reads the state for a long-running process: a missing file is a fresh state; a
    /// file that is not valid state (truncated, edited, from a newer version) is renamed
    /// to `NAME.corrupt-TIMESTAMP` and reported, and the run starts fresh (one full
    /// cycle, no wrong write: ownership is in Entra). Only IO errors fail.
    pub fn load_or_recover(path: &Path) -> Result<LoadedState, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LoadedState {
                    state: State::default(),
                    fresh: true,
                    set_aside: None,
                    problem: None,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::new(),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        match Self::parse(path, &text) {
            Ok(state) => Ok(LoadedState {
                state,
                fresh: false,
                set_aside: None,
                problem: None,
            }),
            Err(e) => {
                let aside = set_aside_path(path, Utc::now());
                std::fs::rename(path, &aside).map_err(|source| StateError::Write {
                    path: aside.clone(),
                    source,
                })?;
                Ok(LoadedState {
                    state: State::default(),
                    fresh: true,
                    set_aside: Some(aside),
                    problem: Some(e.to_string()),
                })
            }
        }
    }

    /// Writes the state crash-safely: temporary file in the same directory, fsync,
    /// rename over the old file, fsync of the directory. A crash at any point leaves
    /// either the old or the new file, never a mix.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)?;
            // The rename is durable only once the directory entry is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }

    /// Appends a run to the history, keeping the last [`MAX_RUNS`].
    pub fn push_run(&mut self, run: RunRecord) {
        self.runs.push_back(run);
        while self.runs.len() > MAX_RUNS {
            self.runs.pop_front();
        }
    }
}

fn set_aside_path(path: &Path, now: DateTime<Utc>) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".corrupt-{}", now.format("%Y%m%dT%H%M%SZ")));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guid() -> ObjectGuid {
        ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap()
    }

    fn run(i: usize) -> RunRecord {
        RunRecord {
            id: format!("c{i}"),
            kind: CycleKind::Delta,
            trigger: "interval".into(),
            started_at: Utc::now(),
            ended_at: Utc::now(),
            commit: Some("abc".into()),
            policy_hash: "sha256:00".into(),
            outcome: RunOutcome::InSync,
            plan: None,
            applied: None,
            ldap_entries: 3,
            graph_requests: 4,
            errors: vec![],
        }
    }

    #[test]
    fn round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.scope_guids.insert("ou=staff,dc=corp".into(), guid());
        s.ad_watermarks.insert(
            "ldaps://dc1".into(),
            AdWatermark {
                invocation_id: guid(),
                highest_usn: 42,
                taken_at: Utc::now(),
            },
        );
        s.push_run(run(0));
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Parse { .. })));
    }

    #[test]
    fn version_1_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"scopeGuids":{"ou=staff,dc=corp":"9a7ed32a-0ab4-4d46-aa48-2d7d273334f6"}}"#,
        )
        .unwrap();
        let s = State::load(&path).unwrap();
        assert_eq!(s.format_version, STATE_FORMAT_VERSION);
        assert_eq!(s.scope_guids.get("ou=staff,dc=corp"), Some(&guid()));
    }

    #[test]
    fn corrupt_or_newer_files_are_set_aside_and_start_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for bad in [
            "{\"scopeGuids\": {\"x\": 1",
            "{\"formatVersion\": 99}",
            "\u{0}\u{1}garbage",
        ] {
            std::fs::write(&path, bad).unwrap();
            let l = State::load_or_recover(&path).unwrap();
            assert!(l.fresh);
            assert_eq!(l.state, State::default());
            let aside = l.set_aside.expect("set aside");
            assert_eq!(std::fs::read_to_string(&aside).unwrap(), bad);
            assert!(!path.exists());
            assert!(l.problem.is_some());
            std::fs::remove_file(aside).unwrap();
        }
        let l = State::load_or_recover(&path).unwrap();
        assert!(l.fresh && l.set_aside.is_none());
    }

    #[test]
    fn history_keeps_the_last_runs() {
        let mut s = State::default();
        for i in 0..(MAX_RUNS + 7) {
            s.push_run(run(i));
        }
        assert_eq!(s.runs.len(), MAX_RUNS);
        assert_eq!(s.runs.front().unwrap().id, "c7");
        assert_eq!(s.runs.back().unwrap().id, format!("c{}", MAX_RUNS + 6));
    }
}
