//! Chat in a room: validation of what people send, mentions, and the engine that
//! applies one client frame to the room's stored state and says what to answer
//! and what to broadcast. Storage is behind [`ChatStore`] (synchronous, like a
//! Durable Object's SQLite), so the engine runs natively in tests against
//! [`MemStore`] and in the Room Durable Object against SQLite.

pub use crate::protocol::{ReadMarker, StoredMessage};
pub use crate::rooms::ReadState;

use crate::files::FileRef;
use crate::protocol::{ClientFrame, Identity, ServerFrame};
use crate::rooms::{can, require, Permission};
use crate::ApiError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Bounds on what one person can put into a room. Configurable per deployment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatLimits {
    pub body_bytes: usize,
    pub frame_bytes: usize,
    pub attachments: usize,
    pub reactions_per_message: usize,
    /// How many events the resume window keeps.
    pub retained_events: u64,
}

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            body_bytes: 8 * 1024,
            frame_bytes: 64 * 1024,
            attachments: 10,
            reactions_per_message: 50,
            retained_events: 10_000,
        }
    }
}

pub const CLIENT_MSG_ID_MAX: usize = 64;
/// Read markers of other people that a `hello` carries (the furthest first),
/// so that "seen by" survives a reload without an unbounded frame.
pub const HELLO_READS_MAX: u32 = 100;
pub const EMOJI_MAX_BYTES: usize = 32;
pub const HISTORY_PAGE_MAX: u32 = 200;

/// Whether `m` counts as unread for `user` whose marker is at `read`:
/// a live message from someone else after the marker.
pub fn is_unread_for(m: &StoredMessage, user: &str, read: u64) -> bool {
    m.id > read && m.author != user && !m.deleted
}

/// What the engine needs from storage. Implementations must make the writes of
/// one [`apply`] call atomic (a Durable Object does: writes in one synchronous
/// turn commit together).
pub trait ChatStore {
    type Error: std::fmt::Display;
    /// The newest event's sequence number (0 when there is none).
    fn head_seq(&self) -> Result<u64, Self::Error>;
    fn message(&self, id: u64) -> Result<Option<StoredMessage>, Self::Error>;
    fn message_by_client_id(
        &self,
        author: &str,
        client_msg_id: &str,
    ) -> Result<Option<StoredMessage>, Self::Error>;
    fn reactions(&self, id: u64) -> Result<BTreeMap<String, Vec<String>>, Self::Error>;
    /// Adds or removes one reaction; returns whether anything changed.
    fn set_reaction(
        &mut self,
        id: u64,
        user: &str,
        emoji: &str,
        on: bool,
    ) -> Result<bool, Self::Error>;
    /// Stores a new message; returns false, storing nothing, when its author
    /// already has a message with its `client_msg_id` (the idempotency check
    /// is the insert's own, not a read before it).
    fn insert_message(&mut self, m: &StoredMessage) -> Result<bool, Self::Error>;
    fn update_message(&mut self, m: &StoredMessage) -> Result<(), Self::Error>;
    /// Appends a frame of the replayable stream under `seq` (= head + 1).
    fn append_event(&mut self, seq: u64, frame: &ServerFrame) -> Result<(), Self::Error>;
    /// The retained events that carry message `id`'s content: its `message`
    /// event and its `message_edited` events, by seq.
    fn message_events(&self, id: u64) -> Result<Vec<(u64, MessageEvent)>, Self::Error>;
    /// Rewrites a retained event in place (its seq and type stay).
    fn replace_event(&mut self, seq: u64, frame: &ServerFrame) -> Result<(), Self::Error>;
    /// Finds a person known to the room by their mention handle.
    fn resolve_mention(&self, handle: &str) -> Result<Option<String>, Self::Error>;
    /// A person's read marker (0 when they have none).
    fn read_marker(&self, user: &str) -> Result<u64, Self::Error>;
    /// Moves a read marker forward; returns the marker now stored.
    fn set_read(&mut self, user: &str, seq: u64) -> Result<u64, Self::Error>;
    /// Live messages from others after `user`'s marker ([`is_unread_for`]),
    /// and how many of them mention `user`.
    fn unread(&self, user: &str, read: u64) -> Result<(u64, u64), Self::Error>;
    /// The markers of everyone but `user`, the furthest first, at most `limit`.
    fn reads_except(&self, user: &str, limit: u32) -> Result<Vec<ReadMarker>, Self::Error>;
    /// A finished file of this room (attachments may name only those).
    fn file(&self, id: &str) -> Result<Option<FileRef>, Self::Error>;
}

/// What applying one frame produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Frames for the sender only.
    pub reply: Vec<ServerFrame>,
    /// Frames for every socket in the room (the sender included).
    pub broadcast: Vec<ServerFrame>,
}

pub(crate) fn store_err<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::Internal(format!("room storage: {e}"))
}

/// The handle by which a display name is mentioned: lower-case, no spaces.
pub fn mention_handle(display_name: &str) -> String {
    display_name
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `@handle` tokens in a body, lower-cased, each once, in order of appearance.
/// An `@` inside a word (an email address) is not a mention.
pub fn parse_mentions(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in body.char_indices() {
        let starts_word = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '.'));
        if c == '@' && starts_word {
            let rest = &body[i + 1..];
            let handle: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let handle = handle.trim_end_matches('.').to_lowercase();
            if !handle.is_empty() && handle.chars().count() <= 64 && !out.contains(&handle) {
                out.push(handle);
            }
        }
        prev = Some(c);
    }
    out
}

