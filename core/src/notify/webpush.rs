//! Web Push (RFC 8030) with VAPID (RFC 8292) and message encryption
//! (RFC 8291): the subscription a browser hands over, the key schedule and
//! the `aes128gcm` record (RFC 8188) around the ciphertext, the VAPID JWT's
//! claims and the `Authorization` header, the notification's payload, and
//! what the push service's answer means. The elliptic-curve steps (ECDH with
//! a fresh key pair, the ES256 signature) and AES-128-GCM itself run in the
//! Worker through WebCrypto; this module is everything around them.

use super::inbox::Item;
use crate::hmac::{hkdf_expand32, hkdf_extract};
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A P-256 public key, uncompressed (`04 || x || y`).
pub const PUBLIC_KEY_LEN: usize = 65;
pub const AUTH_LEN: usize = 16;
pub const SALT_LEN: usize = 16;
/// One record holds the whole message: 4096 octets (the most a push service
/// must accept) less the 86-octet header, the tag and the padding delimiter.
pub const RECORD_SIZE: u32 = 4096;
pub const PAYLOAD_MAX: usize = 4096 - 86 - 16 - 1;
/// Subscriptions per person (browsers and devices).
pub const SUBSCRIPTIONS_MAX: usize = 20;
/// How long a push service keeps an undelivered message (seconds).
pub const TTL_SECS: u32 = 24 * 3600;
/// VAPID tokens live 12 hours (RFC 8292 allows at most 24).
pub const VAPID_LIFETIME_SECS: u64 = 12 * 3600;
pub const ENDPOINT_MAX: usize = 1024;

/// A browser's `PushSubscription.toJSON()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// A subscription's keys, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint: String,
    pub p256dh: [u8; PUBLIC_KEY_LEN],
    pub auth: [u8; AUTH_LEN],
}

impl Subscription {
    /// `allow_private` lets the endpoint be `http` or a local address (the
    /// tests' push service on loopback).
    pub fn target(&self, allow_private: bool) -> Result<Target, ApiError> {
        if self.endpoint.len() > ENDPOINT_MAX {
            return Err(ApiError::invalid("endpoint is too long"));
        }
        super::webhooks::validate_url(&self.endpoint, allow_private)
            .map_err(|_| ApiError::invalid("endpoint must be a push service's https URL"))?;
        let p256dh: [u8; PUBLIC_KEY_LEN] = b64(&self.keys.p256dh)
            .and_then(|k| k.try_into().ok())
            .filter(|k: &[u8; PUBLIC_KEY_LEN]| k[0] == 4)
            .ok_or_else(|| ApiError::invalid("keys.p256dh must be an uncompressed P-256 key"))?;
        let auth: [u8; AUTH_LEN] = b64(&self.keys.auth)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| ApiError::invalid("keys.auth must be 16 bytes"))?;
        Ok(Target {
            endpoint: self.endpoint.clone(),
            p256dh,
            auth,
        })
    }
}

/// The content-encryption key and nonce of RFC 8291 §3.4 (single record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentKeys {
    pub cek: [u8; 16],
    pub nonce: [u8; 12],
}

/// Derives the keys from the ECDH secret between the server's one-time key
/// (`as_public`) and the subscription's (`ua_public`), its auth secret and
/// the record's salt.
pub fn content_keys(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ContentKeys {
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let prk_key = hkdf_extract(auth, ecdh_secret);
    let ikm = hkdf_expand32(&prk_key, &key_info, 32);
    let prk = hkdf_extract(salt, &ikm);
    let mut cek = [0u8; 16];
    cek.copy_from_slice(&hkdf_expand32(&prk, b"Content-Encoding: aes128gcm\0", 16));
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&hkdf_expand32(&prk, b"Content-Encoding: nonce\0", 12));
    ContentKeys { cek, nonce }
}

/// The plaintext of the single (and so last) record: the payload and the
/// delimiter `0x02`, no further padding.
pub fn pad(payload: &[u8]) -> Result<Vec<u8>, ApiError> {
    if payload.len() > PAYLOAD_MAX {
        return Err(ApiError::invalid(format!(
            "push payloads are at most {PAYLOAD_MAX} bytes"
        )));
    }
    let mut p = payload.to_vec();
    p.push(2);
    Ok(p)
}

