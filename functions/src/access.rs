//! Whom a caller may reach, read from D1 on every request (never cached, so a
//! removed member or a lowered role counts at once): their membership and role
//! in a room, and a file with their role in its room. A room a caller is not a
//! member of, or an API key of theirs does not reach, is 404, as for a room
//! that does not exist, so ids cannot be probed.

use crate::ctx::{arg, Ctx};
use crate::tokens::authenticate;
use serde::Deserialize;
use tessera_core::files::{FileInfo, FileStatus};
use tessera_core::rooms::{Role, RoomInfo};
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use tessera_durable_objects::members;
use worker::Request;

/// A room as its member `m` sees it. A direct room is named for the other
/// person (their display name now), as chat apps show one; the stored name
/// stays for when that person is gone.
pub const ROOM_COLUMNS: &str =
    "r.id, r.kind, r.topic, r.created_by, r.created_at, r.updated_at, m.role,
     CASE WHEN r.kind = 'direct' THEN COALESCE(
       (SELECT u.display_name FROM memberships o JOIN users u ON u.id = o.user_id
        WHERE o.room_id = r.id AND o.user_id <> m.user_id LIMIT 1), r.name)
     ELSE r.name END AS name,
     (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count";

/// The caller's membership of a room (the room with their role); 404 when
/// the room is absent or not theirs.
pub async fn membership(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<RoomInfo> {
    if !ctx.key_allows_room(room_id) {
        return Err(ApiError::NotFound("room").into());
    }
    Ok(ctx
        .db()?
        .prepare(format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r JOIN memberships m ON m.room_id = r.id
             WHERE r.id = ?1 AND m.user_id = ?2"
        ))
        .bind(&[arg(room_id), arg(user_id)])?
        .first(None)
        .await?
        .ok_or(ApiError::NotFound("room"))?)
}

/// `user_id`'s role in a room; none when an API key of theirs does not reach it.
pub async fn member_role(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Option<Role>> {
    if !ctx.key_allows_room(room_id) {
        return Ok(None);
    }
    members::role(&ctx.db()?, room_id, user_id).await
}

/// The caller's role in a room; 404 for non-members, as for a missing room.
pub async fn role_in(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Role> {
    Ok(member_role(ctx, room_id, user_id)
        .await?
        .ok_or(ApiError::NotFound("room"))?)
}

/// A file as the API shows it (from `files f`).
pub const FILE_COLUMNS: &str = "f.id, f.room_id, f.uploader_id, f.name, f.content_type, f.declared_type, f.size, f.sha256, f.status, f.created_at, f.completed_at";

/// A finished file and `user_id`'s role in its room; 404 unless they are a
/// member now.
pub async fn file_for(ctx: &Ctx, id: &str, user_id: &str) -> HttpResult<(FileInfo, Role)> {
    #[derive(Deserialize)]
    struct Found {
        #[serde(flatten)]
        file: FileInfo,
        role: Role,
    }
    let found: Found = ctx
        .db()?
        .prepare(format!(
            "SELECT {FILE_COLUMNS}, m.role FROM files f
             JOIN memberships m ON m.room_id = f.room_id AND m.user_id = ?2
             WHERE f.id = ?1 AND f.status = ?3"
        ))
        .bind(&[arg(id), arg(user_id), arg(FileStatus::Ready.as_str())])?
        .first(None)
        .await?
        .filter(|f: &Found| ctx.key_allows_room(&f.file.room_id))
        .ok_or(ApiError::NotFound("file"))?;
    Ok((found.file, found.role))
}

/// A file and the caller's role in its room; 404 unless they are a member.
pub async fn file_access(
    ctx: &Ctx,
    req: &Request,
    id: &str,
) -> HttpResult<(FileInfo, Role, String)> {
    let user_id = authenticate(ctx, req).await?;
    let (file, role) = file_for(ctx, id, &user_id).await?;
    Ok((file, role, user_id))
}
