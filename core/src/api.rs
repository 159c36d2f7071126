//! The public HTTP API's shape: the route table (which also keeps the OpenAPI
//! document honest), JSON body parsing with size limits and unknown-field refusal,
//! and paging parameters.

use crate::ids::is_valid_path_param;
use crate::ApiError;
use serde::de::DeserializeOwned;

/// Every route of the API. The handler for each lives in the Worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Health,
    OpenApi,
    Register,
    Login,
    Refresh,
    Logout,
    AuthConfig,
    OidcSignIn,
    GetMe,
    UpdateMe,
    SearchUsers,
    ListRooms,
    CreateRoom,
    GetRoom,
    UpdateRoom,
    DeleteRoom,
    ListMembers,
    AddMember,
    UpdateMember,
    RemoveMember,
    CreateInvite,
    ListInvites,
    RevokeInvite,
    AcceptInvite,
    RoomSocket,
    ListMessages,
    PostMessage,
    GetMessage,
    ListDocs,
    CreateDoc,
    GetDoc,
    DeleteDoc,
    PostDocUpdate,
    CreateDocVersion,
    ListDocVersions,
    GetDocVersion,
    DeleteDocVersion,
    RestoreDocVersion,
    CreateUpload,
    UploadStatus,
    PatchUpload,
    TerminateUpload,
    ListFiles,
    GetFile,
    FileContent,
    FileContentHead,
    DeleteFile,
    CreateFileLink,
    GetState,
    ListActions,
    RunAction,
    ListRules,
    CreateRule,
    UpdateRule,
    DeleteRule,
    DryRunRule,
    ListApprovals,
    ListApprovalInbox,
    ApproveApproval,
    RejectApproval,
    ListAudit,
    ExportAudit,
    AnalyzeFile,
    AnalyzeBatch,
    GetJob,
    RunCheckin,
    MeSocket,
    ListInbox,
    ReadInbox,
    GetPreferences,
    UpdatePreferences,
    GetPush,
    CreatePushSubscription,
    DeletePushSubscription,
    ListApiKeys,
    CreateApiKey,
    DeleteApiKey,
    UnsubscribePage,
    Unsubscribe,
    ListWebhooks,
    CreateWebhook,
    UpdateWebhook,
    DeleteWebhook,
    TestWebhook,
    ListWebhookDeliveries,
    ListIncomingWebhooks,
    CreateIncomingWebhook,
    DeleteIncomingWebhook,
    PostIncomingWebhook,
    GetCheckin,
    GetAiUsage,
    Search,
}

impl Endpoint {
    /// Whether a request counts against the per-client API limit. The chunks
    /// of an upload do not: their number follows from the chunk size of an
    /// upload whose creation was counted (a 100 MiB file in 1 MiB chunks is
    /// 101 requests).
    pub const fn counts_against_api_limit(self) -> bool {
        !matches!(self, Endpoint::PatchUpload | Endpoint::UploadStatus)
    }

    /// Whether the Worker passes a JSON body on to the room object.
    pub const fn takes_json_body(self) -> bool {
        matches!(
            self,
            Endpoint::RunAction
                | Endpoint::CreateRule
                | Endpoint::UpdateRule
                | Endpoint::DryRunRule
        )
    }

    /// Whether the route takes a JSON body that may also be left out (an
    /// approval decision's `{"comment"}`).
    pub const fn takes_optional_json_body(self) -> bool {
        matches!(self, Endpoint::ApproveApproval | Endpoint::RejectApproval)
    }
}

