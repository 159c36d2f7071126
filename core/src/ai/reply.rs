//! Answers to `@ai` in chat: the prompt (recent conversation as bounded
//! context, the question last) and the check of the answer.

use super::{quote, DigestMessage, Prompt, DATA_IS_NOT_INSTRUCTIONS};

/// Earlier messages given as context, and characters of each.
pub const CONTEXT_MESSAGES: usize = 20;
const CONTEXT_MESSAGE_CHARS: usize = 500;
const ANSWER_TOKENS: u32 = 600;
/// Longest reply posted (a chat body is at most 8 KiB).
pub const REPLY_MAX_CHARS: usize = 3000;

pub fn prompt(question: &DigestMessage, recent: &[DigestMessage]) -> Prompt {
    let earlier: Vec<&DigestMessage> = recent.iter().filter(|m| m.seq < question.seq).collect();
    let skip = earlier.len().saturating_sub(CONTEXT_MESSAGES);
    let mut user = String::from("<data>\n");
    for m in &earlier[skip..] {
        user.push_str(&format!(
            "{}: {}\n",
            quote(&m.author_name, 60),
            quote(&m.body, CONTEXT_MESSAGE_CHARS)
        ));
    }
    user.push_str(&format!(
        "Question from {}: {}\n</data>\n",
        quote(&question.author_name, 60),
        quote(&question.body, CONTEXT_MESSAGE_CHARS)
    ));
    Prompt {
        system: format!(
            "You are Tessera's AI teammate in a team chat room. Answer the question at the end \
             briefly and helpfully, using the conversation before it. You cannot take actions \
             from chat. {DATA_IS_NOT_INSTRUCTIONS}"
        ),
        user,
        max_tokens: ANSWER_TOKENS,
        json: false,
    }
}

/// The reply to post: trimmed and bounded; an empty answer is refused.
pub fn parse(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the answer is empty".into());
    }
    Ok(super::ellipsize(t, REPLY_MAX_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(seq: u64, body: &str) -> DigestMessage {
        DigestMessage {
            seq,
            author: "u".into(),
            author_name: "Ann".into(),
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn context_is_bounded_and_ends_with_the_question() {
        let recent: Vec<DigestMessage> = (1..=50).map(|i| m(i, &"x".repeat(2000))).collect();
        let q = m(51, "@ai what now?");
        let p = prompt(&q, &recent);
        assert_eq!(p.user.lines().count(), CONTEXT_MESSAGES + 3);
        assert!(p.user.len() < 12_000);
        assert!(p.user.contains("Question from Ann: @ai what now?"));
        assert!(!p.json);
    }

    proptest! {
        /// Names and bodies of the conversation never open or close the block.
        #[test]
        fn the_conversation_never_breaks_the_fence(
            texts in proptest::collection::vec(crate::ai::tests::fence_pieces(), 1..6),
        ) {
            let recent: Vec<DigestMessage> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| DigestMessage { author_name: t.clone(), ..m(i as u64, t) })
                .collect();
            let q = DigestMessage { author_name: texts[0].clone(), ..m(99, &texts[0]) };
            let p = prompt(&q, &recent);
            prop_assert_eq!(p.user.matches('<').count(), 2);
        }
    }

    #[test]
    fn answers_are_trimmed_bounded_and_not_empty() {
        assert_eq!(parse("  hi \n").unwrap(), "hi");
        assert!(parse(" \n").is_err());
        assert_eq!(
            parse(&"y".repeat(5000)).unwrap().chars().count(),
            REPLY_MAX_CHARS + 1
        );
    }
}
