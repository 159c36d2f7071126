//! `core/openapi.json` tells the truth: real values of the API's response and
//! socket frame types, serialised, validate against the schemas it names
//! (JSON Schema 2020-12, as OpenAPI 3.1 uses); every success answer has a
//! precise schema; every route lists the error statuses the route table
//! implies; and the examples in `docs/protocol.md` are frames the server
//! accepts or sends. The Worker's own JSON is checked against the same
//! document by the integration tests (`tests/openapi.mjs`).

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tessera_core::actions::{ActorKind, Approval, Effect, Requester, RoomState};
use tessera_core::actor::ChangedBy;
use tessera_core::ai::analysis::{FileAnalysis, Job, JobStatus};
use tessera_core::ai::checkin::{CheckinRecord, Outcome, ProposedAction};
use tessera_core::ai::{ProviderUsage, UsageReport};
use tessera_core::api::{Endpoint, ROUTES};
use tessera_core::approval_inbox::{ApprovalInboxItem, ApprovalInboxRow, Scope};
use tessera_core::auth::{AuthConfig, OidcConfig};
use tessera_core::catalogue::{offered, spec};
use tessera_core::chat::{ReadMarker, ReadState, StoredMessage};
use tessera_core::files::{FileInfo, FileLimits, FileList, FileRef, FileStatus, FileUsage};
use tessera_core::links::{sign, LinkKey};
use tessera_core::protocol::{
    parse_client_frame, ClientFrame, Identity, PresenceEntry, ServerFrame, Status, TypingEntry,
};
use tessera_core::rooms::{
    InviteInfo, ListedInvite, MemberInfo, Role, RoomInfo, RoomKind, RoomWithReads,
};
use tessera_core::rules::{Rule, RuleEffect, Trigger};
use tessera_core::users::{pick, UserMatch, UserQuery};
use tessera_core::ApiError;

fn doc() -> Value {
    serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON")
}

/// Validates against `#/components/schemas/{name}` of the whole document, so
/// that references resolve as every OpenAPI tool resolves them.
struct Schemas {
    doc: Value,
}

impl Schemas {
    fn new() -> Self {
        Schemas { doc: doc() }
    }