/// (method, path pattern, endpoint). `{name}` segments are parameters.
pub const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/api/v1/health", Endpoint::Health),
    ("GET", "/api/v1/openapi.json", Endpoint::OpenApi),
    ("POST", "/api/v1/auth/register", Endpoint::Register),
    ("POST", "/api/v1/auth/login", Endpoint::Login),
    ("POST", "/api/v1/auth/refresh", Endpoint::Refresh),
    ("POST", "/api/v1/auth/logout", Endpoint::Logout),
    ("GET", "/api/v1/auth/config", Endpoint::AuthConfig),
    ("POST", "/api/v1/auth/oidc", Endpoint::OidcSignIn),
    ("GET", "/api/v1/me", Endpoint::GetMe),
    ("PATCH", "/api/v1/me", Endpoint::UpdateMe),
    ("GET", "/api/v1/users", Endpoint::SearchUsers),
    ("GET", "/api/v1/rooms", Endpoint::ListRooms),
    ("POST", "/api/v1/rooms", Endpoint::CreateRoom),
    ("GET", "/api/v1/rooms/{room_id}", Endpoint::GetRoom),
    ("PATCH", "/api/v1/rooms/{room_id}", Endpoint::UpdateRoom),
    ("DELETE", "/api/v1/rooms/{room_id}", Endpoint::DeleteRoom),
    (
        "GET",
        "/api/v1/rooms/{room_id}/members",
        Endpoint::ListMembers,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/members",
        Endpoint::AddMember,
    ),
    (
        "PATCH",
        "/api/v1/rooms/{room_id}/members/{user_id}",
        Endpoint::UpdateMember,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/members/{user_id}",
        Endpoint::RemoveMember,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/invites",
        Endpoint::CreateInvite,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/invites",
        Endpoint::ListInvites,
    ),
    ("DELETE", "/api/v1/invites/{code}", Endpoint::RevokeInvite),
    (
        "POST",
        "/api/v1/invites/{code}/accept",
        Endpoint::AcceptInvite,
    ),
    ("GET", "/api/v1/rooms/{room_id}/ws", Endpoint::RoomSocket),
    (
        "GET",
        "/api/v1/rooms/{room_id}/messages",
        Endpoint::ListMessages,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/messages",
        Endpoint::PostMessage,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/messages/{message_id}",
        Endpoint::GetMessage,
    ),
    ("GET", "/api/v1/rooms/{room_id}/docs", Endpoint::ListDocs),
    ("POST", "/api/v1/rooms/{room_id}/docs", Endpoint::CreateDoc),
    (
        "GET",
        "/api/v1/rooms/{room_id}/docs/{doc}",
        Endpoint::GetDoc,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/docs/{doc}",
        Endpoint::DeleteDoc,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/docs/{doc}/updates",
        Endpoint::PostDocUpdate,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/docs/{doc}/versions",
        Endpoint::CreateDocVersion,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/docs/{doc}/versions",
        Endpoint::ListDocVersions,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/docs/{doc}/versions/{version}",
        Endpoint::GetDocVersion,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/docs/{doc}/versions/{version}",
        Endpoint::DeleteDocVersion,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/docs/{doc}/versions/{version}/restore",
        Endpoint::RestoreDocVersion,
    ),
    ("POST", "/api/v1/uploads", Endpoint::CreateUpload),
    (
        "HEAD",
        "/api/v1/uploads/{upload_id}",
        Endpoint::UploadStatus,
    ),
    (
        "PATCH",
        "/api/v1/uploads/{upload_id}",
        Endpoint::PatchUpload,
    ),
    (
        "DELETE",
        "/api/v1/uploads/{upload_id}",
        Endpoint::TerminateUpload,
    ),
    ("GET", "/api/v1/rooms/{room_id}/files", Endpoint::ListFiles),
    ("GET", "/api/v1/files/{file_id}", Endpoint::GetFile),
    (
        "GET",
        "/api/v1/files/{file_id}/content",
        Endpoint::FileContent,
    ),
    (
        "HEAD",
        "/api/v1/files/{file_id}/content",
        Endpoint::FileContentHead,
    ),
    ("DELETE", "/api/v1/files/{file_id}", Endpoint::DeleteFile),
    (
        "POST",
        "/api/v1/files/{file_id}/link",
        Endpoint::CreateFileLink,
    ),
    ("GET", "/api/v1/rooms/{room_id}/state", Endpoint::GetState),
    (
        "GET",
        "/api/v1/rooms/{room_id}/actions",
        Endpoint::ListActions,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/actions/{action}",
        Endpoint::RunAction,
    ),
    ("GET", "/api/v1/rooms/{room_id}/rules", Endpoint::ListRules),
    (
        "POST",
        "/api/v1/rooms/{room_id}/rules",
        Endpoint::CreateRule,
    ),
    (
        "PATCH",
        "/api/v1/rooms/{room_id}/rules/{rule_id}",
        Endpoint::UpdateRule,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/rules/{rule_id}",
        Endpoint::DeleteRule,
    ),
    // Admins and owners (as the rule routes): what a draft rule would do.
    (
        "POST",
        "/api/v1/rooms/{room_id}/rules/dry-run",
        Endpoint::DryRunRule,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/approvals",
        Endpoint::ListApprovals,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/approvals/{approval_id}/approve",
        Endpoint::ApproveApproval,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/approvals/{approval_id}/reject",
        Endpoint::RejectApproval,
    ),
    // Any account: the requests of the rooms the caller owns (or, with
    // `?scope=mine`, their own requests in the rooms they are in).
    ("GET", "/api/v1/approvals", Endpoint::ListApprovalInbox),
    ("GET", "/api/v1/rooms/{room_id}/audit", Endpoint::ListAudit),
    (
        "GET",
        "/api/v1/rooms/{room_id}/audit/export",
        Endpoint::ExportAudit,
    ),
    (
        "POST",
        "/api/v1/files/{file_id}/analyze",
        Endpoint::AnalyzeFile,
    ),
    ("POST", "/api/v1/ai/batch", Endpoint::AnalyzeBatch),
    ("GET", "/api/v1/jobs/{job_id}", Endpoint::GetJob),
    (
        "POST",
        "/api/v1/rooms/{room_id}/checkin",
        Endpoint::RunCheckin,
    ),
    ("GET", "/api/v1/me/ws", Endpoint::MeSocket),
    ("GET", "/api/v1/me/inbox", Endpoint::ListInbox),
    ("POST", "/api/v1/me/inbox/read", Endpoint::ReadInbox),
    ("GET", "/api/v1/me/preferences", Endpoint::GetPreferences),
    (
        "PATCH",
        "/api/v1/me/preferences",
        Endpoint::UpdatePreferences,
    ),
    ("GET", "/api/v1/me/push", Endpoint::GetPush),
    (
        "POST",
        "/api/v1/me/push/subscriptions",
        Endpoint::CreatePushSubscription,
    ),
    (
        "DELETE",
        "/api/v1/me/push/subscriptions/{subscription_id}",
        Endpoint::DeletePushSubscription,
    ),
    ("GET", "/api/v1/me/keys", Endpoint::ListApiKeys),
    ("POST", "/api/v1/me/keys", Endpoint::CreateApiKey),
    ("DELETE", "/api/v1/me/keys/{key_id}", Endpoint::DeleteApiKey),
    (
        "GET",
        "/api/v1/unsubscribe/{token}",
        Endpoint::UnsubscribePage,
    ),
    ("POST", "/api/v1/unsubscribe/{token}", Endpoint::Unsubscribe),
    (
        "GET",
        "/api/v1/rooms/{room_id}/webhooks",
        Endpoint::ListWebhooks,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/webhooks",
        Endpoint::CreateWebhook,
    ),
    (
        "PATCH",
        "/api/v1/rooms/{room_id}/webhooks/{hook_id}",
        Endpoint::UpdateWebhook,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/webhooks/{hook_id}",
        Endpoint::DeleteWebhook,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/webhooks/{hook_id}/test",
        Endpoint::TestWebhook,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/webhooks/{hook_id}/deliveries",
        Endpoint::ListWebhookDeliveries,
    ),
    (
        "GET",
        "/api/v1/rooms/{room_id}/incoming-webhooks",
        Endpoint::ListIncomingWebhooks,
    ),
    (
        "POST",
        "/api/v1/rooms/{room_id}/incoming-webhooks",
        Endpoint::CreateIncomingWebhook,
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/incoming-webhooks/{hook_id}",
        Endpoint::DeleteIncomingWebhook,
    ),
    (
        "POST",
        "/api/v1/hooks/{token}",
        Endpoint::PostIncomingWebhook,
    ),
    // Any member, viewers too: a day's check-in as the room keeps it.
    (
        "GET",
        "/api/v1/rooms/{room_id}/checkin",
        Endpoint::GetCheckin,
    ),
    // Owners: the room's AI use today and its budget.
    (
        "GET",
        "/api/v1/rooms/{room_id}/ai/usage",
        Endpoint::GetAiUsage,
    ),
    ("GET", "/api/v1/search", Endpoint::Search),
];

