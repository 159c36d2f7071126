//! API keys for scripts and integrations: their format, how they are stored
//! (only a SHA-256 of the secret), and their scopes — which rooms, read or
//! write, which kinds of resource — checked against each route.
//!
//! The Worker authenticates a `tsk_` bearer token wherever it authenticates an
//! access token, and asks [`admit`] whether the stored key may make this call:
//! expired keys are refused, the route must be one the scope covers, a room
//! the key does not name is not found, and the last-used time is written at
//! most once per [`TOUCH_EVERY_SECS`] per key. A revoked key's row is gone,
//! so it is refused from the next request. Routes that reach a room through
//! a file, upload or job check [`Scope::allows_room`] once they know it; and
//! a room socket opened with a read-only key acts as a viewer
//! ([`Scope::cap_role`]), since reading a room is what opens its socket.

use crate::api::Endpoint;
use crate::rooms::Role;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `tsk_<key id: 32 hex>_<secret: 43 base64url>`; the prefix lets secret
/// scanners recognise a leaked key.
pub const PREFIX: &str = "tsk_";
pub const KEYS_PER_PERSON_MAX: usize = 50;
pub const NAME_MAX: usize = 100;
/// Rooms one key may name.
pub const ROOMS_MAX: usize = 100;
/// The last-used time is at most this stale, and written at most this often.
pub const TOUCH_EVERY_SECS: u64 = 60;

/// What a key can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Messages (history, posting).
    Chat,
    Docs,
    Files,
    /// Activities, rules, approvals, audit, AI jobs.
    Workflows,
    /// The room itself and its members.
    Rooms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

/// A key's scope. `rooms: None` is every room the person is in (now or later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub rooms: Option<Vec<String>>,
    pub access: Access,
    pub resources: Vec<Resource>,
}

/// What a route needs of a key, and the room it names in its path (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Never with a key: account, sessions, keys, hooks, push, preferences.
    Person,
    Resource {
        resource: Resource,
        access: Access,
        /// The path parameter that names the room (`Some(0)` for `/rooms/{room_id}/…`).
        room_param: Option<usize>,
    },
}

/// The scope a route needs.
pub fn need(endpoint: Endpoint) -> Need {
    use Access::{Read, Write};
    use Endpoint as E;
    use Resource::*;
    let r = |resource, access, room: bool| Need::Resource {
        resource,
        access,
        room_param: room.then_some(0),
    };
    match endpoint {
        E::ListRooms => r(Rooms, Read, false),
        E::GetRoom | E::ListMembers => r(Rooms, Read, true),
        E::ListMessages | E::GetMessage | E::RoomSocket => r(Chat, Read, true),
        E::PostMessage => r(Chat, Write, true),
        E::ListDocs | E::GetDoc | E::ListDocVersions | E::GetDocVersion => r(Docs, Read, true),
        E::PostDocUpdate | E::CreateDocVersion | E::RestoreDocVersion | E::DeleteDoc => {
            r(Docs, Write, true)
        }
        E::ListFiles => r(Files, Read, true),
        E::GetFile | E::FileContent | E::FileContentHead => r(Files, Read, false),
        E::CreateUpload | E::UploadStatus | E::PatchUpload | E::TerminateUpload | E::DeleteFile => {
            r(Files, Write, false)
        }
        E::GetState
        | E::ListActions
        | E::ListRules
        | E::ListApprovals
        | E::ListAudit
        | E::ExportAudit
        | E::DryRunRule
        | E::GetCheckin
        | E::GetAiUsage => r(Workflows, Read, true),
        E::RunAction
        | E::CreateRule
        | E::UpdateRule
        | E::DeleteRule
        | E::ApproveApproval
        | E::RejectApproval
        | E::RunCheckin => r(Workflows, Write, true),
        E::GetJob => r(Workflows, Read, false),
        E::AnalyzeFile | E::AnalyzeBatch => r(Workflows, Write, false),
        _ => Need::Person,
    }
}

/// The path parameter that names the room a route acts on, if the path names one.
pub fn room_param(endpoint: Endpoint) -> Option<usize> {
    match need(endpoint) {
        Need::Resource { room_param, .. } => room_param,
        Need::Person => None,
    }
}

