//! An RFC 2849 LDIF reader: a real [`SourceSnapshot`] source for offline planning, demos
//! and tests, so the planner can run against an exported directory without a DC.
//!
//! What it accepts (a content file as `ldifde -f`, `ldapsearch -LLL` or Samba's
//! `ldbsearch` write it):
//!
//! - an optional `version: 1` line, `#` comments (folded or not) anywhere;
//! - folded lines (a physical line starting with one space continues the previous one);
//! - LF and CRLF line endings, records separated by one or more blank lines;
//! - `attr: value`, `attr:: base64` (binary and non-ASCII values), `dn:` and `dn::`;
//! - raw UTF-8 in values and DNs (not strictly RFC 2849, but common);
//! - attribute options: `;binary` and `;range=…` are dropped (the values belong to the
//!   plain attribute), any other option is kept in the lowercased name (`description;lang-de`);
//! - change records with `changetype: add` (their attributes are the entry).
//!
//! What it refuses, with the line and the DN: `attr:< URL` values (reading files named by
//! an input file is a surprise nobody wants in a sync tool), other change types, controls,
//! entries without a 16-byte `objectGUID` (AD always has one; without it there is no
//! anchor), and duplicate DNs or GUIDs (a sign of concatenated exports).
//!
//! The parser works on bytes and borrows unfolded lines from the input, so a 100,000-user
//! export loads in well under a second in a release build.

use crate::model::dn::{DnError, key_within};
use crate::model::{Dn, ObjectGuid, SourceObject, SourceSnapshot};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Why an LDIF input could not be read. Syntax and content errors say where (origin and
/// 1-based line) and, once the record's `dn:` line was read, which entry.
#[derive(Debug, thiserror::Error)]
pub enum LdifError {
    /// The file could not be read at all.
    #[error("cannot read LDIF file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not LDIF we can turn into a snapshot.
    #[error("{origin}:{line}: {}{kind}", dn.as_deref().map(|d| format!("entry {d:?}: ")).unwrap_or_default())]
    Syntax {
        /// File path or other label given by the caller.
        origin: String,
        /// 1-based physical line where the offending logical line (or record) starts.
        line: usize,
        /// The entry's DN, when the error is inside a record whose `dn:` was read.
        dn: Option<String>,
        kind: LdifErrorKind,
    },
}

impl LdifError {
    /// The problem without its position, for tests and callers that branch on it.
    pub fn kind(&self) -> Option<&LdifErrorKind> {
        match self {
            LdifError::Io { .. } => None,
            LdifError::Syntax { kind, .. } => Some(kind),
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            LdifError::Io { .. } => None,
            LdifError::Syntax { line, .. } => Some(*line),
        }
    }

    /// The DN of the entry the error is in, if known.
    pub fn dn(&self) -> Option<&str> {
        match self {
            LdifError::Io { .. } => None,
            LdifError::Syntax { dn, .. } => dn.as_deref(),
        }
    }
}

/// What is wrong at a given line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LdifErrorKind {
    #[error("unsupported LDIF version {0:?} (only `version: 1` exists)")]
    UnsupportedVersion(String),
    #[error("`version:` may only appear once, before the first record")]
    MisplacedVersion,
    #[error("expected `attribute: value`, found no ':'")]
    MissingColon,
    #[error("invalid attribute description {0:?}")]
    BadAttributeName(String),
    #[error("a continuation line (starting with a space) has no line to continue")]
    DanglingContinuation,
    #[error("a record must start with `dn:`, found `{0}:`")]
    MissingDn(String),
    #[error("DN is not valid UTF-8")]
    DnNotUtf8,
    #[error("{0}")]
    BadDn(DnError),
    #[error("invalid base64 in the value of {attr}: {reason}")]
    Base64 { attr: String, reason: String },
    #[error(
        "URL value `{attr}:< {url}` is not supported; inline the value (`{attr}:: <base64>`) instead"
    )]
    UrlValue { attr: String, url: String },
    #[error(
        "changetype {0:?} is not supported: only content records and `changetype: add` describe a directory snapshot"
    )]
    UnsupportedChangeType(String),
    #[error("`changetype:` must directly follow the `dn:` line")]
    MisplacedChangeType,
    #[error("LDIF controls (`control:`) are not supported in a snapshot")]
    Control,
    #[error("objectGUID is missing (every AD object has one: export it with the entry)")]
    MissingGuid,
    #[error(
        "objectGUID must be exactly one 16-byte value, got {values} value(s), first {len} bytes"
    )]
    BadGuid { values: usize, len: usize },
    #[error("duplicate DN, first defined at line {first_line}")]
    DuplicateDn { first_line: usize },
    #[error("objectGUID {guid} is already used by {other_dn:?} (line {other_line})")]
    DuplicateGuid {
        guid: String,
        other_dn: String,
        other_line: usize,
    },
    #[error("{0}")]
    Object(String),
}

/// One LDIF record before it becomes a [`SourceObject`]: the DN as written (decoded from
/// base64 when given as `dn::`), where it starts, and its attributes in file order with
/// values of the same attribute gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifRecord {
    /// 1-based line of the `dn:` line.
    pub line: usize,
    pub dn: String,
    /// (lowercased attribute name with kept options, values).
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl LdifRecord {
    /// All values of an attribute (name in any case).
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }
}

/// Iterates over the records of an LDIF text. Stops after the first error: LDIF has no
/// reliable resynchronisation point, and a half-read snapshot must never be planned on.
pub struct LdifRecords<'a> {
    lines: PhysicalLines<'a>,
    origin: &'a str,
    started: bool,
    failed: bool,
}

/// Parses LDIF text (bytes, so a file that is not entirely UTF-8 still yields precise
/// errors) into records. `origin` labels errors, e.g. the file path.
pub fn parse_ldif<'a>(data: &'a [u8], origin: &'a str) -> LdifRecords<'a> {
    LdifRecords {
        lines: PhysicalLines::new(data, 0, true),
        origin,
        started: false,
        failed: false,
    }
}

