//! The document half of the room engine, sans-IO like the chat half: the Room
//! object hands it one event of a document socket (y-websocket) at a time —
//! opened, a frame, closed, a member changed, the flush timer — with the
//! synchronous [`DocStorage`] port, and executes the [`DocOutput`]s it
//! returns, in order.
//!
//! It owns the documents held in memory, each socket's budgets and
//! awareness, the latest role the room heard for each person (a demotion
//! makes an open socket read-only from its next frame, a removal closes it;
//! kept in storage, so a socket woken from hibernation sees the same), and
//! the write path. An update is integrated at once and queued; the queue is
//! written in one turn (one transaction) when the flush timer
//! ([`Docs::poll_timeout`]) expires — updates that arrive together share it —
//! when it is full, before a SyncStep1 is answered (a newcomer never receives
//! what is not stored), and before a document leaves memory. Only what was
//! written is broadcast; when a write fails, the document is dropped from
//! memory (storage has the truth) and its writers are closed so they re-sync.

use super::{ConnId, CLOSE_REMOVED};
use crate::docs::{
    awareness_removal, handle_frame, merge_burst, track_awareness, update_message, Access,
    DocEffect, DocError, DocLimits, FlushStats, LiveDoc, Peer, Rights, StoreAs, UpdateQueue,
    CLOSE_DOC_DELETED,
};
use crate::rooms::Role;
use std::collections::HashMap;

/// How long the first queued update waits for others to share its write:
/// none beyond the current turn, so what arrives together is written together
/// and a lone keystroke is not delayed.
pub const FLUSH_DELAY_MS: u64 = 0;
/// A `doc_changed` event goes to the room's chat sockets at most this often per document.
const DOC_EVENT_EVERY_MS: u64 = 2_000;
/// Close code and reason when a socket's updates could not be stored.
pub const CLOSE_NOT_STORED: u16 = 1011;

/// Awareness clients (id, clock) a socket speaks for.
pub type Clients = Vec<(u64, u32)>;

/// What the engine needs from the room's storage for documents.
pub trait DocStorage {
    type Error: std::fmt::Display;
    /// The document as stored, or `None` when it was never written.
    fn load(&self, doc: &str) -> Result<Option<LiveDoc>, Self::Error>;
    /// Whether `doc` was deleted (it has a tombstone).
    fn is_deleted(&self, doc: &str) -> Result<bool, Self::Error>;
    /// How many documents the room has.
    fn count(&self) -> Result<u64, Self::Error>;
    /// The latest role the room heard for each person (`None`: removed).
    fn member_roles(&self) -> Result<Vec<(String, Option<Role>)>, Self::Error>;
    fn set_member_role(&self, user: &str, role: Option<Role>) -> Result<(), Self::Error>;
    /// Stores a burst of `live`'s updates (merged into `rows`; `live` holds
    /// them already) as `plan_write` says, in one transaction.
    fn write_burst(
        &self,
        doc: &str,
        live: &mut LiveDoc,
        rows: &[&[u8]],
        now_ms: u64,
        limits: &DocLimits,
    ) -> Result<StoreAs, Self::Error>;
}

/// A document socket as the object knows it from its tags.
#[derive(Debug, Clone, Copy)]
pub struct DocSocket<'a> {
    pub conn: &'a str,
    pub doc: &'a str,
    pub user: &'a str,
    /// The right it was opened with (`rw` or `ro`).
    pub opened: Access,
}

/// What the object does after a document event, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOutput {
    /// A message for one socket.
    Send { to: ConnId, message: Vec<u8> },
    /// A message for every socket of `doc` but `except`.
    Broadcast {
        doc: String,
        message: Vec<u8>,
        except: Option<ConnId>,
    },
    Close {
        to: ConnId,
        code: u16,
        reason: String,
    },
    /// Close every document socket of a person (removed from the room).
    CloseUser {
        user: String,
        code: u16,
        reason: &'static str,
    },
    /// The awareness clients a socket speaks for, to keep in its attachment
    /// (read back through `frame`'s and `left`'s `tracked` after hibernation).
    SaveAwareness { to: ConnId, clients: Clients },
    /// `doc`'s burst was stored and broadcast, for what follows a change (the
    /// search index, the backup); `announce`: tell the room's chat sockets.
    Stored { doc: String, announce: bool },
    /// `doc`'s queued updates could not be stored (nothing was broadcast).
    WriteFailed { doc: String, error: String },
}

