//! A simulated room in the style of quinn-proto's `Pair`: fake connections,
//! a virtual clock and an in-memory store, driven through the same calls the
//! Room object makes and executing the outputs the way it does. A connection
//! keeps only the state the engine asked to save, as an attachment would
//! across hibernation.

use super::*;
use crate::chat::{record_event, MemStore};
use proptest::prelude::*;
use serde_json::{json, Value};

struct Peer {
    /// The state as last saved (the attachment).
    conn: Conn,
    open: bool,
    inbox: Vec<Value>,
    closed: Option<(u16, &'static str)>,
}

struct Sim {
    room: Room,
    store: MemStore,
    now: u64,
    peers: Vec<Peer>,
    /// What each `Output::Stored` handed on (to notifications, the AI, rules).
    stored: Vec<Vec<ServerFrame>>,
}

const TEN_PER_SEC: Rate = Rate {
    capacity: 10.0,
    per_sec: 10.0,
};

fn who(user: &str, role: Role) -> Identity {
    Identity {
        user_id: user.into(),
        display_name: user.to_uppercase(),
        role,
    }
}

fn send_frame(id: &str, body: &str) -> Value {
    json!({ "type": "send", "client_msg_id": id, "body": body })
}

impl Sim {
    fn new() -> Self {
        Self::with(MemStore::default())
    }

    fn with(store: MemStore) -> Self {
        Self {
            room: Room::new(ChatLimits::default(), TEN_PER_SEC),
            store,
            now: 1_000_000,
            peers: Vec::new(),
            stored: Vec::new(),
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    fn conns(&self) -> Vec<Conn> {
        self.peers
            .iter()
            .filter(|p| p.open)
            .map(|p| p.conn.clone())
            .collect()
    }

    fn join(&mut self, user: &str, role: Role) -> usize {
        self.join_since(user, role, None)
    }

    fn join_since(&mut self, user: &str, role: Role, since: Option<u64>) -> usize {
        let others = self.conns();
        let id = format!("c{}", self.peers.len());
        let conn = Conn::new(id, "r1".into(), &who(user, role), self.now);
        self.peers.push(Peer {
            conn: conn.clone(),
            open: true,
            inbox: Vec::new(),
            closed: None,
        });
        let out = self
            .room
            .open(&conn, since, &others, &mut self.store, self.now)
            .expect("memory store");
        self.run(out);
        self.peers.len() - 1
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut conn = self.peers[i].conn.clone();
        let conns = self.conns();
        let out = self
            .room
            .handle(&mut conn, input, &mut self.store, || conns, self.now);
        self.run(out);
    }

    fn send(&mut self, i: usize, frame: Value) {
        self.input(i, Input::Text(&frame.to_string()));
    }

    /// The platform's close handler: the socket is gone from the list first.
    fn leave(&mut self, i: usize) {
        self.peers[i].open = false;
        let conn = self.peers[i].conn.clone();
        let conns = self.conns();
        let out = self
            .room
            .closed(&conn, &conns, &mut self.store, self.now)
            .expect("memory store");
        self.run(out);
    }

    fn member(&mut self, user: &str, role: Option<Role>) {
        let notice = MemberNotice {
            user_id: user.into(),
            role,
            joined: false,
        };
        let out = self.room.member_changed(&notice, &self.conns());
        self.run(out);
    }

    fn peer(&mut self, conn: &str) -> Option<&mut Peer> {
        self.peers
            .iter_mut()
            .find(|p| p.open && p.conn.conn == conn)
    }

    fn run(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, frame } => {
                    if let Some(p) = self.peer(&to) {
                        p.inbox.push(serde_json::to_value(&frame).unwrap());
                    }
                }
                Output::SendStored { to, text } => {
                    if let Some(p) = self.peer(&to) {
                        p.inbox.push(serde_json::from_str(&text).unwrap());
                    }
                }
                Output::Broadcast { frame, except } => {
                    let v = serde_json::to_value(&frame).unwrap();
                    for p in self.peers.iter_mut().filter(|p| p.open) {
                        if except.as_deref() != Some(p.conn.conn.as_str()) {
                            p.inbox.push(v.clone());
                        }
                    }
                }
                Output::Close { to, code, reason } => {
                    let i = self.peers.iter().position(|p| p.open && p.conn.conn == to);
                    if let Some(i) = i {
                        self.peers[i].closed = Some((code, reason));
                        self.leave(i);
                    }
                }
                Output::Save(conn) => {
                    if let Some(p) = self.peer(&conn.conn.clone()) {
                        p.conn = conn;
                    }
                }
                Output::Stored(frames) => self.stored.push(frames),
            }
        }
    }

