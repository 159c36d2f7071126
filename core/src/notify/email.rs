//! Email: the provider request (one HTTP-API kind that fits Workers,
//! configured like the AI providers), the messages (plain text and HTML,
//! every interpolated value escaped), and the one-click unsubscribe of
//! RFC 8058 (`List-Unsubscribe` with `List-Unsubscribe-Post`, and tokens
//! that name the person and what they leave, signed so they cannot be made
//! up for someone else).

use super::inbox::{Kind, NewItem};
use crate::hmac::{constant_time_eq, hmac_sha256};
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The provider, from `EMAIL_PROVIDER` (JSON). `kind: "resend"` speaks the
/// Resend API (`POST {base_url}/emails`, a bearer key, an `Idempotency-Key`),
/// which several providers and relays accept; `key` names the secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub kind: ProviderKind,
    pub base_url: String,
    pub key: String,
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Resend,
}

impl Provider {
    pub fn parse(json: &str) -> Result<Self, ApiError> {
        let p: Provider = serde_json::from_str(json)
            .map_err(|e| ApiError::Internal(format!("EMAIL_PROVIDER: {e}")))?;
        if !p.base_url.starts_with("https://") && !p.base_url.starts_with("http://") {
            return Err(ApiError::Internal(
                "EMAIL_PROVIDER: base_url must be http(s)".into(),
            ));
        }
        Ok(p)
    }

    /// The request for one email: (url, headers besides the key, JSON body).
    pub fn request(&self, m: &Email) -> (String, Vec<(&'static str, String)>, String) {
        let body = serde_json::json!({
            "from": self.from,
            "to": [m.to],
            "subject": m.subject,
            "text": m.text,
            "html": m.html,
            "headers": {
                "List-Unsubscribe": format!("<{}>", m.unsubscribe_url),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        });
        (
            format!("{}/emails", self.base_url.trim_end_matches('/')),
            vec![
                ("content-type", "application/json".into()),
                ("idempotency-key", m.key.clone()),
            ],
            body.to_string(),
        )
    }
}

/// Where an email stands in the mail log (the `email_log.status` column):
/// claimed by a task, sent, or settled without sending. Only ever written (a
/// claim looks at whether a row came back, not at its status), so no parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailStatus {
    Sending,
    Sent,
    Skipped,
}

impl EmailStatus {
    pub const ALL: [EmailStatus; 3] = [Self::Sending, Self::Sent, Self::Skipped];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Skipped => "skipped",
        }
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// Never two emails for one key (the provider is given it too).
    pub key: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub unsubscribe_url: String,
}

/// Escapes text for HTML element content and attribute values (the same
/// escape search snippets use).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::search::snippet::escape_html(s, &mut out);
    out
}

/// Header values must not carry line breaks (no header injection).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn page(title: &str, body_html: &str, unsubscribe_url: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;line-height:1.5\">{body_html}\
         <p style=\"color:#666;font-size:12px\"><a href=\"{u}\">Unsubscribe from these emails</a></p>\
         </body></html>",
        t = escape_html(title),
        u = escape_html(unsubscribe_url),
    )
}

/// The email for an item not seen in time.
pub fn for_item(
    to: &str,
    room_name: &str,
    item: &NewItem,
    app_url: &str,
    unsubscribe_url: &str,
) -> Email {
    let who = item.actor_name.clone().unwrap_or_else(|| "Someone".into());
    let subject = one_line(&match item.kind {
        Kind::Mention => format!("{who} mentioned you in {room_name}"),
        Kind::ApprovalRequested => format!("An approval waits for you in {room_name}"),
        Kind::Reply => format!("{who} replied to you in {room_name}"),
        _ => format!("New in {room_name}"),
    });
    let link = format!("{}{}", app_url.trim_end_matches('/'), item.link());
    let text = format!(
        "{subject}\n\n{}\n\nOpen it: {link}\n\nUnsubscribe: {unsubscribe_url}\n",
        item.text
    );
    let body_html = format!(
        "<p>{}</p><blockquote>{}</blockquote><p><a href=\"{}\">Open in Tessera</a></p>",
        escape_html(&subject),
        escape_html(&item.text),
        escape_html(&link),
    );
    Email {
        key: item.key(),
        to: to.to_string(),
        html: page(&subject, &body_html, unsubscribe_url),
        subject,
        text,
        unsubscribe_url: unsubscribe_url.to_string(),
    }
}

