//! External identity: RS256/ES256 JWTs from an OIDC provider (Supabase Auth, Auth0,
//! Keycloak, …) verified against its JWKS, in two ways: as bearer tokens on any
//! route (audience `OIDC_AUDIENCE`), and as ID tokens that the browser app got
//! through Authorization Code + PKCE and exchanges for a Tessera session
//! (audience `OIDC_CLIENT_ID`, freshly issued). Either way a token must expire
//! (within a day), and an email is taken only when the provider says it verified
//! it. Keys are cached per isolate and re-fetched when a token names an unknown
//! `kid` (key rotation), at most once per `REFETCH_AFTER_SECS` so that junk
//! `kid`s cannot make us hammer the provider.
//!
//! The browser's part of the configuration (authorization and token endpoints,
//! client id, scopes) comes from `[vars]` rather than the provider's discovery
//! document: the public `GET /auth/config` then needs no outbound request, and
//! works the same offline and in tests.

use crate::crypto;
use crate::ctx::{arg, now_secs, Ctx};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::cell::RefCell;
use tessera_core::auth::{
    check_external_expiry, validate_display_name, verified_email, OidcConfig, ID_TOKEN_MAX_AGE_SECS,
};
use tessera_core::jwt::{self, Registered};
use tessera_core::ApiError;
use tessera_durable_objects::http::{Failure, HttpResult};
use tessera_durable_objects::webcrypto::{verify_jws, JwsKey};
use worker::{Fetch, Method, Request};

const REFETCH_AFTER_SECS: u64 = 10;
const CACHE_TTL_SECS: u64 = 3600;
const DEFAULT_SCOPES: &str = "openid email profile";

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

#[derive(Deserialize)]
struct ExternalClaims {
    email: Option<String>,
    /// A boolean, or the string `"true"` from some providers.
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
    preferred_username: Option<String>,
    /// The client an ID token was issued to (when it has several audiences).
    azp: Option<String>,
}

/// The provider, as far as verifying its tokens goes.
struct Provider {
    issuer: String,
    jwks_url: String,
}

fn provider(ctx: &Ctx) -> HttpResult<Provider> {
    let missing = || ApiError::InvalidToken("no external identity provider is configured".into());
    Ok(Provider {
        issuer: ctx.var("OIDC_ISSUER").ok_or_else(missing)?,
        jwks_url: ctx.var("OIDC_JWKS_URL").ok_or_else(missing)?,
    })
}

/// The browser sign-in, when every var it needs is set.
pub fn browser_config(ctx: &Ctx) -> Option<OidcConfig> {
    ctx.var("OIDC_JWKS_URL")?;
    Some(OidcConfig {
        issuer: ctx.var("OIDC_ISSUER")?,
        authorization_endpoint: ctx.var("OIDC_AUTHORIZATION_ENDPOINT")?,
        token_endpoint: ctx.var("OIDC_TOKEN_ENDPOINT")?,
        client_id: ctx.var("OIDC_CLIENT_ID")?,
        scopes: ctx
            .var("OIDC_SCOPES")
            .unwrap_or_else(|| DEFAULT_SCOPES.into())
            .split_whitespace()
            .map(str::to_string)
            .collect(),
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
        // The runtime parses the address (the `url` crate here has no
        // Unicode host names: see functions/Cargo.toml).
        let req = Request::new(url, Method::Get)
            .map_err(|e| ApiError::Internal(format!("OIDC_JWKS_URL: {e}")))?;
        let mut resp = Fetch::Request(req).send().await?;
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

/// The key as WebCrypto imports it, once it meets the key policy: RSA keys of
/// 2048 to 4096 bits with the exponent 65537, or P-256 points.
fn jws_key<'a>(jwk: &'a Jwk, alg: &str) -> Result<JwsKey<'a>, ApiError> {
    let malformed = || ApiError::InvalidToken("provider key is malformed".into());
    match (alg, jwk.kty.as_str()) {
        ("RS256", "RSA") => {
            jwt::check_rsa_key(&b64(&jwk.n)?, &b64(&jwk.e)?)?;
            Ok(JwsKey::Rsa {
                n: jwk.n.as_deref().ok_or_else(malformed)?,
                e: jwk.e.as_deref().ok_or_else(malformed)?,
            })
        }
        ("ES256", "EC") if jwk.crv.as_deref() == Some("P-256") => {
            if b64(&jwk.x)?.len() != 32 || b64(&jwk.y)?.len() != 32 {
                return Err(malformed());
            }
            Ok(JwsKey::P256 {
                x: jwk.x.as_deref().ok_or_else(malformed)?,
                y: jwk.y.as_deref().ok_or_else(malformed)?,
            })
        }
        _ => Err(ApiError::InvalidToken(format!(
            "key type does not match {alg}"
        ))),
    }
}

/// What a token must satisfy beyond its signature and issuer.
struct Expect<'a> {
    audience: &'a str,
    /// Issued at most this long ago (ID tokens).
    max_age_secs: Option<u64>,
    nonce: Option<&'a str>,
}

/// A verified external token: the identity it names and its claims.
struct Verified {
    external_id: String,
    registered: Registered,
    extra: ExternalClaims,
}