/// A matched route with its path parameters in pattern order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub params: Vec<String>,
}

impl Route {
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or_default()
    }
}

fn match_pattern(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if !is_valid_path_param(g) {
                    return None;
                }
                params.push(g.to_string());
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Finds the route for a request: 404 when no pattern matches the path, 405 when
/// one does but not with this method.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut path_matched = false;
    for (m, pattern, endpoint) in ROUTES {
        if let Some(params) = match_pattern(pattern, path) {
            if *m == method {
                return Ok(Route {
                    endpoint: *endpoint,
                    params,
                });
            }
            path_matched = true;
        }
    }
    Err(if path_matched {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NoRoute
    })
}

/// The methods a path answers to (for CORS preflight and `Allow`).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|(_, p, _)| match_pattern(p, path).is_some())
        .map(|(m, _, _)| *m)
        .collect()
}

/// Whether `origin` is in the comma-separated `configured` list (`*` allows all).
pub fn cors_allows(configured: &str, origin: &str) -> bool {
    configured
        .split(',')
        .map(str::trim)
        .any(|o| o == "*" || (!o.is_empty() && o.eq_ignore_ascii_case(origin)))
}

/// Default limit for JSON request bodies.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Parses a JSON body, refusing oversized bodies, syntax errors and (through
/// `deny_unknown_fields` on the target types) unknown fields.
pub fn parse_json<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, ApiError> {
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// A request body as `T`, read as [`parse_json`] reads it, whose top-level
/// members are never `null`: a member is given or left out. serde would read
/// a `null` as an absent `Option`, which the API document says of no member
/// it does not mark nullable; the bodies that take a `null` (to clear a
/// setting) and our own calls between objects use [`parse_json`].
pub fn parse_body<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, ApiError> {
    parse_body_with(body, limit, &[])
}

/// [`parse_body`] for a body whose members named in `nullable` may be `null`
/// (a rule's JSONLogic `condition` is any JSON value).
pub fn parse_body_with<T: DeserializeOwned>(
    body: &[u8],
    limit: usize,
    nullable: &[&str],
) -> Result<T, ApiError> {
    let value: serde_json::Value = parse_json(body, limit)?;
    // serde reads a struct from an array of its fields too: `[]` would pass
    // as a body whose members are all left out.
    let Some(members) = value.as_object() else {
        return Err(ApiError::invalid("the body must be a JSON object"));
    };
    let null = members
        .iter()
        .find(|(k, v)| v.is_null() && !nullable.contains(&k.as_str()));
    if let Some((field, _)) = null {
        return Err(ApiError::InvalidInput {
            message: format!("`{field}` may not be null: leave it out instead"),
            field: Some(field.clone()),
        });
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(e.to_string()))
}

/// A bound parameter of a query that core builds from fixed fragments (the
/// audit log's filters, the approvals inbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(u64),
}

