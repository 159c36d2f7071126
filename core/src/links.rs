//! Short-lived signed links to a file's bytes, for what cannot send a bearer
//! header (`<img src>`, `<a download>`): an HMAC-SHA256 over the file, the
//! person the link was made for (so that every use can be traced to them and
//! their membership checked again) and its expiry, under a key derived from
//! `JWT_SECRET` for this purpose only. A link is no capability of its own:
//! the Worker serves it only while that person is still a member of the
//! file's room, so a removed member's links stop working at once.

use crate::hmac::{constant_time_eq, hmac_sha256};
use crate::ids::is_valid_path_param;
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// How long a link works.
pub const LINK_TTL_SECS: u64 = 10 * 60;
/// Domain separation: the link key is not the token-signing key.
const KEY_CONTEXT: &[u8] = b"tessera file link v1";

/// The key links are signed with.
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// Derives the link key from the deployment's secret.
    pub fn derive(secret: &[u8]) -> Self {
        LinkKey(hmac_sha256(secret, &[KEY_CONTEXT]))
    }

    /// Ids and expiry, newline-separated: ids are path parameters (no
    /// newlines), so no two inputs share a message.
    fn mac(&self, file_id: &str, user_id: &str, expires_at: u64) -> [u8; 32] {
        let message = format!("{file_id}\n{user_id}\n{expires_at}");
        hmac_sha256(&self.0, &[message.as_bytes()])
    }
}

/// `POST /api/v1/files/{id}/link`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLink {
    /// Relative to the API's origin; `&download=1` may be appended.
    pub url: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A link for `user_id` to `file_id`, valid from `now` for [`LINK_TTL_SECS`].
pub fn sign(key: &LinkKey, file_id: &str, user_id: &str, now: u64) -> FileLink {
    let expires_at = now + LINK_TTL_SECS;
    let sig = URL_SAFE_NO_PAD.encode(key.mac(file_id, user_id, expires_at));
    FileLink {
        url: format!("/api/v1/files/{file_id}/content?exp={expires_at}&uid={user_id}&sig={sig}"),
        expires_at,
    }
}

/// The link parameters of a content request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkParams {
    pub exp: Option<String>,
    pub uid: Option<String>,
    pub sig: Option<String>,
}

impl LinkParams {
    pub fn from_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = LinkParams::default();
        for (k, v) in pairs {
            let slot = match k {
                "exp" => &mut p.exp,
                "uid" => &mut p.uid,
                "sig" => &mut p.sig,
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        p
    }

    /// Whether the request means to use a link (then the link decides, not
    /// a bearer token).
    pub fn present(&self) -> bool {
        self.exp.is_some() || self.uid.is_some() || self.sig.is_some()
    }
}

/// Checks a link to `file_id` at `now`; returns the user it was made for.
/// The signature is checked before the expiry, so an altered link is
/// `link_invalid` whatever its `exp` says.
pub fn verify(
    key: &LinkKey,
    file_id: &str,
    params: &LinkParams,
    now: u64,
) -> Result<String, ApiError> {
    let (Some(exp), Some(uid), Some(sig)) = (&params.exp, &params.uid, &params.sig) else {
        return Err(ApiError::LinkInvalid("it needs exp, uid and sig"));
    };
    let expires_at: u64 = exp
        .parse()
        .map_err(|_| ApiError::LinkInvalid("exp is not a time"))?;
    if !is_valid_path_param(uid) {
        return Err(ApiError::LinkInvalid("uid is not a user id"));
    }
    let given = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| ApiError::LinkInvalid("sig is not base64url"))?;
    if !constant_time_eq(&given, &key.mac(file_id, uid, expires_at)) {
        return Err(ApiError::LinkInvalid("the signature does not match"));
    }
    if now > expires_at {
        return Err(ApiError::LinkExpired);
    }
    Ok(uid.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn params(url: &str) -> LinkParams {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let pairs: Vec<(&str, &str)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        LinkParams::from_query(pairs.into_iter())
    }

    fn key() -> LinkKey {
        LinkKey::derive(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_link_names_its_user_and_works_until_it_expires() {
        let link = sign(&key(), "f1", "u1", NOW);
        assert_eq!(link.expires_at, NOW + LINK_TTL_SECS);
        assert!(link.url.starts_with("/api/v1/files/f1/content?exp="));
        let p = params(&link.url);
        assert!(p.present());
        assert_eq!(verify(&key(), "f1", &p, NOW).unwrap(), "u1");
        assert_eq!(verify(&key(), "f1", &p, link.expires_at).unwrap(), "u1");
        assert_eq!(
            verify(&key(), "f1", &p, link.expires_at + 1)
                .unwrap_err()
                .code(),
            "link_expired"
        );
    }

    #[test]
    fn altered_links_are_invalid() {
        let link = sign(&key(), "f1", "u1", NOW);
        let good = params(&link.url);
        let invalid = |p: &LinkParams, file: &str, key: &LinkKey| {
            let e = verify(key, file, p, NOW).unwrap_err();
            assert_eq!((e.status(), e.code()), (403, "link_invalid"), "{p:?}");
        };
        invalid(&good, "f2", &key());
        invalid(
            &good,
            "f1",
            &LinkKey::derive(b"another secret of at least 32 bytes"),
        );
        let later = (link.expires_at + 3600).to_string();
        for p in [
            LinkParams {
                exp: Some(later),
                ..good.clone()
            },
            LinkParams {
                uid: Some("u2".into()),
                ..good.clone()
            },
            LinkParams {
                sig: Some("AAAA".into()),
                ..good.clone()
            },
            LinkParams {
                sig: Some("not base64!".into()),
                ..good.clone()
            },
            LinkParams {
                uid: Some("u1\nx".into()),
                ..good.clone()
            },
            LinkParams {
                exp: Some("soon".into()),
                ..good.clone()
            },
            LinkParams {
                sig: None,
                ..good.clone()
            },
        ] {
            invalid(&p, "f1", &key());
        }
        // An expired link that was also altered says invalid, not expired.
        let e = verify(
            &key(),
            "f1",
            &LinkParams {
                uid: Some("u2".into()),
                ..good
            },
            NOW + LINK_TTL_SECS * 10,
        )
        .unwrap_err();
        assert_eq!(e.code(), "link_invalid");
    }

    #[test]
    fn requests_without_link_parameters_use_the_bearer_token() {
        let p = LinkParams::from_query([("download", "1"), ("range", "x")].into_iter());
        assert!(!p.present());
    }

    #[test]
    fn the_link_key_is_not_the_secret() {
        // HMAC-SHA256 test case 2 of RFC 4231, which the derivation relies on.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(key().0.as_slice(), b"0123456789abcdef0123456789abcdef");
    }
}
