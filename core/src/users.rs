//! Finding people (`GET /api/v1/users?q=`), to start a direct room with them:
//! what a query may be, the loose SQL pattern that narrows the candidates
//! (people who share a room with the caller), the exact match on display
//! names, and the answer. An exact email finds its account too, but no email
//! is ever shown.
//!
//! Display names are matched case-insensitively with Unicode case rules,
//! which SQLite's `LIKE` applies to ASCII only. So the SQL pattern is a
//! superset (a letter with other cases outside ASCII becomes `_`) and
//! [`name_matches`] decides. The query orders whole-name and word prefixes
//! first and passes on at most [`CANDIDATES_MAX`] candidates: a name that
//! matches only after another separator than a space can be missed when more
//! than that many co-members contain the text, which only very short queries
//! in very large rooms come near.

use crate::auth::normalize_email;
use crate::ApiError;
use serde::{Deserialize, Serialize};

pub const QUERY_MAX_CHARS: usize = 100;
/// People in one answer.
pub const RESULTS_MAX: usize = 20;
/// Candidates the SQL prefilter passes on to [`name_matches`].
pub const CANDIDATES_MAX: u32 = 200;
/// D1 refuses longer `LIKE` patterns ("pattern too complex", which answered
/// 500 to a long `q`; found by schema fuzzing).
pub const LIKE_PATTERN_MAX_BYTES: usize = 50;

/// A person as a look-up shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMatch {
    pub id: String,
    pub display_name: String,
}

/// `GET /api/v1/users`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserMatch>,
}

/// A validated `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Lower-cased (Unicode), trimmed.
    pub folded: String,
    /// The normalised email, when `q` is one.
    pub email: Option<String>,
}

impl UserQuery {
    pub fn parse(q: Option<&str>) -> Result<Self, ApiError> {
        let text = q.unwrap_or_default().trim();
        let n = text.chars().count();
        if n == 0 || n > QUERY_MAX_CHARS || text.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "q must be 1 to {QUERY_MAX_CHARS} printable characters"
            )));
        }
        Ok(UserQuery {
            folded: text.to_lowercase(),
            email: normalize_email(text).ok(),
        })
    }

    /// `LIKE` patterns (with `ESCAPE '\'`): the filter (`%q%`), then the
    /// whole-name prefix and a word prefix after a space, which order the
    /// candidates. Each is at most [`LIKE_PATTERN_MAX_BYTES`]: a longer query
    /// is narrowed by its beginning only (a superset still), and
    /// `name_matches` decides.
    pub fn like_patterns(&self) -> [String; 3] {
        // The longest pattern, `% {core}%`, adds three bytes.
        let room = LIKE_PATTERN_MAX_BYTES - 3;
        let mut core = String::new();
        for c in self.folded.chars() {
            let unit = match c {
                '%' | '_' | '\\' => format!("\\{c}"),
                // LIKE compares letters outside ASCII by code point: let
                // any of their cases through, `name_matches` decides.
                c if !c.is_ascii() && c.to_uppercase().ne(c.to_lowercase()) => "_".into(),
                c => c.to_string(),
            };
            if core.len() + unit.len() > room {
                break;
            }
            core.push_str(&unit);
        }
        [
            format!("%{core}%"),
            format!("{core}%"),
            format!("% {core}%"),
        ]
    }
}

