//! The upload object's storage ([`UploadStore`]) and the write plan of what
//! a PATCH received: the parts R2 took, then the bytes below the next part,
//! in rows under SQLite's row limit, written once each.

use super::{UploadState, BUFFER_ROW_BYTES};

/// What the upload object needs from its storage. Writes made in one
/// synchronous turn commit together (a Durable Object's storage does).
pub trait UploadStore {
    type Error;
    fn load(&self) -> Result<Option<UploadState>, Self::Error>;
    fn save(&mut self, state: &UploadState) -> Result<(), Self::Error>;
    /// The buffered bytes below the next part, in order.
    fn buffer(&self) -> Result<Vec<u8>, Self::Error>;
    /// Adds a row of buffered bytes starting at upload offset `start`.
    fn append_buffer(&mut self, start: u64, bytes: &[u8]) -> Result<(), Self::Error>;
    fn clear_buffer(&mut self) -> Result<(), Self::Error>;
    /// Records a part R2 took (a retried part replaces its etag).
    fn put_part(&mut self, number: u64, etag: &str) -> Result<(), Self::Error>;
    /// The parts recorded, by number.
    fn parts(&self) -> Result<Vec<(u64, String)>, Self::Error>;
    fn clear_parts(&mut self) -> Result<(), Self::Error>;
}

/// What a PATCH has sent to R2 but not yet recorded, and how much of the
/// buffer is already in rows.
#[derive(Debug, Default)]
pub struct Unrecorded {
    pub rows_len: usize,
    pub parts: Vec<(u64, String)>,
}

impl Unrecorded {
    /// A PATCH starting on a buffer that is all in rows already.
    pub fn after(buffer: &[u8]) -> Self {
        Unrecorded {
            rows_len: buffer.len(),
            parts: Vec::new(),
        }
    }
}

/// Makes what was received so far durable: new parts (each took the rows
/// before it), the buffer's bytes not yet in rows, the state.
pub fn commit<S: UploadStore>(
    store: &mut S,
    st: &UploadState,
    buffer: &[u8],
    unrecorded: &mut Unrecorded,
) -> Result<(), S::Error> {
    for (number, etag) in unrecorded.parts.drain(..) {
        store.put_part(number, &etag)?;
        store.clear_buffer()?;
        unrecorded.rows_len = 0;
    }
    let start = st.offset - buffer.len() as u64;
    for (i, row) in buffer[unrecorded.rows_len..]
        .chunks(BUFFER_ROW_BYTES)
        .enumerate()
    {
        let at = unrecorded.rows_len + i * BUFFER_ROW_BYTES;
        store.append_buffer(start + at as u64, row)?;
    }
    unrecorded.rows_len = buffer.len();
    store.save(st)
}

/// The upload's bytes are in R2 whole, or given up (`st` says which): its
/// parts and buffer go, its new state stays.
pub fn discard_received<S: UploadStore>(store: &mut S, st: &UploadState) -> Result<(), S::Error> {
    store.clear_parts()?;
    store.clear_buffer()?;
    store.save(st)
}

#[cfg(test)]
mod tests {
    use super::super::{take_part, FileLimits, NewUpload, Phase, PART_BYTES};
    use super::*;
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    #[derive(Default)]
    struct Mem {
        state: Option<UploadState>,
        rows: BTreeMap<u64, Vec<u8>>,
        parts: BTreeMap<u64, String>,
        /// Every row written, as (start, length): none may be written twice.
        written: Vec<(u64, usize)>,
    }

