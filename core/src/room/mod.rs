//! The room engine for chat sockets, sans-IO in the shape of quinn-proto: the
//! Room object hands it one socket event at a time (the socket's state, the
//! input, the time) and executes the [`Output`]s it returns, in order. Its
//! document sockets have the same shape in [`docs`]; the room's deadlines
//! are [`timers`].
//!
//! It owns every decision about a chat socket: the per-person write and signal
//! rate limits, strikes for invalid frames, typing and presence, the `hello`
//! and the resume replay (`?since=`) on open, what leaving tells the room, the
//! caller's current role (kept in the [`Conn`], changed by
//! [`Room::member_changed`]), and which frames go to whom.
//!
//! Storage is the synchronous [`RoomStore`] port: the object's writes in one
//! turn commit together, before the outputs that broadcast them are executed,
//! so what is broadcast is already durable. What must survive hibernation is
//! the [`Conn`], which the object keeps as the socket's attachment
//! ([`Output::Save`]); the rate-limit buckets live in memory, and losing them
//! on eviction only resets the limits.

use crate::chat::{
    apply, plan_resume, store_err, ChatLimits, ChatStore, Outcome, Resume, HELLO_READS_MAX,
};
use crate::presence::{self, Connected};
use crate::protocol::{
    parse_client_frame, ClientFrame, Identity, PresenceEntry, ServerFrame, Status,
};
use crate::ratelimit::{Rate, TokenBucket};
use crate::rooms::{can, MemberNotice, Permission, Role};
use crate::rules;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

mod call;
pub mod docs;
pub mod timers;
pub use call::{ArchivedAnswer, EndSessions, RoomCall, ROOM_CALL_BYTES_MAX};

/// `typing`, `presence` and `read` frames per person (every socket of theirs
/// together, so more sockets buy no more): bursts of 10, then 2 a second.
/// Far above what a person does (a client sends `typing` every few seconds
/// and a `read` when new messages are seen), far below a flood.
pub const SIGNAL_RATE: Rate = Rate {
    capacity: 10.0,
    per_sec: 2.0,
};
/// Invalid frames a socket may send before it is closed with [`CLOSE_POLICY`].
pub const MAX_STRIKES: u32 = 20;
pub const CLOSE_POLICY: u16 = 1008;
/// Close code for a member removed from the room (application range).
pub const CLOSE_REMOVED: u16 = 4003;
/// People not connected that a `hello`'s presence names at most.
pub const PRESENCE_OFFLINE_LIMIT: u32 = 50;

/// A connection's id, unique within the room.
pub type ConnId = String;

/// One chat socket's state: what the object keeps in the socket's attachment,
/// so that it survives hibernation (the field names are the stored form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    pub conn: ConnId,
    pub room: String,
    pub user_id: String,
    pub display_name: String,
    /// The caller's current role: set at open, changed by `member_changed`.
    pub role: Role,
    pub status: Status,
    pub since_ms: u64,
    /// Unix milliseconds until which the socket's last `typing` counts.
    pub typing_until: u64,
    pub strikes: u32,
    /// The server closed this socket: frames the client sent before it
    /// heard are still delivered, and are dropped unread.
    #[serde(default)]
    pub closing: bool,
}

impl Conn {
    /// A socket `who` opens at `now`, online and not typing.
    pub fn new(conn: ConnId, room: String, who: &Identity, now: u64) -> Self {
        Self {
            conn,
            room,
            user_id: who.user_id.clone(),
            display_name: who.display_name.clone(),
            role: who.role,
            status: Status::Online,
            since_ms: now,
            typing_until: 0,
            strikes: 0,
            closing: false,
        }
    }

    pub fn identity(&self) -> Identity {
        Identity {
            user_id: self.user_id.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
        }
    }

    fn connected(&self) -> Connected<'_> {
        Connected {
            user_id: &self.user_id,
            display_name: &self.display_name,
            status: self.status,
            typing_until: self.typing_until,
        }
    }
}

/// What a chat socket sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    Text(&'a str),
    /// Chat frames are JSON text: a binary frame is a strike.
    Binary,
}

/// What the object does after an event, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A frame for one connection.
    Send { to: ConnId, frame: ServerFrame },
    /// A frame of the replayable stream as it was stored (resume replay).
    SendStored { to: ConnId, text: String },
    /// A frame for every chat connection of the room but `except`.
    Broadcast {
        frame: ServerFrame,
        except: Option<ConnId>,
    },
    Close {
        to: ConnId,
        code: u16,
        reason: &'static str,
    },
    /// The connection's new state, to keep in its attachment.
    Save(Conn),
    /// Changes a frame of this connection stored and broadcast, for what
    /// follows the room (notifications, the search index; a new message may
    /// ask the AI and set off rules).
    Stored(Vec<ServerFrame>),
}

