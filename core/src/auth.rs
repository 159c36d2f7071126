//! Accounts and credentials: what a valid email, password and display name are, how
//! a password hash is recorded, token lifetimes, and how refresh tokens are stored.
//! The key derivation itself runs in the Worker (WebCrypto, native speed); its
//! parameters live in the stored record so they can be raised later.

use crate::ApiError;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
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