/// The answer to a socket being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Accept it and close it at once with this code, so the client hears
    /// why and nothing it sends (its cached copy) is read.
    Refused { code: u16, reason: &'static str },
    /// Accept it, tagged writable or not, and send it `greeting` (sync step 1
    /// and the other sockets' awareness).
    Accepted { write: bool, greeting: Vec<Vec<u8>> },
}

/// What the engine keeps in memory for one socket; losing it on eviction
/// only refills the budgets (the awareness clients are in its attachment,
/// and clients renew their awareness).
#[derive(Debug)]
struct Socket {
    doc: String,
    budgets: Peer,
    /// Its latest awareness message, for sockets that join later.
    awareness: Option<Vec<u8>>,
    /// The clients it speaks for; `None` until read from the attachment.
    clients: Option<Clients>,
}

/// The documents of a room and their sockets.
pub struct Docs {
    limits: DocLimits,
    open: HashMap<String, LiveDoc>,
    sockets: HashMap<ConnId, Socket>,
    pending: UpdateQueue,
    flush_at: Option<u64>,
    /// Read from storage once per object lifetime.
    roles: Option<HashMap<String, Option<Role>>>,
    announced: HashMap<String, u64>,
    stats: FlushStats,
}

/// Runs `f` on `doc` in memory, loaded from storage first if needed (its
/// name is copied only then, not per frame).
fn with_loaded<S: DocStorage, T>(
    open: &mut HashMap<String, LiveDoc>,
    store: &S,
    doc: &str,
    f: impl FnOnce(&mut LiveDoc) -> T,
) -> Result<T, S::Error> {
    if let Some(live) = open.get_mut(doc) {
        return Ok(f(live));
    }
    let live = match store.load(doc)? {
        Some(mut stored) => {
            stored.exists = true;
            stored
        }
        None => LiveDoc::default(),
    };
    Ok(f(open.entry(doc.to_string()).or_insert(live)))
}

/// What a frame does to `doc` when its sender has `budgets` and may write
/// or not: its effects, or why it is refused (then nothing changed). A
/// document that does not exist is created only if its name was not deleted
/// and the room has room for it (asked of storage only then).
#[allow(clippy::too_many_arguments)]
fn apply_frame<S: DocStorage>(
    open: &mut HashMap<String, LiveDoc>,
    store: &S,
    doc: &str,
    frame: &[u8],
    budgets: &mut Peer,
    write: bool,
    now: u64,
    limits: &DocLimits,
) -> Result<Result<Vec<DocEffect>, DocError>, S::Error> {
    with_loaded(open, store, doc, |live| {
        let rights = if live.exists {
            Rights {
                write,
                create: true,
            }
        } else if store.is_deleted(doc)? {
            return Ok(Err(DocError::Deleted));
        } else {
            Rights {
                write,
                create: !write || store.count()? < limits.docs_per_room,
            }
        };
        Ok(handle_frame(live, frame, budgets, rights, now, limits))
    })?
}

impl Docs {
    pub fn new(limits: DocLimits) -> Self {
        Self {
            limits,
            open: HashMap::new(),
            sockets: HashMap::new(),
            pending: UpdateQueue::default(),
            flush_at: None,
            roles: None,
            announced: HashMap::new(),
            stats: FlushStats::default(),
        }
    }

    pub fn limits(&self) -> &DocLimits {
        &self.limits
    }

    /// What the write path has done in this object's lifetime.
    pub fn stats(&self) -> FlushStats {
        self.stats
    }

    /// The latest role the room heard for `user` (`Some(None)`: removed), or
    /// `None` when it heard none.
    fn latest_role<S: DocStorage>(
        &mut self,
        store: &S,
        user: &str,
    ) -> Result<Option<Option<Role>>, S::Error> {
        if self.roles.is_none() {
            self.roles = Some(store.member_roles()?.into_iter().collect());
        }
        Ok(self.roles.as_ref().and_then(|r| r.get(user).copied()))
    }