    /// Everything connection `i` received since the last call.
    fn take(&mut self, i: usize) -> Vec<Value> {
        std::mem::take(&mut self.peers[i].inbox)
    }

    fn types(&mut self, i: usize) -> Vec<String> {
        self.take(i)
            .iter()
            .map(|f| f["type"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

#[test]
fn hello_names_the_room_the_caller_and_who_is_here() {
    let mut sim = Sim::new();
    let bob = sim.join("bob", Role::Member);
    sim.send(bob, json!({ "type": "typing" }));
    let ada = sim.join("ada", Role::Admin);
    let hello = &sim.take(ada)[0];
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["room"], "r1");
    assert_eq!(hello["you"]["user_id"], "ada");
    assert_eq!(hello["you"]["role"], "admin");
    let online: Vec<&str> = hello["presence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "online")
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(online.len(), 2, "{hello}");
    assert_eq!(hello["typing"][0]["user_id"], "bob");
}

#[test]
fn a_message_is_acked_to_its_sender_and_broadcast_to_everyone_once() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    sim.take(ada);
    sim.take(bob);
    sim.send(ada, send_frame("m1", "hello @bob"));
    let got = sim.take(ada);
    assert_eq!(got[0]["type"], "ack");
    assert_eq!(got[0]["client_msg_id"], "m1");
    assert_eq!(got[1]["type"], "message");
    let at_bob = sim.take(bob);
    assert_eq!(at_bob.len(), 1);
    assert_eq!(at_bob[0]["message"]["body"], "hello @bob");
    assert_eq!(sim.stored.len(), 1, "handed on once");
    assert!(matches!(sim.stored[0][0], ServerFrame::Message { .. }));
}

#[test]
fn a_repeated_send_is_acked_as_a_duplicate_and_not_broadcast_again() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    sim.send(ada, send_frame("m1", "once"));
    sim.take(ada);
    sim.take(bob);
    sim.send(ada, send_frame("m1", "once"));
    let again = sim.take(ada);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["duplicate"], true);
    assert!(sim.take(bob).is_empty());
    assert_eq!(sim.store.messages.len(), 1);
    assert_eq!(sim.stored.len(), 1);
}

#[test]
fn writes_beyond_the_rate_are_refused_naming_the_frame_until_tokens_refill() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    for n in 0..10 {
        sim.send(ada, send_frame(&format!("m{n}"), "x"));
    }
    sim.take(ada);
    sim.send(ada, send_frame("m10", "x"));
    let refused = sim.take(ada);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["code"], "rate_limited");
    assert_eq!(refused[0]["ref"], "m10");
    assert_eq!(refused[0]["retry_after"], 0.1);
    assert_eq!(sim.store.messages.len(), 10, "nothing written");
    sim.advance(100);
    sim.send(ada, send_frame("m10", "x"));
    assert_eq!(sim.types(ada), ["ack", "message"]);
}

#[test]
fn the_write_budget_is_per_person_and_shared_with_http_posts() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let ada_again = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    for n in 0..5 {
        sim.send(ada, send_frame(&format!("a{n}"), "x"));
        sim.send(ada_again, send_frame(&format!("b{n}"), "x"));
    }
    let post = ClientFrame::Send {
        client_msg_id: "http".into(),
        body: "x".into(),
        reply_to: None,
        attachments: Vec::new(),
    };
    let e = sim
        .room
        .post(
            &who("ada", Role::Member),
            post.clone(),
            &mut sim.store,
            sim.now,
        )
        .unwrap_err();
    assert_eq!(
        e,
        ApiError::RateLimited {
            retry_after_secs: 1
        }
    );
    sim.take(bob);
    sim.send(bob, send_frame("b", "mine"));
    assert_eq!(sim.types(bob), ["ack", "message"]);
    sim.advance(100);
    let ok = sim
        .room
        .post(&who("ada", Role::Member), post, &mut sim.store, sim.now)
        .unwrap();
    assert!(matches!(ok.reply[0], ServerFrame::Ack { .. }));
}