/// The message body: the RFC 8188 header (salt, record size, key id = the
/// server's one-time public key) and the AES-GCM ciphertext with its tag.
pub fn record(
    salt: &[u8; SALT_LEN],
    as_public: &[u8; PUBLIC_KEY_LEN],
    ciphertext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(86 + ciphertext.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(PUBLIC_KEY_LEN as u8);
    out.extend_from_slice(as_public);
    out.extend_from_slice(ciphertext);
    out
}

/// The origin of a push endpoint (`aud` of the VAPID token).
pub fn audience(endpoint: &str) -> Result<String, ApiError> {
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| ApiError::invalid("endpoint is not a URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(ApiError::invalid("endpoint has no host"));
    }
    Ok(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// The JWS signing input of a VAPID token for `endpoint`:
/// `base64url(header).base64url(claims)` with `aud`, `exp`, `sub`.
pub fn vapid_signing_input(
    endpoint: &str,
    subject: &str,
    now_secs: u64,
) -> Result<String, ApiError> {
    let header = r#"{"typ":"JWT","alg":"ES256"}"#;
    let claims = serde_json::json!({
        "aud": audience(endpoint)?,
        "exp": now_secs + VAPID_LIFETIME_SECS,
        "sub": subject,
    });
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    ))
}

/// `Authorization: vapid t=<jwt>, k=<public key>` from the signing input and
/// the 64-byte `r || s` signature (WebCrypto's ECDSA output, JWS's format).
pub fn vapid_authorization(signing_input: &str, signature: &[u8], public_key: &[u8]) -> String {
    format!(
        "vapid t={signing_input}.{}, k={}",
        URL_SAFE_NO_PAD.encode(signature),
        URL_SAFE_NO_PAD.encode(public_key)
    )
}

/// The VAPID key pair from `VAPID_PUBLIC_KEY` (base64url, uncompressed) and
/// `VAPID_PRIVATE_KEY` (base64url of the 32-byte scalar), as the JWK that
/// WebCrypto imports, and the public key's bytes.
pub fn vapid_jwk(
    public_b64: &str,
    private_b64: &str,
) -> Result<(serde_json::Value, Vec<u8>), ApiError> {
    let bad = |m: &str| ApiError::Internal(format!("VAPID keys: {m}"));
    let public = b64(public_b64)
        .filter(|k| k.len() == PUBLIC_KEY_LEN && k[0] == 4)
        .ok_or_else(|| bad("VAPID_PUBLIC_KEY is not an uncompressed P-256 key"))?;
    let d = b64(private_b64)
        .filter(|k| k.len() == 32)
        .ok_or_else(|| bad("VAPID_PRIVATE_KEY is not 32 bytes of base64url"))?;
    let jwk = serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        "d": URL_SAFE_NO_PAD.encode(&d),
        "ext": false,
    });
    Ok((jwk, public))
}

/// What the service worker shows. Cut to fit one record.
pub fn notification(item: &Item, room_name: &str) -> Vec<u8> {
    let who = item.item.actor_name.as_deref().unwrap_or("Tessera");
    let title = match item.item.kind {
        super::inbox::Kind::Mention => format!("{who} mentioned you in {room_name}"),
        super::inbox::Kind::Reply => format!("{who} replied in {room_name}"),
        super::inbox::Kind::ApprovalRequested => format!("Approval requested in {room_name}"),
        _ => room_name.to_string(),
    };
    let mut body: String = item.item.text.clone();
    loop {
        let json = serde_json::json!({
            "title": title,
            "body": body,
            "url": item.link,
            "tag": item.item.key(),
            "item_id": item.id,
        })
        .to_string();
        if json.len() <= PAYLOAD_MAX || body.is_empty() {
            return json.into_bytes();
        }
        let keep = body.chars().count() / 2;
        body = body.chars().take(keep).collect();
    }
}

/// What to do after the push service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 404 or 410: the subscription expired or was withdrawn; forget it.
    Gone,
    /// Anything else: logged; the message is lost for this device (the
    /// inbox still has it).
    Failed,
}

