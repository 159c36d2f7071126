//! Compact JSON Web Tokens (RFC 7519 over RFC 7515): splitting and decoding a
//! token, the registered-claim checks (issuer, audience, times, nonce), HS256
//! signing and verification, and the key policy for a provider's RSA keys.
//!
//! A general-purpose JWT crate brought every algorithm it knows (RSA, four
//! curves, post-quantum signatures) into the Worker's bundle; Tessera needs
//! HS256 for its own tokens, on the HMAC it already has, and RS256/ES256 for
//! providers' tokens, whose signatures the Worker checks through WebCrypto
//! (`tessera_durable_objects::webcrypto::verify_jws`). The checks follow what
//! that crate did, so tokens issued before the change stay valid.

use crate::hmac::{constant_time_eq, hmac_sha256};
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

/// Longest token accepted at all.
pub const MAX_TOKEN_LEN: usize = 1_000_000;
/// Longest encoded header accepted (it is decoded before any signature check).
pub const MAX_HEADER_LEN: usize = 8192;
/// The RSA moduli accepted from a provider, in bits.
pub const RSA_MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::InvalidToken(why.into())
}

fn b64(part: &str) -> Result<Vec<u8>, ApiError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid("token is not base64url"))
}

/// The JOSE header fields Tessera reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

/// A token split into its parts, its header decoded; nothing is verified yet.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    pub header: Header,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

/// Splits and decodes `token`. A header naming critical extensions (none is
/// understood) or a type other than a JWT is refused.
pub fn parse(token: &str) -> Result<Token<'_>, ApiError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a JWT"));
    };
    if header.len() > MAX_HEADER_LEN {
        return Err(invalid("token header is too large"));
    }
    let decoded: Header =
        serde_json::from_slice(&b64(header)?).map_err(|_| invalid("not a JWT"))?;
    if decoded.crit.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(invalid("token names critical extensions"));
    }
    if let Some(typ) = &decoded.typ {
        let typ = typ.to_ascii_uppercase();
        if typ != "JWT" && !typ.ends_with("+JWT") {
            return Err(invalid("token is not a JWT"));
        }
    }
    Ok(Token {
        header: decoded,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature: b64(signature)?,
        payload: b64(payload)?,
    })
}

impl Token<'_> {
    /// The bytes the signature covers (`header.payload`).
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The payload as `C`; call only after the signature was verified.
    pub fn claims<C: DeserializeOwned>(&self) -> Result<C, ApiError> {
        serde_json::from_slice(&self.payload).map_err(|e| invalid(format!("token claims: {e}")))
    }

    /// Checks an HS256 signature under `key`.
    pub fn verify_hs256(&self, key: &[u8]) -> Result<(), ApiError> {
        if self.header.alg != "HS256" {
            return Err(invalid("token is not HS256"));
        }
        let mac = hmac_sha256(key, &[self.signing_input()]);
        if !constant_time_eq(&mac, &self.signature) {
            return Err(invalid("token signature does not match"));
        }
        Ok(())
    }
}

/// `{header}.{claims}.{HMAC-SHA256}` under `key`.
pub fn sign_hs256(key: &[u8], claims: &impl Serialize) -> Result<String, ApiError> {
    let payload =
        serde_json::to_vec(claims).map_err(|e| ApiError::Internal(format!("jwt claims: {e}")))?;
    let mut token = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let mac = hmac_sha256(key, &[token.as_bytes()]);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(mac));
    Ok(token)
}

/// `aud`: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// By hand rather than `untagged`, which would buffer the value first.
impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an audience or a list of audiences")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Audience, A::Error> {
                let mut all = Vec::new();
                while let Some(a) = seq.next_element()? {
                    all.push(a);
                }
                Ok(Audience::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// The registered claims Tessera reads or writes; times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "time"
    )]
    pub iat: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "time"
    )]
    pub exp: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "time"
    )]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// A NumericDate: integers, or fractions truncated to the second; never negative.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let secs = f64::deserialize(d)?;
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(serde::de::Error::custom(
            "a time must be a non-negative number",
        ));
    }
    Ok(Some(secs as u64))
}

/// What a verified token's registered claims must satisfy.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// Clock skew tolerated on `iat`, `nbf` and `exp`.
    pub leeway_secs: u64,
    /// When set, `iat` is required and may be at most this old.
    pub max_age_secs: Option<u64>,
    /// When set, `nonce` is required and must be equal.
    pub nonce: Option<&'a str>,
}