#[test]
fn signals_have_their_own_budget_and_do_not_spend_writes() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let ada_again = sim.join("ada", Role::Member);
    for n in 0..10 {
        let s = if n % 2 == 0 { ada } else { ada_again };
        sim.send(s, json!({ "type": "read", "seq": 0 }));
    }
    sim.take(ada);
    sim.take(ada_again);
    sim.send(ada_again, json!({ "type": "typing" }));
    let refused = sim.take(ada_again);
    assert_eq!(refused[0]["code"], "rate_limited");
    assert_eq!(refused[0]["retry_after"], 0.5);
    assert!(refused[0].get("ref").is_none());
    sim.send(ada, send_frame("m", "writes still go"));
    assert_eq!(sim.types(ada), ["ack", "message"]);
}

#[test]
fn invalid_frames_are_struck_and_the_twentieth_closes_the_socket() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    sim.take(ada);
    for n in 1..MAX_STRIKES {
        match n % 3 {
            0 => sim.input(ada, Input::Binary),
            1 => sim.input(ada, Input::Text("{not json")),
            _ => sim.send(ada, json!({ "type": "shout" })),
        }
        let told = sim.take(ada);
        assert_eq!(told.len(), 1, "strike {n}");
        assert_eq!(told[0]["type"], "error");
        // The strikes are in the saved state: they survive hibernation.
        assert_eq!(sim.peers[ada].conn.strikes, n);
    }
    // Valid frames neither strike nor forgive.
    sim.send(ada, json!({ "type": "ping" }));
    assert_eq!(sim.types(ada), ["pong"]);
    sim.take(bob);
    sim.input(ada, Input::Binary);
    assert_eq!(
        sim.peers[ada].closed,
        Some((CLOSE_POLICY, "too many invalid frames"))
    );
    assert!(!sim.peers[ada].open);
    assert_eq!(sim.take(bob)[0]["users"][0]["status"], "offline");
    // What Ada sent before she heard of the close is dropped, not stored unacknowledged.
    sim.send(ada, send_frame("late", "after the close"));
    assert!(sim.store.messages.is_empty());
    assert!(sim.take(bob).is_empty());
}

#[test]
fn an_oversized_frame_is_refused_with_the_limit() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    sim.take(ada);
    let big = "x".repeat(ChatLimits::default().frame_bytes + 1);
    sim.send(ada, send_frame("m", &big));
    let told = sim.take(ada);
    assert_eq!(told[0]["code"], "payload_too_large");
    assert!(sim.store.messages.is_empty());
}

#[test]
fn typing_is_announced_when_it_starts_and_renewed_at_most_every_two_and_a_half_seconds() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    sim.take(bob);
    sim.send(ada, json!({ "type": "typing" }));
    let seen = sim.take(bob);
    assert_eq!(seen[0]["type"], "typing");
    assert_eq!(seen[0]["users"][0]["user_id"], "ada");
    assert_eq!(seen[0]["users"][0]["until"], sim.now + presence::TYPING_MS);
    sim.advance(presence::TYPING_RENEW_MS - 1);
    sim.send(ada, json!({ "type": "typing" }));
    assert!(sim.take(bob).is_empty(), "nothing new yet");
    sim.advance(1);
    sim.send(ada, json!({ "type": "typing" }));
    assert_eq!(
        sim.take(bob)[0]["users"][0]["until"],
        sim.now + presence::TYPING_MS
    );
}

