//! Accounts and credentials: what a valid email, password and display name are, how
//! a password hash is recorded, token lifetimes, how refresh tokens are stored and
//! carried (JSON, or the browser's cookie), when failed sign-ins lock an account
//! for a while, and what an external identity provider's tokens must claim.
//! The key derivation itself runs in the Worker (WebCrypto, native speed); its
//! parameters live in the stored record so they can be raised later.

use crate::ApiError;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_CHARS: usize = 256;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
pub const EMAIL_MAX_LEN: usize = 254;
/// Workers' WebCrypto refuses PBKDF2 above 100,000 iterations.
pub const PBKDF2_ITERATIONS: u32 = 100_000;
pub const SALT_LEN: usize = 16;
pub const HASH_LEN: usize = 32;
pub const ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;
pub const REFRESH_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;
pub const TOKEN_ISSUER: &str = "tessera";
pub const TOKEN_AUDIENCE: &str = "tessera-api";

/// A request with `x-tessera-session: cookie` gets its refresh token only as the
/// `tessera_refresh` cookie (browsers: script cannot read it), not in the JSON.
pub const SESSION_MODE_HEADER: &str = "x-tessera-session";
pub const COOKIE_MODE: &str = "cookie";
pub const REFRESH_COOKIE: &str = "tessera_refresh";
/// The only routes that read the cookie; it is sent nowhere else.
pub const REFRESH_COOKIE_PATHS: [&str; 2] = ["/api/v1/auth/refresh", "/api/v1/auth/logout"];

/// Failed password sign-ins one email may have in a window (from any number of
/// addresses) before every sign-in to it waits for the window to end.
pub const SIGN_IN_FAILURES_MAX: u32 = 10;
pub const SIGN_IN_WINDOW_SECS: u64 = 15 * 60;

/// External tokens must expire, and within this long: a provider token that
/// claims to live longer is refused rather than trusted for its lifetime.
pub const EXTERNAL_TOKEN_MAX_LIFETIME_SECS: u64 = 24 * 3600;
/// An ID token exchanged for a session (or proving who sets a password) must be
/// this fresh: it is the proof of a sign-in that just happened.
pub const ID_TOKEN_MAX_AGE_SECS: u64 = 10 * 60;

/// Lower-cased and trimmed, so that uniqueness is case-insensitive.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let bad = || ApiError::invalid("email is not a valid address");
    if email.is_empty() || email.len() > EMAIL_MAX_LEN {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let clean = |s: &str| {
        !s.is_empty() && !s.contains('@') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if !clean(local) || !clean(domain) || !domain.contains('.') || domain.ends_with('.') {
        return Err(bad());
    }
    Ok(email)
}

pub fn validate_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&n) {
        return Err(ApiError::invalid(format!(
            "password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
        )));
    }
    Ok(())
}

/// Trimmed; 1 to 64 characters with no control characters.
pub fn validate_display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > DISPLAY_NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "display_name must be 1 to {DISPLAY_NAME_MAX_CHARS} printable characters"
        )));
    }
    Ok(name.to_string())
}