impl Scope {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.resources.is_empty() {
            return Err(ApiError::invalid("resources must name at least one kind"));
        }
        if let Some(rooms) = &self.rooms {
            if rooms.is_empty() || rooms.len() > ROOMS_MAX {
                return Err(ApiError::invalid(format!(
                    "rooms must list 1 to {ROOMS_MAX} rooms"
                )));
            }
            if !rooms.iter().all(|r| crate::ids::is_valid_path_param(r)) {
                return Err(ApiError::invalid("rooms must be room ids"));
            }
        }
        Ok(())
    }

    /// The scope as stored: rooms and kinds sorted, each once.
    pub fn normalized(mut self) -> Self {
        if let Some(rooms) = &mut self.rooms {
            rooms.sort();
            rooms.dedup();
        }
        self.resources.sort();
        self.resources.dedup();
        self
    }

    pub fn allows_room(&self, room_id: &str) -> bool {
        self.rooms
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == room_id))
    }

    /// A room the key does not name is answered as one the person is not in.
    pub fn check_room(&self, room_id: &str) -> Result<(), ApiError> {
        if self.allows_room(room_id) {
            Ok(())
        } else {
            Err(ApiError::NotFound("room"))
        }
    }

    /// The role the key's sockets act with in a room where the person holds
    /// `role`: a read-only key is a viewer, whatever the person is.
    pub fn cap_role(&self, role: Role) -> Role {
        match self.access {
            Access::Read => role.min(Role::Viewer),
            Access::Write => role,
        }
    }

    /// Whether the key may call `endpoint` at all, and (when known) on `room`.
    /// A room the key does not name is answered as not found, like a room the
    /// person is not in.
    pub fn check(&self, endpoint: Endpoint, room: Option<&str>) -> Result<(), ApiError> {
        match need(endpoint) {
            Need::Person => Err(ApiError::forbidden("API keys cannot use this endpoint")),
            Need::Resource {
                resource, access, ..
            } => {
                if !self.resources.contains(&resource) {
                    let kind = format!("{resource:?}").to_lowercase();
                    return Err(ApiError::forbidden(format!(
                        "this API key does not cover {kind}"
                    )));
                }
                if access == Access::Write && self.access == Access::Read {
                    return Err(ApiError::forbidden("this API key is read-only"));
                }
                room.map_or(Ok(()), |r| self.check_room(r))
            }
        }
    }
}

/// A new key from 16 random bytes of id and 32 of secret: the key to show
/// once, and its id.
pub fn new_key(id_bytes: [u8; 16], secret_bytes: &[u8; 32]) -> (String, String) {
    let id = crate::ids::id_from_bytes(id_bytes);
    let secret = crate::ids::secret_from_bytes(secret_bytes);
    (format!("{PREFIX}{id}_{secret}"), id)
}

/// Whether a bearer token looks like an API key (then it is never a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Splits a key into its id and the hash to compare with the stored one.
pub fn parse(key: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::InvalidToken("malformed API key".into());
    let rest = key.strip_prefix(PREFIX).ok_or_else(bad)?;
    let (id, secret) = rest.split_at_checked(32).ok_or_else(bad)?;
    let secret = secret.strip_prefix('_').ok_or_else(bad)?;
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != 43 {
        return Err(bad());
    }
    Ok((id.to_string(), hash(secret)))
}

/// The stored form of a key's secret (hex SHA-256: the secret has 256 bits
/// of entropy, so no slow hash is needed).
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A key as authentication reads it (by id and secret hash).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredKey {
    pub user_id: String,
    /// The [`Scope`] as JSON.
    pub scope: String,
    pub expires_at: Option<u64>,
    pub last_used_at: Option<u64>,
}

/// A key let in: its scope, and whether this request should record its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub scope: Scope,
    pub touch: bool,
}

