//! Rooms, members, roles and invites: the permission matrix (one table), the rules
//! for granting and changing roles, and the validation of room and invite input.

use crate::ApiError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Ordered: a higher role can do everything a lower one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ApiError::invalid(format!("unknown role `{s}`")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Direct,
    Group,
    Project,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Direct => "direct",
            RoomKind::Group => "group",
            RoomKind::Project => "project",
        }
    }
}

impl FromStr for RoomKind {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        [RoomKind::Direct, RoomKind::Group, RoomKind::Project]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ApiError::invalid(format!("unknown room kind `{s}`")))
    }
}

/// A room as one of its members sees it (a D1 row: times in unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub id: String,
    pub name: String,
    pub kind: RoomKind,
    pub topic: String,
    pub created_by: String,
    pub created_at: u64,
    pub updated_at: u64,
    /// The member's role.
    pub role: Role,
    pub member_count: u32,
}

/// Where one person stands in a room: their read marker, the room's head, and
/// what arrived after the marker from others (`mentions`: of those, the
/// messages that mention them). Fields are `null` when the room object could
/// not be asked (a rooms list still answers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub read_seq: Option<u64>,
    pub head_seq: Option<u64>,
    pub unread: Option<u64>,
    pub mentions: Option<u64>,
}

/// A room in `GET /api/v1/rooms` and `GET /api/v1/rooms/{id}`: with where
/// the caller stands in its chat (asked of the room's object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomWithReads {
    #[serde(flatten)]
    pub room: RoomInfo,
    #[serde(flatten)]
    pub reads: ReadState,
}

/// A member as the member list shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub user_id: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at: u64,
}

/// A new invite, as its creator gets it (later only the room's invite list
/// shows its code, and only to those who could have made it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteInfo {
    pub code: String,
    pub room_id: String,
    pub role: Role,
    pub max_uses: u32,
    pub expires_at: u64,
}

/// An invite in its room's list (`GET /rooms/{id}/invites`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedInvite {
    pub code: String,
    pub room_id: String,
    pub role: Role,
    pub max_uses: u32,
    pub uses: u32,
    pub expires_at: u64,
    pub created_by: String,
    pub created_at: u64,
}

/// The roles whose invites `viewer` sees listed, as `,role,role,` for a SQL
/// `instr`: those they may grant. An admin does not see an owner's admin
/// invite, whose code would let them make admins.
pub fn listed_invite_roles(viewer: Role) -> String {
    let roles: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner && may_grant(viewer, *r))
        .map(Role::as_str)
        .collect();
    format!(",{},", roles.join(","))
}

/// What the Worker tells a room's object about a membership change: a new
/// role (`joined` for someone new), or a removal (`role: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNotice {
    pub user_id: String,
    pub role: Option<Role>,
    #[serde(default)]
    pub joined: bool,
}

/// Everything a member may try to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadRoom,
    SendMessage,
    EditOwnMessage,
    DeleteAnyMessage,
    EditDocument,
    ManageDocuments,
    UploadFile,
    DeleteAnyFile,
    ManageMembers,
    CreateInvite,
    UpdateRoom,
    DeleteRoom,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::ReadRoom,
        Permission::SendMessage,
        Permission::EditOwnMessage,
        Permission::DeleteAnyMessage,
        Permission::EditDocument,
        Permission::ManageDocuments,
        Permission::UploadFile,
        Permission::DeleteAnyFile,
        Permission::ManageMembers,
        Permission::CreateInvite,
        Permission::UpdateRoom,
        Permission::DeleteRoom,
    ];

    /// The permission matrix: the lowest role that holds each permission.
    pub const fn min_role(self) -> Role {
        match self {
            Permission::ReadRoom => Role::Viewer,
            Permission::SendMessage
            | Permission::EditOwnMessage
            | Permission::EditDocument
            | Permission::UploadFile => Role::Member,
            Permission::DeleteAnyMessage
            | Permission::ManageDocuments
            | Permission::DeleteAnyFile
            | Permission::ManageMembers
            | Permission::CreateInvite
            | Permission::UpdateRoom => Role::Admin,
            Permission::DeleteRoom => Role::Owner,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::ReadRoom => "read this room",
            Permission::SendMessage => "send messages in this room",
            Permission::EditOwnMessage => "edit messages in this room",
            Permission::DeleteAnyMessage => "delete other people's messages",
            Permission::EditDocument => "edit documents in this room",
            Permission::ManageDocuments => "manage documents in this room",
            Permission::UploadFile => "upload files to this room",
            Permission::DeleteAnyFile => "delete other people's files",
            Permission::ManageMembers => "manage the members of this room",
            Permission::CreateInvite => "invite people to this room",
            Permission::UpdateRoom => "change this room",
            Permission::DeleteRoom => "delete this room",
        }
    }
}