/// What the engine needs from the room's storage besides [`ChatStore`].
pub trait RoomStore: ChatStore {
    /// The oldest retained event's seq (0 when there is none).
    fn oldest_seq(&self) -> Result<u64, Self::Error>;
    /// The retained events after `after`, as stored, by seq.
    fn events_after(&self, after: u64) -> Result<Vec<String>, Self::Error>;
    /// People known to the room (id, display name, last seen), most recent first.
    fn known_people(&self, limit: u32) -> Result<Vec<(String, String, u64)>, Self::Error>;
    /// Records that `user`, called `name`, was here at `now_ms`.
    fn remember_person(&mut self, user: &str, name: &str, now_ms: u64) -> Result<(), Self::Error>;
}

impl RoomStore for crate::chat::MemStore {
    fn oldest_seq(&self) -> Result<u64, Self::Error> {
        Ok(self.events.keys().next().copied().unwrap_or(0))
    }
    fn events_after(&self, after: u64) -> Result<Vec<String>, Self::Error> {
        Ok(self
            .events
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .map(|(_, f)| f.to_json())
            .collect())
    }
    fn known_people(&self, limit: u32) -> Result<Vec<(String, String, u64)>, Self::Error> {
        let mut people: Vec<(String, String, u64)> = self
            .people
            .iter()
            .map(|(id, name)| {
                let seen = self.seen.get(id).copied().unwrap_or(0);
                (id.clone(), name.clone(), seen)
            })
            .collect();
        people.sort_by_key(|p| std::cmp::Reverse(p.2));
        people.truncate(limit as usize);
        Ok(people)
    }
    fn remember_person(&mut self, user: &str, name: &str, now_ms: u64) -> Result<(), Self::Error> {
        self.people.insert(user.to_string(), name.to_string());
        self.seen.insert(user.to_string(), now_ms);
        Ok(())
    }
}

/// A room's chat sockets: the limits and the per-person rate buckets.
#[derive(Debug, Clone)]
pub struct Room {
    limits: ChatLimits,
    write_rate: Rate,
    /// An archived room refuses every write (the room state's setting).
    archived: bool,
    writes: HashMap<String, TokenBucket>,
    signals: HashMap<String, TokenBucket>,
}

/// `user`'s token in `buckets`, or the milliseconds until there is one.
fn take(
    buckets: &mut HashMap<String, TokenBucket>,
    rate: Rate,
    user: &str,
    now: u64,
) -> Result<(), u64> {
    match buckets.get_mut(user) {
        Some(b) => b.try_take(rate, now),
        None => buckets
            .entry(user.to_string())
            .or_insert(TokenBucket::full(rate, now))
            .try_take(rate, now),
    }
}

/// The sender's own reference in a frame, named in an error about it.
fn reference_of(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::Send { client_msg_id, .. } => Some(client_msg_id.clone()),
        ClientFrame::Edit { id, .. }
        | ClientFrame::Delete { id }
        | ClientFrame::React { id, .. }
        | ClientFrame::Unreact { id, .. } => Some(id.to_string()),
        _ => None,
    }
}

/// `conns` as the room sees them once `me` is in its new state.
fn with_me(mut conns: Vec<Conn>, me: &Conn) -> Vec<Conn> {
    match conns.iter_mut().find(|c| c.conn == me.conn) {
        Some(c) => c.clone_from(me),
        None => conns.push(me.clone()),
    }
    conns
}

fn connected(conns: &[Conn]) -> Vec<Connected<'_>> {
    conns.iter().map(Conn::connected).collect()
}

impl Room {
    /// `write_rate`: writes per second per person (bursts of as many).
    pub fn new(limits: ChatLimits, write_rate: Rate) -> Self {
        Self {
            limits,
            write_rate,
            archived: false,
            writes: HashMap::new(),
            signals: HashMap::new(),
        }
    }

    /// The room was archived (or, read from storage, is).
    pub fn set_archived(&mut self, archived: bool) {
        self.archived = archived;
    }

    pub fn archived(&self) -> bool {
        self.archived
    }

