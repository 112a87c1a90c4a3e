//! Delta queries (`/users/delta`, `/groups/delta`): rounds of pages linked by `@odata.nextLink`
//! (`$skiptoken`) ending in `@odata.deltaLink` (`$deltatoken`); changed objects since a token,
//! `@removed` for deletions (`changed` = soft-deleted, `deleted` = gone), `members@delta` on
//! groups (notes/03-delta.md).
//!
//! As Graph documents it:
//! - objects carry the selected properties that have a value; a property never set is left out,
//!   one cleared since it was set comes as `null` (group: delta, "Default: return the same
//!   properties as initial delta request"; users-delta-initial-page.json);
//! - `members@delta` lists every member in the initial round (left out for a group without
//!   members) and the changes in later rounds; a group with more members than
//!   [`DeltaRequest::members_per_item`] comes back several times with the next chunk of its
//!   members (delta-query-groups, "Paging through members in a large group");
//! - a token past its lifetime (7 days for directory objects) answers 400 `syncStateNotFound`
//!   ("The sync state generation is not found. The delta token is expired…", Microsoft 365 dev
//!   blog of 2020-07-03 and the errors page); a token the service no longer knows answers
//!   410 Gone with a `Location` header holding an empty `$deltatoken` (delta query overview,
//!   "Synchronization reset"). [`DeltaStore::expire_all`] and [`DeltaStore::reset_all`] make
//!   either happen on demand for tests.
//!
//! Known simplifications: a change of a property the round did not select still returns the
//! object (a replay, which clients must accept anyway); `Prefer: return=minimal` is ignored
//! (all selected properties come back, which the documentation allows by default).

use crate::errors::{GraphError, GraphResult};
use crate::model::{DirObject, Kind};
use crate::store::{Directory, MemberChange};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Round {
    kind: Kind,
    select: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    issued: Instant,
}

#[derive(Debug, Clone)]
struct DeltaToken {
    round: Round,
    since: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    round: Round,
    items: VecDeque<Value>,
    watermark: u64,
}

/// Remembered ids of expired or reset tokens, so that their answer says why; beyond this many
/// the oldest knowledge is dropped and such a token answers like an unknown one (410).
const FORGOTTEN_LIMIT: usize = 100_000;

/// Server-side delta state: issued delta tokens and pending pages.
#[derive(Debug, Default, Clone)]
pub struct DeltaStore {
    tokens: HashMap<String, DeltaToken>,
    pages: HashMap<String, Pending>,
    /// Tokens and skip tokens past their lifetime (400 `syncStateNotFound`).
    expired: HashSet<String>,
    /// Tokens and skip tokens whose sync state was reset (410 Gone, `resyncRequired`).
    reset: HashSet<String>,
}

/// Inputs of one delta request.
pub struct DeltaRequest<'a> {
    /// users or groups.
    pub kind: Kind,
    /// `$select` of the initial request.
    pub select: Option<Vec<String>>,
    /// `id eq` filter of the initial request.
    pub ids: Option<Vec<String>>,
    /// `$skiptoken`.
    pub skiptoken: Option<&'a str>,
    /// `$deltatoken`.
    pub deltatoken: Option<&'a str>,
    /// Graph root URL for links.
    pub root: &'a str,
    /// Token lifetime.
    pub lifetime: Duration,
    /// Page size (items per page).
    pub page_size: usize,
    /// Most `members@delta` entries in one group item; a larger list is split over several
    /// items of the same group.
    pub members_per_item: usize,
}

fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn gone(root: &str, kind: Kind, code: &str) -> GraphError {
    GraphError::new(
        410,
        code,
        "The sync state is not found or has expired. Restart the delta round without a token to resynchronize.",
    )
    .with_header("Location", format!("{root}/{}/delta?$deltatoken=", kind.set()))
}

