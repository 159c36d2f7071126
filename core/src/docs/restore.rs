//! Version restore: a forward change that makes a document's roots read as
//! they did in a version. The server is never told a root's type; each root's
//! content says it (strings or embeds make a text, other items a list, keyed
//! items a map, both an XML element), so every root type a Yjs application
//! uses (text, map, array, XML fragment) is restored, with formatting and XML
//! attributes as they were. Only what differs is rewritten: the common
//! beginning and end of a text or list stay (cursors there keep their place),
//! map entries that are equal stay. Positions count UTF-16 units, as the
//! document does (`LiveDoc::new`) and as Yjs does.
//!
//! Reading is recursive over nested shared types and bounded by
//! [`TYPE_NESTING_MAX`]: a document nested deeper is refused whole before
//! anything changes.

use super::DocError;
use std::collections::BTreeMap;
use std::sync::Arc;
use yrs::types::text::YChange;
use yrs::types::xml::{XmlDeltaPrelim, XmlIn};
use yrs::types::Attrs;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, Doc, In, Map, MapPrelim, MapRef, Options, Out, ReadTxn,
    Text, TextPrelim, Transact, TransactionMut, WriteTxn, Xml, XmlElementPrelim, XmlFragment,
    XmlFragmentPrelim, XmlOut, XmlTextPrelim,
};

/// Deepest nesting of shared types (an XML element in an element…) that a
/// restore reads; ProseMirror documents nest a few levels per list.
pub const TYPE_NESTING_MAX: usize = 100;

/// One value as it reads, independent of item ids.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Any(Any),
    Text(Vec<Chunk>),
    Array(Vec<Node>),
    Map(BTreeMap<Arc<str>, Node>),
    XmlElement {
        tag: Arc<str>,
        attrs: BTreeMap<Arc<str>, Node>,
        children: Vec<Node>,
    },
    XmlText {
        attrs: BTreeMap<Arc<str>, Node>,
        chunks: Vec<Chunk>,
    },
    XmlFragment(Vec<Node>),
    /// A subdocument, by guid (its content lives in its own document).
    Doc(Arc<str>),
}

/// A run of text with one formatting, or one embedded value.
#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    Text(String, Attrs),
    Embed(Node, Attrs),
}

/// A root as it reads: its sequence part and its keyed part.
#[derive(Debug, Default, PartialEq)]
struct Root {
    list: List,
    map: BTreeMap<Arc<str>, Node>,
}

#[derive(Debug, Default, PartialEq)]
enum List {
    #[default]
    Empty,
    Text(Vec<Chunk>),
    Items(Vec<Node>),
}

fn too_deep() -> DocError {
    DocError::TooDeep(TYPE_NESTING_MAX)
}

fn read<T: ReadTxn>(txn: &T, out: Out, depth: usize) -> Result<Node, DocError> {
    if depth > TYPE_NESTING_MAX {
        return Err(too_deep());
    }
    let next = depth + 1;
    Ok(match out {
        Out::Any(any) => Node::Any(any),
        Out::YText(t) => Node::Text(chunks(txn, t.diff(txn, YChange::identity), next)?),
        Out::YArray(a) => Node::Array(
            a.iter(txn)
                .map(|v| read(txn, v, next))
                .collect::<Result<_, _>>()?,
        ),
        Out::YMap(m) => Node::Map(entries(txn, m.iter(txn), next)?),
        Out::YXmlElement(e) => Node::XmlElement {
            tag: e.tag().clone(),
            attrs: entries(txn, e.attributes(txn), next)?,
            children: xml_children(txn, e.children(txn), next)?,
        },
        Out::YXmlText(t) => Node::XmlText {
            attrs: entries(txn, t.attributes(txn), next)?,
            chunks: chunks(txn, t.diff(txn, YChange::identity), next)?,
        },
        Out::YXmlFragment(f) => Node::XmlFragment(xml_children(txn, f.children(txn), next)?),
        Out::YDoc(doc) => Node::Doc(doc.guid()),
        // Only roots are untyped, and roots are read by `read_root`.
        Out::UndefinedRef(_) => Node::Any(Any::Undefined),
    })
}