#[test]
fn an_archived_room_refuses_every_write_and_keeps_reads() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Owner);
    let bob = sim.join("bob", Role::Member);
    sim.send(ada, send_frame("m1", "before"));
    sim.take(ada);
    sim.take(bob);
    sim.room.set_archived(true);
    for frame in [
        send_frame("m2", "after"),
        json!({ "type": "edit", "id": 1, "body": "changed" }),
        json!({ "type": "delete", "id": 1 }),
        json!({ "type": "react", "id": 1, "emoji": "x" }),
        json!({ "type": "unreact", "id": 1, "emoji": "x" }),
        json!({ "type": "typing" }),
    ] {
        sim.send(ada, frame.clone());
        let got = sim.take(ada);
        assert_eq!(got.len(), 1, "{frame}");
        assert_eq!(got[0]["code"], "room_archived", "{frame}");
    }
    assert!(sim.take(bob).is_empty(), "nothing reached the room");
    assert!(sim
        .room
        .post(
            &who("ada", Role::Owner),
            ClientFrame::Send {
                client_msg_id: "m3".into(),
                body: "over HTTP".into(),
                reply_to: None,
                attachments: Vec::new(),
            },
            &mut sim.store,
            sim.now
        )
        .is_err_and(|e| e.code() == "room_archived"));
    sim.send(ada, json!({ "type": "ping", "nonce": "n" }));
    assert_eq!(sim.take(ada)[0]["type"], "pong");
    sim.send(bob, json!({ "type": "read", "seq": 1 }));
    assert!(
        sim.take(bob).iter().all(|f| f["type"] != "error"),
        "read markers still move"
    );
    assert_eq!(sim.store.message(1).unwrap().unwrap().body, "before");
    assert!(sim.store.message(2).unwrap().is_none());
}

#[test]
fn viewers_cannot_type() {
    let mut sim = Sim::new();
    let vic = sim.join("vic", Role::Viewer);
    let bob = sim.join("bob", Role::Member);
    sim.take(vic);
    sim.take(bob);
    sim.send(vic, json!({ "type": "typing" }));
    assert_eq!(sim.take(vic)[0]["code"], "forbidden");
    assert!(sim.take(bob).is_empty());
    assert_eq!(sim.peers[vic].conn.typing_until, 0);
}

#[test]
fn a_persons_first_socket_announces_them_and_their_last_one_leaving_says_offline() {
    let mut sim = Sim::new();
    let bob = sim.join("bob", Role::Member);
    sim.take(bob);
    let ada = sim.join("ada", Role::Member);
    let seen = sim.take(bob);
    assert_eq!(seen[0]["type"], "presence");
    assert_eq!(seen[0]["users"][0]["user_id"], "ada");
    assert_eq!(seen[0]["users"][0]["status"], "online");
    assert_eq!(sim.types(ada), ["hello"], "not told about itself");
    let ada_again = sim.join("ada", Role::Member);
    assert!(sim.take(bob).is_empty(), "already online");
    sim.send(ada, json!({ "type": "typing" }));
    sim.take(bob);
    sim.leave(ada);
    assert!(sim.take(bob).is_empty(), "another socket is still online");
    sim.advance(1000);
    sim.leave(ada_again);
    let seen = sim.take(bob);
    assert_eq!(seen.len(), 1, "ada_again was not typing: {seen:?}");
    assert_eq!(seen[0]["users"][0]["status"], "offline");
    assert_eq!(seen[0]["users"][0]["last_seen"], sim.now);
    assert_eq!(sim.store.seen["ada"], sim.now, "last seen is stored");
}

#[test]
fn leaving_while_typing_clears_the_typing_list() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    let bob = sim.join("bob", Role::Member);
    sim.send(ada, json!({ "type": "typing" }));
    sim.take(bob);
    sim.leave(ada);
    let seen = sim.take(bob);
    assert_eq!(seen[0]["users"][0]["status"], "offline");
    assert_eq!(seen[1], json!({ "type": "typing", "users": [] }));
}

