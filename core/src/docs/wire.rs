//! The shape of y-protocol frames, checked before yrs decodes them. yrs decodes
//! nested values recursively with no depth bound (a 2 MB update of a million
//! nested arrays overflows the stack, and a trap resets every room of the
//! isolate), and it reserves memory for the counts a message declares (five
//! bytes can declare ten million state-vector entries). This walks a frame
//! the way yrs 0.28's v1 decoder reads it, without allocating, and refuses
//! values nested deeper than [`NESTING_MAX`], counts that the remaining bytes
//! cannot hold, and awareness and state-vector messages over their bounds.
//! It also counts the shared types an update creates: yrs deletes and
//! collects nested types recursively, so their number (which bounds their
//! nesting) is bounded per document (`DocLimits::types_per_doc`).
//! Whatever passes is still decoded by yrs, which checks everything else.

use super::{DocError, DocLimits};

/// Deepest nesting of arrays and maps in one value (binary or JSON), the same
/// bound serde_json applies to the JSON values yrs parses.
pub const NESTING_MAX: usize = 128;

fn malformed(what: &str) -> DocError {
    DocError::Malformed(what.to_string())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn u8(&mut self) -> Result<u8, DocError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| malformed("truncated message"))?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8], DocError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| malformed("truncated message"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// An unsigned LEB128 integer of at most 64 bits.
    fn var(&mut self) -> Result<u64, DocError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("integer too long"))
    }

    /// lib0's signed integer: skipped, only its length matters here.
    fn signed(&mut self) -> Result<(), DocError> {
        for _ in 0..10 {
            if self.u8()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(malformed("integer too long"))
    }

    /// A length-prefixed run of bytes (strings, buffers, nested messages).
    fn bytes(&mut self) -> Result<&'a [u8], DocError> {
        let n = self.var()?;
        self.skip(usize::try_from(n).map_err(|_| malformed("length too large"))?)
    }

    /// A declared count of elements of at least `min_bytes` each, refused when
    /// the rest of the message could not hold that many.
    fn count(&mut self, min_bytes: usize) -> Result<u64, DocError> {
        let n = self.var()?;
        let room = (self.remaining() / min_bytes.max(1)) as u64;
        if n > room {
            return Err(DocError::Malformed(format!(
                "declares {n} elements in {} bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }
}

/// Checks every message of one WebSocket frame (or REST body wrapped as one);
/// returns how many shared types its updates create.
pub fn check_frame(frame: &[u8], limits: &DocLimits) -> Result<u64, DocError> {
    let mut r = Reader::new(frame);
    let mut types = 0;
    while !r.done() {
        match r.var()? {
            0 => match r.var()? {
                0 => state_vector(r.bytes()?, limits)?,
                1 | 2 => types += update(r.bytes()?)?,
                other => return Err(DocError::Malformed(format!("sync message type {other}"))),
            },
            1 => awareness(r.bytes()?, limits)?,
            3 => {}
            // Auth and custom messages are refused whole (see `decode_frame`).
            tag => return Err(DocError::Unsupported(u8::try_from(tag).unwrap_or(u8::MAX))),
        }
    }
    Ok(types)
}

fn state_vector(sv: &[u8], limits: &DocLimits) -> Result<(), DocError> {
    if sv.len() > limits.state_vector_bytes {
        return Err(DocError::MessageTooLarge(limits.state_vector_bytes));
    }
    let mut r = Reader::new(sv);
    for _ in 0..r.count(2)? {
        r.var()?;
        r.var()?;
    }
    Ok(())
}

fn awareness(data: &[u8], limits: &DocLimits) -> Result<(), DocError> {
    if data.len() > limits.awareness_bytes {
        return Err(DocError::AwarenessTooLarge(format!(
            "an awareness message is at most {} bytes",
            limits.awareness_bytes
        )));
    }
    let mut r = Reader::new(data);
    let clients = r.count(3)?;
    if clients > limits.awareness_clients as u64 {
        return Err(DocError::AwarenessTooLarge(format!(
            "an awareness message speaks for at most {} clients",
            limits.awareness_clients
        )));
    }
    for _ in 0..clients {
        r.var()?;
        r.var()?;
        json(r.bytes()?)?;
    }
    Ok(())
}

/// A Yjs v1 update: the structs of each client, then the delete set.
/// Returns how many shared types it creates.
pub fn update(bytes: &[u8]) -> Result<u64, DocError> {
    let mut r = Reader::new(bytes);
    let mut types = 0;
    for _ in 0..r.count(3)? {
        let structs = r.count(2)?;
        r.var()?; // client
        r.var()?; // first clock
        for _ in 0..structs {
            types += u64::from(block(&mut r)?);
        }
    }
    for _ in 0..r.count(2)? {
        r.var()?; // client
        for _ in 0..r.count(2)? {
            r.var()?; // clock
            r.var()?; // length
        }
    }
    Ok(types)
}

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const SKIP: u8 = 10;
const GC: u8 = 0;

/// One struct; whether it is a shared type.
fn block(r: &mut Reader) -> Result<bool, DocError> {
    let info = r.u8()?;
    if info == SKIP || info == GC {
        r.var()?;
        return Ok(false);
    }
    if info & HAS_ORIGIN != 0 {
        r.var()?;
        r.var()?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        r.var()?;
        r.var()?;
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        if r.var()? == 1 {
            r.bytes()?; // a root's name
        } else {
            r.var()?; // the parent item's id
            r.var()?;
        }
        if info & HAS_PARENT_SUB != 0 {
            r.bytes()?;
        }
    }
    match info & 0b1111 {
        // deleted: a length
        1 => {
            r.var()?;
        }
        // JSON: yrs reads one string more than the count says
        2 => {
            let n = r.count(1)?;
            if n > i32::MAX as u64 {
                return Err(malformed("JSON content count too large"));
            }
            for _ in 0..=n {
                json(r.bytes()?)?;
            }
        }
        // binary, string
        3 | 4 => {
            r.bytes()?;
        }
        // embed: a JSON value
        5 => json(r.bytes()?)?,
        // format: a key and a JSON value
        6 => {
            r.bytes()?;
            json(r.bytes()?)?;
        }
        // a shared type; XML elements carry their tag
        7 => {
            if r.u8()? == 3 {
                r.bytes()?;
            }
            return Ok(true);
        }
        8 => {
            for _ in 0..r.count(1)? {
                value(r)?;
            }
        }
        // a subdocument: its guid and options
        9 => {
            r.bytes()?;
            value(r)?;
        }
        other => return Err(DocError::Malformed(format!("content type {other}"))),
    }
    Ok(false)
}

/// One lib0 binary value, walked with an explicit stack so that the check
/// itself cannot recurse.
fn value(r: &mut Reader) -> Result<(), DocError> {
    // Per open container: elements left, and whether they are map entries.
    let mut open = [(0u64, false); NESTING_MAX];
    let mut depth = 0;
    loop {
        if depth > 0 && open[depth - 1].1 {
            r.bytes()?; // the entry's key
        }
        match r.u8()? {
            tag @ (117 | 118) => {
                let is_map = tag == 118;
                let n = r.count(if is_map { 2 } else { 1 })?;
                if n > 0 {
                    if depth == NESTING_MAX {
                        return Err(DocError::TooDeep(NESTING_MAX));
                    }
                    open[depth] = (n, is_map);
                    depth += 1;
                    continue;
                }
            }
            // undefined, null, false, true
            127 | 126 | 121 | 120 => {}
            125 => r.signed()?,
            124 => {
                r.skip(4)?;
            }
            123 | 122 => {
                r.skip(8)?;
            }
            // string, buffer
            119 | 116 => {
                r.bytes()?;
            }
            other => return Err(DocError::Malformed(format!("value type {other}"))),
        }
        // One value is complete: count it off, closing the containers it completes.
        loop {
            if depth == 0 {
                return Ok(());
            }
            open[depth - 1].0 -= 1;
            if open[depth - 1].0 > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// The nesting of a JSON text (yrs parses embeds, formats and JSON content
/// with serde_json, whose own depth limit a feature flag can turn off).
fn json(text: &[u8]) -> Result<(), DocError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > NESTING_MAX {
                    return Err(DocError::TooDeep(NESTING_MAX));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::update_message;
    use proptest::prelude::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Any, Array, Doc, Map, ReadTxn, Text, Transact, Update, WriteTxn, Xml, XmlFragment};

    fn var(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = n;
        while n > 127 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    fn string(s: &str) -> Vec<u8> {
        [var(s.len() as u64), s.as_bytes().to_vec()].concat()
    }

    /// The start of an update of one item in root array `root` holding one
    /// value, which the caller appends (then the empty delete set).
    fn any_item(root: &str, client: u64) -> Vec<u8> {
        [
            var(1),
            var(1),
            var(client),
            var(0),
            vec![8],
            var(1),
            string(root),
            var(1),
        ]
        .concat()
    }

    /// An update whose one item, in root array `nest`, holds `depth` nested arrays.
    fn nested(depth: usize) -> Vec<u8> {
        let mut u = any_item("nest", 4242);
        for _ in 0..depth {
            u.extend([117, 1]);
        }
        u.extend([126, 0]);
        u
    }

    #[test]
    fn nesting_up_to_the_bound_passes_and_decodes() {
        let ok = nested(NESTING_MAX);
        update(&ok).unwrap();
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&ok).unwrap())
            .unwrap();
        assert_eq!(doc.get_or_insert_array("nest").len(&doc.transact()), 1);
    }

    #[test]
    fn deeper_nesting_is_refused_before_decoding() {
        assert_eq!(
            update(&nested(NESTING_MAX + 1)),
            Err(DocError::TooDeep(NESTING_MAX))
        );
        let bomb = nested(1_000_000);
        let e = check_frame(&update_message(&bomb), &DocLimits::default()).unwrap_err();
        assert_eq!(
            (e.close_code(), e.clone()),
            (1007, DocError::TooDeep(NESTING_MAX))
        );
        assert!(e.to_string().contains("nest"), "{e}");
    }

    #[test]
    fn nested_maps_and_json_are_bounded_too() {
        let mut map = any_item("m", 4242);
        for _ in 0..=NESTING_MAX {
            map.extend([118, 1]);
            map.extend(string("k"));
        }
        map.extend([126, 0]);
        assert_eq!(update(&map), Err(DocError::TooDeep(NESTING_MAX)));
        let deep = format!(
            "{}1{}",
            "[".repeat(NESTING_MAX + 1),
            "]".repeat(NESTING_MAX + 1)
        );
        assert_eq!(json(deep.as_bytes()), Err(DocError::TooDeep(NESTING_MAX)));
        // Brackets inside strings do not count.
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        json(quoted.as_bytes()).unwrap();
    }

    #[test]
    fn lengths_near_u32_max_never_reach_yrs() {
        // The live fuzzer's crashes on main before the shape check: yrs 0.28
        // adds a length to its position in 32-bit usize on wasm32, which
        // overflows and panics the instance. A sync update of 2^32 - 1 bytes
        // in ten, and an update whose root name is 2^32 - 1 bytes long.
        let frame = [vec![0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![0; 10]].concat();
        assert!(check_frame(&frame, &DocLimits::default()).is_err());
        let root_name = [
            0x01, 0x01, 0xa6, 0xa0, 0xf0, 0xf8, 0x09, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff, 0xff,
            0x0f, 0x74, 0x01, 0x78, 0x00,
        ];
        assert!(update(&root_name).is_err());
    }

    #[test]
    fn declared_counts_must_fit_the_bytes_that_follow() {
        // A state vector claiming ten million entries in five bytes.
        let sv = var(10_000_000);
        let frame = [vec![0, 0], var(sv.len() as u64), sv].concat();
        assert!(matches!(
            check_frame(&frame, &DocLimits::default()),
            Err(DocError::Malformed(m)) if m.contains("declares")
        ));
        // An update claiming a million clients, and an array of a million values.
        assert!(update(&[var(1_000_000), vec![0, 0]].concat()).is_err());
        let mut any = any_item("a", 1);
        any.extend([117]);
        any.extend(var(1_000_000));
        assert!(update(&any).is_err());
    }

    #[test]
    fn awareness_is_bounded_in_bytes_and_clients() {
        let limits = DocLimits::default();
        let entry = |id: u64, state: &str| [var(id), var(1), string(state)].concat();
        let message = |entries: Vec<Vec<u8>>| {
            let data = [var(entries.len() as u64), entries.concat()].concat();
            [vec![1], var(data.len() as u64), data].concat()
        };
        check_frame(&message(vec![entry(1, r#"{"user":"a"}"#)]), &limits).unwrap();
        let big = format!(r#"{{"user":"{}"}}"#, "x".repeat(limits.awareness_bytes));
        let e = check_frame(&message(vec![entry(1, &big)]), &limits).unwrap_err();
        assert_eq!(e.close_code(), 1009);
        let crowd = (0..=limits.awareness_clients as u64)
            .map(|i| entry(i, "{}"))
            .collect();
        assert_eq!(
            check_frame(&message(crowd), &limits)
                .unwrap_err()
                .close_code(),
            1009
        );
    }

    /// Updates as Yjs applications produce them pass unchanged.
    fn real_update() -> Vec<u8> {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        let text = txn.get_or_insert_text("content");
        text.insert(&mut txn, 0, "héllo 😀 世界");
        text.remove_range(&mut txn, 1, 2);
        let map = txn.get_or_insert_map("meta");
        map.insert(&mut txn, "title", "T");
        map.insert(
            &mut txn,
            "tags",
            Any::from(vec![Any::from("a"), Any::from(vec![Any::Null])]),
        );
        let array = txn.get_or_insert_array("list");
        array.push_back(&mut txn, yrs::MapPrelim::from([("k", Any::from(1))]));
        let xml = txn.get_or_insert_xml_fragment("prosemirror");
        let p = xml.push_back(&mut txn, yrs::XmlElementPrelim::empty("paragraph"));
        p.insert_attribute(&mut txn, "level", Any::from(1));
        drop(txn);
        let update = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        update
    }

    #[test]
    fn real_updates_pass_and_their_types_are_counted() {
        let u = real_update();
        // The nested map in `list` and the paragraph in `prosemirror`.
        assert_eq!(update(&u), Ok(2));
        let twice = [update_message(&u), update_message(&u)].concat();
        assert_eq!(check_frame(&twice, &DocLimits::default()), Ok(4));
    }

    proptest! {
        /// Whatever the check lets through, yrs decodes without trouble, and
        /// the check itself never panics.
        #[test]
        fn mutated_updates_never_panic(flip in any::<(usize, u8)>(), cut in any::<usize>()) {
            let mut u = real_update();
            let i = flip.0 % u.len();
            u[i] ^= flip.1;
            u.truncate(cut % (u.len() + 1));
            if update(&u).is_ok() {
                let _ = Update::decode_v1(&u);
            }
        }
    }
}
