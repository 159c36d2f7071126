//! Access tokens (HS256 JWTs we sign), refresh tokens (opaque, single-use, rotated
//! within a family), and turning a request's bearer token into a user.

use crate::ctx::{arg, changes, now_secs, Ctx};
use crate::{crypto, oidc};
use jwt_simple::prelude::*;
use serde::Serialize;
use tessera_core::auth::{
    bearer_token, refresh_token_digest, ACCESS_TOKEN_TTL_SECS, REFRESH_TOKEN_TTL_SECS,
    TOKEN_AUDIENCE, TOKEN_ISSUER,
};
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use worker::Request;

/// Shorter secrets are refused: HS256 needs at least 256 bits of key.
const MIN_SECRET_LEN: usize = 32;

/// The deployment's secret, from which every key is made (tokens, file links).
pub fn secret(ctx: &Ctx) -> HttpResult<String> {
    match ctx.var("JWT_SECRET") {
        Some(s) if s.len() >= MIN_SECRET_LEN => Ok(s),
        _ => Err(ApiError::Unavailable(
            "server is misconfigured: JWT_SECRET is not set (or shorter than 32 bytes); \
             set it with `wrangler secret put JWT_SECRET`"
                .into(),
        )
        .into()),
    }
}

fn signing_key(ctx: &Ctx) -> HttpResult<HS256Key> {
    Ok(HS256Key::from_bytes(secret(ctx)?.as_bytes()))
}

#[derive(Serialize)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

pub fn access_token(ctx: &Ctx, user_id: &str) -> HttpResult<String> {
    let claims = Claims::create(Duration::from_secs(ACCESS_TOKEN_TTL_SECS))
        .with_issuer(TOKEN_ISSUER)
        .with_audience(TOKEN_AUDIENCE)
        .with_subject(user_id)
        .with_jwt_id(crypto::new_id()?);
    signing_key(ctx)?
        .authenticate(claims)
        .map_err(|e| ApiError::Internal(format!("jwt sign: {e}")).into())
}

/// Issues a new refresh token in `family` (a new family at sign-in) and an access token.
pub async fn new_session(ctx: &Ctx, user_id: &str, family: Option<&str>) -> HttpResult<Session> {
    let refresh_token = crypto::new_secret()?;
    let family = match family {
        Some(f) => f.to_string(),
        None => crypto::new_id()?,
    };
    let now = now_secs();
    ctx.db()?
        .prepare(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&[
            arg(&refresh_token_digest(&refresh_token)),
            arg(&family),
            arg(user_id),
            arg(now),
            arg(now + REFRESH_TOKEN_TTL_SECS),
        ])?
        .run()
        .await?;
    Ok(Session {
        access_token: access_token(ctx, user_id)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
    })
}

#[derive(serde::Deserialize)]
struct SpentToken {
    user_id: String,
    family_id: String,
}

/// Rotation: spends `token` and issues its successor. A token presented twice
/// means it was stolen (or replayed): the whole family is revoked.
pub async fn rotate(ctx: &Ctx, token: &str) -> HttpResult<Session> {
    let db = ctx.db()?;
    let digest = refresh_token_digest(token);
    let now = now_secs();
    let spent: Option<SpentToken> = db
        .prepare(
            "UPDATE refresh_tokens SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2
             RETURNING user_id, family_id",
        )
        .bind(&[arg(&digest), arg(now)])?
        .first(None)
        .await?;
    if let Some(spent) = spent {
        return new_session(ctx, &spent.user_id, Some(&spent.family_id)).await;
    }
    let reused = db
        .prepare(
            "UPDATE refresh_tokens SET revoked_at = ?2
             WHERE revoked_at IS NULL AND family_id =
               (SELECT family_id FROM refresh_tokens WHERE token_hash = ?1 AND used_at IS NOT NULL)",
        )
        .bind(&[arg(&digest), arg(now)])?
        .run()
        .await?;
    if changes(&reused)? > 0 {
        return Err(ApiError::RefreshTokenReused.into());
    }
    Err(ApiError::InvalidToken("refresh token is unknown, expired or revoked".into()).into())
}

/// Revokes the family of `token` (sign-out of that session).
pub async fn revoke_family(ctx: &Ctx, token: &str) -> HttpResult<bool> {
    let result = ctx
        .db()?
        .prepare(
            "UPDATE refresh_tokens SET revoked_at = ?2
             WHERE revoked_at IS NULL AND family_id =
               (SELECT family_id FROM refresh_tokens WHERE token_hash = ?1)",
        )
        .bind(&[arg(&refresh_token_digest(token)), arg(now_secs())])?
        .run()
        .await?;
    Ok(changes(&result)? > 0)
}

/// Revokes every refresh token of a user (after a password change).
pub async fn revoke_all(ctx: &Ctx, user_id: &str) -> HttpResult<()> {
    ctx.db()?
        .prepare(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[arg(user_id), arg(now_secs())])?
        .run()
        .await?;
    Ok(())
}

fn verify_own(ctx: &Ctx, token: &str) -> HttpResult<String> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[TOKEN_ISSUER])),
        allowed_audiences: Some(HashSet::from_strings(&[TOKEN_AUDIENCE])),
        time_tolerance: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let claims = signing_key(ctx)?
        .verify_token::<NoCustomClaims>(token, Some(options))
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    claims
        .subject
        .ok_or_else(|| ApiError::InvalidToken("token has no subject".into()).into())
}

/// The user id behind a bearer token: ours (HS256), or an external OIDC
/// provider's when one is configured (the user is provisioned on first sight).
pub async fn user_for_token(ctx: &Ctx, token: &str) -> HttpResult<String> {
    let meta =
        Token::decode_metadata(token).map_err(|_| ApiError::InvalidToken("not a JWT".into()))?;
    let user_id = match meta.algorithm() {
        "HS256" => verify_own(ctx, token)?,
        "RS256" | "ES256" => oidc::user_for_token(ctx, token, &meta).await?,
        other => {
            return Err(ApiError::InvalidToken(format!("algorithm {other} is not accepted")).into())
        }
    };
    let exists: Option<u32> = ctx
        .db()?
        .prepare("SELECT 1 AS one FROM users WHERE id = ?1")
        .bind(&[arg(&user_id)])?
        .first(Some("one"))
        .await?;
    if exists.is_none() {
        return Err(ApiError::InvalidToken("the account no longer exists".into()).into());
    }
    *ctx.user.borrow_mut() = Some(user_id.clone());
    Ok(user_id)
}

/// Authenticates a request by its `Authorization: Bearer` header.
pub async fn authenticate(ctx: &Ctx, req: &Request) -> HttpResult<String> {
    let header = req
        .headers()
        .get("authorization")?
        .ok_or(ApiError::Unauthenticated)?;
    let token = bearer_token(&header).ok_or(ApiError::Unauthenticated)?;
    user_for_token(ctx, token).await
}