/// Whether `display_name` starts with the query, or one of its words does (a
/// word starts after any character that is not a letter or digit).
pub fn name_matches(display_name: &str, folded_query: &str) -> bool {
    let name = display_name.to_lowercase();
    let mut prev: Option<char> = None;
    for (i, c) in name.char_indices() {
        if prev.is_none_or(|p| !p.is_alphanumeric()) && name[i..].starts_with(folded_query) {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// The answer: the account with the query's email first, then the
/// candidates whose names match (whole-name prefixes before word matches,
/// then by name), never the caller, each once, at most [`RESULTS_MAX`].
pub fn pick(
    query: &UserQuery,
    caller: &str,
    by_email: Option<UserMatch>,
    candidates: Vec<UserMatch>,
) -> UserList {
    let mut named: Vec<(bool, String, UserMatch)> = candidates
        .into_iter()
        .filter(|u| name_matches(&u.display_name, &query.folded))
        .map(|u| {
            let folded = u.display_name.to_lowercase();
            (!folded.starts_with(&query.folded), folded, u)
        })
        .collect();
    named.sort_by(|a, b| (a.0, &a.1, &a.2.id).cmp(&(b.0, &b.1, &b.2.id)));
    let mut users: Vec<UserMatch> = Vec::new();
    for u in by_email
        .into_iter()
        .chain(named.into_iter().map(|(_, _, u)| u))
    {
        if u.id != caller && !users.iter().any(|seen| seen.id == u.id) {
            users.push(u);
        }
    }
    users.truncate(RESULTS_MAX);
    UserList { users }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(id: &str, name: &str) -> UserMatch {
        UserMatch {
            id: id.into(),
            display_name: name.into(),
        }
    }

    fn q(s: &str) -> UserQuery {
        UserQuery::parse(Some(s)).unwrap()
    }

    #[test]
    fn queries_are_bounded_and_printable() {
        for bad in [None, Some(""), Some("   "), Some("a\u{7}b")] {
            assert_eq!(UserQuery::parse(bad).unwrap_err().code(), "invalid_input");
        }
        assert!(UserQuery::parse(Some(&"x".repeat(100))).is_ok());
        assert!(UserQuery::parse(Some(&"x".repeat(101))).is_err());
        assert_eq!(q(" Ada ").folded, "ada");
        assert_eq!(
            q("Ada@Example.org").email.as_deref(),
            Some("ada@example.org")
        );
        assert_eq!(q("ada").email, None);
    }

    #[test]
    fn names_match_by_prefix_or_word_in_any_case() {
        assert!(name_matches("Ada Lovelace", "ada"));
        assert!(name_matches("Ada Lovelace", "love"));
        assert!(name_matches("Ada Lovelace", "ada lo"));
        assert!(name_matches("Jean-Luc Picard", "luc"));
        assert!(name_matches("ÉLODIE Durand", "élo"));
        assert!(name_matches("Zoë 李", "李"));
        assert!(!name_matches("Ada Lovelace", "velace"));
        assert!(!name_matches("Ada Lovelace", "ada x"));
    }

    #[test]
    fn like_patterns_escape_wildcards_and_loosen_other_cases() {
        let [filter, prefix, word] = q("50%_a\\b").like_patterns();
        assert_eq!(filter, "%50\\%\\_a\\\\b%");
        assert_eq!(prefix, "50\\%\\_a\\\\b%");
        assert_eq!(word, "% 50\\%\\_a\\\\b%");
        // é has an upper case outside ASCII; 李 has no case.
        assert_eq!(q("Élo李").like_patterns()[1], "_lo李%");
    }

    /// D1's limit: a 100-character query made a 102-byte pattern and a 500.
    /// Cut short, the filter still lets the name that is the query through.
    #[test]
    fn like_patterns_fit_d1() {
        for text in [
            "0".repeat(100),
            "%".repeat(100),
            "a\\".repeat(50),
            "李".repeat(100),
        ] {
            let patterns = q(&text).like_patterns();
            for p in &patterns {
                assert!(
                    p.len() <= LIKE_PATTERN_MAX_BYTES,
                    "{p} is {} bytes",
                    p.len()
                );
            }
            assert!(sqlite_like(&patterns[0], &text), "{text}");
        }
        assert_eq!(
            q(&"0".repeat(100)).like_patterns()[0],
            format!("%{}%", "0".repeat(47))
        );
    }

    #[test]
    fn the_answer_puts_the_email_first_and_never_the_caller() {
        let got = pick(
            &q("ada@example.org"),
            "me",
            Some(user("u9", "Someone Else")),
            vec![user("me", "ada@example.org")],
        );
        assert_eq!(got.users, vec![user("u9", "Someone Else")]);
        let got = pick(
            &q("ad"),
            "me",
            None,
            vec![
                user("u3", "Brad Adams"),
                user("u1", "Ada"),
                user("me", "Adam (me)"),
                user("u2", "adele"),
                user("u4", "Chad"),
                user("u1", "Ada"),
            ],
        );
        let ids: Vec<&str> = got.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, vec!["u1", "u2", "u3"]);
        let many: Vec<UserMatch> = (0..50).map(|i| user(&format!("u{i}"), "Ada")).collect();
        assert_eq!(pick(&q("ada"), "me", None, many).users.len(), RESULTS_MAX);
    }

    proptest! {
        /// What `name_matches` accepts, the SQL filter pattern lets through
        /// (as SQLite's LIKE compares: ASCII letters in any case).
        #[test]
        fn the_sql_filter_is_a_superset(name in "[a-zA-Zéèü李 .-]{0,12}", start in 0usize..12, len in 1usize..5) {
            let chars: Vec<char> = name.chars().collect();
            let start = start.min(chars.len());
            let text: String = chars[start..(start + len).min(chars.len())].iter().collect();
            prop_assume!(!text.trim().is_empty());
            let query = q(&text);
            if name_matches(&name, &query.folded) {
                prop_assert!(sqlite_like(&query.like_patterns()[0], &name), "{name:?} {text:?}");
            }
        }
    }

    /// SQLite's LIKE with `ESCAPE '\'`: `%` any run, `_` one character,
    /// ASCII letters case-insensitive, everything else exact.
    fn sqlite_like(pattern: &str, text: &str) -> bool {
        fn go(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
                Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
                Some(('\\', rest)) => match (rest.split_first(), t.split_first()) {
                    (Some((c, rest)), Some((d, t))) => c == d && go(rest, t),
                    _ => false,
                },
                Some((c, rest)) => t
                    .split_first()
                    .is_some_and(|(d, t)| c.eq_ignore_ascii_case(d) && go(rest, t)),
            }
        }
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        go(&p, &t)
    }
}