    /// A socket of `role` asks to open `sock.doc` (the name is valid).
    pub fn open<S: DocStorage>(
        &mut self,
        store: &S,
        sock: DocSocket,
        role: Role,
        archived: bool,
        now: u64,
    ) -> Result<Opened, S::Error> {
        let access = Access::now(Access::of(role), self.latest_role(store, sock.user)?)
            .unless_archived(archived);
        if store.is_deleted(sock.doc)? {
            return Ok(Opened::Refused {
                code: CLOSE_DOC_DELETED,
                reason: "document deleted",
            });
        }
        if access == Access::Removed {
            return Ok(Opened::Refused {
                code: CLOSE_REMOVED,
                reason: "removed from the room",
            });
        }
        let mut greeting = vec![with_loaded(&mut self.open, store, sock.doc, |d| {
            d.sync_step1()
        })?];
        greeting.extend(self.awareness_of(sock.doc, sock.conn));
        self.sockets.insert(
            sock.conn.to_string(),
            Socket {
                doc: sock.doc.to_string(),
                budgets: Peer::new(&self.limits, now),
                awareness: None,
                clients: Some(Vec::new()),
            },
        );
        Ok(Opened::Accepted {
            write: access == Access::Write,
            greeting,
        })
    }

    /// The latest awareness message of every socket of `doc` but `except`.
    fn awareness_of(&self, doc: &str, except: &str) -> Vec<Vec<u8>> {
        self.sockets
            .iter()
            .filter(|(conn, s)| s.doc == doc && conn.as_str() != except)
            .filter_map(|(_, s)| s.awareness.clone())
            .collect()
    }

    /// A binary frame from `sock`. `tracked` reads the awareness clients
    /// kept in the socket's attachment, asked only if the engine lost them.
    pub fn frame<S: DocStorage>(
        &mut self,
        store: &S,
        sock: DocSocket,
        bytes: &[u8],
        archived: bool,
        now: u64,
        tracked: impl FnOnce() -> Clients,
    ) -> Result<Vec<DocOutput>, S::Error> {
        let access =
            Access::now(sock.opened, self.latest_role(store, sock.user)?).unless_archived(archived);
        let close = |code, reason: String| DocOutput::Close {
            to: sock.conn.to_string(),
            code,
            reason,
        };
        if access == Access::Removed {
            return Ok(vec![close(CLOSE_REMOVED, "removed from the room".into())]);
        }
        let limits = self.limits;
        if !self.sockets.contains_key(sock.conn) {
            self.sockets.insert(
                sock.conn.to_string(),
                Socket {
                    doc: sock.doc.to_string(),
                    budgets: Peer::new(&limits, now),
                    awareness: None,
                    clients: None,
                },
            );
        }
        let Some(socket) = self.sockets.get_mut(sock.conn) else {
            return Ok(Vec::new());
        };
        let effects = apply_frame(
            &mut self.open,
            store,
            sock.doc,
            bytes,
            &mut socket.budgets,
            access == Access::Write,
            now,
            &limits,
        )?;
        let effects = match effects {
            Ok(effects) => effects,
            Err(e) => return Ok(vec![close(e.close_code(), e.to_string())]),
        };
        let mut tracked = Some(tracked);
        let mut out = Vec::new();
        let mut queued = false;
        for effect in effects {
            match effect {
                DocEffect::Reply(reply) => {
                    // The answer holds the document as it is in memory.
                    if self.pending.holds(sock.doc) {
                        self.flush_into(store, now, &mut out);
                    }
                    if write_failed(&out, sock.doc) {
                        out.push(close(
                            CLOSE_NOT_STORED,
                            "the document could not be stored; reconnect to re-sync".into(),
                        ));
                        return Ok(out);
                    }
                    out.push(DocOutput::Send {
                        to: sock.conn.to_string(),
                        message: reply,
                    });
                }
                DocEffect::Persist(update) => {
                    self.pending.push(sock.doc, Some(sock.conn), &update);
                    queued = true;
                }
                DocEffect::Relay(message) => {
                    if let Some(s) = self.sockets.get_mut(sock.conn) {
                        s.awareness = Some(message.clone());
                    }
                    out.push(DocOutput::Broadcast {
                        doc: sock.doc.to_string(),
                        message,
                        except: Some(sock.conn.to_string()),
                    });
                }
                DocEffect::Awareness(changes) => {
                    let Some(s) = self.sockets.get_mut(sock.conn) else {
                        continue;
                    };
                    let clients = match &mut s.clients {
                        Some(clients) => clients,
                        lost => lost.insert(tracked.take().map(|read| read()).unwrap_or_default()),
                    };
                    if let Err(e) = track_awareness(clients, &changes, &limits) {
                        out.push(close(e.close_code(), e.to_string()));
                        return Ok(out);
                    }
                    out.push(DocOutput::SaveAwareness {
                        to: sock.conn.to_string(),
                        clients: clients.clone(),
                    });
                }
                DocEffect::AnswerAwarenessQuery => {
                    out.extend(
                        self.awareness_of(sock.doc, sock.conn)
                            .into_iter()
                            .map(|message| DocOutput::Send {
                                to: sock.conn.to_string(),
                                message,
                            }),
                    );
                }
            }
        }
        if queued {
            if self.pending.is_full() {
                self.flush_into(store, now, &mut out);
            } else if self.flush_at.is_none() {
                self.flush_at = Some(now + FLUSH_DELAY_MS);
            }
        }
        Ok(out)
    }

