//! `/api/v1/rooms/*` and `/api/v1/invites/*`: rooms, members, roles and invites,
//! stored in D1. A caller who is not a member of a room gets 404 for it, exactly as
//! for a room that does not exist, so room ids cannot be probed.

use crate::access::{member_role, membership, role_in, ROOM_COLUMNS};
use crate::ctx::{arg, changes, now_secs, page, read_json, Ctx};
use crate::tokens::authenticate;
use crate::{crypto, room_object};
use serde::{Deserialize, Serialize};
use tessera_core::rooms::{
    check_invite_usable, listed_invite_roles, require, AddMember, CreateInvite, CreateRoom,
    InviteInfo, ListedInvite, MemberInfo, MemberNotice, Permission, Role, RoomInfo, RoomKind,
    RoomWithReads, UpdateMember, UpdateRoom, INVITES_LIVE_MAX,
};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, no_content, HttpResult};
use tessera_durable_objects::members;
use worker::{Env, Request, Response};

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomWithReads>,
    next_cursor: Option<String>,
}

/// Rooms with the caller's read state, asked of their objects in parallel.
async fn with_reads(ctx: &Ctx, rooms: Vec<RoomInfo>, user_id: &str) -> Vec<RoomWithReads> {
    let reads = rooms
        .iter()
        .map(|r| room_object::read_state(ctx, &r.id, user_id));
    let reads = futures_util::future::join_all(reads).await;
    rooms
        .into_iter()
        .zip(reads)
        .map(|(room, reads)| RoomWithReads { room, reads })
        .collect()
}

pub async fn list(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let page = page(&req)?;
    let cursor_clause = if page.cursor.is_some() {
        "AND (r.created_at, r.id) < (SELECT created_at, id FROM rooms WHERE id = ?3)"
    } else {
        ""
    };
    let mut args = vec![arg(&user_id), arg(page.limit + 1)];
    if let Some(c) = &page.cursor {
        args.push(arg(c));
    }
    let mut rooms: Vec<RoomInfo> = ctx
        .db()?
        .prepare(format!(
            "SELECT {ROOM_COLUMNS} FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = ?1 {cursor_clause}
             ORDER BY r.created_at DESC, r.id DESC LIMIT ?2"
        ))
        .bind(&args)?
        .all()
        .await?
        .results()?;
    let next_cursor = page.finish(&mut rooms, |r| r.id.clone());
    // A key limited to some rooms lists only those (a page may come out short).
    rooms.retain(|r| ctx.key_allows_room(&r.id));
    let rooms = with_reads(ctx, rooms, &user_id).await;
    json(200, &RoomList { rooms, next_cursor })
}

