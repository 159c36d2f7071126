//! The tokenising rules that what is indexed and what is asked share.
//!
//! Both indexes (the room object's and D1's) use SQLite's `unicode61`
//! tokenizer with `remove_diacritics 2` (so "café" and "cafe" are one word)
//! and one extra separator, [`SPLIT`]. `unicode61` keeps a run of CJK
//! characters as one token (Chinese and Japanese have no spaces), so a word
//! inside a sentence could never be found; text is therefore indexed with
//! [`SPLIT`] between CJK characters, each becoming its own token, and a CJK
//! query becomes a phrase of adjacent characters (any substring matches, from
//! one character up). Measured under workerd: `trigram` would need three
//! characters, and most Chinese words have two.
//!
//! Three private-use characters are reserved: [`SPLIT`] and the two marks
//! that SQLite's `highlight`/`snippet` put around matches. Content cannot
//! contain them (they are replaced when text is indexed), so a mark in a
//! snippet is always SQLite's, never the author's.

/// Opens a match in SQLite's highlighted output.
pub const MARK_OPEN: char = '\u{E000}';
/// Closes a match.
pub const MARK_CLOSE: char = '\u{E001}';
/// Separates CJK characters in indexed text (a token separator of the tokenizer).
pub const SPLIT: char = '\u{E002}';

/// The FTS5 tokenizer both indexes are created with (see the module comment).
pub const TOKENIZER: &str = "unicode61 remove_diacritics 2 separators '\u{E002}'";

/// Characters of scripts written without spaces between words: Han
/// ideographs, kana and Hangul syllables (Korean uses spaces, but particles
/// join the word before them: "서울에서" should be found by "서울").
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF     // Hangul Jamo
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3130..=0x318F   // Hangul compatibility Jamo
        | 0x31F0..=0x31FF   // Katakana phonetic extensions
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF66..=0xFF9F   // half-width Katakana
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

fn is_reserved(c: char) -> bool {
    matches!(c, MARK_OPEN | MARK_CLOSE | SPLIT)
}

/// Text as it is indexed (and as query words are matched): the reserved
/// characters and control characters become spaces, CJK characters are split
/// apart, and the result is cut to at most `max_bytes` at a character boundary.
pub fn for_index(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let c = if is_reserved(c) || (c.is_control() && c != '\n' && c != '\t') {
            ' '
        } else {
            c
        };
        if let Some(p) = prev {
            if (is_cjk(p) || is_cjk(c)) && !p.is_whitespace() && !c.is_whitespace() {
                if out.len() + SPLIT.len_utf8() + c.len_utf8() > max_bytes {
                    break;
                }
                out.push(SPLIT);
            }
        }
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Whether a word has anything the tokenizer would index.
pub fn has_token(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cjk_characters_are_split_and_other_text_is_kept() {
        assert_eq!(
            for_index("東京の天気 tokyo", 100),
            "東\u{E002}京\u{E002}の\u{E002}天\u{E002}気 tokyo"
        );
        assert_eq!(for_index("東京tokyo", 100), "東\u{E002}京\u{E002}tokyo");
        assert_eq!(for_index("Crème brûlée", 100), "Crème brûlée");
        assert_eq!(for_index("서울에서", 100).matches(SPLIT).count(), 3);
    }

    #[test]
    fn reserved_and_control_characters_become_spaces() {
        assert_eq!(for_index("a\u{E000}b\u{E001}c\u{E002}d", 100), "a b c d");
        assert_eq!(for_index("a\u{0}b\u{7}c\nd\te", 100), "a b c\nd\te");
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(for_index("ééé", 5), "éé");
        assert_eq!(for_index("東京", 4), "東");
        assert_eq!(for_index("abc", 0), "");
    }

    proptest! {
        #[test]
        fn indexed_text_never_carries_marks_and_fits(text in any::<String>(), max in 0usize..64) {
            let out = for_index(&text, max);
            prop_assert!(out.len() <= max);
            prop_assert!(!out.contains(MARK_OPEN) && !out.contains(MARK_CLOSE));
            prop_assert_eq!(out.replace(SPLIT, "").chars().count() <= text.chars().count(), true);
        }
    }
}
