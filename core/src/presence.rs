//! Who is in a room right now: presence (online / away / offline with the time
//! last seen) and who is typing, computed on read from the room's connected
//! sockets, so no timer has to keep the room awake to expire anything.

use crate::protocol::{PresenceEntry, Status, TypingEntry};

/// What the room knows about one connected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected<'a> {
    pub user_id: &'a str,
    pub display_name: &'a str,
    pub status: Status,
    /// Unix milliseconds until which the socket's last `typing` counts.
    pub typing_until: u64,
}

/// Everyone typing at `now`, once each, in socket order.
pub fn typing(sockets: &[Connected], now: u64) -> Vec<TypingEntry> {
    let mut users: Vec<TypingEntry> = Vec::new();
    for s in sockets {
        if s.typing_until > now && !users.iter().any(|u| u.user_id == s.user_id) {
            users.push(TypingEntry {
                user_id: s.user_id.to_string(),
                display_name: s.display_name.to_string(),
                until: s.typing_until,
            });
        }
    }
    users
}

/// One person's presence: online if any of their sockets is, away if all of
/// their connected sockets are, otherwise offline as last seen at `last_seen`.
pub fn presence_of(
    sockets: &[Connected],
    user_id: &str,
    display_name: &str,
    last_seen: u64,
    now: u64,
) -> PresenceEntry {
    let mut mine = sockets.iter().filter(|s| s.user_id == user_id).peekable();
    let connected = mine.peek().is_some();
    let status = if mine.any(|s| s.status == Status::Online) {
        Status::Online
    } else if connected {
        Status::Away
    } else {
        Status::Offline
    };
    PresenceEntry {
        user_id: user_id.to_string(),
        display_name: display_name.to_string(),
        status,
        last_seen: if connected { now } else { last_seen },
    }
}

/// The presence of everyone the room knows: (user id, display name, last seen).
pub fn room_presence(
    sockets: &[Connected],
    known: &[(String, String, u64)],
    now: u64,
) -> Vec<PresenceEntry> {
    known
        .iter()
        .map(|(id, name, seen)| presence_of(sockets, id, name, *seen, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(user_id: &'static str, status: Status, typing_until: u64) -> Connected<'static> {
        Connected {
            user_id,
            display_name: user_id,
            status,
            typing_until,
        }
    }

    #[test]
    fn typing_expires_on_read_and_lists_each_person_once() {
        let s = [
            sock("a", Status::Online, 5_000),
            sock("a", Status::Online, 6_000),
            sock("b", Status::Online, 900),
        ];
        let t = typing(&s, 1_000);
        assert_eq!(
            t.iter().map(|e| e.user_id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert!(typing(&s, 6_000).is_empty());
    }

    #[test]
    fn presence_rules() {
        let s = [
            sock("a", Status::Away, 0),
            sock("a", Status::Online, 0),
            sock("b", Status::Away, 0),
        ];
        assert_eq!(presence_of(&s, "a", "A", 1, 50).status, Status::Online);
        let b = presence_of(&s, "b", "B", 1, 50);
        assert_eq!((b.status, b.last_seen), (Status::Away, 50));
        let c = presence_of(&s, "c", "C", 7, 50);
        assert_eq!((c.status, c.last_seen), (Status::Offline, 7));
        let all = room_presence(
            &s,
            &[("b".into(), "B".into(), 1), ("c".into(), "C".into(), 7)],
            50,
        );
        assert_eq!(
            all.iter().map(|p| p.status).collect::<Vec<_>>(),
            [Status::Away, Status::Offline]
        );
    }
}