    fn validator_for(&self, pointer: &str) -> jsonschema::Validator {
        let mut root = self.doc.clone();
        root["$ref"] = json!(pointer);
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("{pointer} does not compile: {e}"))
    }

    fn errors(&self, name: &str, value: &Value) -> Vec<String> {
        let v = self.validator_for(&format!("#/components/schemas/{name}"));
        v.iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    fn check(&self, name: &str, value: &impl Serialize) {
        let value = serde_json::to_value(value).expect("serialises");
        let errors = self.errors(name, &value);
        assert!(
            errors.is_empty(),
            "{name} does not describe {value}:\n{}",
            errors.join("\n")
        );
    }

    /// The values a union schema's discriminator maps.
    fn mapping(&self, name: &str) -> BTreeSet<String> {
        self.doc["components"]["schemas"][name]["discriminator"]["mapping"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no discriminator mapping"))
            .keys()
            .cloned()
            .collect()
    }

    fn refuses(&self, name: &str, value: &Value) {
        assert!(
            !self.errors(name, value).is_empty(),
            "{name} should refuse {value}"
        );
    }
}

fn file_ref() -> FileRef {
    FileRef {
        id: "f1".into(),
        name: "plan.pdf".into(),
        content_type: "application/pdf".into(),
        size: 20,
    }
}

fn message() -> StoredMessage {
    StoredMessage {
        id: 42,
        author: "u1".into(),
        author_name: "Ada".into(),
        client_msg_id: "c-1".into(),
        body: "Ship it @bob".into(),
        reply_to: Some(12),
        mentions: vec!["u2".into()],
        attachments: vec![file_ref()],
        created_at: 1_795_315_656_000,
        edited_at: None,
        deleted: false,
    }
}

fn identity() -> Identity {
    Identity {
        user_id: "u1".into(),
        display_name: "Ada".into(),
        role: Role::Member,
    }
}

fn person(id: &str, kind: ActorKind) -> ChangedBy {
    ChangedBy {
        user_id: id.into(),
        display_name: "Ada".into(),
        kind,
    }
}

fn approval() -> Approval {
    let spec = spec("remove_member").expect("in the catalogue");
    let from = Requester {
        by: person("ai", ActorKind::Ai),
        rule_id: None,
        reason: Some("inactive".into()),
    };
    Approval::request(
        1,
        spec,
        &json!({ "user_id": "u7" }),
        &from,
        1_795_315_660,
        &[],
    )
    .expect("a valid request")
    .approval()
    .clone()
}

fn job(status: JobStatus) -> Job {
    let done = status == JobStatus::Done;
    Job {
        id: "j1".into(),
        room_id: "r1".into(),
        file_id: "f1".into(),
        kind: "analyze".into(),
        status,
        progress: if done { 100 } else { 5 },
        result: done.then(|| {
            json!({ "summary": "…", "key_points": ["a"], "providers": ["builtin"], "chunks": 1,
                    "bytes_read": 10, "truncated": false })
        }),
        error: None,
        attempts: 1,
        created_by: "u1".into(),
        created_at: 1,
        updated_at: 2,
    }
}

/// The name of each server frame, by an exhaustive match: a new variant does
/// not compile until it is named here (and then needs a sample and a schema).
fn server_kind(f: &ServerFrame) -> &'static str {
    match f {
        ServerFrame::Hello { .. } => "hello",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Message { .. } => "message",
        ServerFrame::MessageEdited { .. } => "message_edited",
        ServerFrame::MessageDeleted { .. } => "message_deleted",
        ServerFrame::Reaction { .. } => "reaction",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Read { .. } => "read",
        ServerFrame::Event { .. } => "event",
        ServerFrame::Error { .. } => "error",
        ServerFrame::Resync { .. } => "resync",
        ServerFrame::Pong { .. } => "pong",
    }
}

fn client_kind(f: &ClientFrame) -> &'static str {
    match f {
        ClientFrame::Send { .. } => "send",
        ClientFrame::Edit { .. } => "edit",
        ClientFrame::Delete { .. } => "delete",
        ClientFrame::React { .. } => "react",
        ClientFrame::Unreact { .. } => "unreact",
        ClientFrame::Typing {} => "typing",
        ClientFrame::Presence { .. } => "presence",
        ClientFrame::Read { .. } => "read",
        ClientFrame::Ping { .. } => "ping",
    }
}

fn server_frames() -> Vec<ServerFrame> {
    let typing = TypingEntry {
        user_id: "u2".into(),
        display_name: "Bob".into(),
        until: 1,
    };
    let presence = PresenceEntry {
        user_id: "u2".into(),
        display_name: "Bob".into(),
        status: Status::Away,
        last_seen: 1,
    };
    let mut reactions = BTreeMap::new();
    reactions.insert("👍".to_string(), vec!["u2".to_string()]);
    vec![
        ServerFrame::Hello {
            room: "r1".into(),
            you: identity(),
            head_seq: 41,
            read_seq: 40,
            reads: vec![ReadMarker {
                user_id: "u2".into(),
                seq: 41,
            }],
            presence: vec![presence.clone()],
            typing: vec![typing.clone()],
        },
        ServerFrame::Ack {
            client_msg_id: "c-1".into(),
            id: 42,
            seq: 42,
            duplicate: false,
        },
        ServerFrame::Message {
            seq: 42,
            message: message().view(reactions),
        },
        ServerFrame::MessageEdited {
            seq: 43,
            id: 42,
            body: "x".into(),
            mentions: vec![],
            edited_at: 1,
        },
        ServerFrame::MessageDeleted {
            seq: 44,
            id: 42,
            deleted_by: "u3".into(),
        },
        ServerFrame::Reaction {
            seq: 45,
            id: 42,
            emoji: "👍".into(),
            user_id: "u2".into(),
            added: true,
        },
        ServerFrame::Typing {
            users: vec![typing],
        },
        ServerFrame::Presence {
            users: vec![presence],
        },
        ServerFrame::Read {
            user_id: "u2".into(),
            seq: 45,
        },
        ServerFrame::Event {
            event: "approval_requested".into(),
            seq: Some(46),
            data: json!({ "approval": approval() }),
        },
        ServerFrame::Event {
            event: "job_done".into(),
            seq: Some(47),
            data: json!({ "job": job(JobStatus::Done) }),
        },
        ServerFrame::Event {
            event: "file_added".into(),
            seq: Some(48),
            data: json!({ "file": file_ref(), "uploader": "u1" }),
        },
        ServerFrame::error(
            &ApiError::RateLimited {
                retry_after_secs: 1,
            },
            Some("c-1".into()),
        ),
        ServerFrame::error(&ApiError::NotFound("message"), None),
        ServerFrame::Resync {
            head_seq: 20_500,
            oldest_seq: 10_401,
        },
        ServerFrame::Pong { nonce: None, at: 1 },
    ]
}