fn expired() -> GraphError {
    GraphError::new(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

fn remember(set: &mut HashSet<String>, ids: impl IntoIterator<Item = String>) {
    if set.len() > FORGOTTEN_LIMIT {
        set.clear();
    }
    set.extend(ids);
}

impl DeltaStore {
    /// Keeps the items of a new round for paging; returns the key of its pending pages.
    fn park(&mut self, round: &Round, items: Vec<Value>, watermark: u64) -> String {
        let key = new_token();
        self.pages.insert(
            key.clone(),
            Pending {
                round: round.clone(),
                items: items.into(),
                watermark,
            },
        );
        key
    }

    /// Every token and skip token issued so far expires now, as if its lifetime had passed:
    /// using one answers 400 `syncStateNotFound`.
    pub fn expire_all(&mut self) {
        let ids: Vec<String> = self.tokens.drain().map(|(k, _)| k).collect();
        remember(&mut self.expired, ids);
        let ids: Vec<String> = self.pages.drain().map(|(k, _)| k).collect();
        remember(&mut self.expired, ids);
    }

    /// The service resets the sync state of every token issued so far (maintenance,
    /// migration): using one answers 410 Gone with a `Location` to restart from.
    pub fn reset_all(&mut self) {
        let ids: Vec<String> = self.tokens.drain().map(|(k, _)| k).collect();
        remember(&mut self.reset, ids);
        let ids: Vec<String> = self.pages.drain().map(|(k, _)| k).collect();
        remember(&mut self.reset, ids);
    }

    /// The error for a token that is neither live nor pending.
    fn unusable(&self, token: &str, root: &str, kind: Kind) -> GraphError {
        if self.expired.contains(token) {
            expired()
        } else if self.reset.contains(token) {
            gone(root, kind, "resyncRequired")
        } else {
            gone(root, kind, "syncStateNotFound")
        }
    }

    /// Drops tokens and pending pages past their lifetime, remembering their ids.
    fn expire_old(&mut self, now: Instant, lifetime: Duration) {
        let live = |issued: Instant| now.saturating_duration_since(issued) < lifetime;
        let old: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| !live(t.round.issued))
            .map(|(k, _)| k.clone())
            .chain(
                self.pages
                    .iter()
                    .filter(|(_, p)| !live(p.round.issued))
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        for k in &old {
            self.tokens.remove(k);
            self.pages.remove(k);
        }
        remember(&mut self.expired, old);
    }

    /// Serves one delta request.
    pub fn serve(&mut self, dir: &Directory, req: DeltaRequest<'_>) -> GraphResult<Value> {
        let now = Instant::now();
        self.expire_old(now, req.lifetime);
        let kind = req.kind;
        let shape = Shape {
            members_per_item: req.members_per_item.max(1),
        };
        let (round, pending_key) = if let Some(skip) = req.skiptoken {
            match self.pages.get(skip) {
                Some(p) if p.round.kind == kind => (p.round.clone(), skip.to_string()),
                Some(_) => return Err(gone(req.root, kind, "syncStateNotFound")),
                None => return Err(self.unusable(skip, req.root, kind)),
            }
        } else {
            let round = Round {
                kind,
                select: req.select.clone(),
                ids: req.ids.clone(),
                issued: now,
            };
            match req.deltatoken {
                Some(t) if t.eq_ignore_ascii_case("latest") => {
                    let token = new_token();
                    self.tokens.insert(
                        token.clone(),
                        DeltaToken {
                            round,
                            since: dir.seq,
                        },
                    );
                    return Ok(page(
                        req.root,
                        kind,
                        &req.select,
                        Vec::new(),
                        None,
                        Some(&token),
                    ));
                }
                Some(t) if !t.is_empty() => {
                    let Some(tok) = self.tokens.get(t).cloned() else {
                        return Err(self.unusable(t, req.root, kind));
                    };
                    if tok.round.kind != kind {
                        return Err(gone(req.root, kind, "syncStateNotFound"));
                    }
                    let items = collect(dir, &tok.round, Some(tok.since), shape);
                    let round = Round {
                        issued: now,
                        ..tok.round
                    };
                    let key = self.park(&round, items, dir.seq);
                    (round, key)
                }
                _ => {
                    let items = collect(dir, &round, None, shape);
                    let key = self.park(&round, items, dir.seq);
                    (round, key)
                }
            }
        };
        let Some(mut pending) = self.pages.remove(&pending_key) else {
            return Err(gone(req.root, kind, "syncStateNotFound"));
        };
        let take = req.page_size.min(pending.items.len());
        let items: Vec<Value> = pending.items.drain(..take).collect();
        if pending.items.is_empty() {
            let token = new_token();
            self.tokens.insert(
                token.clone(),
                DeltaToken {
                    round: Round {
                        issued: now,
                        ..round.clone()
                    },
                    since: pending.watermark,
                },
            );
            Ok(page(
                req.root,
                kind,
                &round.select,
                items,
                None,
                Some(&token),
            ))
        } else {
            let next = new_token();
            self.pages.insert(next.clone(), pending);
            Ok(page(
                req.root,
                kind,
                &round.select,
                items,
                Some(&next),
                None,
            ))
        }
    }
}

fn page(
    root: &str,
    kind: Kind,
    select: &Option<Vec<String>>,
    items: Vec<Value>,
    next: Option<&str>,
    delta: Option<&str>,
) -> Value {
    let mut out = Map::new();
    let context = match select {
        Some(s) => format!("{root}/$metadata#{}({})", kind.set(), s.join(",")),
        None => format!("{root}/$metadata#{}", kind.set()),
    };
    out.insert("@odata.context".into(), Value::String(context));
    if let Some(n) = next {
        out.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{root}/{}/delta?$skiptoken={n}", kind.set())),
        );
    }
    if let Some(d) = delta {
        out.insert(
            "@odata.deltaLink".into(),
            Value::String(format!("{root}/{}/delta?$deltatoken={d}", kind.set())),
        );
    }
    out.insert("value".into(), Value::Array(items));
    Value::Object(out)
}

/// How items are cut.
#[derive(Clone, Copy)]
struct Shape {
    members_per_item: usize,
}

fn wants_members(select: &Option<Vec<String>>) -> bool {
    select
        .as_ref()
        .is_none_or(|s| s.iter().any(|p| p == "members"))
}

fn member_ref(dir: &Directory, id: &str, kind: Option<Kind>) -> Value {
    let k = kind.unwrap_or(if dir.groups.contains_key(id) {
        Kind::Group
    } else {
        Kind::User
    });
    json!({"@odata.type": k.odata_type(), "id": id})
}

/// The selected properties of `o` as delta returns them: never-set ones left out, cleared
/// ones as `null`.
fn delta_props(o: &DirObject, select: Option<&[String]>) -> Map<String, Value> {
    let mut m = o.render(select);
    m.retain(|k, v| !v.is_null() || o.cleared.contains(k));
    m
}

/// Membership changes since a watermark, by group: the last change of each member, in log
/// order (one pass over the log for the whole round).
fn member_changes_since(dir: &Directory, since: u64) -> HashMap<&str, Vec<&MemberChange>> {
    let mut last: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    for (i, c) in dir
        .member_log
        .iter()
        .enumerate()
        .filter(|(_, c)| c.seq > since)
    {
        last.entry(c.group.as_str())
            .or_default()
            .insert(c.member.as_str(), i);
    }
    last.into_iter()
        .map(|(g, by_member)| {
            let mut idx: Vec<usize> = by_member.into_values().collect();
            idx.sort_unstable();
            (g, idx.into_iter().map(|i| &dir.member_log[i]).collect())
        })
        .collect()
}

/// The items of one object: one, or for a group with many members one per chunk of members.
fn render(
    dir: &Directory,
    o: &DirObject,
    round: &Round,
    changes: Option<&HashMap<&str, Vec<&MemberChange>>>,
    shape: Shape,
) -> Vec<Value> {
    let props = delta_props(o, round.select.as_deref());
    if o.kind != Kind::Group || !wants_members(&round.select) {
        return vec![Value::Object(props)];
    }
    let refs: Vec<Value> = match changes {
        None => o
            .members
            .iter()
            .filter(|id| dir.object(id).is_some())
            .map(|id| member_ref(dir, id, None))
            .collect(),
        Some(by_group) => by_group
            .get(o.id.as_str())
            .into_iter()
            .flatten()
            .map(|c| {
                let mut r = member_ref(dir, &c.member, Some(c.member_kind));
                if !c.added
                    && let Some(obj) = r.as_object_mut()
                {
                    obj.insert("@removed".into(), json!({"reason": "deleted"}));
                }
                r
            })
            .collect(),
    };
    if refs.is_empty() {
        return vec![Value::Object(props)];
    }
    refs.chunks(shape.members_per_item)
        .map(|chunk| {
            let mut m = props.clone();
            m.insert("members@delta".into(), Value::Array(chunk.to_vec()));
            Value::Object(m)
        })
        .collect()
}

fn collect(dir: &Directory, round: &Round, since: Option<u64>, shape: Shape) -> Vec<Value> {
    let pool = dir.pool(round.kind);
    let wanted = |id: &str| {
        round
            .ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|x| x.eq_ignore_ascii_case(id)))
    };
    let changes = match since {
        Some(s) if round.kind == Kind::Group && wants_members(&round.select) => {
            Some(member_changes_since(dir, s))
        }
        Some(_) => Some(HashMap::new()),
        None => None,
    };
    let mut items: Vec<(u64, Value)> = pool
        .values()
        .filter(|o| wanted(&o.id) && since.is_none_or(|s| o.version > s))
        .flat_map(|o| {
            render(dir, o, round, changes.as_ref(), shape)
                .into_iter()
                .map(|v| (o.version, v))
        })
        .collect();
    if let Some(s) = since {
        let mut removed: BTreeMap<&str, (u64, &'static str)> = BTreeMap::new();
        for t in dir
            .tombstones
            .iter()
            .filter(|t| t.kind == round.kind && t.seq > s && wanted(&t.id))
        {
            removed.insert(t.id.as_str(), (t.seq, t.reason));
        }
        for (id, (seq, reason)) in removed {
            if pool.get(id).is_some_and(|o| o.version > seq) {
                continue;
            }
            items.push((seq, json!({"id": id, "@removed": {"reason": reason}})));
        }
    }
    items.sort_by_key(|(v, _)| *v);
    items.into_iter().map(|(_, v)| v).collect()
}