    /// A socket `conn` opened (`others`: the room's chat sockets before it,
    /// `since`: the last seq the client saw): its `hello`, what it missed,
    /// and the news that its person came online.
    pub fn open<S: RoomStore>(
        &mut self,
        conn: &Conn,
        since: Option<u64>,
        others: &[Conn],
        store: &mut S,
        now: u64,
    ) -> Result<Vec<Output>, ApiError> {
        let before = connected(others);
        // Someone already online in another socket is no news to the room.
        let was_online = presence::presence_of(&before, &conn.user_id, &conn.display_name, 0, now)
            .status
            == Status::Online;
        let all = with_me(others.to_vec(), conn);
        let all = connected(&all);
        let to = || conn.conn.clone();
        let mut out = vec![Output::Save(conn.clone())];
        store
            .remember_person(&conn.user_id, &conn.display_name, now)
            .map_err(store_err)?;
        let head = store.head_seq().map_err(store_err)?;
        let known = store
            .known_people(PRESENCE_OFFLINE_LIMIT)
            .map_err(store_err)?;
        out.push(Output::Send {
            to: to(),
            frame: ServerFrame::Hello {
                room: conn.room.clone(),
                you: conn.identity(),
                head_seq: head,
                read_seq: store.read_marker(&conn.user_id).map_err(store_err)?,
                reads: store
                    .reads_except(&conn.user_id, HELLO_READS_MAX)
                    .map_err(store_err)?,
                presence: presence::room_presence(&all, &known, now),
                typing: presence::typing(&all, now),
            },
        });
        if let Some(since) = since {
            let oldest = store.oldest_seq().map_err(store_err)?;
            match plan_resume(since, oldest, head) {
                Resume::UpToDate => {}
                Resume::Replay { after } => {
                    let hide_rules = !rules::may_read(conn.role);
                    for text in store.events_after(after).map_err(store_err)? {
                        let text = match hide_rules {
                            true => rules::stored_without_rules(&text).unwrap_or(text),
                            false => text,
                        };
                        out.push(Output::SendStored { to: to(), text });
                    }
                }
                Resume::Resync => out.push(Output::Send {
                    to: to(),
                    frame: ServerFrame::Resync {
                        head_seq: head,
                        oldest_seq: oldest,
                    },
                }),
            }
        }
        if !was_online {
            let entry = presence::presence_of(&all, &conn.user_id, &conn.display_name, 0, now);
            out.push(Output::Broadcast {
                frame: ServerFrame::Presence { users: vec![entry] },
                except: Some(to()),
            });
        }
        Ok(out)
    }

