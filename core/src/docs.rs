//! Collaborative documents: the y-websocket protocol (sync step 1/2, updates,
//! awareness, awareness queries) over a `yrs` document, what each incoming frame
//! does and what a socket may do (its rights, its budgets), and the storage plan
//! (append updates, or fold them into a chunked snapshot). The Room Durable
//! Object stores and broadcasts what this module decides. `wire` checks a frame's
//! shape before yrs decodes it; `restore` computes version restores.

mod restore;
mod wire;

pub use restore::{Roots, TYPE_NESTING_MAX};
pub use wire::NESTING_MAX;

use crate::ratelimit::{Rate, TokenBucket};
use crate::rooms::{can, Permission, Role};
use crate::ApiError;
use yrs::encoding::read::Cursor;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    ClientID, Doc, GetString, OffsetKind, Options, Out, ReadTxn, StateVector, TextRef, Transact,
    Update,
};
/// The Y.Text root that Tessera's editor edits, and that `?format=text` reads
/// when no `name=` is given.
pub const TEXT_ROOT: &str = "content";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DocLimits {
    /// Largest WebSocket message or REST update accepted.
    pub message_bytes: usize,
    /// Largest stored document (snapshot plus tail of updates).
    pub doc_bytes: usize,
    /// Compact when the tail holds this many updates…
    pub compact_after_updates: u64,
    /// …or this many bytes.
    pub compact_after_bytes: u64,
    /// Snapshot chunk size, and the largest update stored as a row of its own
    /// (SQLite rows stay under the platform's 2 MB limit).
    pub chunk_bytes: usize,
    /// Largest state vector in a SyncStep1 (about 100,000 clients).
    pub state_vector_bytes: usize,
    /// Largest awareness message (it is kept, relayed and replayed).
    pub awareness_bytes: usize,
    /// Most awareness clients one message, and one socket, speaks for.
    pub awareness_clients: usize,
    /// Messages per second per document socket (a burst of as many).
    pub message_rate: Rate,
    /// SyncStep1 answers per document socket: each one sends what the asker
    /// lacks, up to the whole document, so a viewer could otherwise amplify.
    pub sync_rate: Rate,
    /// Documents per room.
    pub docs_per_room: u64,
    /// Named versions per document.
    pub versions_per_doc: u64,
    /// Shared types (maps, arrays, texts, XML nodes nested in roots) per
    /// document; their number bounds their nesting. yrs integrates, deletes
    /// and collects nested types recursively: in local workerd, maps nested
    /// 4,000 deep overflowed a room object's 1 MiB WebAssembly stack, and with
    /// the 8 MiB of `.cargo/config.toml` 6,000 deep exhausted V8's own stack
    /// ("Maximum call stack size exceeded") while 5,000 passed.
    pub types_per_doc: u64,
}

impl Default for DocLimits {
    fn default() -> Self {
        Self {
            message_bytes: 8 * 1024 * 1024,
            doc_bytes: 32 * 1024 * 1024,
            compact_after_updates: 10_000,
            compact_after_bytes: 4 * 1024 * 1024,
            chunk_bytes: 1024 * 1024,
            state_vector_bytes: 1024 * 1024,
            awareness_bytes: 64 * 1024,
            awareness_clients: 16,
            message_rate: Rate {
                capacity: 500.0,
                per_sec: 500.0,
            },
            sync_rate: Rate {
                capacity: 10.0,
                per_sec: 1.0,
            },
            docs_per_room: 1_000,
            versions_per_doc: 100,
            types_per_doc: 4_000,
        }
    }
}

pub const DOC_NAME_MAX: usize = 128;

/// Document names appear in URLs and storage keys.
pub fn validate_doc_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= DOC_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "document names are 1 to {DOC_NAME_MAX} of A-Z a-z 0-9 - _ ."
        )))
    }
}

/// Close code for the sockets of a deleted document (and for connecting to one).
pub const CLOSE_DOC_DELETED: u16 = 4004;

/// Why a frame or request was refused. A socket is closed with the reason;
/// nothing is stored and no one else is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("update does not integrate: {0}")]
    Integrate(String),
    #[error("message exceeds {0} bytes")]
    MessageTooLarge(usize),
    #[error("document would exceed {0} bytes")]
    DocTooLarge(usize),
    #[error("unsupported message type {0}")]
    Unsupported(u8),
    #[error("values nest deeper than {0} levels")]
    TooDeep(usize),
    #[error("{0}")]
    AwarenessTooLarge(String),
    #[error("too many document messages per second")]
    TooManyMessages,
    #[error("too many sync requests on this socket")]
    TooManySyncRequests,
    #[error("the room holds the most documents it may ({0}); delete one first")]
    TooManyDocuments(u64),
    #[error("the document holds the most versions it may ({0}); delete one first")]
    TooManyVersions(u64),
    #[error("the document was deleted; create it again to reuse the name")]
    Deleted,
    #[error("a document of this name exists")]
    Exists,
    #[error("the document would hold more than {0} shared types")]
    TooManyTypes(u64),
}

impl DocError {
    /// WebSocket close code: 1009 for size, 1003 for unsupported, 1007 for bad
    /// data, 1008 for policy (rates, room bounds), 4004 for a deleted document.
    pub fn close_code(&self) -> u16 {
        match self {
            DocError::MessageTooLarge(_)
            | DocError::DocTooLarge(_)
            | DocError::AwarenessTooLarge(_) => 1009,
            DocError::Unsupported(_) => 1003,
            DocError::Malformed(_) | DocError::Integrate(_) | DocError::TooDeep(_) => 1007,
            DocError::TooManyMessages
            | DocError::TooManySyncRequests
            | DocError::TooManyDocuments(_)
            | DocError::TooManyVersions(_)
            | DocError::TooManyTypes(_)
            | DocError::Exists => 1008,
            DocError::Deleted => CLOSE_DOC_DELETED,
        }
    }
}