async fn verify(ctx: &Ctx, token: &str, expect: Expect<'_>) -> HttpResult<Verified> {
    let p = provider(ctx)?;
    let token = jwt::parse(token)?;
    let alg = token.header.alg.as_str();
    if alg != "RS256" && alg != "ES256" {
        return Err(ApiError::InvalidToken(format!("algorithm {alg} is not accepted")).into());
    }
    let kid = token
        .header
        .kid
        .as_deref()
        .ok_or_else(|| ApiError::InvalidToken("token names no key (`kid`)".into()))?;
    let jwk = find_key(&p.jwks_url, kid).await?;
    if !verify_jws(
        jws_key(&jwk, alg)?,
        token.signing_input(),
        token.signature(),
    )
    .await?
    {
        return Err(ApiError::InvalidToken("token signature does not match".into()).into());
    }
    let registered: Registered = token.claims()?;
    let now = now_secs();
    registered.check(&jwt::Expect {
        issuer: &p.issuer,
        audience: expect.audience,
        now,
        leeway_secs: 30,
        max_age_secs: expect.max_age_secs,
        nonce: expect.nonce,
    })?;
    check_external_expiry(registered.exp, now)?;
    let subject = registered
        .sub
        .clone()
        .ok_or_else(|| ApiError::InvalidToken("token has no subject".into()))?;
    Ok(Verified {
        external_id: format!("{}|{subject}", p.issuer),
        registered,
        extra: token.claims()?,
    })
}

/// Our user for a verified identity, created the first time it is seen.
async fn provision(ctx: &Ctx, verified: Verified) -> HttpResult<String> {
    let db = ctx.db()?;
    let external_id = &verified.external_id;
    let find = || async {
        db.prepare("SELECT id FROM users WHERE external_id = ?1")
            .bind(&[arg(external_id)])?
            .first::<String>(Some("id"))
            .await
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let extra = verified.extra;
    let email = verified_email(extra.email.as_deref(), extra.email_verified.as_ref());
    let name = [extra.name, extra.preferred_username, email.clone()]
        .into_iter()
        .flatten()
        .find_map(|n| validate_display_name(&n).ok())
        .unwrap_or_else(|| "User".to_string());
    let now = now_secs();
    // An email already used by another account is not linked: that would let
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
        arg(external_id),
        arg(now),
    ])?
    .run()
    .await?;
    find()
        .await?
        .ok_or_else(|| ApiError::Internal("provisioned user not found".into()).into())
}

/// A bearer token from the provider: our user, and when the token was issued.
pub struct External {
    pub user_id: String,
    pub issued_at: Option<u64>,
}

/// Verifies a provider token presented as a bearer token and returns our user
/// for it, creating the user the first time this identity is seen.
pub async fn user_for_token(ctx: &Ctx, token: &str) -> HttpResult<External> {
    let audience = ctx.var("OIDC_AUDIENCE").ok_or_else(|| {
        ApiError::InvalidToken("provider tokens are not accepted as bearer tokens here".into())
    })?;
    let verified = verify(
        ctx,
        token,
        Expect {
            audience: &audience,
            max_age_secs: None,
            nonce: None,
        },
    )
    .await?;
    let issued_at = verified.registered.iat;
    Ok(External {
        user_id: provision(ctx, verified).await?,
        issued_at,
    })
}

/// Verifies an ID token the browser got from the provider for our client:
/// issued to us, just now, for the sign-in the browser started (`nonce`).
async fn verify_id_token(ctx: &Ctx, id_token: &str, nonce: Option<&str>) -> HttpResult<Verified> {
    let client_id = ctx.var("OIDC_CLIENT_ID").ok_or_else(|| {
        ApiError::InvalidToken("sign-in with an identity provider is not configured here".into())
    })?;
    let verified = verify(
        ctx,
        id_token,
        Expect {
            audience: &client_id,
            max_age_secs: Some(ID_TOKEN_MAX_AGE_SECS),
            nonce,
        },
    )
    .await?;
    if verified
        .extra
        .azp
        .as_deref()
        .is_some_and(|azp| azp != client_id)
    {
        return Err(ApiError::InvalidToken("ID token was issued to another client".into()).into());
    }
    Ok(verified)
}

/// `POST /auth/oidc`: the user an ID token signs in (provisioned on first sight).
pub async fn sign_in(ctx: &Ctx, id_token: &str, nonce: Option<&str>) -> HttpResult<String> {
    let verified = verify_id_token(ctx, id_token, nonce).await?;
    provision(ctx, verified).await
}

/// Proof, for an account that signs in through the provider, that its owner
/// just signed in there: a fresh ID token for the same identity.
/// A refusal is 403: a 401 would tell the client its access token is bad.
pub async fn prove(ctx: &Ctx, user_id: &str, id_token: &str) -> HttpResult<()> {
    let verified = verify_id_token(ctx, id_token, None)
        .await
        .map_err(|Failure(e)| match e {
            ApiError::InvalidToken(why) => ApiError::forbidden(format!("id_token: {why}")).into(),
            other => Failure(other),
        })?;
    let owner: Option<String> = ctx
        .db()?
        .prepare("SELECT id FROM users WHERE external_id = ?1")
        .bind(&[arg(&verified.external_id)])?
        .first(Some("id"))
        .await?;
    if owner.as_deref() != Some(user_id) {
        return Err(ApiError::forbidden("id_token is for another account").into());
    }
    Ok(())
}