pub fn can(role: Role, permission: Permission) -> bool {
    role >= permission.min_role()
}

/// `Ok` when `role` holds `permission`, else a 403 that says what was refused.
pub fn require(role: Role, permission: Permission) -> Result<(), ApiError> {
    if can(role, permission) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {role} may not {}",
            permission.describe()
        )))
    }
}

/// Owners may grant any role; everyone else only roles below their own.
pub fn may_grant(actor: Role, granted: Role) -> bool {
    actor == Role::Owner || granted < actor
}

/// The facts about a membership change that the rules need.
#[derive(Debug, Clone, Copy)]
pub struct MemberChange {
    pub actor: Role,
    pub target: Role,
    pub actor_is_target: bool,
    pub owners: usize,
}

impl MemberChange {
    fn would_orphan(&self) -> bool {
        self.target == Role::Owner && self.owners <= 1
    }

    /// The refusal to leave a room without an owner.
    pub fn last_owner() -> ApiError {
        ApiError::Conflict {
            code: crate::error::code::LAST_OWNER,
            message: "the last owner cannot leave or be demoted; make someone else owner first"
                .into(),
        }
    }

    /// Changing the target's role to `new_role`.
    pub fn check_role_change(&self, new_role: Role) -> Result<(), ApiError> {
        require(self.actor, Permission::ManageMembers)?;
        if !may_grant(self.actor, self.target) || !may_grant(self.actor, new_role) {
            return Err(ApiError::forbidden(format!(
                "a {} may not change a {} into a {new_role}",
                self.actor, self.target
            )));
        }
        if new_role != Role::Owner && self.would_orphan() {
            return Err(Self::last_owner());
        }
        Ok(())
    }

    /// Removing the target, or the target leaving when `actor_is_target`.
    pub fn check_removal(&self) -> Result<(), ApiError> {
        if !self.actor_is_target {
            require(self.actor, Permission::ManageMembers)?;
            if !may_grant(self.actor, self.target) {
                return Err(ApiError::forbidden(format!(
                    "a {} may not remove a {}",
                    self.actor, self.target
                )));
            }
        }
        if self.would_orphan() {
            return Err(Self::last_owner());
        }
        Ok(())
    }
}

pub const ROOM_NAME_MAX_CHARS: usize = 100;
pub const ROOM_TOPIC_MAX_CHARS: usize = 500;
pub const INITIAL_MEMBERS_MAX: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    pub name: Option<String>,
    pub kind: RoomKind,
    #[serde(default)]
    pub topic: Option<String>,
    /// Other people to add (as members). A direct room names exactly one.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A room ready to be stored, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub name: String,
    pub kind: RoomKind,
    pub topic: String,
    pub members: Vec<String>,
}

fn clean_text(field: &str, raw: &str, max: usize, allow_empty: bool) -> Result<String, ApiError> {
    let s = raw.trim();
    let n = s.chars().count();
    if (!allow_empty && n == 0) || n > max || s.chars().any(|c| c.is_control() && c != '\n') {
        let min = usize::from(!allow_empty);
        return Err(ApiError::invalid(format!(
            "{field} must be {min} to {max} printable characters"
        )));
    }
    Ok(s.to_string())
}

