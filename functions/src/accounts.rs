//! `/api/v1/auth/*` and `/api/v1/me`: registration, sign-in, token refresh and
//! sign-out, and the caller's own profile.

use crate::ctx::{arg, changes, now_secs, read_json, Ctx};
use crate::tokens::{self, Session};
use crate::{crypto, tokens::authenticate};
use serde::{Deserialize, Serialize};
use tessera_core::auth::{
    normalize_email, validate_display_name, validate_password, PasswordRecord,
};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, no_content, HttpResult};
use worker::{Request, Response};

/// Sign-in and registration attempts per IP and email, per minute (the binding's period).
const AUTH_LIMIT_PERIOD_SECS: u64 = 60;

#[derive(Debug, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub created_at: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    email: String,
    password: String,
    display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMe {
    display_name: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
}

#[derive(Serialize)]
struct SessionBody {
    user: User,
    #[serde(flatten)]
    session: Session,
}

async fn auth_limit(ctx: &Ctx, email: &str) -> HttpResult<()> {
    ctx.limit(
        "AUTH_LIMITER",
        format!("{}|{email}", ctx.ip),
        AUTH_LIMIT_PERIOD_SECS,
    )
    .await
}

pub async fn load_user(ctx: &Ctx, user_id: &str) -> HttpResult<User> {
    ctx.db()?
        .prepare("SELECT id, email, display_name, created_at FROM users WHERE id = ?1")
        .bind(&[arg(user_id)])?
        .first(None)
        .await?
        .ok_or_else(|| ApiError::NotFound("user").into())
}

pub async fn register(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let body: Register = read_json(&mut req).await?;
    let email = normalize_email(&body.email)?;
    auth_limit(ctx, &email).await?;
    validate_password(&body.password)?;
    let display_name = validate_display_name(&body.display_name)?;
    let id = crypto::new_id()?;
    let hash = crypto::hash_password(&body.password).await?;
    let now = now_secs();
    let inserted = ctx
        .db()?
        .prepare(
            "INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
        )
        .bind(&[
            arg(&id),
            arg(&email),
            arg(&display_name),
            arg(&hash),
            arg(now),
        ])?
        .run()
        .await?;
    if changes(&inserted)? == 0 {
        return Err(ApiError::Conflict {
            code: "email_taken",
            message: "an account with this email already exists".into(),
        }
        .into());
    }
    let session = tokens::new_session(ctx, &id, None).await?;
    *ctx.user.borrow_mut() = Some(id.clone());
    json(
        201,
        &SessionBody {
            user: load_user(ctx, &id).await?,
            session,
        },
    )
}

#[derive(Deserialize)]
struct Credentials {
    id: String,
    password_hash: Option<String>,
}

pub async fn login(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let body: Login = read_json(&mut req).await?;
    let email = normalize_email(&body.email).map_err(|_| ApiError::InvalidCredentials)?;
    auth_limit(ctx, &email).await?;
    let db = ctx.db()?;
    let found: Option<Credentials> = db
        .prepare("SELECT id, password_hash FROM users WHERE email = ?1")
        .bind(&[arg(&email)])?
        .first(None)
        .await?;
    let stored = found.as_ref().and_then(|c| c.password_hash.as_deref());
    let valid = crypto::verify_password(&body.password, stored).await?;
    let user = match &found {
        Some(c) if valid => c,
        _ => return Err(ApiError::InvalidCredentials.into()),
    };
    if stored
        .and_then(PasswordRecord::decode)
        .is_some_and(|r| r.needs_rehash())
    {
        let hash = crypto::hash_password(&body.password).await?;
        db.prepare("UPDATE users SET password_hash = ?2 WHERE id = ?1")
            .bind(&[arg(&user.id), arg(&hash)])?
            .run()
            .await?;
    }
    let session = tokens::new_session(ctx, &user.id, None).await?;
    *ctx.user.borrow_mut() = Some(user.id.clone());
    json(
        200,
        &SessionBody {
            user: load_user(ctx, &user.id).await?,
            session,
        },
    )
}

pub async fn refresh(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let body: RefreshBody = read_json(&mut req).await?;
    let session = tokens::rotate(ctx, &body.refresh_token).await?;
    json(200, &session)
}

pub async fn logout(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let body: RefreshBody = read_json(&mut req).await?;
    if !tokens::revoke_family(ctx, &body.refresh_token).await? {
        return Err(
            ApiError::InvalidToken("refresh token is unknown or already revoked".into()).into(),
        );
    }
    no_content()
}

pub async fn me(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    json(200, &load_user(ctx, &user_id).await?)
}

pub async fn update_me(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let body: UpdateMe = read_json(&mut req).await?;
    let db = ctx.db()?;
    let now = now_secs();
    if body.display_name.is_none() && body.password.is_none() {
        return Err(ApiError::invalid("nothing to update: give display_name or password").into());
    }
    // Validate everything before changing anything.
    let name = body
        .display_name
        .as_deref()
        .map(validate_display_name)
        .transpose()?;
    if let Some(password) = &body.password {
        validate_password(password)?;
        let stored: Option<String> = db
            .prepare("SELECT password_hash FROM users WHERE id = ?1")
            .bind(&[arg(&user_id)])?
            .first(Some("password_hash"))
            .await?;
        let current = body.current_password.as_deref().unwrap_or_default();
        if stored.is_some() && !crypto::verify_password(current, stored.as_deref()).await? {
            return Err(ApiError::forbidden("current_password is wrong").into());
        }
        let hash = crypto::hash_password(password).await?;
        db.prepare("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&[arg(&user_id), arg(&hash), arg(now)])?
            .run()
            .await?;
        tokens::revoke_all(ctx, &user_id).await?;
    }
    if let Some(name) = &name {
        db.prepare("UPDATE users SET display_name = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&[arg(&user_id), arg(name), arg(now)])?
            .run()
            .await?;
    }
    json(200, &load_user(ctx, &user_id).await?)
}
