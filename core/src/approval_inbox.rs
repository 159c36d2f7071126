//! The approvals inbox across rooms (`GET /api/v1/approvals`): the requests
//! an owner may decide in every room they own, or a person's own requests and
//! what became of them. Each room object is the one writer of its requests
//! and copies them to D1 (`approvals`, like the audit log), so the inbox is
//! one query there instead of a call to every room.
//!
//! What a query reads is bounded: the caller's memberships (by user), then,
//! per room, the requests in the asked window of `settled_at` (by room and
//! that time; `settled_at` is when a request was decided, or when it expires
//! if nobody does). Pending requests are at most 100 per room (the room's
//! own bound), so a pending inbox reads at most 100 × the rooms the caller
//! owns; decided and expired ones are listed for [`RESOLVED_WINDOW_SECS`]
//! after they settle (the cron drops older copies: the room keeps each
//! request for good and the audit log each decision).

use crate::actions::{Approval, ApprovalStatus};
use crate::api::{Page, Param};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// How long a decided or expired request stays in the inbox.
pub const RESOLVED_WINDOW_SECS: u64 = 30 * 24 * 3600;

/// Whose inbox: the requests the caller may decide (as an owner), or the
/// requests the caller made (theirs, or their rules').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Owner,
    Mine,
}

/// `pending`, one outcome, `resolved` (any outcome) or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Only(ApprovalStatus),
    Resolved,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalInboxQuery {
    pub scope: Scope,
    pub status: StatusFilter,
    pub page: Page,
}

/// The time a request settles: decided, or (while pending) when it expires.
pub fn settled_at(a: &Approval) -> u64 {
    a.resolved_at.unwrap_or(a.expires_at)
}

impl StatusFilter {
    /// `?status=` of an approvals list (the room's own and the inbox).
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        Ok(match value {
            None => Self::All,
            Some("resolved") => Self::Resolved,
            Some(s) => Self::Only(ApprovalStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_at(
                    "status",
                    "`status` must be pending, approved, rejected, expired or resolved",
                )
            })?),
        })
    }

    /// Whether a request (expiry applied) passes the filter.
    pub fn admits(self, a: &Approval) -> bool {
        match self {
            Self::All => true,
            Self::Resolved => a.status != ApprovalStatus::Pending,
            Self::Only(s) => a.status == s,
        }
    }
}

impl ApprovalInboxQuery {
    /// `?scope=owner|mine&status=&cursor=&limit=`.
    pub fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Self, ApiError> {
        let mut scope = Scope::Owner;
        let mut status = None;
        for (k, v) in pairs.clone() {
            match k {
                "scope" => {
                    scope = match v {
                        "owner" => Scope::Owner,
                        "mine" => Scope::Mine,
                        _ => {
                            return Err(ApiError::invalid_at(
                                "scope",
                                "`scope` must be owner or mine",
                            ))
                        }
                    }
                }
                "status" => status = Some(v),
                "cursor" | "limit" => {}
                other => {
                    return Err(ApiError::invalid_at(
                        other,
                        format!("unknown parameter `{other}` (scope, status, cursor, limit)"),
                    ))
                }
            }
        }
        let page = Page::from_query(pairs)?;
        if page
            .cursor
            .as_deref()
            .is_some_and(|c| c.len() > 19 || c.parse::<u64>().is_err())
        {
            return Err(ApiError::invalid_at(
                "cursor",
                "`cursor` must be the next_cursor of the previous page",
            ));
        }
        Ok(ApprovalInboxQuery {
            scope,
            status: StatusFilter::parse(status)?,
            page,
        })
    }

