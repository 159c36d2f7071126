//! Access tokens (HS256 JWTs we sign, naming their session), refresh tokens
//! (opaque, single-use, rotated within a family: the family is the session),
//! and turning a request's bearer token into a caller.
//!
//! A signed-out session's access tokens are refused at once, not when they
//! expire: authentication already reads D1 once per request (does the account
//! still exist?), and the same query now also asks whether the token's session
//! still has a live refresh token (one lookup in a partial index). So
//! revocation costs no extra round trip; a cache of revoked sessions per
//! isolate would save nothing and could be stale.

use crate::ctx::{arg, now_secs, Ctx};
use crate::{crypto, oidc, sessions};
use serde::{Deserialize, Serialize};
use tessera_core::auth::{
    bearer_token, refresh_token_digest, revoked_by, ACCESS_TOKEN_TTL_SECS, REFRESH_TOKEN_TTL_SECS,
    TOKEN_AUDIENCE, TOKEN_ISSUER,
};
use tessera_core::jwt::{self, Audience, Expect, Registered};
use tessera_core::notify::apikeys::{self, StoredKey, TOUCH_EVERY_SECS};
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

#[derive(Serialize)]
pub struct Session {
    pub access_token: String,
    /// Absent from the JSON when the browser gets it as a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Our access tokens' own claim: the session (refresh-token family) they belong to.
#[derive(Deserialize)]
struct SessionClaim {
    sid: String,
}

/// An access token's claims, in the order they have always been written.
#[derive(Serialize)]
struct AccessClaims<'a> {
    #[serde(flatten)]
    registered: Registered,
    sid: &'a str,
}

/// Who is calling: the user and, for our own tokens, the session (for an
/// API key, the key): what the caller's sockets are tagged with, so that
/// ending it closes them.
pub struct Caller {
    pub user_id: String,
    pub session: Option<String>,
}

fn access_token(ctx: &Ctx, user_id: &str, session: &str) -> HttpResult<String> {
    let now = now_secs();
    let claims = AccessClaims {
        registered: Registered {
            iat: Some(now),
            exp: Some(now + ACCESS_TOKEN_TTL_SECS),
            nbf: Some(now),
            iss: Some(TOKEN_ISSUER.into()),
            sub: Some(user_id.into()),
            aud: Some(Audience::One(TOKEN_AUDIENCE.into())),
            jti: Some(crypto::new_id()?),
            nonce: None,
        },
        sid: session,
    };
    Ok(jwt::sign_hs256(secret(ctx)?.as_bytes(), &claims)?)
}

fn session(ctx: &Ctx, user_id: &str, family: &str, refresh_token: String) -> HttpResult<Session> {
    Ok(Session {
        access_token: access_token(ctx, user_id, family)?,
        refresh_token: Some(refresh_token),
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
    })
}

/// A new session (sign-in): a new family with its first refresh token.
pub async fn new_session(ctx: &Ctx, user_id: &str) -> HttpResult<Session> {
    let refresh_token = crypto::new_secret()?;
    let family = crypto::new_id()?;
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
    session(ctx, user_id, &family, refresh_token)
}

#[derive(serde::Deserialize)]
struct SpentToken {
    user_id: String,
    family_id: String,
}

/// Rotation: spends `token` and issues its successor in one transaction, so
/// the session always has exactly one live token (its access tokens stay
/// valid throughout). A token presented twice means it was stolen (or
/// replayed): the whole session ends, its sockets too.
pub async fn rotate(ctx: &Ctx, token: &str) -> HttpResult<Session> {
    let db = ctx.db()?;
    let digest = refresh_token_digest(token);
    let successor = crypto::new_secret()?;
    let now = now_secs();
    let live = "token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2";
    let results = db
        .batch(vec![
            db.prepare(format!(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at)
                 SELECT ?3, family_id, user_id, ?2, ?4 FROM refresh_tokens WHERE {live}"
            ))
            .bind(&[
                arg(&digest),
                arg(now),
                arg(&refresh_token_digest(&successor)),
                arg(now + REFRESH_TOKEN_TTL_SECS),
            ])?,
            db.prepare(format!(
                "UPDATE refresh_tokens SET used_at = ?2 WHERE {live} RETURNING user_id, family_id"
            ))
            .bind(&[arg(&digest), arg(now)])?,
        ])
        .await?;
    let spent = match results.get(1) {
        Some(r) => r.results::<SpentToken>()?.into_iter().next(),
        None => None,
    };
    if let Some(spent) = spent {
        return session(ctx, &spent.user_id, &spent.family_id, successor);
    }
    let reused: Option<SpentToken> = db
        .prepare(
            "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?1 AND used_at IS NOT NULL",
        )
        .bind(&[arg(&digest)])?
        .first(None)
        .await?;
    if let Some(reused) = reused {
        if sessions::revoke_family(ctx, &reused.family_id).await? {
            // The token is refused whether or not every room could be told.
            let closed =
                sessions::close_sockets(ctx, &reused.user_id, Some(&reused.family_id)).await;
            if let Err(e) = closed {
                worker::console_error!("closing a reused session's sockets: {:?}", e.0);
            }
            return Err(ApiError::RefreshTokenReused.into());
        }
    }
    Err(ApiError::InvalidToken("refresh token is unknown, expired or revoked".into()).into())
}