#[test]
fn every_server_frame_matches_the_server_frame_schema() {
    let s = Schemas::new();
    let frames = server_frames();
    for f in &frames {
        s.check("ServerFrame", f);
    }
    let sampled: BTreeSet<String> = frames.iter().map(|f| server_kind(f).into()).collect();
    assert_eq!(
        sampled,
        s.mapping("ServerFrame"),
        "every frame type sampled and mapped"
    );
}

#[test]
fn frame_schemas_are_closed() {
    let s = Schemas::new();
    let mut hello = serde_json::to_value(&server_frames()[0]).expect("serialises");
    hello["extra"] = json!(1);
    s.refuses("ServerFrame", &hello);
    s.refuses("ServerFrame", &json!({ "type": "shout" }));
    s.refuses(
        "ServerFrame",
        &json!({ "type": "event", "event": "file_deleted", "data": { "id": "f" } }),
    );
}

/// Client frames: what the schema admits, the server parses, and what it
/// refuses, the schema refuses too.
#[test]
fn client_frames_the_schema_admits_are_the_ones_the_server_parses() {
    let s = Schemas::new();
    let good = [
        json!({"type":"send","client_msg_id":"c1","body":"hi"}),
        json!({"type":"send","client_msg_id":"c1","body":"","reply_to":3,"attachments":["f"]}),
        json!({"type":"edit","id":1,"body":"x"}),
        json!({"type":"delete","id":1}),
        json!({"type":"react","id":1,"emoji":"👍"}),
        json!({"type":"unreact","id":1,"emoji":"👍"}),
        json!({"type":"typing"}),
        json!({"type":"presence","status":"away"}),
        json!({"type":"read","seq":4}),
        json!({"type":"ping"}),
        json!({"type":"ping","nonce":"n"}),
    ];
    let mut kinds = BTreeSet::new();
    for f in &good {
        let parsed = parse_client_frame(&f.to_string(), 65536)
            .unwrap_or_else(|e| panic!("the server refuses {f}: {e}"));
        kinds.insert(client_kind(&parsed));
        assert!(s.errors("ClientFrame", f).is_empty(), "schema refuses {f}");
    }
    let kinds: BTreeSet<String> = kinds.into_iter().map(String::from).collect();
    assert_eq!(kinds, s.mapping("ClientFrame"));
    for bad in [
        json!({"type":"shout"}),
        json!({"type":"send","body":"x"}),
        json!({"type":"send","client_msg_id":"a","body":"x","evil":1}),
        json!({"type":"read","seq":-1}),
        json!({"type":"delete","id":"1"}),
        json!({"type":"presence","status":"asleep"}),
    ] {
        assert!(
            parse_client_frame(&bad.to_string(), 65536).is_err(),
            "{bad}"
        );
        s.refuses("ClientFrame", &bad);
    }
}