    /// One page (and a row more) of `user`'s inbox at `now`, newest request
    /// first, with its parameters in order.
    pub fn sql(&self, user: &str, now: u64) -> (String, Vec<Param>) {
        let mut params = vec![
            Param::Text(user.into()),
            Param::Int(now),
            Param::Int(RESOLVED_WINDOW_SECS),
        ];
        let mut sql = String::from(
            "SELECT a.n, a.room_id, r.name AS room_name, a.data FROM approvals a \
             JOIN rooms r ON r.id = a.room_id \
             JOIN memberships m ON m.room_id = a.room_id AND m.user_id = ?1 ",
        );
        sql.push_str(match self.scope {
            Scope::Owner => "AND m.role = 'owner' WHERE ",
            Scope::Mine => {
                "WHERE a.requested_by = ?1 AND a.requested_kind IN ('user', 'rule') AND "
            }
        });
        let window = "a.settled_at > ?2 - ?3";
        match self.status {
            StatusFilter::All => sql.push_str(window),
            StatusFilter::Only(s) => {
                use ApprovalStatus::*;
                // A copy stays pending when its request expires undecided:
                // what tells the two apart is whether it settled yet.
                let (stored, settled) = match s {
                    Pending => (Pending, "a.settled_at > ?2".to_string()),
                    Expired => (Pending, format!("a.settled_at <= ?2 AND {window}")),
                    decided => (decided, window.to_string()),
                };
                params.push(Param::Text(stored.as_str().into()));
                sql.push_str(&format!("a.status = ?{} AND {settled}", params.len()));
            }
            StatusFilter::Resolved => {
                sql.push_str("a.settled_at <= ?2 AND ");
                sql.push_str(window);
            }
        }
        if let Some(c) = self.page.cursor.as_deref().and_then(|c| c.parse().ok()) {
            params.push(Param::Int(c));
            sql.push_str(&format!(" AND a.n < ?{}", params.len()));
        }
        params.push(Param::Int(u64::from(self.page.limit) + 1));
        sql.push_str(&format!(" ORDER BY a.n DESC LIMIT ?{}", params.len()));
        (sql, params)
    }
}

/// A row of the inbox query.
#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalInboxRow {
    pub n: u64,
    pub room_id: String,
    pub room_name: String,
    pub data: String,
}

/// One request in the inbox, with its room and whether the caller may decide it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalInboxItem {
    pub room_id: String,
    pub room_name: String,
    pub may_decide: bool,
    pub approval: Approval,
}

