//! A simulated room's document sockets, as `sim` is for chat: y-websocket
//! clients as yrs documents, a virtual clock and an in-memory store, driven
//! through the calls the Room object makes and executing the outputs the way
//! it does. Every broadcast update and every sync step 2 is checked against
//! storage first: nothing reaches another socket before it is stored.

use super::docs::*;
use super::CLOSE_REMOVED;
use crate::docs::{
    decode_frame, encode, plan_write, update_message, Access, DocLimits, LiveDoc, StoreAs,
    CLOSE_DOC_DELETED, FLUSH_AT_UPDATES, TEXT_ROOT,
};
use crate::rooms::Role;
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, ReadTxn, Text, Transact, Update};

const DOC: &str = "notes";

/// The object's SQLite for documents: a snapshot and a tail of rows each.
#[derive(Default)]
struct MemDocs {
    snapshots: RefCell<HashMap<String, Vec<u8>>>,
    tails: RefCell<HashMap<String, Vec<Vec<u8>>>>,
    deleted: RefCell<HashSet<String>>,
    roles: RefCell<HashMap<String, Option<Role>>>,
    broken: Cell<bool>,
    /// Transactions (`write_burst` calls) that committed.
    commits: Cell<u32>,
}

impl MemDocs {
    fn stored_text(&self, doc: &str) -> String {
        self.load(doc)
            .unwrap()
            .map(|d| d.text(TEXT_ROOT))
            .unwrap_or_default()
    }

    /// Whether what storage holds of `doc` already contains `update`.
    fn contains(&self, doc: &str, update: &[u8]) -> bool {
        let mut stored = self.load(doc).unwrap().unwrap_or_default();
        let before = stored.state_vector();
        stored.apply(update).unwrap();
        stored.state_vector() == before
    }
}

impl DocStorage for MemDocs {
    type Error = String;

    fn load(&self, doc: &str) -> Result<Option<LiveDoc>, String> {
        let tails = self.tails.borrow();
        let Some(tail) = tails.get(doc) else {
            return Ok(None);
        };
        let snapshot = self
            .snapshots
            .borrow()
            .get(doc)
            .cloned()
            .unwrap_or_default();
        let mut live =
            LiveDoc::load(&snapshot, tail.iter().map(Vec::as_slice)).map_err(|e| e.to_string())?;
        live.snapshot_bytes = snapshot.len() as u64;
        live.tail_updates = tail.len() as u64;
        live.tail_bytes = tail.iter().map(|u| u.len() as u64).sum();
        live.stored_bytes = (live.snapshot_bytes + live.tail_bytes) as usize;
        Ok(Some(live))
    }
    fn is_deleted(&self, doc: &str) -> Result<bool, String> {
        Ok(self.deleted.borrow().contains(doc))
    }
    fn count(&self) -> Result<u64, String> {
        Ok(self.tails.borrow().len() as u64)
    }
    fn member_roles(&self) -> Result<Vec<(String, Option<Role>)>, String> {
        Ok(self.roles.borrow().clone().into_iter().collect())
    }
    fn set_member_role(&self, user: &str, role: Option<Role>) -> Result<(), String> {
        self.roles.borrow_mut().insert(user.into(), role);
        Ok(())
    }
    fn write_burst(
        &self,
        doc: &str,
        live: &mut LiveDoc,
        rows: &[&[u8]],
        _now_ms: u64,
        limits: &DocLimits,
    ) -> Result<StoreAs, String> {
        if self.broken.get() {
            return Err("disk full".into());
        }
        let plan = plan_write(live, rows, limits);
        let mut tails = self.tails.borrow_mut();
        let tail = tails.entry(doc.into()).or_default();
        match plan {
            StoreAs::Append => {
                tail.extend(rows.iter().map(|r| r.to_vec()));
                live.tail_updates += rows.len() as u64;
                live.tail_bytes += rows.iter().map(|r| r.len() as u64).sum::<u64>();
            }
            StoreAs::Snapshot => {
                let snapshot = live.snapshot();
                tail.clear();
                live.compacted(&snapshot).map_err(|e| e.to_string())?;
                self.snapshots.borrow_mut().insert(doc.into(), snapshot);
            }
        }
        self.commits.set(self.commits.get() + 1);
        Ok(plan)
    }
}