    /// Queues an update that is not a socket's (a REST write or a restore),
    /// already in `doc`'s memory; the caller flushes.
    pub fn queue(&mut self, doc: &str, update: &[u8]) {
        self.pending.push(doc, None, update);
    }

    /// A REST write of one update to `doc` (the caller checked the role):
    /// applied as a writer's frame with fresh budgets, and queued.
    pub fn post_update<S: DocStorage>(
        &mut self,
        store: &S,
        doc: &str,
        update: &[u8],
        now: u64,
    ) -> Result<Result<(), DocError>, S::Error> {
        let limits = self.limits;
        let frame = update_message(update);
        let mut budgets = Peer::new(&limits, now);
        let effects = match apply_frame(
            &mut self.open,
            store,
            doc,
            &frame,
            &mut budgets,
            true,
            now,
            &limits,
        )? {
            Ok(effects) => effects,
            Err(e) => return Ok(Err(e)),
        };
        for effect in effects {
            if let DocEffect::Persist(update) = effect {
                self.pending.push(doc, None, &update);
            }
        }
        Ok(Ok(()))
    }

    /// When the queued updates are due to be written, if any are queued.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.flush_at
    }

    /// Writes the queue if its time has come.
    pub fn expired<S: DocStorage>(&mut self, store: &S, now: u64) -> Vec<DocOutput> {
        let mut out = Vec::new();
        if self.flush_at.is_some_and(|at| at <= now) {
            self.flush_into(store, now, &mut out);
        }
        out
    }

    /// Writes every queued update now (a request needs them stored).
    pub fn flush<S: DocStorage>(&mut self, store: &S, now: u64) -> Vec<DocOutput> {
        let mut out = Vec::new();
        self.flush_into(store, now, &mut out);
        out
    }

    /// Writes every queued update in one turn, then broadcasts: each
    /// document's burst merged per run of one sender's updates
    /// (`merge_burst`), one row and one message per group, which is what
    /// makes a fast typist cheap for every reader. A document whose write
    /// failed is named by a `WriteFailed` output.
    fn flush_into<S: DocStorage>(&mut self, store: &S, now: u64, out: &mut Vec<DocOutput>) {
        self.flush_at = None;
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() {
            return;
        }
        self.stats.flushes += 1;
        for (name, burst) in batch.bursts() {
            let groups = merge_burst(&burst);
            let rows: Vec<&[u8]> = groups.iter().map(|(_, u)| u.as_slice()).collect();
            let written = match self.open.get_mut(name) {
                Some(live) => store
                    .write_burst(name, live, &rows, now, &self.limits)
                    .map_err(|e| e.to_string()),
                None => Err("the document left memory before it was stored".to_string()),
            };
            let stored = match written {
                Ok(stored) => stored,
                Err(error) => {
                    self.open.remove(name);
                    out.push(DocOutput::WriteFailed {
                        doc: name.to_string(),
                        error,
                    });
                    let writers: Vec<&str> = burst.iter().filter_map(|(c, _)| *c).collect();
                    for (i, conn) in writers.iter().enumerate() {
                        if !writers[..i].contains(conn) {
                            out.push(DocOutput::Close {
                                to: conn.to_string(),
                                code: CLOSE_NOT_STORED,
                                reason: "the update could not be stored; reconnect to re-sync"
                                    .into(),
                            });
                        }
                    }
                    continue;
                }
            };
            self.stats.burst(burst.len(), rows.len(), stored);
            for (conn, update) in &groups {
                out.push(DocOutput::Broadcast {
                    doc: name.to_string(),
                    message: update_message(update),
                    except: conn.map(str::to_string),
                });
            }
            let announce = self
                .announced
                .get(name)
                .is_none_or(|t| now >= t + DOC_EVENT_EVERY_MS);
            if announce {
                self.announced.insert(name.to_string(), now);
            }
            out.push(DocOutput::Stored {
                doc: name.to_string(),
                announce,
            });
        }
    }

    /// `sock` closed; `others_open`: whether other sockets of its document
    /// are still open. Its awareness clients are announced gone, and the
    /// document is written and leaves memory when nobody has it open.
    pub fn left<S: DocStorage>(
        &mut self,
        store: &S,
        sock: DocSocket,
        others_open: bool,
        now: u64,
        tracked: impl FnOnce() -> Clients,
    ) -> Vec<DocOutput> {
        let mut out = Vec::new();
        let clients = match self.sockets.remove(sock.conn) {
            Some(Socket {
                clients: Some(clients),
                ..
            }) => clients,
            _ => tracked(),
        };
        if !clients.is_empty() {
            out.push(DocOutput::Broadcast {
                doc: sock.doc.to_string(),
                message: awareness_removal(&clients),
                except: Some(sock.conn.to_string()),
            });
        }
        if !others_open {
            self.flush_into(store, now, &mut out);
            self.open.remove(sock.doc);
        }
        out
    }

    /// The room heard a new role for `user` (`None`: removed): stored first
    /// (sockets woken later read it), then a removed person's sockets close.
    pub fn member_changed<S: DocStorage>(
        &mut self,
        store: &S,
        user: &str,
        role: Option<Role>,
    ) -> Result<Vec<DocOutput>, S::Error> {
        self.latest_role(store, user)?;
        store.set_member_role(user, role)?;
        if let Some(roles) = self.roles.as_mut() {
            roles.insert(user.to_string(), role);
        }
        Ok(match role {
            None => vec![DocOutput::CloseUser {
                user: user.to_string(),
                code: CLOSE_REMOVED,
                reason: "removed from the room",
            }],
            Some(_) => Vec::new(),
        })
    }

    /// Runs `f` on `doc`, loading it from storage first if needed.
    pub fn with_doc<S: DocStorage, T>(
        &mut self,
        store: &S,
        doc: &str,
        f: impl FnOnce(&mut LiveDoc) -> T,
    ) -> Result<T, S::Error> {
        with_loaded(&mut self.open, store, doc, f)
    }

    /// The state of `doc` if it is in memory.
    pub fn snapshot_if_open(&self, doc: &str) -> Option<Vec<u8>> {
        self.open.get(doc).map(LiveDoc::snapshot)
    }

    /// Drops `doc` from memory unless updates of it wait to be written (it
    /// is read from storage next time).
    pub fn forget(&mut self, doc: &str) {
        if !self.pending.holds(doc) {
            self.open.remove(doc);
        }
    }

    /// `doc` was deleted: what was queued for it is dropped with it.
    pub fn discard(&mut self, doc: &str) {
        self.pending.discard(doc);
        self.open.remove(doc);
    }
}

/// Whether `out` reports that `doc`'s write failed.
pub fn write_failed(out: &[DocOutput], doc: &str) -> bool {
    out.iter()
        .any(|o| matches!(o, DocOutput::WriteFailed { doc: d, .. } if d == doc))
}
