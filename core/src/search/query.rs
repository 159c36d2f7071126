//! What a person types into the search box, parsed into terms, and the FTS5
//! `MATCH` expression built from them.
//!
//! The syntax is small: words (all must match), `"exact phrases"`, `-word`
//! and `-"phrase"` to exclude, `word*` for a prefix; the last word of the
//! query is a prefix too, so results follow the typing. Nothing a person types
//! reaches FTS5 as syntax: every term is emitted as an FTS5 string (quoted,
//! its quotes doubled), so `OR`, `NEAR`, `col:`, `^`, parentheses and the like
//! are plain words, and no column filter can be named. The expression can
//! therefore neither fail to parse nor reach outside the columns and rows the
//! SQL around it selects.

use super::text::{for_index, has_token};
use crate::ApiError;

/// Longest query, in characters.
pub const QUERY_MAX_CHARS: usize = 256;
/// Most terms in a query (included and excluded).
pub const TERMS_MAX: usize = 16;
/// Prefixes shorter than this are matched as whole words: a one-letter prefix
/// matches most of the index and says little.
pub const PREFIX_MIN_CHARS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The words as typed (without quotes, `-` or `*`).
    pub text: String,
    pub prefix: bool,
    pub exclude: bool,
}

/// A parsed query: at least one term to find, and some to exclude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

impl Query {
    pub fn parse(q: &str) -> Result<Query, ApiError> {
        if q.chars().count() > QUERY_MAX_CHARS {
            return Err(invalid(format!(
                "the query is longer than {QUERY_MAX_CHARS} characters"
            )));
        }
        let mut terms = Vec::new();
        let mut chars = q.char_indices().peekable();
        // Whether the last term ran to the end of the query (still being typed).
        let mut last_open = false;
        while let Some((start, c)) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            let mut exclude = false;
            let mut first = (start, c);
            if c == '-' {
                match chars.peek() {
                    Some(&(i, n)) if !n.is_whitespace() => {
                        exclude = true;
                        chars.next();
                        first = (i, n);
                    }
                    _ => continue,
                }
            }
            let (text, quoted) = if first.1 == '"' {
                let from = first.0 + 1;
                let mut end = None;
                for (i, c) in chars.by_ref() {
                    if c == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or_else(|| {
                    invalid("the query has an unbalanced quote: close the phrase with \"")
                })?;
                (&q[from..end], true)
            } else {
                let mut end = q.len();
                let mut next = chars.peek().copied();
                while let Some((i, c)) = next {
                    if c.is_whitespace() || c == '"' {
                        end = i;
                        break;
                    }
                    chars.next();
                    next = chars.peek().copied();
                }
                (&q[first.0..end], false)
            };
            let mut text = text;
            let mut prefix = false;
            if chars.peek().is_some_and(|&(_, c)| c == '*') {
                chars.next();
                prefix = true;
            }
            if !quoted && text.ends_with('*') {
                text = text.trim_end_matches('*');
                prefix = true;
            }
            last_open = !quoted && !prefix && chars.peek().is_none();
            if !has_token(text) {
                continue;
            }
            if terms.len() == TERMS_MAX {
                return Err(invalid(format!(
                    "the query has more than {TERMS_MAX} terms"
                )));
            }
            terms.push(Term {
                text: text.to_string(),
                prefix,
                exclude,
            });
        }
        if last_open {
            if let Some(t) = terms.last_mut().filter(|t| !t.exclude) {
                t.prefix = true;
            }
        }
        for t in &mut terms {
            t.prefix &= t.text.chars().filter(|c| c.is_alphanumeric()).count() >= PREFIX_MIN_CHARS;
        }
        if terms.is_empty() {
            return Err(invalid("the query has no words to search for"));
        }
        if terms.iter().all(|t| t.exclude) {
            return Err(invalid(
                "a query needs at least one word that is not excluded with -",
            ));
        }
        Ok(Query { terms })
    }