impl From<DocError> for ApiError {
    fn from(e: DocError) -> Self {
        let message = e.to_string();
        match e {
            DocError::MessageTooLarge(limit) => ApiError::PayloadTooLarge { limit },
            DocError::DocTooLarge(_) => ApiError::Conflict {
                code: crate::error::code::DOCUMENT_TOO_LARGE,
                message,
            },
            DocError::TooManyDocuments(_) => ApiError::Conflict {
                code: crate::error::code::TOO_MANY_DOCUMENTS,
                message,
            },
            DocError::TooManyVersions(_) => ApiError::Conflict {
                code: crate::error::code::TOO_MANY_VERSIONS,
                message,
            },
            DocError::TooManyTypes(_) => ApiError::Conflict {
                code: crate::error::code::TOO_MANY_TYPES,
                message,
            },
            DocError::Exists => ApiError::Conflict {
                code: crate::error::code::DOCUMENT_EXISTS,
                message,
            },
            DocError::Deleted => ApiError::Gone {
                code: crate::error::code::DOCUMENT_DELETED,
                message,
            },
            DocError::TooManyMessages | DocError::TooManySyncRequests => ApiError::RateLimited {
                retry_after_secs: 1,
            },
            _ => ApiError::invalid(message),
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> DocError {
    DocError::Malformed(e.to_string())
}

/// Decodes every y-protocol message in one WebSocket frame, once its shape
/// has passed `wire::check_frame`; also returns how many shared types its
/// updates create.
pub fn decode_frame(bytes: &[u8], limits: &DocLimits) -> Result<(Vec<Message>, u64), DocError> {
    if bytes.len() > limits.message_bytes {
        return Err(DocError::MessageTooLarge(limits.message_bytes));
    }
    if bytes.is_empty() {
        return Err(malformed("empty frame"));
    }
    let types = wire::check_frame(bytes, limits)?;
    let mut decoder = DecoderV1::new(Cursor::new(bytes));
    let mut out = Vec::new();
    let mut consumed = 0;
    for msg in MessageReader::new(&mut decoder) {
        match msg.map_err(malformed)? {
            Message::Auth(_) => return Err(DocError::Unsupported(2)),
            Message::Custom(tag, _) => return Err(DocError::Unsupported(tag)),
            m => {
                consumed += encoded_len(&m);
                out.push(m);
            }
        }
    }
    // The reader stops quietly at a truncated message: every byte must belong
    // to a whole message (the encoding is canonical, so lengths add up).
    if out.is_empty() || consumed != bytes.len() {
        return Err(malformed("truncated message"));
    }
    Ok((out, types))
}

/// The length of `msg` encoded. Updates, the bulk of the traffic, are counted
/// without copying them again.
fn encoded_len(msg: &Message) -> usize {
    match msg {
        Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) => {
            let varint = (usize::BITS - u.len().leading_zeros()).max(1).div_ceil(7) as usize;
            2 + varint + u.len()
        }
        m => m.encode_v1().len(),
    }
}

pub fn encode(msg: &Message) -> Vec<u8> {
    msg.encode_v1()
}

/// The message that carries one update to other clients.
pub fn update_message(update: &[u8]) -> Vec<u8> {
    encode(&Message::Sync(SyncMessage::Update(update.to_vec())))
}

/// The v1 encoding of an update that changes nothing (no structs, no deletes):
/// what a client with an empty document answers to a SyncStep1.
const EMPTY_UPDATE: [u8; 2] = [0, 0];

/// A document held in memory while it has readers or writers.
pub struct LiveDoc {
    doc: Doc,
    /// Whether the document is stored (or has an update on its way to storage):
    /// a write to one that is not creates it, which the room's bound governs.
    pub exists: bool,
    /// Bytes currently stored for it (snapshot + tail), for the size cap.
    pub stored_bytes: usize,
    /// Bytes of the stored snapshot, and the updates and bytes stored after
    /// it, for the compaction decision.
    pub snapshot_bytes: u64,
    pub tail_updates: u64,
    pub tail_bytes: u64,
    /// Shared types created by what is stored (exact after a compaction, an
    /// overcount of deleted ones until then), for the type bound.
    pub types: u64,
}

impl LiveDoc {
    pub fn new() -> Self {
        // Servers edit only to restore versions; positions then count UTF-16
        // units, as Yjs clients count them (yrs counts UTF-8 bytes unless
        // told). Garbage collection stays on; the client id is random.
        let options = Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        };
        Self {
            doc: Doc::with_options(options),
            exists: false,
            stored_bytes: 0,
            snapshot_bytes: 0,
            tail_updates: 0,
            tail_bytes: 0,
            types: 0,
        }
    }

    /// Rebuilds a document from its snapshot and the updates stored after it.
    pub fn load<'a>(
        snapshot: &[u8],
        tail: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, DocError> {
        let mut live = Self::new();
        if !snapshot.is_empty() {
            live.apply(snapshot)?;
        }
        for u in tail {
            live.apply(u)?;
        }
        Ok(live)
    }

    /// Decodes and integrates one v1 update.
    pub fn apply(&mut self, update: &[u8]) -> Result<(), DocError> {
        self.types += wire::update(update)?;
        self.integrate(Update::decode_v1(update).map_err(malformed)?)
    }

    /// The document was stored as `snapshot` alone (compacted): its counters
    /// start again from it.
    pub fn compacted(&mut self, snapshot: &[u8]) -> Result<(), DocError> {
        self.stored_bytes = snapshot.len();
        self.snapshot_bytes = snapshot.len() as u64;
        self.tail_updates = 0;
        self.tail_bytes = 0;
        self.types = wire::update(snapshot)?;
        Ok(())
    }

    fn integrate(&mut self, update: Update) -> Result<(), DocError> {
        self.doc
            .transact_mut()
            .apply_update(update)
            .map_err(|e| DocError::Integrate(e.to_string()))
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// Everything the holder of `sv` is missing, as a v1 update.
    pub fn diff(&self, sv: &StateVector) -> Vec<u8> {
        self.doc.transact().encode_state_as_update_v1(sv)
    }

    /// The whole document as one v1 update (a snapshot).
    pub fn snapshot(&self) -> Vec<u8> {
        self.diff(&StateVector::default())
    }

    /// The content of the Y.Text root `name` (empty if absent). Reading
    /// creates nothing.
    pub fn text(&self, name: &str) -> String {
        let txn = self.doc.transact();
        txn.get_text(name)
            .map(|t| t.get_string(&txn))
            .unwrap_or_default()
    }

    /// Every root that reads as text, with its text, by name (what search
    /// indexes). A root a client made is of no known type to the server: it
    /// is read as text without being changed (a map or XML root reads empty).
    pub fn text_roots(&self) -> Vec<(String, String)> {
        let txn = self.doc.transact();
        let mut roots: Vec<(String, String)> = txn
            .root_refs()
            .filter_map(|(name, out)| {
                let text = match out {
                    Out::YText(t) => t.get_string(&txn),
                    Out::UndefinedRef(branch) => TextRef::from(branch).get_string(&txn),
                    _ => return None,
                };
                Some((name.to_string(), text))
            })
            .collect();
        roots.sort();
        roots
    }

    /// The first message a server sends on a new connection.
    pub fn sync_step1(&self) -> Vec<u8> {
        encode(&Message::Sync(SyncMessage::SyncStep1(self.state_vector())))
    }

    /// A forward change that makes `roots` read as in `version` (see
    /// `restore`), so connected clients converge on it like on any edit.
    /// `None` when nothing differs; an error changes nothing.
    pub fn restore(
        &mut self,
        version: &LiveDoc,
        roots: Roots,
    ) -> Result<Option<Vec<u8>>, DocError> {
        let before = self.state_vector();
        let changed = restore::restore(&self.doc, &version.doc, roots)?;
        // The diff against the old state vector carries the new items and the
        // whole delete set, so it is the complete forward change.
        let change = changed.then(|| self.diff(&before));
        if let Some(change) = &change {
            self.types += wire::update(change)?;
        }
        Ok(change)
    }
}

impl Default for LiveDoc {
    fn default() -> Self {
        Self::new()
    }
}

/// What a document socket may do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Write,
    Read,
    /// Its person left the room: the socket is closed (4003, as chat sockets are).
    Removed,
}

impl Access {
    pub fn of(role: Role) -> Self {
        if can(role, Permission::EditDocument) {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// The access of a socket opened with `opened`, given the latest role the
    /// room has heard for its person since (`Some(None)`: removed). A change
    /// of role reaches open sockets at once; with no notice, the role it was
    /// opened with stands.
    pub fn now(opened: Access, latest: Option<Option<Role>>) -> Self {
        match latest {
            None => opened,
            Some(None) => Access::Removed,
            Some(Some(role)) => Access::of(role),
        }
    }

    /// In an archived room nobody writes.
    pub fn unless_archived(self, archived: bool) -> Self {
        match self {
            Access::Write if archived => Access::Read,
            other => other,
        }
    }
}

/// What the room keeps in memory for one document socket: its budgets.
/// Losing it on eviction only refills them.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    messages: TokenBucket,
    syncs: TokenBucket,
}

impl Peer {
    pub fn new(limits: &DocLimits, now_ms: u64) -> Self {
        Self {
            messages: TokenBucket::full(limits.message_rate, now_ms),
            syncs: TokenBucket::full(limits.sync_rate, now_ms),
        }
    }
}

/// What a frame's sender may do with the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub write: bool,
    /// Whether a write may create the document (the room has room for one
    /// more); asked only while the document does not exist.
    pub create: bool,
}

/// What the Room object must do for one incoming frame, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocEffect {
    /// Send to the sender.
    Reply(Vec<u8>),
    /// Store this update durably, then broadcast it to the document's other sockets.
    Persist(Vec<u8>),
    /// Relay an awareness message to the document's other sockets.
    Relay(Vec<u8>),
    /// Record the awareness clients (id, clock, gone) this socket speaks for
    /// (see [`track_awareness`]).
    Awareness(Vec<(u64, u32, bool)>),
    /// Send the sender every other socket's current awareness.
    AnswerAwarenessQuery,
}

