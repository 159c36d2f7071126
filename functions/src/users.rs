//! `GET /api/v1/users?q=`: people the caller may start a direct room with
//! (see `tessera_core::users`): co-members whose display name matches, and
//! the account whose email is exactly `q`. Both queries go to D1 in one batch.

use crate::ctx::{arg, Ctx};
use crate::tokens::authenticate;
use tessera_core::users::{pick, UserMatch, UserQuery, CANDIDATES_MAX};
use tessera_durable_objects::http::{json, HttpResult};
use worker::{Request, Response};

pub async fn search(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let url = req.url()?;
    let q = url
        .query_pairs()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned());
    let query = UserQuery::parse(q.as_deref())?;
    let [filter, prefix, word] = query.like_patterns();
    let db = ctx.db()?;
    let by_name = db
        .prepare(
            "SELECT DISTINCT u.id, u.display_name FROM memberships mine
             JOIN memberships theirs ON theirs.room_id = mine.room_id
             JOIN users u ON u.id = theirs.user_id
             WHERE mine.user_id = ?1 AND u.id != ?1 AND u.display_name LIKE ?2 ESCAPE '\\'
             ORDER BY CASE WHEN u.display_name LIKE ?3 ESCAPE '\\' THEN 0
                           WHEN u.display_name LIKE ?4 ESCAPE '\\' THEN 1 ELSE 2 END,
                      u.display_name, u.id
             LIMIT ?5",
        )
        .bind(&[
            arg(&user_id),
            arg(&filter),
            arg(&prefix),
            arg(&word),
            arg(CANDIDATES_MAX),
        ])?;
    let mut statements = vec![by_name];
    if let Some(email) = &query.email {
        statements.push(
            db.prepare("SELECT id, display_name FROM users WHERE email = ?1")
                .bind(&[arg(email)])?,
        );
    }
    let mut results = db.batch(statements).await?.into_iter();
    let candidates: Vec<UserMatch> = match results.next() {
        Some(r) => r.results()?,
        None => Vec::new(),
    };
    let by_email = match results.next() {
        Some(r) => r.results::<UserMatch>()?.into_iter().next(),
        None => None,
    };
    json(200, &pick(&query, &user_id, by_email, candidates))
}