fn validate_body(body: &str, limits: &ChatLimits) -> Result<(), ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::invalid("body must not be empty"));
    }
    validate_body_text(body, limits)
}

/// Size and characters of a body that may be empty (a message with files).
fn validate_body_text(body: &str, limits: &ChatLimits) -> Result<(), ApiError> {
    if body.len() > limits.body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: limits.body_bytes,
        });
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(ApiError::invalid("body contains control characters"));
    }
    Ok(())
}

pub fn validate_client_msg_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= CLIENT_MSG_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "client_msg_id must be 1 to {CLIENT_MSG_ID_MAX} characters of A-Z a-z 0-9 - _ : ."
        )))
    }
}

fn validate_emoji(emoji: &str) -> Result<(), ApiError> {
    if emoji.is_empty()
        || emoji.len() > EMOJI_MAX_BYTES
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid(format!(
            "emoji must be 1 to {EMOJI_MAX_BYTES} bytes without spaces"
        )));
    }
    Ok(())
}

fn resolve_mentions<S: ChatStore>(store: &S, body: &str) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    for handle in parse_mentions(body) {
        let id = if handle == "ai" {
            Some("ai".to_string())
        } else {
            store.resolve_mention(&handle).map_err(store_err)?
        };
        if let Some(id) = id.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn live_message<S: ChatStore>(store: &S, id: u64) -> Result<StoredMessage, ApiError> {
    store
        .message(id)
        .map_err(store_err)?
        .filter(|m| !m.deleted)
        .ok_or(ApiError::NotFound("message"))
}

fn append<S: ChatStore>(
    store: &mut S,
    make: impl FnOnce(u64) -> ServerFrame,
) -> Result<ServerFrame, ApiError> {
    let seq = store.head_seq().map_err(store_err)? + 1;
    let frame = make(seq);
    store.append_event(seq, &frame).map_err(store_err)?;
    Ok(frame)
}

/// The files a message attaches: each once, at most `limits.attachments`, and
/// every one a finished file of this room.
fn resolve_attachments<S: ChatStore>(
    store: &S,
    ids: Vec<String>,
    limits: &ChatLimits,
) -> Result<Vec<FileRef>, ApiError> {
    let mut out: Vec<FileRef> = Vec::new();
    for id in ids {
        if out.iter().any(|f| f.id == id) {
            continue;
        }
        if out.len() == limits.attachments {
            return Err(ApiError::invalid(format!(
                "at most {} attachments per message",
                limits.attachments
            )));
        }
        let file = store
            .file(&id)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::invalid(format!("`{id}` is not a file of this room")))?;
        out.push(file);
    }
    Ok(out)
}

/// Rewrites the retained events of `m` to what it is now, so that a replay
/// (`?since=`) shows its current text, never an earlier version, and nothing
/// of it once it is deleted: the `message` event carries the message as it
/// is now (a tombstone when deleted) and each `message_edited` event the
/// current body and mentions (empty when deleted). Seqs and event types stay,
/// so a replay stays gap-free.
fn rewrite_history<S: ChatStore>(store: &mut S, m: &StoredMessage) -> Result<(), ApiError> {
    for (seq, event) in store.message_events(m.id).map_err(store_err)? {
        let now = match event {
            MessageEvent::Posted => ServerFrame::Message {
                seq,
                message: m.view(BTreeMap::new()),
            },
            MessageEvent::Edited { edited_at } => ServerFrame::MessageEdited {
                seq,
                id: m.id,
                body: m.body.clone(),
                mentions: m.mentions.clone(),
                edited_at,
            },
        };
        store.replace_event(seq, &now).map_err(store_err)?;
    }
    Ok(())
}

/// A retained event that carries a message's content, as much of it as a
/// rewrite needs (`ChatStore::message_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEvent {
    /// Its `message` event.
    Posted,
    /// One of its `message_edited` events.
    Edited { edited_at: u64 },
}

impl MessageEvent {
    /// Of a frame, if it is one of these.
    pub fn of(frame: &ServerFrame) -> Option<Self> {
        match frame {
            ServerFrame::Message { .. } => Some(Self::Posted),
            ServerFrame::MessageEdited { edited_at, .. } => Some(Self::Edited {
                edited_at: *edited_at,
            }),
            _ => None,
        }
    }

    /// Of a stored frame's JSON, reading only its type and edit time: a store
    /// need not parse whole frames (which costs the Worker's bundle the
    /// deserializer of every frame type).
    pub fn of_json(text: &str) -> Result<Option<Self>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            edited_at: Option<u64>,
        }
        let head: Head = serde_json::from_str(text)?;
        Ok(match (head.kind.as_str(), head.edited_at) {
            ("message", _) => Some(Self::Posted),
            ("message_edited", Some(edited_at)) => Some(Self::Edited { edited_at }),
            _ => None,
        })
    }
}

/// Appends an event of another part of the room (files, jobs, workflows) to
/// the replayable stream; returns the frame to broadcast.
pub fn record_event<S: ChatStore>(
    store: &mut S,
    event: &str,
    data: serde_json::Value,
) -> Result<ServerFrame, ApiError> {
    append(store, |seq| ServerFrame::Event {
        event: event.to_string(),
        seq: Some(seq),
        data,
    })
}