pub const fn outcome(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{Aead, KeyInit};

    fn d(s: &str) -> Vec<u8> {
        b64(s).unwrap()
    }

    /// RFC 8291 §5 and Appendix A: the same keys and salt give the same bytes.
    #[test]
    fn rfc8291_worked_example() {
        let as_private = d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let as_public = d("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8");
        let ua_public = d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = d("BTBZMqHH6r4Tts7J_aSIgg");
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        // The ECDH step (WebCrypto's in the Worker).
        let secret = p256::SecretKey::from_slice(&as_private).unwrap();
        let ua = p256::PublicKey::from_sec1_bytes(&ua_public).unwrap();
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), ua.as_affine());
        let shared = shared.raw_secret_bytes().to_vec();
        assert_eq!(shared, d("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"));
        let keys = content_keys(&shared, &auth, &ua_public, &as_public, &salt);
        assert_eq!(keys.cek.to_vec(), d("oIhVW04MRdy2XN9CiKLxTg"));
        assert_eq!(keys.nonce.to_vec(), d("4h_95klXJ5E_qnoN"));
        // AES-128-GCM (WebCrypto's in the Worker).
        let plaintext = pad(b"When I grow up, I want to be a watermelon").unwrap();
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&keys.cek).unwrap();
        let ct = cipher
            .encrypt(&aes_gcm::Nonce::from(keys.nonce), plaintext.as_slice())
            .unwrap();
        let body = record(&salt, &as_public.clone().try_into().unwrap(), &ct);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    /// RFC 8292: the token's claims, and a signature over the signing input
    /// that verifies with the key sent in `k=`.
    #[test]
    fn vapid_tokens_verify_with_the_announced_key() {
        use p256::ecdsa::signature::{Signer, Verifier};
        let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public = signing
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec();
        let input = vapid_signing_input(
            "https://push.example.net/p/abc?x=1",
            "mailto:ops@t.example",
            1_000,
        )
        .unwrap();
        let sig: p256::ecdsa::Signature = signing.sign(input.as_bytes());
        let header = vapid_authorization(&input, &sig.to_bytes(), &public);
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        let (signed, sig64) = t.rsplit_once('.').unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&d(k)).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&d(sig64)).unwrap();
        key.verify(signed.as_bytes(), &sig).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&d(signed.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1_000 + VAPID_LIFETIME_SECS);
        assert_eq!(claims["sub"], "mailto:ops@t.example");
        let (jwk, pubkey) = vapid_jwk(k, &URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        assert_eq!(pubkey, public);
        assert_eq!(jwk["crv"], "P-256");
        assert!(vapid_jwk("AAAA", "AAAA").is_err());
    }

    #[test]
    fn subscriptions_are_checked() {
        let good = serde_json::json!({
            "endpoint": "https://push.example.net/send/abc",
            "expirationTime": null,
            "keys": {
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg"
            }
        });
        let s: Subscription = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(s.target(false).unwrap().auth.len(), 16);
        let mut bad = good.clone();
        bad["keys"]["auth"] = "AAAA".into();
        assert!(serde_json::from_value::<Subscription>(bad)
            .unwrap()
            .target(false)
            .is_err());
        let mut local = good;
        local["endpoint"] = "http://127.0.0.1:9/p".into();
        let s: Subscription = serde_json::from_value(local).unwrap();
        assert!(s.target(false).is_err());
        assert!(s.target(true).is_ok());
    }

    #[test]
    fn payloads_fit_one_record() {
        assert_eq!(pad(b"x").unwrap(), vec![b'x', 2]);
        assert!(pad(&[0; PAYLOAD_MAX + 1]).is_err());
        let item = Item {
            id: 3,
            item: super::super::inbox::NewItem {
                kind: super::super::inbox::Kind::Mention,
                room_id: "r1".into(),
                subject: "4".into(),
                actor: None,
                actor_name: Some("Ada".into()),
                text: "é".repeat(3000),
                at: 0,
            },
            link: "/rooms/r1?message=4".into(),
            read: false,
        };
        let n = notification(&item, "Ops");
        assert!(n.len() <= PAYLOAD_MAX);
        let v: serde_json::Value = serde_json::from_slice(&n).unwrap();
        assert_eq!(v["url"], "/rooms/r1?message=4");
        assert_eq!(outcome(201), Outcome::Delivered);
        assert_eq!(outcome(410), Outcome::Gone);
        assert_eq!(outcome(404), Outcome::Gone);
        assert_eq!(outcome(429), Outcome::Failed);
        assert_eq!(
            audience("https://Push.Example.net:8443/x").unwrap(),
            "https://push.example.net:8443"
        );
    }
}