/// The JSON examples of `docs/protocol.md`, in order of appearance under a
/// heading that contains `heading`.
fn protocol_examples(heading: &str) -> Vec<Value> {
    let text = include_str!("../../docs/protocol.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/protocol.md has no section {heading}"));
    let mut out = Vec::new();
    for block in section.split("```json").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for value in serde_json::Deserializer::from_str(block).into_iter::<Value>() {
            out.push(value.unwrap_or_else(|e| panic!("an example is not JSON: {e}")));
        }
    }
    out
}

#[test]
fn the_protocol_document_shows_every_frame_and_its_examples_hold() {
    let s = Schemas::new();
    let client = protocol_examples("Client → server");
    let server = protocol_examples("Server → client");
    for f in &client {
        assert!(s.errors("ClientFrame", f).is_empty(), "ClientFrame: {f}");
        parse_client_frame(&f.to_string(), 65536).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for f in &server {
        let errors = s.errors("ServerFrame", f);
        assert!(errors.is_empty(), "ServerFrame: {f}: {errors:?}");
        serde_json::from_value::<ServerFrame>(f.clone()).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let shown = |frames: &[Value], key: &str| -> BTreeSet<String> {
        frames
            .iter()
            .filter_map(|f| f[key].as_str().map(String::from))
            .collect()
    };
    assert_eq!(shown(&client, "type"), s.mapping("ClientFrame"));
    assert_eq!(shown(&server, "type"), s.mapping("ServerFrame"));
    assert_eq!(shown(&server, "event"), s.mapping("RoomEvent"));
}

#[test]
fn messages_carry_attachments_as_files() {
    let s = Schemas::new();
    let mut reactions = BTreeMap::new();
    reactions.insert("🎉".to_string(), vec!["u1".to_string(), "u2".to_string()]);
    s.check("Message", &message().view(reactions));
    let mut edited = message();
    edited.edited_at = Some(7);
    edited.reply_to = None;
    s.check("Message", &edited.view(BTreeMap::new()));
    let mut as_ids = serde_json::to_value(message().view(BTreeMap::new())).expect("serialises");
    as_ids["attachments"] = json!(["f1"]);
    s.refuses("Message", &as_ids);
}

#[test]
fn rooms_members_invites_and_read_state() {
    let s = Schemas::new();
    let room = RoomInfo {
        id: "r1".into(),
        name: "Team".into(),
        kind: RoomKind::Group,
        topic: String::new(),
        created_by: "u1".into(),
        created_at: 1,
        updated_at: 2,
        role: Role::Owner,
        member_count: 3,
    };
    s.check("Room", &room);
    let known = ReadState {
        read_seq: Some(4),
        head_seq: Some(9),
        unread: Some(3),
        mentions: Some(1),
    };
    for reads in [known, ReadState::default()] {
        let with = RoomWithReads {
            room: room.clone(),
            reads,
        };
        s.check("RoomWithReads", &with);
        s.check(
            "RoomList",
            &json!({ "rooms": [with], "next_cursor": Value::Null }),
        );
    }
    // A room without its read state is not a list item, and the other way round.
    s.refuses("RoomWithReads", &serde_json::to_value(&room).expect("json"));
    let mut extra = serde_json::to_value(&room).expect("json");
    extra["unread"] = json!(1);
    s.refuses("Room", &extra);
    let member = MemberInfo {
        user_id: "u2".into(),
        display_name: "Bob".into(),
        role: Role::Viewer,
        joined_at: 3,
    };
    s.check("Member", &member);
    s.check(
        "MemberList",
        &json!({ "members": [member], "next_cursor": "u2" }),
    );
    s.check(
        "Invite",
        &InviteInfo {
            code: "abc".into(),
            room_id: "r1".into(),
            role: Role::Member,
            max_uses: 1,
            expires_at: 9,
        },
    );
    let listed = ListedInvite {
        code: "abc".into(),
        room_id: "r1".into(),
        role: Role::Viewer,
        max_uses: 3,
        uses: 1,
        expires_at: 9,
        created_by: "u1".into(),
        created_at: 2,
    };
    s.check("ListedInvite", &listed);
    for next_cursor in [json!("abc"), Value::Null] {
        s.check(
            "InviteList",
            &json!({ "invites": [listed], "next_cursor": next_cursor }),
        );
    }
}

#[test]
fn sessions_and_sign_in_configuration() {
    let s = Schemas::new();
    let user = json!({ "id": "u1", "email": null, "display_name": "Ada", "created_at": 1 });
    let session = json!({ "access_token": "a.b.c", "refresh_token": "r", "token_type": "Bearer", "expires_in": 900, "user": user });
    s.check("SessionWithUser", &session);
    // Cookie mode: the refresh token is only in the cookie.
    let mut cookie = session.clone();
    cookie
        .as_object_mut()
        .expect("object")
        .remove("refresh_token");
    s.check("SessionWithUser", &cookie);
    cookie.as_object_mut().expect("object").remove("user");
    s.check("Session", &cookie);
    s.refuses(
        "Session",
        &json!({ "access_token": "a", "token_type": "Bearer" }),
    );
    s.check(
        "AuthConfig",
        &AuthConfig {
            password: true,
            oidc: None,
        },
    );
    s.check(
        "AuthConfig",
        &AuthConfig {
            password: true,
            oidc: Some(OidcConfig {
                issuer: "https://id.example".into(),
                authorization_endpoint: "https://id.example/authorize".into(),
                token_endpoint: "https://id.example/token".into(),
                client_id: "tessera".into(),
                scopes: vec!["openid".into(), "email".into()],
            }),
        },
    );
}

#[test]
fn files_links_and_people() {
    let s = Schemas::new();
    let file = FileInfo {
        id: "f1".into(),
        room_id: "r1".into(),
        uploader_id: "u1".into(),
        name: "plan.pdf".into(),
        content_type: Some("application/pdf".into()),
        declared_type: "application/pdf".into(),
        size: 20,
        sha256: Some("ab".into()),
        status: FileStatus::Ready,
        created_at: 1,
        completed_at: Some(2),
    };
    s.check("File", &file);
    let mut with = serde_json::to_value(&file).expect("serialises");
    with["analysis"] = Value::Null;
    s.check("FileWithAnalysis", &with);
    with["analysis"] = json!(FileAnalysis::of(&job(JobStatus::Done)));
    s.check("FileWithAnalysis", &with);
    s.refuses("File", &with);
    let usage = FileUsage::of(20, 0, &FileLimits::default());
    s.check("FileUsage", &usage);
    s.check(
        "FileList",
        &FileList {
            files: vec![file],
            next_cursor: None,
            usage,
        },
    );
    s.check("FileRef", &file_ref());
    let key = LinkKey::derive(b"0123456789abcdef0123456789abcdef");
    s.check("FileLink", &sign(&key, "f1", "u1", 100));
    let query = UserQuery::parse(Some("ad")).expect("a query");
    let list = pick(
        &query,
        "me",
        None,
        vec![UserMatch {
            id: "u2".into(),
            display_name: "Ada".into(),
        }],
    );
    assert_eq!(list.users.len(), 1);
    s.check("UserList", &list);
}

#[test]
fn workflow_values() {
    let s = Schemas::new();
    let mut state = RoomState::default();
    s.check("RoomState", &state);
    let propose = spec("propose_activity").expect("in the catalogue");
    let Effect::State(changes) = state
        .run_as(
            propose,
            &json!({ "title": "Ship" }),
            &person("u1", ActorKind::User),
            5,
        )
        .expect("runs")
    else {
        panic!("a state change");
    };
    s.check("RoomState", &state);
    assert!(state.last_change.is_some());
    s.check(
        "StateChange",
        &json!({ "version": state.version, "changes": changes }),
    );
    let updated = ServerFrame::Event {
        event: "collaboration_updated".into(),
        seq: Some(3),
        data: state.updated_event(&changes),
    };
    s.check("ServerFrame", &updated);
    s.check("EventCollaborationUpdated", &updated);
    // A dry run: a state change, a refusal, no match.
    let dry = |effect: Value, body: &str| {
        let draft = json!({ "trigger": "message_posted", "effect": effect,
            "condition": {"in": ["x", {"var": "event.data.message.body"}]},
            "event": {"data": {"message": {"body": body}}} });
        tessera_core::dry_run::dry_run(
            &draft,
            &state,
            &person("u1", ActorKind::User),
            Role::Admin,
            9,
        )
        .expect("a valid draft")
    };
    for run in [
        dry(
            json!({"action": "propose_activity", "args": {"title": "t"}}),
            "x",
        ),
        dry(
            json!({"action": "start_activity", "args": {"id": "a9"}}),
            "x",
        ),
        dry(json!({"action": "archive_room"}), "x"),
        dry(
            json!({"action": "send_message", "args": {"body": "b"}}),
            "x",
        ),
        dry(
            json!({"action": "send_message", "args": {"body": "b"}}),
            "y",
        ),
    ] {
        s.check("DryRun", &run);
    }
    for role in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
        s.check(
            "ActionList",
            &json!({ "role": role, "actions": offered(role) }),
        );
    }
    let rule = Rule {
        id: "r1".into(),
        name: "greet".into(),
        trigger: Trigger::MemberJoined,
        condition: json!(true),
        effect: RuleEffect {
            action: "send_message".into(),
            args: json!({ "body": "hi" }),
        },
        enabled: true,
        author: "u1".into(),
        created_at: 1,
        updated_at: 1,
    };
    s.check("Rule", &rule);
    s.check(
        "RuleChange",
        &json!({ "version": 2, "changes": [], "rule": rule }),
    );
    let mut a = approval();
    s.check("ApprovalEnvelope", &json!({ "approval": a }));
    let row = ApprovalInboxRow {
        n: 1,
        room_id: "r1".into(),
        room_name: "Plans".into(),
        data: serde_json::to_string(&a).expect("serialises"),
    };
    let item = ApprovalInboxItem::of(&row, Scope::Owner, "u1", 1_795_315_661).expect("readable");
    s.check(
        "ApprovalInboxPage",
        &json!({ "approvals": [item], "next_cursor": "1" }),
    );
    a.resolve(
        &person("u1", ActorKind::User),
        Role::Owner,
        true,
        Some("fine".into()),
        1_795_315_700,
    )
    .expect("an owner approves");
    a.result = Some(json!({ "status": 200, "outcome": { "removed": "u7" } }));
    s.check("ApprovalList", &json!({ "approvals": [a] }));
    let record = CheckinRecord {
        day: "2026-05-01".into(),
        provider: "builtin".into(),
        message_id: Some(4),
        planned: vec![
            ProposedAction {
                name: "remove_member".into(),
                args: json!({ "user_id": "u7" }),
                reason: "inactive".into(),
            },
            ProposedAction {
                name: "send_message".into(),
                args: json!({ "body": "hi" }),
                reason: "asked".into(),
            },
        ],
        actions: vec![Outcome {
            name: "remove_member".into(),
            args: json!({ "user_id": "u7" }),
            reason: "inactive".into(),
            status: 202,
            outcome: json!({ "approval": a }),
        }],
        finished: false,
    };
    s.check("Checkin", &record);
    let view = record.view(Some("Summary".into()), |_| Some(a.clone()));
    assert!(view.proposals[0].approval.is_some());
    s.check("CheckinView", &view);
    s.check("CheckinView", &record.view(None, |_| None));
    let usage = ProviderUsage {
        provider: "openai".into(),
        calls: 2,
        tokens_in: 100,
        tokens_out: 20,
        cost_micros: 7,
    };
    s.check(
        "UsageReport",
        &UsageReport::of("2026-05-01", vec![usage], 1000),
    );
    for status in JobStatus::ALL {
        s.check("JobEnvelope", &json!({ "job": job(status) }));
        s.check("FileAnalysis", &FileAnalysis::of(&job(status)));
    }
}

#[test]
fn error_bodies() {
    let s = Schemas::new();
    for e in [
        ApiError::invalid("x"),
        ApiError::MalformedJson("x".into()),
        ApiError::PayloadTooLarge { limit: 1 },
        ApiError::Unauthenticated,
        ApiError::NotFound("room"),
        ApiError::LinkExpired,
        ApiError::LinkInvalid("x"),
        ApiError::RateLimited {
            retry_after_secs: 60,
        },
        ApiError::Internal("secret detail".into()),
        ApiError::invalid_at("condition.if[0]", "x"),
    ] {
        s.check("Error", &e.body());
    }
    let mut state = RoomState::default();
    let conflict = state.check_version(Some("3")).expect_err("stale");
    s.check("Error", &conflict.body());
    state
        .run_as(
            spec("propose_activity").expect("in the catalogue"),
            &json!({ "title": "x" }),
            &person("u2", ActorKind::Rule),
            5,
        )
        .expect("runs");
    let conflict = state.check_version(Some("0")).expect_err("stale");
    assert!(conflict.body()["error"]["last_change"].is_object());
    s.check("Error", &conflict.body());
}

/// Every schema the document names compiles.
#[test]
fn every_schema_compiles() {
    let s = Schemas::new();
    for name in s.doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        s.validator_for(&format!("#/components/schemas/{name}"));
    }
}