fn entries<'a, T: ReadTxn>(
    txn: &T,
    entries: impl Iterator<Item = (&'a str, Out)>,
    depth: usize,
) -> Result<BTreeMap<Arc<str>, Node>, DocError> {
    entries
        .map(|(k, v)| Ok((Arc::from(k), read(txn, v, depth)?)))
        .collect()
}

fn xml_children<T: ReadTxn>(
    txn: &T,
    children: impl Iterator<Item = XmlOut>,
    depth: usize,
) -> Result<Vec<Node>, DocError> {
    children.map(|c| read(txn, c.into(), depth)).collect()
}

fn chunks<T: ReadTxn>(
    txn: &T,
    diff: Vec<yrs::types::text::Diff<YChange>>,
    depth: usize,
) -> Result<Vec<Chunk>, DocError> {
    diff.into_iter()
        .map(|d| {
            let attrs = d.attributes.map(|a| *a).unwrap_or_default();
            Ok(match d.insert {
                Out::Any(Any::String(s)) => Chunk::Text(s.to_string(), attrs),
                other => Chunk::Embed(read(txn, other, depth)?, attrs),
            })
        })
        .collect()
}

/// A root's content: a text when it holds strings or embedded values, a list
/// when it holds other items, and its keyed part either way.
fn read_root<T: ReadTxn>(txn: &T, name: &str) -> Result<Root, DocError> {
    let map = match txn.get_map(name) {
        Some(m) => entries(txn, m.iter(txn), 1)?,
        None => BTreeMap::new(),
    };
    let text = match txn.get_text(name) {
        Some(t) => chunks(txn, t.diff(txn, YChange::identity), 1)?,
        None => Vec::new(),
    };
    let is_text = text.iter().any(|c| match c {
        Chunk::Text(..) => true,
        Chunk::Embed(n, _) => matches!(n, Node::Any(_)),
    });
    let list = if is_text {
        List::Text(text)
    } else {
        match txn.get_array(name) {
            Some(a) if a.len(txn) > 0 => List::Items(
                a.iter(txn)
                    .map(|v| read(txn, v, 1))
                    .collect::<Result<_, _>>()?,
            ),
            _ => List::Empty,
        }
    };
    Ok(Root { list, map })
}

/// Which roots a restore covers.
#[derive(Debug, Clone, Copy)]
pub enum Roots<'a> {
    /// Every root of the version and of the current document.
    All,
    /// Only these (the request named them).
    Named(&'a [String]),
}