/// `?limit=&cursor=` for list endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub cursor: Option<String>,
}

pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 200;

impl Page {
    /// Cuts rows fetched with `limit + 1` down to the page and returns the
    /// cursor of the next page (the last row's key) when there is one.
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> Option<String> {
        if rows.len() <= self.limit as usize {
            return None;
        }
        rows.truncate(self.limit as usize);
        rows.last().map(key)
    }

    pub fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ApiError> {
        let mut page = Page {
            limit: PAGE_DEFAULT,
            cursor: None,
        };
        for (k, v) in pairs {
            match k {
                "limit" => {
                    page.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=PAGE_MAX).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid(format!("limit must be 1 to {PAGE_MAX}"))
                        })?;
                }
                "cursor" if is_valid_path_param(v) => page.cursor = Some(v.to_string()),
                "cursor" => return Err(ApiError::invalid("cursor is not valid")),
                _ => {}
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn routes_match_with_params() {
        let r = route("PATCH", "/api/v1/rooms/abc/members/u1").unwrap();
        assert_eq!(r.endpoint, Endpoint::UpdateMember);
        assert_eq!(r.params, vec!["abc", "u1"]);
        assert_eq!(
            route("GET", "/api/v1/rooms/").unwrap().endpoint,
            Endpoint::ListRooms
        );
    }