    /// One frame from socket `conn`. `conns` lists the room's chat sockets as
    /// stored; it is called only for frames that concern them (typing,
    /// presence), so a message costs no read of the other sockets.
    pub fn handle<S: ChatStore>(
        &mut self,
        conn: &mut Conn,
        input: Input,
        store: &mut S,
        conns: impl FnOnce() -> Vec<Conn>,
        now: u64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if conn.closing {
            return out;
        }
        let frame = match input {
            Input::Text(text) => parse_client_frame(text, self.limits.frame_bytes),
            Input::Binary => Err(ApiError::invalid("frames must be JSON text")),
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                strike(conn, &e, &mut out);
                return out;
            }
        };
        let reference = reference_of(&frame);
        let send = |frame| Output::Send {
            to: conn.conn.clone(),
            frame,
        };
        if self.archived && (frame.is_write() || matches!(frame, ClientFrame::Typing {})) {
            out.push(send(ServerFrame::error(
                &ApiError::room_archived(),
                reference,
            )));
            return out;
        }
        if let Some(limited) = self.limited(&conn.user_id, &frame, reference.clone(), now) {
            out.push(send(limited));
            return out;
        }
        match frame {
            ClientFrame::Ping { nonce } => out.push(send(ServerFrame::Pong { nonce, at: now })),
            ClientFrame::Typing {} => {
                if !can(conn.role, Permission::SendMessage) {
                    let e = ApiError::forbidden("viewers cannot type here");
                    out.push(send(ServerFrame::error(&e, None)));
                    return out;
                }
                // Announced when it starts and renewed at most every 2.5 s:
                // frames in between change nothing the room sees.
                if let Some(until) = presence::typing_renewal(conn.typing_until, now) {
                    conn.typing_until = until;
                    let all = with_me(conns(), conn);
                    let users = presence::typing(&connected(&all), now);
                    out.push(Output::Save(conn.clone()));
                    out.push(Output::Broadcast {
                        frame: ServerFrame::Typing { users },
                        except: None,
                    });
                }
            }
            ClientFrame::Presence { status } => {
                // A client cannot say it is offline while connected.
                let status = match status {
                    Status::Offline => Status::Away,
                    s => s,
                };
                // Announced only when the person's presence changes (one of
                // several sockets going away leaves them online).
                let all = conns();
                let change = all
                    .iter()
                    .position(|c| c.conn == conn.conn)
                    .and_then(|mine| presence::status_change(&connected(&all), mine, status, now));
                if conn.status != status {
                    conn.status = status;
                    out.push(Output::Save(conn.clone()));
                }
                if let Some(entry) = change {
                    out.push(Output::Broadcast {
                        frame: ServerFrame::Presence { users: vec![entry] },
                        except: None,
                    });
                }
            }
            frame => match apply(store, &conn.identity(), frame, &self.limits, now) {
                Ok(Outcome { reply, broadcast }) => {
                    out.extend(reply.into_iter().map(send));
                    out.extend(broadcast.iter().map(|frame| Output::Broadcast {
                        frame: frame.clone(),
                        except: None,
                    }));
                    if !broadcast.is_empty() {
                        out.push(Output::Stored(broadcast));
                    }
                }
                Err(e) => out.push(send(ServerFrame::error(&e, reference))),
            },
        }
        out
    }

    /// A write that arrives over HTTP (integrations, named actions): the same
    /// rate limit and engine as a socket's.
    pub fn post<S: ChatStore>(
        &mut self,
        who: &Identity,
        frame: ClientFrame,
        store: &mut S,
        now: u64,
    ) -> Result<Outcome, ApiError> {
        if self.archived {
            return Err(ApiError::room_archived());
        }
        take(&mut self.writes, self.write_rate, &who.user_id, now).map_err(|wait_ms| {
            ApiError::RateLimited {
                retry_after_secs: wait_ms.div_ceil(1000),
            }
        })?;
        apply(store, who, frame, &self.limits, now)
    }

    /// Socket `conn` went away (`conns`: the room's chat sockets as the
    /// platform lists them now): if it was its person's last, the room hears
    /// they are offline, and no longer typing.
    pub fn closed<S: RoomStore>(
        &mut self,
        conn: &Conn,
        conns: &[Conn],
        store: &mut S,
        now: u64,
    ) -> Result<Vec<Output>, ApiError> {
        let others = conns
            .iter()
            .any(|c| c.user_id == conn.user_id && c.conn != conn.conn);
        if others {
            return Ok(Vec::new());
        }
        store
            .remember_person(&conn.user_id, &conn.display_name, now)
            .map_err(store_err)?;
        let except = || Some(conn.conn.clone());
        let entry = PresenceEntry {
            user_id: conn.user_id.clone(),
            display_name: conn.display_name.clone(),
            status: Status::Offline,
            last_seen: now,
        };
        let mut out = vec![Output::Broadcast {
            frame: ServerFrame::Presence { users: vec![entry] },
            except: except(),
        }];
        if conn.typing_until > now {
            out.push(Output::Broadcast {
                frame: ServerFrame::Typing {
                    users: presence::typing(&connected(conns), now),
                },
                except: except(),
            });
        }
        Ok(out)
    }

    /// A member's role changed (`role: None`: removed): their open sockets
    /// take the new role at once, or are closed.
    pub fn member_changed(&self, notice: &MemberNotice, conns: &[Conn]) -> Vec<Output> {
        conns
            .iter()
            .filter(|c| c.user_id == notice.user_id)
            .flat_map(|c| match notice.role {
                Some(role) => vec![Output::Save(Conn { role, ..c.clone() })],
                None => closing(c.clone(), CLOSE_REMOVED, "removed from the room"),
            })
            .collect()
    }

    /// Spends a token of the frame's kind, or says why the frame is dropped.
    fn limited(
        &mut self,
        user: &str,
        frame: &ClientFrame,
        reference: Option<String>,
        now: u64,
    ) -> Option<ServerFrame> {
        let limited = if frame.is_write() {
            take(&mut self.writes, self.write_rate, user, now).map_err(|wait_ms| {
                let per_sec = self.write_rate.per_sec;
                let why = format!("at most {per_sec} messages per second; retry shortly");
                (why, wait_ms)
            })
        } else if frame.is_signal() {
            take(&mut self.signals, SIGNAL_RATE, user, now).map_err(|wait_ms| {
                let per_sec = SIGNAL_RATE.per_sec;
                let why = format!(
                    "at most {per_sec} typing, presence and read frames per second; this one was dropped"
                );
                (why, wait_ms)
            })
        } else {
            Ok(())
        };
        limited.err().map(|(message, wait_ms)| ServerFrame::Error {
            code: crate::error::code::RATE_LIMITED.into(),
            message,
            reference,
            retry_after: Some(wait_ms as f64 / 1000.0),
        })
    }
}

/// The server closes `conn`, marked first so that what it sent meanwhile is dropped.
fn closing(mut conn: Conn, code: u16, reason: &'static str) -> Vec<Output> {
    conn.closing = true;
    let to = conn.conn.clone();
    vec![Output::Save(conn), Output::Close { to, code, reason }]
}

/// An invalid frame: the sender is told, and closed after [`MAX_STRIKES`].
fn strike(conn: &mut Conn, e: &ApiError, out: &mut Vec<Output>) {
    conn.strikes += 1;
    if conn.strikes >= MAX_STRIKES {
        out.extend(closing(
            conn.clone(),
            CLOSE_POLICY,
            "too many invalid frames",
        ));
        return;
    }
    out.push(Output::Save(conn.clone()));
    out.push(Output::Send {
        to: conn.conn.clone(),
        frame: ServerFrame::error(e, None),
    });
}

#[cfg(test)]
mod doc_sim;
#[cfg(test)]
mod sim;
