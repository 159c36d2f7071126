//! The built-in provider: deterministic, offline and free, and honest about
//! being extractive. It picks the most salient sentences of a text (word
//! frequency, as in Luhn's summariser), summarises a room from its digest
//! (activity counts and changes, open questions, pending approvals) and
//! proposes actions by fixed rules: reminders for overdue activities and
//! unanswered questions, archiving a project whose activities are all closed,
//! deleting a file uploaded twice. It is the default and the last fallback.

use super::checkin::{ProposedAction, RoomPlan};
use super::{DigestMessage, RoomDigest};
use crate::actions::ActivityStatus;
use crate::chat::mention_handle;
use crate::dates::day_of;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "that", "this", "with", "you", "are", "was", "but", "not", "have", "has",
    "from", "they", "she", "his", "her", "its", "our", "your", "can", "will", "would", "could",
    "should", "there", "their", "them", "then", "than", "what", "when", "where", "which", "who",
    "why", "how", "all", "any", "some", "been", "being", "were", "into", "about", "also", "just",
    "out", "off", "too", "very", "one", "get", "got", "let", "yes", "now", "here", "only", "more",
    "most", "such", "these", "those", "over", "under", "again", "does", "did", "doing", "a", "an",
    "of", "to", "in", "on", "is", "it", "be", "as", "at", "by", "or", "if", "so", "we", "i", "me",
    "my", "he", "do", "no", "up",
];

/// Longest quote of one message or sentence in a summary.
const QUOTE_MAX: usize = 200;
/// Actions the built-in provider proposes per room at most.
const PROPOSALS_MAX: usize = 5;

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
}

/// Sentences and lines of a text, trimmed, without empty ones.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes: Vec<(usize, char)> = line.char_indices().collect();
        for (i, &(pos, c)) in bytes.iter().enumerate() {
            let next_is_space = bytes.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
            if matches!(c, '.' | '!' | '?') && next_is_space {
                let end = pos + c.len_utf8();
                out.push(line[start..end].trim());
                start = end;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// The `n` most salient of `items` (in their original order): each scores
/// the summed frequency of its distinct content words, damped by length so
/// long items do not win by size alone.
pub fn salient<'a>(items: &[&'a str], n: usize) -> Vec<&'a str> {
    let mut freq: BTreeMap<String, u32> = BTreeMap::new();
    for item in items {
        for w in words(item) {
            *freq.entry(w).or_default() += 1;
        }
    }
    let mut scored: Vec<(usize, f64)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let distinct: BTreeSet<String> = words(item).collect();
            let sum: u32 = distinct.iter().map(|w| freq[w]).sum();
            (i, f64::from(sum) / ((distinct.len() as f64) + 1.0).sqrt())
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = scored.into_iter().take(n).map(|(i, _)| i).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i]).collect()
}

fn quoted(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("“{}”", super::ellipsize(&one_line, QUOTE_MAX))
}

/// Questions nobody else has answered: a message with a `?` that no one
/// else replied to and after which no one else wrote.
pub fn open_questions(messages: &[DigestMessage]) -> Vec<&DigestMessage> {
    messages
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            m.body.contains('?')
                && m.author != super::AI_USER_ID
                && !messages
                    .iter()
                    .any(|r| r.reply_to == Some(m.seq) && r.author != m.author)
                && !messages[i + 1..]
                    .iter()
                    .any(|later| later.author != m.author)
        })
        .map(|(_, m)| m)
        .collect()
}

fn message_score(m: &DigestMessage, all: &[DigestMessage], freq_rank: &[&str]) -> f64 {
    let replies = all.iter().filter(|r| r.reply_to == Some(m.seq)).count();
    let salient = if freq_rank.contains(&m.body.as_str()) {
        2.0
    } else {
        0.0
    };
    salient + replies as f64 + f64::from(m.reactions) + f64::from(u8::from(m.body.contains('?')))
}