impl ApprovalInboxItem {
    /// The item of a row for `user` at `now` (expiry applied).
    pub fn of(
        row: &ApprovalInboxRow,
        scope: Scope,
        user: &str,
        now: u64,
    ) -> Result<Self, ApiError> {
        let mut approval: Approval = serde_json::from_str(&row.data).map_err(|e| {
            ApiError::Internal(format!("an approval copy in D1 is not readable: {e}"))
        })?;
        approval.expire(now);
        Ok(ApprovalInboxItem {
            room_id: row.room_id.clone(),
            room_name: row.room_name.clone(),
            may_decide: scope == Scope::Owner && approval.decidable_by(user, now),
            approval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{Requested, Requester, APPROVAL_TTL_SECS};
    use crate::actor::{ActorKind, ChangedBy};
    use crate::catalogue::spec;

    fn query(pairs: &[(&str, &str)]) -> Result<ApprovalInboxQuery, ApiError> {
        ApprovalInboxQuery::from_query(pairs.iter().copied())
    }

    #[test]
    fn the_query_is_checked_naming_the_parameter() {
        let q = query(&[]).unwrap();
        assert_eq!(
            (q.scope, q.status, q.page.limit),
            (Scope::Owner, StatusFilter::All, 50)
        );
        let q = query(&[
            ("scope", "mine"),
            ("status", "resolved"),
            ("cursor", "12"),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!((q.scope, q.status), (Scope::Mine, StatusFilter::Resolved));
        for (k, v) in [
            ("scope", "all"),
            ("status", "open"),
            ("cursor", "x1"),
            // A cursor is at most 19 digits, as the document says (as the
            // audit log's): leading zeros made longer ones pass.
            ("cursor", "00000000000000000001"),
            ("limit", "0"),
            ("room", "r1"),
        ] {
            let e = query(&[(k, v)]).unwrap_err();
            assert_eq!(e.status(), 400, "{k}={v}");
            if k != "limit" {
                assert_eq!(e.field(), Some(k), "{k}={v}");
            }
        }
    }

    #[test]
    fn each_view_is_one_fixed_query_with_bound_values() {
        let (sql, params) = query(&[("status", "pending")]).unwrap().sql("u1", 1000);
        assert!(sql.starts_with(
            "SELECT a.n, a.room_id, r.name AS room_name, a.data FROM approvals a JOIN rooms r ON r.id = a.room_id \
             JOIN memberships m ON m.room_id = a.room_id AND m.user_id = ?1 AND m.role = 'owner' WHERE \
             a.status = ?4 AND a.settled_at > ?2"
        ), "{sql}");
        assert!(sql.ends_with("ORDER BY a.n DESC LIMIT ?5"), "{sql}");
        assert_eq!(
            params,
            [
                Param::Text("u1".into()),
                Param::Int(1000),
                Param::Int(RESOLVED_WINDOW_SECS),
                Param::Text("pending".into()),
                Param::Int(51)
            ]
        );
        let (sql, params) = query(&[("status", "expired")]).unwrap().sql("u1", 1000);
        assert!(
            sql.contains("a.status = ?4 AND a.settled_at <= ?2 AND a.settled_at > ?2 - ?3"),
            "{sql}"
        );
        assert_eq!(
            params[3],
            Param::Text("pending".into()),
            "expiry is read, not stored"
        );
        let (sql, params) = query(&[("scope", "mine"), ("status", "approved"), ("cursor", "9")])
            .unwrap()
            .sql("u1", 1000);
        assert!(sql.contains("WHERE a.requested_by = ?1 AND a.requested_kind IN ('user', 'rule') AND a.status = ?4 AND a.settled_at > ?2 - ?3 AND a.n < ?5"), "{sql}");
        assert_eq!(params[3], Param::Text("approved".into()));
        assert_eq!(params[4], Param::Int(9));
        for status in ["expired", "rejected", "resolved"] {
            let (sql, _) = query(&[("status", status)])
                .unwrap()
                .sql("'; DROP TABLE approvals; --", 5);
            assert!(
                !sql.contains("DROP") && sql.contains("a.settled_at > ?2 - ?3"),
                "{sql}"
            );
        }
    }

    fn approval(requested_by: &str) -> Approval {
        let from = Requester {
            by: ChangedBy {
                user_id: requested_by.into(),
                display_name: "Ada".into(),
                kind: ActorKind::User,
            },
            rule_id: None,
            reason: None,
        };
        let Requested::New(a) = Approval::request(
            1,
            spec("archive_room").unwrap(),
            &serde_json::json!({}),
            &from,
            100,
            &[],
        )
        .unwrap() else {
            panic!("new");
        };
        a
    }

    #[test]
    fn items_say_who_may_decide_and_apply_expiry() {
        let a = approval("u2");
        assert_eq!(settled_at(&a), 100 + APPROVAL_TTL_SECS);
        let row = ApprovalInboxRow {
            n: 3,
            room_id: "r1".into(),
            room_name: "Plans".into(),
            data: serde_json::to_string(&a).unwrap(),
        };
        let item = ApprovalInboxItem::of(&row, Scope::Owner, "u1", 200).unwrap();
        assert!(item.may_decide);
        assert_eq!(
            (item.room_id.as_str(), item.room_name.as_str()),
            ("r1", "Plans")
        );
        assert!(
            !ApprovalInboxItem::of(&row, Scope::Owner, "u2", 200)
                .unwrap()
                .may_decide,
            "their own"
        );
        assert!(
            !ApprovalInboxItem::of(&row, Scope::Mine, "u2", 200)
                .unwrap()
                .may_decide
        );
        let late =
            ApprovalInboxItem::of(&row, Scope::Owner, "u1", 100 + APPROVAL_TTL_SECS).unwrap();
        assert_eq!(
            (late.approval.status, late.may_decide),
            (ApprovalStatus::Expired, false)
        );
        assert!(StatusFilter::Resolved.admits(&late.approval));
        assert!(!StatusFilter::parse(Some("pending"))
            .unwrap()
            .admits(&late.approval));
        let broken = ApprovalInboxRow {
            data: "{".into(),
            ..row
        };
        assert_eq!(
            ApprovalInboxItem::of(&broken, Scope::Owner, "u1", 1)
                .unwrap_err()
                .status(),
            500
        );
    }
}
