//! Public-key and AES work through the platform's WebCrypto (no crypto crate
//! in the bundle): for Web Push a one-time ECDH P-256 key pair and shared
//! secret, AES-128-GCM and the ES256 signature of VAPID tokens (the key
//! schedule and message layout around them are in
//! `tessera_core::notify::webpush`); for sign-in the RS256/ES256 signatures
//! of identity providers' tokens (the rest of a JWT is `tessera_core::jwt`).

use js_sys::{Array, Object, Reflect, Uint8Array};
use tessera_core::notify::webpush::{self, Target, PUBLIC_KEY_LEN, SALT_LEN};
use tessera_core::ApiError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};

fn js_err(what: &'static str) -> impl Fn(JsValue) -> ApiError {
    move |e| ApiError::Internal(format!("WebCrypto {what}: {e:?}"))
}

fn subtle() -> Result<SubtleCrypto, ApiError> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(scope.crypto().map_err(js_err("crypto"))?.subtle())
}

/// `{name, ...}` as a JavaScript object.
fn algorithm(pairs: &[(&str, JsValue)]) -> Result<Object, ApiError> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).map_err(js_err("algorithm"))?;
    }
    Ok(o)
}

fn usages(list: &[&str]) -> Array {
    list.iter().map(|u| JsValue::from_str(u)).collect()
}

async fn wait(
    p: Result<js_sys::Promise, JsValue>,
    what: &'static str,
) -> Result<JsValue, ApiError> {
    JsFuture::from(p.map_err(js_err(what))?)
        .await
        .map_err(js_err(what))
}

fn bytes(v: &JsValue) -> Vec<u8> {
    Uint8Array::new(v).to_vec()
}

pub fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let buf = Uint8Array::new_with_length(N as u32);
    scope
        .crypto()
        .map_err(js_err("crypto"))?
        .get_random_values_with_array_buffer_view(&buf)
        .map_err(js_err("getRandomValues"))?;
    let mut out = [0u8; N];
    buf.copy_to(&mut out);
    Ok(out)
}

/// Encrypts `payload` for a subscription (RFC 8291): the whole request body.
pub async fn encrypt(target: &Target, payload: &[u8]) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let ecdh = algorithm(&[("name", "ECDH".into()), ("namedCurve", "P-256".into())])?;
    let pair = wait(
        subtle.generate_key_with_object(&ecdh, true, &usages(&["deriveBits"])),
        "generateKey",
    )
    .await?;
    let private: CryptoKey = Reflect::get(&pair, &"privateKey".into())
        .map_err(js_err("privateKey"))?
        .unchecked_into();
    let public: CryptoKey = Reflect::get(&pair, &"publicKey".into())
        .map_err(js_err("publicKey"))?
        .unchecked_into();
    let as_public: [u8; PUBLIC_KEY_LEN] =
        bytes(&wait(subtle.export_key("raw", &public), "exportKey").await?)
            .try_into()
            .map_err(|_| ApiError::Internal("exported key is not 65 bytes".into()))?;
    let ua_key: CryptoKey = wait(
        subtle.import_key_with_object(
            "raw",
            &Uint8Array::from(target.p256dh.as_slice()),
            &ecdh,
            false,
            &Array::new(),
        ),
        "importKey",
    )
    .await?
    .unchecked_into();
    let derive = algorithm(&[("name", "ECDH".into()), ("public", ua_key.into())])?;
    let shared = bytes(
        &wait(
            subtle.derive_bits_with_object(&derive, &private, 256),
            "deriveBits",
        )
        .await?,
    );
    let salt: [u8; SALT_LEN] = random()?;
    let keys = webpush::content_keys(&shared, &target.auth, &target.p256dh, &as_public, &salt);
    let aes: CryptoKey = wait(
        subtle.import_key_with_str(
            "raw",
            &Uint8Array::from(keys.cek.as_slice()),
            "AES-GCM",
            false,
            &usages(&["encrypt"]),
        ),
        "importKey",
    )
    .await?
    .unchecked_into();
    let gcm = algorithm(&[
        ("name", "AES-GCM".into()),
        ("iv", Uint8Array::from(keys.nonce.as_slice()).into()),
    ])?;
    let plaintext = webpush::pad(payload)?;
    let ciphertext = bytes(
        &wait(
            subtle.encrypt_with_object_and_u8_array(&gcm, &aes, &plaintext),
            "encrypt",
        )
        .await?,
    );
    Ok(webpush::record(&salt, &as_public, &ciphertext))
}

/// The VAPID `Authorization` header for `endpoint`.
pub async fn vapid(
    endpoint: &str,
    subject: &str,
    public_b64: &str,
    private_b64: &str,
    now_secs: u64,
) -> Result<String, ApiError> {
    let subtle = subtle()?;
    let (jwk, public) = webpush::vapid_jwk(public_b64, private_b64)?;
    let jwk: Object = js_sys::JSON::parse(&jwk.to_string())
        .map_err(js_err("jwk"))?
        .unchecked_into();
    let ecdsa = algorithm(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?;
    let key: CryptoKey = wait(
        subtle.import_key_with_object("jwk", &jwk, &ecdsa, false, &usages(&["sign"])),
        "importKey",
    )
    .await?
    .unchecked_into();
    let input = webpush::vapid_signing_input(endpoint, subject, now_secs)?;
    let params = algorithm(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?;
    let sig = bytes(
        &wait(
            subtle.sign_with_object_and_u8_array(&params, &key, input.as_bytes()),
            "sign",
        )
        .await?,
    );
    Ok(webpush::vapid_authorization(&input, &sig, &public))
}

/// An identity provider's public key: the JWK members WebCrypto imports
/// (base64url, as the provider's JWKS has them).
pub enum JwsKey<'a> {
    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
    Rsa { n: &'a str, e: &'a str },
    /// ES256 (ECDSA on P-256 with SHA-256).
    P256 { x: &'a str, y: &'a str },
}

/// Whether `signature` is the key's signature of `input` (a JWS signing input).
/// A key WebCrypto cannot import is the token's fault, not the server's.
pub async fn verify_jws(key: JwsKey<'_>, input: &[u8], signature: &[u8]) -> Result<bool, ApiError> {
    let subtle = subtle()?;
    let (jwk, import, verify) = match key {
        JwsKey::Rsa { n, e } => (
            algorithm(&[("kty", "RSA".into()), ("n", n.into()), ("e", e.into())])?,
            algorithm(&[
                ("name", "RSASSA-PKCS1-v1_5".into()),
                ("hash", "SHA-256".into()),
            ])?,
            algorithm(&[("name", "RSASSA-PKCS1-v1_5".into())])?,
        ),
        JwsKey::P256 { x, y } => (
            algorithm(&[
                ("kty", "EC".into()),
                ("crv", "P-256".into()),
                ("x", x.into()),
                ("y", y.into()),
            ])?,
            algorithm(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?,
            algorithm(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?,
        ),
    };
    let key: CryptoKey = wait(
        subtle.import_key_with_object("jwk", &jwk, &import, false, &usages(&["verify"])),
        "importKey",
    )
    .await
    .map_err(|_| ApiError::InvalidToken("provider key is malformed".into()))?
    .unchecked_into();
    let verified = wait(
        subtle.verify_with_object_and_u8_array_and_u8_array(&verify, &key, signature, input),
        "verify",
    )
    .await?;
    Ok(verified.as_bool() == Some(true))
}