    #[test]
    fn a_dry_run_is_not_a_rule_id() {
        assert_eq!(
            route("POST", "/api/v1/rooms/r1/rules/dry-run")
                .unwrap()
                .endpoint,
            Endpoint::DryRunRule
        );
        assert_eq!(
            route("PATCH", "/api/v1/rooms/r1/rules/r2")
                .unwrap()
                .endpoint,
            Endpoint::UpdateRule
        );
        assert_eq!(
            route("GET", "/api/v1/rooms/r1/checkin").unwrap().endpoint,
            Endpoint::GetCheckin
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(route("GET", "/api/v1/nope"), Err(ApiError::NoRoute));
        assert_eq!(
            route("PUT", "/api/v1/rooms"),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(route("GET", "/api/v1/rooms/a%27b"), Err(ApiError::NoRoute));
        assert_eq!(
            route("GET", "/api/v1/rooms/a/b/c/d"),
            Err(ApiError::NoRoute)
        );
    }

    #[test]
    fn workflow_bodies_are_passed_where_the_route_takes_one() {
        let body = |m, p| route(m, p).unwrap().endpoint.takes_json_body();
        assert!(body("POST", "/api/v1/rooms/r1/actions/propose_activity"));
        assert!(body("POST", "/api/v1/rooms/r1/rules"));
        assert!(body("PATCH", "/api/v1/rooms/r1/rules/r2"));
        assert!(body("POST", "/api/v1/rooms/r1/rules/dry-run"));
        let optional = |m, p| route(m, p).unwrap().endpoint.takes_optional_json_body();
        for path in [
            "/api/v1/rooms/r1/approvals/ap1/approve",
            "/api/v1/rooms/r1/approvals/ap1/reject",
        ] {
            assert!(!body("POST", path) && optional("POST", path));
        }
        assert!(!optional(
            "POST",
            "/api/v1/rooms/r1/actions/propose_activity"
        ));
        assert!(!body("DELETE", "/api/v1/rooms/r1/rules/r2"));
        assert!(!body("GET", "/api/v1/rooms/r1/state"));
    }

    #[test]
    fn upload_chunks_are_not_api_calls() {
        let counted = |m, p| route(m, p).unwrap().endpoint.counts_against_api_limit();
        assert!(!counted("PATCH", "/api/v1/uploads/u1"));
        assert!(!counted("HEAD", "/api/v1/uploads/u1"));
        assert!(counted("POST", "/api/v1/uploads"));
        assert!(counted("DELETE", "/api/v1/uploads/u1"));
        assert!(counted("GET", "/api/v1/rooms"));
    }

    #[test]
    fn allowed_methods_for_cors() {
        assert_eq!(
            allowed_methods("/api/v1/rooms/x"),
            vec!["GET", "PATCH", "DELETE"]
        );
    }

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "{a:?} twice");
            }
        }
    }

    #[test]
    fn cors_origins() {
        assert!(cors_allows(
            "https://a.example, https://b.example",
            "https://b.example"
        ));
        assert!(!cors_allows("https://a.example", "https://evil.example"));
        assert!(!cors_allows("", "https://a.example"));
        assert!(cors_allows("*", "https://a.example"));
    }

    /// Every routed path is documented with its method, and every documented
    /// operation is routed.
    #[test]
    fn openapi_matches_the_route_table() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, ops) in paths {
            for (method, _) in ops.as_object().unwrap() {
                if method != "parameters" {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: std::collections::BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routed but not documented: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented but not routed: {unrouted:?}"
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        a: u32,
    }

    #[test]
    fn json_bodies() {
        assert!(parse_json::<Body>(br#"{"a":1}"#, 100).is_ok());
        assert_eq!(
            parse_json::<Body>(b"{", 100).unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse_json::<Body>(br#"{"a":1,"b":2}"#, 100)
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        assert_eq!(
            parse_json::<Body>(br#"{"a":"x"}"#, 100).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(
            parse_json::<Body>(&[b' '; 101], 100).unwrap_err().code(),
            "payload_too_large"
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Optional {
        a: Option<String>,
    }

    #[test]
    fn a_body_member_is_given_or_left_out_never_null() {
        assert!(parse_body::<Optional>(br#"{}"#, 100).is_ok());
        assert!(parse_body::<Optional>(br#"{"a":"x"}"#, 100).is_ok());
        let null = parse_body::<Optional>(br#"{"a":null}"#, 100).unwrap_err();
        assert_eq!(null.code(), "invalid_input");
        assert_eq!(null.body()["error"]["field"], "a");
        assert!(
            parse_json::<Optional>(br#"{"a":null}"#, 100).is_ok(),
            "where null is taken"
        );
        assert!(parse_body_with::<Optional>(br#"{"a":null}"#, 100, &["a"]).is_ok());
        for not_an_object in [&br#"[]"#[..], br#"["x"]"#, b"null", b"1"] {
            assert_eq!(
                parse_body_with::<Optional>(not_an_object, 100, &["a"])
                    .unwrap_err()
                    .code(),
                "invalid_input"
            );
        }
        assert_eq!(
            parse_body::<Optional>(br#"{"a":1,"b":2}"#, 100)
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        assert_eq!(
            parse_body::<Optional>(b"{", 100).unwrap_err().code(),
            "malformed_json"
        );
    }

    #[test]
    fn paging() {
        let p = Page::from_query([("limit", "10"), ("cursor", "abc")].into_iter()).unwrap();
        assert_eq!(
            p,
            Page {
                limit: 10,
                cursor: Some("abc".into())
            }
        );
        assert!(Page::from_query([("limit", "0")].into_iter()).is_err());
        assert!(Page::from_query([("limit", "201")].into_iter()).is_err());
        assert!(Page::from_query([("cursor", "a b")].into_iter()).is_err());
        assert_eq!(
            Page::from_query(std::iter::empty()).unwrap().limit,
            PAGE_DEFAULT
        );
    }
}
