//! Collaborative documents: the y-websocket protocol (sync step 1/2, updates,
//! awareness, awareness queries) over a `yrs` document, what each incoming frame
//! does, and the storage plan (append updates, compact into chunked snapshots).
//! The Room Durable Object stores and broadcasts what this module decides.

use crate::ApiError;
use yrs::encoding::read::Cursor;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    ClientID, Doc, GetString, Out, ReadTxn, StateVector, Text, TextRef, Transact, Update, WriteTxn,
};

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
    /// Snapshot chunk size: SQLite rows stay under the 2 MB limit.
    pub chunk_bytes: usize,
}

impl Default for DocLimits {
    fn default() -> Self {
        Self {
            message_bytes: 8 * 1024 * 1024,
            doc_bytes: 32 * 1024 * 1024,
            compact_after_updates: 10_000,
            compact_after_bytes: 4 * 1024 * 1024,
            chunk_bytes: 1024 * 1024,
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

/// Why a frame was refused. The sender's socket is closed with the reason;
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
}

impl DocError {
    /// WebSocket close code: 1009 for size, 1003 for unsupported, 1007 for bad data.
    pub fn close_code(&self) -> u16 {
        match self {
            DocError::MessageTooLarge(_) | DocError::DocTooLarge(_) => 1009,
            DocError::Unsupported(_) => 1003,
            DocError::Malformed(_) | DocError::Integrate(_) => 1007,
        }
    }
}

impl From<DocError> for ApiError {
    fn from(e: DocError) -> Self {
        match e {
            DocError::MessageTooLarge(limit) => ApiError::PayloadTooLarge { limit },
            DocError::DocTooLarge(_) => ApiError::Conflict {
                code: "document_too_large",
                message: e.to_string(),
            },
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> DocError {
    DocError::Malformed(e.to_string())
}

/// Decodes every y-protocol message in one WebSocket frame.
pub fn decode_frame(bytes: &[u8], limits: &DocLimits) -> Result<Vec<Message>, DocError> {
    if bytes.len() > limits.message_bytes {
        return Err(DocError::MessageTooLarge(limits.message_bytes));
    }
    if bytes.is_empty() {
        return Err(malformed("empty frame"));
    }
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
    Ok(out)
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

/// A document held in memory while it has readers or writers.
pub struct LiveDoc {
    doc: Doc,
    /// Bytes currently stored for it (snapshot + tail), for the size cap.
    pub stored_bytes: usize,
    /// Updates and bytes stored after the snapshot, for the compaction decision.
    pub tail_updates: u64,
    pub tail_bytes: u64,
}

impl LiveDoc {
    pub fn new() -> Self {
        // Servers never edit: garbage collection stays on, the client id is irrelevant.
        Self {
            doc: Doc::new(),
            stored_bytes: 0,
            tail_updates: 0,
            tail_bytes: 0,
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
        self.integrate(Update::decode_v1(update).map_err(malformed)?)
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

    /// The content of the Y.Text root `name` (empty if absent).
    pub fn text(&self, name: &str) -> String {
        let text = self.doc.get_or_insert_text(name);
        text.get_string(&self.doc.transact())
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

    /// A forward change that makes each named Y.Text root read as in `version`,
    /// touching only the differing middle (common prefix and suffix are kept), so
    /// connected clients converge on it like on any edit. `None` when nothing differs.
    pub fn restore_texts(&mut self, version: &LiveDoc, names: &[String]) -> Option<Vec<u8>> {
        let before = self.state_vector();
        let mut changed = false;
        {
            let mut txn = self.doc.transact_mut();
            for name in names {
                let target = version.text(name);
                let text = txn.get_or_insert_text(name.as_str());
                let current = text.get_string(&txn);
                let (start, del, ins) = text_diff(&current, &target);
                changed |= del > 0 || !ins.is_empty();
                if del > 0 {
                    text.remove_range(&mut txn, start, del);
                }
                if !ins.is_empty() {
                    text.insert(&mut txn, start, ins);
                }
            }
        }
        // The diff against the old state vector carries the new items and the
        // whole delete set, so it is the complete forward change.
        changed.then(|| self.diff(&before))
    }
}

impl Default for LiveDoc {
    fn default() -> Self {
        Self::new()
    }
}

/// (start, chars to delete, text to insert), in UTF-16 units as Y.Text counts them.
fn text_diff<'a>(current: &str, target: &'a str) -> (u32, u32, &'a str) {
    let prefix: usize = current
        .chars()
        .zip(target.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let (cur_rest, tgt_rest) = (&current[prefix..], &target[prefix..]);
    let suffix: usize = cur_rest
        .chars()
        .rev()
        .zip(tgt_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let deleted = &cur_rest[..cur_rest.len() - suffix];
    let inserted = &tgt_rest[..tgt_rest.len() - suffix];
    let utf16 = |s: &str| s.encode_utf16().count() as u32;
    (utf16(&current[..prefix]), utf16(deleted), inserted)
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
    /// Record the awareness clients (id, clock, gone) this socket speaks for.
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
    can_write: bool,
    limits: &DocLimits,
) -> Result<Vec<DocEffect>, DocError> {
    let messages = decode_frame(frame, limits)?;
    // Decode every update first: a frame with one bad update applies nothing.
    let mut decoded = Vec::new();
    let mut incoming = 0;
    for msg in &messages {
        if let Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) = msg {
            if can_write {
                decoded.push(Update::decode_v1(u).map_err(malformed)?);
                incoming += u.len();
            }
        }
    }
    if doc.stored_bytes + incoming > limits.doc_bytes {
        return Err(DocError::DocTooLarge(limits.doc_bytes));
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
                let Some(parsed) = decoded.next().filter(|_| can_write) else {
                    continue;
                };
                doc.integrate(parsed)?;
                doc.stored_bytes += update.len();
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

impl Run {
    fn updates(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.data[a..b])
    }
}

/// Whether the tail of updates should be folded into a new snapshot.
pub fn should_compact(tail_updates: u64, tail_bytes: u64, limits: &DocLimits) -> bool {
    tail_updates >= limits.compact_after_updates || tail_bytes >= limits.compact_after_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::{Doc, Text, Transact};

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
        handle_frame(&mut server, &frame_for(&u), true, &DocLimits::default()).unwrap();
        let fresh = Doc::new();
        let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(
            fresh.transact().state_vector(),
        )));
        let effects = handle_frame(&mut server, &step1, true, &DocLimits::default()).unwrap();
        let DocEffect::Reply(reply) = &effects[0] else {
            panic!("{effects:?}")
        };
        let msgs = decode_frame(reply, &DocLimits::default()).unwrap();
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
        let effects =
            handle_frame(&mut server, &frame_for(&u), false, &DocLimits::default()).unwrap();
        assert!(effects.is_empty());
        assert_eq!(server.text("t"), "");
    }

    #[test]
    fn bad_frames_change_nothing() {
        let mut server = LiveDoc::new();
        let good = client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "ok"));
        handle_frame(&mut server, &frame_for(&good), true, &DocLimits::default()).unwrap();
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
                handle_frame(&mut server, &bad, true, &limits).is_err(),
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
            handle_frame(&mut server, &frame_for(&big), true, &limits).unwrap_err(),
            DocError::MessageTooLarge(64)
        );
        let limits = DocLimits {
            message_bytes: 1 << 20,
            doc_bytes: 100,
            ..DocLimits::default()
        };
        let e = handle_frame(&mut server, &frame_for(&big), true, &limits).unwrap_err();
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
    fn restore_is_a_forward_change_that_converges() {
        let client = Doc::new();
        let mut server = LiveDoc::new();
        server
            .apply(&client_edit(&client, |t, txn| {
                t.insert(txn, 0, "version one")
            }))
            .unwrap();
        let v1 = LiveDoc::load(&server.snapshot(), []).unwrap();
        server
            .apply(&client_edit(&client, |t, txn| t.insert(txn, 8, "NOT ")))
            .unwrap();
        assert_eq!(server.text("t"), "version NOT one");
        let change = server.restore_texts(&v1, &["t".to_string()]).unwrap();
        assert_eq!(server.text("t"), "version one");
        client
            .transact_mut()
            .apply_update(Update::decode_v1(&change).unwrap())
            .unwrap();
        assert_eq!(
            client
                .get_or_insert_text("t")
                .get_string(&client.transact()),
            "version one"
        );
        assert!(
            server.restore_texts(&v1, &["t".to_string()]).is_none(),
            "nothing left to restore"
        );
    }

    #[test]
    fn text_diff_keeps_common_ends() {
        assert_eq!(
            text_diff("hello world", "hello brave world"),
            (6, 0, "brave ")
        );
        assert_eq!(text_diff("abc", "abc"), (3, 0, ""));
        assert_eq!(text_diff("aXc", "aYc"), (1, 1, "Y"));
        assert_eq!(text_diff("😀a", "😀b"), (2, 1, "b"));
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
        let effects = handle_frame(&mut server, &frame, false, &DocLimits::default()).unwrap();
        assert_eq!(effects[0], DocEffect::Awareness(vec![(7, 3, false)]));
        assert!(matches!(&effects[1], DocEffect::Relay(b) if *b == frame));
        let removal = decode_frame(&awareness_removal(&[(7, 3)]), &DocLimits::default()).unwrap();
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
            let _ = handle_frame(&mut server, &bytes, true, &DocLimits::default());
            let good = frame_for(&client_edit(&Doc::new(), |t, txn| t.insert(txn, 0, "fuzz me")));
            let mut mutated = good.clone();
            let i = flip.0 % mutated.len();
            mutated[i] ^= flip.1;
            let mut server = LiveDoc::new();
            let _ = handle_frame(&mut server, &mutated, true, &DocLimits::default());
        }
    }
}
