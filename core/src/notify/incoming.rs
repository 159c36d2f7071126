//! Incoming webhooks: a secret URL per hook that posts into its room as a
//! named bot. Bodies are Slack-compatible: `{"text": ...}` as JSON, or the
//! same JSON in a form field `payload=` (Slack's older form); Slack's other
//! fields (`blocks`, `attachments`, `channel`, `icon_emoji`, …) are
//! accepted and ignored, so scripts written for Slack work unchanged.

use crate::ApiError;
use serde::Deserialize;

pub const NAME_MAX: usize = 64;
pub const HOOKS_PER_ROOM_MAX: usize = 20;
/// The secret part of a hook's URL: `<hook id>.<secret>`.
const TOKEN_SEPARATOR: char = '.';

#[derive(Debug, Deserialize)]
struct SlackBody {
    #[serde(default)]
    text: Option<String>,
    /// A per-message name (Slack's `username`) is shown after the hook's.
    #[serde(default)]
    username: Option<String>,
}

/// The message an incoming body asks for: its text, and the name to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub text: String,
    pub username: Option<String>,
}

/// Parses a body of `content_type`; `body_limit` is the room's message limit.
pub fn parse(content_type: &str, body: &[u8], body_limit: usize) -> Result<Incoming, ApiError> {
    let ct = content_type.to_ascii_lowercase();
    let json: Vec<u8> = if ct.starts_with("application/json") {
        body.to_vec()
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        form_field(body, "payload")
            .ok_or_else(|| ApiError::invalid("a form body needs a payload field"))?
            .into_bytes()
    } else {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    };
    let parsed: SlackBody =
        serde_json::from_slice(&json).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let text = parsed
        .text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("text is required (no_text)"))?;
    if text.len() > body_limit {
        return Err(ApiError::PayloadTooLarge { limit: body_limit });
    }
    Ok(Incoming {
        text,
        username: parsed
            .username
            .map(|u| u.chars().take(NAME_MAX).collect::<String>())
            .filter(|u| !u.trim().is_empty()),
    })
}

/// One `application/x-www-form-urlencoded` field, decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v)).flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The bot's display name: the hook's name, and the body's `username` after it.
pub fn display_name(hook_name: &str, username: Option<&str>) -> String {
    match username {
        Some(u) => format!("{hook_name} ({u})"),
        None => hook_name.to_string(),
    }
}

/// The bot's user id in the room: apart from every person's (32 hex).
pub fn bot_user_id(hook_id: &str) -> String {
    format!("hook-{hook_id}")
}

pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let n = name.trim().chars().count();
    if n == 0 || n > NAME_MAX {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {NAME_MAX} characters"
        )));
    }
    Ok(())
}

/// The token in a hook's URL.
pub fn token(hook_id: &str, secret: &str) -> String {
    format!("{hook_id}{TOKEN_SEPARATOR}{secret}")
}

/// Splits a URL token into the hook id and its secret.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once(TOKEN_SEPARATOR)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_bodies() {
        let i = parse(
            "application/json",
            br##"{"text":"deploy done","blocks":[],"channel":"#x"}"##,
            100,
        )
        .unwrap();
        assert_eq!(i.text, "deploy done");
        let f = parse(
            "application/x-www-form-urlencoded",
            b"payload=%7B%22text%22%3A%22hi+there%22%2C%22username%22%3A%22ci%22%7D",
            100,
        )
        .unwrap();
        assert_eq!(
            (f.text.as_str(), f.username.as_deref()),
            ("hi there", Some("ci"))
        );
        assert_eq!(
            parse("application/json", br#"{"text":"  "}"#, 100)
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        assert_eq!(
            parse("application/json", b"{", 100).unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse("text/plain", b"hi", 100).unwrap_err().code(),
            "unsupported_media_type"
        );
        assert_eq!(
            parse("application/json", br#"{"text":"0123456789"}"#, 5)
                .unwrap_err()
                .code(),
            "payload_too_large"
        );
        assert!(parse("application/x-www-form-urlencoded", b"payload=%zz", 100).is_err());
    }

    #[test]
    fn tokens_and_names() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(split_token(&token(id, "s3cret")), Some((id, "s3cret")));
        assert_eq!(split_token("short.s"), None);
        assert_eq!(split_token(id), None);
        assert_eq!(display_name("CI", Some("build 7")), "CI (build 7)");
        assert!(validate_name("").is_err() && validate_name("CI").is_ok());
        assert_eq!(bot_user_id(id).len(), 37);
    }
}