/// Whether `key` may call `endpoint` (on the room its path names) at `now`.
/// `endpoint` is `None` outside a routed request, where keys are refused.
pub fn admit(
    key: &StoredKey,
    endpoint: Option<Endpoint>,
    room: Option<&str>,
    now: u64,
) -> Result<Admitted, ApiError> {
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::InvalidToken("this API key has expired".into()));
    }
    let scope = stored_scope(&key.scope)?;
    let endpoint = endpoint.ok_or_else(|| ApiError::forbidden("API keys cannot be used here"))?;
    scope.check(endpoint, room)?;
    let touch = key
        .last_used_at
        .is_none_or(|at| now >= at.saturating_add(TOUCH_EVERY_SECS));
    Ok(Admitted { scope, touch })
}

/// A stored scope. Read as a request body is (`from_slice`), so the Worker
/// carries one copy of the scope's parser, not two.
pub fn stored_scope(json: &str) -> Result<Scope, ApiError> {
    serde_json::from_slice(json.as_bytes())
        .map_err(|e| ApiError::Internal(format!("stored API key scope: {e}")))
}

/// A key as its owner sees it listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub last_used_at: Option<u64>,
}

/// What a person sends to create a key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    pub scope: Scope,
    /// Days until it expires (none: until revoked).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

impl CreateKey {
    /// When a key created at `now` expires.
    pub fn expires_at(&self, now: u64) -> Option<u64> {
        self.expires_in_days
            .map(|d| now.saturating_add(u64::from(d) * 24 * 3600))
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        let n = self.name.trim().chars().count();
        if n == 0 || n > NAME_MAX {
            return Err(ApiError::invalid(format!(
                "name must be 1 to {NAME_MAX} characters"
            )));
        }
        if self
            .expires_in_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            return Err(ApiError::invalid("expires_in_days must be 1 to 3650"));
        }
        self.scope.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(rooms: Option<&[&str]>, access: Access) -> Scope {
        Scope {
            rooms: rooms.map(|r| r.iter().map(|s| s.to_string()).collect()),
            access,
            resources: vec![Resource::Chat],
        }
    }

