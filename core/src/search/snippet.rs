//! Highlighted snippets: SQLite's `highlight`/`snippet` output (matches
//! between the private-use marks of [`super::text`]) turned into text parts
//! that say which are matches, and into HTML where everything but the
//! `<mark>` elements is escaped. Browsers build the parts as DOM text; other
//! clients may insert the HTML as it is.

use super::text::{MARK_CLOSE, MARK_OPEN, SPLIT};
use serde::{Deserialize, Serialize};

/// One run of a snippet's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub text: String,
    /// Whether the run matched the query.
    pub mark: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    /// HTML: the text escaped, matches in `<mark>`.
    pub html: String,
    pub parts: Vec<Part>,
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

impl Snippet {
    /// From highlighted output: the marks delimit matches (a stray or nested
    /// mark cannot open HTML: marks are only ever read, never copied), and the
    /// CJK separators of indexed text are dropped.
    pub fn from_marked(marked: &str) -> Snippet {
        let mut parts: Vec<Part> = Vec::new();
        let mut mark = false;
        let mut run = String::new();
        let flush = |run: &mut String, mark: bool, parts: &mut Vec<Part>| {
            if !run.is_empty() {
                parts.push(Part {
                    text: std::mem::take(run),
                    mark,
                });
            }
        };
        for c in marked.chars() {
            match c {
                MARK_OPEN => {
                    flush(&mut run, mark, &mut parts);
                    mark = true;
                }
                MARK_CLOSE => {
                    flush(&mut run, mark, &mut parts);
                    mark = false;
                }
                SPLIT => {}
                c => run.push(c),
            }
        }
        flush(&mut run, mark, &mut parts);
        Snippet::from_parts(parts)
    }

    /// Plain text without matches (a semantic hit, or text nothing matched
    /// in), at most `max_chars` characters with `…` when cut.
    pub fn plain(text: &str, max_chars: usize) -> Snippet {
        let text: String = text.chars().filter(|c| *c != SPLIT).collect();
        let text = crate::ai::ellipsize(text.trim(), max_chars);
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part { text, mark: false }]
        };
        Snippet::from_parts(parts)
    }

    fn from_parts(parts: Vec<Part>) -> Snippet {
        let mut html = String::new();
        for p in &parts {
            if p.mark {
                html.push_str("<mark>");
            }
            escape_html(&p.text, &mut html);
            if p.mark {
                html.push_str("</mark>");
            }
        }
        Snippet { html, parts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_are_marked_and_the_rest_escaped() {
        let s = Snippet::from_marked("…<b>x</b> & \u{E000}deploy\u{E001} \"now\"…");
        assert_eq!(
            s.html,
            "…&lt;b&gt;x&lt;/b&gt; &amp; <mark>deploy</mark> &quot;now&quot;…"
        );
        assert_eq!(s.parts.len(), 3);
        assert_eq!(
            s.parts[1],
            Part {
                text: "deploy".into(),
                mark: true
            }
        );
    }

    #[test]
    fn cjk_separators_are_dropped() {
        let s = Snippet::from_marked("東\u{E002}京\u{E002}\u{E000}天\u{E002}気\u{E001}");
        assert_eq!(s.html, "東京<mark>天気</mark>");
    }

    #[test]
    fn plain_snippets_are_cut_and_escaped() {
        assert_eq!(
            Snippet::plain("  <i>hello</i> world ", 8).html,
            "&lt;i&gt;hello…"
        );
        assert!(Snippet::plain("   ", 10).parts.is_empty());
    }

    /// What is left of the HTML after removing the `<mark>` tags has no
    /// markup at all, whatever the input.
    fn no_markup_but_marks(html: &str) -> bool {
        let rest = html.replace("<mark>", "").replace("</mark>", "");
        !rest.contains('<') && !rest.contains('>') && !rest.contains('"') && !rest.contains('\'')
    }

    proptest! {
        #[test]
        fn snippets_never_carry_unescaped_content(text in any::<String>()) {
            let s = Snippet::from_marked(&text);
            prop_assert!(no_markup_but_marks(&s.html), "{}", s.html);
            let joined: String = s.parts.iter().map(|p| p.text.as_str()).collect();
            let expected: String = text.chars().filter(|c| !matches!(*c, MARK_OPEN | MARK_CLOSE | SPLIT)).collect();
            prop_assert_eq!(joined, expected);
            prop_assert!(no_markup_but_marks(&Snippet::plain(&text, 50).html));
        }

        #[test]
        fn markup_in_text_is_escaped(a in "[<>&\"' a-z]{0,20}", b in "[<>&\"' a-z]{0,20}") {
            let s = Snippet::from_marked(&format!("{a}\u{E000}{b}\u{E001}"));
            prop_assert!(no_markup_but_marks(&s.html));
        }
    }
}