/// Routes that need no bearer token (or, for sockets, a token in the query).
fn public(e: Endpoint) -> bool {
    matches!(
        e,
        Endpoint::Health
            | Endpoint::OpenApi
            | Endpoint::Register
            | Endpoint::Login
            | Endpoint::Refresh
            | Endpoint::Logout
            | Endpoint::UnsubscribePage
            | Endpoint::Unsubscribe
            | Endpoint::PostIncomingWebhook
            | Endpoint::AuthConfig
            | Endpoint::OidcSignIn
    )
}

/// Routes that sign tokens or links: without `JWT_SECRET` they answer 503.
fn needs_secret(e: Endpoint) -> bool {
    !public(e)
        || matches!(
            e,
            Endpoint::Register
                | Endpoint::Login
                | Endpoint::Refresh
                | Endpoint::OidcSignIn
                | Endpoint::UnsubscribePage
                | Endpoint::Unsubscribe
        )
}

/// The error statuses each route must document follow from the route table:
/// 500 anywhere; 429 where the API limit counts; 401 and 503 where a token
/// is checked or signed; 404 where a path parameter may name nothing (or be
/// malformed); 400, 413 and 415 where a JSON body is read. Nothing answers
/// with an undocumented `default`.
#[test]
fn every_route_documents_the_statuses_it_can_answer() {
    let doc = doc();
    let mut missing = Vec::new();
    for (method, path, endpoint) in ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            !responses.contains_key("default"),
            "{method} {path}: a default response hides undocumented statuses"
        );
        let json_body = op["requestBody"]["content"]["application/json"].is_object();
        let mut want = vec!["500"];
        if endpoint.counts_against_api_limit() {
            want.push("429");
        }
        if !public(*endpoint) {
            want.push("401");
        }
        if needs_secret(*endpoint) {
            want.push("503");
        }
        if path.contains('{') {
            want.push("404");
        }
        if json_body {
            want.extend(["400", "413", "415"]);
        }
        for status in want {
            if !responses.contains_key(status) {
                missing.push(format!("{method} {path}: {status}"));
            }
        }
        for (status, r) in responses {
            let schema = &r["content"]["application/json"]["schema"];
            if status.starts_with(['4', '5']) && *status != "503" {
                assert!(
                    r["$ref"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("#/components/responses/")),
                    "{method} {path} {status}: errors use the Error responses"
                );
            }
            if status.starts_with('2') && *status != "204" && *method != "HEAD" {
                // Headers-only answers (tus) describe their headers instead.
                let has_content = r["content"].as_object().is_some_and(|c| !c.is_empty());
                let headers_only = r["headers"].is_object();
                assert!(
                    has_content || headers_only,
                    "{method} {path} {status}: no content described"
                );
                if r["content"]["application/json"].is_object() {
                    assert!(
                        schema.is_object(),
                        "{method} {path} {status}: JSON without a schema"
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented statuses:\n{}",
        missing.join("\n")
    );
}

/// No schema is a bare `{"type": "object"}`: every object says what it holds
/// (`properties` with `required`, or what its values are), and says whether
/// it may hold more. Schemas only used as `allOf` parts leave that to the
/// whole (`unevaluatedProperties: false`).
#[test]
fn every_object_schema_is_precise() {
    fn walk(
        node: &Value,
        path: &str,
        in_all_of: bool,
        parts: &BTreeSet<String>,
        bad: &mut Vec<String>,
    ) {
        match node {
            Value::Object(map) => {
                let is_object = match &map.get("type") {
                    Some(Value::String(t)) => t == "object",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                if is_object {
                    let open = map.get("additionalProperties");
                    let has_props = map.contains_key("properties");
                    if !has_props && open.is_none() {
                        bad.push(format!("{path}: an object without properties"));
                    }
                    if has_props && !map.contains_key("required") {
                        bad.push(format!("{path}: properties without required"));
                    }
                    let part = in_all_of || parts.iter().any(|p| path == format!("/{p}"));
                    if open.is_none() && !part {
                        bad.push(format!(
                            "{path}: does not say whether more properties may come"
                        ));
                    }
                }
                if map.contains_key("allOf")
                    && map.get("unevaluatedProperties") != Some(&json!(false))
                {
                    bad.push(format!(
                        "{path}: allOf without unevaluatedProperties: false"
                    ));
                }
                for (k, v) in map {
                    walk(v, &format!("{path}/{k}"), k == "allOf", parts, bad);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}/{i}"), in_all_of, parts, bad);
                }
            }
            _ => {}
        }
    }
    let doc = doc();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    // Named schemas referenced from an allOf.
    let mut parts = BTreeSet::new();
    for s in schemas.values() {
        for part in s["allOf"].as_array().into_iter().flatten() {
            if let Some(r) = part["$ref"].as_str() {
                parts.insert(r.trim_start_matches("#/components/schemas/").to_string());
            }
        }
    }
    let mut bad = Vec::new();
    walk(&doc["components"]["schemas"], "", false, &parts, &mut bad);
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            walk(
                &op["responses"],
                &format!("{method} {path}"),
                false,
                &parts,
                &mut bad,
            );
        }
    }
    assert!(bad.is_empty(), "imprecise schemas:\n{}", bad.join("\n"));
}