impl Registered {
    /// Checks the times, issuer, nonce and audience against `expect`.
    pub fn check(&self, expect: &Expect<'_>) -> Result<(), ApiError> {
        let (now, leeway) = (expect.now, expect.leeway_secs);
        if self.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(invalid("token was issued in the future"));
        }
        if let Some(max_age) = expect.max_age_secs {
            let iat = self.iat.ok_or_else(|| invalid("token has no issue time"))?;
            if now > iat && now - iat > max_age {
                return Err(invalid("token is too old"));
            }
        }
        if self.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(invalid("token is not valid yet"));
        }
        if self
            .exp
            .is_some_and(|exp| now < leeway || now - leeway > exp)
        {
            return Err(invalid("token has expired"));
        }
        match &self.iss {
            Some(iss) if iss == expect.issuer => {}
            Some(_) => return Err(invalid("token is from another issuer")),
            None => return Err(invalid("token names no issuer")),
        }
        if let Some(nonce) = expect.nonce {
            match &self.nonce {
                Some(n) if n == nonce => {}
                Some(_) => return Err(invalid("token nonce does not match")),
                None => return Err(invalid("token has no nonce")),
            }
        }
        match &self.aud {
            Some(aud) if aud.contains(expect.audience) => Ok(()),
            Some(_) => Err(invalid("token is for another audience")),
            None => Err(invalid("token names no audience")),
        }
    }
}

