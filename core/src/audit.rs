//! The audit log's read side: the filters of `GET …/audit` and its NDJSON
//! export (`actor`, `kind`, `action`, a time range `from`/`to`), their paging
//! (`cursor`, `limit`) and the one query they make. The query's text is made
//! only of fixed fragments, one per filter given, so that each filter can use
//! its index; every value is a bound parameter.

use crate::actor::ActorKind;
use crate::api::{Param, PAGE_DEFAULT, PAGE_MAX};
use crate::dates::parse_time;
use crate::ids::is_valid_path_param;
use crate::ApiError;

/// Entries per page of the NDJSON export.
pub const EXPORT_PAGE_MAX: u32 = 5000;
/// Longest action name a filter takes (catalogue names and `ai_call` & co.).
const ACTION_MAX: usize = 64;

/// What a listing of one room's audit log asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub kind: Option<ActorKind>,
    pub action: Option<String>,
    /// Unix seconds: entries at or after `from`, and before `to`.
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// The id of the last entry of the previous page (entries are newest first).
    pub cursor: Option<u64>,
    pub limit: u32,
}

const COLUMNS: &str = "id, actor, actor_kind, action, arguments, result, request_id, at";

impl AuditQuery {
    /// Parses `?actor=&kind=&action=&from=&to=&cursor=&limit=`; any other
    /// parameter is refused (a misspelt filter would silently show
    /// everything). `export` pages allow up to [`EXPORT_PAGE_MAX`] entries
    /// (and default to it), lists up to 200 (default 50). A `to` given as a
    /// date includes that whole day.
    pub fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        export: bool,
    ) -> Result<Self, ApiError> {
        let (default, max) = match export {
            true => (EXPORT_PAGE_MAX, EXPORT_PAGE_MAX),
            false => (PAGE_DEFAULT, PAGE_MAX),
        };
        let mut q = AuditQuery {
            actor: None,
            kind: None,
            action: None,
            from: None,
            to: None,
            cursor: None,
            limit: default,
        };
        for (key, value) in pairs {
            let bad = |what: &str| ApiError::invalid_at(key, format!("`{key}` must be {what}"));
            let time = || {
                parse_time(value).ok_or_else(|| {
                    bad("unix seconds, a date (2026-05-01) or an RFC 3339 time (2026-05-01T12:00:00Z)")
                })
            };
            match key {
                "actor" if is_valid_path_param(value) => q.actor = Some(value.to_string()),
                "actor" => return Err(bad("a user id or `ai`")),
                "kind" => q.kind = Some(ActorKind::parse(value).ok_or_else(|| bad("user, ai or rule"))?),
                "action" => {
                    let ok = !value.is_empty()
                        && value.len() <= ACTION_MAX
                        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    if !ok {
                        return Err(bad("an action's name"));
                    }
                    q.action = Some(value.to_string());
                }
                "from" => q.from = Some(time()?),
                "to" => {
                    let whole_day = value.len() == 10 && value.contains('-');
                    q.to = Some(time()? + if whole_day { 86_400 } else { 0 });
                }
                "cursor" => {
                    q.cursor = Some(value.parse().ok().filter(|_| value.len() <= 19).ok_or_else(|| {
                        bad("the next_cursor of the previous page")
                    })?)
                }
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or_else(|| bad(&format!("1 to {max}")))?
                }
                other => {
                    return Err(ApiError::invalid_at(
                        other,
                        format!(
                            "unknown parameter `{other}` (filters: actor, kind, action, from, to; paging: cursor, limit)"
                        ),
                    ))
                }
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to) {
            if to <= from {
                return Err(ApiError::invalid_at("to", "`to` must be after `from`"));
            }
        }
        Ok(q)
    }

    /// The query of one page of `room_id`'s entries (one row more than the
    /// page, to tell whether another follows) and its parameters, in order.
    pub fn sql(&self, room_id: &str) -> (String, Vec<Param>) {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE room_id = ?1");
        let mut params = vec![Param::Text(room_id.to_string())];
        let mut filter = |fragment: &str, p: Param| {
            params.push(p);
            sql.push_str(&format!(" AND {fragment} ?{}", params.len()));
        };
        if let Some(c) = self.cursor {
            filter("id <", Param::Int(c));
        }
        if let Some(a) = &self.actor {
            filter("actor =", Param::Text(a.clone()));
        }
        if let Some(k) = self.kind {
            filter("actor_kind =", Param::Text(k.as_str().into()));
        }
        if let Some(a) = &self.action {
            filter("action =", Param::Text(a.clone()));
        }
        if let Some(f) = self.from {
            filter("at >=", Param::Int(f));
        }
        if let Some(t) = self.to {
            filter("at <", Param::Int(t));
        }
        params.push(Param::Int(u64::from(self.limit) + 1));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", params.len()));
        (sql, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(q: &[(&str, &str)]) -> Result<AuditQuery, ApiError> {
        AuditQuery::from_query(q.iter().copied(), false)
    }

    #[test]
    fn filters_are_parsed_and_checked_naming_the_parameter() {
        let q = parse(&[
            ("actor", "u1"),
            ("kind", "rule"),
            ("action", "propose_activity"),
            ("from", "2026-05-01"),
            ("to", "2026-05-01"),
            ("cursor", "99"),
            ("limit", "10"),
        ])
        .unwrap();
        let day = crate::dates::parse_day("2026-05-01").unwrap();
        assert_eq!(
            q,
            AuditQuery {
                actor: Some("u1".into()),
                kind: Some(ActorKind::Rule),
                action: Some("propose_activity".into()),
                from: Some(day),
                to: Some(day + 86_400),
                cursor: Some(99),
                limit: 10,
            }
        );
        assert_eq!(
            parse(&[("to", "1795305600")]).unwrap().to,
            Some(1_795_305_600)
        );
        assert_eq!(parse(&[]).unwrap().limit, PAGE_DEFAULT);
        let export = AuditQuery::from_query(std::iter::empty(), true).unwrap();
        assert_eq!(export.limit, EXPORT_PAGE_MAX);
        assert!(AuditQuery::from_query([("limit", "5000")].into_iter(), true).is_ok());
        for (key, value) in [
            ("actor", "a b"),
            ("actor", ""),
            ("kind", "admin"),
            ("action", "Drop Table"),
            ("action", "x'--"),
            ("from", "yesterday"),
            ("to", "2026-02-30"),
            ("cursor", "-1"),
            ("cursor", "abc"),
            ("limit", "0"),
            ("limit", "201"),
            ("actr", "u1"),
        ] {
            let e = parse(&[(key, value)]).unwrap_err();
            assert_eq!(
                (e.status(), e.field()),
                (400, Some(key)),
                "{key}={value}: {e}"
            );
        }
        let backwards = parse(&[("from", "2026-05-02"), ("to", "2026-05-01T00:00:00Z")]);
        assert_eq!(backwards.unwrap_err().field(), Some("to"));
    }

    #[test]
    fn the_query_holds_only_fixed_fragments_and_binds_every_value() {
        let (sql, params) = parse(&[]).unwrap().sql("room1");
        assert_eq!(
            sql,
            "SELECT id, actor, actor_kind, action, arguments, result, request_id, at FROM audit_log \
             WHERE room_id = ?1 ORDER BY id DESC LIMIT ?2"
        );
        assert_eq!(params, [Param::Text("room1".into()), Param::Int(51)]);
        let q = parse(&[
            ("action", "start_activity"),
            ("kind", "ai"),
            ("from", "5"),
            ("cursor", "7"),
        ])
        .unwrap();
        let (sql, params) = q.sql("r");
        assert!(sql.ends_with(
            "WHERE room_id = ?1 AND id < ?2 AND actor_kind = ?3 AND action = ?4 AND at >= ?5 ORDER BY id DESC LIMIT ?6"
        ), "{sql}");
        assert_eq!(
            params,
            [
                Param::Text("r".into()),
                Param::Int(7),
                Param::Text("ai".into()),
                Param::Text("start_activity".into()),
                Param::Int(5),
                Param::Int(51),
            ]
        );
    }

    proptest! {
        /// Whatever a caller sends, no byte of it reaches the query's text.
        #[test]
        fn no_value_reaches_the_sql(actor in "[A-Za-z0-9_.-]{1,40}", action in "[a-z_]{1,20}", room in ".{1,20}") {
            let q = parse(&[("actor", &actor), ("action", &action)]).unwrap();
            let (sql, params) = q.sql(&room);
            let (plain, _) = parse(&[("actor", "x"), ("action", "y")]).unwrap().sql("z");
            prop_assert_eq!(sql, plain);
            prop_assert_eq!(&params[1], &Param::Text(actor));
        }
    }
}