    #[test]
    fn keys_parse_back_to_their_id_and_hash() {
        let (key, id) = new_key([7; 16], &[9; 32]);
        assert!(key.starts_with("tsk_") && is_api_key(&key));
        let (parsed_id, h) = parse(&key).unwrap();
        assert_eq!(parsed_id, id);
        assert_eq!(h, hash(key.rsplit('_').next().unwrap()));
        assert_eq!(h.len(), 64);
        for bad in [
            "tsk_",
            "tsk_zz",
            &key[..key.len() - 1],
            &key.replace("tsk_", "tsx_"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_read_key_for_one_room_reads_only_there() {
        let s = scope(Some(&["r1"]), Access::Read);
        assert!(s.check(Endpoint::ListMessages, Some("r1")).is_ok());
        assert_eq!(
            s.check(Endpoint::PostMessage, Some("r1"))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            s.check(Endpoint::ListMessages, Some("r2"))
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            s.check(Endpoint::ListDocs, Some("r1"))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(s.check(Endpoint::UpdateMe, None).unwrap_err().status(), 403);
        let w = scope(None, Access::Write);
        assert!(w.check(Endpoint::PostMessage, Some("anything")).is_ok());
    }

    #[test]
    fn every_route_has_a_need_and_person_routes_refuse_keys() {
        for (_, _, e) in crate::api::ROUTES {
            if let Need::Resource {
                room_param: Some(_),
                ..
            } = need(*e)
            {
                let pattern = crate::api::ROUTES.iter().find(|r| r.2 == *e).unwrap().1;
                assert!(pattern.starts_with("/api/v1/rooms/{room_id}"), "{pattern}");
            }
        }
        for e in [
            Endpoint::GetMe,
            Endpoint::Logout,
            Endpoint::CreateRoom,
            Endpoint::AddMember,
        ] {
            assert_eq!(need(e), Need::Person);
        }
    }

    fn stored(scope: &Scope, expires_at: Option<u64>, last_used_at: Option<u64>) -> StoredKey {
        StoredKey {
            user_id: "u".into(),
            scope: serde_json::to_string(scope).unwrap(),
            expires_at,
            last_used_at,
        }
    }

    #[test]
    fn admission_follows_the_scope_and_expiry() {
        let s = scope(Some(&["r1"]), Access::Read);
        let key = stored(&s, Some(1_000), None);
        let ok = admit(&key, Some(Endpoint::ListMessages), Some("r1"), 999).unwrap();
        assert_eq!(ok.scope, s);
        assert!(ok.touch);
        let status = |e: Option<Endpoint>, room: Option<&str>, now: u64| {
            admit(&key, e, room, now).unwrap_err().status()
        };
        assert_eq!(status(Some(Endpoint::ListMessages), Some("r1"), 1_000), 401);
        assert_eq!(status(Some(Endpoint::PostMessage), Some("r1"), 10), 403);
        assert_eq!(status(Some(Endpoint::ListMessages), Some("r2"), 10), 404);
        assert_eq!(status(None, None, 10), 403);
        // Keys never manage keys, nor anything else of the person's account.
        for e in [
            Endpoint::CreateApiKey,
            Endpoint::ListApiKeys,
            Endpoint::DeleteApiKey,
            Endpoint::MeSocket,
            Endpoint::Logout,
        ] {
            assert_eq!(status(Some(e), None, 10), 403, "{e:?}");
        }
    }

    #[test]
    fn the_last_used_time_is_written_at_most_once_a_minute() {
        let s = scope(None, Access::Write);
        let at = |last: Option<u64>, now: u64| {
            admit(
                &stored(&s, None, last),
                Some(Endpoint::PostMessage),
                Some("r"),
                now,
            )
            .unwrap()
            .touch
        };
        assert!(at(None, 100));
        assert!(!at(Some(100), 100));
        assert!(!at(Some(100), 159));
        assert!(at(Some(100), 160));
        // A clock that went back does not write either.
        assert!(!at(Some(100), 50));
    }

    #[test]
    fn read_keys_act_as_viewers_and_rooms_are_checked_alone() {
        let r = scope(Some(&["r1"]), Access::Read);
        let w = scope(None, Access::Write);
        for role in Role::ALL {
            assert_eq!(r.cap_role(role), Role::Viewer);
            assert_eq!(w.cap_role(role), role);
        }
        assert!(r.check_room("r1").is_ok());
        assert_eq!(r.check_room("r2").unwrap_err().status(), 404);
        assert!(w.check_room("r2").is_ok());
        assert_eq!(room_param(Endpoint::PostMessage), Some(0));
        assert_eq!(room_param(Endpoint::GetFile), None);
        assert_eq!(room_param(Endpoint::CreateApiKey), None);
    }

    #[test]
    fn listed_keys_never_carry_a_secret() {
        let info = KeyInfo {
            id: "k".into(),
            name: "ci".into(),
            scope: scope(None, Access::Read),
            created_at: 1,
            expires_at: None,
            last_used_at: None,
        };
        let listed = serde_json::to_value(&info).unwrap();
        assert!(listed.get("key").is_none());
        assert_eq!(
            stored_scope(&serde_json::to_string(&info.scope).unwrap()),
            Ok(info.scope)
        );
        assert_eq!(stored_scope("{").unwrap_err().status(), 500);
    }

    #[test]
    fn create_requests_are_bounded() {
        let mut c = CreateKey {
            name: "ci".into(),
            scope: scope(Some(&["r1"]), Access::Read),
            expires_in_days: Some(30),
        };
        assert!(c.validate().is_ok());
        let twice = Scope {
            rooms: Some(vec!["b".into(), "a".into(), "b".into()]),
            access: Access::Read,
            resources: vec![Resource::Files, Resource::Chat, Resource::Files],
        };
        assert_eq!(
            twice.normalized(),
            Scope {
                rooms: Some(vec!["a".into(), "b".into()]),
                access: Access::Read,
                resources: vec![Resource::Chat, Resource::Files],
            }
        );
        assert_eq!(c.expires_at(10), Some(10 + 30 * 24 * 3600));
        c.scope.rooms = Some(vec![]);
        assert!(c.validate().is_err());
        c.scope.rooms = None;
        c.scope.resources.clear();
        assert!(c.validate().is_err());
    }
}