/// A y-websocket client with its own copy of the document.
struct Client {
    conn: String,
    user: String,
    opened: Access,
    doc: Doc,
    open: bool,
    closed: Option<u16>,
    /// Frames it will send next (its answers to the server's sync step 1).
    outgoing: Vec<Vec<u8>>,
    /// Awareness states it heard: client id → (clock, state).
    peers: HashMap<u64, (u32, String)>,
    /// What the object keeps in the socket's attachment.
    attachment: Clients,
    /// Update messages it received.
    updates_heard: usize,
}

impl Client {
    fn text(&self) -> String {
        self.doc
            .get_or_insert_text(TEXT_ROOT)
            .get_string(&self.doc.transact())
    }

    fn receive(&mut self, message: &[u8]) {
        let (messages, _) = decode_frame(message, &DocLimits::default()).unwrap();
        for m in messages {
            match m {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                    self.outgoing
                        .push(encode(&Message::Sync(SyncMessage::SyncStep2(diff))));
                }
                Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) => {
                    self.updates_heard += 1;
                    self.doc
                        .transact_mut()
                        .apply_update(Update::decode_v1(&u).unwrap())
                        .unwrap();
                }
                Message::Awareness(a) => {
                    for (id, e) in a.clients {
                        self.peers.insert(id.get(), (e.clock, e.json.to_string()));
                    }
                }
                _ => {}
            }
        }
    }
}

struct Sim {
    docs: Docs,
    store: MemDocs,
    now: u64,
    archived: bool,
    clients: Vec<Client>,
    /// What each `Stored` and `WriteFailed` named, in order.
    stored: Vec<String>,
    failed: Vec<String>,
}

fn who(c: &Client) -> DocSocket<'_> {
    DocSocket {
        conn: &c.conn,
        doc: DOC,
        user: &c.user,
        opened: c.opened,
    }
}

fn awareness(id: u64, clock: u32, state: &str) -> Vec<u8> {
    encode(&Message::Awareness(AwarenessUpdate {
        clients: [(
            ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: state.into(),
            },
        )]
        .into(),
    }))
}

impl Sim {
    fn new() -> Self {
        Self::with(DocLimits::default())
    }

    fn with(limits: DocLimits) -> Self {
        Self {
            docs: Docs::new(limits),
            store: MemDocs::default(),
            now: 1_000_000,
            archived: false,
            clients: Vec::new(),
            stored: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// The object was evicted or hibernated: the engine's memory is gone,
    /// storage and the sockets (with their tags and attachments) remain.
    fn restart(&mut self) {
        self.docs = Docs::new(*self.docs.limits());
    }

    /// `user` opens a socket with `role`; it answers the server's sync step 1
    /// and sends its own, as y-websocket does.
    fn join(&mut self, user: &str, role: Role) -> usize {
        let i = self.clients.len();
        self.clients.push(Client {
            conn: format!("c{i}"),
            user: user.into(),
            opened: Access::of(role),
            doc: Doc::new(),
            open: false,
            closed: None,
            outgoing: Vec::new(),
            peers: HashMap::new(),
            attachment: Vec::new(),
            updates_heard: 0,
        });
        let opened = self
            .docs
            .open(
                &self.store,
                who(&self.clients[i]),
                role,
                self.archived,
                self.now,
            )
            .unwrap();
        let c = &mut self.clients[i];
        match opened {
            Opened::Refused { code, .. } => c.closed = Some(code),
            Opened::Accepted { write, greeting } => {
                c.open = true;
                c.opened = if write { Access::Write } else { Access::Read };
                for m in greeting {
                    c.receive(&m);
                }
                let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(
                    c.doc.transact().state_vector(),
                )));
                c.outgoing.push(step1);
            }
        }
        self.settle(i);
        i
    }

    /// Sends what client `i` has to send.
    fn settle(&mut self, i: usize) {
        while !self.clients[i].outgoing.is_empty() && self.clients[i].open {
            let frame = self.clients[i].outgoing.remove(0);
            self.frame(i, &frame);
        }
    }

    fn frame(&mut self, i: usize, bytes: &[u8]) -> Vec<DocOutput> {
        let attachment = self.clients[i].attachment.clone();
        let out = self
            .docs
            .frame(
                &self.store,
                who(&self.clients[i]),
                bytes,
                self.archived,
                self.now,
                || attachment,
            )
            .unwrap();
        self.run(out.clone());
        out
    }

