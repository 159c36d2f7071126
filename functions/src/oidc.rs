//! External identity: RS256/ES256 JWTs from an OIDC provider (Supabase Auth, Auth0,
//! Keycloak, …) verified against its JWKS. Keys are cached per isolate and
//! re-fetched when a token names an unknown `kid` (key rotation), at most once per
//! `REFETCH_AFTER_SECS` so that junk `kid`s cannot make us hammer the provider.

use crate::crypto;
use crate::ctx::{arg, now_secs, Ctx};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use jwt_simple::token::TokenMetadata;
use serde::Deserialize;
use std::cell::RefCell;
use tessera_core::auth::{normalize_email, validate_display_name};
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use worker::{Fetch, Url};

const REFETCH_AFTER_SECS: u64 = 10;
const CACHE_TTL_SECS: u64 = 3600;

#[derive(Clone, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

struct Cache {
    url: String,
    fetched_at: u64,
    keys: Vec<Jwk>,
}

thread_local! {
    static JWKS: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

#[derive(Serialize, Deserialize)]
struct ExternalClaims {
    email: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
}

struct Config {
    issuer: String,
    audience: String,
    jwks_url: String,
}

fn config(ctx: &Ctx) -> Option<Config> {
    Some(Config {
        issuer: ctx.var("OIDC_ISSUER")?,
        audience: ctx.var("OIDC_AUDIENCE")?,
        jwks_url: ctx.var("OIDC_JWKS_URL")?,
    })
}

fn cached_key(url: &str, kid: &str, now: u64) -> (Option<Jwk>, bool) {
    JWKS.with(|c| match &*c.borrow() {
        Some(cache) if cache.url == url => {
            let key = cache
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned();
            let stale = now >= cache.fetched_at + CACHE_TTL_SECS;
            let may_refetch = now >= cache.fetched_at + REFETCH_AFTER_SECS;
            (key.filter(|_| !stale), stale || may_refetch)
        }
        _ => (None, true),
    })
}

async fn find_key(url: &str, kid: &str) -> HttpResult<Jwk> {
    let now = now_secs();
    let (key, may_refetch) = cached_key(url, kid, now);
    if let Some(key) = key {
        return Ok(key);
    }
    if may_refetch {
        let parsed =
            Url::parse(url).map_err(|e| ApiError::Internal(format!("OIDC_JWKS_URL: {e}")))?;
        let mut resp = Fetch::Url(parsed).send().await?;
        if resp.status_code() != 200 {
            return Err(ApiError::Unavailable(format!(
                "identity provider's JWKS answered {}",
                resp.status_code()
            ))
            .into());
        }
        let set: JwkSet = resp.json().await?;
        JWKS.with(|c| {
            *c.borrow_mut() = Some(Cache {
                url: url.to_string(),
                fetched_at: now,
                keys: set.keys,
            })
        });
    }
    cached_key(url, kid, now)
        .0
        .ok_or_else(|| ApiError::InvalidToken(format!("unknown signing key `{kid}`")).into())
}

fn b64(field: &Option<String>) -> Result<Vec<u8>, ApiError> {
    field
        .as_deref()
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        .ok_or_else(|| ApiError::InvalidToken("provider key is malformed".into()))
}

fn verify(
    jwk: &Jwk,
    alg: &str,
    token: &str,
    options: VerificationOptions,
) -> Result<JWTClaims<ExternalClaims>, ApiError> {
    let bad = |e: jwt_simple::Error| ApiError::InvalidToken(e.to_string());
    match (alg, jwk.kty.as_str()) {
        ("RS256", "RSA") => RS256PublicKey::from_components(&b64(&jwk.n)?, &b64(&jwk.e)?)
            .map_err(bad)?
            .verify_token(token, Some(options))
            .map_err(bad),
        ("ES256", "EC") if jwk.crv.as_deref() == Some("P-256") => {
            let mut point = vec![0x04];
            point.extend(b64(&jwk.x)?);
            point.extend(b64(&jwk.y)?);
            ES256PublicKey::from_bytes(&point)
                .map_err(bad)?
                .verify_token(token, Some(options))
                .map_err(bad)
        }
        _ => Err(ApiError::InvalidToken(format!(
            "key type does not match {alg}"
        ))),
    }
}

/// Verifies an external token and returns our user id for it, creating the user
/// the first time this identity is seen.
pub async fn user_for_token(ctx: &Ctx, token: &str, meta: &TokenMetadata) -> HttpResult<String> {
    let cfg = config(ctx).ok_or_else(|| {
        ApiError::InvalidToken("no external identity provider is configured".into())
    })?;
    let kid = meta
        .key_id()
        .ok_or_else(|| ApiError::InvalidToken("token names no key (`kid`)".into()))?;
    let jwk = find_key(&cfg.jwks_url, kid).await?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[&cfg.issuer])),
        allowed_audiences: Some(HashSet::from_strings(&[&cfg.audience])),
        time_tolerance: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let claims = verify(&jwk, meta.algorithm(), token, options)?;
    let subject = claims
        .subject
        .ok_or_else(|| ApiError::InvalidToken("token has no subject".into()))?;
    let external_id = format!("{}|{subject}", cfg.issuer);
    let db = ctx.db()?;
    let find = || async {
        db.prepare("SELECT id FROM users WHERE external_id = ?1")
            .bind(&[arg(&external_id)])?
            .first::<String>(Some("id"))
            .await
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let extra = claims.custom;
    let email = extra.email.as_deref().and_then(|e| normalize_email(e).ok());
    let name = [extra.name, extra.preferred_username, email.clone()]
        .into_iter()
        .flatten()
        .find_map(|n| validate_display_name(&n).ok())
        .unwrap_or_else(|| "User".to_string());
    let now = now_secs();
    // An email already used by a password account is not linked: that would let
    // whoever controls the provider take over the account.
    db.prepare(
        "INSERT INTO users (id, email, display_name, external_id, created_at, updated_at)
         VALUES (?1, CASE WHEN EXISTS (SELECT 1 FROM users WHERE email = ?2) THEN NULL ELSE ?2 END,
                 ?3, ?4, ?5, ?5)
         ON CONFLICT DO NOTHING",
    )
    .bind(&[
        arg(&crypto::new_id()?),
        arg(email.as_ref()),
        arg(&name),
        arg(&external_id),
        arg(now),
    ])?
    .run()
    .await?;
    find()
        .await?
        .ok_or_else(|| ApiError::Internal("provisioned user not found".into()).into())
}