/// Rooms listed in one digest (those with the most unread items).
pub const DIGEST_ROOMS_MAX: usize = 20;

/// One room's line in a digest: its unread inbox items, and how many of
/// them mention the person or reply to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRoom {
    pub room_id: String,
    #[serde(default)]
    pub name: String,
    pub unread: u64,
    pub mentions: u64,
}

/// The mail log's key of a person's digest of `day`: one email a day.
pub fn digest_key(user_id: &str, day: &str) -> String {
    format!("digest:{user_id}:{day}")
}

/// The daily digest email (`day` is `YYYY-MM-DD`).
pub fn digest(
    to: &str,
    user_id: &str,
    day: &str,
    rooms: &[DigestRoom],
    app_url: &str,
    unsubscribe_url: &str,
) -> Email {
    let subject = format!("Your Tessera digest for {day}");
    let base = app_url.trim_end_matches('/');
    let mut text = format!("{subject}\n\n");
    let mut items = String::new();
    for r in rooms {
        let link = format!("{base}/rooms/{}", r.room_id);
        let counts = format!(
            "{} unread, {} {}",
            r.unread,
            r.mentions,
            if r.mentions == 1 {
                "mention"
            } else {
                "mentions"
            }
        );
        text.push_str(&format!("* {}: {counts} — {link}\n", one_line(&r.name)));
        items.push_str(&format!(
            "<li><a href=\"{}\">{}</a>: {counts}</li>",
            escape_html(&link),
            escape_html(&r.name),
        ));
    }
    text.push_str(&format!("\nUnsubscribe: {unsubscribe_url}\n"));
    Email {
        key: digest_key(user_id, day),
        to: to.to_string(),
        html: page(
            &subject,
            &format!("<h1>{}</h1><ul>{items}</ul>", escape_html(&subject)),
            unsubscribe_url,
        ),
        subject,
        text,
        unsubscribe_url: unsubscribe_url.to_string(),
    }
}

/// What an unsubscribe link turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribe {
    /// Every email but the digest.
    Email,
    Digest,
}

impl Unsubscribe {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Digest => "digest",
        }
    }
}

/// The signing key of unsubscribe tokens, derived from the deployment's
/// token secret (so there is no further secret to keep).
pub fn unsubscribe_key(jwt_secret: &[u8]) -> [u8; 32] {
    hmac_sha256(jwt_secret, &[b"tessera unsubscribe v1"])
}

fn unsubscribe_mac(key: &[u8; 32], user_id: &str, what: Unsubscribe) -> String {
    let mac = hmac_sha256(key, &[user_id.as_bytes(), b"\0", what.as_str().as_bytes()]);
    URL_SAFE_NO_PAD.encode(&mac[..16])
}

/// `<user>.<what>.<mac>`: a path parameter of the unsubscribe route.
pub fn unsubscribe_token(key: &[u8; 32], user_id: &str, what: Unsubscribe) -> String {
    format!(
        "{user_id}.{}.{}",
        what.as_str(),
        unsubscribe_mac(key, user_id, what)
    )
}

