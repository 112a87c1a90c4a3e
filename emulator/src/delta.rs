//! Delta queries (`/users/delta`, `/groups/delta`): rounds of pages linked by `@odata.nextLink`
//! (`$skiptoken`) ending in `@odata.deltaLink` (`$deltatoken`); changed objects since a token,
//! `@removed` for deletions (`changed` = soft-deleted, `deleted` = gone), `members@delta` on
//! groups, and 410 Gone for unknown or expired tokens (notes/03-delta.md).

use crate::errors::{GraphError, GraphResult};
use crate::model::{DirObject, Kind};
use crate::store::Directory;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// Server-side delta state: issued delta tokens and pending pages.
#[derive(Debug, Default, Clone)]
pub struct DeltaStore {
    tokens: HashMap<String, DeltaToken>,
    pages: HashMap<String, Pending>,
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
    /// Page size.
    pub page_size: usize,
}

fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn gone(root: &str, kind: Kind) -> GraphError {
    GraphError::new(
        410,
        "syncStateNotFound",
        "The sync state is not found or has expired. Restart the delta round without a token to resynchronize.",
    )
    .with_header("Location", format!("{root}/{}/delta?$deltatoken=", kind.set()))
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

    /// Serves one delta request.
    pub fn serve(&mut self, dir: &Directory, req: DeltaRequest<'_>) -> GraphResult<Value> {
        let now = Instant::now();
        let live = |issued: Instant| now.saturating_duration_since(issued) < req.lifetime;
        self.tokens.retain(|_, t| live(t.round.issued));
        self.pages.retain(|_, p| live(p.round.issued));
        let kind = req.kind;
        let (round, pending_key) = if let Some(skip) = req.skiptoken {
            match self.pages.get(skip) {
                Some(p) if p.round.kind == kind => (p.round.clone(), Some(skip.to_string())),
                _ => return Err(gone(req.root, kind)),
            }
        } else {
            let round = Round {
                kind,
                select: req.select.clone(),
                ids: req.ids.clone(),
                issued: now,
            };
            match req.deltatoken {
                Some("latest") => {
                    let token = new_token();
                    self.tokens.insert(
                        token.clone(),
                        DeltaToken {
                            round,
                            since: dir.seq,
                        },
                    );
                    return Ok(self.page(
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
                        return Err(gone(req.root, kind));
                    };
                    if tok.round.kind != kind {
                        return Err(gone(req.root, kind));
                    }
                    let items = collect(dir, &tok.round, Some(tok.since));
                    let round = Round {
                        issued: now,
                        ..tok.round
                    };
                    let key = self.park(&round, items, dir.seq);
                    (round, Some(key))
                }
                _ => {
                    let items = collect(dir, &round, None);
                    let key = self.park(&round, items, dir.seq);
                    (round, Some(key))
                }
            }
        };
        let Some(key) = pending_key else {
            return Err(gone(req.root, kind));
        };
        let Some(mut pending) = self.pages.remove(&key) else {
            return Err(gone(req.root, kind));
        };
        let take = req.page_size.min(pending.items.len());
        let page: Vec<Value> = pending.items.drain(..take).collect();
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
            Ok(self.page(req.root, kind, &round.select, page, None, Some(&token)))
        } else {
            let next = new_token();
            self.pages.insert(next.clone(), pending);
            Ok(self.page(req.root, kind, &round.select, page, Some(&next), None))
        }
    }

    fn page(
        &self,
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

fn render(dir: &Directory, o: &DirObject, round: &Round, since: Option<u64>) -> Value {
    let mut m = o.render(round.select.as_deref());
    if o.kind == Kind::Group && wants_members(&round.select) {
        let list: Vec<Value> = match since {
            None => o
                .members
                .iter()
                .filter(|id| dir.object(id).is_some())
                .map(|id| member_ref(dir, id, None))
                .collect(),
            Some(s) => {
                let mut last: BTreeMap<&str, (&crate::store::MemberChange, usize)> =
                    BTreeMap::new();
                for (i, c) in dir
                    .member_log
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.seq > s && c.group == o.id)
                {
                    last.insert(c.member.as_str(), (c, i));
                }
                let mut changes: Vec<_> = last.into_values().collect();
                changes.sort_by_key(|(_, i)| *i);
                changes
                    .into_iter()
                    .map(|(c, _)| {
                        let mut r = member_ref(dir, &c.member, Some(c.member_kind));
                        if !c.added
                            && let Some(obj) = r.as_object_mut()
                        {
                            obj.insert("@removed".into(), json!({"reason": "deleted"}));
                        }
                        r
                    })
                    .collect()
            }
        };
        if since.is_none() || !list.is_empty() {
            m.insert("members@delta".into(), Value::Array(list));
        }
    }
    Value::Object(m)
}

fn collect(dir: &Directory, round: &Round, since: Option<u64>) -> Vec<Value> {
    let pool = dir.pool(round.kind);
    let wanted = |id: &str| {
        round
            .ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|x| x.eq_ignore_ascii_case(id)))
    };
    let mut items: Vec<(u64, Value)> = pool
        .values()
        .filter(|o| wanted(&o.id) && since.is_none_or(|s| o.version > s))
        .map(|o| (o.version, render(dir, o, round, since)))
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