/// Reads an LDIF text into a snapshot whose `server` is `origin`. The base DN is the
/// deepest DN that contains every entry (the domain root for a full export).
pub fn read_ldif(text: &str, origin: &str) -> Result<SourceSnapshot, LdifError> {
    read_ldif_bytes(text.as_bytes(), origin)
}

/// Inputs smaller than this are parsed on one thread: splitting costs more than it saves.
const PARALLEL_CHUNK_MIN: usize = 4 << 20;

/// Like [`read_ldif`], for bytes as read from disk.
///
/// Large inputs are split at blank lines (which always end a record) and the pieces are
/// parsed on up to `available_parallelism` threads; results, errors and their order are
/// the same as a sequential read because pieces are merged in file order and every
/// cross-record check (duplicates, base DN) runs during the merge.
pub fn read_ldif_bytes(data: &[u8], origin: &str) -> Result<SourceSnapshot, LdifError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    read_in_pieces(data, origin, threads.min(data.len() / PARALLEL_CHUNK_MIN))
}

/// [`read_ldif_bytes`] with the input split into at most `n` pieces parsed concurrently.
fn read_in_pieces(data: &[u8], origin: &str, n: usize) -> Result<SourceSnapshot, LdifError> {
    let pieces = split_at_blank_lines(data, n.max(1));
    let parsed: Vec<(Vec<Parsed>, Option<LdifError>)> = if pieces.len() == 1 {
        vec![parse_piece(data, 0, 0, origin)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|&(start, end, line0)| {
                    scope.spawn(move || parse_piece(&data[start..end], start, line0, origin))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };

    let mut merger = Merger::new(origin, parsed.iter().map(|(p, _)| p.len()).sum::<usize>());
    for (piece, error) in parsed {
        merger.add(piece, error)?;
    }
    Ok(merger.finish())
}

/// Joins parsed pieces in file order, running the checks that span records (duplicate
/// DNs and GUIDs, the common base DN).
struct Merger<'a> {
    origin: &'a str,
    objects: Vec<std::sync::Arc<SourceObject>>,
    // Both maps exist to catch concatenated or hand-edited exports before the planner
    // sees two objects claiming one identity.
    by_dn: HashMap<String, usize>,
    by_guid: HashMap<[u8; 16], (usize, usize)>,
    base: Option<Dn>,
}

impl<'a> Merger<'a> {
    fn new(origin: &'a str, capacity: usize) -> Self {
        Self {
            origin,
            objects: Vec::with_capacity(capacity),
            by_dn: HashMap::with_capacity(capacity),
            by_guid: HashMap::with_capacity(capacity),
            base: None,
        }
    }

    /// Adds one piece's objects; a piece's error comes after its objects in the file.
    fn add(&mut self, piece: Vec<Parsed>, error: Option<LdifError>) -> Result<(), LdifError> {
        for Parsed { line, object } in piece {
            let err = |kind| LdifError::Syntax {
                origin: self.origin.to_string(),
                line,
                dn: Some(object.dn.to_string()),
                kind,
            };
            if let Some(first_line) = self.by_dn.get(object.dn.key()) {
                return Err(err(LdifErrorKind::DuplicateDn {
                    first_line: *first_line,
                }));
            }
            if let Some(&(other_line, idx)) = self.by_guid.get(&object.guid.0) {
                return Err(err(LdifErrorKind::DuplicateGuid {
                    guid: object.guid.to_string(),
                    other_dn: self.objects[idx].dn.to_string(),
                    other_line,
                }));
            }
            self.by_dn.insert(object.dn.key().to_string(), line);
            self.by_guid
                .insert(object.guid.0, (line, self.objects.len()));
            self.base = Some(match self.base.take() {
                None => object.dn.clone(),
                Some(b) => common_ancestor(b, &object.dn),
            });
            self.objects.push(std::sync::Arc::new(object));
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn finish(self) -> SourceSnapshot {
        SourceSnapshot {
            server: self.origin.to_string(),
            base_dn: self.base,
            highest_usn: None,
            objects: self.objects,
            parts: Vec::new(),
        }
    }
}

/// How much of a file is read and parsed at a time: the whole file is never held, so a
/// 200 MB export costs its objects, not its text as well.
const STREAM_CHUNK: usize = 8 << 20;

/// Reads an LDIF file into a snapshot whose `server` is the path.
///
/// The file is read in chunks cut after blank lines (which always end a record); each
/// round parses one chunk per core and merges them in file order, so results and errors
/// are those of a sequential read.
pub fn read_ldif_file(path: impl AsRef<Path>) -> Result<SourceSnapshot, LdifError> {
    read_file_in_chunks(path.as_ref(), STREAM_CHUNK)
}

fn read_file_in_chunks(path: &Path, chunk: usize) -> Result<SourceSnapshot, LdifError> {
    use std::io::Read;
    let origin = path.display().to_string();
    let io = |source| LdifError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4);
    let mut merger = Merger::new(&origin, 0);
    let (mut offset, mut lines_before) = (0usize, 0usize);
    let mut carry: Vec<u8> = Vec::new();
    let mut eof = false;
    while !eof {
        // One round: up to `threads` chunks, each ending after a blank line.
        let mut chunks: Vec<(Vec<u8>, usize, usize)> = Vec::with_capacity(threads);
        while chunks.len() < threads && !eof {
            let mut buf = std::mem::take(&mut carry);
            let want = buf.len() + chunk;
            while buf.len() < want {
                let before = buf.len();
                buf.resize(want, 0);
                let n = file.read(&mut buf[before..]).map_err(io)?;
                buf.truncate(before + n);
                if n == 0 {
                    eof = true;
                    break;
                }
            }
            let cut = match (eof, last_blank_line_end(&buf)) {
                (true, _) => buf.len(),
                (false, Some(cut)) => cut,
                // One record longer than a chunk: read on until it ends.
                (false, None) => {
                    carry = buf;
                    continue;
                }
            };
            carry = buf.split_off(cut);
            let lines = buf.iter().filter(|&&b| b == b'\n').count();
            chunks.push((buf, offset, lines_before));
            offset += cut;
            lines_before += lines;
        }
        let parsed: Vec<(Vec<Parsed>, Option<LdifError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|(data, off, lines)| {
                    let origin = origin.as_str();
                    scope.spawn(move || parse_piece(data, *off, *lines, origin))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        drop(chunks);
        for (piece, error) in parsed {
            merger.add(piece, error)?;
        }
    }
    Ok(merger.finish())
}

/// The end of the last blank line in `data` (a record boundary), if any.
fn last_blank_line_end(data: &[u8]) -> Option<usize> {
    let lf = data.windows(2).rposition(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = data.windows(3).rposition(|w| w == b"\n\r\n").map(|i| i + 3);
    lf.max(crlf)
}

/// An object and the line its record starts on.
struct Parsed {
    line: usize,
    object: SourceObject,
}

/// Up to `n` (start, end, lines before start) byte ranges covering `data`, each cut just
/// after an empty line so that no record, folded line or comment spans two ranges.
fn split_at_blank_lines(data: &[u8], n: usize) -> Vec<(usize, usize, usize)> {
    let mut pieces = Vec::with_capacity(n);
    let (mut start, mut lines_before) = (0, 0);
    for k in 1..n {
        let target = (data.len() * k / n).max(start);
        let Some(cut) = data[target..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| target + i + 2)
            .or_else(|| {
                data[target..]
                    .windows(3)
                    .position(|w| w == b"\n\r\n")
                    .map(|i| target + i + 3)
            })
        else {
            break;
        };
        pieces.push((start, cut, lines_before));
        lines_before += data[start..cut].iter().filter(|&&b| b == b'\n').count();
        start = cut;
    }
    pieces.push((start, data.len(), lines_before));
    pieces
}

/// Parses one range of the input into objects, reusing one attribute buffer across
/// records (allocation, not parsing, dominates the cost of a large export). Returns the
/// objects read before the first error too, so the merge reports errors in file order.
fn parse_piece(
    data: &[u8],
    offset: usize,
    lines_before: usize,
    origin: &str,
) -> (Vec<Parsed>, Option<LdifError>) {
    let mut records = LdifRecords {
        lines: PhysicalLines::new(data, lines_before, offset == 0),
        origin,
        started: offset != 0,
        failed: false,
    };
    let mut out = Vec::with_capacity(data.len() / 1024);
    let mut attrs: Vec<(String, Vec<Vec<u8>>)> = Vec::with_capacity(64);
    while let Some(r) = records.next_record_into(&mut attrs) {
        let (line, raw_dn) = match r {
            Ok(x) => x,
            Err(e) => return (out, Some(e)),
        };
        let object = Dn::parse(&raw_dn)
            .map_err(LdifErrorKind::BadDn)
            .and_then(|dn| build_object(dn, &mut attrs));
        match object {
            Ok(object) => out.push(Parsed { line, object }),
            Err(kind) => {
                let e = LdifError::Syntax {
                    origin: origin.to_string(),
                    line,
                    dn: Some(raw_dn),
                    kind,
                };
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

/// Builds the [`SourceObject`] for a record, draining `attrs` (names already lowercased)
/// so its buffer can be reused. Same result as [`SourceObject::from_attrs`] (a test holds
/// them equal) without re-allocating every attribute name, and with typed errors.
fn build_object(
    dn: Dn,
    attrs: &mut Vec<(String, Vec<Vec<u8>>)>,
) -> Result<SourceObject, LdifErrorKind> {
    let guid = match attrs.iter().find(|(n, _)| n == "objectguid") {
        None => return Err(LdifErrorKind::MissingGuid),
        Some((_, v)) => match v.as_slice() {
            [g] => ObjectGuid::from_bytes(g).map_err(|_| LdifErrorKind::BadGuid {
                values: 1,
                len: g.len(),
            })?,
            _ => {
                return Err(LdifErrorKind::BadGuid {
                    values: v.len(),
                    len: v.first().map_or(0, Vec::len),
                });
            }
        },
    };
    let object =
        SourceObject::from_attributes(dn, crate::model::Attributes::from_pairs(attrs.drain(..)))
            .map_err(|_| LdifErrorKind::MissingGuid)?;
    debug_assert_eq!(object.guid, guid);
    Ok(object)
}

/// The deepest DN containing both `a` and `b` (possibly the root DN).
fn common_ancestor(a: Dn, b: &Dn) -> Dn {
    let mut cur = a;
    loop {
        if key_within(b.key(), cur.key()) {
            return cur;
        }
        match cur.parent() {
            Some(p) => cur = p,
            // One RDN left and still not an ancestor: only the root DN contains both.
            None => return Dn::parse("").unwrap_or(cur),
        }
    }
}

impl Iterator for LdifRecords<'_> {
    type Item = Result<LdifRecord, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut attrs = Vec::new();
        let r = self
            .next_record_into(&mut attrs)
            .map(|r| r.map(|(line, dn)| LdifRecord { line, dn, attrs }));
        if let Some(Err(_)) = &r {
            self.failed = true;
        }
        r
    }
}

/// A logical (unfolded) line and where it starts.
struct Logical<'a> {
    line: usize,
    text: Cow<'a, [u8]>,
}

/// How a value was written after the attribute description.
enum ValueSpec<'a> {
    Plain(&'a [u8]),
    Base64(&'a [u8]),
    Url(&'a [u8]),
}

impl<'a> LdifRecords<'a> {
    fn error(&self, line: usize, dn: Option<&str>, kind: LdifErrorKind) -> LdifError {
        LdifError::Syntax {
            origin: self.origin.to_string(),
            line,
            dn: dn.map(str::to_string),
            kind,
        }
    }

    /// The next logical line: `None` at end of input, empty text for a blank line
    /// (record separator). Comments are returned too; callers skip them.
    fn next_logical(&mut self) -> Result<Option<Logical<'a>>, LdifError> {
        let Some((line, first)) = self.lines.next() else {
            return Ok(None);
        };
        if first.is_empty() {
            return Ok(Some(Logical {
                line,
                text: Cow::Borrowed(first),
            }));
        }
        if first[0] == b' ' {
            return Err(self.error(line, None, LdifErrorKind::DanglingContinuation));
        }
        let mut owned: Option<Vec<u8>> = None;
        while let Some(next) = self.lines.peek() {
            if next.first() != Some(&b' ') {
                break;
            }
            owned
                .get_or_insert_with(|| first.to_vec())
                .extend_from_slice(&next[1..]);
            self.lines.next();
        }
        Ok(Some(Logical {
            line,
            text: owned.map_or(Cow::Borrowed(first), Cow::Owned),
        }))
    }

    /// Reads the next record's attributes into `attrs` (cleared first) and returns its
    /// line and DN; `None` at end of input.
    fn next_record_into(
        &mut self,
        attrs: &mut Vec<(String, Vec<Vec<u8>>)>,
    ) -> Option<Result<(usize, String), LdifError>> {
        // Skip separators and comments up to the record's first line.
        let first = loop {
            match self.next_logical() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(l)) if l.text.is_empty() || l.text[0] == b'#' => continue,
                Ok(Some(l)) => break l,
            }
        };
        let (name, spec) = match split_attr(&first.text) {
            Ok(x) => x,
            Err(kind) => return Some(Err(self.error(first.line, None, kind))),
        };
        if name.eq_ignore_ascii_case(b"version") {
            if self.started {
                return Some(Err(self.error(
                    first.line,
                    None,
                    LdifErrorKind::MisplacedVersion,
                )));
            }
            self.started = true;
            let v = match self.decode(first.line, None, name, spec) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            if v.trim_ascii() != b"1" {
                let kind =
                    LdifErrorKind::UnsupportedVersion(String::from_utf8_lossy(&v).into_owned());
                return Some(Err(self.error(first.line, None, kind)));
            }
            return self.next_record_into(attrs);
        }
        self.started = true;
        Some(self.record_after_first(first.line, name, spec, attrs))
    }

    fn record_after_first(
        &mut self,
        line: usize,
        name: &[u8],
        spec: ValueSpec<'_>,
        attrs: &mut Vec<(String, Vec<Vec<u8>>)>,
    ) -> Result<(usize, String), LdifError> {
        if !name.eq_ignore_ascii_case(b"dn") {
            let kind = LdifErrorKind::MissingDn(String::from_utf8_lossy(name).into_owned());
            return Err(self.error(line, None, kind));
        }
        let dn_bytes = self.decode(line, None, name, spec)?;
        let dn = String::from_utf8(dn_bytes.into_owned())
            .map_err(|_| self.error(line, None, LdifErrorKind::DnNotUtf8))?;
        attrs.clear();
        let mut first_attr = true;
        loop {
            let l = match self.next_logical()? {
                None => break,
                Some(l) if l.text.is_empty() => break,
                Some(l) if l.text[0] == b'#' => continue,
                Some(l) => l,
            };
            let (name, spec) =
                split_attr(&l.text).map_err(|kind| self.error(l.line, Some(&dn), kind))?;
            let is_first = std::mem::replace(&mut first_attr, false);
            if name.eq_ignore_ascii_case(b"control") && is_first {
                return Err(self.error(l.line, Some(&dn), LdifErrorKind::Control));
            }
            if name.eq_ignore_ascii_case(b"changetype") {
                if !is_first {
                    return Err(self.error(l.line, Some(&dn), LdifErrorKind::MisplacedChangeType));
                }
                let v = self.decode(l.line, Some(&dn), name, spec)?;
                let v = String::from_utf8_lossy(v.trim_ascii());
                if v.eq_ignore_ascii_case("add") {
                    continue;
                }
                let kind = LdifErrorKind::UnsupportedChangeType(v.into_owned());
                return Err(self.error(l.line, Some(&dn), kind));
            }
            let key = attr_key(name).map_err(|kind| self.error(l.line, Some(&dn), kind))?;
            let value = self.decode(l.line, Some(&dn), name, spec)?.into_owned();
            // Values of one attribute are usually adjacent (`member` × thousands): check
            // the last slot first, then the rest; allocate the name only when new.
            let slot = match attrs.last_mut() {
                Some((n, v)) if *n == *key => Some(v),
                _ => attrs.iter_mut().find(|(n, _)| *n == *key).map(|(_, v)| v),
            };
            match slot {
                Some(v) => v.push(value),
                None => attrs.push((key.into_owned(), vec![value])),
            }
        }
        Ok((line, dn))
    }

    /// Decodes a value per its spec; base64 errors and URL values name the attribute.
    fn decode<'v>(
        &self,
        line: usize,
        dn: Option<&str>,
        name: &[u8],
        spec: ValueSpec<'v>,
    ) -> Result<Cow<'v, [u8]>, LdifError> {
        let attr = || String::from_utf8_lossy(name).into_owned();
        match spec {
            ValueSpec::Plain(v) => Ok(Cow::Borrowed(v)),
            ValueSpec::Base64(b) => STANDARD.decode(b).map(Cow::Owned).map_err(|e| {
                let kind = LdifErrorKind::Base64 {
                    attr: attr(),
                    reason: e.to_string(),
                };
                self.error(line, dn, kind)
            }),
            ValueSpec::Url(u) => {
                let kind = LdifErrorKind::UrlValue {
                    attr: attr(),
                    url: String::from_utf8_lossy(u).into_owned(),
                };
                Err(self.error(line, dn, kind))
            }
        }
    }
}

/// Splits `description: value` / `description:: b64` / `description:< url`. Leading
/// spaces of the value are the RFC's FILL and dropped; a trailing CR was already removed.
fn split_attr(text: &[u8]) -> Result<(&[u8], ValueSpec<'_>), LdifErrorKind> {
    let colon = text
        .iter()
        .position(|&b| b == b':')
        .ok_or(LdifErrorKind::MissingColon)?;
    let name = &text[..colon];
    let valid = !name.is_empty()
        && name[0].is_ascii_alphanumeric()
        && name.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b';' | b'=' | b'.' | b'_' | b'*')
        });
    if !valid {
        return Err(LdifErrorKind::BadAttributeName(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let rest = &text[colon + 1..];
    let fill = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&b| b == b' ').count() };
    let spec = match rest.first() {
        Some(b':') => {
            let r = &rest[1..];
            ValueSpec::Base64(&r[fill(r)..])
        }
        Some(b'<') => {
            let r = &rest[1..];
            ValueSpec::Url(&r[fill(r)..])
        }
        _ => ValueSpec::Plain(&rest[fill(rest)..]),
    };
    Ok((name, spec))
}

/// The attribute name under which values are stored: the lowercased type, without the
/// transfer option `binary` and the `range=` option of ranged retrieval (both describe
/// how values travelled, not which attribute they belong to), with other options kept.
fn attr_key(name: &[u8]) -> Result<Cow<'_, str>, LdifErrorKind> {
    // split_attr only lets ASCII through.
    let s = std::str::from_utf8(name)
        .map_err(|_| LdifErrorKind::BadAttributeName(String::from_utf8_lossy(name).into_owned()))?;
    let simple = !s.contains(';') && !s.bytes().any(|b| b.is_ascii_uppercase());
    if simple {
        return Ok(Cow::Borrowed(s));
    }
    let mut parts = s.split(';');
    let mut key = parts.next().unwrap_or_default().to_ascii_lowercase();
    if key.is_empty() {
        return Err(LdifErrorKind::BadAttributeName(s.to_string()));
    }
    for opt in parts {
        let opt = opt.to_ascii_lowercase();
        if opt.is_empty() {
            return Err(LdifErrorKind::BadAttributeName(s.to_string()));
        }
        if opt == "binary" || opt.starts_with("range=") {
            continue;
        }
        key.push(';');
        key.push_str(&opt);
    }
    Ok(Cow::Owned(key))
}

