//! The D1 migrations as the tests read them: the values a column's `CHECK`
//! allows, so that each status enum and its table cannot drift apart.

/// The quoted values of the one `CHECK (column IN (...))` in `sql`.
fn check_values<'a>(sql: &'a str, column: &str) -> Vec<&'a str> {
    let open = format!("CHECK ({column} IN (");
    assert_eq!(sql.matches(&open).count(), 1, "one CHECK on {column}");
    let start = sql.find(&open).unwrap() + open.len();
    let list = &sql[start..];
    let list = &list[..list.find(')').unwrap()];
    list.split(',')
        .map(|v| v.trim().trim_matches('\''))
        .collect()
}

/// Asserts that `values` (an enum's `as_str` of every variant) are exactly
/// what the migration's `CHECK` on `column` allows.
pub fn assert_check(sql: &str, column: &str, values: &[&str]) {
    let allowed = check_values(sql, column);
    for v in values {
        assert!(allowed.contains(v), "{column}: {v:?} is not in {allowed:?}");
    }
    assert_eq!(
        values.len(),
        allowed.len(),
        "{column}: {values:?} vs {allowed:?}"
    );
}