/// A send's checks: its attachments resolved and its mentions, or why it is refused.
fn checked_send<S: ChatStore>(
    store: &S,
    body: &str,
    reply_to: Option<u64>,
    attachments: Vec<String>,
    limits: &ChatLimits,
) -> Result<(Vec<FileRef>, Vec<String>), ApiError> {
    let attachments = resolve_attachments(store, attachments, limits)?;
    if attachments.is_empty() {
        validate_body(body, limits)?;
    } else {
        validate_body_text(body, limits)?;
    }
    if let Some(parent) = reply_to {
        live_message(store, parent)?;
    }
    Ok((attachments, resolve_mentions(store, body)?))
}

/// Applies one frame from `actor` at `now_ms`. Nothing is written when it fails.
/// Typing, presence and ping concern sockets, not storage: the caller handles them.
pub fn apply<S: ChatStore>(
    store: &mut S,
    actor: &Identity,
    frame: ClientFrame,
    limits: &ChatLimits,
    now_ms: u64,
) -> Result<Outcome, ApiError> {
    let mut out = Outcome::default();
    match frame {
        ClientFrame::Send {
            client_msg_id,
            body,
            reply_to,
            attachments,
        } => {
            require(actor.role, Permission::SendMessage)?;
            validate_client_msg_id(&client_msg_id)?;
            // A repeat of a stored send is acknowledged as that message, even
            // if it would be refused now: the store is asked only when the
            // send fails its checks or its insert finds the id taken.
            let duplicate = |store: &S| -> Result<Option<ServerFrame>, ApiError> {
                Ok(store
                    .message_by_client_id(&actor.user_id, &client_msg_id)
                    .map_err(store_err)?
                    .map(|m| ServerFrame::Ack {
                        client_msg_id: client_msg_id.clone(),
                        id: m.id,
                        seq: m.id,
                        duplicate: true,
                    }))
            };
            let (attachments, mentions) =
                match checked_send(store, &body, reply_to, attachments, limits) {
                    Ok(checked) => checked,
                    Err(e) => {
                        out.reply.push(duplicate(store)?.ok_or(e)?);
                        return Ok(out);
                    }
                };
            let message = StoredMessage {
                id: store.head_seq().map_err(store_err)? + 1,
                author: actor.user_id.clone(),
                author_name: actor.display_name.clone(),
                client_msg_id: client_msg_id.clone(),
                body,
                reply_to,
                mentions,
                attachments,
                created_at: now_ms,
                edited_at: None,
                deleted: false,
            };
            if !store.insert_message(&message).map_err(store_err)? {
                let ack = duplicate(store)?.ok_or_else(|| {
                    ApiError::Internal("a message id was taken but is not found".into())
                })?;
                out.reply.push(ack);
                return Ok(out);
            }
            let seq = message.id;
            let frame = ServerFrame::Message {
                seq,
                message: message.view(BTreeMap::new()),
            };
            store.append_event(seq, &frame).map_err(store_err)?;
            out.reply.push(ServerFrame::Ack {
                client_msg_id,
                id: seq,
                seq,
                duplicate: false,
            });
            out.broadcast.push(frame);
        }
        ClientFrame::Edit { id, body } => {
            require(actor.role, Permission::EditOwnMessage)?;
            let mut m = live_message(store, id)?;
            if m.author != actor.user_id {
                return Err(ApiError::forbidden("only the author may edit a message"));
            }
            validate_body(&body, limits)?;
            m.mentions = resolve_mentions(store, &body)?;
            m.body = body;
            m.edited_at = Some(now_ms);
            store.update_message(&m).map_err(store_err)?;
            rewrite_history(store, &m)?;
            let frame = append(store, |seq| ServerFrame::MessageEdited {
                seq,
                id,
                body: m.body.clone(),
                mentions: m.mentions.clone(),
                edited_at: now_ms,
            })?;
            out.broadcast.push(frame);
        }
        ClientFrame::Delete { id } => {
            let mut m = live_message(store, id)?;
            let own = m.author == actor.user_id && can(actor.role, Permission::EditOwnMessage);
            if !own {
                require(actor.role, Permission::DeleteAnyMessage)?;
            }
            m.deleted = true;
            m.body.clear();
            m.mentions.clear();
            m.attachments.clear();
            store.update_message(&m).map_err(store_err)?;
            rewrite_history(store, &m)?;
            let frame = append(store, |seq| ServerFrame::MessageDeleted {
                seq,
                id,
                deleted_by: actor.user_id.clone(),
            })?;
            out.broadcast.push(frame);
        }
        ClientFrame::React { id, emoji } => {
            out.broadcast
                .extend(react(store, actor, id, emoji, true, limits)?);
        }
        ClientFrame::Unreact { id, emoji } => {
            out.broadcast
                .extend(react(store, actor, id, emoji, false, limits)?);
        }
        ClientFrame::Read { seq } => {
            // Only a marker that moves is news for the room; a repeat or a
            // step back is answered to the sender alone.
            let head = store.head_seq().map_err(store_err)?;
            let was = store.read_marker(&actor.user_id).map_err(store_err)?;
            let target = seq.min(head);
            let (frames, seq) = if target > was {
                let stored = store.set_read(&actor.user_id, target).map_err(store_err)?;
                (&mut out.broadcast, stored)
            } else {
                (&mut out.reply, was)
            };
            frames.push(ServerFrame::Read {
                user_id: actor.user_id.clone(),
                seq,
            });
        }
        ClientFrame::Typing {} | ClientFrame::Presence { .. } | ClientFrame::Ping { .. } => {}
    }
    Ok(out)
}