/// The key policy for a provider's RSA key (big-endian modulus and exponent):
/// 2048 to 4096 bits, an odd modulus and the exponent 65537.
pub fn check_rsa_key(n: &[u8], e: &[u8]) -> Result<(), ApiError> {
    let trim = |x: &[u8]| -> usize { x.iter().position(|&b| b != 0).unwrap_or(x.len()) };
    let n = &n[trim(n)..];
    let bits = match n.first() {
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if !RSA_MODULUS_BITS.contains(&bits) {
        return Err(invalid("provider key has an unsupported size"));
    }
    if n.last().is_some_and(|b| b & 1 == 0) || e[trim(e)..] != [1, 0, 1] {
        return Err(invalid("provider key is malformed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
    /// Issued by the `jwt-simple` 0.15 crate the Worker used before, with this
    /// secret: issued at 1,700,000,000, valid for 900 s, `sid` in the second.
    const OLD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDkwMCwibmJmIjoxNzAwMDAwMDAwLCJpc3MiOiJ0ZXNzZXJhIiwic3ViIjoidV9hbGljZSIsImF1ZCI6InRlc3NlcmEtYXBpIiwianRpIjoiajEifQ.Ui_s-y9zg8QjzaUCMRmUDLUa25i2zPBFw8jL5RrGTqk";
    const OLD_SID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDkwMCwibmJmIjoxNzAwMDAwMDAwLCJpc3MiOiJ0ZXNzZXJhIiwic3ViIjoidV9hbGljZSIsImF1ZCI6InRlc3NlcmEtYXBpIiwianRpIjoiajEiLCJzaWQiOiJzMSJ9.Ml0FRx1kMeIrNIBIcsOgoDmJhJkiPxHjKmoQn1Y6jy8";

    fn expect(now: u64) -> Expect<'static> {
        Expect {
            issuer: "tessera",
            audience: "tessera-api",
            now,
            leeway_secs: 5,
            max_age_secs: None,
            nonce: None,
        }
    }

    fn registered() -> Registered {
        Registered {
            iat: Some(1_700_000_000),
            exp: Some(1_700_000_900),
            nbf: Some(1_700_000_000),
            iss: Some("tessera".into()),
            sub: Some("u_alice".into()),
            aud: Some(Audience::One("tessera-api".into())),
            jti: Some("j1".into()),
            nonce: None,
        }
    }

    #[test]
    fn tokens_of_the_previous_crate_verify() {
        let t = parse(OLD).unwrap();
        t.verify_hs256(SECRET).unwrap();
        let claims: Registered = t.claims().unwrap();
        assert_eq!(claims, registered());
        claims.check(&expect(1_700_000_100)).unwrap();

        #[derive(Deserialize)]
        struct Sid {
            sid: String,
        }
        let t = parse(OLD_SID).unwrap();
        t.verify_hs256(SECRET).unwrap();
        assert_eq!(t.claims::<Sid>().unwrap().sid, "s1");
        assert_eq!(t.claims::<Registered>().unwrap(), registered());
    }

    #[test]
    fn signing_reproduces_the_previous_crate() {
        assert_eq!(sign_hs256(SECRET, &registered()).unwrap(), OLD);
    }

    #[test]
    fn altered_tokens_and_other_keys_are_refused() {
        let t = parse(OLD).unwrap();
        assert!(t
            .verify_hs256(b"another secret of thirty-two bytes!")
            .is_err());
        let (head, rest) = OLD.split_once('.').unwrap();
        let (_, sig) = rest.rsplit_once('.').unwrap();
        let mut forged = registered();
        forged.sub = Some("u_mallory".into());
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let forged = format!("{head}.{body}.{sig}");
        assert!(parse(&forged).unwrap().verify_hs256(SECRET).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "not.a.jwt",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJIUzI1NiJ9.e30.=",
            &format!("{}.e30.", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let head = |h: &str| format!("{}.e30.", URL_SAFE_NO_PAD.encode(h));
        assert!(parse(&head(r#"{"alg":"HS256","crit":["b64"]}"#)).is_err());
        assert!(parse(&head(r#"{"alg":"HS256","typ":"JOSE"}"#)).is_err());
        assert!(parse(&head(r#"{"alg":"HS256","typ":"at+jwt"}"#)).is_ok());
        assert!(parse(&head(r#"{"alg":"none"}"#))
            .unwrap()
            .verify_hs256(SECRET)
            .is_err());
        let long = format!("{}.e30.", "A".repeat(MAX_HEADER_LEN + 1));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn times_are_checked_with_leeway() {
        let c = registered();
        assert!(c.check(&expect(1_700_000_900 + 5)).is_ok());
        assert!(c.check(&expect(1_700_000_900 + 6)).is_err());
        assert!(c.check(&expect(1_700_000_000 - 5)).is_ok());
        assert!(c.check(&expect(1_700_000_000 - 6)).is_err());
        let fresh = |max| Expect {
            max_age_secs: Some(max),
            ..expect(1_700_000_300)
        };
        assert!(c.check(&fresh(300)).is_ok());
        assert!(c.check(&fresh(299)).is_err());
        let undated = Registered {
            iat: None,
            ..registered()
        };
        assert!(undated.check(&expect(1_700_000_100)).is_ok());
        assert!(undated.check(&fresh(300)).is_err());
    }

    #[test]
    fn issuer_audience_and_nonce_must_match() {
        let now = expect(1_700_000_100);
        let with = |f: fn(&mut Registered)| {
            let mut c = registered();
            f(&mut c);
            c.check(&now)
        };
        assert!(with(|c| c.iss = Some("evil".into())).is_err());
        assert!(with(|c| c.iss = None).is_err());
        assert!(with(|c| c.aud = None).is_err());
        assert!(with(|c| c.aud = Some(Audience::One("other".into()))).is_err());
        assert!(
            with(|c| c.aud = Some(Audience::Many(vec!["x".into(), "tessera-api".into()]))).is_ok()
        );
        assert!(with(|c| c.aud = Some(Audience::Many(vec!["x".into()]))).is_err());
        let nonce = Expect {
            nonce: Some("n1"),
            ..now.clone()
        };
        assert!(registered().check(&nonce).is_err());
        let mut c = registered();
        c.nonce = Some("n1".into());
        assert!(c.check(&nonce).is_ok());
        c.nonce = Some("n2".into());
        assert!(c.check(&nonce).is_err());
    }

    #[test]
    fn audiences_are_one_or_a_list() {
        let one: Registered = serde_json::from_str(r#"{"aud":"a"}"#).unwrap();
        assert_eq!(one.aud, Some(Audience::One("a".into())));
        let many: Registered = serde_json::from_str(r#"{"aud":["a","b"]}"#).unwrap();
        assert_eq!(many.aud, Some(Audience::Many(vec!["a".into(), "b".into()])));
        assert!(serde_json::from_str::<Registered>(r#"{"aud":7}"#).is_err());
        assert!(serde_json::from_str::<Registered>(r#"{"aud":[7]}"#).is_err());
    }

    #[test]
    fn times_may_be_fractions_but_not_negative() {
        let c: Registered = serde_json::from_str(r#"{"exp":1700000900.9}"#).unwrap();
        assert_eq!(c.exp, Some(1_700_000_900));
        assert!(serde_json::from_str::<Registered>(r#"{"exp":-1}"#).is_err());
        assert!(serde_json::from_str::<Registered>(r#"{"exp":"soon"}"#).is_err());
    }

    #[test]
    fn rsa_key_policy() {
        let mut n = vec![0x80; 256];
        n[255] = 0x81;
        assert!(check_rsa_key(&n, &[1, 0, 1]).is_ok());
        assert!(check_rsa_key(&[&[0, 0][..], &n].concat(), &[0, 1, 0, 1]).is_ok());
        assert!(check_rsa_key(&n[1..], &[1, 0, 1]).is_err(), "2040 bits");
        assert!(check_rsa_key(&[n.clone(), n.clone(), vec![1]].concat(), &[1, 0, 1]).is_err());
        assert!(check_rsa_key(&n, &[3]).is_err());
        n[255] = 0x80;
        assert!(check_rsa_key(&n, &[1, 0, 1]).is_err(), "even modulus");
        assert!(check_rsa_key(&[], &[1, 0, 1]).is_err());
    }
}