#[test]
fn search_hits_and_results() {
    use tessera_core::search::sql::{Found, Row};
    let s = Schemas::new();
    let row = |kind: &str, seq: Option<u64>| Row {
        id: 1,
        room_id: "r1".into(),
        room_name: "Room".into(),
        kind: kind.into(),
        ref_id: "x".into(),
        at: 5,
        author: "u1".into(),
        seq,
        title: "a \u{E000}b\u{E001}".into(),
        snippet: "<i>c</i>".into(),
        score: 1.5,
    };
    let mut hits = Vec::new();
    for (kind, seq) in [
        ("message", Some(3)),
        ("checkin", Some(4)),
        ("document", None),
        ("file", None),
        ("activity", None),
    ] {
        for (marked, found) in [
            (true, Found::Text),
            (false, Found::Semantic),
            (true, Found::Both),
        ] {
            let hit = row(kind, seq).into_hit(marked, found).expect("a hit");
            s.check("SearchHit", &hit);
            hits.push(hit);
        }
    }
    let results = json!({
        "results": hits, "next_cursor": "20", "mode": "hybrid", "scope": "rooms",
        "semantic": { "available": false, "reason": "no provider" },
    });
    s.check("SearchResults", &results);
    s.refuses("SearchHit", &json!({ "kind": "message" }));
}
