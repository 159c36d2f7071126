//! `/api/v1/auth/*` and `/api/v1/me`: registration, sign-in (password, or an
//! identity provider's ID token), token refresh and sign-out, the public
//! sign-in configuration, and the caller's own profile.
//!
//! Two ways to carry the refresh token: in JSON (any client), or, when the
//! request says `x-tessera-session: cookie`, only in the `tessera_refresh`
//! cookie (HttpOnly, Secure, SameSite=Strict, sent to the refresh and logout
//! routes alone), so that a browser's scripts never see it. Refresh and logout
//! in that mode read the cookie. A cross-site page can neither send the custom
//! header without a CORS preflight nor make the browser send the cookie.

use crate::ctx::{arg, changes, now_secs, read_json, read_optional_json, Ctx};
use crate::tokens::{self, authenticate, Session};
use crate::{crypto, oidc, sessions};
use serde::{Deserialize, Serialize};
use tessera_core::auth::{
    check_sign_in_lock, cleared_refresh_cookies, cookie_value, normalize_email, refresh_cookies,
    validate_display_name, validate_password, AuthConfig, PasswordRecord, COOKIE_MODE,
    REFRESH_COOKIE, SESSION_MODE_HEADER, SIGN_IN_WINDOW_SECS,
};
use tessera_core::ApiError;
use tessera_durable_objects::http::{error_response, json, no_content, Failure, HttpResult};
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
struct OidcSignIn {
    id_token: String,
    /// The nonce the browser sent with its authorization request; when given,
    /// the ID token must carry it.
    nonce: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// A cookie-mode refresh carries no body (or `{}`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    refresh_token: Option<String>,
    #[serde(default)]
    everywhere: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMe {
    display_name: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    /// For accounts without a password: a fresh ID token from their provider.
    id_token: Option<String>,
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

/// Whether the request asks for the cookie flow.
fn cookie_mode(req: &Request) -> HttpResult<bool> {
    match req.headers().get(SESSION_MODE_HEADER)? {
        None => Ok(false),
        Some(v) if v.trim().eq_ignore_ascii_case(COOKIE_MODE) => Ok(true),
        Some(_) => Err(ApiError::invalid(format!(
            "{SESSION_MODE_HEADER} must be `{COOKIE_MODE}` (or absent for the JSON flow)"
        ))
        .into()),
    }
}

fn refresh_cookie(req: &Request) -> HttpResult<Option<String>> {
    Ok(req
        .headers()
        .get("cookie")?
        .and_then(|h| cookie_value(&h, REFRESH_COOKIE).map(str::to_string)))
}

fn with_cookies(resp: Response, cookies: Vec<String>) -> HttpResult<Response> {
    for cookie in cookies {
        resp.headers().append("set-cookie", &cookie)?;
    }
    Ok(resp)
}

/// Answers with a session: in cookie mode its refresh token becomes the
/// cookie and leaves the JSON.
fn session_response<T: Serialize>(
    status: u16,
    cookie: bool,
    mut session: Session,
    body: impl FnOnce(Session) -> T,
) -> HttpResult<Response> {
    let refresh = if cookie {
        session.refresh_token.take()
    } else {
        None
    };
    let resp = json(status, &body(session))?;
    match refresh {
        Some(token) => with_cookies(resp, refresh_cookies(&token)),
        None => Ok(resp),
    }
}

/// A new sign-in of `user_id`: its session and profile.
async fn signed_in(ctx: &Ctx, status: u16, cookie: bool, user_id: &str) -> HttpResult<Response> {
    let session = tokens::new_session(ctx, user_id).await?;
    *ctx.user.borrow_mut() = Some(user_id.to_string());
    let user = load_user(ctx, user_id).await?;
    session_response(status, cookie, session, |session| SessionBody {
        user,
        session,
    })
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
    let cookie = cookie_mode(&req)?;
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
            code: tessera_core::error::code::EMAIL_TAKEN,
            message: "an account with this email already exists".into(),
        }
        .into());
    }
    signed_in(ctx, 201, cookie, &id).await
}