/// Makes `doc`'s roots read as `version`'s, in one transaction. Everything is
/// read before anything is written, so an error changes nothing. Returns
/// whether anything changed.
pub(super) fn restore(doc: &Doc, version: &Doc, roots: Roots) -> Result<bool, DocError> {
    let names: Vec<String> = match roots {
        Roots::Named(names) => names.to_vec(),
        Roots::All => {
            let mut names: Vec<String> = version
                .transact()
                .root_refs()
                .map(|(n, _)| n.to_string())
                .chain(doc.transact().root_refs().map(|(n, _)| n.to_string()))
                .collect();
            names.sort();
            names.dedup();
            names
        }
    };
    let targets = {
        let txn = version.transact();
        names
            .iter()
            .map(|n| read_root(&txn, n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut txn = doc.transact_mut();
    let currents = names
        .iter()
        .map(|n| read_root(&txn, n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut changed = false;
    for ((name, current), target) in names.iter().zip(&currents).zip(&targets) {
        if current != target {
            changed = true;
            write_root(&mut txn, name, current, target);
        }
    }
    Ok(changed)
}

fn write_root(txn: &mut TransactionMut, name: &str, current: &Root, target: &Root) {
    if current.map != target.map {
        let map = txn.get_or_insert_map(name);
        write_entries(txn, &map, &current.map, &target.map);
    }
    if current.list == target.list {
        return;
    }
    match (&current.list, &target.list) {
        (List::Text(cur), List::Text(tgt)) if text_reads_whole(txn, name, cur) => {
            let text = txn.get_or_insert_text(name);
            write_text(txn, &text, cur, tgt);
        }
        (List::Items(cur), List::Items(tgt)) if items_read_whole(txn, name, cur) => {
            let array = txn.get_or_insert_array(name);
            write_items(txn, &array, cur, tgt);
        }
        // The kind changed, one side is empty, or the root holds items its
        // kind does not show (mixed content): clear it all, then fill.
        (_, tgt) => {
            let array = txn.get_or_insert_array(name);
            let len = array.len(txn);
            if len > 0 {
                array.remove_range(txn, 0, len);
            }
            match tgt {
                List::Text(chunks) => {
                    let text = txn.get_or_insert_text(name);
                    fill_text(txn, &text, 0, chunks);
                }
                List::Items(items) => {
                    for (i, item) in items.iter().enumerate() {
                        put_in_array(txn, &array, i as u32, item);
                    }
                }
                List::Empty => {}
            }
        }
    }
}

/// Whether the chunks read are all the root holds, so that positions
/// computed from them are the root's positions.
fn text_reads_whole(txn: &mut TransactionMut, name: &str, chunks: &[Chunk]) -> bool {
    let shown: u32 = units(chunks).map(|u| u.utf16_len()).sum();
    let text = txn.get_or_insert_text(name);
    let array = txn.get_or_insert_array(name);
    shown == text.len(txn) && shown == array.len(txn)
}

fn items_read_whole(txn: &mut TransactionMut, name: &str, items: &[Node]) -> bool {
    txn.get_or_insert_array(name).len(txn) as usize == items.len()
}

/// Keyed entries: changed ones are replaced, missing ones removed, equal ones kept.
fn write_entries(
    txn: &mut TransactionMut,
    map: &MapRef,
    current: &BTreeMap<Arc<str>, Node>,
    target: &BTreeMap<Arc<str>, Node>,
) {
    for key in current.keys().filter(|k| !target.contains_key(*k)) {
        map.remove(txn, key);
    }
    for (key, node) in target {
        if current.get(key) != Some(node) {
            let made = map.insert(txn, key.clone(), shell(node));
            fill(txn, made, node);
        }
    }
}

/// How many leading and trailing elements two sequences share (not overlapping).
fn common_ends<T: PartialEq>(
    a: impl DoubleEndedIterator<Item = T> + Clone,
    b: impl DoubleEndedIterator<Item = T> + Clone,
    a_len: usize,
    b_len: usize,
) -> (usize, usize) {
    let prefix = a.clone().zip(b.clone()).take_while(|(x, y)| x == y).count();
    let room = a_len.min(b_len) - prefix;
    let suffix = a
        .rev()
        .zip(b.rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    (prefix, suffix)
}

fn write_items(txn: &mut TransactionMut, array: &ArrayRef, current: &[Node], target: &[Node]) {
    let (prefix, suffix) = common_ends(current.iter(), target.iter(), current.len(), target.len());
    let removed = current.len() - prefix - suffix;
    if removed > 0 {
        array.remove_range(txn, prefix as u32, removed as u32);
    }
    for (i, item) in target[prefix..target.len() - suffix].iter().enumerate() {
        put_in_array(txn, array, (prefix + i) as u32, item);
    }
}

/// One character or embedded value of a text, with its formatting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit<'a> {
    Char(char, &'a Attrs),
    Embed(&'a Node, &'a Attrs),
}

impl Unit<'_> {
    fn utf16_len(&self) -> u32 {
        match self {
            Unit::Char(c, _) => c.len_utf16() as u32,
            Unit::Embed(..) => 1,
        }
    }
}

fn units(chunks: &[Chunk]) -> impl DoubleEndedIterator<Item = Unit<'_>> + Clone {
    chunks.iter().flat_map(|c| {
        let (text, embed, attrs) = match c {
            Chunk::Text(s, a) => (s.as_str(), None, a),
            Chunk::Embed(n, a) => ("", Some(n), a),
        };
        text.chars()
            .map(move |ch| Unit::Char(ch, attrs))
            .chain(embed.map(|n| Unit::Embed(n, attrs)))
    })
}

/// Rewrites the differing middle of a text: the common beginning and end stay.
fn write_text<T: Text>(txn: &mut TransactionMut, text: &T, current: &[Chunk], target: &[Chunk]) {
    let cur_len = units(current).count();
    let tgt_len = units(target).count();
    let (prefix, suffix) = common_ends(units(current), units(target), cur_len, tgt_len);
    let start: u32 = units(current).take(prefix).map(|u| u.utf16_len()).sum();
    let removed: u32 = units(current)
        .skip(prefix)
        .take(cur_len - prefix - suffix)
        .map(|u| u.utf16_len())
        .sum();
    if removed > 0 {
        text.remove_range(txn, start, removed);
    }
    let middle = units(target).skip(prefix).take(tgt_len - prefix - suffix);
    fill_text(txn, text, start, &regroup(middle));
}

/// Units back into chunks: consecutive characters of one formatting form one run.
fn regroup<'a>(units: impl Iterator<Item = Unit<'a>>) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for unit in units {
        match unit {
            Unit::Char(ch, attrs) => match out.last_mut() {
                Some(Chunk::Text(s, a)) if a == attrs => s.push(ch),
                _ => out.push(Chunk::Text(ch.to_string(), attrs.clone())),
            },
            Unit::Embed(node, attrs) => out.push(Chunk::Embed(node.clone(), attrs.clone())),
        }
    }
    out
}

/// Inserts chunks at `at` (UTF-16 units) with exactly their formatting.
fn fill_text<T: Text>(txn: &mut TransactionMut, text: &T, at: u32, chunks: &[Chunk]) {
    let mut pos = at;
    for chunk in chunks {
        match chunk {
            Chunk::Text(s, attrs) => {
                text.insert_with_attributes(txn, pos, s, attrs.clone());
                pos += s.encode_utf16().count() as u32;
            }
            Chunk::Embed(node, attrs) => {
                let attrs = attrs.clone();
                // Each shared type is embedded as its own empty prelim, then filled.
                macro_rules! embed {
                    ($out:ident, $prelim:expr) => {
                        Out::$out(text.insert_embed_with_attributes(txn, pos, $prelim, attrs))
                    };
                }
                let made: Out = match node {
                    Node::Any(any) => {
                        text.insert_embed_with_attributes(txn, pos, any.clone(), attrs);
                        Out::Any(any.clone())
                    }
                    Node::Text(_) => embed!(YText, TextPrelim::new("")),
                    Node::Array(_) => embed!(YArray, ArrayPrelim::default()),
                    Node::Map(_) => embed!(YMap, MapPrelim::default()),
                    Node::XmlElement { tag, .. } => {
                        embed!(YXmlElement, XmlElementPrelim::empty(tag.clone()))
                    }
                    Node::XmlText { .. } => embed!(YXmlText, XmlTextPrelim::new("")),
                    Node::XmlFragment(_) => embed!(YXmlFragment, XmlFragmentPrelim::default()),
                    // A text's diff never shows a subdocument.
                    Node::Doc(_) => continue,
                };
                fill(txn, made, node);
                pos += 1;
            }
        }
    }
}

/// The empty value a node is built in (filled in place by [`fill`]).
fn shell(node: &Node) -> In {
    match node {
        Node::Any(any) => In::Any(any.clone()),
        Node::Text(_) => In::Text(Default::default()),
        Node::Array(_) => In::Array(ArrayPrelim::default()),
        Node::Map(_) => In::Map(MapPrelim::default()),
        Node::XmlElement { tag, .. } => In::XmlElement(XmlElementPrelim::empty(tag.clone())),
        Node::XmlText { .. } => In::XmlText(xml_text_shell()),
        Node::XmlFragment(_) => In::XmlFragment(XmlFragmentPrelim::default()),
        Node::Doc(guid) => In::Doc(Doc::with_options(Options {
            guid: guid.clone(),
            ..Options::default()
        })),
    }
}

fn xml_text_shell() -> XmlDeltaPrelim {
    XmlDeltaPrelim {
        attributes: Default::default(),
        delta: Vec::new(),
    }
}

fn xml_shell(node: &Node) -> Option<XmlIn> {
    Some(match node {
        Node::XmlElement { tag, .. } => XmlIn::Element(XmlElementPrelim::empty(tag.clone())),
        Node::XmlText { .. } => XmlIn::Text(xml_text_shell()),
        Node::XmlFragment(_) => XmlIn::Fragment(XmlFragmentPrelim::default()),
        _ => return None,
    })
}

fn put_in_array(txn: &mut TransactionMut, array: &ArrayRef, index: u32, node: &Node) {
    let made = array.insert(txn, index, shell(node));
    fill(txn, made, node);
}

fn put_xml_children<F: XmlFragment>(txn: &mut TransactionMut, parent: &F, children: &[Node]) {
    let mut index = 0;
    for child in children {
        if let Some(shell) = xml_shell(child) {
            let made = parent.insert(txn, index, shell);
            fill(txn, made.into(), child);
            index += 1;
        }
    }
}

fn put_attrs<X: Xml>(txn: &mut TransactionMut, xml: &X, attrs: &BTreeMap<Arc<str>, Node>) {
    for (key, node) in attrs {
        let made = xml.insert_attribute(txn, key.clone(), shell(node));
        fill(txn, made, node);
    }
}

/// Fills a freshly inserted shell with its node's content.
fn fill(txn: &mut TransactionMut, made: Out, node: &Node) {
    match (made, node) {
        (Out::YText(t), Node::Text(chunks)) => fill_text(txn, &t, 0, chunks),
        (Out::YArray(a), Node::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                put_in_array(txn, &a, i as u32, item);
            }
        }
        (Out::YMap(m), Node::Map(entries)) => write_entries(txn, &m, &BTreeMap::new(), entries),
        (
            Out::YXmlElement(e),
            Node::XmlElement {
                attrs, children, ..
            },
        ) => {
            put_attrs(txn, &e, attrs);
            put_xml_children(txn, &e, children);
        }
        (Out::YXmlText(t), Node::XmlText { attrs, chunks }) => {
            put_attrs(txn, &t, attrs);
            fill_text(txn, &t, 0, chunks);
        }
        (Out::YXmlFragment(f), Node::XmlFragment(children)) => put_xml_children(txn, &f, children),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::LiveDoc;
    use super::*;
    use proptest::prelude::*;
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, OffsetKind, StateVector, Update};

    /// A client as Yjs is one: positions in UTF-16 units.
    fn client() -> Doc {
        Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        })
    }

    fn state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn apply(doc: &Doc, update: &[u8]) {
        doc.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
    }

    fn roots_of(doc: &Doc) -> Vec<(String, Root)> {
        let txn = doc.transact();
        let mut names: Vec<String> = txn.root_refs().map(|(n, _)| n.to_string()).collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let root = read_root(&txn, &n).unwrap();
                (n, root)
            })
            .filter(|(_, r)| *r != Root::default())
            .collect()
    }

    fn utf16_at(s: &str, chars: usize) -> u32 {
        s.chars().take(chars).map(|c| c.len_utf16() as u32).sum()
    }

    /// Text with emoji (with skin tones), CJK, combining marks and astral characters.
    fn unicode_text() -> impl Strategy<Value = String> {
        let pieces = [
            "a", "Z", " ", "é", "e\u{301}", "😀", "👋🏽", "東京", "𝄞", "\u{FDFD}", "ñ", "\n",
        ];
        proptest::collection::vec(proptest::sample::select(pieces.to_vec()), 0..24)
            .prop_map(|p| p.concat())
    }

    proptest! {
        /// Whatever edits came after a version, restoring it makes the server
        /// and every client that receives the change read exactly the version.
        #[test]
        fn text_restores_exactly_with_any_unicode(
            original in unicode_text(),
            edits in proptest::collection::vec((any::<u16>(), any::<u8>(), unicode_text()), 0..6),
        ) {
            let writer = client();
            let text = writer.get_or_insert_text("t");
            text.insert(&mut writer.transact_mut(), 0, &original);
            let version = LiveDoc::load(&state(&writer), []).unwrap();
            for (at, del, ins) in &edits {
                let current = text.get_string(&writer.transact());
                let chars = current.chars().count();
                let start = usize::from(*at) % (chars + 1);
                let len = (usize::from(*del) % 4).min(chars - start);
                let from = utf16_at(&current, start);
                let to = utf16_at(&current, start + len);
                let mut txn = writer.transact_mut();
                text.remove_range(&mut txn, from, to - from);
                text.insert(&mut txn, from, ins);
            }
            let mut server = LiveDoc::load(&state(&writer), []).unwrap();
            let change = server.restore(&version, Roots::All).unwrap();
            prop_assert_eq!(server.text("t"), original.clone());
            if let Some(change) = change {
                apply(&writer, &change);
            }
            prop_assert_eq!(text.get_string(&writer.transact()), original);
            prop_assert!(server.restore(&version, Roots::All).unwrap().is_none());
        }
    }

    /// A document with every root type, formatting and XML attribute values
    /// of several types, as editor bindings write them.
    fn rich_version(doc: &Doc) {
        let mut txn = doc.transact_mut();
        let text = txn.get_or_insert_text("content");
        text.insert(&mut txn, 0, "Grüße 👋🏽 東京");
        text.format(
            &mut txn,
            0,
            5,
            Attrs::from([("bold".into(), Any::Bool(true))]),
        );
        text.insert_embed(&mut txn, 6, Any::from(vec![Any::from("img")]));
        let table = text.insert_embed(&mut txn, 7, ArrayPrelim::default());
        table.push_back(&mut txn, "cell");
        let meta = txn.get_or_insert_map("meta");
        meta.insert(&mut txn, "title", "Plan");
        meta.insert(&mut txn, "n", 1);
        let nested = meta.insert(&mut txn, "nested", MapPrelim::default());
        nested.insert(&mut txn, "k", "v");
        let list = txn.get_or_insert_array("list");
        list.push_back(&mut txn, 1);
        list.push_back(&mut txn, "two");
        list.push_back(&mut txn, ArrayPrelim::from([3, 4]));
        let pm = txn.get_or_insert_xml_fragment("prosemirror");
        let heading = pm.push_back(&mut txn, XmlElementPrelim::empty("heading"));
        heading.insert_attribute(&mut txn, "level", 1);
        let words = heading.push_back(&mut txn, XmlTextPrelim::new("Ça va?"));
        words.format(
            &mut txn,
            0,
            2,
            Attrs::from([("em".into(), Any::Bool(true))]),
        );
        let para = pm.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
        para.push_back(&mut txn, XmlTextPrelim::new("second"));
    }

    fn rich_edits(doc: &Doc) {
        let mut txn = doc.transact_mut();
        let text = txn.get_or_insert_text("content");
        text.format(&mut txn, 0, 3, Attrs::from([("bold".into(), Any::Null)]));
        text.insert(&mut txn, 2, "XX");
        text.remove_range(&mut txn, 9, 2);
        let meta = txn.get_or_insert_map("meta");
        meta.remove(&mut txn, "n");
        meta.insert(&mut txn, "title", "Other");
        meta.insert(&mut txn, "added", true);
        let list = txn.get_or_insert_array("list");
        list.remove(&mut txn, 0);
        list.push_back(&mut txn, MapPrelim::from([("x", 1)]));
        let pm = txn.get_or_insert_xml_fragment("prosemirror");
        if let Some(XmlOut::Element(heading)) = pm.get(&txn, 0) {
            heading.insert_attribute(&mut txn, "level", 2);
        }
        pm.remove_range(&mut txn, 1, 1);
        pm.push_back(&mut txn, XmlElementPrelim::empty("blockquote"));
        let later = txn.get_or_insert_text("later");
        later.insert(&mut txn, 0, "made after the version");
    }

    #[test]
    fn every_root_type_is_restored_as_it_was() {
        let writer = client();
        rich_version(&writer);
        let version = LiveDoc::load(&state(&writer), []).unwrap();
        let expected = roots_of(&version.doc);
        rich_edits(&writer);
        let mut server = LiveDoc::load(&state(&writer), []).unwrap();
        assert_ne!(roots_of(&server.doc), expected);
        let change = server.restore(&version, Roots::All).unwrap().unwrap();
        assert_eq!(roots_of(&server.doc), expected);
        // A client that receives the change reads the version too.
        apply(&writer, &change);
        assert_eq!(roots_of(&writer), expected);
        // XML attributes keep their type (ProseMirror compares `level === 1`).
        let txn = writer.transact();
        let pm = txn.get_xml_fragment("prosemirror").unwrap();
        let Some(XmlOut::Element(heading)) = pm.get(&txn, 0) else {
            panic!("no heading")
        };
        assert_eq!(
            heading.get_attribute(&txn, "level"),
            Some(Out::Any(Any::from(1)))
        );
        assert_eq!(
            pm.get_string(&txn),
            version
                .doc
                .get_or_insert_xml_fragment("prosemirror")
                .get_string(&version.doc.transact())
        );
        assert_eq!(txn.get_text("later").unwrap().get_string(&txn), "");
    }

    #[test]
    fn named_roots_restore_only_those() {
        let writer = client();
        rich_version(&writer);
        let version = LiveDoc::load(&state(&writer), []).unwrap();
        rich_edits(&writer);
        let mut server = LiveDoc::load(&state(&writer), []).unwrap();
        let names = ["content".to_string()];
        server
            .restore(&version, Roots::Named(&names))
            .unwrap()
            .unwrap();
        let txn = server.doc.transact();
        let version_txn = version.doc.transact();
        assert_eq!(
            read_root(&txn, "content").unwrap(),
            read_root(&version_txn, "content").unwrap()
        );
        assert_ne!(
            read_root(&txn, "meta").unwrap(),
            read_root(&version_txn, "meta").unwrap()
        );
        assert_eq!(server.text("later"), "made after the version");
    }

    #[test]
    fn unchanged_ends_of_a_text_keep_their_items() {
        let writer = client();
        let text = writer.get_or_insert_text("t");
        text.insert(
            &mut writer.transact_mut(),
            0,
            "keep the start, keep the end",
        );
        let version = LiveDoc::load(&state(&writer), []).unwrap();
        text.insert(&mut writer.transact_mut(), 15, " NEW MIDDLE");
        let mut server = LiveDoc::load(&state(&writer), []).unwrap();
        let before = server.state_vector();
        let change = server.restore(&version, Roots::All).unwrap().unwrap();
        // Only a deletion: no new items, so the state vector did not move.
        assert_eq!(server.state_vector(), before);
        assert_eq!(server.text("t"), "keep the start, keep the end");
        apply(&writer, &change);
        assert_eq!(
            text.get_string(&writer.transact()),
            "keep the start, keep the end"
        );
    }

    #[test]
    fn a_root_that_mixes_text_and_items_is_replaced_without_panicking() {
        let writer = client();
        {
            let mut txn = writer.transact_mut();
            txn.get_or_insert_text("m").insert(&mut txn, 0, "text");
        }
        let version = LiveDoc::load(&state(&writer), []).unwrap();
        {
            let mut txn = writer.transact_mut();
            txn.get_or_insert_array("m").push_back(&mut txn, 7);
            txn.get_or_insert_text("m").insert(&mut txn, 0, "more ");
        }
        let mut server = LiveDoc::load(&state(&writer), []).unwrap();
        server.restore(&version, Roots::All).unwrap();
        assert_eq!(server.text("m"), "text");
    }

    #[test]
    fn documents_nested_too_deep_are_refused_unchanged() {
        let writer = client();
        {
            let mut txn = writer.transact_mut();
            let mut map = txn.get_or_insert_map("deep");
            for _ in 0..=TYPE_NESTING_MAX {
                map = map.insert(&mut txn, "k", MapPrelim::default());
            }
            txn.get_or_insert_text("t").insert(&mut txn, 0, "v1");
        }
        let version = LiveDoc::load(&state(&writer), []).unwrap();
        writer
            .get_or_insert_text("t")
            .insert(&mut writer.transact_mut(), 0, "changed ");
        let mut server = LiveDoc::load(&state(&writer), []).unwrap();
        let before = server.snapshot();
        assert_eq!(
            server.restore(&version, Roots::All),
            Err(DocError::TooDeep(TYPE_NESTING_MAX))
        );
        assert_eq!(server.snapshot(), before);
    }
}
