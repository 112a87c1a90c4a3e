//! Creates that may have reached Graph, remembered across processes.
//!
//! A create is idempotent by anchor *within* an apply: an unknown outcome is looked up
//! by anchor after the directory's replication lag. A process killed between sending a
//! create and reading its answer loses that knowledge, and the next process reads Entra
//! while the new object may still be invisible (Graph is eventually consistent: a fresh
//! object can be missing from lists for seconds). Users are protected by the uniqueness
//! of `userPrincipalName` (a second create conflicts); groups have no unique property,
//! so the next plan would create them again — a duplicate group.
//!
//! The journal closes that gap: before a batch holding creates is sent, their anchors
//! are appended to a small file and synced to disk. The next apply treats a planned
//! create whose anchor is in the journal as an unknown outcome: it looks the anchor up
//! once the replication lag since the journaled send has passed, and creates only when
//! Graph has no such object. At the end of an apply the journal keeps only the creates
//! whose outcome is still unknown.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries older than this are dropped when read: any replication lag is long over and
/// the object, if it was created, is in every read since.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Serialize, Deserialize)]
struct Entry {
    anchor: String,
    /// Seconds since the Unix epoch when the create was sent.
    at: f64,
}

/// The journal file of one reconciler (or one `apply --state`).
#[derive(Debug)]
pub struct CreateJournal {
    path: PathBuf,
    /// Creates journaled by an earlier apply (read at open): anchor → when sent.
    earlier: HashMap<String, SystemTime>,
    /// Creates journaled by this apply.
    sent: Mutex<HashMap<String, SystemTime>>,
}

impl CreateJournal {
    /// Where the journal of a state file lives (next to it, so it shares its volume
    /// and its lifetime).
    pub fn path_for_state(state: &Path) -> PathBuf {
        let mut name = state.file_name().unwrap_or_default().to_os_string();
        name.push(".creates");
        state.with_file_name(name)
    }

    /// Opens (or starts) the journal at `path`, reading what earlier applies left.
    /// Unreadable lines are skipped: the journal only ever adds lookups, never writes.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut earlier = HashMap::new();
        match File::open(path) {
            Ok(f) => {
                let oldest = SystemTime::now().checked_sub(MAX_AGE).unwrap_or(UNIX_EPOCH);
                for line in BufReader::new(f).lines() {
                    let Ok(e) = serde_json::from_str::<Entry>(&line?) else {
                        continue;
                    };
                    let at = UNIX_EPOCH + Duration::from_secs_f64(e.at.max(0.0));
                    if at >= oldest {
                        earlier.insert(e.anchor, at);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(CreateJournal {
            path: path.to_path_buf(),
            earlier,
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// When an earlier apply sent a create for `anchor`, if it did.
    pub fn sent_earlier(&self, anchor: &str) -> Option<SystemTime> {
        self.earlier.get(anchor).copied()
    }

    /// Records that creates for `anchors` are about to be sent, durably (the call
    /// returns after the file is synced).
    pub fn record<'a>(&self, anchors: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let now = SystemTime::now();
        let at = epoch_secs(now);
        let mut text = String::new();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        for anchor in anchors {
            sent.insert(anchor.to_string(), now);
            push_line(&mut text, anchor, at)?;
        }
        if text.is_empty() {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Rewrites the journal to hold only `unknown`: the creates (of this apply or an
    /// earlier one) whose outcome is still not known. Each keeps the time it was sent.
    pub fn settle<'a>(&self, unknown: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        for anchor in unknown {
            let Some(at) = sent.get(anchor).or_else(|| self.earlier.get(anchor)) else {
                continue;
            };
            let at = epoch_secs(*at);
            push_line(&mut text, anchor, at)?;
        }
        if text.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let tmp = self.path.with_extension("creates.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)
    }
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Appends one journal line (JSON) for `anchor` sent at `at`.
fn push_line(text: &mut String, anchor: &str, at: f64) -> io::Result<()> {
    let entry = Entry {
        anchor: anchor.to_string(),
        at,
    };
    text.push_str(&serde_json::to_string(&entry).map_err(io::Error::other)?);
    text.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_sent_survive_the_process_and_settle_keeps_only_the_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = CreateJournal::path_for_state(&dir.path().join("state.json"));
        assert_eq!(path, dir.path().join("state.json.creates"));

        let first = CreateJournal::open(&path).unwrap();
        assert_eq!(first.sent_earlier("a"), None);
        first.record(["a", "b"]).unwrap();
        first.record(["c"]).unwrap();
        // The process dies here: the next one sees all three.
        let second = CreateJournal::open(&path).unwrap();
        for a in ["a", "b", "c"] {
            assert!(second.sent_earlier(a).is_some(), "{a}");
        }
        // The second apply learns a and c, sends d, and is cut off before d's answer.
        second.record(["d"]).unwrap();
        second.settle(["b", "d", "never-sent"]).unwrap();
        let third = CreateJournal::open(&path).unwrap();
        assert!(third.sent_earlier("a").is_none());
        assert!(third.sent_earlier("b").is_some());
        assert!(third.sent_earlier("c").is_none());
        assert!(third.sent_earlier("d").is_some());
        assert!(third.sent_earlier("never-sent").is_none());
        third.settle([]).unwrap();
        assert!(!path.exists(), "an empty journal is removed");
    }

    #[test]
    fn old_and_garbled_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let old = SystemTime::now() - MAX_AGE - Duration::from_secs(60);
        let old = old.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        std::fs::write(
            &path,
            format!("{{\"anchor\":\"old\",\"at\":{old}}}\nnot json\n{{\"anchor\":\"x\"\n"),
        )
        .unwrap();
        let j = CreateJournal::open(&path).unwrap();
        assert!(j.sent_earlier("old").is_none());
        assert!(j.earlier.is_empty());
    }
}
