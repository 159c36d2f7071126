//! The authorization matrix as data: for every route of the route table and
//! every kind of caller, the status the API must answer; for every room
//! socket frame and document socket message, what each role must get back.
//!
//! This is a specification, stated apart from the code that enforces it: the
//! Worker and the room object check access where they act, and
//! `tests/authz.test.mjs` drives every row of this table against the built
//! Worker in workerd over real HTTP and WebSockets. The matches below are
//! exhaustive, so a route or frame type does not compile without its row, and
//! a native test keeps `tests/authz-matrix.json` (what the integration test
//! reads) equal to this table.
//!
//! The table speaks of one seeded room (see [`Caller`]). Whatever belongs to
//! somebody there — the unfinished upload, the file, a message to edit —
//! belongs to the member, except the viewer's own messages, written while the
//! viewer was still a member (so "own" rows exist for every role and the
//! check is of the *current* role).

use crate::api::{Endpoint, ROUTES};
use crate::protocol::ClientFrame;
use crate::rooms::{Permission, Role};
use serde_json::{json, Map, Value};

/// Declares a field-less enum with its snake_case names and the list of all
/// its values, so that no value can be left out of `ALL`.
macro_rules! cases {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }
    };
}

cases! {
    /// Who calls: four kinds of bad token, two people without a membership
    /// of the seeded room, and its four roles.
    Caller {
        /// No `Authorization` header (no `?token=` on a socket).
        NoToken => "no_token",
        /// Signed with the server's key, with `exp` in the past.
        Expired => "expired",
        /// A valid token whose claims were changed after signing.
        Tampered => "tampered",
        /// Signed with the server's key, by an issuer other than Tessera.
        OtherIssuer => "other_issuer",
        /// A valid account that never belonged to the room.
        NonMember => "non_member",
        /// A member who was removed from the room (the token is still valid).
        Removed => "removed",
        Viewer => "viewer",
        Member => "member",
        Admin => "admin",
        Owner => "owner",
    }
}

impl Caller {
    /// Whether the token proves an account.
    pub const fn signed_in(self) -> bool {
        !matches!(
            self,
            Caller::NoToken | Caller::Expired | Caller::Tampered | Caller::OtherIssuer
        )
    }