/// The `n` messages that matter most (replies, reactions, questions, salient
/// words), in the order they were written.
pub fn highlights(messages: &[DigestMessage], n: usize) -> Vec<&DigestMessage> {
    let people: Vec<&DigestMessage> = messages
        .iter()
        .filter(|m| m.author != super::AI_USER_ID)
        .collect();
    let bodies: Vec<&str> = people.iter().map(|m| m.body.as_str()).collect();
    let top = salient(&bodies, n);
    let mut scored: Vec<(usize, f64)> = people
        .iter()
        .enumerate()
        .map(|(i, m)| (i, message_score(m, messages, &top)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = scored.into_iter().take(n).map(|(i, _)| i).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| people[i]).collect()
}

fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn conversation(messages: &[DigestMessage], out: &mut Vec<String>) {
    let people: BTreeSet<&str> = messages
        .iter()
        .filter(|m| m.author != super::AI_USER_ID)
        .map(|m| m.author.as_str())
        .collect();
    let highlights = highlights(messages, 3);
    if !highlights.is_empty() {
        out.push(format!(
            "{} from {}. Highlights:",
            counted(messages.len(), "message", "messages"),
            counted(people.len(), "person", "people")
        ));
        for m in highlights {
            out.push(format!("• {}: {}", m.author_name, quoted(&m.body)));
        }
    }
    let open = open_questions(messages);
    if !open.is_empty() {
        out.push("Open questions:".into());
        for m in open.iter().take(3) {
            out.push(format!("• {} asked {}", m.author_name, quoted(&m.body)));
        }
    }
}

fn activities(d: &RoomDigest, out: &mut Vec<String>) {
    if d.activities.is_empty() {
        return;
    }
    let counts: Vec<String> = ActivityStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = d.activities.iter().filter(|a| a.status == *s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str().replace('_', " ")))
        })
        .collect();
    out.push(format!("Activities: {}.", counts.join(", ")));
    let changed: Vec<String> = d
        .activities
        .iter()
        .filter(|a| a.updated_at * 1000 >= d.since_ms)
        .take(5)
        .map(|a| {
            format!(
                "{} ({})",
                quoted(&a.title),
                a.status.as_str().replace('_', " ")
            )
        })
        .collect();
    if !changed.is_empty() {
        out.push(format!("Changed in this period: {}.", changed.join(", ")));
    }
}

/// The built-in check-in of a room: an extractive summary and rule-based
/// proposals (each a catalogue action with its reason).
pub fn checkin(d: &RoomDigest) -> RoomPlan {
    let mut lines = vec![format!(
        "Daily check-in for {} (built-in assistant, extractive: no language model was used).",
        day_of(d.now_ms / 1000)
    )];
    if d.messages.is_empty() {
        lines.push("No new messages in this period.".into());
    }
    conversation(&d.messages, &mut lines);
    activities(d, &mut lines);
    if !d.pending_approvals.is_empty() {
        let names: Vec<&str> = d
            .pending_approvals
            .iter()
            .map(|a| a.action.as_str())
            .collect();
        lines.push(format!(
            "Waiting for an owner: {} request(s) ({}).",
            names.len(),
            names.join(", ")
        ));
    }
    RoomPlan {
        room_id: d.room_id.clone(),
        summary: lines.join("\n"),
        actions: proposals(d),
    }
}