/// Verifies one of our access tokens: (user, session).
fn verify_own(ctx: &Ctx, token: &jwt::Token<'_>) -> HttpResult<(String, String)> {
    token.verify_hs256(secret(ctx)?.as_bytes())?;
    let claims: Registered = token.claims()?;
    claims.check(&Expect {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        now: now_secs(),
        leeway_secs: 5,
        max_age_secs: None,
        nonce: None,
    })?;
    if claims.exp.is_none() {
        return Err(ApiError::InvalidToken("token has no expiry (`exp`)".into()).into());
    }
    let subject = claims
        .sub
        .ok_or_else(|| ApiError::InvalidToken("token has no subject".into()))?;
    Ok((subject, token.claims::<SessionClaim>()?.sid))
}

/// The caller behind a bearer token: an API key (`tsk_…`),
/// ours (HS256, with its session), or an external OIDC provider's when one is
/// configured (the user is provisioned on first sight). Refused when the
/// account is gone, the session signed out, or (external tokens) the person
/// signed out everywhere after it was issued.
pub async fn caller_for_token(ctx: &Ctx, token: &str) -> HttpResult<Caller> {
    if apikeys::is_api_key(token) {
        return caller_for_key(ctx, token).await;
    }
    let parsed = jwt::parse(token)?;
    let (user_id, session, issued_at) = match parsed.header.alg.as_str() {
        "HS256" => {
            let (user, sid) = verify_own(ctx, &parsed)?;
            (user, Some(sid), None)
        }
        "RS256" | "ES256" => {
            let external = oidc::user_for_token(ctx, token).await?;
            (external.user_id, None, external.issued_at)
        }
        other => {
            return Err(ApiError::InvalidToken(format!("algorithm {other} is not accepted")).into())
        }
    };
    #[derive(serde::Deserialize)]
    struct Standing {
        revoked_before: Option<u64>,
        live: u32,
    }
    let standing: Option<Standing> = ctx
        .db()?
        .prepare(
            "SELECT u.revoked_before,
               CASE WHEN ?2 IS NULL THEN 1 ELSE EXISTS (
                 SELECT 1 FROM refresh_tokens t WHERE t.family_id = ?2 AND t.user_id = u.id
                   AND t.used_at IS NULL AND t.revoked_at IS NULL) END AS live
             FROM users u WHERE u.id = ?1",
        )
        .bind(&[arg(&user_id), arg(session.as_ref())])?
        .first(None)
        .await?;
    let standing =
        standing.ok_or_else(|| ApiError::InvalidToken("the account no longer exists".into()))?;
    if standing.live == 0 {
        return Err(ApiError::InvalidToken("this session was signed out".into()).into());
    }
    if session.is_none() && revoked_by(issued_at, standing.revoked_before) {
        return Err(ApiError::InvalidToken(
            "this account signed out everywhere after the token was issued".into(),
        )
        .into());
    }
    *ctx.user.borrow_mut() = Some(user_id.clone());
    Ok(Caller { user_id, session })
}

/// The caller behind an API key, if the key may make this request (see
/// `apikeys::admit`); its scope stays on the context for the handlers.
async fn caller_for_key(ctx: &Ctx, token: &str) -> HttpResult<Caller> {
    let (id, secret_hash) = apikeys::parse(token)?;
    let key: StoredKey = ctx
        .db()?
        .prepare(
            "SELECT k.user_id, k.scope, k.expires_at, k.last_used_at
             FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE k.id = ?1 AND k.secret_hash = ?2",
        )
        .bind(&[arg(&id), arg(&secret_hash)])?
        .first(None)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("this API key is unknown or was revoked".into()))?;
    let now = now_secs();
    let room = ctx.path_room.borrow().clone();
    let admitted = apikeys::admit(&key, ctx.endpoint.get(), room.as_deref(), now)?;
    if admitted.touch {
        // Conditional: isolates racing on one key write it once.
        let touched = ctx
            .db()?
            .prepare(
                "UPDATE api_keys SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
            )
            .bind(&[
                arg(&id),
                arg(now),
                arg(now.saturating_sub(TOUCH_EVERY_SECS)),
            ])?
            .run()
            .await;
        if let Err(e) = touched {
            worker::console_error!("recording the use of API key {id}: {e}");
        }
    }
    *ctx.key_scope.borrow_mut() = Some(admitted.scope);
    *ctx.user.borrow_mut() = Some(key.user_id.clone());
    Ok(Caller {
        user_id: key.user_id,
        session: Some(id),
    })
}

/// The caller of a request, by its `Authorization: Bearer` header.
pub async fn authenticate_caller(ctx: &Ctx, req: &Request) -> HttpResult<Caller> {
    let header = req
        .headers()
        .get("authorization")?
        .ok_or(ApiError::Unauthenticated)?;
    let token = bearer_token(&header).ok_or(ApiError::Unauthenticated)?;
    caller_for_token(ctx, token).await
}

/// The user id of a request, by its `Authorization: Bearer` header.
pub async fn authenticate(ctx: &Ctx, req: &Request) -> HttpResult<String> {
    Ok(authenticate_caller(ctx, req).await?.user_id)
}