/// Applies one frame from a socket. Writers' updates are integrated into `doc`
/// (in memory; the caller persists them); a viewer's are dropped unapplied.
/// All messages are decoded before anything is applied, so a bad frame has no
/// effect at all.
pub fn handle_frame(
    doc: &mut LiveDoc,
    frame: &[u8],
    peer: &mut Peer,
    rights: Rights,
    now_ms: u64,
    limits: &DocLimits,
) -> Result<Vec<DocEffect>, DocError> {
    if peer.messages.try_take(limits.message_rate, now_ms).is_err() {
        return Err(DocError::TooManyMessages);
    }
    let (messages, mut new_types) = decode_frame(frame, limits)?;
    // Decode every update first: a frame with one bad update applies nothing.
    let mut decoded = Vec::new();
    let mut incoming = 0;
    for msg in &messages {
        match msg {
            Message::Sync(SyncMessage::SyncStep1(_))
                if peer.syncs.try_take(limits.sync_rate, now_ms).is_err() =>
            {
                return Err(DocError::TooManySyncRequests);
            }
            Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))
                if rights.write && u.as_slice() != EMPTY_UPDATE =>
            {
                decoded.push(Update::decode_v1(u).map_err(malformed)?);
                incoming += u.len();
            }
            _ => {}
        }
    }
    if !decoded.is_empty() && !doc.exists && !rights.create {
        return Err(DocError::TooManyDocuments(limits.docs_per_room));
    }
    if doc.stored_bytes + incoming > limits.doc_bytes {
        return Err(DocError::DocTooLarge(limits.doc_bytes));
    }
    if !decoded.is_empty() && doc.types + new_types > limits.types_per_doc {
        return Err(DocError::TooManyTypes(limits.types_per_doc));
    }
    let mut decoded = decoded.into_iter();
    let mut effects = Vec::new();
    for msg in messages {
        match msg {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                effects.push(DocEffect::Reply(encode(&Message::Sync(
                    SyncMessage::SyncStep2(doc.diff(&sv)),
                ))));
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                if !rights.write || update.as_slice() == EMPTY_UPDATE {
                    continue;
                }
                let Some(parsed) = decoded.next() else {
                    continue;
                };
                doc.integrate(parsed)?;
                doc.stored_bytes += update.len();
                doc.types += new_types;
                new_types = 0;
                doc.exists = true;
                effects.push(DocEffect::Persist(update));
            }
            Message::Awareness(update) => {
                let clients = update
                    .clients
                    .iter()
                    .map(|(id, e)| (id.get(), e.clock, &*e.json == "null"))
                    .collect();
                effects.push(DocEffect::Awareness(clients));
                effects.push(DocEffect::Relay(encode(&Message::Awareness(update))));
            }
            Message::AwarenessQuery => effects.push(DocEffect::AnswerAwarenessQuery),
            Message::Auth(_) | Message::Custom(..) => {}
        }
    }
    Ok(effects)
}

