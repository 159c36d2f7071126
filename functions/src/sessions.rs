//! Ending sessions: signing out one session or everywhere, a password change,
//! a replayed refresh token. The session's refresh tokens are revoked in D1,
//! so its access tokens are refused from the next request (see `tokens`), and
//! each room of the person is told to close the sockets that the session holds
//! there, chat and documents alike, and so is the person's object, for their
//! `/me` sockets (`tessera_durable_objects::sessions`). Revoking an API key
//! closes its sockets the same way.
//!
//! Which rooms: the person's memberships, since sockets only exist in rooms
//! one belongs to (a removed member's are closed on removal). They are asked
//! in parallel, `ROOMS_AT_ONCE` at a time. When a room cannot be told, the
//! sign-out answers 503 although the revocation itself is done; signing out
//! again is harmless and tells the rooms again.

use crate::ctx::{arg, changes, now_secs, Ctx};
use futures_util::future::join_all;
use serde::Deserialize;
use tessera_core::auth::refresh_token_digest;
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use tessera_durable_objects::sessions::EndSessions;
use tessera_durable_objects::{person, room_client};

const ROOMS_AT_ONCE: usize = 20;

#[derive(Deserialize)]
struct Family {
    user_id: String,
    family_id: String,
}

/// Ends the session of a refresh token (live or already ended); false when
/// the token is unknown.
pub async fn end_by_refresh_token(ctx: &Ctx, token: &str) -> HttpResult<bool> {
    let found: Option<Family> = ctx
        .db()?
        .prepare("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?1")
        .bind(&[arg(&refresh_token_digest(token))])?
        .first(None)
        .await?;
    let Some(found) = found else {
        return Ok(false);
    };
    revoke_family(ctx, &found.family_id).await?;
    close_sockets(ctx, &found.user_id, Some(&found.family_id)).await?;
    Ok(true)
}

/// Ends every session of a user: refresh tokens, external tokens issued until
/// now, and every socket.
pub async fn end_all(ctx: &Ctx, user_id: &str) -> HttpResult<()> {
    let db = ctx.db()?;
    let now = now_secs();
    db.batch(vec![
        db.prepare(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[arg(user_id), arg(now)])?,
        db.prepare("UPDATE users SET revoked_before = ?2 WHERE id = ?1")
            .bind(&[arg(user_id), arg(now)])?,
    ])
    .await?;
    close_sockets(ctx, user_id, None).await
}

/// Marks every refresh token of `family` revoked; whether any was still live.
pub async fn revoke_family(ctx: &Ctx, family: &str) -> HttpResult<bool> {
    let result = ctx
        .db()?
        .prepare(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[arg(family), arg(now_secs())])?
        .run()
        .await?;
    Ok(changes(&result)? > 0)
}

/// Tells the person's object and every room of `user_id` to close the
/// sockets of `session` (all of the person's sockets when `None`).
pub async fn close_sockets(ctx: &Ctx, user_id: &str, session: Option<&str>) -> HttpResult<()> {
    #[derive(Deserialize)]
    struct Room {
        room_id: String,
    }
    let rooms: Vec<Room> = ctx
        .db()?
        .prepare("SELECT room_id FROM memberships WHERE user_id = ?1")
        .bind(&[arg(user_id)])?
        .all()
        .await?
        .results()?;
    let end = EndSessions {
        user_id: user_id.to_string(),
        session: session.map(str::to_string),
    };
    let mut failed = 0;
    if let Err(e) = person::end_sessions(&ctx.env, &end).await {
        worker::console_error!("the /me sockets were not told of a sign-out: {:?}", e.0);
        failed += 1;
    }
    for batch in rooms.chunks(ROOMS_AT_ONCE) {
        let told = join_all(
            batch
                .iter()
                .map(|r| room_client::end_sessions(&ctx.env, &r.room_id, &end)),
        )
        .await;
        for (room, result) in batch.iter().zip(told) {
            if let Err(e) = result {
                worker::console_error!("room {} not told of a sign-out: {:?}", room.room_id, e.0);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(ApiError::Unavailable(format!(
            "signed out, but {failed} of {} rooms (and the person's own sockets) could not be \
             told to close this session's sockets; sign out again to retry",
            rooms.len() + 1
        ))
        .into());
    }
    Ok(())
}
