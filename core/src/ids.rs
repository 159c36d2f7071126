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

#[cfg(test)]
mod tests {
    use super::*;

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