#[test]
fn presence_is_news_only_when_the_persons_presence_changes() {
    let mut sim = Sim::new();
    let bob = sim.join("bob", Role::Member);
    let ada = sim.join("ada", Role::Member);
    let ada_again = sim.join("ada", Role::Member);
    sim.take(bob);
    sim.send(ada, json!({ "type": "presence", "status": "away" }));
    assert!(sim.take(bob).is_empty(), "ada is online in another socket");
    assert_eq!(sim.peers[ada].conn.status, Status::Away);
    // A client saying "offline" is away: it is still connected.
    sim.send(
        ada_again,
        json!({ "type": "presence", "status": "offline" }),
    );
    let seen = sim.take(bob);
    assert_eq!(seen[0]["users"][0]["status"], "away");
    assert_eq!(sim.peers[ada_again].conn.status, Status::Away);
    sim.send(ada_again, json!({ "type": "presence", "status": "away" }));
    assert!(sim.take(bob).is_empty(), "a repeat");
    sim.send(ada, json!({ "type": "presence", "status": "online" }));
    assert_eq!(sim.take(bob)[0]["users"][0]["status"], "online");
}

#[test]
fn resume_replays_what_was_missed_in_order_and_nothing_else() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Member);
    for n in 1..=4 {
        sim.send(ada, send_frame(&format!("m{n}"), &format!("body {n}")));
    }
    let back = sim.join_since("bob", Role::Member, Some(2));
    let got = sim.take(back);
    assert_eq!(got[0]["type"], "hello");
    assert_eq!(got[0]["head_seq"], 4);
    let seqs: Vec<u64> = got[1..]
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(got[2]["message"]["body"], "body 4");
    let current = sim.join_since("cy", Role::Member, Some(4));
    assert_eq!(sim.types(current), ["hello"]);
}

#[test]
fn resume_beyond_the_retained_window_asks_for_a_resync() {
    let mut sim = Sim::with(MemStore {
        retained: Some(100),
        ..MemStore::default()
    });
    let ada = sim.join("ada", Role::Member);
    for n in 1..=200 {
        sim.advance(100);
        sim.send(ada, send_frame(&format!("m{n}"), "x"));
    }
    assert_eq!(sim.store.events.len(), 100, "pruned to the window");
    let late = sim.join_since("bob", Role::Member, Some(5));
    let got = sim.take(late);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1],
        json!({ "type": "resync", "head_seq": 200, "oldest_seq": 101 })
    );
    let edge = sim.join_since("cy", Role::Member, Some(100));
    assert_eq!(sim.take(edge).len(), 101, "hello and the whole window");
}

#[test]
fn a_replay_shows_rule_changes_only_to_those_who_may_read_rules() {
    let mut sim = Sim::new();
    let changes = json!({ "changes": [
        { "path": "rules.r1", "value": { "condition": true } },
        { "path": "title", "value": "Plans" },
    ] });
    record_event(&mut sim.store, "collaboration_updated", changes).unwrap();
    let member = sim.join_since("bob", Role::Member, Some(0));
    let admin = sim.join_since("ada", Role::Admin, Some(0));
    let for_member = &sim.take(member)[1];
    assert_eq!(for_member["data"]["changes"].as_array().unwrap().len(), 1);
    assert_eq!(for_member["data"]["changes"][0]["path"], "title");
    let for_admin = &sim.take(admin)[1];
    assert_eq!(for_admin["data"]["changes"].as_array().unwrap().len(), 2);
}

#[test]
fn a_new_role_applies_to_open_sockets_at_once() {
    let mut sim = Sim::new();
    let bob = sim.join("bob", Role::Member);
    let bob_again = sim.join("bob", Role::Member);
    sim.send(bob, send_frame("m1", "still a member"));
    sim.take(bob);
    sim.member("bob", Some(Role::Viewer));
    assert!(sim.peers[bob].open && sim.peers[bob_again].open);
    assert_eq!(sim.peers[bob_again].conn.role, Role::Viewer);
    sim.send(bob, send_frame("m2", "no longer"));
    let refused = sim.take(bob);
    assert_eq!(refused[0]["code"], "forbidden");
    assert_eq!(refused[0]["ref"], "m2");
    sim.send(bob_again, json!({ "type": "typing" }));
    assert_eq!(sim.take(bob_again).last().unwrap()["code"], "forbidden");
    assert_eq!(sim.store.messages.len(), 1);
    sim.member("bob", Some(Role::Member));
    sim.send(bob, send_frame("m3", "again"));
    assert_eq!(sim.types(bob), ["ack", "message"]);
}