/// Records which awareness clients (id, clock) a socket speaks for, so that
/// their removal can be announced when it closes; a socket may speak for at
/// most `limits.awareness_clients`.
pub fn track_awareness(
    tracked: &mut Vec<(u64, u32)>,
    changes: &[(u64, u32, bool)],
    limits: &DocLimits,
) -> Result<(), DocError> {
    for &(id, clock, gone) in changes {
        tracked.retain(|(c, _)| *c != id);
        if !gone {
            tracked.push((id, clock));
        }
    }
    if tracked.len() > limits.awareness_clients {
        return Err(DocError::AwarenessTooLarge(format!(
            "a socket speaks for at most {} awareness clients",
            limits.awareness_clients
        )));
    }
    Ok(())
}

/// The awareness message that tells others these clients are gone.
pub fn awareness_removal(clients: &[(u64, u32)]) -> Vec<u8> {
    let update = AwarenessUpdate {
        clients: clients
            .iter()
            .map(|(id, clock)| {
                (
                    ClientID::new(*id & ((1 << 53) - 1)),
                    AwarenessUpdateEntry {
                        clock: clock.saturating_add(1),
                        json: "null".into(),
                    },
                )
            })
            .collect(),
    };
    encode(&Message::Awareness(update))
}

/// Most updates merged into one stored row and one broadcast message. yrs's
/// merge grows faster than linearly with the number of updates (natively, per
/// update of the editing trace: 0.8 µs in groups of 100, 19 µs in groups of
/// 5,000), so a burst is merged in groups.
pub const MERGE_MAX_UPDATES: usize = 100;
/// …and at most this many bytes of updates per group (rows stay far under 2 MB).
pub const MERGE_MAX_BYTES: usize = 256 * 1024;

/// A burst of updates, in arrival order, tagged with who sent each, as few
/// updates as possible: each run of updates from one sender is merged in groups
/// of at most [`MERGE_MAX_UPDATES`] updates and [`MERGE_MAX_BYTES`] bytes.
/// Order is kept, so every group can be stored and broadcast (to all but its
/// sender) in turn. A group that cannot be merged stays as its single updates.
pub fn merge_burst<K: PartialEq + Clone>(burst: &[(K, &[u8])]) -> Vec<(K, Vec<u8>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < burst.len() {
        let sender = &burst[start].0;
        let mut end = start;
        let mut bytes = 0;
        while end < burst.len()
            && end - start < MERGE_MAX_UPDATES
            && burst[end].0 == *sender
            && (end == start || bytes + burst[end].1.len() <= MERGE_MAX_BYTES)
        {
            bytes += burst[end].1.len();
            end += 1;
        }
        let group: Vec<&[u8]> = burst[start..end].iter().map(|(_, u)| *u).collect();
        match group.as_slice() {
            [one] => out.push((sender.clone(), one.to_vec())),
            _ => match yrs::merge_updates_v1(&group) {
                Ok(merged) => out.push((sender.clone(), merged)),
                Err(_) => out.extend(group.iter().map(|u| (sender.clone(), u.to_vec()))),
            },
        }
        start = end;
    }
    out
}

/// A flush starts at once, without waiting for the burst to end, when this
/// many updates or bytes are queued: memory stays bounded under a flood, and
/// readers are not kept waiting until the writer pauses.
pub const FLUSH_AT_UPDATES: usize = 1_000;
pub const FLUSH_AT_BYTES: usize = 256 * 1024;

/// One queued update and the connection that sent it, if a socket did.
pub type Queued<'a> = (Option<&'a str>, &'a [u8]);

/// Updates waiting for the next write, in arrival order: runs of one
/// document's updates from one sender, each run's updates in one buffer, so
/// that a burst of small updates costs no allocation per update.
#[derive(Debug, Default)]
pub struct UpdateQueue {
    runs: Vec<Run>,
    updates: usize,
    bytes: usize,
}

#[derive(Debug)]
struct Run {
    doc: String,
    sender: Option<String>,
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl UpdateQueue {
    pub fn push(&mut self, doc: &str, sender: Option<&str>, update: &[u8]) {
        let continues = self
            .runs
            .last()
            .is_some_and(|r| r.doc == doc && r.sender.as_deref() == sender);
        if !continues {
            self.runs.push(Run {
                doc: doc.to_string(),
                sender: sender.map(str::to_string),
                data: Vec::new(),
                ends: Vec::new(),
            });
        }
        if let Some(run) = self.runs.last_mut() {
            run.data.extend_from_slice(update);
            run.ends.push(run.data.len());
        }
        self.updates += 1;
        self.bytes += update.len();
    }

    pub fn is_empty(&self) -> bool {
        self.updates == 0
    }

    /// Drops a document's queued updates (it was deleted).
    pub fn discard(&mut self, doc: &str) {
        for run in self.runs.iter().filter(|r| r.doc == doc) {
            self.updates -= run.ends.len();
            self.bytes -= run.data.len();
        }
        self.runs.retain(|r| r.doc != doc);
    }

    /// Whether updates of `doc` are queued.
    pub fn holds(&self, doc: &str) -> bool {
        self.runs.iter().any(|r| r.doc == doc)
    }

    /// Whether the queue should be written now rather than at the burst's end.
    pub fn is_full(&self) -> bool {
        self.updates >= FLUSH_AT_UPDATES || self.bytes >= FLUSH_AT_BYTES
    }

    /// Each document's queued updates with their senders, in arrival order
    /// (documents in the order they first appear), ready for [`merge_burst`].
    pub fn bursts(&self) -> Vec<(&str, Vec<Queued<'_>>)> {
        let mut out: Vec<(&str, Vec<Queued>)> = Vec::new();
        for run in &self.runs {
            let i = match out.iter().position(|(doc, _)| *doc == run.doc) {
                Some(i) => i,
                None => {
                    out.push((&run.doc, Vec::new()));
                    out.len() - 1
                }
            };
            let sender = run.sender.as_deref();
            out[i].1.extend(run.updates().map(|u| (sender, u)));
        }
        out
    }
}

/// What an object's write path has done in its lifetime: flushes, the
/// updates they took, the rows they wrote and the snapshots they made. The
/// document benchmark reads it (`DOC_STATS`) to tell commits from compute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub flushes: u64,
    pub updates: u64,
    pub rows: u64,
    pub snapshots: u64,
}

