//! Identifiers and opaque secrets. Randomness comes from the caller (the Worker
//! reads it from the platform's CSPRNG), so everything here stays deterministic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A 128-bit identifier as 32 lowercase hex characters.
pub fn id_from_bytes(bytes: [u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An opaque URL-safe secret (refresh tokens, invite codes).
pub fn secret_from_bytes(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Path parameters are ids, invite codes or names chosen by us: a strict charset
/// keeps them out of every other grammar (SQL, HTML, logs).
pub fn is_valid_path_param(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The largest sequence number or item id a request may name: they are
/// SQLite row ids, and clients read them as JavaScript numbers, exact up to
/// 2^53 - 1 (what the OpenAPI document says, so a larger one is refused
/// rather than silently rounded by a client).
pub const SAFE_ID_MAX: u64 = (1 << 53) - 1;

/// A query parameter that names a sequence number or item id.
pub fn parse_safe_id(s: &str) -> Option<u64> {
    s.parse().ok().filter(|n| *n <= SAFE_ID_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_queries_are_javascript_safe() {
        assert_eq!(parse_safe_id("0"), Some(0));
        assert_eq!(parse_safe_id("9007199254740991"), Some(SAFE_ID_MAX));
        // One past what a client reads exactly; and the rounded u64 maximum
        // that schema fuzzing sent (2^64 as a decimal float).
        assert_eq!(parse_safe_id("9007199254740992"), None);
        assert_eq!(parse_safe_id("18446744073709552000"), None);
        assert_eq!(parse_safe_id("-1"), None);
        assert_eq!(parse_safe_id("1e3"), None);
    }

    #[test]
    fn ids_are_hex_and_fixed_length() {
        let id = id_from_bytes([0xab; 16]);
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn path_params_reject_other_grammars() {
        assert!(is_valid_path_param("0123abcd"));
        assert!(!is_valid_path_param(""));
        assert!(!is_valid_path_param("a/b"));
        assert!(!is_valid_path_param("x' OR 1=1 --"));
        assert!(!is_valid_path_param(&"a".repeat(129)));
    }
}