    /// Client `i` types `text` at `at` (clamped to its text's length).
    fn edit(&mut self, i: usize, at: u32, text: &str) -> Vec<DocOutput> {
        let doc = &self.clients[i].doc;
        let t = doc.get_or_insert_text(TEXT_ROOT);
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            let at = at.min(t.len(&txn));
            t.insert(&mut txn, at, text);
        }
        let update = doc.transact().encode_state_as_update_v1(&before);
        self.frame(i, &update_message(&update))
    }

    /// The flush timer fires if it is due.
    fn tick(&mut self) {
        if let Some(at) = self.docs.poll_timeout() {
            self.now = self.now.max(at);
            let out = self.docs.expired(&self.store, self.now);
            self.run(out);
        }
    }

    fn leave(&mut self, i: usize) {
        self.clients[i].open = false;
        let others = self.clients.iter().any(|c| c.open);
        let attachment = self.clients[i].attachment.clone();
        let out = self
            .docs
            .left(&self.store, who(&self.clients[i]), others, self.now, || {
                attachment
            });
        self.run(out);
    }

    fn member(&mut self, user: &str, role: Option<Role>) {
        let out = self.docs.member_changed(&self.store, user, role).unwrap();
        self.run(out);
    }

    fn by_conn(&mut self, conn: &str) -> usize {
        self.clients.iter().position(|c| c.conn == conn).unwrap()
    }

    fn close(&mut self, i: usize, code: u16) {
        if self.clients[i].open {
            self.clients[i].closed = Some(code);
            self.leave(i);
        }
    }

    fn run(&mut self, outputs: Vec<DocOutput>) {
        for o in outputs {
            match o {
                DocOutput::Send { to, message } => {
                    // A sync step 2 answers a newcomer: only what is stored.
                    let (messages, _) = decode_frame(&message, &DocLimits::default()).unwrap();
                    for m in &messages {
                        if let Message::Sync(SyncMessage::SyncStep2(u)) = m {
                            assert!(
                                self.store.contains(DOC, u),
                                "a newcomer was sent what is not stored"
                            );
                        }
                    }
                    let i = self.by_conn(&to);
                    if self.clients[i].open {
                        self.clients[i].receive(&message);
                    }
                }
                DocOutput::Broadcast {
                    doc,
                    message,
                    except,
                } => {
                    let (messages, _) = decode_frame(&message, &DocLimits::default()).unwrap();
                    for m in &messages {
                        if let Message::Sync(SyncMessage::Update(u)) = m {
                            assert!(
                                self.store.contains(&doc, u),
                                "an update was broadcast before it was stored"
                            );
                        }
                    }
                    for c in self.clients.iter_mut() {
                        if c.open && Some(&c.conn) != except.as_ref() {
                            c.receive(&message);
                        }
                    }
                }
                DocOutput::Close { to, code, .. } => {
                    let i = self.by_conn(&to);
                    self.close(i, code);
                }
                DocOutput::CloseUser { user, code, .. } => {
                    for i in 0..self.clients.len() {
                        if self.clients[i].user == user {
                            self.close(i, code);
                        }
                    }
                }
                DocOutput::SaveAwareness { to, clients } => {
                    let i = self.by_conn(&to);
                    self.clients[i].attachment = clients;
                }
                DocOutput::Stored { doc, .. } => self.stored.push(doc),
                DocOutput::WriteFailed { doc, .. } => self.failed.push(doc),
            }
        }
    }
}

#[test]
fn an_update_is_stored_before_anyone_hears_it_and_then_reaches_every_other_socket() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    sim.edit(a, 0, "hello");
    // Queued, not yet written: nobody has heard it.
    assert_eq!(sim.store.stored_text(DOC), "");
    assert_eq!(sim.clients[b].text(), "");
    assert_eq!(sim.docs.poll_timeout(), Some(sim.now + FLUSH_DELAY_MS));
    sim.tick();
    assert_eq!(sim.store.stored_text(DOC), "hello");
    assert_eq!(sim.clients[b].text(), "hello");
    // The sender is not sent its own update back.
    assert_eq!(sim.clients[a].updates_heard, 1, "only its sync step 2");
    assert_eq!(sim.docs.poll_timeout(), None);
    assert_eq!(sim.stored, vec![DOC.to_string()]);
}

#[test]
fn updates_that_arrive_together_share_one_commit_merged_per_sender() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    let c = sim.join("cat", Role::Viewer);
    let commits = sim.store.commits.get();
    for (i, s) in [(a, "a"), (a, "b"), (a, "c"), (b, "x"), (b, "y")] {
        sim.edit(i, 0, s);
    }
    sim.tick();
    assert_eq!(sim.store.commits.get(), commits + 1);
    let stats = sim.docs.stats();
    assert_eq!((stats.updates, stats.rows), (5, 2), "{stats}");
    assert_eq!(
        sim.clients[c].updates_heard,
        1 + 2,
        "its sync step 2, then one per sender"
    );
    let text = sim.clients[c].text();
    assert_eq!(text.len(), 5);
    for i in [a, b] {
        assert_eq!(sim.clients[i].text(), text);
    }
}