/// Adds (`on`) or removes a reaction; a repeat changes nothing and broadcasts nothing.
fn react<S: ChatStore>(
    store: &mut S,
    actor: &Identity,
    id: u64,
    emoji: String,
    on: bool,
    limits: &ChatLimits,
) -> Result<Option<ServerFrame>, ApiError> {
    require(actor.role, Permission::SendMessage)?;
    validate_emoji(&emoji)?;
    live_message(store, id)?;
    if on {
        let existing = store.reactions(id).map_err(store_err)?;
        if !existing.contains_key(&emoji) && existing.len() >= limits.reactions_per_message {
            return Err(ApiError::Conflict {
                code: crate::error::code::TOO_MANY_REACTIONS,
                message: format!(
                    "a message holds at most {} different reactions",
                    limits.reactions_per_message
                ),
            });
        }
    }
    if !store
        .set_reaction(id, &actor.user_id, &emoji, on)
        .map_err(store_err)?
    {
        return Ok(None);
    }
    append(store, |seq| ServerFrame::Reaction {
        seq,
        id,
        emoji,
        user_id: actor.user_id.clone(),
        added: on,
    })
    .map(Some)
}

/// `user`'s [`ReadState`] in the room behind `store`.
pub fn read_state<S: ChatStore>(store: &S, user: &str) -> Result<ReadState, ApiError> {
    let read = store.read_marker(user).map_err(store_err)?;
    let (unread, mentions) = store.unread(user, read).map_err(store_err)?;
    Ok(ReadState {
        read_seq: Some(read),
        head_seq: Some(store.head_seq().map_err(store_err)?),
        unread: Some(unread),
        mentions: Some(mentions),
    })
}

/// How a reconnecting client catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Nothing missed.
    UpToDate,
    /// Replay every event after this seq.
    Replay { after: u64 },
    /// The window no longer holds what was missed: page history over REST.
    Resync,
}

/// `oldest` is the oldest retained event's seq (0 when the log is empty).
pub fn plan_resume(since: u64, oldest: u64, head: u64) -> Resume {
    if since >= head {
        Resume::UpToDate
    } else if oldest == 0 || since + 1 >= oldest {
        Resume::Replay { after: since }
    } else {
        Resume::Resync
    }
}

/// The retention policy of the replayable stream: after appending `seq`, the
/// events up to the returned seq go. Pruning in steps of 100 keeps the window
/// between `retained` and `retained + 100` events without a delete per append.
pub fn prune_upto(seq: u64, retained: u64) -> Option<u64> {
    (seq.is_multiple_of(100) && seq > retained).then(|| seq - retained)
}

/// An in-memory [`ChatStore`] (and, in `room`, `RoomStore`) for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    pub messages: BTreeMap<u64, StoredMessage>,
    pub events: BTreeMap<u64, ServerFrame>,
    pub reactions: BTreeMap<(u64, String), Vec<String>>,
    pub people: BTreeMap<String, String>,
    /// When each of `people` was last seen.
    pub seen: BTreeMap<String, u64>,
    pub reads: BTreeMap<String, u64>,
    pub files: BTreeMap<String, FileRef>,
    /// How many events the stream keeps ([`prune_upto`]); `None` keeps all.
    pub retained: Option<u64>,
}

impl ChatStore for MemStore {
    type Error = std::convert::Infallible;