/// The account of an email (if any) and that email's recent failed sign-ins.
#[derive(Deserialize)]
struct Credentials {
    id: Option<String>,
    password_hash: Option<String>,
    failures: Option<u32>,
    window_start: Option<u64>,
}

/// Counts a failed sign-in to `email`, in a new window when the last one ended.
async fn record_failure(ctx: &Ctx, email: &str, now: u64) -> HttpResult<()> {
    ctx.db()?
        .prepare(
            "INSERT INTO sign_in_failures (email, window_start, failures) VALUES (?1, ?2, 1)
             ON CONFLICT (email) DO UPDATE SET
               failures = CASE WHEN window_start <= ?3 THEN 1 ELSE failures + 1 END,
               window_start = CASE WHEN window_start <= ?3 THEN ?2 ELSE window_start END",
        )
        .bind(&[
            arg(email),
            arg(now),
            arg(now.saturating_sub(SIGN_IN_WINDOW_SECS)),
        ])?
        .run()
        .await?;
    Ok(())
}

/// Password sign-in. Besides the per-address limit, each email may fail only
/// `SIGN_IN_FAILURES_MAX` times per window from anywhere; then every attempt
/// (the right password too, or the lock would say when a guess was right) is
/// refused until the window ends, before any key derivation. Unknown emails
/// are counted the same way, so the lock reveals nothing about accounts.
pub async fn login(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let cookie = cookie_mode(&req)?;
    let body: Login = read_json(&mut req).await?;
    let email = normalize_email(&body.email).map_err(|_| ApiError::InvalidCredentials)?;
    auth_limit(ctx, &email).await?;
    let db = ctx.db()?;
    let now = now_secs();
    let found: Option<Credentials> = db
        .prepare(
            "SELECT u.id, u.password_hash, f.failures, f.window_start
             FROM (SELECT ?1 AS email) e
             LEFT JOIN users u ON u.email = e.email
             LEFT JOIN sign_in_failures f ON f.email = e.email",
        )
        .bind(&[arg(&email)])?
        .first(None)
        .await?;
    let found = found.ok_or_else(|| ApiError::Internal("sign-in lookup returned no row".into()))?;
    let failures = found.failures.unwrap_or(0);
    check_sign_in_lock(failures, found.window_start.unwrap_or(0), now)?;
    let stored = found.password_hash.as_deref();
    let valid = crypto::verify_password(&body.password, stored).await?;
    let user_id = match &found.id {
        Some(id) if valid => id,
        _ => {
            record_failure(ctx, &email, now).await?;
            return Err(ApiError::InvalidCredentials.into());
        }
    };
    if failures > 0 {
        db.prepare("DELETE FROM sign_in_failures WHERE email = ?1")
            .bind(&[arg(&email)])?
            .run()
            .await?;
    }
    if stored
        .and_then(PasswordRecord::decode)
        .is_some_and(|r| r.needs_rehash())
    {
        let hash = crypto::hash_password(&body.password).await?;
        db.prepare("UPDATE users SET password_hash = ?2 WHERE id = ?1")
            .bind(&[arg(user_id), arg(&hash)])?
            .run()
            .await?;
    }
    signed_in(ctx, 200, cookie, user_id).await
}

/// `POST /auth/oidc`: an ID token from the configured provider (which the
/// browser got with Authorization Code + PKCE) for a Tessera session.
pub async fn oidc_sign_in(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let cookie = cookie_mode(&req)?;
    let body: OidcSignIn = read_json(&mut req).await?;
    let user_id = oidc::sign_in(ctx, &body.id_token, body.nonce.as_deref()).await?;
    signed_in(ctx, 200, cookie, &user_id).await
}

/// `GET /auth/config`: how one can sign in here.
pub async fn config(ctx: &Ctx) -> HttpResult<Response> {
    json(
        200,
        &AuthConfig {
            password: true,
            oidc: oidc::browser_config(ctx),
        },
    )
}