fn proposals(d: &RoomDigest) -> Vec<ProposedAction> {
    let now_secs = d.now_ms / 1000;
    let mut out = Vec::new();
    for a in d
        .open_activities()
        .filter(|a| a.due_at.is_some_and(|due| due < now_secs))
    {
        let due = day_of(a.due_at.unwrap_or_default());
        out.push(ProposedAction {
            name: "send_message".into(),
            args: json!({ "body": format!(
                "Reminder: {} was due on {due} and is still {}.",
                quoted(&a.title),
                a.status.as_str().replace('_', " ")
            ) }),
            reason: format!("activity {} is overdue", a.id),
        });
    }
    if let Some(q) = open_questions(&d.messages).first() {
        out.push(ProposedAction {
            name: "send_message".into(),
            args: json!({ "body": format!(
                "Still open, from @{}: {} Can someone answer?",
                mention_handle(&q.author_name),
                quoted(&q.body)
            ) }),
            reason: format!("message {} asks a question nobody answered", q.seq),
        });
    }
    let archive_waiting = d
        .pending_approvals
        .iter()
        .any(|a| a.action == "archive_room");
    if !d.activities.is_empty() && d.open_activities().next().is_none() && !archive_waiting {
        out.push(ProposedAction {
            name: "archive_room".into(),
            args: json!({}),
            reason: format!(
                "all {} activities are done or cancelled",
                d.activities.len()
            ),
        });
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut files: Vec<_> = d.files.iter().collect();
    files.sort_by_key(|f| (f.created_at, f.id.as_str()));
    for f in files {
        let Some(sha) = f.sha256.as_deref() else {
            continue;
        };
        match seen.get(sha) {
            Some(first) => out.push(ProposedAction {
                name: "delete_file".into(),
                args: json!({ "id": f.id }),
                reason: format!("{} has the same content as file {first}", quoted(&f.name)),
            }),
            None => {
                seen.insert(sha, &f.id);
            }
        }
    }
    out.truncate(PROPOSALS_MAX);
    out
}

/// The built-in answer to an `@ai` message: what it can say without a model.
pub fn reply(question: &DigestMessage, recent: &[DigestMessage]) -> String {
    let mut lines = vec![format!(
        "@{} I am the built-in assistant: no language model is configured, so I can only \
         summarise what is here.",
        mention_handle(&question.author_name)
    )];
    let others: Vec<DigestMessage> = recent
        .iter()
        .filter(|m| m.seq != question.seq)
        .cloned()
        .collect();
    if others.is_empty() {
        lines.push("There is no earlier conversation to summarise yet.".into());
    } else {
        conversation(&others, &mut lines);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Activity;
    use crate::ai::{DigestFile, PendingApproval};

    fn msg(seq: u64, author: &str, body: &str) -> DigestMessage {
        DigestMessage {
            seq,
            author: author.into(),
            author_name: author.to_uppercase(),
            body: body.into(),
            reply_to: None,
            created_at: seq * 1000,
            reactions: 0,
        }
    }

    fn activity(id: &str, status: ActivityStatus, due_at: Option<u64>) -> Activity {
        Activity {
            id: id.into(),
            title: format!("Task {id}"),
            description: String::new(),
            status,
            created_by: "u1".into(),
            assignees: Vec::new(),
            scheduled_at: None,
            due_at,
            votes: Vec::new(),
            updated_at: 0,
        }
    }

    #[test]
    fn sentences_split_on_ends_and_lines() {
        assert_eq!(
            sentences("One two. Three?\nFour! v1.2 stays\n\n"),
            ["One two.", "Three?", "Four!", "v1.2 stays"]
        );
    }

    #[test]
    fn salient_sentences_share_the_text_s_frequent_words() {
        let text = "The release needs the database migration. Lunch was nice. \
                    The database migration blocks the release. Weather is fine.";
        let s = sentences(text);
        assert_eq!(
            salient(&s, 2),
            [
                "The release needs the database migration.",
                "The database migration blocks the release."
            ]
        );
    }

    #[test]
    fn open_questions_are_the_unanswered_ones() {
        let mut answered = msg(1, "a", "Who deploys?");
        answered.seq = 1;
        let mut reply = msg(2, "b", "me");
        reply.reply_to = Some(1);
        let later = msg(3, "c", "When is the demo?");
        let own_follow_up = msg(4, "c", "Anyone?");
        let msgs = [answered, reply, later, own_follow_up];
        let open: Vec<u64> = open_questions(&msgs).iter().map(|m| m.seq).collect();
        assert_eq!(open, [3, 4]);
    }

    #[test]
    fn the_checkin_summarises_and_proposes_by_rule() {
        let now = 100 * 86_400;
        let d = RoomDigest {
            room_id: "r1".into(),
            now_ms: now * 1000,
            since_ms: (now - 86_400) * 1000,
            messages: vec![
                msg(1, "a", "The migration is ready for review."),
                msg(2, "b", "Can someone review the migration today?"),
            ],
            message_count: 2,
            activities: vec![
                activity("a1", ActivityStatus::InProgress, Some(now - 10)),
                activity("a2", ActivityStatus::Done, None),
            ],
            pending_approvals: vec![PendingApproval {
                id: "ap1".into(),
                action: "remove_member".into(),
                requested_by: "u2".into(),
            }],
            files: vec![
                DigestFile {
                    id: "f1".into(),
                    name: "a.txt".into(),
                    size: 3,
                    sha256: Some("x".into()),
                    created_at: 1,
                },
                DigestFile {
                    id: "f2".into(),
                    name: "b.txt".into(),
                    size: 3,
                    sha256: Some("x".into()),
                    created_at: 2,
                },
            ],
            ..Default::default()
        };
        let plan = checkin(&d);
        assert!(
            plan.summary.contains("2 messages from 2 people"),
            "{}",
            plan.summary
        );
        assert!(plan
            .summary
            .contains("B asked “Can someone review the migration today?”"));
        assert!(plan.summary.contains("Activities: 1 in progress, 1 done."));
        assert!(plan
            .summary
            .contains("Waiting for an owner: 1 request(s) (remove_member)."));
        let names: Vec<&str> = plan.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["send_message", "send_message", "delete_file"]);
        assert_eq!(plan.actions[2].args, json!({ "id": "f2" }));
        assert!(plan.actions[1].args["body"]
            .as_str()
            .unwrap()
            .contains("@b"));
        // Deterministic.
        assert_eq!(checkin(&d), plan);
        // Every activity closed: archive is proposed (once).
        let mut done = d.clone();
        done.activities = vec![activity("a2", ActivityStatus::Done, None)];
        done.files.clear();
        assert!(checkin(&done)
            .actions
            .iter()
            .any(|a| a.name == "archive_room"));
        done.pending_approvals[0].action = "archive_room".into();
        assert!(!checkin(&done)
            .actions
            .iter()
            .any(|a| a.name == "archive_room"));
    }

    #[test]
    fn the_builtin_reply_says_what_it_is() {
        let q = msg(3, "c", "@ai what did I miss?");
        let text = reply(&q, &[msg(1, "a", "Ship on Friday."), q.clone()]);
        assert!(text.starts_with("@c I am the built-in assistant"));
        assert!(text.contains("“Ship on Friday.”"));
        assert!(reply(&q, std::slice::from_ref(&q)).contains("no earlier conversation"));
    }
}