    fn head_seq(&self) -> Result<u64, Self::Error> {
        Ok(self.events.keys().next_back().copied().unwrap_or(0))
    }
    fn message(&self, id: u64) -> Result<Option<StoredMessage>, Self::Error> {
        Ok(self.messages.get(&id).cloned())
    }
    fn message_by_client_id(
        &self,
        author: &str,
        client_msg_id: &str,
    ) -> Result<Option<StoredMessage>, Self::Error> {
        Ok(self
            .messages
            .values()
            .find(|m| m.author == author && m.client_msg_id == client_msg_id)
            .cloned())
    }
    fn reactions(&self, id: u64) -> Result<BTreeMap<String, Vec<String>>, Self::Error> {
        Ok(self
            .reactions
            .iter()
            .filter(|((m, _), users)| *m == id && !users.is_empty())
            .map(|((_, e), users)| (e.clone(), users.clone()))
            .collect())
    }
    fn set_reaction(
        &mut self,
        id: u64,
        user: &str,
        emoji: &str,
        on: bool,
    ) -> Result<bool, Self::Error> {
        let users = self.reactions.entry((id, emoji.to_string())).or_default();
        let present = users.iter().any(|u| u == user);
        match (on, present) {
            (true, false) => users.push(user.to_string()),
            (false, true) => users.retain(|u| u != user),
            _ => return Ok(false),
        }
        Ok(true)
    }
    fn insert_message(&mut self, m: &StoredMessage) -> Result<bool, Self::Error> {
        if self
            .message_by_client_id(&m.author, &m.client_msg_id)?
            .is_some()
        {
            return Ok(false);
        }
        self.messages.insert(m.id, m.clone());
        Ok(true)
    }
    fn update_message(&mut self, m: &StoredMessage) -> Result<(), Self::Error> {
        self.messages.insert(m.id, m.clone());
        Ok(())
    }
    fn append_event(&mut self, seq: u64, frame: &ServerFrame) -> Result<(), Self::Error> {
        self.events.insert(seq, frame.clone());
        if let Some(upto) = self.retained.and_then(|r| prune_upto(seq, r)) {
            self.events.retain(|s, _| *s > upto);
        }
        Ok(())
    }
    fn message_events(&self, id: u64) -> Result<Vec<(u64, MessageEvent)>, Self::Error> {
        Ok(self
            .events
            .range(id..)
            .filter(|(seq, f)| match f {
                ServerFrame::Message { .. } => **seq == id,
                ServerFrame::MessageEdited { id: of, .. } => *of == id,
                _ => false,
            })
            .filter_map(|(seq, f)| Some((*seq, MessageEvent::of(f)?)))
            .collect())
    }
    fn replace_event(&mut self, seq: u64, frame: &ServerFrame) -> Result<(), Self::Error> {
        self.events.insert(seq, frame.clone());
        Ok(())
    }
    fn resolve_mention(&self, handle: &str) -> Result<Option<String>, Self::Error> {
        Ok(self
            .people
            .iter()
            .find(|(_, name)| mention_handle(name) == handle)
            .map(|(id, _)| id.clone()))
    }
    fn read_marker(&self, user: &str) -> Result<u64, Self::Error> {
        Ok(self.reads.get(user).copied().unwrap_or(0))
    }
    fn set_read(&mut self, user: &str, seq: u64) -> Result<u64, Self::Error> {
        let r = self.reads.entry(user.to_string()).or_default();
        *r = (*r).max(seq);
        Ok(*r)
    }
    fn unread(&self, user: &str, read: u64) -> Result<(u64, u64), Self::Error> {
        let unread: Vec<&StoredMessage> = self
            .messages
            .values()
            .filter(|m| is_unread_for(m, user, read))
            .collect();
        let mentions = unread
            .iter()
            .filter(|m| m.mentions.iter().any(|u| u == user))
            .count();
        Ok((unread.len() as u64, mentions as u64))
    }
    fn reads_except(&self, user: &str, limit: u32) -> Result<Vec<ReadMarker>, Self::Error> {
        let mut out: Vec<ReadMarker> = self
            .reads
            .iter()
            .filter(|(u, _)| *u != user)
            .map(|(u, seq)| ReadMarker {
                user_id: u.clone(),
                seq: *seq,
            })
            .collect();
        out.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| a.user_id.cmp(&b.user_id)));
        out.truncate(limit as usize);
        Ok(out)
    }
    fn file(&self, id: &str) -> Result<Option<FileRef>, Self::Error> {
        Ok(self.files.get(id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::Role;
    use proptest::prelude::*;

    fn who(id: &str, role: Role) -> Identity {
        Identity {
            user_id: id.into(),
            display_name: id.to_uppercase(),
            role,
        }
    }

    fn send(id: &str, body: &str) -> ClientFrame {
        ClientFrame::Send {
            client_msg_id: id.into(),
            body: body.into(),
            reply_to: None,
            attachments: vec![],
        }
    }

    fn run(store: &mut MemStore, actor: &Identity, f: ClientFrame) -> Result<Outcome, ApiError> {
        apply(store, actor, f, &ChatLimits::default(), 1000)
    }

    #[test]
    fn send_acks_and_broadcasts_with_gap_free_seqs() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        for i in 1..=5 {
            let out = run(&mut s, &a, send(&format!("c{i}"), "hello")).unwrap();
            assert_eq!(
                out.reply,
                vec![ServerFrame::Ack {
                    client_msg_id: format!("c{i}"),
                    id: i,
                    seq: i,
                    duplicate: false
                }]
            );
            assert_eq!(out.broadcast[0].seq(), Some(i));
        }
        assert_eq!(
            s.events.keys().copied().collect::<Vec<_>>(),
            (1..=5).collect::<Vec<_>>()
        );
    }

    #[test]
    fn duplicate_client_msg_id_returns_the_original_ack_and_stores_nothing() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("same", "one")).unwrap();
        let again = run(&mut s, &a, send("same", "different body")).unwrap();
        assert_eq!(
            again.reply,
            vec![ServerFrame::Ack {
                client_msg_id: "same".into(),
                id: 1,
                seq: 1,
                duplicate: true
            }]
        );
        assert!(again.broadcast.is_empty());
        assert_eq!(s.messages.len(), 1);
        // The same id from someone else is a different message.
        run(&mut s, &who("b", Role::Member), send("same", "b's")).unwrap();
        assert_eq!(s.messages.len(), 2);
    }

    #[test]
    fn a_repeat_that_would_now_be_refused_is_still_acked_as_the_stored_message() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("parent", "first")).unwrap();
        let reply = ClientFrame::Send {
            client_msg_id: "r".into(),
            body: "a reply".into(),
            reply_to: Some(1),
            attachments: vec![],
        };
        run(&mut s, &a, reply.clone()).unwrap();
        run(&mut s, &a, ClientFrame::Delete { id: 1 }).unwrap();
        // The parent is gone, so a new reply to it is refused; the repeat is not new.
        let again = run(&mut s, &a, reply).unwrap();
        assert_eq!(
            again.reply,
            vec![ServerFrame::Ack {
                client_msg_id: "r".into(),
                id: 2,
                seq: 2,
                duplicate: true
            }]
        );
        assert!(again.broadcast.is_empty());
        let fresh = ClientFrame::Send {
            client_msg_id: "r2".into(),
            body: "a reply".into(),
            reply_to: Some(1),
            attachments: vec![],
        };
        assert_eq!(run(&mut s, &a, fresh).unwrap_err().code(), "not_found");
        assert_eq!(s.messages.len(), 2);
    }

    #[test]
    fn viewers_cannot_write_but_can_mark_read() {
        let mut s = MemStore::default();
        run(&mut s, &who("a", Role::Member), send("c", "hi")).unwrap();
        let v = who("v", Role::Viewer);
        for f in [
            send("x", "nope"),
            ClientFrame::React {
                id: 1,
                emoji: "👍".into(),
            },
        ] {
            assert_eq!(run(&mut s, &v, f).unwrap_err().code(), "forbidden");
        }
        assert!(run(&mut s, &v, ClientFrame::Read { seq: 1 }).is_ok());
        assert_eq!(s.messages.len(), 1);
    }

    #[test]
    fn authors_edit_and_delete_their_own_admins_delete_any() {
        let mut s = MemStore::default();
        let (a, b, admin) = (
            who("a", Role::Member),
            who("b", Role::Member),
            who("z", Role::Admin),
        );
        run(&mut s, &a, send("1", "first")).unwrap();
        run(&mut s, &a, send("2", "second")).unwrap();
        assert_eq!(
            run(
                &mut s,
                &b,
                ClientFrame::Edit {
                    id: 1,
                    body: "hacked".into()
                }
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
        assert_eq!(
            run(&mut s, &b, ClientFrame::Delete { id: 1 })
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            run(
                &mut s,
                &admin,
                ClientFrame::Edit {
                    id: 1,
                    body: "x".into()
                }
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
        let edited = run(
            &mut s,
            &a,
            ClientFrame::Edit {
                id: 1,
                body: "first!".into(),
            },
        )
        .unwrap();
        assert!(
            matches!(&edited.broadcast[0], ServerFrame::MessageEdited { seq: 3, body, .. } if body == "first!")
        );
        run(&mut s, &admin, ClientFrame::Delete { id: 1 }).unwrap();
        run(&mut s, &a, ClientFrame::Delete { id: 2 }).unwrap();
        assert!(s.messages[&1].deleted && s.messages[&1].body.is_empty());
        assert_eq!(
            run(
                &mut s,
                &a,
                ClientFrame::Edit {
                    id: 1,
                    body: "back".into()
                }
            )
            .unwrap_err()
            .code(),
            "not_found"
        );
    }

    #[test]
    fn reactions_toggle_once_per_person() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("1", "react to me")).unwrap();
        let r = |e: &str| ClientFrame::React {
            id: 1,
            emoji: e.into(),
        };
        assert_eq!(run(&mut s, &a, r("👍")).unwrap().broadcast.len(), 1);
        assert_eq!(
            run(&mut s, &a, r("👍")).unwrap().broadcast.len(),
            0,
            "second identical react is a no-op"
        );
        assert_eq!(s.reactions(1).unwrap()["👍"], vec!["a".to_string()]);
        let un = run(
            &mut s,
            &a,
            ClientFrame::Unreact {
                id: 1,
                emoji: "👍".into(),
            },
        )
        .unwrap();
        assert!(matches!(
            un.broadcast[0],
            ServerFrame::Reaction { added: false, .. }
        ));
        assert!(s.reactions(1).unwrap().is_empty());
        assert_eq!(
            run(&mut s, &a, r("a b")).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(
            run(
                &mut s,
                &a,
                ClientFrame::React {
                    id: 99,
                    emoji: "x".into()
                }
            )
            .unwrap_err()
            .code(),
            "not_found"
        );
    }

    #[test]
    fn bounded_reactions_per_message() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("1", "m")).unwrap();
        let limits = ChatLimits {
            reactions_per_message: 2,
            ..ChatLimits::default()
        };
        for e in ["a", "b"] {
            apply(
                &mut s,
                &a,
                ClientFrame::React {
                    id: 1,
                    emoji: e.into(),
                },
                &limits,
                0,
            )
            .unwrap();
        }
        let e = apply(
            &mut s,
            &a,
            ClientFrame::React {
                id: 1,
                emoji: "c".into(),
            },
            &limits,
            0,
        )
        .unwrap_err();
        assert_eq!(e.code(), "too_many_reactions");
    }

    #[test]
    fn bad_bodies_are_refused_and_store_nothing() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        for (body, code) in [
            ("", "invalid_input"),
            ("   ", "invalid_input"),
            ("a\u{0}b", "invalid_input"),
        ] {
            assert_eq!(run(&mut s, &a, send("c", body)).unwrap_err().code(), code);
        }
        let big = "x".repeat(8 * 1024 + 1);
        assert_eq!(
            run(&mut s, &a, send("c", &big)).unwrap_err().code(),
            "payload_too_large"
        );
        assert_eq!(
            run(&mut s, &a, send("bad id!", "x")).unwrap_err().code(),
            "invalid_input"
        );
        let reply = ClientFrame::Send {
            client_msg_id: "r".into(),
            body: "x".into(),
            reply_to: Some(42),
            attachments: vec![],
        };
        assert_eq!(run(&mut s, &a, reply).unwrap_err().code(), "not_found");
        assert!(s.messages.is_empty() && s.events.is_empty());
    }

    #[test]
    fn replies_and_mentions() {
        let mut s = MemStore::default();
        s.people.insert("u-ada".into(), "Ada Lovelace".into());
        let a = who("a", Role::Member);
        run(&mut s, &a, send("1", "root")).unwrap();
        let reply = ClientFrame::Send {
            client_msg_id: "2".into(),
            body: "@adalovelace and @ai, see ada@example.org and @nobody".into(),
            reply_to: Some(1),
            attachments: vec![],
        };
        run(&mut s, &a, reply).unwrap();
        let m = &s.messages[&2];
        assert_eq!(m.reply_to, Some(1));
        assert_eq!(m.mentions, vec!["u-ada".to_string(), "ai".to_string()]);
    }

    #[test]
    fn mention_parsing() {
        assert_eq!(
            parse_mentions("hi @Ada, @bob.smith. @ada again"),
            vec!["ada", "bob.smith"]
        );
        assert!(parse_mentions("mail me at x@y.org").is_empty());
        assert!(parse_mentions("@ alone").is_empty());
        assert_eq!(mention_handle("Ada Lovelace"), "adalovelace");
    }

    #[test]
    fn read_markers_only_move_forward_and_stop_at_head() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("1", "x")).unwrap();
        run(&mut s, &a, ClientFrame::Read { seq: 100 }).unwrap();
        assert_eq!(s.reads["a"], 1);
        run(&mut s, &a, send("2", "y")).unwrap();
        run(&mut s, &a, ClientFrame::Read { seq: 2 }).unwrap();
        let back = run(&mut s, &a, ClientFrame::Read { seq: 0 }).unwrap();
        assert_eq!(
            back.reply,
            vec![ServerFrame::Read {
                user_id: "a".into(),
                seq: 2
            }]
        );
        assert!(back.broadcast.is_empty(), "a marker that stays is not news");
        let again = run(&mut s, &a, ClientFrame::Read { seq: 2 }).unwrap();
        assert!(again.broadcast.is_empty() && again.reply.len() == 1);
    }

    /// Every text a replay (`events` from seq 0) would send, as JSON.
    fn replayed(s: &MemStore) -> String {
        s.events.values().map(ServerFrame::to_json).collect()
    }

    #[test]
    fn replay_shows_a_message_as_it_is_now_never_an_earlier_version() {
        let mut s = MemStore::default();
        let a = who("a", Role::Member);
        run(&mut s, &a, send("1", "first draft with a password")).unwrap();
        run(&mut s, &a, send("2", "unrelated")).unwrap();
        for body in ["second draft", "final text"] {
            let edit = ClientFrame::Edit {
                id: 1,
                body: body.into(),
            };
            run(&mut s, &a, edit).unwrap();
        }
        let replay = replayed(&s);
        assert!(!replay.contains("password") && !replay.contains("second draft"));
        assert_eq!(replay.matches("final text").count(), 3, "{replay}");
        assert!(replay.contains("unrelated"));
        // Seqs and types stay: 1 message, 2 message, 3 and 4 edits.
        let kinds: Vec<(u64, &str)> = s
            .events
            .iter()
            .map(|(seq, f)| {
                let kind = match f {
                    ServerFrame::Message { .. } => "message",
                    ServerFrame::MessageEdited { .. } => "edited",
                    _ => "other",
                };
                (*seq, kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [(1, "message"), (2, "message"), (3, "edited"), (4, "edited")]
        );
    }

    #[test]
    fn a_deleted_message_leaves_nothing_to_replay_or_read() {
        let mut s = MemStore::default();
        s.people.insert("u-ada".into(), "Ada".into());
        let (a, b) = (who("a", Role::Member), who("b", Role::Member));
        run(&mut s, &a, send("1", "secret @ada")).unwrap();
        let edit = ClientFrame::Edit {
            id: 1,
            body: "still secret".into(),
        };
        run(&mut s, &a, edit).unwrap();
        let react = ClientFrame::React {
            id: 1,
            emoji: "👍".into(),
        };
        run(&mut s, &b, react).unwrap();
        run(&mut s, &b, send("2", "a reply")).unwrap();
        run(&mut s, &a, ClientFrame::Delete { id: 1 }).unwrap();
        let replay = replayed(&s);
        assert!(
            !replay.contains("secret") && !replay.contains("u-ada"),
            "{replay}"
        );
        assert!(replay.contains("a reply"));
        let ServerFrame::Message { message, .. } = &s.events[&1] else {
            panic!("seq 1 is still the message event");
        };
        assert!(message.message.deleted && message.message.body.is_empty());
        assert!(
            matches!(&s.events[&2], ServerFrame::MessageEdited { body, mentions, .. } if body.is_empty() && mentions.is_empty())
        );
        assert!(matches!(
            s.events[&5],
            ServerFrame::MessageDeleted { id: 1, .. }
        ));
        let tombstone = s.message(1).unwrap().unwrap().view(s.reactions(1).unwrap());
        assert!(
            tombstone.reactions.is_empty(),
            "reactions go with the message"
        );
    }

    #[test]
    fn read_state_counts_others_live_messages_and_mentions_after_the_marker() {
        let mut s = MemStore::default();
        s.people.insert("b".into(), "B".into());
        let (a, b) = (who("a", Role::Member), who("b", Role::Member));
        run(&mut s, &a, send("1", "hello @b")).unwrap();
        run(&mut s, &a, send("2", "plain")).unwrap();
        run(&mut s, &b, send("3", "my own, never unread")).unwrap();
        run(&mut s, &a, send("4", "@b again")).unwrap();
        run(&mut s, &a, ClientFrame::Delete { id: 4 }).unwrap();
        let state = read_state(&s, "b").unwrap();
        assert_eq!(
            state,
            ReadState {
                read_seq: Some(0),
                head_seq: Some(5),
                unread: Some(2),
                mentions: Some(1),
            }
        );
        run(&mut s, &b, ClientFrame::Read { seq: 1 }).unwrap();
        let state = read_state(&s, "b").unwrap();
        assert_eq!(
            (state.read_seq, state.unread, state.mentions),
            (Some(1), Some(1), Some(0))
        );
        // The author's own view: b's message is the only one from someone else.
        assert_eq!(read_state(&s, "a").unwrap().unread, Some(1));
    }

    #[test]
    fn hello_reads_are_the_others_furthest_first_and_bounded() {
        let mut s = MemStore::default();
        for (u, seq) in [("me", 9), ("x", 3), ("y", 7), ("z", 7), ("w", 1)] {
            s.reads.insert(u.into(), seq);
        }
        let seqs = |v: Vec<ReadMarker>| -> Vec<(String, u64)> {
            v.into_iter().map(|r| (r.user_id, r.seq)).collect()
        };
        assert_eq!(
            seqs(s.reads_except("me", 3).unwrap()),
            vec![("y".into(), 7), ("z".into(), 7), ("x".into(), 3)]
        );
        assert_eq!(s.reads_except("me", 100).unwrap().len(), 4);
    }

    fn attach(id: &str, files: &[&str]) -> ClientFrame {
        ClientFrame::Send {
            client_msg_id: id.into(),
            body: String::new(),
            reply_to: None,
            attachments: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn attachments_name_files_of_this_room() {
        let mut s = MemStore::default();
        let file = FileRef {
            id: "f1".into(),
            name: "plan.pdf".into(),
            content_type: "application/pdf".into(),
            size: 42,
        };
        s.files.insert("f1".into(), file.clone());
        let a = who("a", Role::Member);
        let err = run(&mut s, &a, attach("1", &["f1", "other-room-file"])).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(s.head_seq().unwrap(), 0, "nothing stored");
        // A message may be only files; a file attached twice is listed once.
        run(&mut s, &a, attach("2", &["f1", "f1"])).unwrap();
        assert_eq!(s.message(1).unwrap().unwrap().attachments, vec![file]);
        assert_eq!(
            run(&mut s, &a, attach("3", &[])).unwrap_err().code(),
            "invalid_input"
        );
        let many: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
        for id in &many {
            s.files.insert(
                id.clone(),
                FileRef {
                    id: id.clone(),
                    ..s.files["f1"].clone()
                },
            );
        }
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(run(&mut s, &a, attach("4", &refs)).is_err());
    }

    #[test]
    fn other_parts_of_the_room_record_events_in_the_stream() {
        let mut s = MemStore::default();
        run(&mut s, &who("a", Role::Member), send("1", "hi")).unwrap();
        let f = record_event(&mut s, "file_added", serde_json::json!({"id": "f"})).unwrap();
        assert_eq!(f.seq(), Some(2));
        assert_eq!(s.head_seq().unwrap(), 2);
    }

    #[test]
    fn resume_plans() {
        assert_eq!(plan_resume(10, 1, 10), Resume::UpToDate);
        assert_eq!(plan_resume(3, 1, 10), Resume::Replay { after: 3 });
        assert_eq!(plan_resume(0, 1, 10), Resume::Replay { after: 0 });
        assert_eq!(plan_resume(4, 5, 10), Resume::Replay { after: 4 });
        assert_eq!(plan_resume(3, 5, 10), Resume::Resync);
        assert_eq!(plan_resume(0, 0, 0), Resume::UpToDate);
    }

    proptest! {
        /// Any interleaving of sends (with repeated ids) from several people
        /// yields exactly one message per (author, client id), gap-free seqs, and
        /// the same ack for every repeat.
        #[test]
        fn idempotent_and_gap_free(ops in proptest::collection::vec((0usize..3, 0u8..6), 1..80)) {
            let mut s = MemStore::default();
            let people = [who("a", Role::Member), who("b", Role::Admin), who("c", Role::Owner)];
            let mut first_ack: BTreeMap<(usize, u8), u64> = BTreeMap::new();
            for (p, id) in ops {
                let out = run(&mut s, &people[p], send(&format!("m{id}"), "body")).unwrap();
                let ServerFrame::Ack { id: mid, .. } = out.reply[0] else { panic!("no ack") };
                prop_assert_eq!(*first_ack.entry((p, id)).or_insert(mid), mid);
            }
            prop_assert_eq!(s.messages.len(), first_ack.len());
            let seqs: Vec<u64> = s.events.keys().copied().collect();
            prop_assert_eq!(seqs, (1..=first_ack.len() as u64).collect::<Vec<_>>());
        }
    }
}