/// Physical lines without their LF or CRLF, numbered from 1, with one line of lookahead.
struct PhysicalLines<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
    /// The line after `pos` and where the one after it starts, once `peek` found it, so
    /// no byte is scanned twice.
    peeked: Option<(&'a [u8], usize)>,
}

impl<'a> PhysicalLines<'a> {
    /// Lines of `data`, numbered from `lines_before + 1`; `at_start` says `data` begins
    /// the input, where a UTF-8 byte order mark is skipped (it is not part of line 1).
    fn new(data: &'a [u8], lines_before: usize, at_start: bool) -> Self {
        let pos = if at_start && data.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        Self {
            data,
            pos,
            line: lines_before,
            peeked: None,
        }
    }

    fn split_at_pos(&self) -> Option<(&'a [u8], usize)> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let (mut line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], self.pos + i + 1),
            None => (rest, self.data.len()),
        };
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        Some((line, next))
    }

    fn peek(&mut self) -> Option<&'a [u8]> {
        if self.peeked.is_none() {
            self.peeked = self.split_at_pos();
        }
        self.peeked.map(|(l, _)| l)
    }

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        let (l, next) = match self.peeked.take() {
            Some(p) => p,
            None => self.split_at_pos()?,
        };
        self.pos = next;
        self.line += 1;
        Some((self.line, l))
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    /// Reading a file in small chunks (records, folded lines and base64 values cut
    /// anywhere) gives exactly what reading it whole gives.
    #[test]
    fn chunked_file_read_equals_whole_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/corp.ldif");
        let whole =
            read_ldif_bytes(&std::fs::read(&path).unwrap(), &path.display().to_string()).unwrap();
        for chunk in [97, 4096, 65536] {
            let chunked = read_file_in_chunks(&path, chunk).unwrap();
            assert_eq!(chunked.objects, whole.objects, "chunk {chunk}");
            assert_eq!(chunked.base_dn, whole.base_dn);
        }
    }

    #[test]
    fn chunked_errors_keep_their_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.ldif");
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!(
                "dn: CN=u{i},DC=c\nobjectGUID:: {}\n\n",
                base64_guid(i)
            ));
        }
        text.push_str("dn: CN=broken,DC=c\nthis line has no colon\n\n");
        std::fs::write(&path, &text).unwrap();
        let whole = read_ldif(&text, &path.display().to_string()).unwrap_err();
        let chunked = read_file_in_chunks(&path, 64).unwrap_err();
        assert_eq!(whole.line(), chunked.line());
        assert_eq!(chunked.line(), Some(152));
    }

    fn base64_guid(i: u8) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([i; 16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectGuid, ObjectKind};

    const GUID_B64: &str = "KtN+mrQKRk2qSC19JzM09g==";

    fn entry(dn: &str, guid_b64: &str, extra: &str) -> String {
        format!("dn: {dn}\nobjectClass: top\nobjectClass: user\nobjectGUID:: {guid_b64}\n{extra}")
    }

    fn guid(n: u8) -> String {
        STANDARD.encode([n; 16])
    }

    fn err_kind(text: &str) -> (LdifErrorKind, usize, Option<String>) {
        match read_ldif(text, "t.ldif") {
            Err(LdifError::Syntax { kind, line, dn, .. }) => (kind, line, dn),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn reads_minimal_entry_and_guid_bytes() {
        let text = format!(
            "version: 1\n\n{}",
            entry("CN=A,DC=corp", GUID_B64, "sAMAccountName: a\n")
        );
        let s = read_ldif(&text, "t.ldif").unwrap();
        assert_eq!(s.server, "t.ldif");
        assert_eq!(s.objects.len(), 1);
        let o = &s.objects[0];
        assert_eq!(
            o.guid,
            ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap()
        );
        assert_eq!(o.guid.anchor().as_str(), GUID_B64);
        assert_eq!(o.kind, ObjectKind::User);
        assert_eq!(o.text("samaccountname"), Some("a"));
        assert_eq!(s.base_dn.as_ref().map(Dn::as_str), Some("CN=A,DC=corp"));
        assert_eq!(s.highest_usn, None);
    }

    #[test]
    fn version_without_blank_line_and_bad_version() {
        let text = format!("version: 1\n{}", entry("CN=A,DC=c", &guid(1), ""));
        assert_eq!(read_ldif(&text, "t").unwrap().objects.len(), 1);
        let (k, line, _) = err_kind("version: 2\n\ndn: CN=A,DC=c\n");
        assert_eq!(k, LdifErrorKind::UnsupportedVersion("2".into()));
        assert_eq!(line, 1);
        let text = format!("{}\nversion: 1\n", entry("CN=A,DC=c", &guid(1), ""));
        assert_eq!(err_kind(&text).0, LdifErrorKind::MisplacedVersion);
    }

    #[test]
    fn comments_anywhere_including_folded() {
        let text = format!(
            "# header\n#  folded comment\n  that continues\nversion: 1\n\n# before\n{}# inside\ndescription: d\n\n# trailing\n",
            entry("CN=A,DC=c", &guid(1), "")
        );
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects[0].text("description"), Some("d"));
    }

    #[test]
    fn unfolds_continuation_lines() {
        let text = format!(
            "dn: CN=Long Na\n me,DC=c\nobjectGUID:: {}\n {}\ndescription: one\n  two\n",
            &GUID_B64[..10],
            &GUID_B64[10..]
        );
        let s = read_ldif(&text, "t").unwrap();
        let o = &s.objects[0];
        assert_eq!(o.dn.as_str(), "CN=Long Name,DC=c");
        assert_eq!(o.guid.anchor().as_str(), GUID_B64);
        assert_eq!(o.text("description"), Some("one two"));
    }

    #[test]
    fn dangling_continuation_is_an_error() {
        let (k, line, _) = err_kind(" oops\n");
        assert_eq!(k, LdifErrorKind::DanglingContinuation);
        assert_eq!(line, 1);
        let text = format!(
            "{}\n continued after blank\n",
            entry("CN=A,DC=c", &guid(1), "")
        );
        assert_eq!(err_kind(&text).0, LdifErrorKind::DanglingContinuation);
    }

    #[test]
    fn base64_values_binary_and_non_ascii() {
        let sid = [1u8, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xff, 0x00, 0x0a];
        let text = entry(
            "CN=J,DC=c",
            &guid(1),
            &format!(
                "objectSid:: {}\ndisplayName:: {}\nsn: Müller\n",
                STANDARD.encode(sid),
                STANDARD.encode("Jürgen Müller")
            ),
        );
        let s = read_ldif(&text, "t").unwrap();
        let o = &s.objects[0];
        assert_eq!(o.values("objectSid"), &[sid.to_vec()]);
        assert_eq!(o.text("displayName"), Some("Jürgen Müller"));
        assert_eq!(o.text("sn"), Some("Müller"));
    }

    #[test]
    fn bad_base64_names_attribute_line_and_dn() {
        let text = entry("CN=A,DC=c", &guid(1), "thumbnailPhoto:: !!!notbase64\n");
        let (k, line, dn) = err_kind(&text);
        assert!(matches!(k, LdifErrorKind::Base64 { ref attr, .. } if attr == "thumbnailPhoto"));
        assert_eq!(line, 5);
        assert_eq!(dn.as_deref(), Some("CN=A,DC=c"));
    }

    #[test]
    fn url_values_are_rejected_clearly() {
        let text = entry("CN=A,DC=c", &guid(1), "jpegPhoto:< file:///etc/passwd\n");
        let (k, line, _) = err_kind(&text);
        assert_eq!(
            k,
            LdifErrorKind::UrlValue {
                attr: "jpegPhoto".into(),
                url: "file:///etc/passwd".into()
            }
        );
        assert_eq!(line, 5);
        let msg = read_ldif(&text, "t.ldif").unwrap_err().to_string();
        assert!(
            msg.starts_with("t.ldif:5: entry \"CN=A,DC=c\": URL value"),
            "{msg}"
        );
    }

    #[test]
    fn attribute_options() {
        let text = entry(
            "CN=A,DC=c",
            &guid(1),
            &format!(
                "userCertificate;binary:: {}\nmember;range=0-1: CN=X,DC=c\nmember;range=2-*: CN=Y,DC=c\ndescription;lang-de: Beschreibung\nDescription: plain\n",
                STANDARD.encode([0x30u8, 0x82])
            ),
        );
        let s = read_ldif(&text, "t").unwrap();
        let o = &s.objects[0];
        assert_eq!(o.values("usercertificate"), &[vec![0x30u8, 0x82]]);
        assert_eq!(
            o.texts("member").collect::<Vec<_>>(),
            ["CN=X,DC=c", "CN=Y,DC=c"]
        );
        assert_eq!(o.text("description;lang-de"), Some("Beschreibung"));
        assert_eq!(o.text("description"), Some("plain"));
    }

    #[test]
    fn base64_dn_and_escaped_dns() {
        let dn = "CN=Zoë Ångström,OU=Marketing,DC=c";
        let text = format!(
            "dn:: {}\nobjectGUID:: {}\n\ndn: CN=Smith\\, John,DC=c\nobjectGUID:: {}\n\ndn: CN=J\\C3\\BCrgen,DC=c\nobjectGUID:: {}\n",
            STANDARD.encode(dn),
            guid(1),
            guid(2),
            guid(3)
        );
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects[0].dn.as_str(), dn);
        assert_eq!(
            s.objects[0].dn.leaf_value().as_deref(),
            Some("Zoë Ångström")
        );
        assert_eq!(s.objects[1].dn.leaf_value().as_deref(), Some("Smith, John"));
        assert_eq!(s.objects[2].dn.leaf_value().as_deref(), Some("Jürgen"));
        assert_eq!(s.base_dn.as_ref().map(Dn::as_str), Some("DC=c"));
    }

    #[test]
    fn raw_utf8_dn_and_values() {
        let text = entry("CN=王伟,DC=c", &guid(1), "displayName: 王伟\n");
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects[0].dn.leaf_value().as_deref(), Some("王伟"));
        assert_eq!(s.objects[0].text("displayname"), Some("王伟"));
    }

    #[test]
    fn crlf_line_endings_and_multiple_blank_lines() {
        let text = format!(
            "version: 1\r\n\r\n\r\n{}\r\n\r\n\r\n{}",
            entry("CN=A,DC=c", &guid(1), "description: a b \r\n").replace('\n', "\r\n"),
            entry("CN=B,DC=c", &guid(2), "").replace('\n', "\r\n")
        );
        let text = text.replace("\r\r\n", "\r\n");
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects.len(), 2);
        // Trailing spaces are part of the value; the CR is not.
        assert_eq!(s.objects[0].text("description"), Some("a b "));
        assert_eq!(s.objects[1].dn.as_str(), "CN=B,DC=c");
    }

    #[test]
    fn folded_crlf() {
        let text = "dn: CN=A,\r\n DC=c\r\nobjectGUID:: AAAAAAAAAAAA\r\n AAAAAAAAAA==\r\n";
        let s = read_ldif(text, "t").unwrap();
        assert_eq!(s.objects[0].dn.as_str(), "CN=A,DC=c");
        assert_eq!(s.objects[0].guid.0, [0u8; 16]);
    }

    #[test]
    fn changetype_add_accepted_others_rejected() {
        let text = format!(
            "dn: CN=A,DC=c\nchangetype: add\nobjectGUID:: {}\ncn: A\n",
            guid(1)
        );
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects[0].text("cn"), Some("A"));
        assert!(s.objects[0].values("changetype").is_empty());

        let (k, line, dn) = err_kind("dn: CN=A,DC=c\nchangetype: modify\nreplace: cn\ncn: B\n-\n");
        assert_eq!(k, LdifErrorKind::UnsupportedChangeType("modify".into()));
        assert_eq!((line, dn.as_deref()), (2, Some("CN=A,DC=c")));
        let (k, _, _) = err_kind("dn: CN=A,DC=c\nchangetype: delete\n");
        assert_eq!(k, LdifErrorKind::UnsupportedChangeType("delete".into()));
        let (k, _, _) = err_kind("dn: CN=A,DC=c\ncn: A\nchangetype: add\n");
        assert_eq!(k, LdifErrorKind::MisplacedChangeType);
        let (k, _, _) = err_kind("dn: CN=A,DC=c\ncontrol: 1.2.840.113556.1.4.417 true\n");
        assert_eq!(k, LdifErrorKind::Control);
    }

    #[test]
    fn missing_or_bad_guid_names_dn_and_line() {
        let text = format!(
            "{}\n\n# comment\ndn: CN=NoGuid,DC=c\ncn: x\n",
            entry("CN=A,DC=c", &guid(1), "")
        );
        let (k, line, dn) = err_kind(&text);
        assert_eq!(k, LdifErrorKind::MissingGuid);
        assert_eq!(line, 8);
        assert_eq!(dn.as_deref(), Some("CN=NoGuid,DC=c"));

        let text = format!(
            "dn: CN=A,DC=c\nobjectGUID:: {}\n",
            STANDARD.encode([1u8; 15])
        );
        assert_eq!(
            err_kind(&text).0,
            LdifErrorKind::BadGuid { values: 1, len: 15 }
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let text = format!(
            "{}\n{}",
            entry("CN=A,DC=c", &guid(1), ""),
            entry("cn=a, dc=C", &guid(2), "")
        );
        let (k, line, _) = err_kind(&text);
        assert_eq!(k, LdifErrorKind::DuplicateDn { first_line: 1 });
        assert_eq!(line, 6);
        let text = format!(
            "{}\n{}",
            entry("CN=A,DC=c", &guid(1), ""),
            entry("CN=B,DC=c", &guid(1), "")
        );
        assert!(matches!(
            err_kind(&text).0,
            LdifErrorKind::DuplicateGuid { other_line: 1, .. }
        ));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err_kind("cn: x\n").0, LdifErrorKind::MissingDn("cn".into()));
        let (k, line, dn) = err_kind("dn: CN=A,DC=c\nno colon here\n");
        assert_eq!(k, LdifErrorKind::MissingColon);
        assert_eq!((line, dn.as_deref()), (2, Some("CN=A,DC=c")));
        assert!(matches!(
            err_kind("dn: CN=A,DC=c\nbad name: x\n").0,
            LdifErrorKind::BadAttributeName(_)
        ));
        assert!(matches!(
            err_kind(&format!("dn: not a dn\nobjectGUID:: {}\n", guid(1))).0,
            LdifErrorKind::BadDn(_)
        ));
        let text = format!("dn:: {}\n", STANDARD.encode([0xffu8, 0xfe]));
        assert_eq!(err_kind(&text).0, LdifErrorKind::DnNotUtf8);
    }

    #[test]
    fn empty_values_and_empty_input() {
        let text = entry("CN=A,DC=c", &guid(1), "description:\ninfo:: \n");
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.objects[0].values("description"), &[Vec::<u8>::new()]);
        assert_eq!(s.objects[0].values("info"), &[Vec::<u8>::new()]);
        let s = read_ldif("# nothing\n\n", "t").unwrap();
        assert!(s.objects.is_empty());
        assert!(s.base_dn.is_none());
    }

    #[test]
    fn base_dn_is_common_ancestor() {
        let text = format!(
            "{}\n{}\n{}",
            entry("CN=A,OU=X,DC=corp,DC=com", &guid(1), ""),
            entry("CN=B,OU=X,DC=corp,DC=com", &guid(2), ""),
            entry("CN=C,OU=Y,DC=corp,DC=com", &guid(3), "")
        );
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(
            s.base_dn.map(|d| d.to_string()),
            Some("DC=corp,DC=com".into())
        );
        let text = format!(
            "{}\n{}",
            entry("CN=A,DC=one", &guid(1), ""),
            entry("CN=B,DC=two", &guid(2), "")
        );
        let s = read_ldif(&text, "t").unwrap();
        assert_eq!(s.base_dn.map(|d| d.to_string()), Some(String::new()));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let text = format!("\u{feff}{}", entry("CN=A,DC=c", &guid(1), ""));
        assert_eq!(read_ldif(&text, "t").unwrap().objects.len(), 1);
    }

    #[test]
    fn records_iterator_stops_after_error() {
        let text = b"cn: x\n\ndn: CN=A,DC=c\n";
        let mut it = parse_ldif(text, "t");
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn reads_file_and_reports_io_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.ldif");
        std::fs::write(&p, entry("CN=A,DC=c", &guid(1), "")).unwrap();
        let s = read_ldif_file(&p).unwrap();
        assert_eq!(s.server, p.display().to_string());
        let e = read_ldif_file(dir.path().join("missing.ldif")).unwrap_err();
        assert!(matches!(e, LdifError::Io { .. }));
        assert!(e.to_string().contains("missing.ldif"));
    }

    /// The direct construction must stay equal to the model's own constructor.
    #[test]
    fn build_object_matches_from_attrs() {
        let text = format!(
            "dn: CN=A,OU=X,DC=c\nobjectClass: top\nObjectClass: group\nobjectGUID:: {}\nuSNChanged: 42\nMember: CN=B,DC=c\nmember: CN=C,DC=c\ndescription;lang-de: x\n\ndn: CN=Pc,DC=c\nobjectClass: user\nobjectClass: computer\nobjectGUID:: {}\n",
            guid(1),
            guid(2)
        );
        let s = read_ldif(&text, "t").unwrap();
        let records: Vec<LdifRecord> = parse_ldif(text.as_bytes(), "t")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 2);
        for (r, o) in records.into_iter().zip(&s.objects) {
            let expected = SourceObject::from_attrs(Dn::parse(&r.dn).unwrap(), r.attrs).unwrap();
            assert_eq!(&expected, &**o);
        }
        assert_eq!(s.objects[0].kind, ObjectKind::Group);
        assert_eq!(s.objects[0].usn_changed, Some(42));
        assert_eq!(s.objects[0].values("member").len(), 2);
        assert_eq!(s.objects[1].kind, ObjectKind::Computer);
    }

    #[test]
    fn key_within_respects_escaped_commas() {
        assert!(key_within("cn=a,dc=c", "dc=c"));
        assert!(key_within("dc=c", "dc=c"));
        assert!(key_within("dc=c", ""));
        assert!(!key_within("cn=a\\,dc=c", "dc=c"));
        assert!(key_within("cn=a\\\\,dc=c", "dc=c"));
        assert!(!key_within("cn=adc=c", "dc=c"));
        assert!(!key_within("dc=x", "dc=c"));
    }

    fn many_entries(n: u8) -> String {
        let mut text = String::from("version: 1\n\n");
        for i in 0..n {
            text.push_str(&entry(
                &format!("CN=U{i},OU=X,DC=c"),
                &guid(i),
                "member: CN=G,DC=c\n",
            ));
            text.push('\n');
        }
        text
    }

    /// Splitting the input across threads gives exactly the sequential result, errors
    /// (and their line numbers) included.
    #[test]
    fn pieces_match_sequential_read() {
        let text = many_entries(50);
        let one = read_in_pieces(text.as_bytes(), "t", 1).unwrap();
        for n in [2, 3, 7] {
            assert!(split_at_blank_lines(text.as_bytes(), n).len() > 1);
            let many = read_in_pieces(text.as_bytes(), "t", n).unwrap();
            assert_eq!(one.objects, many.objects);
            assert_eq!(one.base_dn, many.base_dn);
        }
        assert_eq!(one.base_dn.map(|d| d.to_string()), Some("OU=X,DC=c".into()));

        // A syntax error late in the file, and a duplicate that spans two pieces.
        let bad = text.replacen(
            "member: CN=G,DC=c\n\ndn: CN=U40,",
            "bogus\n\ndn: CN=U40,",
            1,
        );
        let dup = text.replace("dn: CN=U45,", "dn: CN=U3,");
        for input in [bad, dup] {
            let e1 = read_in_pieces(input.as_bytes(), "t", 1).unwrap_err();
            for n in [2, 3, 7] {
                let en = read_in_pieces(input.as_bytes(), "t", n).unwrap_err();
                assert_eq!(e1.to_string(), en.to_string());
            }
        }
        let e = read_in_pieces(text.replace("dn: CN=U45,", "dn: CN=U3,").as_bytes(), "t", 3)
            .unwrap_err();
        assert_eq!(
            e.kind(),
            Some(&LdifErrorKind::DuplicateDn {
                first_line: 3 + 3 * 6
            })
        );
        assert_eq!(e.line(), Some(3 + 45 * 6));
        assert_eq!(e.dn(), Some("CN=U3,OU=X,DC=c"));
    }

    #[test]
    fn split_handles_crlf_and_no_blank_lines() {
        let text = many_entries(10).replace('\n', "\r\n");
        let pieces = split_at_blank_lines(text.as_bytes(), 3);
        assert!(pieces.len() > 1);
        let s = read_in_pieces(text.as_bytes(), "t", 3).unwrap();
        assert_eq!(s.objects.len(), 10);
        assert_eq!(
            split_at_blank_lines(b"dn: CN=A\ncn: x\n", 4),
            vec![(0, 15, 0)]
        );
    }
}
