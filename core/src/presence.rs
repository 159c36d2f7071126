//! Who is in a room right now: presence (online / away / offline with the time
//! last seen) and who is typing, computed on read from the room's connected
//! sockets, so no timer has to keep the room awake to expire anything. Also
//! when a change is worth telling the room: only news is broadcast, so a
//! client repeating itself costs the other members nothing.

use crate::protocol::{PresenceEntry, Status, TypingEntry};

/// How long a `typing` counts after it is announced.
pub const TYPING_MS: u64 = 5_000;
/// A socket that keeps typing is announced again at most this often (well
/// before its announced entry runs out).
pub const TYPING_RENEW_MS: u64 = TYPING_MS / 2;
/// People a `typing` list names at most.
pub const TYPING_LIST_MAX: usize = 20;

/// A `typing` frame from a socket whose announced entry lasts until `until`:
/// the new end to announce, or `None` while the announced one still has more
/// than `TYPING_RENEW_MS` to run (the room hears nothing new).
pub fn typing_renewal(until: u64, now: u64) -> Option<u64> {
    (until <= now + TYPING_MS - TYPING_RENEW_MS).then_some(now + TYPING_MS)
}

/// What the `mine`-th socket changing to `status` does to its person's
/// presence: the entry to announce, or `None` when their presence stays as
/// it was (a repeat, or another socket of theirs still online).
pub fn status_change(
    sockets: &[Connected],
    mine: usize,
    status: Status,
    now: u64,
) -> Option<PresenceEntry> {
    let me = sockets.get(mine)?;
    let before = presence_of(sockets, me.user_id, me.display_name, 0, now);
    let mut after = sockets.to_vec();
    after[mine].status = status;
    let after = presence_of(&after, me.user_id, me.display_name, 0, now);
    (after.status != before.status).then_some(after)
}

/// What the room knows about one connected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected<'a> {
    pub user_id: &'a str,
    pub display_name: &'a str,
    pub status: Status,
    /// Unix milliseconds until which the socket's last `typing` counts.
    pub typing_until: u64,
}

/// Everyone typing at `now`, once each, in socket order, at most
/// `TYPING_LIST_MAX` of them.
pub fn typing(sockets: &[Connected], now: u64) -> Vec<TypingEntry> {
    let mut users: Vec<TypingEntry> = Vec::new();
    for s in sockets {
        if users.len() == TYPING_LIST_MAX {
            break;
        }
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
    fn typing_is_renewed_at_most_every_renewal_period_and_lists_are_bounded() {
        assert_eq!(typing_renewal(0, 1_000), Some(1_000 + TYPING_MS));
        let until = 1_000 + TYPING_MS;
        // A flood of typing frames within the period announces nothing.
        for now in (1_001..1_000 + TYPING_RENEW_MS).step_by(7) {
            assert_eq!(typing_renewal(until, now), None, "{now}");
        }
        assert_eq!(
            typing_renewal(until, 1_000 + TYPING_RENEW_MS),
            Some(1_000 + TYPING_RENEW_MS + TYPING_MS)
        );
        let names: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
        let many: Vec<Connected> = names
            .iter()
            .map(|n| Connected {
                user_id: n,
                display_name: n,
                status: Status::Online,
                typing_until: 9_000,
            })
            .collect();
        assert_eq!(typing(&many, 1_000).len(), TYPING_LIST_MAX);
    }

    #[test]
    fn only_a_change_of_a_persons_presence_is_news() {
        let s = [
            sock("a", Status::Online, 0),
            sock("a", Status::Online, 0),
            sock("b", Status::Online, 0),
        ];
        assert_eq!(status_change(&s, 0, Status::Online, 5), None, "a repeat");
        assert_eq!(
            status_change(&s, 0, Status::Away, 5),
            None,
            "a's other socket is online"
        );
        let away = status_change(&s, 2, Status::Away, 5).unwrap();
        assert_eq!((away.user_id.as_str(), away.status), ("b", Status::Away));
        let both_away = [sock("a", Status::Away, 0), sock("a", Status::Online, 0)];
        let gone = status_change(&both_away, 1, Status::Away, 5).unwrap();
        assert_eq!(gone.status, Status::Away);
        assert_eq!(status_change(&s, 9, Status::Away, 5), None);
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