impl FlushStats {
    /// Counts one document's burst of `updates` stored as `rows` rows.
    pub fn burst(&mut self, updates: usize, rows: usize, stored: StoreAs) {
        self.updates += updates as u64;
        self.rows += rows as u64;
        self.snapshots += u64::from(stored == StoreAs::Snapshot);
    }
}

impl std::fmt::Display for FlushStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "doc stats: {} flushes, {} updates, {} rows, {} snapshots",
            self.flushes, self.updates, self.rows, self.snapshots
        )
    }
}

impl Run {
    fn updates(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.data[a..b])
    }
}

/// How a flushed burst of one document is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAs {
    /// Each row appended to the document's tail.
    Append,
    /// The whole document (which holds the burst) written as a new chunked
    /// snapshot that replaces the tail: when the tail has grown long, or when
    /// a row would be larger than a storage row may be.
    Snapshot,
}

/// A tail may grow to the size of its snapshot, and to at least this: a
/// document loads from at most about twice its compacted size, however it was
/// written (the editing trace, one update per edit, stored 3.5 MB of tail
/// against a 0.3 MB snapshot and took 159 ms to load), while a small
/// document is not rewritten on every burst.
pub const TAIL_FLOOR_BYTES: u64 = 64 * 1024;

/// How to store `rows` (a burst, merged) after what `doc` has stored.
pub fn plan_write(doc: &LiveDoc, rows: &[&[u8]], limits: &DocLimits) -> StoreAs {
    let bytes: u64 = rows.iter().map(|r| r.len() as u64).sum();
    let oversized = rows.iter().any(|r| r.len() > limits.chunk_bytes);
    let tail = doc.tail_bytes + bytes;
    if oversized
        || doc.tail_updates + rows.len() as u64 >= limits.compact_after_updates
        || tail >= limits.compact_after_bytes
        || tail > doc.snapshot_bytes.max(TAIL_FLOOR_BYTES)
    {
        StoreAs::Snapshot
    } else {
        StoreAs::Append
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::{Doc, Text, Transact};

    #[test]
    fn an_archived_room_makes_every_document_socket_read_only() {
        let owner = Access::now(Access::Write, Some(Some(Role::Owner)));
        assert_eq!(owner.unless_archived(true), Access::Read);
        assert_eq!(owner.unless_archived(false), Access::Write);
        assert_eq!(Access::Removed.unless_archived(true), Access::Removed);
    }

    fn client_edit(doc: &Doc, f: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut)) -> Vec<u8> {
        let text = doc.get_or_insert_text("t");
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            f(&text, &mut txn);
        }
        doc.transact().encode_state_as_update_v1(&before)
    }

    fn frame_for(update: &[u8]) -> Vec<u8> {
        update_message(update)
    }

    /// One frame from a fresh socket that may create the document.
    fn frame_in(
        doc: &mut LiveDoc,
        frame: &[u8],
        write: bool,
        limits: &DocLimits,
    ) -> Result<Vec<DocEffect>, DocError> {
        let rights = Rights {
            write,
            create: true,
        };
        handle_frame(doc, frame, &mut Peer::new(limits, 0), rights, 0, limits)
    }

    #[test]
    fn text_roots_read_what_clients_wrote_without_changing_it() {
        let client = Doc::new();
        let u = client_edit(&client, |t, txn| t.insert(txn, 0, "hello"));
        let map = client.get_or_insert_map("m");
        let before = client.transact().state_vector();
        {
            let mut txn = client.transact_mut();
            yrs::Map::insert(&map, &mut txn, "k", "not text");
        }
        let m = client.transact().encode_state_as_update_v1(&before);
        let server = LiveDoc::load(&u, [m.as_slice()]).unwrap();
        assert_eq!(
            server.text_roots(),
            vec![
                ("m".to_string(), String::new()),
                ("t".to_string(), "hello".to_string())
            ]
        );
        assert_eq!(
            server.snapshot(),
            LiveDoc::load(&server.snapshot(), []).unwrap().snapshot()
        );
    }

    #[test]
    fn sync_step1_is_answered_with_the_missing_state() {
        let mut server = LiveDoc::new();
        let a = Doc::new();
        let u = client_edit(&a, |t, txn| t.insert(txn, 0, "hello"));
        frame_in(&mut server, &frame_for(&u), true, &DocLimits::default()).unwrap();
        let fresh = Doc::new();
        let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(
            fresh.transact().state_vector(),
        )));
        let effects = frame_in(&mut server, &step1, true, &DocLimits::default()).unwrap();
        let DocEffect::Reply(reply) = &effects[0] else {
            panic!("{effects:?}")
        };
        let (msgs, _) = decode_frame(reply, &DocLimits::default()).unwrap();
        let Message::Sync(SyncMessage::SyncStep2(diff)) = &msgs[0] else {
            panic!()
        };
        fresh
            .transact_mut()
            .apply_update(Update::decode_v1(diff).unwrap())
            .unwrap();
        assert_eq!(
            fresh.get_or_insert_text("t").get_string(&fresh.transact()),
            "hello"
        );
    }

    #[test]
    fn viewers_updates_are_not_applied() {
        let mut server = LiveDoc::new();
        let u = client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "nope"));
        let effects = frame_in(&mut server, &frame_for(&u), false, &DocLimits::default()).unwrap();
        assert!(effects.is_empty());
        assert_eq!(server.text("t"), "");
    }

    #[test]
    fn bad_frames_change_nothing() {
        let mut server = LiveDoc::new();
        let good = client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "ok"));
        frame_in(&mut server, &frame_for(&good), true, &DocLimits::default()).unwrap();
        let sv = server.state_vector();
        let limits = DocLimits::default();
        // A good update followed by garbage in the same frame: nothing applies.
        let mut mixed = frame_for(&client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "x")));
        mixed.extend([0, 2, 5, 1, 2]);
        for bad in [
            vec![],
            vec![0],
            vec![0, 2],
            vec![0, 9, 1, 1],
            vec![7, 1, 0],
            vec![2, 0],
            mixed,
        ] {
            assert!(
                frame_in(&mut server, &bad, true, &limits).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(server.state_vector(), sv);
        assert_eq!(server.text("t"), "ok");
    }

    #[test]
    fn size_limits() {
        let mut server = LiveDoc::new();
        let limits = DocLimits {
            message_bytes: 64,
            doc_bytes: 100,
            ..DocLimits::default()
        };
        let big = client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, &"x".repeat(200)));
        assert_eq!(
            frame_in(&mut server, &frame_for(&big), true, &limits).unwrap_err(),
            DocError::MessageTooLarge(64)
        );
        let limits = DocLimits {
            message_bytes: 1 << 20,
            doc_bytes: 100,
            ..DocLimits::default()
        };
        let e = frame_in(&mut server, &frame_for(&big), true, &limits).unwrap_err();
        assert_eq!(
            (e.close_code(), ApiError::from(e).code()),
            (1009, "document_too_large")
        );
        assert_eq!(server.text("t"), "");
    }

    #[test]
    fn load_from_snapshot_and_tail_equals_live_state() {
        let client = Doc::new();
        let mut server = LiveDoc::new();
        let mut tail = Vec::new();
        for i in 0..50 {
            let u = client_edit(&client, |t, txn| t.insert(txn, 0, &format!("{i} ")));
            server.apply(&u).unwrap();
            tail.push(u);
        }
        let snapshot = server.snapshot();
        let more = client_edit(&client, |t, txn| t.insert(txn, 0, "end "));
        server.apply(&more).unwrap();
        let from_snapshot = LiveDoc::load(&snapshot, [more.as_slice()]).unwrap();
        let from_updates =
            LiveDoc::load(&[], tail.iter().map(Vec::as_slice).chain([more.as_slice()])).unwrap();
        assert_eq!(from_snapshot.text("t"), server.text("t"));
        assert_eq!(from_updates.text("t"), server.text("t"));
    }

    #[test]
    fn sync_requests_are_answered_within_a_budget() {
        let limits = DocLimits::default();
        let mut server = LiveDoc::new();
        let mut peer = Peer::new(&limits, 0);
        let ask = encode(&Message::Sync(SyncMessage::SyncStep1(
            StateVector::default(),
        )));
        let viewer = Rights {
            write: false,
            create: false,
        };
        for _ in 0..limits.sync_rate.capacity as usize {
            handle_frame(&mut server, &ask, &mut peer, viewer, 0, &limits).unwrap();
        }
        let e = handle_frame(&mut server, &ask, &mut peer, viewer, 0, &limits).unwrap_err();
        assert_eq!(e, DocError::TooManySyncRequests);
        assert_eq!(e.close_code(), 1008);
        // The budget refills over time.
        handle_frame(&mut server, &ask, &mut peer, viewer, 1000, &limits).unwrap();
    }

    #[test]
    fn messages_are_rate_limited_per_socket() {
        let limits = DocLimits {
            message_rate: Rate {
                capacity: 3.0,
                per_sec: 3.0,
            },
            ..DocLimits::default()
        };
        let mut server = LiveDoc::new();
        let mut peer = Peer::new(&limits, 0);
        let rights = Rights {
            write: true,
            create: true,
        };
        for _ in 0..3 {
            handle_frame(&mut server, &[3], &mut peer, rights, 0, &limits).unwrap();
        }
        let e = handle_frame(&mut server, &[3], &mut peer, rights, 0, &limits).unwrap_err();
        assert_eq!(
            (e.clone(), e.close_code()),
            (DocError::TooManyMessages, 1008)
        );
        // Another socket has its own budget.
        let mut other = Peer::new(&limits, 0);
        handle_frame(&mut server, &[3], &mut other, rights, 0, &limits).unwrap();
    }

    #[test]
    fn a_room_at_its_bound_creates_no_document() {
        let limits = DocLimits::default();
        let mut server = LiveDoc::new();
        let full = Rights {
            write: true,
            create: false,
        };
        let u = frame_for(&client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "new")));
        let e = handle_frame(
            &mut server,
            &u,
            &mut Peer::new(&limits, 0),
            full,
            0,
            &limits,
        )
        .unwrap_err();
        assert_eq!(e, DocError::TooManyDocuments(limits.docs_per_room));
        assert_eq!(
            (e.close_code(), ApiError::from(e).code()),
            (1008, "too_many_documents")
        );
        assert_eq!((server.text("t").as_str(), server.exists), ("", false));
        // A document that exists takes writes whatever the room's count.
        server.exists = true;
        handle_frame(
            &mut server,
            &u,
            &mut Peer::new(&limits, 0),
            full,
            0,
            &limits,
        )
        .unwrap();
        assert_eq!(server.text("t"), "new");
    }

    #[test]
    fn shared_types_are_bounded_per_document() {
        let limits = DocLimits {
            types_per_doc: 3,
            ..DocLimits::default()
        };
        let client = Doc::new();
        let nested = |n: usize| {
            let before = client.transact().state_vector();
            {
                let mut txn = client.transact_mut();
                let mut map = yrs::WriteTxn::get_or_insert_map(&mut txn, "m");
                for _ in 0..n {
                    map = yrs::Map::insert(&map, &mut txn, "k", yrs::MapPrelim::default());
                }
            }
            client.transact().encode_state_as_update_v1(&before)
        };
        let mut server = LiveDoc::new();
        frame_in(&mut server, &frame_for(&nested(2)), true, &limits).unwrap();
        assert_eq!(server.types, 2);
        let e = frame_in(&mut server, &frame_for(&nested(2)), true, &limits).unwrap_err();
        assert_eq!(e, DocError::TooManyTypes(3));
        assert_eq!(
            (e.close_code(), ApiError::from(e).code()),
            (1008, "too_many_types")
        );
        // A compaction counts what the snapshot holds.
        let snapshot = server.snapshot();
        server.compacted(&snapshot).unwrap();
        assert_eq!((server.types, server.tail_updates), (2, 0));
        assert_eq!(LiveDoc::load(&snapshot, []).unwrap().types, 2);
    }

    #[test]
    fn empty_updates_store_nothing_and_create_nothing() {
        let mut server = LiveDoc::new();
        let limits = DocLimits::default();
        let empty_step2 = encode(&Message::Sync(SyncMessage::SyncStep2(
            EMPTY_UPDATE.to_vec(),
        )));
        for frame in [update_message(&EMPTY_UPDATE), empty_step2] {
            assert!(frame_in(&mut server, &frame, true, &limits)
                .unwrap()
                .is_empty());
        }
        assert!(!server.exists);
        let u = client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "x"));
        let effects = frame_in(&mut server, &frame_for(&u), true, &limits).unwrap();
        assert_eq!(effects, vec![DocEffect::Persist(u)]);
        assert!(server.exists);
    }

    #[test]
    fn access_follows_the_latest_role_heard() {
        use Access::*;
        assert_eq!(
            (Access::of(Role::Member), Access::of(Role::Viewer)),
            (Write, Read)
        );
        assert_eq!(Access::now(Write, None), Write);
        assert_eq!(Access::now(Read, None), Read);
        assert_eq!(Access::now(Write, Some(Some(Role::Viewer))), Read);
        assert_eq!(Access::now(Read, Some(Some(Role::Member))), Write);
        assert_eq!(Access::now(Read, Some(Some(Role::Owner))), Write);
        assert_eq!(Access::now(Write, Some(None)), Removed);
    }

    #[test]
    fn a_socket_speaks_for_a_bounded_number_of_awareness_clients() {
        let limits = DocLimits::default();
        let mut tracked = Vec::new();
        let many: Vec<(u64, u32, bool)> = (0..limits.awareness_clients as u64)
            .map(|i| (i, 1, false))
            .collect();
        track_awareness(&mut tracked, &many, &limits).unwrap();
        track_awareness(&mut tracked, &[(0, 2, true), (99, 1, false)], &limits).unwrap();
        assert_eq!(tracked.len(), limits.awareness_clients);
        assert!(tracked.contains(&(99, 1)) && !tracked.iter().any(|(c, _)| *c == 0));
        let e = track_awareness(&mut tracked, &[(100, 1, false)], &limits).unwrap_err();
        assert_eq!(e.close_code(), 1009);
    }

    #[test]
    fn big_rows_and_long_tails_are_stored_as_a_snapshot() {
        let limits = DocLimits::default();
        let mut doc = LiveDoc::new();
        assert_eq!(plan_write(&doc, &[&[1; 100]], &limits), StoreAs::Append);
        let big = vec![1; limits.chunk_bytes + 1];
        assert_eq!(plan_write(&doc, &[&[1], &big], &limits), StoreAs::Snapshot);
        doc.tail_updates = limits.compact_after_updates - 1;
        assert_eq!(plan_write(&doc, &[&[1]], &limits), StoreAs::Snapshot);
        doc.tail_updates = 0;
        doc.snapshot_bytes = limits.compact_after_bytes;
        doc.tail_bytes = limits.compact_after_bytes - 10;
        assert_eq!(plan_write(&doc, &[&[1; 9]], &limits), StoreAs::Append);
        assert_eq!(plan_write(&doc, &[&[1; 10]], &limits), StoreAs::Snapshot);
    }

    #[test]
    fn a_tail_grows_to_its_snapshot_or_the_floor() {
        let limits = DocLimits::default();
        let mut doc = LiveDoc::new();
        let row = [1u8; 1024];
        doc.tail_bytes = TAIL_FLOOR_BYTES - 1024;
        assert_eq!(plan_write(&doc, &[&row], &limits), StoreAs::Append);
        doc.tail_bytes += 1;
        assert_eq!(plan_write(&doc, &[&row], &limits), StoreAs::Snapshot);
        doc.snapshot_bytes = 3 * TAIL_FLOOR_BYTES;
        doc.tail_bytes = 3 * TAIL_FLOOR_BYTES - 1024;
        assert_eq!(plan_write(&doc, &[&row], &limits), StoreAs::Append);
        doc.tail_bytes += 1;
        assert_eq!(plan_write(&doc, &[&row], &limits), StoreAs::Snapshot);
    }

    #[test]
    fn reading_text_creates_no_root() {
        let server = LiveDoc::new();
        assert_eq!(server.text(TEXT_ROOT), "");
        assert_eq!(server.doc.transact().root_refs().count(), 0);
    }

    #[test]
    fn awareness_is_relayed_and_removal_encoded() {
        let mut server = LiveDoc::new();
        let update = AwarenessUpdate {
            clients: [(
                ClientID::new(7),
                AwarenessUpdateEntry {
                    clock: 3,
                    json: r#"{"user":"a"}"#.into(),
                },
            )]
            .into(),
        };
        let frame = encode(&Message::Awareness(update));
        let effects = frame_in(&mut server, &frame, false, &DocLimits::default()).unwrap();
        assert_eq!(effects[0], DocEffect::Awareness(vec![(7, 3, false)]));
        assert!(matches!(&effects[1], DocEffect::Relay(b) if *b == frame));
        let (removal, _) =
            decode_frame(&awareness_removal(&[(7, 3)]), &DocLimits::default()).unwrap();
        let Message::Awareness(u) = &removal[0] else {
            panic!()
        };
        let gone = &u.clients[&ClientID::new(7)];
        assert_eq!((gone.clock, &*gone.json), (4, "null"));
    }

    #[test]
    fn the_queue_keeps_arrival_order_per_document_and_sender() {
        let mut q = UpdateQueue::default();
        assert!(q.is_empty());
        q.push("a", Some("c1"), b"1");
        q.push("a", Some("c1"), b"22");
        q.push("b", None, b"3");
        q.push("a", Some("c2"), b"");
        q.push("a", Some("c1"), b"5");
        assert!(!q.is_empty() && !q.is_full());
        let expected: Vec<(&str, Vec<Queued>)> = vec![
            (
                "a",
                vec![
                    (Some("c1"), b"1".as_slice()),
                    (Some("c1"), b"22".as_slice()),
                    (Some("c2"), b"".as_slice()),
                    (Some("c1"), b"5".as_slice()),
                ],
            ),
            ("b", vec![(None, b"3".as_slice())]),
        ];
        assert_eq!(q.bursts(), expected);
        assert!(q.holds("a") && q.holds("b") && !q.holds("c"));
        q.discard("a");
        assert!(!q.holds("a"));
        assert_eq!(q.bursts(), vec![("b", vec![(None, b"3".as_slice())])]);
        q.discard("b");
        assert!(q.is_empty());
    }

    #[test]
    fn the_queue_is_full_at_either_bound() {
        let mut by_count = UpdateQueue::default();
        for _ in 0..FLUSH_AT_UPDATES - 1 {
            by_count.push("d", None, b"x");
        }
        assert!(!by_count.is_full());
        by_count.push("d", None, b"x");
        assert!(by_count.is_full());
        let mut by_bytes = UpdateQueue::default();
        by_bytes.push("d", None, &vec![0; FLUSH_AT_BYTES - 1]);
        assert!(!by_bytes.is_full());
        by_bytes.push("d", None, b"x");
        assert!(by_bytes.is_full());
    }

    #[test]
    fn update_lengths_are_counted_as_encoded() {
        for n in [0, 1, 127, 128, 16_383, 16_384, 2_097_152] {
            let m = Message::Sync(SyncMessage::Update(vec![7; n]));
            assert_eq!(encoded_len(&m), m.encode_v1().len(), "{n}");
        }
    }

    #[test]
    fn doc_names() {
        assert!(validate_doc_name("notes-2026.md").is_ok());
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(validate_doc_name(bad).is_err());
        }
    }

    /// Edits of two clients, each a separate update as an editor sends them;
    /// `ops` picks the client, position and whether to delete.
    fn two_client_updates(ops: &[(bool, u16, bool)]) -> Vec<(u8, Vec<u8>)> {
        let clients = [Doc::new(), Doc::new()];
        let mut out = Vec::new();
        for (i, &(second, pos, delete)) in ops.iter().enumerate() {
            let who = usize::from(second);
            let doc = &clients[who];
            let len = doc.get_or_insert_text("t").len(&doc.transact());
            let update = client_edit(doc, |t, txn| {
                if delete && len > 0 {
                    t.remove_range(txn, u32::from(pos) % len, 1);
                } else {
                    t.insert(txn, u32::from(pos) % (len + 1), &format!("{i};"));
                }
            });
            // The other client sees it too, so edits interleave causally.
            let other = &clients[1 - who];
            other
                .transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            out.push((who as u8, update));
        }
        out
    }

    fn text_of<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> String {
        LiveDoc::load(&[], updates).unwrap().text("t")
    }

    #[test]
    fn bursts_merge_per_sender_run_in_bounded_groups() {
        let ops: Vec<(bool, u16, bool)> =
            (0..250u16).map(|i| (i >= 230, i * 7, i % 5 == 4)).collect();
        let updates = two_client_updates(&ops);
        let burst: Vec<(u8, &[u8])> = updates.iter().map(|(k, u)| (*k, u.as_slice())).collect();
        let merged = merge_burst(&burst);
        // 230 updates of client 0 in groups of 100, 100, 30; then 20 of client 1.
        let senders: Vec<u8> = merged.iter().map(|(k, _)| *k).collect();
        assert_eq!(senders, vec![0, 0, 0, 1]);
        assert_eq!(
            text_of(merged.iter().map(|(_, u)| u.as_slice())),
            text_of(updates.iter().map(|(_, u)| u.as_slice()))
        );
        // A lone update is passed through as it came.
        assert_eq!(merge_burst(&burst[..1]), vec![(0, updates[0].1.clone())]);
        assert!(merge_burst::<u8>(&[]).is_empty());
    }

    #[test]
    fn merged_groups_stay_under_the_byte_bound() {
        let big = "x".repeat(MERGE_MAX_BYTES / 3);
        let doc = Doc::new();
        let updates: Vec<Vec<u8>> = (0..5)
            .map(|_| client_edit(&doc, |t, txn| t.insert(txn, 0, &big)))
            .collect();
        let burst: Vec<((), &[u8])> = updates.iter().map(|u| ((), u.as_slice())).collect();
        let merged = merge_burst(&burst);
        assert_eq!(merged.len(), 3);
        assert!(merged.iter().all(|(_, u)| u.len() <= MERGE_MAX_BYTES));
    }

    proptest! {
        /// Storing and sending merged groups is the same as sending every update:
        /// the same text, and no group mixes senders.
        #[test]
        fn merged_bursts_converge_like_single_updates(
            ops in proptest::collection::vec((any::<bool>(), any::<u16>(), any::<bool>()), 1..300)
        ) {
            let updates = two_client_updates(&ops);
            let burst: Vec<(u8, &[u8])> = updates.iter().map(|(k, u)| (*k, u.as_slice())).collect();
            let merged = merge_burst(&burst);
            prop_assert_eq!(
                text_of(merged.iter().map(|(_, u)| u.as_slice())),
                text_of(updates.iter().map(|(_, u)| u.as_slice()))
            );
            // One group per run of a sender's updates, or per 100 of them (these
            // updates are far under the byte bound).
            let mut expected: Vec<u8> = Vec::new();
            let mut run = 0;
            for (i, (k, _)) in burst.iter().enumerate() {
                run = if i > 0 && burst[i - 1].0 == *k { run + 1 } else { 0 };
                if run % MERGE_MAX_UPDATES == 0 {
                    expected.push(*k);
                }
            }
            let senders: Vec<u8> = merged.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(senders, expected);
        }

        /// Random and mutated frames never panic and never change the document
        /// unless they decode as a valid update.
        #[test]
        fn fuzzed_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                     flip in any::<(usize, u8)>()) {
            let mut server = LiveDoc::new();
            let _ = frame_in(&mut server, &bytes, true, &DocLimits::default());
            let good = frame_for(&client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "fuzz me")));
            let mut mutated = good.clone();
            let i = flip.0 % mutated.len();
            mutated[i] ^= flip.1;
            let mut server = LiveDoc::new();
            let _ = frame_in(&mut server, &mutated, true, &DocLimits::default());
        }
    }
}