    /// The FTS5 expression: the included terms (all of them), then each
    /// excluded one with `NOT`.
    pub fn to_match(&self) -> String {
        let quote = |t: &Term| {
            let body = for_index(&t.text, QUERY_MAX_CHARS * 8).replace('"', "\"\"");
            format!("\"{body}\"{}", if t.prefix { "*" } else { "" })
        };
        let included: Vec<String> = self
            .terms
            .iter()
            .filter(|t| !t.exclude)
            .map(quote)
            .collect();
        let mut expr = format!("({})", included.join(" "));
        for t in self.terms.iter().filter(|t| t.exclude) {
            expr.push_str(" NOT ");
            expr.push_str(&quote(t));
        }
        expr
    }

    /// The included words as one text (what semantic search embeds).
    pub fn plain(&self) -> String {
        self.terms
            .iter()
            .filter(|t| !t.exclude)
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, prefix: bool, exclude: bool) -> Term {
        Term {
            text: text.into(),
            prefix,
            exclude,
        }
    }

    #[test]
    fn words_phrases_exclusions_and_prefixes() {
        let q = Query::parse(r#"deploy "release notes" -staging -"old plan" conf*  "#).unwrap();
        assert_eq!(
            q.terms,
            vec![
                term("deploy", false, false),
                term("release notes", false, false),
                term("staging", false, true),
                term("old plan", false, true),
                term("conf", true, false),
            ]
        );
        assert_eq!(
            q.to_match(),
            r#"("deploy" "release notes" "conf"*) NOT "staging" NOT "old plan""#
        );
    }

    #[test]
    fn the_word_being_typed_is_a_prefix() {
        let q = Query::parse("launch pla").unwrap();
        assert_eq!(q.to_match(), r#"("launch" "pla"*)"#);
        // Finished with a space, or a phrase: whole words.
        assert_eq!(
            Query::parse("launch pla ").unwrap().to_match(),
            r#"("launch" "pla")"#
        );
        assert_eq!(
            Query::parse(r#""launch pla""#).unwrap().to_match(),
            r#"("launch pla")"#
        );
        // One letter says too little to be a prefix.
        assert_eq!(Query::parse("a").unwrap().to_match(), r#"("a")"#);
        assert_eq!(Query::parse("x*").unwrap().to_match(), r#"("x")"#);
    }

    #[test]
    fn fts_syntax_is_only_words() {
        let q = Query::parse(r#"body:secret OR NEAR(a b) ^x +y {title}: AND*"#).unwrap();
        assert_eq!(
            q.to_match(),
            r#"("body:secret" "OR" "NEAR(a" "b)" "^x" "+y" "{title}:" "AND"*)"#
        );
        let q = Query::parse(r#"a"b c" d"#).unwrap();
        assert_eq!(
            q.terms,
            vec![
                term("a", false, false),
                term("b c", false, false),
                term("d", false, false)
            ]
        );
    }

    #[test]
    fn cjk_words_become_phrases_of_characters() {
        let q = Query::parse("天気 ").unwrap();
        assert_eq!(q.to_match(), "(\"天\u{E002}気\")");
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        for (q, why) in [
            (r#"say "hello"#, "unbalanced quote"),
            ("", "no words"),
            ("   -  !!! ... ", "no words"),
            ("-secret", "at least one word"),
            (&"x".repeat(QUERY_MAX_CHARS + 1), "longer than"),
            (&"a ".repeat(TERMS_MAX + 1), "more than"),
        ] {
            let e = Query::parse(q).unwrap_err();
            assert_eq!(e.status(), 400, "{q}");
            assert!(e.to_string().contains(why), "{q}: {e}");
        }
    }

    #[test]
    fn the_embedded_text_is_the_included_words() {
        let q = Query::parse(r#"projects "visualize data" -jquery"#).unwrap();
        assert_eq!(q.plain(), "projects visualize data");
    }
}