#[test]
fn a_newcomer_is_answered_only_with_what_is_stored() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    sim.edit(a, 0, "draft");
    assert_eq!(sim.store.stored_text(DOC), "");
    // Joining sends a sync step 1: the queue is written before it is answered.
    let c = sim.join("cat", Role::Viewer);
    assert_eq!(sim.clients[c].text(), "draft");
    assert_eq!(sim.store.stored_text(DOC), "draft");
    assert_eq!(sim.docs.poll_timeout(), None);
}

#[test]
fn a_full_queue_is_written_without_waiting_for_the_timer() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    for _ in 0..FLUSH_AT_UPDATES {
        // Within the socket's message rate, with no timer firing between.
        sim.now += 10;
        sim.edit(a, 0, "x");
    }
    assert!(sim.clients[a].open);
    assert_eq!(sim.docs.poll_timeout(), None);
    assert_eq!(sim.store.stored_text(DOC).len(), FLUSH_AT_UPDATES);
    assert_eq!(sim.clients[b].text().len(), FLUSH_AT_UPDATES);
}

#[test]
fn a_failed_write_broadcasts_nothing_and_makes_its_writers_resync() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    sim.edit(a, 0, "kept");
    sim.tick();
    sim.store.broken.set(true);
    sim.edit(a, 4, " lost");
    sim.tick();
    assert_eq!(sim.failed, vec![DOC.to_string()]);
    assert_eq!(sim.clients[a].closed, Some(CLOSE_NOT_STORED));
    assert_eq!(
        (sim.clients[b].text().as_str(), sim.clients[b].open),
        ("kept", true)
    );
    // The document left memory: a newcomer gets what storage has.
    sim.store.broken.set(false);
    let c = sim.join("cat", Role::Viewer);
    assert_eq!(sim.clients[c].text(), "kept");
}

#[test]
fn viewers_and_an_archived_room_change_nothing() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let v = sim.join("vic", Role::Viewer);
    assert_eq!(sim.clients[v].opened, Access::Read);
    sim.edit(v, 0, "nope");
    assert_eq!(sim.docs.poll_timeout(), None);
    sim.archived = true;
    sim.edit(a, 0, "nope");
    assert_eq!(sim.docs.poll_timeout(), None);
    assert_eq!(sim.store.stored_text(DOC), "");
    // Reading goes on.
    let c = sim.join("cat", Role::Member);
    assert_eq!(
        (sim.clients[c].open, sim.clients[c].opened),
        (true, Access::Read)
    );
}

#[test]
fn a_new_role_reaches_open_sockets_at_their_next_frame_and_survives_eviction() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    sim.member("bob", Some(Role::Viewer));
    sim.edit(b, 0, "demoted");
    assert_eq!(sim.docs.poll_timeout(), None, "not applied");
    // Storage keeps the role: a restarted object reads it.
    sim.restart();
    sim.edit(b, 0, "still");
    assert_eq!(sim.docs.poll_timeout(), None);
    sim.member("bob", Some(Role::Admin));
    // Its copy now differs from the room's (it kept the refused edits); a
    // new socket of the promoted person writes.
    let b2 = sim.join("bob", Role::Member);
    sim.edit(b2, 0, "promoted");
    sim.tick();
    for i in [a, b2] {
        assert_eq!(sim.clients[i].text(), "promoted");
    }
}

#[test]
fn a_removed_member_is_closed_and_cannot_reopen() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Member);
    let b2 = sim.join("bob", Role::Viewer);
    sim.member("bob", None);
    assert_eq!(sim.clients[b].closed, Some(CLOSE_REMOVED));
    assert_eq!(sim.clients[b2].closed, Some(CLOSE_REMOVED));
    assert!(sim.clients[a].open);
    let again = sim.join("bob", Role::Member);
    assert_eq!(sim.clients[again].closed, Some(CLOSE_REMOVED));
    // A frame already on its way from a removed socket closes it too.
    sim.restart();
    sim.clients[b].open = true;
    let out = sim.edit(b, 0, "late");
    assert!(
        matches!(&out[..], [DocOutput::Close { code, .. }] if *code == CLOSE_REMOVED),
        "{out:?}"
    );
    assert_eq!(sim.store.stored_text(DOC), "");
}

