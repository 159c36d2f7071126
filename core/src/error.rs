//! The one error type of the API. Each variant knows its HTTP status and its
//! machine-readable code; the Worker turns it into `{"error": {"code", "message"}}`
//! in a single place. Two kinds say more, inside the same object: invalid input
//! may name the `field` it concerns (a path into the request body, like
//! `condition.if[0]` or `effect.args.title`), and a stale `If-Match` on the
//! room state gives the `current_version` and the `last_change` (who, when).

use crate::actor::LastChange;
use thiserror::Error;

/// The machine-readable codes that the variants carrying a `code` use, and
/// those of socket error frames, so that every code a client may meet is named
/// here (the variants' own codes are in [`ApiError::code`]).
pub mod code {
    pub const AI_RATE_LIMITED: &str = "ai_rate_limited";
    pub const AI_UNAVAILABLE: &str = "ai_unavailable";
    pub const ALREADY_MEMBER: &str = "already_member";
    pub const APPROVAL_CLOSED: &str = "approval_closed";
    pub const DIRECT_ROOM: &str = "direct_room";
    pub const DOCUMENT_DELETED: &str = "document_deleted";
    pub const DOCUMENT_EXISTS: &str = "document_exists";
    pub const DOCUMENT_TOO_LARGE: &str = "document_too_large";
    pub const EMAIL_TAKEN: &str = "email_taken";
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    pub const INVITE_EXPIRED: &str = "invite_expired";
    pub const INVITE_USED_UP: &str = "invite_used_up";
    pub const LAST_OWNER: &str = "last_owner";
    pub const OFFSET_MISMATCH: &str = "offset_mismatch";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const RULE_CHAIN_LIMIT: &str = "rule_chain_limit";
    pub const SEMANTIC_UNAVAILABLE: &str = "semantic_unavailable";
    pub const TOO_MANY_ACTIVITIES: &str = "too_many_activities";
    pub const TOO_MANY_API_KEYS: &str = "too_many_api_keys";
    pub const TOO_MANY_APPROVALS: &str = "too_many_approvals";
    pub const TOO_MANY_DOCUMENTS: &str = "too_many_documents";
    pub const TOO_MANY_INVITES: &str = "too_many_invites";
    pub const TOO_MANY_REACTIONS: &str = "too_many_reactions";
    pub const TOO_MANY_RULES: &str = "too_many_rules";
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    pub const TOO_MANY_TYPES: &str = "too_many_types";
    pub const TOO_MANY_VERSIONS: &str = "too_many_versions";
    pub const TOO_MANY_WEBHOOKS: &str = "too_many_webhooks";
    pub const TUS_VERSION_UNSUPPORTED: &str = "tus_version_unsupported";
    pub const UNSUPPORTED_FILE_TYPE: &str = "unsupported_file_type";
    pub const UPLOAD_COMPLETE: &str = "upload_complete";
    pub const UPLOAD_EXISTS: &str = "upload_exists";
    pub const UPLOAD_EXPIRED: &str = "upload_expired";
    pub const UPLOAD_LOCKED: &str = "upload_locked";
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// `field`: where in the request body, when one part is to blame.
    #[error("{message}")]
    InvalidInput {
        message: String,
        field: Option<String>,
    },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("this refresh token was already used; every session of this sign-in was revoked")]
    RefreshTokenReused,
    #[error("{0}")]
    Forbidden(String),
    /// A signed file link that was altered, or made for another file.
    #[error("this file link is not valid: {0}")]
    LinkInvalid(&'static str),
    #[error("this file link has expired; ask for a new one")]
    LinkExpired,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route for this path")]
    NoRoute,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Too many failed password sign-ins to one email, from wherever they came.
    #[error("too many failed sign-ins to this account; retry in {retry_after_secs} s")]
    SignInLocked { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A room's daily AI budget is spent.
    #[error("{0}")]
    BudgetExhausted(String),
    /// Visibly unfinished: the message says what is not built yet.
    #[error("{0}")]
    NotImplemented(String),
    #[error("{message}")]
    Locked { code: &'static str, message: String },
    #[error("{message}")]
    PreconditionFailed { code: &'static str, message: String },
    /// `If-Match` named another version of the room state than the current one.
    #[error("{message}")]
    VersionConflict {
        message: String,
        current_version: u64,
        last_change: Option<Box<LastChange>>,
    },
    #[error("the body does not match its Upload-Checksum")]
    ChecksumMismatch,
    #[error("files are limited to {limit} bytes")]
    FileTooLarge { limit: u64 },
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("the range is outside the {size} bytes of the file")]
    RangeNotSatisfiable { size: u64 },
    /// The detail is logged, never shown to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedJson(_) | Self::InvalidInput { .. } => 400,
            Self::Unauthenticated
            | Self::InvalidToken(_)
            | Self::InvalidCredentials
            | Self::RefreshTokenReused => 401,
            Self::Forbidden(_) | Self::LinkInvalid(_) | Self::LinkExpired => 403,
            Self::NotFound(_) | Self::NoRoute => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict { .. } => 409,
            Self::Gone { .. } => 410,
            Self::PayloadTooLarge { .. } | Self::FileTooLarge { .. } | Self::QuotaExceeded(_) => {
                413
            }
            Self::PreconditionFailed { .. } | Self::VersionConflict { .. } => 412,
            Self::Locked { .. } => 423,
            Self::RangeNotSatisfiable { .. } => 416,
            Self::ChecksumMismatch => 460,
            Self::UnsupportedMediaType { .. } => 415,
            Self::RateLimited { .. } | Self::SignInLocked { .. } | Self::BudgetExhausted(_) => 429,
            Self::Internal(_) => 500,
            Self::Unavailable(_) => 503,
            Self::NotImplemented(_) => 501,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidInput { .. } => "invalid_input",
            Self::VersionConflict { .. } => "version_conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Forbidden(_) => "forbidden",
            Self::LinkInvalid(_) => "link_invalid",
            Self::LinkExpired => "link_expired",
            Self::NotFound(_) => "not_found",
            Self::NoRoute => "no_route",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::PreconditionFailed { code, .. }
            | Self::Locked { code, .. } => code,
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::RateLimited { .. } => "rate_limited",
            Self::SignInLocked { .. } => "sign_in_locked",
            Self::Unavailable(_) => "unavailable",
            Self::BudgetExhausted(_) => "ai_budget_exhausted",
            Self::NotImplemented(_) => "not_implemented",
            Self::Internal(_) => "internal",
        }
    }

    /// The `Retry-After` of a refusal that passes with time.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } | Self::SignInLocked { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
            field: None,
        }
    }

    /// Invalid input that one part of the body is to blame for.
    pub fn invalid_at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The same error, seen from `outer`: the body that was checked is found
    /// at `outer` in the request (`effect.args` + `title` → `effect.args.title`;
    /// an index `[0]` is joined without a dot). Other errors are unchanged.
    pub fn within(self, outer: &str) -> Self {
        match self {
            Self::InvalidInput { message, field } if !outer.is_empty() => {
                let field = match field {
                    None => outer.to_string(),
                    Some(f) if f.starts_with('[') => format!("{outer}{f}"),
                    Some(f) => format!("{outer}.{f}"),
                };
                Self::InvalidInput {
                    message,
                    field: Some(field),
                }
            }
            other => other,
        }
    }

    /// The field an invalid input names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidInput { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// A write to an archived room, which is read-only for everyone.
    pub fn room_archived() -> Self {
        Self::Conflict {
            code: "room_archived",
            message: "the room is archived: it can be read but not written in".into(),
        }
    }

    /// The JSON body every error response carries.
    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        match self {
            Self::InvalidInput {
                field: Some(field), ..
            } => error["field"] = serde_json::json!(field),
            Self::VersionConflict {
                current_version,
                last_change,
                ..
            } => {
                error["current_version"] = serde_json::json!(current_version);
                error["last_change"] = serde_json::json!(last_change);
            }
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = ApiError::Internal("D1: disk on fire".into());
        assert_eq!(e.status(), 500);
        assert_eq!(e.body()["error"]["message"], "internal error");
    }

    #[test]
    fn conflict_carries_its_own_code() {
        let e = ApiError::Conflict {
            code: "email_taken",
            message: "taken".into(),
        };
        assert_eq!((e.status(), e.code()), (409, "email_taken"));
        assert_eq!(e.body()["error"]["code"], "email_taken");
    }

    #[test]
    fn invalid_input_names_its_field_from_the_outside_in() {
        let plain = ApiError::invalid("no");
        assert_eq!(
            plain.body(),
            serde_json::json!({"error": {"code": "invalid_input", "message": "no"}})
        );
        let e = ApiError::invalid_at("title", "too long")
            .within("args")
            .within("effect");
        assert_eq!(e.field(), Some("effect.args.title"));
        assert_eq!(e.body()["error"]["field"], "effect.args.title");
        assert_eq!(e.status(), 400);
        assert_eq!(
            ApiError::invalid_at("[2]", "x")
                .within("condition.and")
                .field(),
            Some("condition.and[2]")
        );
        assert_eq!(
            ApiError::invalid("x").within("event").field(),
            Some("event")
        );
        assert_eq!(ApiError::invalid("x").within("").field(), None);
        assert_eq!(
            ApiError::NotFound("rule").within("effect"),
            ApiError::NotFound("rule")
        );
    }

    #[test]
    fn a_version_conflict_says_what_the_state_is_and_who_changed_it() {
        use crate::actor::{ActorKind, ChangedBy};
        let e = ApiError::VersionConflict {
            message: "stale".into(),
            current_version: 7,
            last_change: Some(Box::new(LastChange {
                version: 7,
                changed_by: ChangedBy {
                    user_id: "u2".into(),
                    display_name: "Bob".into(),
                    kind: ActorKind::User,
                },
                changed_at: 99,
            })),
        };
        assert_eq!((e.status(), e.code()), (412, "version_conflict"));
        let body = e.body();
        assert_eq!(body["error"]["current_version"], 7);
        assert_eq!(
            body["error"]["last_change"]["changed_by"]["display_name"],
            "Bob"
        );
        assert_eq!(body["error"]["last_change"]["changed_at"], 99);
    }
}