    /// The caller's role in the seeded room, if a member.
    pub const fn role(self) -> Option<Role> {
        match self {
            Caller::Viewer => Some(Role::Viewer),
            Caller::Member => Some(Role::Member),
            Caller::Admin => Some(Role::Admin),
            Caller::Owner => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anyone: the route reads no access token.
    Anyone,
    /// Any account.
    SignedIn,
    /// Any account with a code of the room's invite: members already in the
    /// room get 200 and the room, others join (the route's success status).
    Invitee,
    /// A member of the room the route names (in its path, or through the
    /// file, upload or job it names) holding at least this role; a member
    /// below it gets 403 and anyone else 404, as for a room that does not
    /// exist, so rooms cannot be probed.
    Room(Role),
    /// Only the upload's uploader (the member), while a member of its room;
    /// anyone else gets 404, as for an upload that does not exist.
    Uploader,
    /// The member who owns the resource, or anyone of the room holding at
    /// least this role; other members 403, non-members 404.
    OwnerOr(Role),
}

/// A route's access rule and the status a permitted call answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    pub ok: u16,
}

const fn rule(who: Who, ok: u16) -> Rule {
    Rule { who, ok }
}

const fn room(p: Permission, ok: u16) -> Rule {
    rule(Who::Room(p.min_role()), ok)
}

/// Every route's rule. Room-scoped routes name the permission the Worker or
/// the room object checks (`Permission::min_role` is the README's matrix);
/// the rest name a role.
pub const fn rule_of(endpoint: Endpoint) -> Rule {
    use Endpoint as E;
    use Permission as P;
    match endpoint {
        E::Health | E::OpenApi | E::Login | E::Refresh => rule(Who::Anyone, 200),
        E::Register => rule(Who::Anyone, 201),
        E::Logout => rule(Who::Anyone, 204),
        // The look-up answers only co-members (and an exact email).
        E::GetMe | E::UpdateMe | E::ListRooms | E::SearchUsers => rule(Who::SignedIn, 200),
        E::CreateRoom => rule(Who::SignedIn, 201),
        E::AcceptInvite => rule(Who::Invitee, 201),
        E::GetRoom
        | E::ListMembers
        | E::ListMessages
        | E::GetMessage
        | E::ListDocs
        | E::GetDoc
        | E::ListDocVersions
        | E::GetDocVersion
        | E::ListFiles
        | E::GetFile
        | E::FileContent
        | E::FileContentHead
        | E::GetState
        | E::ListActions
        | E::ListApprovals
        | E::GetJob
        | E::CreateFileLink => room(P::ReadRoom, 200),
        E::RoomSocket => room(P::ReadRoom, 101),
        E::UpdateRoom => room(P::UpdateRoom, 200),
        E::DeleteRoom => room(P::DeleteRoom, 204),
        E::AddMember => room(P::ManageMembers, 201),
        E::UpdateMember => room(P::ManageMembers, 200),
        E::RemoveMember => room(P::ManageMembers, 204),
        E::CreateInvite => room(P::CreateInvite, 201),
        E::PostMessage => room(P::SendMessage, 201),
        E::DeleteDoc => room(P::ManageDocuments, 204),
        E::PostDocUpdate | E::RestoreDocVersion => room(P::EditDocument, 200),
        E::CreateDocVersion => room(P::EditDocument, 201),
        E::CreateUpload => room(P::UploadFile, 201),
        E::UploadStatus => rule(Who::Uploader, 200),
        E::PatchUpload | E::TerminateUpload => rule(Who::Uploader, 204),
        E::DeleteFile => rule(Who::OwnerOr(P::DeleteAnyFile.min_role()), 204),
        // Proposing an activity (a state action) answers 200.
        E::RunAction => rule(Who::Room(Role::Member), 200),
        // Rules and the audit log are for the people who manage the room.
        E::ListRules
        | E::CreateRule
        | E::UpdateRule
        | E::DeleteRule
        | E::ListAudit
        | E::ExportAudit => room(P::ManageMembers, 200),
        E::ApproveApproval | E::RejectApproval => rule(Who::Room(Role::Owner), 200),
        // Viewers do not spend the room's AI budget.
        E::AnalyzeFile | E::AnalyzeBatch => rule(Who::Room(Role::Member), 202),
        E::RunCheckin => rule(Who::Room(Role::Owner), 201),
        E::AuthConfig => rule(Who::Anyone, 200),
        // An ID token of the configured provider; none is configured here.
        E::OidcSignIn => rule(Who::Anyone, 400),
        E::ListInvites => room(P::CreateInvite, 200),
        // Whoever could have made the invite may revoke it; unknown to others.
        E::RevokeInvite => rule(Who::Room(Role::Admin), 204),
        E::DeleteDocVersion => room(P::ManageDocuments, 204),
        E::CreateDoc => room(P::EditDocument, 201),
        E::DryRunRule => room(P::ManageMembers, 200),
        E::GetCheckin => room(P::ReadRoom, 200),
        E::GetAiUsage => rule(Who::Room(Role::Owner), 200),
        // Cross-room reads: each answers only from the caller's own rooms.
        E::ListApprovalInbox | E::Search | E::ListInbox | E::GetPreferences | E::GetPush => {
            rule(Who::SignedIn, 200)
        }
        E::MeSocket => rule(Who::SignedIn, 101),
        E::ReadInbox | E::UpdatePreferences => rule(Who::SignedIn, 200),
        E::CreatePushSubscription => rule(Who::SignedIn, 201),
        E::DeletePushSubscription => rule(Who::SignedIn, 204),
        // A person's own keys (API keys themselves are refused, see `apikeys`).
        E::ListApiKeys => rule(Who::SignedIn, 200),
        E::CreateApiKey => rule(Who::SignedIn, 201),
        E::DeleteApiKey => rule(Who::SignedIn, 204),
        // Signed tokens in the path are the credential.
        E::UnsubscribePage | E::Unsubscribe => rule(Who::Anyone, 200),
        E::PostIncomingWebhook => rule(Who::Anyone, 200),
        // Webhooks are managed by the people who manage the room.
        E::ListWebhooks | E::UpdateWebhook | E::ListWebhookDeliveries | E::ListIncomingWebhooks => {
            room(P::ManageMembers, 200)
        }
        E::CreateWebhook | E::CreateIncomingWebhook => room(P::ManageMembers, 201),
        E::DeleteWebhook | E::DeleteIncomingWebhook => room(P::ManageMembers, 204),
        E::TestWebhook => room(P::ManageMembers, 202),
    }
}

/// The status `caller` must get from `endpoint`.
pub fn expected(endpoint: Endpoint, caller: Caller) -> u16 {
    let Rule { who, ok } = rule_of(endpoint);
    if who == Who::Anyone {
        return ok;
    }
    if !caller.signed_in() {
        return 401;
    }
    let role = caller.role();
    match who {
        Who::Anyone | Who::SignedIn => ok,
        Who::Invitee => role.map_or(ok, |_| 200),
        Who::Room(min) => match role {
            None => 404,
            Some(r) if r >= min => ok,
            Some(_) => 403,
        },
        Who::Uploader => match caller {
            Caller::Member => ok,
            _ => 404,
        },
        Who::OwnerOr(min) => match role {
            None => 404,
            Some(r) if caller == Caller::Member || r >= min => ok,
            Some(_) => 403,
        },
    }
}

/// The document socket (`GET …/docs/{doc}` with an upgrade) is not a route of
/// its own: it takes the rule of reading the room.
pub fn expected_doc_socket(caller: Caller) -> u16 {
    expected(Endpoint::RoomSocket, caller)
}

/// What a socket frame must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A frame of this type to the sender.
    Reply(&'static str),
    /// A frame of this type to the room's other sockets.
    Broadcast(&'static str),
    /// An `error` frame with this code to the sender, and nothing stored.
    Error(&'static str),
    /// Nothing sent to anyone, nothing stored (a viewer's document update).
    Dropped,
}

impl Answer {
    fn to_json(self) -> Value {
        match self {
            Answer::Reply(t) => json!({ "reply": t }),
            Answer::Broadcast(t) => json!({ "broadcast": t }),
            Answer::Error(code) => json!({ "error": code }),
            Answer::Dropped => json!({ "dropped": true }),
        }
    }
}

cases! {
    /// One row per room socket frame type and, where the rule depends on
    /// whose message a frame names, per kind of target.
    FrameCase {
        Send => "send",
        EditOwn => "edit_own",
        EditOthers => "edit_others",
        DeleteOwn => "delete_own",
        DeleteOthers => "delete_others",
        React => "react",
        Unreact => "unreact",
        Typing => "typing",
        Presence => "presence",
        Read => "read",
        Ping => "ping",
    }
}

impl FrameCase {
    /// The cases that cover a frame (every frame type has at least one).
    pub fn of(frame: &ClientFrame) -> &'static [FrameCase] {
        use FrameCase as F;
        match frame {
            ClientFrame::Send { .. } => &[F::Send],
            ClientFrame::Edit { .. } => &[F::EditOwn, F::EditOthers],
            ClientFrame::Delete { .. } => &[F::DeleteOwn, F::DeleteOthers],
            ClientFrame::React { .. } => &[F::React],
            ClientFrame::Unreact { .. } => &[F::Unreact],
            ClientFrame::Typing {} => &[F::Typing],
            ClientFrame::Presence { .. } => &[F::Presence],
            ClientFrame::Read { .. } => &[F::Read],
            ClientFrame::Ping { .. } => &[F::Ping],
        }
    }

    /// The frame as a client sends it; the test puts in real message ids
    /// (`id`) and a fresh `client_msg_id`. `unreact` follows the caller's own
    /// `react` of the same emoji.
    pub const fn example(self) -> &'static str {
        use FrameCase as F;
        match self {
            F::Send => r#"{"type":"send","client_msg_id":"c","body":"matrix"}"#,
            F::EditOwn | F::EditOthers => r#"{"type":"edit","id":1,"body":"edited"}"#,
            F::DeleteOwn | F::DeleteOthers => r#"{"type":"delete","id":1}"#,
            F::React => r#"{"type":"react","id":1,"emoji":"👍"}"#,
            F::Unreact => r#"{"type":"unreact","id":1,"emoji":"👍"}"#,
            F::Typing => r#"{"type":"typing"}"#,
            F::Presence => r#"{"type":"presence","status":"away"}"#,
            F::Read => r#"{"type":"read","seq":1}"#,
            F::Ping => r#"{"type":"ping","nonce":"n"}"#,
        }
    }

    /// What a member of `role` must get for this frame.
    pub fn expected(self, role: Role) -> Answer {
        use FrameCase as F;
        let needs = |min: Role, ok: Answer| {
            if role >= min {
                ok
            } else {
                Answer::Error("forbidden")
            }
        };
        let write = Permission::SendMessage.min_role();
        match self {
            F::Send => needs(write, Answer::Reply("ack")),
            F::EditOwn => needs(
                Permission::EditOwnMessage.min_role(),
                Answer::Broadcast("message_edited"),
            ),
            // Only the author edits a message, whatever the role.
            F::EditOthers => Answer::Error("forbidden"),
            F::DeleteOwn => needs(
                Permission::EditOwnMessage.min_role(),
                Answer::Broadcast("message_deleted"),
            ),
            F::DeleteOthers => needs(
                Permission::DeleteAnyMessage.min_role(),
                Answer::Broadcast("message_deleted"),
            ),
            F::React | F::Unreact => needs(write, Answer::Broadcast("reaction")),
            F::Typing => needs(write, Answer::Broadcast("typing")),
            F::Presence => Answer::Broadcast("presence"),
            F::Read => Answer::Broadcast("read"),
            F::Ping => Answer::Reply("pong"),
        }
    }
}

cases! {
    /// The y-websocket messages of a document socket.
    DocCase {
        /// Sync step 1: the client's state vector, answered with step 2.
        SyncStep1 => "sync_step1",
        /// An update (sync step 2 or update): a write.
        Update => "update",
        /// An awareness update (cursors), relayed to the document's others.
        Awareness => "awareness",
    }
}

impl DocCase {
    pub fn expected(self, role: Role) -> Answer {
        match self {
            DocCase::SyncStep1 => Answer::Reply("sync_step2"),
            DocCase::Update if role >= Permission::EditDocument.min_role() => {
                Answer::Broadcast("update")
            }
            DocCase::Update => Answer::Dropped,
            DocCase::Awareness => Answer::Broadcast("awareness"),
        }
    }
}

/// The whole table as JSON, in the form `tests/authz-matrix.json` keeps it.
pub fn matrix() -> Value {
    let by_caller = |f: &dyn Fn(Caller) -> Value| -> Value {
        Caller::ALL
            .iter()
            .map(|c| (c.name().to_string(), f(*c)))
            .collect::<Map<_, _>>()
            .into()
    };
    let by_role = |f: &dyn Fn(Role) -> Answer| -> Value {
        Role::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), f(*r).to_json()))
            .collect::<Map<_, _>>()
            .into()
    };
    let routes: Vec<Value> = ROUTES
        .iter()
        .map(|(method, path, endpoint)| {
            json!({
                "endpoint": format!("{endpoint:?}"),
                "method": method,
                "path": path,
                "expect": by_caller(&|c| json!(expected(*endpoint, c))),
            })
        })
        .collect();
    let frames: Vec<Value> = FrameCase::ALL
        .iter()
        .map(|c| {
            json!({
                "case": c.name(),
                "frame": serde_json::from_str::<Value>(c.example()).unwrap_or_default(),
                "expect": by_role(&|r| c.expected(r)),
            })
        })
        .collect();
    let doc_messages: Vec<Value> = DocCase::ALL
        .iter()
        .map(|c| json!({ "case": c.name(), "expect": by_role(&|r| c.expected(r)) }))
        .collect();
    json!({
        "callers": Caller::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "routes": routes,
        "doc_socket": by_caller(&|c| json!(expected_doc_socket(c))),
        "frames": frames,
        "doc_messages": doc_messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_client_frame;

    const MATRIX_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/authz-matrix.json");

    /// The integration test reads the table from a file: it must be this
    /// table. `TESSERA_BLESS=1 cargo test -p tessera-core access` rewrites it.
    #[test]
    fn the_matrix_file_is_this_table() {
        let text = format!("{}\n", serde_json::to_string_pretty(&matrix()).unwrap());
        if std::env::var_os("TESSERA_BLESS").is_some() {
            std::fs::write(MATRIX_FILE, &text).unwrap();
        }
        let stored = std::fs::read_to_string(MATRIX_FILE).unwrap_or_default();
        assert!(
            stored == text,
            "tests/authz-matrix.json is not the table in core/src/access.rs; \
             regenerate it with `TESSERA_BLESS=1 cargo test -p tessera-core access`"
        );
    }

    #[test]
    fn every_route_has_a_row_for_every_caller() {
        let m = matrix();
        assert_eq!(m["routes"].as_array().unwrap().len(), ROUTES.len());
        for row in m["routes"].as_array().unwrap() {
            let expect = row["expect"].as_object().unwrap();
            assert_eq!(expect.len(), Caller::ALL.len(), "{row}");
            assert!(expect.values().all(|s| s.as_u64().is_some()), "{row}");
        }
    }

    #[test]
    fn only_public_routes_skip_the_token_and_no_stranger_reaches_a_room() {
        for (_, path, endpoint) in ROUTES {
            let public = rule_of(*endpoint).who == Who::Anyone;
            for c in Caller::ALL.iter().filter(|c| !c.signed_in()) {
                assert_eq!(expected(*endpoint, *c) == 401, !public, "{path} {c:?}");
            }
            if path.contains("{room_id}") {
                for c in [Caller::NonMember, Caller::Removed] {
                    assert_eq!(expected(*endpoint, c), 404, "{path} {c:?}");
                }
            }
        }
    }

    #[test]
    fn a_higher_role_may_do_whatever_a_lower_one_may() {
        let roles = [Caller::Viewer, Caller::Member, Caller::Admin, Caller::Owner];
        for (_, path, endpoint) in ROUTES {
            if rule_of(*endpoint).who == Who::Uploader {
                continue; // the member's own upload: nobody else's
            }
            let allowed: Vec<bool> = roles
                .iter()
                .map(|c| expected(*endpoint, *c) < 400)
                .collect();
            assert!(allowed.windows(2).all(|w| w[1] >= w[0]), "{path}");
        }
        for case in FrameCase::ALL {
            let ok: Vec<bool> = Role::ALL
                .iter()
                .map(|r| !matches!(case.expected(*r), Answer::Error(_)))
                .collect();
            assert!(ok.windows(2).all(|w| w[1] >= w[0]), "{case:?}");
        }
    }

    #[test]
    fn the_readme_decisions_hold() {
        use Endpoint as E;
        assert_eq!(expected(E::DeleteRoom, Caller::Admin), 403);
        assert_eq!(expected(E::DeleteRoom, Caller::Owner), 204);
        assert_eq!(expected(E::PostMessage, Caller::Viewer), 403);
        assert_eq!(expected(E::GetRoom, Caller::Viewer), 200);
        assert_eq!(expected(E::UploadStatus, Caller::Owner), 404);
        assert_eq!(expected(E::DeleteFile, Caller::Member), 204);
        assert_eq!(expected(E::DeleteFile, Caller::Viewer), 403);
        assert_eq!(expected(E::AcceptInvite, Caller::Member), 200);
        assert_eq!(expected(E::AcceptInvite, Caller::Removed), 201);
        assert_eq!(expected(E::Login, Caller::Tampered), 200);
        assert_eq!(
            FrameCase::DeleteOthers.expected(Role::Member),
            Answer::Error("forbidden")
        );
        assert_eq!(DocCase::Update.expected(Role::Viewer), Answer::Dropped);
    }

    /// Each case's example is a frame the server parses, and is one of the
    /// cases of that frame.
    #[test]
    fn every_frame_case_is_a_real_frame() {
        for case in FrameCase::ALL {
            let frame = parse_client_frame(case.example(), 1024).unwrap();
            assert!(FrameCase::of(&frame).contains(case), "{case:?}");
        }
    }
}