#[test]
fn a_deleted_document_refuses_sockets() {
    let mut sim = Sim::new();
    sim.store.deleted.borrow_mut().insert(DOC.into());
    let a = sim.join("ann", Role::Owner);
    assert_eq!(
        (sim.clients[a].open, sim.clients[a].closed),
        (false, Some(CLOSE_DOC_DELETED))
    );
}

#[test]
fn a_write_that_would_create_one_document_too_many_closes_its_socket() {
    let mut sim = Sim::with(DocLimits {
        docs_per_room: 1,
        ..DocLimits::default()
    });
    sim.store
        .tails
        .borrow_mut()
        .insert("other".into(), Vec::new());
    let a = sim.join("ann", Role::Member);
    assert!(
        sim.clients[a].open,
        "reading a document that does not exist is fine"
    );
    sim.edit(a, 0, "new");
    assert!(sim.clients[a].closed.is_some_and(|c| c != CLOSE_NOT_STORED));
    assert_eq!(sim.store.count().unwrap(), 1);
}

#[test]
fn awareness_is_relayed_kept_for_newcomers_and_removed_when_its_socket_closes() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    let b = sim.join("bob", Role::Viewer);
    sim.frame(a, &awareness(7, 1, r#"{"user":"ann"}"#));
    assert_eq!(sim.clients[b].peers[&7], (1, r#"{"user":"ann"}"#.into()));
    assert_eq!(sim.clients[a].attachment, vec![(7, 1)]);
    assert!(!sim.clients[a].peers.contains_key(&7), "not echoed");
    let c = sim.join("cat", Role::Viewer);
    assert_eq!(sim.clients[c].peers[&7].0, 1);
    // After a restart the engine has lost what `a` speaks for; the
    // attachment still says it, and its removal is announced.
    sim.restart();
    sim.leave(a);
    for i in [b, c] {
        assert_eq!(sim.clients[i].peers[&7], (2, "null".into()));
    }
}

#[test]
fn the_last_socket_leaving_writes_the_queue_and_frees_the_document() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Member);
    sim.edit(a, 0, "bye");
    sim.leave(a);
    assert_eq!(sim.store.stored_text(DOC), "bye");
    assert_eq!(sim.docs.poll_timeout(), None);
    assert_eq!(sim.docs.snapshot_if_open(DOC), None);
}

#[test]
fn a_rest_write_is_applied_like_a_writers_frame() {
    let mut sim = Sim::new();
    let a = sim.join("ann", Role::Viewer);
    let author = Doc::new();
    let t = author.get_or_insert_text(TEXT_ROOT);
    t.insert(&mut author.transact_mut(), 0, "posted");
    let update = author
        .transact()
        .encode_state_as_update_v1(&Default::default());
    sim.docs
        .post_update(&sim.store, DOC, &update, sim.now)
        .unwrap()
        .unwrap();
    let out = sim.docs.flush(&sim.store, sim.now);
    assert!(!write_failed(&out, DOC));
    sim.run(out);
    assert_eq!(sim.clients[a].text(), "posted");
    assert!(sim
        .docs
        .post_update(&sim.store, DOC, b"\xff\xff", sim.now)
        .unwrap()
        .is_err());
}

#[derive(Debug, Clone)]
enum Step {
    Edit(usize, u32, String),
    Tick,
    Rejoin(usize),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..20u32, "[a-z]{1,3}").prop_map(|(i, at, s)| Step::Edit(i, at, s)),
        2 => Just(Step::Tick),
        1 => (0..3usize).prop_map(Step::Rejoin),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    #[test]
    fn every_socket_and_storage_converge_and_nothing_is_heard_before_it_is_stored(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let mut sim = Sim::new();
        let mut at = vec![sim.join("ann", Role::Member), sim.join("bob", Role::Member), sim.join("cat", Role::Member)];
        for s in steps {
            match s {
                Step::Edit(i, pos, text) => { sim.edit(at[i], pos, &text); }
                Step::Tick => sim.tick(),
                Step::Rejoin(i) => {
                    // The flush before a newcomer's answer keeps it whole.
                    let user = sim.clients[at[i]].user.clone();
                    sim.leave(at[i]);
                    at[i] = sim.join(&user, Role::Member);
                }
                // Only after a flush: what is queued lives in memory only, as
                // in the object (an eviction loses unstored edits, which their
                // senders still hold and re-send when they reconnect).
                Step::Restart => { sim.tick(); sim.restart(); }
            }
        }
        sim.tick();
        let stored = sim.store.stored_text(DOC);
        for &i in &at {
            prop_assert_eq!(&sim.clients[i].text(), &stored);
        }
    }
}