/// A stored password hash: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecord {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl PasswordRecord {
    const SCHEME: &'static str = "pbkdf2-sha256";

    pub fn encode(&self) -> String {
        format!(
            "{}${}${}${}",
            Self::SCHEME,
            self.iterations,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }

    pub fn decode(stored: &str) -> Option<Self> {
        let mut parts = stored.split('$');
        if parts.next()? != Self::SCHEME {
            return None;
        }
        let iterations = parts.next()?.parse().ok().filter(|&i| i > 0)?;
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        if parts.next().is_some() || salt.is_empty() || hash.is_empty() {
            return None;
        }
        Some(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// Constant-time comparison of a freshly derived hash with the stored one.
    pub fn matches(&self, derived: &[u8]) -> bool {
        constant_time_eq(&self.hash, derived)
    }

    /// True when the record was made with weaker parameters than today's.
    pub fn needs_rehash(&self) -> bool {
        self.iterations < PBKDF2_ITERATIONS
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refresh tokens are stored only as their SHA-256, so a database leak yields no
/// usable token.
pub fn refresh_token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How one signs in here (`GET /auth/config`): passwords always, and the
/// identity provider when the browser can use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    pub password: bool,
    pub oidc: Option<OidcConfig>,
}

/// What the browser needs for Authorization Code + PKCE with the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcConfig {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// The `Set-Cookie` values that hand a browser its refresh token: one per route
/// that reads it, each living as long as the token.
pub fn refresh_cookies(token: &str) -> Vec<String> {
    cookies(token, REFRESH_TOKEN_TTL_SECS)
}

/// The `Set-Cookie` values that make a browser forget its refresh token.
pub fn cleared_refresh_cookies() -> Vec<String> {
    cookies("", 0)
}

fn cookies(value: &str, max_age: u64) -> Vec<String> {
    REFRESH_COOKIE_PATHS
        .iter()
        .map(|path| {
            format!(
                "{REFRESH_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
            )
        })
        .collect()
}

/// The value of cookie `name` in a `Cookie` header (the first, if repeated).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether sign-in to an email must wait, given its failures in the window that
/// started at `window_start`: the error says how long.
pub fn check_sign_in_lock(failures: u32, window_start: u64, now: u64) -> Result<(), ApiError> {
    let ends = window_start.saturating_add(SIGN_IN_WINDOW_SECS);
    if failures >= SIGN_IN_FAILURES_MAX && now < ends {
        return Err(ApiError::SignInLocked {
            retry_after_secs: ends - now,
        });
    }
    Ok(())
}

/// An external token's lifetime: it must have `exp`, not too far ahead.
pub fn check_external_expiry(exp: Option<u64>, now: u64) -> Result<(), ApiError> {
    let exp = exp.ok_or_else(|| ApiError::InvalidToken("token has no expiry (`exp`)".into()))?;
    if exp > now.saturating_add(EXTERNAL_TOKEN_MAX_LIFETIME_SECS) {
        return Err(ApiError::InvalidToken(format!(
            "token expires more than {EXTERNAL_TOKEN_MAX_LIFETIME_SECS} s from now"
        )));
    }
    Ok(())
}

/// The email of an external identity, only when the provider says it verified
/// it (`email_verified`: `true`, or `"true"` as some providers send it).
pub fn verified_email(
    email: Option<&str>,
    email_verified: Option<&serde_json::Value>,
) -> Option<String> {
    let verified = match email_verified {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    email
        .filter(|_| verified)
        .and_then(|e| normalize_email(e).ok())
}

/// Whether a token issued at `iat` outlived a "sign out everywhere" (or a
/// password change) at `revoked_before`. Tokens without `iat` cannot show that
/// they came after, so they are refused once there was one.
pub fn revoked_by(iat: Option<u64>, revoked_before: Option<u64>) -> bool {
    match revoked_before {
        None => false,
        Some(at) => iat.is_none_or(|iat| iat <= at),
    }
}

/// The token from an `Authorization: Bearer …` header.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_case_insensitive() {
        assert_eq!(
            normalize_email("  Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for e in [
            "",
            "ada",
            "@x.org",
            "ada@",
            "ada@x",
            "a b@x.org",
            "a@b@c.org",
            "ada@x.",
        ] {
            assert!(normalize_email(e).is_err(), "{e:?} accepted");
        }
        let long = format!("{}@x.org", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn password_length_bounds_count_characters() {
        assert!(validate_password("123456789").is_err());
        assert!(validate_password("1234567890").is_ok());
        assert!(validate_password(&"é".repeat(256)).is_ok());
        assert!(validate_password(&"é".repeat(257)).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_printable() {
        assert_eq!(validate_display_name("  Ada ").unwrap(), "Ada");
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
        assert!(validate_display_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn password_records_round_trip_and_reject_junk() {
        let r = PasswordRecord {
            iterations: PBKDF2_ITERATIONS,
            salt: vec![1; SALT_LEN],
            hash: vec![2; HASH_LEN],
        };
        assert_eq!(PasswordRecord::decode(&r.encode()), Some(r.clone()));
        assert!(!r.needs_rehash());
        for junk in [
            "",
            "bcrypt$1$a$b",
            "pbkdf2-sha256$0$AQ$AQ",
            "pbkdf2-sha256$10$$AQ",
            "pbkdf2-sha256$10$AQ$AQ$x",
        ] {
            assert_eq!(PasswordRecord::decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn refresh_cookies_are_scoped_and_locked_down() {
        let set = refresh_cookies("abc");
        assert_eq!(set.len(), 2);
        for (cookie, path) in set.iter().zip(REFRESH_COOKIE_PATHS) {
            assert!(cookie.starts_with("tessera_refresh=abc; "), "{cookie}");
            assert!(cookie.contains(&format!("; Path={path};")), "{cookie}");
            assert!(cookie.contains(&format!("Max-Age={REFRESH_TOKEN_TTL_SECS}")));
            for flag in ["HttpOnly", "Secure", "SameSite=Strict"] {
                assert!(cookie.contains(flag), "{cookie} lacks {flag}");
            }
        }
        for cookie in cleared_refresh_cookies() {
            assert!(cookie.starts_with("tessera_refresh=; ") && cookie.contains("Max-Age=0;"));
        }
    }

    #[test]
    fn cookie_values_are_found_by_exact_name() {
        let h = "a=1; tessera_refresh_x=no; tessera_refresh=tok-en_1 ; z=2";
        assert_eq!(cookie_value(h, "tessera_refresh"), Some("tok-en_1"));
        assert_eq!(cookie_value("tessera_refresh=", "tessera_refresh"), None);
        assert_eq!(cookie_value("", "tessera_refresh"), None);
        assert_eq!(cookie_value("junk", "tessera_refresh"), None);
    }

    #[test]
    fn sign_in_locks_after_the_failures_and_until_the_window_ends() {
        let start = 1_000;
        assert!(check_sign_in_lock(SIGN_IN_FAILURES_MAX - 1, start, start + 1).is_ok());
        let e = check_sign_in_lock(SIGN_IN_FAILURES_MAX, start, start + 100).unwrap_err();
        assert_eq!((e.status(), e.code()), (429, "sign_in_locked"));
        assert_eq!(e.retry_after_secs(), Some(SIGN_IN_WINDOW_SECS - 100));
        assert!(check_sign_in_lock(u32::MAX, start, start + SIGN_IN_WINDOW_SECS).is_ok());
    }

    #[test]
    fn external_tokens_must_expire_and_soon() {
        let now = 10_000;
        assert_eq!(
            check_external_expiry(None, now).unwrap_err().code(),
            "invalid_token"
        );
        assert!(check_external_expiry(Some(now + 3600), now).is_ok());
        assert!(
            check_external_expiry(Some(now + EXTERNAL_TOKEN_MAX_LIFETIME_SECS + 1), now).is_err()
        );
    }

    #[test]
    fn only_verified_emails_are_taken() {
        use serde_json::json;
        let e = Some("Ada@Example.org");
        assert_eq!(
            verified_email(e, Some(&json!(true))).as_deref(),
            Some("ada@example.org")
        );
        assert_eq!(
            verified_email(e, Some(&json!("true"))).as_deref(),
            Some("ada@example.org")
        );
        for no in [json!(false), json!("false"), json!(1), json!(null)] {
            assert_eq!(verified_email(e, Some(&no)), None, "{no}");
        }
        assert_eq!(verified_email(e, None), None);
        assert_eq!(
            verified_email(Some("not an email"), Some(&json!(true))),
            None
        );
    }

    #[test]
    fn revocation_refuses_tokens_issued_until_then() {
        assert!(!revoked_by(Some(5), None));
        assert!(!revoked_by(None, None));
        assert!(revoked_by(Some(5), Some(5)));
        assert!(!revoked_by(Some(6), Some(5)));
        assert!(revoked_by(None, Some(5)));
    }

    proptest! {
        #[test]
        fn constant_time_eq_agrees_with_eq(a in proptest::collection::vec(any::<u8>(), 0..40),
                                           b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a));
        }

        #[test]
        fn normalized_emails_are_stable(s in "[a-zA-Z0-9._%+-]{1,20}@[a-zA-Z0-9-]{1,20}\\.[a-zA-Z]{2,6}") {
            let once = normalize_email(&s).unwrap();
            prop_assert_eq!(normalize_email(&once).unwrap(), once.clone());
            prop_assert_eq!(once, s.to_lowercase());
        }
    }
}