#[test]
fn a_removed_member_is_closed_and_the_room_hears_they_left() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Owner);
    let bob = sim.join("bob", Role::Member);
    let bob_again = sim.join("bob", Role::Member);
    sim.take(ada);
    sim.member("bob", None);
    for s in [bob, bob_again] {
        assert_eq!(
            sim.peers[s].closed,
            Some((CLOSE_REMOVED, "removed from the room"))
        );
    }
    assert!(sim.peers[ada].open);
    // A frame Bob sent before he heard is still delivered, and dropped.
    sim.send(bob, send_frame("late", "still here?"));
    assert!(sim.store.messages.is_empty());
    let seen = sim.take(ada);
    assert_eq!(seen.len(), 1, "offline once, when the last socket went");
    assert_eq!(seen[0]["users"][0]["user_id"], "bob");
    assert_eq!(seen[0]["users"][0]["status"], "offline");
}

#[test]
fn ping_is_answered_with_the_nonce_and_the_time() {
    let mut sim = Sim::new();
    let ada = sim.join("ada", Role::Viewer);
    sim.take(ada);
    sim.send(ada, json!({ "type": "ping", "nonce": "n1" }));
    assert_eq!(
        sim.take(ada),
        [json!({ "type": "pong", "nonce": "n1", "at": sim.now })]
    );
}

#[derive(Debug, Clone)]
enum Step {
    Join(usize),
    Leave(usize),
    Send(usize, u8),
    Typing(usize),
    Garbage(usize),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..3usize).prop_map(Step::Join),
        1 => (0..8usize).prop_map(Step::Leave),
        4 => (0..8usize, 0..4u8).prop_map(|(i, k)| Step::Send(i, k)),
        1 => (0..8usize).prop_map(Step::Typing),
        1 => (0..8usize).prop_map(Step::Garbage),
        1 => (0..400u64).prop_map(Step::Wait),
    ]
}

proptest! {
    /// Whatever people do, nothing acknowledged is lost and every socket
    /// sees the stream it was open for gap-free, in order, once.
    #[test]
    fn acked_messages_are_stored_and_every_socket_sees_the_stream_in_order(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        let users = ["ada", "bob", "cy"];
        let mut sim = Sim::new();
        let mut acked = Vec::new();
        let mut last_seen: Vec<Option<u64>> = Vec::new();
        let check = |sim: &mut Sim, acked: &mut Vec<u64>, last: &mut Vec<Option<u64>>| {
            for i in 0..sim.peers.len() {
                last.resize(sim.peers.len(), None);
                for f in sim.take(i) {
                    if f["type"] == "hello" {
                        last[i] = f["head_seq"].as_u64();
                    }
                    if f["type"] == "ack" && f["duplicate"] == false {
                        acked.push(f["id"].as_u64().unwrap());
                    }
                    if f["type"] == "message" {
                        let seq = f["seq"].as_u64().unwrap();
                        prop_assert_eq!(Some(seq), last[i].map(|s| s + 1), "gap or repeat");
                        last[i] = Some(seq);
                    }
                }
            }
            Ok(())
        };
        for s in steps {
            let open: Vec<usize> = (0..sim.peers.len()).filter(|i| sim.peers[*i].open).collect();
            let pick = |i: usize| (!open.is_empty()).then(|| open[i % open.len()]);
            match s {
                Step::Join(u) => { sim.join(users[u], Role::Member); }
                Step::Leave(i) => if let Some(i) = pick(i) { sim.leave(i) },
                Step::Send(i, k) => if let Some(i) = pick(i) {
                    sim.send(i, send_frame(&format!("{}-{k}", sim.peers[i].conn.conn), "x"));
                },
                Step::Typing(i) => if let Some(i) = pick(i) { sim.send(i, json!({ "type": "typing" })) },
                Step::Garbage(i) => if let Some(i) = pick(i) { sim.input(i, Input::Binary) },
                Step::Wait(ms) => sim.advance(ms),
            }
            check(&mut sim, &mut acked, &mut last_seen)?;
        }
        for id in &acked {
            prop_assert!(sim.store.messages.contains_key(id));
        }
        prop_assert_eq!(acked.len(), sim.store.messages.len());
    }
}
