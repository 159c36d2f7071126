//! Room membership in D1, shared by the Worker's member routes and the room
//! object's `add_member` / `remove_member` actions, so that both apply the same
//! rules (`tessera_core::rooms`) the same way.

use crate::d1::{arg, changes};
use crate::http::HttpResult;
use serde::Deserialize;
use tessera_core::protocol::Identity;
use tessera_core::rooms::{may_grant, MemberChange, Role, RoomKind};
use tessera_core::ApiError;
use wasm_bindgen::JsValue;
use worker::D1Database;

pub async fn role(db: &D1Database, room_id: &str, user_id: &str) -> HttpResult<Option<Role>> {
    let role: Option<String> = db
        .prepare("SELECT role FROM memberships WHERE room_id = ?1 AND user_id = ?2")
        .bind(&[arg(room_id), arg(user_id)])?
        .first(Some("role"))
        .await?;
    Ok(role.map(|r| r.parse()).transpose()?)
}

/// Someone's identity in a room (role and display name) in one query; `None`
/// for non-members.
pub async fn identity(
    db: &D1Database,
    room_id: &str,
    user_id: &str,
) -> HttpResult<Option<Identity>> {
    #[derive(Deserialize)]
    struct Found {
        role: String,
        display_name: String,
    }
    let found: Option<Found> = db
        .prepare(
            "SELECT m.role, u.display_name FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?1 AND m.user_id = ?2",
        )
        .bind(&[arg(room_id), arg(user_id)])?
        .first(None)
        .await?;
    found
        .map(|f| {
            Ok(Identity {
                user_id: user_id.to_string(),
                display_name: f.display_name,
                role: f.role.parse()?,
            })
        })
        .transpose()
}

pub async fn existing_users(db: &D1Database, ids: &[String]) -> HttpResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("?{i}")).collect();
    let args: Vec<JsValue> = ids.iter().map(arg).collect();
    let n: Option<u32> = db
        .prepare(format!(
            "SELECT COUNT(*) AS n FROM users WHERE id IN ({})",
            placeholders.join(",")
        ))
        .bind(&args)?
        .first(Some("n"))
        .await?;
    if n.unwrap_or(0) as usize != ids.len() {
        return Err(ApiError::invalid("members: some of these users do not exist").into());
    }
    Ok(())
}

/// Refuses changes to a direct room's membership (fixed at two people).
async fn changeable(db: &D1Database, room_id: &str) -> HttpResult<()> {
    let kind: Option<String> = db
        .prepare("SELECT kind FROM rooms WHERE id = ?1")
        .bind(&[arg(room_id)])?
        .first(Some("kind"))
        .await?;
    let kind: RoomKind = kind.ok_or(ApiError::NotFound("room"))?.parse()?;
    if kind == RoomKind::Direct {
        return Err(ApiError::Conflict {
            code: tessera_core::error::code::DIRECT_ROOM,
            message: "a direct room has exactly two people; its membership cannot change".into(),
        }
        .into());
    }
    Ok(())
}

/// The facts a role change or removal of `target` by `actor` is judged on.
pub async fn change(
    db: &D1Database,
    room_id: &str,
    actor: &str,
    actor_role: Role,
    target: &str,
) -> HttpResult<MemberChange> {
    changeable(db, room_id).await?;
    let target_role = role(db, room_id, target)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    let owners: Option<u32> = db
        .prepare("SELECT COUNT(*) AS n FROM memberships WHERE room_id = ?1 AND role = 'owner'")
        .bind(&[arg(room_id)])?
        .first(Some("n"))
        .await?;
    Ok(MemberChange {
        actor: actor_role,
        target: target_role,
        actor_is_target: actor == target,
        owners: owners.unwrap_or(0) as usize,
    })
}

/// Adds `user_id` with `role`, as someone with `actor_role`.
pub async fn add(
    db: &D1Database,
    room_id: &str,
    actor_role: Role,
    user_id: &str,
    role: Role,
    now: u64,
) -> HttpResult<()> {
    changeable(db, room_id).await?;
    if !may_grant(actor_role, role) {
        return Err(ApiError::forbidden(format!("a {actor_role} may not add a {role}")).into());
    }
    existing_users(db, &[user_id.to_string()]).await?;
    let inserted = db
        .prepare(
            "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&[arg(room_id), arg(user_id), arg(role.as_str()), arg(now)])?
        .run()
        .await?;
    if changes(&inserted)? == 0 {
        return Err(ApiError::Conflict {
            code: tessera_core::error::code::ALREADY_MEMBER,
            message: "this user is already a member".into(),
        }
        .into());
    }
    Ok(())
}

/// Keeps a change from taking a room's last owner (`?2`) away: the owners are
/// counted in the statement that makes the change, so two owners demoting or
/// removing each other at once cannot both succeed.
const KEEPS_AN_OWNER: &str = "(role != 'owner'
     OR (SELECT COUNT(*) FROM memberships WHERE room_id = ?1 AND role = 'owner') > 1)";

/// Why a guarded change changed nothing: the member left meanwhile, or they
/// were the last owner by the time it ran.
async fn unchanged(db: &D1Database, room_id: &str, target: &str) -> HttpResult<()> {
    match role(db, room_id, target).await? {
        None => Err(ApiError::NotFound("member").into()),
        Some(_) => Err(MemberChange::last_owner().into()),
    }
}

/// Changes `target`'s role to `new_role`, as `actor` with `actor_role`.
pub async fn set_role(
    db: &D1Database,
    room_id: &str,
    actor: &str,
    actor_role: Role,
    target: &str,
    new_role: Role,
) -> HttpResult<()> {
    change(db, room_id, actor, actor_role, target)
        .await?
        .check_role_change(new_role)?;
    let updated = db
        .prepare(format!(
            "UPDATE memberships SET role = ?3 WHERE room_id = ?1 AND user_id = ?2
             AND (?3 = 'owner' OR {KEEPS_AN_OWNER})"
        ))
        .bind(&[arg(room_id), arg(target), arg(new_role.as_str())])?
        .run()
        .await?;
    if changes(&updated)? == 0 {
        return unchanged(db, room_id, target).await;
    }
    Ok(())
}

/// Removes `target`, as `actor` with `actor_role` (leaving is removing oneself).
pub async fn remove(
    db: &D1Database,
    room_id: &str,
    actor: &str,
    actor_role: Role,
    target: &str,
) -> HttpResult<()> {
    change(db, room_id, actor, actor_role, target)
        .await?
        .check_removal()?;
    let removed = db
        .prepare(format!(
            "DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2 AND {KEEPS_AN_OWNER}"
        ))
        .bind(&[arg(room_id), arg(target)])?
        .run()
        .await?;
    if changes(&removed)? == 0 {
        return unchanged(db, room_id, target).await;
    }
    Ok(())
}
