//! Ranking: the recency boost applied to BM25 (as SQL, see [`super::sql`]),
//! reciprocal rank fusion of the full-text and semantic lists, and the
//! cursor of ranked pages.

use super::OFFSET_MAX;
use crate::ApiError;
use std::collections::HashMap;
use std::hash::Hash;

/// BM25 weights of the title and body columns.
pub const TITLE_WEIGHT: f64 = 2.0;
pub const BODY_WEIGHT: f64 = 1.0;
/// A hit of now counts `1 + RECENCY_WEIGHT` times its BM25; the boost halves
/// after `RECENCY_HALF_MS` (a week: ×2 now, ×1.5 a week ago, ×1.2 a month
/// ago, ×1.02 a year ago), so a clearly better match still wins over a
/// recent weak one.
pub const RECENCY_WEIGHT: f64 = 1.0;
pub const RECENCY_HALF_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;
/// The usual constant of reciprocal rank fusion (Cormack et al., 2009).
pub const RRF_K: f64 = 60.0;
/// How many of each list hybrid ranking fuses.
pub const FUSE_DEPTH: u32 = 100;

/// The factor [`RECENCY_WEIGHT`] describes, for an item `age_ms` old.
pub fn recency_factor(age_ms: f64) -> f64 {
    1.0 + RECENCY_WEIGHT / (1.0 + age_ms.max(0.0) / RECENCY_HALF_MS)
}

/// Fuses ranked lists: each item scores the sum of `1 / (RRF_K + rank)` over
/// the lists it is in (rank from 1), best first; ties keep the order in which
/// items were first seen.
pub fn fuse<K: Eq + Hash + Clone>(lists: &[Vec<K>]) -> Vec<(K, f64)> {
    let mut scores: HashMap<K, (f64, usize)> = HashMap::new();
    let mut seen = 0;
    for list in lists {
        for (rank, key) in list.iter().enumerate() {
            let entry = scores.entry(key.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(K, f64, usize)> = scores
        .into_iter()
        .map(|(k, (s, order))| (k, s, order))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(k, s, _)| (k, s)).collect()
}

/// A cursor is the offset of the next page in the ranked list.
pub fn parse_cursor(cursor: &str) -> Result<u32, ApiError> {
    cursor
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= OFFSET_MAX)
        .ok_or_else(|| ApiError::invalid("cursor is not valid"))
}

/// The cursor after a page of `limit` from `offset`, when `more` results follow.
pub fn next_cursor(offset: u32, limit: u32, more: bool) -> Option<String> {
    let next = offset + limit;
    (more && next <= OFFSET_MAX).then(|| next.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recency_halves_weekly_and_never_dominates() {
        assert_eq!(recency_factor(0.0), 2.0);
        assert_eq!(recency_factor(RECENCY_HALF_MS), 1.5);
        assert!(recency_factor(365.0 * 24.0 * 3600e3) < 1.03);
        assert_eq!(recency_factor(-5.0), 2.0);
    }

    #[test]
    fn items_in_both_lists_rise() {
        let text = vec!["a", "b", "c"];
        let semantic = vec!["d", "c", "a"];
        let fused: Vec<&str> = fuse(&[text, semantic])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(fused, vec!["a", "c", "d", "b"]);
    }

    #[test]
    fn cursors_are_offsets_within_bounds() {
        assert_eq!(parse_cursor("40").unwrap(), 40);
        assert!(parse_cursor("x").is_err());
        assert!(parse_cursor(&(OFFSET_MAX + 1).to_string()).is_err());
        assert_eq!(next_cursor(0, 20, true).as_deref(), Some("20"));
        assert_eq!(next_cursor(0, 20, false), None);
        assert_eq!(next_cursor(OFFSET_MAX, 20, true), None);
    }

    proptest! {
        #[test]
        fn fusion_keeps_every_item_once(a in proptest::collection::vec(0u8..20, 0..20), b in proptest::collection::vec(0u8..20, 0..20)) {
            let dedup = |v: Vec<u8>| { let mut seen = vec![]; for x in v { if !seen.contains(&x) { seen.push(x) } } seen };
            let (a, b) = (dedup(a), dedup(b));
            let fused = fuse(&[a.clone(), b.clone()]);
            let mut keys: Vec<u8> = fused.iter().map(|(k, _)| *k).collect();
            keys.sort();
            let mut all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            all.sort();
            all.dedup();
            prop_assert_eq!(keys, all);
            prop_assert!(fused.windows(2).all(|w| w[0].1 >= w[1].1));
        }
    }
}