    impl UploadStore for Mem {
        type Error = Infallible;
        fn load(&self) -> Result<Option<UploadState>, Infallible> {
            Ok(self.state.clone())
        }
        fn save(&mut self, state: &UploadState) -> Result<(), Infallible> {
            self.state = Some(state.clone());
            Ok(())
        }
        fn buffer(&self) -> Result<Vec<u8>, Infallible> {
            Ok(self.rows.values().flatten().copied().collect())
        }
        fn append_buffer(&mut self, start: u64, bytes: &[u8]) -> Result<(), Infallible> {
            assert!(bytes.len() <= BUFFER_ROW_BYTES, "a row over the limit");
            self.written.push((start, bytes.len()));
            self.rows.insert(start, bytes.to_vec());
            Ok(())
        }
        fn clear_buffer(&mut self) -> Result<(), Infallible> {
            self.rows.clear();
            Ok(())
        }
        fn put_part(&mut self, number: u64, etag: &str) -> Result<(), Infallible> {
            self.parts.insert(number, etag.to_string());
            Ok(())
        }
        fn parts(&self) -> Result<Vec<(u64, String)>, Infallible> {
            Ok(self.parts.clone().into_iter().collect())
        }
        fn clear_parts(&mut self) -> Result<(), Infallible> {
            self.parts.clear();
            Ok(())
        }
    }

    fn ok<T>(r: Result<T, Infallible>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => match e {},
        }
    }

    fn upload(length: u64) -> UploadState {
        let new = NewUpload {
            room_id: "r1".into(),
            filename: "a.bin".into(),
            declared_type: "application/octet-stream".into(),
            length,
            metadata: String::new(),
        };
        UploadState::new(
            "f1".into(),
            "u1".into(),
            &new,
            "mp".into(),
            0,
            &FileLimits::default(),
        )
    }

    /// Receives `chunks` as one PATCH does: parts cut as the bytes come,
    /// committed after each chunk.
    fn patch(store: &mut Mem, st: &mut UploadState, chunks: &[usize], byte: u8) {
        let mut buffer = ok(store.buffer());
        let mut unrecorded = Unrecorded::after(&buffer);
        for &n in chunks {
            let chunk = vec![byte; n];
            st.offset += n as u64;
            buffer.extend_from_slice(&chunk);
            while let Some(part) = take_part(&mut buffer, PART_BYTES) {
                st.parts += 1;
                unrecorded
                    .parts
                    .push((st.parts, format!("etag{}", part.len())));
            }
            ok(commit(store, st, &buffer, &mut unrecorded));
        }
    }

    #[test]
    fn buffered_bytes_survive_in_rows_written_once_each() {
        let mut store = Mem::default();
        let mut st = upload(20 * 1024 * 1024);
        let mib = 1024 * 1024;
        // 2.5 MiB, then 1 byte, then 0.5 MiB: below a part, all in rows.
        patch(&mut store, &mut st, &[2 * mib + mib / 2, 1, mib / 2], 7);
        assert_eq!(ok(store.buffer()).len(), 3 * mib + 1);
        let mut starts: Vec<u64> = store.written.iter().map(|w| w.0).collect();
        starts.sort_unstable();
        starts.dedup();
        assert_eq!(starts.len(), store.written.len(), "{:?}", store.written);
        assert_eq!(ok(store.load()).map(|s| s.offset), Some(3 * mib as u64 + 1));
    }

    #[test]
    fn a_part_takes_the_rows_before_it_and_a_new_patch_continues_the_rest() {
        let mut store = Mem::default();
        let mut st = upload(20 * 1024 * 1024);
        let mib = 1024 * 1024;
        patch(&mut store, &mut st, &[3 * mib], 1);
        patch(&mut store, &mut st, &[3 * mib], 2);
        assert_eq!(ok(store.parts()), vec![(1, format!("etag{}", 5 * mib))]);
        // The buffer is the 1 MiB after the part, all of the second PATCH.
        let rest = ok(store.buffer());
        assert_eq!(rest, vec![2u8; mib]);
        assert_eq!(store.rows.keys().next().copied(), Some(5 * mib as u64));
        st.phase = Phase::Stored;
        ok(discard_received(&mut store, &st));
        assert!(ok(store.parts()).is_empty() && ok(store.buffer()).is_empty());
        assert_eq!(ok(store.load()).map(|s| s.phase), Some(Phase::Stored));
    }
}
