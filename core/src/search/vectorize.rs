//! The Vectorize index a deployment may bind (`VECTORIZE`): how items'
//! vectors are named in it, what a query asks, and what an answer means.
//!
//! The index only proposes candidates. Each room object scores them against
//! its own stored vectors (`sql::vectors` with `only`), so a vector sent
//! before its item was edited or deleted is never what finds it, and the
//! room's access rules stay the only ones.

/// Vectorize's largest `topK` when neither values nor metadata are returned.
pub const TOP_K_MAX: u32 = 100;
/// Vectorize's limit on a query filter's compact JSON.
const FILTER_BYTES_MAX: usize = 2048;

/// An item's vector id: its room and its id there (at most 64 bytes: a room
/// id is 32 characters, an item id at most 16 digits).
pub fn vector_id(room: &str, item: i64) -> String {
    format!("{room}:{item}")
}

/// A query's filter, `{"room":{"$in":[...]}}` (the rooms' ids need no
/// escaping: they are path parameters), for the first of `rooms` (the
/// caller's, most recently active first) that fit its size limit; rooms
/// past it are left out, as the room fan-out leaves out rooms past its own
/// limit. With room ids of 32 characters about 55 fit.
pub fn filter(rooms: &[&str]) -> String {
    let mut out = String::from(r#"{"room":{"$in":["#);
    for (n, room) in rooms.iter().enumerate() {
        if n > 0 && out.len() + room.len() + 6 > FILTER_BYTES_MAX {
            break;
        }
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(room);
        out.push('"');
    }
    out.push_str("]}}");
    out
}

/// The candidates of a query's answer (its matches' ids, best first), one
/// list per room of `rooms`. Ids of a room not asked about (the filter
/// should have kept them out) or not of [`vector_id`]'s form are dropped.
pub fn candidates<I: IntoIterator<Item = String>>(ids: I, rooms: &[&str]) -> Vec<Vec<i64>> {
    let mut by_room = vec![Vec::new(); rooms.len()];
    for id in ids {
        let Some((room, item)) = id.rsplit_once(':') else {
            continue;
        };
        if let (Some(at), Ok(item)) = (rooms.iter().position(|r| *r == room), item.parse()) {
            by_room[at].push(item);
        }
    }
    by_room
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_names_the_rooms_asked_within_the_size_limit() {
        let rooms: Vec<String> = (0..80).map(|n| format!("{n:032x}")).collect();
        let refs: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let f: serde_json::Value = serde_json::from_str(&filter(&refs)).unwrap();
        let kept = f["room"]["$in"].as_array().unwrap();
        assert!(kept.len() > 50 && kept.len() < 80, "{}", kept.len());
        assert_eq!(kept[0], refs[0], "the most recent rooms are kept");
        assert!(filter(&refs).len() <= FILTER_BYTES_MAX);
        let more = filter(&refs[..kept.len() + 1]);
        assert_eq!(more, filter(&refs), "one room more does not fit");
        assert_eq!(filter(&["r1", "r2"]), r#"{"room":{"$in":["r1","r2"]}}"#);
    }

    #[test]
    fn answers_become_candidates_of_the_rooms_asked_only() {
        let ids = ["r1:7", "r2:3", "r1:2", "elsewhere:1", "r1:x", "plain"];
        let c = candidates(ids.map(String::from), &["r1", "r2", "r3"]);
        assert_eq!(c, vec![vec![7, 2], vec![3], vec![]]);
        assert_eq!(vector_id(&"f".repeat(32), i64::MAX).len(), 52);
    }
}