pub async fn create(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let body: CreateRoom = read_json(&mut req).await?;
    let room = body.validate(&user_id)?;
    members::existing_users(&ctx.db()?, &room.members).await?;
    let db = ctx.db()?;
    let direct_key = (room.kind == RoomKind::Direct).then(|| {
        let mut pair = [user_id.clone(), room.members[0].clone()];
        pair.sort();
        pair.join(":")
    });
    if let Some(key) = &direct_key {
        let existing: Option<String> = db
            .prepare("SELECT id FROM rooms WHERE direct_key = ?1")
            .bind(&[arg(key)])?
            .first(Some("id"))
            .await?;
        if let Some(id) = existing {
            return json(200, &membership(ctx, &id, &user_id).await?);
        }
    }
    let id = crypto::new_id()?;
    let now = now_secs();
    // In a direct room both people are equals: both owners.
    let others_role = if room.kind == RoomKind::Direct {
        Role::Owner
    } else {
        Role::Member
    };
    let mut statements = vec![db
        .prepare(
            "INSERT INTO rooms (id, name, kind, topic, direct_key, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )
        .bind(&[
            arg(&id),
            arg(&room.name),
            arg(room.kind.as_str()),
            arg(&room.topic),
            arg(direct_key.as_ref()),
            arg(&user_id),
            arg(now),
        ])?];
    for (member, role) in std::iter::once((&user_id, Role::Owner))
        .chain(room.members.iter().map(|m| (m, others_role)))
    {
        statements.push(
            db.prepare("INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)")
                .bind(&[arg(&id), arg(member), arg(role.as_str()), arg(now)])?,
        );
    }
    db.batch(statements).await?;
    json(201, &membership(ctx, &id, &user_id).await?)
}

pub async fn get(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let room = membership(ctx, room_id, &user_id).await?;
    let reads = room_object::read_state(ctx, room_id, &user_id).await;
    json(200, &RoomWithReads { room, reads })
}

pub async fn update(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    require(m.role, Permission::UpdateRoom)?;
    let (name, topic) = read_json::<UpdateRoom>(&mut req).await?.validate()?;
    ctx.db()?
        .prepare(
            "UPDATE rooms SET name = COALESCE(?2, name), topic = COALESCE(?3, topic), updated_at = ?4
             WHERE id = ?1",
        )
        .bind(&[arg(room_id), arg(name.as_ref()), arg(topic.as_ref()), arg(now_secs())])?
        .run()
        .await?;
    json(200, &membership(ctx, room_id, &user_id).await?)
}

/// Deletes a room in one transaction: it is gone for everyone at once
/// (memberships, invites, files and jobs go by cascade), and what is left to
/// erase elsewhere is recorded with it. Then the room object's sockets are
/// closed and its storage erased, and its files leave R2; a failure there is
/// retried by the daily cron until it succeeds.
pub async fn delete(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    require(m.role, Permission::DeleteRoom)?;
    let db = ctx.db()?;
    db.batch(vec![
        db.prepare(
            "INSERT INTO room_purges (room_id, deleted_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(&[arg(room_id), arg(now_secs())])?,
        db.prepare("DELETE FROM rooms WHERE id = ?1")
            .bind(&[arg(room_id)])?,
    ])
    .await?;
    if let Err(e) = purge(&ctx.env, room_id).await {
        worker::console_error!("purging deleted room {room_id}: {:?}", e.0);
        return Err(ApiError::Unavailable(
            "the room is deleted, but erasing its content failed for now; it is retried daily"
                .into(),
        )
        .into());
    }
    no_content()
}

/// Erases what a deleted room left: its object's storage (closing its
/// sockets) and its files in R2; then the purge is done.
async fn purge(env: &Env, room_id: &str) -> HttpResult<()> {
    room_object::purge(env, room_id).await?;
    crate::files::purge_room(env, room_id).await?;
    crate::search::purge_room(env, room_id).await?;
    env.d1("DB")?
        .prepare("DELETE FROM room_purges WHERE room_id = ?1")
        .bind(&[arg(room_id)])?
        .run()
        .await?;
    Ok(())
}

/// Purges a failure left unfinished (the cron), oldest first, a few per run.
pub async fn finish_purges(env: &Env) -> HttpResult<usize> {
    #[derive(Deserialize)]
    struct Pending {
        room_id: String,
    }
    let pending: Vec<Pending> = env
        .d1("DB")?
        .prepare("SELECT room_id FROM room_purges ORDER BY deleted_at LIMIT 20")
        .all()
        .await?
        .results()?;
    for p in &pending {
        purge(env, &p.room_id).await?;
    }
    Ok(pending.len())
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.display_name, m.role, m.joined_at
     FROM memberships m JOIN users u ON u.id = m.user_id";

#[derive(Serialize)]
struct MemberList {
    members: Vec<MemberInfo>,
    next_cursor: Option<String>,
}

pub async fn members(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    membership(ctx, room_id, &user_id).await?;
    let page = page(&req)?;
    let mut members: Vec<MemberInfo> = ctx
        .db()?
        .prepare(format!(
            "{MEMBER_SELECT} WHERE m.room_id = ?1 AND m.user_id > COALESCE(?3, '')
             ORDER BY m.user_id LIMIT ?2"
        ))
        .bind(&[arg(room_id), arg(page.limit + 1), arg(page.cursor.as_ref())])?
        .all()
        .await?
        .results()?;
    let next_cursor = page.finish(&mut members, |m| m.user_id.clone());
    json(
        200,
        &MemberList {
            members,
            next_cursor,
        },
    )
}

async fn member_json(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Response> {
    let member: MemberInfo = ctx
        .db()?
        .prepare(format!(
            "{MEMBER_SELECT} WHERE m.room_id = ?1 AND m.user_id = ?2"
        ))
        .bind(&[arg(room_id), arg(user_id)])?
        .first(None)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    json(200, &member)
}

pub async fn add_member(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    require(m.role, Permission::ManageMembers)?;
    let body: AddMember = read_json(&mut req).await?;
    members::add(
        &ctx.db()?,
        room_id,
        m.role,
        &body.user_id,
        body.role,
        now_secs(),
    )
    .await?;
    room_object::member_changed(
        ctx,
        room_id,
        MemberNotice {
            user_id: body.user_id.clone(),
            role: Some(body.role),
            joined: true,
        },
    )
    .await?;
    Ok(member_json(ctx, room_id, &body.user_id)
        .await?
        .with_status(201))
}

pub async fn update_member(
    ctx: &Ctx,
    mut req: Request,
    room_id: &str,
    target: &str,
) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    let body: UpdateMember = read_json(&mut req).await?;
    members::set_role(&ctx.db()?, room_id, &user_id, m.role, target, body.role).await?;
    room_object::member_changed(
        ctx,
        room_id,
        MemberNotice {
            user_id: target.to_string(),
            role: Some(body.role),
            joined: false,
        },
    )
    .await?;
    member_json(ctx, room_id, target).await
}

pub async fn remove_member(
    ctx: &Ctx,
    req: Request,
    room_id: &str,
    target: &str,
) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    members::remove(&ctx.db()?, room_id, &user_id, m.role, target).await?;
    room_object::member_changed(
        ctx,
        room_id,
        MemberNotice {
            user_id: target.to_string(),
            role: None,
            joined: false,
        },
    )
    .await?;
    no_content()
}

/// Refusal when a room has as many usable invites as it may.
fn too_many_invites() -> ApiError {
    ApiError::Conflict {
        code: tessera_core::error::code::TOO_MANY_INVITES,
        message: format!(
            "this room has {INVITES_LIVE_MAX} invites that can still be used; revoke some first"
        ),
    }
}

pub async fn create_invite(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let m = membership(ctx, room_id, &user_id).await?;
    require(m.role, Permission::CreateInvite)?;
    let body: CreateInvite = read_json(&mut req).await?;
    body.validate(m.role, m.kind)?;
    let now = now_secs();
    let invite = InviteInfo {
        code: crypto::new_secret()?,
        room_id: room_id.to_string(),
        role: body.role,
        max_uses: body.max_uses,
        expires_at: now + body.expires_in,
    };
    let usable = usable("?7");
    let inserted = ctx
        .db()?
        .prepare(format!(
            "INSERT INTO invites (code, room_id, role, created_by, max_uses, expires_at, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE (SELECT COUNT(*) FROM invites WHERE room_id = ?2 AND {usable}) < ?8"
        ))
        .bind(&[
            arg(&invite.code),
            arg(room_id),
            arg(invite.role.as_str()),
            arg(&user_id),
            arg(invite.max_uses),
            arg(invite.expires_at),
            arg(now),
            arg(INVITES_LIVE_MAX),
        ])?
        .run()
        .await?;
    if changes(&inserted)? == 0 {
        return Err(too_many_invites().into());
    }
    json(201, &invite)
}

/// Invites that can still be accepted, `now` being the parameter that holds
/// the time.
fn usable(now: &str) -> String {
    format!("expires_at > {now} AND uses < max_uses")
}

#[derive(Serialize)]
struct InviteList {
    invites: Vec<ListedInvite>,
    next_cursor: Option<String>,
}

/// `GET /rooms/{id}/invites` (admins): the invites that can still be
/// accepted, newest first; of them, those the caller could have made.
pub async fn list_invites(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let role = role_in(ctx, room_id, &user_id).await?;
    require(role, Permission::CreateInvite)?;
    let page = page(&req)?;
    let usable = usable("?4");
    let mut invites: Vec<ListedInvite> = ctx
        .db()?
        .prepare(format!(
            "SELECT code, room_id, role, max_uses, uses, expires_at, created_by, created_at
             FROM invites WHERE room_id = ?1 AND {usable} AND instr(?5, ',' || role || ',') > 0
               AND (?3 IS NULL OR (created_at, code) <
                    (SELECT created_at, code FROM invites WHERE code = ?3 AND room_id = ?1))
             ORDER BY created_at DESC, code DESC LIMIT ?2"
        ))
        .bind(&[
            arg(room_id),
            arg(page.limit + 1),
            arg(page.cursor.as_ref()),
            arg(now_secs()),
            arg(&listed_invite_roles(role)),
        ])?
        .all()
        .await?
        .results()?;
    let next_cursor = page.finish(&mut invites, |i| i.code.clone());
    json(
        200,
        &InviteList {
            invites,
            next_cursor,
        },
    )
}

/// `DELETE /invites/{code}` (admins of its room): nobody can accept it any
/// more; who joined with it stays. Others get 404, as for an unknown code.
pub async fn revoke_invite(ctx: &Ctx, req: Request, code: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let db = ctx.db()?;
    let room_id: String = db
        .prepare("SELECT room_id FROM invites WHERE code = ?1")
        .bind(&[arg(code)])?
        .first(Some("room_id"))
        .await?
        .ok_or(ApiError::NotFound("invite"))?;
    let role = member_role(ctx, &room_id, &user_id)
        .await?
        .ok_or(ApiError::NotFound("invite"))?;
    require(role, Permission::CreateInvite)?;
    db.prepare("DELETE FROM invites WHERE code = ?1")
        .bind(&[arg(code)])?
        .run()
        .await?;
    no_content()
}

#[derive(Deserialize)]
struct StoredInvite {
    room_id: String,
    role: String,
    uses: u32,
    max_uses: u32,
    expires_at: u64,
}

pub async fn accept_invite(ctx: &Ctx, req: Request, code: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let db = ctx.db()?;
    let invite: StoredInvite = db
        .prepare("SELECT room_id, role, uses, max_uses, expires_at FROM invites WHERE code = ?1")
        .bind(&[arg(code)])?
        .first(None)
        .await?
        .ok_or(ApiError::NotFound("invite"))?;
    if member_role(ctx, &invite.room_id, &user_id).await?.is_some() {
        return json(200, &membership(ctx, &invite.room_id, &user_id).await?);
    }
    let now = now_secs();
    check_invite_usable(invite.uses, invite.max_uses, invite.expires_at, now)?;
    // The guarded UPDATE makes the use count exact under concurrent accepts.
    let results = db
        .batch(vec![
            db.prepare("UPDATE invites SET uses = uses + 1 WHERE code = ?1 AND uses < max_uses AND expires_at > ?2")
                .bind(&[arg(code), arg(now)])?,
            db.prepare(
                "INSERT INTO memberships (room_id, user_id, role, joined_at)
                 SELECT ?1, ?2, ?3, ?4 WHERE changes() > 0
                 ON CONFLICT DO NOTHING",
            )
            .bind(&[arg(&invite.room_id), arg(&user_id), arg(invite.role.as_str()), arg(now)])?,
        ])
        .await?;
    if results.get(1).map(changes).transpose()?.unwrap_or(0) == 0 {
        return Err(ApiError::Gone {
            code: tessera_core::error::code::INVITE_USED_UP,
            message: "this invite has been used as often as it allows".into(),
        }
        .into());
    }
    let role: Role = invite.role.parse()?;
    room_object::member_changed(
        ctx,
        &invite.room_id,
        MemberNotice {
            user_id: user_id.clone(),
            role: Some(role),
            joined: true,
        },
    )
    .await?;
    json(201, &membership(ctx, &invite.room_id, &user_id).await?)
}
