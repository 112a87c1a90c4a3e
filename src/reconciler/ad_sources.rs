//! The AD side of the engine: one edge per source (domain or forest) of the policy, each
//! with its own memory of the last read, so each source is read in full or as a delta
//! on its own terms, and the planner gets them merged into one snapshot.
//!
//! The rules:
//! * every source is read every cycle, and one that fails fails the cycle: a plan is
//!   never made from some of the sources (no "half the company left scope");
//! * a source's DC is picked first (failover: the first of its URLs that connects and
//!   binds); a read that fails half-way is not retried on another DC;
//! * watermarks are per source and per DC: USNs mean nothing on another DC, so when
//!   another DC serves the source than last time, that source is read in full;
//! * a delta of one source can rename or delete members of another source's groups (a
//!   universal group with members in another domain of the forest): those groups'
//!   member values are fixed too, as a domain controller would.

use super::edges::AdEdge;
use super::errors::CycleError;
use crate::ad::ldap::Watermark;
use crate::ad::merge::{Relinks, apply_delta_with_relinks, relink_groups, relinks_between};
use crate::model::SourceSnapshot;
use crate::policy::LoadedPolicy;
use crate::state::{AdWatermark, CycleKind, State};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::time::Duration;

/// One source's last successful read.
struct AdMemory {
    snapshot: SourceSnapshot,
    watermark: Option<Watermark>,
    taken_at: DateTime<Utc>,
    /// The DC (URL) it came from: a delta from another DC is impossible.
    dc: String,
}

struct Slot {
    edge: Box<dyn AdEdge>,
    mem: Option<AdMemory>,
    /// The forest's tombstone lifetime, once read.
    tombstone_lifetime: Option<Duration>,
    /// The DC [`AdSources::prepare`] connected to for the read that follows.
    dc: Option<String>,
}

/// What a read of every source did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadSummary {
    /// Entries read (full: everything; delta: what changed), over all sources.
    pub entries: u64,
    /// Every source had to be read in full.
    pub all_full: bool,
}

/// Every AD source of the policy, and what each read last.
pub struct AdSources {
    slots: Vec<Slot>,
}

impl AdSources {
    pub fn new(edges: Vec<Box<dyn AdEdge>>) -> Self {
        AdSources {
            slots: edges
                .into_iter()
                .map(|edge| Slot {
                    edge,
                    mem: None,
                    tombstone_lifetime: None,
                    dc: None,
                })
                .collect(),
        }
    }

    pub fn edges(&self) -> impl Iterator<Item = &dyn AdEdge> {
        self.slots.iter().map(|s| s.edge.as_ref())
    }

    /// Forgets every read (the next read is full).
    pub fn forget(&mut self) {
        for s in &mut self.slots {
            s.mem = None;
        }
    }

    /// Every source has been read before.
    pub fn have_all(&self) -> bool {
        !self.slots.is_empty() && self.slots.iter().all(|s| s.mem.is_some())
    }

    /// When the oldest source's memory was read (a delta is bounded by it).
    pub fn oldest_read_at(&self) -> Option<DateTime<Utc>> {
        self.slots
            .iter()
            .filter_map(|s| s.mem.as_ref().map(|m| m.taken_at))
            .min()
    }

    /// The shortest tombstone lifetime of the sources' forests, when known.
    pub fn tombstone_lifetime(&self) -> Option<Duration> {
        self.slots.iter().filter_map(|s| s.tombstone_lifetime).min()
    }