impl CreateRoom {
    pub fn validate(self, creator: &str) -> Result<NewRoom, ApiError> {
        let mut members: Vec<String> = Vec::new();
        for m in self.members {
            if m != creator && !members.contains(&m) {
                members.push(m);
            }
        }
        if members.len() > INITIAL_MEMBERS_MAX {
            return Err(ApiError::invalid(format!(
                "at most {INITIAL_MEMBERS_MAX} initial members"
            )));
        }
        let name = match (self.kind, self.name) {
            (RoomKind::Direct, name) => {
                if members.len() != 1 {
                    return Err(ApiError::invalid(
                        "a direct room has exactly two people: name one other member",
                    ));
                }
                clean_text(
                    "name",
                    name.as_deref().unwrap_or("Direct message"),
                    ROOM_NAME_MAX_CHARS,
                    false,
                )?
            }
            (_, Some(name)) => clean_text("name", &name, ROOM_NAME_MAX_CHARS, false)?,
            (_, None) => return Err(ApiError::invalid("name is required")),
        };
        let topic = clean_text(
            "topic",
            self.topic.as_deref().unwrap_or(""),
            ROOM_TOPIC_MAX_CHARS,
            true,
        )?;
        Ok(NewRoom {
            name,
            kind: self.kind,
            topic,
            members,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    pub name: Option<String>,
    pub topic: Option<String>,
}

impl UpdateRoom {
    pub fn validate(self) -> Result<(Option<String>, Option<String>), ApiError> {
        if self.name.is_none() && self.topic.is_none() {
            return Err(ApiError::invalid("nothing to update: give name or topic"));
        }
        let name = self
            .name
            .map(|n| clean_text("name", &n, ROOM_NAME_MAX_CHARS, false))
            .transpose()?;
        let topic = self
            .topic
            .map(|t| clean_text("topic", &t, ROOM_TOPIC_MAX_CHARS, true))
            .transpose()?;
        Ok((name, topic))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Role,
}

fn default_role() -> Role {
    Role::Member
}

pub const INVITE_MAX_USES: u32 = 1000;
pub const INVITE_MIN_TTL_SECS: u64 = 60;
pub const INVITE_MAX_TTL_SECS: u64 = 30 * 24 * 3600;
pub const INVITE_DEFAULT_TTL_SECS: u64 = 7 * 24 * 3600;
/// Invites a room may have that can still be accepted.
pub const INVITES_LIVE_MAX: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[serde(default = "default_role")]
    pub role: Role,
    #[serde(default = "one")]
    pub max_uses: u32,
    #[serde(default = "default_ttl")]
    pub expires_in: u64,
}

fn one() -> u32 {
    1
}

fn default_ttl() -> u64 {
    INVITE_DEFAULT_TTL_SECS
}

impl CreateInvite {
    /// Checks the invite against the creator's role and the room's kind.
    pub fn validate(&self, creator: Role, kind: RoomKind) -> Result<(), ApiError> {
        require(creator, Permission::CreateInvite)?;
        if kind == RoomKind::Direct {
            return Err(ApiError::Conflict {
                code: crate::error::code::DIRECT_ROOM,
                message: "a direct room has exactly two people; nobody can be invited".into(),
            });
        }
        if self.role == Role::Owner || !may_grant(creator, self.role) {
            return Err(ApiError::forbidden(format!(
                "a {creator} may not invite people as {}",
                self.role
            )));
        }
        if !(1..=INVITE_MAX_USES).contains(&self.max_uses) {
            return Err(ApiError::invalid(format!(
                "max_uses must be 1 to {INVITE_MAX_USES}"
            )));
        }
        if !(INVITE_MIN_TTL_SECS..=INVITE_MAX_TTL_SECS).contains(&self.expires_in) {
            return Err(ApiError::invalid(format!(
                "expires_in must be {INVITE_MIN_TTL_SECS} to {INVITE_MAX_TTL_SECS} seconds"
            )));
        }
        Ok(())
    }
}

/// Whether an invite can still be accepted at `now` (unix seconds).
pub fn check_invite_usable(
    uses: u32,
    max_uses: u32,
    expires_at: u64,
    now: u64,
) -> Result<(), ApiError> {
    if now >= expires_at {
        return Err(ApiError::Gone {
            code: crate::error::code::INVITE_EXPIRED,
            message: "this invite has expired".into(),
        });
    }
    if uses >= max_uses {
        return Err(ApiError::Gone {
            code: crate::error::code::INVITE_USED_UP,
            message: "this invite has been used as often as it allows".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_lists_show_what_the_viewer_could_have_made() {
        assert_eq!(listed_invite_roles(Role::Owner), ",viewer,member,admin,");
        assert_eq!(listed_invite_roles(Role::Admin), ",viewer,member,");
        assert_eq!(listed_invite_roles(Role::Member), ",viewer,");
    }

    /// The whole matrix, written out by hand: a change to `min_role` must change this.
    #[test]
    fn permission_matrix_is_exactly_as_documented() {
        use Permission::*;
        let expect = |p: Permission| -> [bool; 4] {
            // viewer, member, admin, owner
            match p {
                ReadRoom => [true, true, true, true],
                SendMessage | EditOwnMessage | EditDocument | UploadFile => {
                    [false, true, true, true]
                }
                DeleteAnyMessage | ManageDocuments | DeleteAnyFile | ManageMembers
                | CreateInvite | UpdateRoom => [false, false, true, true],
                DeleteRoom => [false, false, false, true],
            }
        };
        for p in Permission::ALL {
            for (i, r) in Role::ALL.into_iter().enumerate() {
                assert_eq!(can(r, p), expect(p)[i], "{r} × {p:?}");
                assert_eq!(require(r, p).is_ok(), can(r, p));
            }
        }
    }

    #[test]
    fn roles_parse_and_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("god".parse::<Role>().is_err());
        assert!(
            Role::Owner > Role::Admin && Role::Admin > Role::Member && Role::Member > Role::Viewer
        );
    }

    #[test]
    fn granting_rules_every_pair() {
        for a in Role::ALL {
            for g in Role::ALL {
                let expected = a == Role::Owner || g < a;
                assert_eq!(may_grant(a, g), expected, "{a} grants {g}");
            }
        }
    }

    fn change(actor: Role, target: Role, owners: usize) -> MemberChange {
        MemberChange {
            actor,
            target,
            actor_is_target: false,
            owners,
        }
    }

    #[test]
    fn role_changes_every_combination() {
        for actor in Role::ALL {
            for target in Role::ALL {
                for new in Role::ALL {
                    for owners in [1, 2] {
                        let r = change(actor, target, owners).check_role_change(new);
                        let allowed = actor >= Role::Admin
                            && may_grant(actor, target)
                            && may_grant(actor, new)
                            && !(target == Role::Owner && owners == 1 && new != Role::Owner);
                        assert_eq!(
                            r.is_ok(),
                            allowed,
                            "{actor} changes {target}→{new} ({owners} owners): {r:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn last_owner_cannot_be_demoted_or_leave() {
        let e = change(Role::Owner, Role::Owner, 1)
            .check_role_change(Role::Admin)
            .unwrap_err();
        assert_eq!(e.code(), "last_owner");
        let leave = MemberChange {
            actor: Role::Owner,
            target: Role::Owner,
            actor_is_target: true,
            owners: 1,
        };
        assert_eq!(leave.check_removal().unwrap_err().code(), "last_owner");
        assert!(MemberChange { owners: 2, ..leave }.check_removal().is_ok());
    }

    #[test]
    fn removal_every_combination() {
        for actor in Role::ALL {
            for target in Role::ALL {
                let r = change(actor, target, 2).check_removal();
                assert_eq!(
                    r.is_ok(),
                    actor >= Role::Admin && may_grant(actor, target),
                    "{actor} removes {target}"
                );
                // Anyone may leave.
                let leave = MemberChange {
                    actor: target,
                    target,
                    actor_is_target: true,
                    owners: 2,
                };
                assert!(leave.check_removal().is_ok());
            }
        }
    }

    #[test]
    fn direct_rooms_have_exactly_two_people() {
        let mk = |members: Vec<&str>| CreateRoom {
            name: None,
            kind: RoomKind::Direct,
            topic: None,
            members: members.into_iter().map(String::from).collect(),
        };
        assert!(mk(vec![]).validate("me").is_err());
        assert!(mk(vec!["me"]).validate("me").is_err());
        assert!(mk(vec!["a", "b"]).validate("me").is_err());
        let ok = mk(vec!["a", "a", "me"]).validate("me").unwrap();
        assert_eq!(ok.members, vec!["a".to_string()]);
        assert_eq!(ok.name, "Direct message");
    }

    #[test]
    fn group_rooms_need_a_printable_name() {
        let mk = |name: Option<&str>| CreateRoom {
            name: name.map(String::from),
            kind: RoomKind::Group,
            topic: None,
            members: vec![],
        };
        assert!(mk(None).validate("me").is_err());
        assert!(mk(Some("  ")).validate("me").is_err());
        assert!(mk(Some(&"x".repeat(101))).validate("me").is_err());
        assert_eq!(mk(Some(" Team ")).validate("me").unwrap().name, "Team");
        // SQL-looking names are just names.
        let sql = "Robert'); DROP TABLE rooms;--";
        assert_eq!(mk(Some(sql)).validate("me").unwrap().name, sql);
    }

    #[test]
    fn invites_are_bounded_and_respect_roles() {
        let inv = |role, max_uses, expires_in| CreateInvite {
            role,
            max_uses,
            expires_in,
        };
        assert!(inv(Role::Member, 1, 3600)
            .validate(Role::Admin, RoomKind::Group)
            .is_ok());
        assert!(inv(Role::Admin, 1, 3600)
            .validate(Role::Admin, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Admin, 1, 3600)
            .validate(Role::Owner, RoomKind::Group)
            .is_ok());
        assert!(inv(Role::Owner, 1, 3600)
            .validate(Role::Owner, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Viewer, 1, 3600)
            .validate(Role::Member, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Member, 0, 3600)
            .validate(Role::Owner, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Member, 1001, 3600)
            .validate(Role::Owner, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Member, 1, 59)
            .validate(Role::Owner, RoomKind::Group)
            .is_err());
        assert!(inv(Role::Member, 1, 3600)
            .validate(Role::Owner, RoomKind::Direct)
            .is_err());
    }

    #[test]
    fn invite_usability() {
        assert!(check_invite_usable(0, 1, 100, 99).is_ok());
        assert_eq!(
            check_invite_usable(0, 1, 100, 100).unwrap_err().code(),
            "invite_expired"
        );
        assert_eq!(
            check_invite_usable(1, 1, 100, 50).unwrap_err().code(),
            "invite_used_up"
        );
    }
}
