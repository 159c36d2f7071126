//! Randomness and password key derivation through the platform's WebCrypto, which
//! runs PBKDF2 natively (far faster than the same loop in wasm).

use js_sys::{Array, Uint8Array};
use tessera_core::auth::{PasswordRecord, HASH_LEN, PBKDF2_ITERATIONS, SALT_LEN};
use tessera_core::ApiError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Pbkdf2Params, SubtleCrypto, WorkerGlobalScope};

pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(buf)
}

pub fn new_id() -> Result<String, ApiError> {
    Ok(tessera_core::ids::id_from_bytes(random_bytes::<16>()?))
}

pub fn new_secret() -> Result<String, ApiError> {
    Ok(tessera_core::ids::secret_from_bytes(&random_bytes::<32>()?))
}

fn js_err(what: &str) -> impl Fn(JsValue) -> ApiError + '_ {
    move |e| ApiError::Internal(format!("{what}: {e:?}"))
}

fn subtle() -> Result<SubtleCrypto, ApiError> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(scope.crypto().map_err(js_err("crypto"))?.subtle())
}

/// PBKDF2-HMAC-SHA256 of `password` with `salt`.
pub async fn pbkdf2(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let usages = Array::of1(&JsValue::from_str("deriveBits"));
    let key = JsFuture::from(
        subtle
            .import_key_with_str(
                "raw",
                &Uint8Array::from(password.as_bytes()),
                "PBKDF2",
                false,
                &usages,
            )
            .map_err(js_err("importKey"))?,
    )
    .await
    .map_err(js_err("importKey"))?;
    let params = Pbkdf2Params::new(
        "PBKDF2",
        &JsValue::from_str("SHA-256"),
        iterations,
        &Uint8Array::from(salt),
    );
    let bits = JsFuture::from(
        subtle
            .derive_bits_with_object(&params, &key.unchecked_into(), (HASH_LEN * 8) as u32)
            .map_err(js_err("deriveBits"))?,
    )
    .await
    .map_err(js_err("deriveBits"))?;
    Ok(Uint8Array::new(&bits).to_vec())
}

pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = random_bytes::<SALT_LEN>()?.to_vec();
    let hash = pbkdf2(password, &salt, PBKDF2_ITERATIONS).await?;
    Ok(PasswordRecord {
        iterations: PBKDF2_ITERATIONS,
        salt,
        hash,
    }
    .encode())
}

/// Checks a password against a stored record. With no record (unknown account) it
/// still derives once, so response time does not reveal whether an email exists.
pub async fn verify_password(password: &str, stored: Option<&str>) -> Result<bool, ApiError> {
    match stored.and_then(PasswordRecord::decode) {
        Some(record) => {
            let derived = pbkdf2(password, &record.salt, record.iterations).await?;
            Ok(record.matches(&derived))
        }
        None => {
            pbkdf2(password, &[0u8; SALT_LEN], PBKDF2_ITERATIONS).await?;
            Ok(false)
        }
    }
}