    /// The snapshot to plan from: the one source's read, or every source's side by side.
    pub fn snapshot(&self) -> Option<Cow<'_, SourceSnapshot>> {
        let mems: Vec<&SourceSnapshot> = self
            .slots
            .iter()
            .map(|s| s.mem.as_ref().map(|m| &m.snapshot))
            .collect::<Option<_>>()?;
        Some(match mems.as_slice() {
            [one] => Cow::Borrowed(*one),
            _ => Cow::Owned(crate::sources::merge(mems)),
        })
    }

    /// Reads every source (a delta where `kind` and its memory allow, else in full). Any
    /// source's failure fails the whole read; with several sources the error names it.
    pub async fn read(
        &mut self,
        policy: &mut LoadedPolicy,
        state: &mut State,
        kind: CycleKind,
        now: DateTime<Utc>,
    ) -> Result<ReadSummary, CycleError> {
        self.prepare(policy, state).await?;
        self.read_prepared(policy, state, kind, now).await
    }

    /// Connects to each source's DC and follows the policy's renamed DNs: the part of a
    /// read that changes the policy, done first so that the read itself borrows the
    /// policy shared (and Entra can be read at the same time).
    pub async fn prepare(
        &mut self,
        policy: &mut LoadedPolicy,
        state: &mut State,
    ) -> Result<(), CycleError> {
        // Warnings from the last follow of renamed scope DNs are replaced, not kept.
        policy.warnings.retain(|w| w.code != "scope-dn-renamed");
        let several = self.slots.len() > 1;
        for slot in &mut self.slots {
            let prepared = async {
                let dc = slot.edge.connect().await?;
                slot.edge.prepare(policy, state).await?;
                Ok::<_, CycleError>(dc)
            }
            .await;
            match prepared {
                Ok(dc) => slot.dc = Some(dc),
                Err(error) if several => {
                    return Err(CycleError::Source {
                        name: slot.edge.source_name(),
                        error: Box::new(error),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Reads every source [`AdSources::prepare`] connected to.
    pub async fn read_prepared(
        &mut self,
        policy: &LoadedPolicy,
        state: &mut State,
        kind: CycleKind,
        now: DateTime<Utc>,
    ) -> Result<ReadSummary, CycleError> {
        let several = self.slots.len() > 1;
        let mut summary = ReadSummary {
            entries: 0,
            all_full: true,
        };
        for i in 0..self.slots.len() {
            match self.read_one(i, policy, state, kind, now).await {
                Ok((entries, full)) => {
                    summary.entries += entries;
                    summary.all_full &= full;
                }
                Err(error) if several => {
                    return Err(CycleError::Source {
                        name: self.slots[i].edge.source_name(),
                        error: Box::new(error),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(summary)
    }

    /// The snapshot to plan from, taken out of memory (the next read is full): a one-off
    /// read (`plan`) keeps no second copy of the one source's snapshot.
    pub fn take_snapshot(&mut self) -> Option<SourceSnapshot> {
        if self.slots.len() == 1 {
            return self.slots[0].mem.take().map(|m| m.snapshot);
        }
        let taken = self.snapshot().map(Cow::into_owned);
        self.forget();
        taken
    }

    /// Reads source `i`; returns the entries read and whether it was a full read.
    async fn read_one(
        &mut self,
        i: usize,
        policy: &LoadedPolicy,
        state: &mut State,
        kind: CycleKind,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool), CycleError> {
        let several = self.slots.len() > 1;
        let slot = &mut self.slots[i];
        let name = slot.edge.source_name();
        let Some(dc) = slot.dc.take() else {
            return Err(CycleError::Internal(format!(
                "source {name} read before it was prepared"
            )));
        };
        let mut before = None;
        if let Some(mem) = &slot.mem
            && mem.dc != dc
        {
            tracing::warn!(
                source = %name,
                from = %mem.dc,
                to = %dc,
                "another domain controller serves the source now: reading it in full (USNs are per DC)"
            );
            before = slot.mem.take().map(|m| m.snapshot);
        }
        let since = match kind {
            CycleKind::Delta => slot.mem.as_ref().and_then(|m| m.watermark),
            CycleKind::Full => None,
        };
        if let Some(wm) = since {
            match slot.edge.read_delta(policy, &wm).await {
                Ok(Some(delta)) => {
                    let entries =
                        (delta.changed.len() + delta.deleted.len() + delta.moved_out.len()) as u64;
                    let new_wm = delta.new_watermark;
                    let mut relinks = Relinks::default();
                    if let Some(mem) = &mut slot.mem {
                        let (merged, r) = apply_delta_with_relinks(&mut mem.snapshot, delta);
                        if let Some(part) = mem.snapshot.parts.first_mut() {
                            part.highest_usn = Some(new_wm.highest_usn);
                        }
                        tracing::info!(
                            source = %name,
                            changed = merged.changed,
                            added = merged.added,
                            removed = merged.removed,
                            groups_relinked = merged.groups_relinked,
                            usn = new_wm.highest_usn,
                            "AD delta folded into the last snapshot"
                        );
                        mem.watermark = Some(new_wm);
                        mem.taken_at = now;
                        relinks = r;
                    }
                    remember_watermark(state, &name, &dc, new_wm, now);
                    self.relink_others(i, &relinks);
                    return Ok((entries, false));
                }
                Ok(None) => {}
                Err(CycleError::Ldap(e)) if e.requires_full_read() => {
                    tracing::warn!(source = %name, error = %e, "AD delta impossible; reading the source in full");
                }
                Err(e) => return Err(e),
            }
        }
        if !several {
            // Only relinks across sources need the last snapshot: with one source it
            // goes before the full read, so two are never held at once.
            slot.mem = None;
        }
        let full = slot.edge.read_full(policy).await?;
        if slot.tombstone_lifetime.is_none() {
            match slot.edge.tombstone_lifetime().await {
                Ok(t) => slot.tombstone_lifetime = t,
                Err(e) => {
                    tracing::warn!(source = %name, error = %e, "cannot read the tombstone lifetime; deltas are bounded by fullEvery only")
                }
            }
        }
        let entries = full.snapshot.objects.len() as u64;
        if let Some(wm) = full.watermark {
            remember_watermark(state, &name, &dc, wm, now);
        }
        let before = before.or_else(|| slot.mem.take().map(|m| m.snapshot));
        let relinks = match &before {
            Some(b) if self.slots.len() > 1 => relinks_between(b, &full.snapshot),
            _ => Relinks::default(),
        };
        self.slots[i].mem = Some(AdMemory {
            snapshot: full.snapshot,
            watermark: full.watermark,
            taken_at: now,
            dc,
        });
        self.relink_others(i, &relinks);
        Ok((entries, true))
    }

    /// Fixes the member values of the other sources' groups after source `i` moved or
    /// deleted objects.
    fn relink_others(&mut self, i: usize, relinks: &Relinks) {
        if relinks.is_empty() {
            return;
        }
        for (j, other) in self.slots.iter_mut().enumerate() {
            if j == i {
                continue;
            }
            if let Some(mem) = &mut other.mem {
                let n = relink_groups(&mut mem.snapshot, relinks);
                if n > 0 {
                    tracing::info!(
                        source = %other.edge.source_name(),
                        groups_relinked = n,
                        "members moved or deleted in another source: group member values fixed"
                    );
                }
            }
        }
    }
}

/// Records a source's watermark under `source@DC`: USNs are per DC.
fn remember_watermark(
    state: &mut State,
    source: &str,
    dc: &str,
    wm: Watermark,
    now: DateTime<Utc>,
) {
    state.ad_watermarks.insert(
        watermark_key(source, dc),
        AdWatermark {
            invocation_id: wm.invocation_id,
            highest_usn: wm.highest_usn,
            taken_at: now,
        },
    );
}

/// The state file's key of a source's watermark on one DC.
pub fn watermark_key(source: &str, dc: &str) -> String {
    format!("{source}@{dc}")
}