/// The person and what they leave, if the token is genuine.
pub fn check_unsubscribe(key: &[u8; 32], token: &str) -> Result<(String, Unsubscribe), ApiError> {
    let bad = || ApiError::NotFound("unsubscribe link");
    let mut parts = token.split('.');
    let (Some(user), Some(what), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let what = match what {
        "email" => Unsubscribe::Email,
        "digest" => Unsubscribe::Digest,
        _ => return Err(bad()),
    };
    if !constant_time_eq(mac.as_bytes(), unsubscribe_mac(key, user, what).as_bytes()) {
        return Err(bad());
    }
    Ok((user.to_string(), what))
}

/// RFC 8058: a one-click request is a POST whose form body is exactly
/// `List-Unsubscribe=One-Click`.
pub fn is_one_click(body: &[u8]) -> bool {
    body.split(|b| *b == b'&')
        .any(|p| p == b"List-Unsubscribe=One-Click")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_statuses_are_the_column() {
        let names = EmailStatus::ALL.map(EmailStatus::as_str);
        let migration = include_str!("../../../migrations/0006_notify.sql");
        crate::migrations::assert_check(migration, "status", &names);
    }

    fn item() -> NewItem {
        NewItem {
            kind: Kind::Mention,
            room_id: "r1".into(),
            subject: "12".into(),
            actor: Some("u1".into()),
            actor_name: Some("Eve <script>".into()),
            text: "look at <img src=x onerror=alert(1)> & \"this\"".into(),
            at: 0,
        }
    }

    #[test]
    fn html_escapes_everything_interpolated() {
        let m = for_item(
            "bob@example.org",
            "Ops & \"Dev\"",
            &item(),
            "https://t.example/",
            "https://t.example/u?a=1&b=2",
        );
        assert!(!m.html.contains("<img"), "{}", m.html);
        assert!(!m.html.contains("<script>"));
        assert!(m
            .html
            .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;this&quot;"));
        assert!(m.html.contains("href=\"https://t.example/u?a=1&amp;b=2\""));
        assert!(m.text.contains("<img src=x"), "plain text is not escaped");
        assert!(m.text.contains("https://t.example/rooms/r1?message=12"));
        assert_eq!(m.key, "mention:r1:12");
        assert_eq!(m.subject, "Eve <script> mentioned you in Ops & \"Dev\"");
    }

    #[test]
    fn subjects_are_one_line() {
        let mut i = item();
        i.actor_name = Some("Eve\r\nBcc: all@example.org".into());
        let m = for_item("b@example.org", "r", &i, "https://t", "https://t/u");
        assert!(!m.subject.contains('\n') && !m.subject.contains('\r'));
    }

    #[test]
    fn provider_requests_carry_rfc8058_headers_and_the_key() {
        let p = Provider::parse(r#"{"kind":"resend","base_url":"https://api.resend.com/","key":"RESEND_KEY","from":"Tessera <n@t.example>"}"#).unwrap();
        let m = for_item(
            "b@example.org",
            "r",
            &item(),
            "https://t",
            "https://t/api/v1/unsubscribe/x",
        );
        let (url, headers, body) = p.request(&m);
        assert_eq!(url, "https://api.resend.com/emails");
        assert!(headers.contains(&("idempotency-key", "mention:r1:12".into())));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["to"][0], "b@example.org");
        assert_eq!(
            v["headers"]["List-Unsubscribe"],
            "<https://t/api/v1/unsubscribe/x>"
        );
        assert_eq!(
            v["headers"]["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert!(Provider::parse(r#"{"kind":"smtp","base_url":"x","key":"k","from":"f"}"#).is_err());
    }

    #[test]
    fn unsubscribe_tokens_are_signed() {
        let key = unsubscribe_key(b"secret");
        let t = unsubscribe_token(&key, "u123", Unsubscribe::Digest);
        assert!(crate::ids::is_valid_path_param(&t));
        assert_eq!(
            check_unsubscribe(&key, &t).unwrap(),
            ("u123".into(), Unsubscribe::Digest)
        );
        let forged = t.replace("u123", "u124");
        assert!(check_unsubscribe(&key, &forged).is_err());
        let other = t.replace("digest", "email");
        assert!(check_unsubscribe(&key, &other).is_err());
        assert!(check_unsubscribe(&unsubscribe_key(b"other"), &t).is_err());
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click(b"List-Unsubscribe=Later"));
    }

    #[test]
    fn digests_list_rooms() {
        let rooms = vec![DigestRoom {
            room_id: "r1".into(),
            name: "<b>".into(),
            unread: 3,
            mentions: 1,
        }];
        let m = digest(
            "a@example.org",
            "u1",
            "2026-12-01",
            &rooms,
            "https://t",
            "https://t/u",
        );
        assert_eq!(m.key, "digest:u1:2026-12-01");
        assert!(m.html.contains("&lt;b&gt;") && m.text.contains("3 unread, 1 mention —"));
    }
}