pub async fn refresh(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    if !cookie_mode(&req)? {
        let body: RefreshBody = read_json(&mut req).await?;
        let session = tokens::rotate(ctx, &body.refresh_token).await?;
        return json(200, &session);
    }
    let _: NoBody = read_optional_json(&mut req).await?;
    let token = refresh_cookie(&req)?.ok_or_else(|| {
        ApiError::InvalidToken(format!("no {REFRESH_COOKIE} cookie: sign in again"))
    })?;
    match tokens::rotate(ctx, &token).await {
        Ok(session) => session_response(200, true, session, |s| s),
        // A cookie that cannot be used again is dropped with the refusal.
        Err(Failure(e)) if e.status() == 401 => {
            with_cookies(error_response(&e), cleared_refresh_cookies())
        }
        Err(e) => Err(e),
    }
}

/// Sign-out: of the session of a refresh token (the JSON's, or the cookie's),
/// or with `everywhere` and a bearer token, of every session of the caller.
/// Either way its sockets are closed. Signing out a session that already
/// ended succeeds again (and tells its rooms again).
pub async fn logout(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let cookie = cookie_mode(&req)?;
    let body: LogoutBody = if cookie {
        read_optional_json(&mut req).await?
    } else {
        read_json(&mut req).await?
    };
    if body.everywhere {
        let user_id = authenticate(ctx, &req).await?;
        sessions::end_all(ctx, &user_id).await?;
    } else {
        let token = match (body.refresh_token, cookie) {
            (Some(token), _) => Some(token),
            (None, true) => refresh_cookie(&req)?,
            (None, false) => {
                return Err(ApiError::invalid(
                    "give refresh_token, or everywhere: true with a bearer token",
                )
                .into())
            }
        };
        let known = match &token {
            Some(t) => sessions::end_by_refresh_token(ctx, t).await?,
            None => false,
        };
        // Without a known token there is nothing to end; a browser still
        // gets its cookie cleared.
        if !known && !cookie {
            return Err(ApiError::InvalidToken("refresh token is unknown".into()).into());
        }
    }
    let resp = no_content()?;
    if cookie {
        return with_cookies(resp, cleared_refresh_cookies());
    }
    Ok(resp)
}

pub async fn me(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    json(200, &load_user(ctx, &user_id).await?)
}

/// Who may set a password: with one already, whoever knows it; without (an
/// account of the identity provider), whoever just signed in there.
async fn prove_owner(ctx: &Ctx, user_id: &str, body: &UpdateMe) -> HttpResult<()> {
    let stored: Option<String> = ctx
        .db()?
        .prepare("SELECT password_hash FROM users WHERE id = ?1")
        .bind(&[arg(user_id)])?
        .first(Some("password_hash"))
        .await?;
    if stored.is_some() {
        let current = body.current_password.as_deref().unwrap_or_default();
        if !crypto::verify_password(current, stored.as_deref()).await? {
            return Err(ApiError::forbidden("current_password is wrong").into());
        }
        return Ok(());
    }
    let id_token = body.id_token.as_deref().ok_or_else(|| {
        ApiError::forbidden(
            "this account signs in through its identity provider: setting a password needs \
             id_token, a fresh ID token from that provider",
        )
    })?;
    oidc::prove(ctx, user_id, id_token).await
}

/// `PATCH /me`: the display name and the password. A password change ends
/// every session (this one too) and closes every socket.
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
        prove_owner(ctx, &user_id, &body).await?;
    }
    if let Some(name) = &name {
        db.prepare("UPDATE users SET display_name = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&[arg(&user_id), arg(name), arg(now)])?
            .run()
            .await?;
    }
    if let Some(password) = &body.password {
        let hash = crypto::hash_password(password).await?;
        db.prepare("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&[arg(&user_id), arg(&hash), arg(now)])?
            .run()
            .await?;
        sessions::end_all(ctx, &user_id).await?;
    }
    json(200, &load_user(ctx, &user_id).await?)
}
