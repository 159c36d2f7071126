//! Files: the tus 1.0 protocol's headers and rules, the state of one resumable
//! upload (parts cut at one size, a SHA-256 that survives between requests), and
//! what is served back: the content type sniffed from magic bytes, safe filenames
//! and `Content-Disposition`, byte ranges and entity tags.
//!
//! The Upload Durable Object and the Worker only move bytes; every decision about
//! them is made here.

pub mod call;
pub mod store;

use crate::rooms::{can, require, Permission, Role};
use crate::ApiError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const TUS_VERSION: &str = "1.0.0";
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
pub const TUS_CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// R2's minimum part size (all parts but the last); parts are cut at this size.
pub const PART_BYTES: u64 = 5 * 1024 * 1024;
/// R2 allows at most this many parts per multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Bytes buffered below a part are stored in rows of at most this size
/// (a Durable Object's SQLite row holds at most 2 MB).
pub const BUFFER_ROW_BYTES: usize = 1024 * 1024;
/// How much of the start of a file is kept for sniffing its type.
pub const SNIFF_BYTES: usize = 512;
pub const FILENAME_MAX_BYTES: usize = 255;
pub const METADATA_MAX_BYTES: usize = 4096;
/// `upload_progress` events go out at most this often per upload.
pub const PROGRESS_INTERVAL_MS: u64 = 1_000;

/// Deployment bounds on files (configurable through `[vars]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    pub max_file_bytes: u64,
    pub room_quota_bytes: u64,
    /// What one member's files and running uploads may take of a room's
    /// quota, so that no one member can fill it for everyone.
    pub member_quota_bytes: u64,
    /// An unfinished upload is aborted this long after its creation.
    pub upload_expiry_secs: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 100 * 1024 * 1024,
            room_quota_bytes: 1024 * 1024 * 1024,
            member_quota_bytes: 256 * 1024 * 1024,
            upload_expiry_secs: 24 * 3600,
        }
    }
}

/// A page of a room's files (`GET /rooms/{id}/files`).
#[derive(Debug, Clone, Serialize)]
pub struct FileList {
    pub files: Vec<FileInfo>,
    pub next_cursor: Option<String>,
    pub usage: FileUsage,
}

/// What a room's files and running uploads hold of its quota, and the
/// caller's of their share, so that the app can show the limits before an
/// upload.
#[derive(Debug, Clone, Serialize)]
pub struct FileUsage {
    pub room_bytes: u64,
    pub room_quota_bytes: u64,
    pub my_bytes: u64,
    pub member_quota_bytes: u64,
    pub max_file_bytes: u64,
}

impl FileUsage {
    pub fn of(room_bytes: u64, my_bytes: u64, limits: &FileLimits) -> Self {
        Self {
            room_bytes,
            room_quota_bytes: limits.room_quota_bytes,
            my_bytes,
            member_quota_bytes: limits.member_quota_bytes,
            max_file_bytes: limits.max_file_bytes,
        }
    }
}

/// A file as chat attachments and room views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// Where a file stands (the `files.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Uploading,
    Ready,
    Expired,
}

impl FileStatus {
    pub const ALL: [FileStatus; 3] = [Self::Uploading, Self::Ready, Self::Expired];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Ready => "ready",
            Self::Expired => "expired",
        }
    }
}

/// A file as the API shows it (a D1 row; times in unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: String,
    pub room_id: String,
    pub uploader_id: String,
    /// Sanitised.
    pub name: String,
    /// Sniffed from the bytes once the upload is finished.
    pub content_type: Option<String>,
    /// What the uploader said; shown, never used to render.
    pub declared_type: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub status: FileStatus,
    pub created_at: u64,
    pub completed_at: Option<u64>,
}

/// Why an upload of `length` bytes did not fit, given what the room and the
/// uploader already hold: the uploader's share when that alone is what it
/// passes, else the room's quota.
pub fn quota_refusal(room_held: u64, mine: u64, length: u64, limits: &FileLimits) -> ApiError {
    let past = |held: u64, limit: u64| held.saturating_add(length) > limit;
    if past(mine, limits.member_quota_bytes) && !past(room_held, limits.room_quota_bytes) {
        return ApiError::QuotaExceeded(format!(
            "this upload would take you past your share of this room's storage ({mine} of {} \
             bytes used); delete some of your files first",
            limits.member_quota_bytes
        ));
    }
    ApiError::QuotaExceeded(format!(
        "this upload would take the room past its quota of {} bytes; delete files first",
        limits.room_quota_bytes
    ))
}

/// Who may delete a file: its uploader while they may still upload in the
/// room (a demoted uploader may not), or an admin.
pub fn check_delete(own: bool, role: Role) -> Result<(), ApiError> {
    if own && can(role, Permission::UploadFile) {
        return Ok(());
    }
    require(role, Permission::DeleteAnyFile)
}

/// Every tus request but `OPTIONS` must say which protocol version it speaks.
pub fn check_tus_resumable(header: Option<&str>) -> Result<(), ApiError> {
    match header.map(str::trim) {
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(ApiError::PreconditionFailed {
            code: crate::error::code::TUS_VERSION_UNSUPPORTED,
            message: format!(
                "Tus-Resumable {other} is not supported; this server speaks {TUS_VERSION}"
            ),
        }),
        None => Err(ApiError::PreconditionFailed {
            code: crate::error::code::TUS_VERSION_UNSUPPORTED,
            message: format!(
                "the Tus-Resumable header is required (this server speaks {TUS_VERSION})"
            ),
        }),
    }
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be
/// absent). Keys are unique, ASCII, without spaces or commas.
pub fn parse_metadata(header: &str) -> Result<BTreeMap<String, String>, ApiError> {
    if header.len() > METADATA_MAX_BYTES {
        return Err(ApiError::invalid(format!(
            "Upload-Metadata is limited to {METADATA_MAX_BYTES} bytes"
        )));
    }
    let mut out = BTreeMap::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = pair.split(' ');
        let key = it.next().unwrap_or_default();
        let value = it.next();
        if it.next().is_some() || key.is_empty() || !key.is_ascii() {
            return Err(ApiError::invalid(format!(
                "Upload-Metadata pair `{pair}` is malformed"
            )));
        }
        let value = match value {
            Some(v) => {
                let bytes = B64.decode(v).map_err(|_| {
                    ApiError::invalid(format!("Upload-Metadata value of `{key}` is not base64"))
                })?;
                String::from_utf8(bytes).map_err(|_| {
                    ApiError::invalid(format!("Upload-Metadata value of `{key}` is not UTF-8"))
                })?
            }
            None => String::new(),
        };
        if out.insert(key.to_string(), value).is_some() {
            return Err(ApiError::invalid(format!(
                "Upload-Metadata repeats `{key}`"
            )));
        }
    }
    Ok(out)
}

/// What a tus creation request asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub room_id: String,
    pub filename: String,
    /// The type the client declared; shown, never trusted for rendering.
    pub declared_type: String,
    pub length: u64,
    /// The `Upload-Metadata` header as received, echoed by `HEAD`.
    pub metadata: String,
}

pub fn parse_u64_header(name: &str, value: Option<&str>) -> Result<u64, ApiError> {
    let v = value.ok_or_else(|| ApiError::invalid(format!("the {name} header is required")))?;
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(format!(
            "{name} must be a non-negative integer"
        )));
    }
    v.parse()
        .map_err(|_| ApiError::invalid(format!("{name} is out of range")))
}

/// Validates a creation request's headers against the deployment's limits.
pub fn new_upload(
    length: Option<&str>,
    defer_length: Option<&str>,
    metadata: Option<&str>,
    limits: &FileLimits,
) -> Result<NewUpload, ApiError> {
    if defer_length.is_some() {
        return Err(ApiError::invalid(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = parse_u64_header("Upload-Length", length)?;
    let limit = limits.max_file_bytes.min(PART_BYTES * MAX_PARTS);
    if length > limit {
        return Err(ApiError::FileTooLarge { limit });
    }
    let raw = metadata.unwrap_or_default();
    let meta = parse_metadata(raw)?;
    let room_id = meta
        .get("room_id")
        .filter(|r| crate::ids::is_valid_path_param(r))
        .ok_or_else(|| ApiError::invalid("Upload-Metadata must name the room_id"))?
        .clone();
    let filename = sanitize_filename(
        meta.get("filename")
            .or_else(|| meta.get("name"))
            .ok_or_else(|| ApiError::invalid("Upload-Metadata must give the filename"))?,
    );
    let declared_type = meta
        .get("filetype")
        .or_else(|| meta.get("type"))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| is_media_type(t))
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok(NewUpload {
        room_id,
        filename,
        declared_type,
        length,
        metadata: raw.to_string(),
    })
}

fn is_media_type(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(t.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// Keeps the last path segment, drops control and quoting characters and
/// bounds the length; never empty.
pub fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > FILENAME_MAX_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "file".into()
    } else {
        out
    }
}

/// The checksum algorithms of the tus checksum extension that we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

/// `Upload-Checksum: <algorithm> <base64 digest>` of one request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

pub fn parse_checksum(header: Option<&str>) -> Result<Option<Checksum>, ApiError> {
    let Some(h) = header else { return Ok(None) };
    let (name, digest) = h
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::invalid("Upload-Checksum must be `<algorithm> <base64>`"))?;
    let (algorithm, len) = match name {
        "sha1" => (ChecksumAlgorithm::Sha1, 20),
        "sha256" => (ChecksumAlgorithm::Sha256, 32),
        other => {
            return Err(ApiError::invalid(format!(
            "checksum algorithm `{other}` is not supported (use one of {TUS_CHECKSUM_ALGORITHMS})"
        )))
        }
    };
    let digest = B64
        .decode(digest.trim())
        .ok()
        .filter(|d| d.len() == len)
        .ok_or_else(|| {
            ApiError::invalid("Upload-Checksum digest is not valid base64 of the right length")
        })?;
    Ok(Some(Checksum { algorithm, digest }))
}

/// Hashes one request body as it streams by, for the tus checksum extension.
pub enum BodyHasher {
    Sha1(Sha1),
    Sha256(Sha256),
}

impl BodyHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Self::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
        }
    }

    /// 460 when the body's digest is not the declared one.
    pub fn verify(self, expected: &Checksum) -> Result<(), ApiError> {
        let got = match self {
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
        };
        if got == expected.digest {
            Ok(())
        } else {
            Err(ApiError::ChecksumMismatch)
        }
    }
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 whose state can be stored between requests: a file's digest is
/// computed as its bytes pass through, across PATCHes and object restarts,
/// without reading the file back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes hashed so far.
    len: u64,
    /// The bytes of an incomplete block (fewer than 64).
    tail: Vec<u8>,
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        Self {
            state: SHA256_IV,
            len: 0,
            tail: Vec::new(),
        }
    }
}

impl ResumableSha256 {
    /// Compresses whole 64-byte blocks in place (no copy of the data).
    fn blocks(&mut self, data: &[u8]) {
        use sha2::digest::generic_array::GenericArray;
        for block in data.chunks_exact(64) {
            sha2::compress256(
                &mut self.state,
                std::slice::from_ref(GenericArray::from_slice(block)),
            );
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.tail);
            self.blocks(&block);
        }
        let whole = data.len() - data.len() % 64;
        self.blocks(&data[..whole]);
        self.tail.extend_from_slice(&data[whole..]);
    }

    pub fn hex(&self) -> String {
        let mut last = self.clone();
        let bits = last.len.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let used = (last.len % 64) as usize;
        let zeros = if used < 56 { 55 - used } else { 119 - used };
        pad.extend(std::iter::repeat_n(0u8, zeros));
        pad.extend_from_slice(&bits.to_be_bytes());
        let len = last.len;
        last.update(&pad);
        last.len = len;
        last.state.iter().map(|w| format!("{w:08x}")).collect()
    }
}

/// The state of one tus upload, kept by its Upload Durable Object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub id: String,
    pub room_id: String,
    pub uploader: String,
    pub filename: String,
    pub declared_type: String,
    pub metadata: String,
    pub length: u64,
    /// Bytes received and stored (in parts or in the buffer).
    pub offset: u64,
    pub r2_key: String,
    pub multipart_id: String,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: u64,
    /// Parts uploaded to R2 so far (numbered from 1).
    pub parts: u64,
    /// Base64 of the file's first bytes, for sniffing its type at the end.
    pub head: String,
    pub sha256: ResumableSha256,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Taking PATCHes.
    Receiving,
    /// Every byte is in R2 as one object; metadata and the room not yet told.
    Stored,
    /// Metadata written and the room told: the file is ready.
    Done,
    /// Ended by its uploader (`DELETE`).
    Terminated,
    /// Aborted by the expiry alarm.
    Expired,
}

impl UploadState {
    pub fn new(
        id: String,
        uploader: String,
        upload: &NewUpload,
        multipart_id: String,
        now_secs: u64,
        limits: &FileLimits,
    ) -> Self {
        Self {
            r2_key: r2_key(&upload.room_id, &id),
            id,
            room_id: upload.room_id.clone(),
            uploader,
            filename: upload.filename.clone(),
            declared_type: upload.declared_type.clone(),
            metadata: upload.metadata.clone(),
            length: upload.length,
            offset: 0,
            multipart_id,
            created_at: now_secs,
            expires_at: now_secs + limits.upload_expiry_secs,
            parts: 0,
            head: String::new(),
            sha256: ResumableSha256::default(),
            phase: Phase::Receiving,
        }
    }

    /// Whether the upload still exists for `HEAD` (410 once it has ended
    /// without a file).
    pub fn check_exists(&self) -> Result<(), ApiError> {
        match self.phase {
            Phase::Terminated => Err(ApiError::NotFound("upload")),
            Phase::Expired => Err(ApiError::Gone {
                code: crate::error::code::UPLOAD_EXPIRED,
                message: "this upload expired before it was finished; start a new one".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks a PATCH before any of its bytes are read.
    pub fn check_patch(
        &self,
        content_type: Option<&str>,
        offset: u64,
        content_length: Option<u64>,
        now_secs: u64,
    ) -> Result<(), ApiError> {
        self.check_exists()?;
        if self.phase == Phase::Receiving && now_secs >= self.expires_at {
            return Err(ApiError::Gone {
                code: crate::error::code::UPLOAD_EXPIRED,
                message: "this upload expired before it was finished; start a new one".into(),
            });
        }
        let ct = content_type.unwrap_or_default();
        if !ct.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM) {
            return Err(ApiError::UnsupportedMediaType {
                expected: OFFSET_OCTET_STREAM,
            });
        }
        if offset != self.offset {
            return Err(ApiError::Conflict {
                code: crate::error::code::OFFSET_MISMATCH,
                message: format!(
                    "Upload-Offset is {offset} but the upload is at {}; ask with HEAD and resume from there",
                    self.offset
                ),
            });
        }
        if self.phase != Phase::Receiving {
            return Err(ApiError::Conflict {
                code: crate::error::code::UPLOAD_COMPLETE,
                message: "every byte of this upload was already received".into(),
            });
        }
        if content_length.is_some_and(|n| offset + n > self.length) {
            return Err(self.overrun());
        }
        Ok(())
    }

    fn overrun(&self) -> ApiError {
        ApiError::invalid(format!(
            "the body goes past Upload-Length ({} bytes)",
            self.length
        ))
    }

    /// Takes the next bytes of a PATCH body: refused past `Upload-Length`,
    /// otherwise counted, hashed and (at the start) kept for sniffing.
    pub fn absorb(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        if self.offset + bytes.len() as u64 > self.length {
            return Err(self.overrun());
        }
        self.keep_head(self.offset, bytes);
        self.sha256.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Keeps the first bytes of the file for sniffing.
    fn keep_head(&mut self, received_before: u64, bytes: &[u8]) {
        if received_before >= SNIFF_BYTES as u64 {
            return;
        }
        let mut head = B64.decode(&self.head).unwrap_or_default();
        let room = SNIFF_BYTES - head.len();
        head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.head = B64.encode(head);
    }

    pub fn sniffed_type(&self) -> &'static str {
        sniff(&B64.decode(&self.head).unwrap_or_default())
    }

    pub fn is_complete(&self) -> bool {
        self.offset == self.length
    }

    /// The upload's next step at `now_secs`. Every byte received wins over
    /// the expiry: an upload whose last PATCH was stored is finished, not
    /// aborted, however late its finishing runs.
    pub fn next_step(&self, now_secs: u64) -> Step {
        match self.phase {
            Phase::Receiving if self.is_complete() => Step::StoreObject,
            Phase::Receiving if now_secs >= self.expires_at => Step::Expire,
            Phase::Receiving => Step::WaitUntil(self.expires_at),
            Phase::Stored => Step::Finish,
            Phase::Expired => {
                let forget = self.expires_at.saturating_add(EXPIRED_KEPT_SECS);
                if now_secs >= forget {
                    Step::Forget
                } else {
                    Step::WaitUntil(forget)
                }
            }
            Phase::Done | Phase::Terminated => Step::Idle,
        }
    }
}

/// How long after its expiry an expired upload is remembered (its `HEAD`
/// answers 410 rather than 404).
pub const EXPIRED_KEPT_SECS: u64 = 7 * 24 * 3600;

/// What an upload's object does next, decided from its state and the time
/// alone ([`UploadState::next_step`]), so its requests and its alarm run the
/// same steps and the alarm is only ever set for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every byte is in: write the last part and complete the R2 object.
    StoreObject,
    /// The object is in R2: write the file's metadata to D1, tell the room.
    Finish,
    /// Not finished in time: abort it and free what it holds.
    Expire,
    /// Expired long enough ago: erase the upload's object.
    Forget,
    /// Nothing is due before this time (Unix seconds): the alarm's time.
    WaitUntil(u64),
    /// Finished or ended: nothing more is due.
    Idle,
}

/// Where a file's bytes live in R2.
pub fn r2_key(room_id: &str, file_id: &str) -> String {
    format!("{}{file_id}", room_prefix(room_id))
}

/// The R2 prefix of every file of a room (deleted with the room).
pub fn room_prefix(room_id: &str) -> String {
    format!("files/{room_id}/")
}

/// Cuts a full part off the front of `buffer` once it holds `part_size` bytes:
/// every part but the last has exactly that size, as R2 requires.
pub fn take_part(buffer: &mut Vec<u8>, part_size: u64) -> Option<Vec<u8>> {
    let n = part_size as usize;
    if buffer.len() < n {
        return None;
    }
    let rest = buffer.split_off(n);
    Some(std::mem::replace(buffer, rest))
}

/// The content type a file's first bytes show; text that is valid UTF-8 is
/// `text/plain`, anything else unrecognised is `application/octet-stream`.
pub fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "audio/ogg"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"\x00asm", "application/wasm"),
        (b"\x7fELF", "application/octet-stream"),
        (b"MZ", "application/octet-stream"),
    ];
    if let Some((_, t)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return t;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" {
        match &head[8..12] {
            b"WEBP" => return "image/webp",
            b"WAVE" => return "audio/wav",
            _ => {}
        }
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if looks_like_text(head) {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // The sniffed prefix may end inside a multi-byte character.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Only these types are shown inline by browsers; everything else downloads.
/// SVG and HTML are never inline: they can run script.
pub fn renders_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "application/pdf"
    )
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266).
pub fn content_disposition(filename: &str, inline: bool) -> String {
    let name = sanitize_filename(filename);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && c != '\\' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable single range: the whole representation (200).
    Full,
    /// Inclusive byte positions (206).
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range. Several ranges, other units or bad syntax
/// are ignored (the whole file is served), as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        (start, end) => {
            let Some(start) = num(start) else {
                return ByteRange::Full;
            };
            let end = match end {
                "" => None,
                e => match num(e) {
                    Some(e) if e >= start => Some(e),
                    _ => return ByteRange::Full,
                },
            };
            if start >= size {
                return ByteRange::Unsatisfiable;
            }
            ByteRange::Partial {
                start,
                end: end.map_or(size - 1, |e| e.min(size - 1)),
            }
        }
    }
}

/// The part of a file a download sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub status: u16,
    pub offset: u64,
    pub length: u64,
    pub content_range: Option<String>,
}

impl ByteRange {
    /// 200 with the whole file, 206 with the range and its `Content-Range`, or
    /// 416.
    pub fn span(self, size: u64) -> Result<Span, ApiError> {
        match self {
            ByteRange::Full => Ok(Span {
                status: 200,
                offset: 0,
                length: size,
                content_range: None,
            }),
            ByteRange::Partial { start, end } => Ok(Span {
                status: 206,
                offset: start,
                length: end - start + 1,
                content_range: Some(format!("bytes {start}-{end}/{size}")),
            }),
            ByteRange::Unsatisfiable => Err(ApiError::RangeNotSatisfiable { size }),
        }
    }
}

/// `?download=1` of a content request (every type an attachment); any other
/// value is refused rather than read as "inline".
pub fn attachment_param<'a>(
    mut pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<bool, ApiError> {
    match pairs.find(|(k, _)| *k == "download") {
        None => Ok(false),
        Some((_, "1")) => Ok(true),
        Some(_) => Err(ApiError::invalid_at(
            "download",
            "`download` is 1 (an attachment) or left out",
        )),
    }
}

/// The headers of every download: typed by sniffing, inline only when safe
/// (and not when the caller asked for an `attachment`), revalidated by the
/// strong tag, never sniffed or scripted by the browser.
pub fn download_headers(
    filename: &str,
    content_type: &str,
    sha256_hex: &str,
    attachment: bool,
) -> [(&'static str, String); 7] {
    [
        ("etag", etag(sha256_hex)),
        ("accept-ranges", "bytes".into()),
        ("x-content-type-options", "nosniff".into()),
        (
            "content-security-policy",
            "default-src 'none'; sandbox".into(),
        ),
        ("cache-control", "private, no-cache".into()),
        ("content-type", content_type.into()),
        (
            "content-disposition",
            content_disposition(filename, !attachment && renders_inline(content_type)),
        ),
    ]
}

/// A strong entity tag from the file's SHA-256.
pub fn etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// Whether `If-None-Match` names this entity tag (or `*`).
pub fn if_none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
    })
}

/// An IMF-fixdate (RFC 9110), as `Upload-Expires` carries it.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = crate::dates::civil(unix_secs);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Whether an `upload_progress` event is due.
pub fn progress_due(last_ms: Option<u64>, now_ms: u64) -> bool {
    last_ms.is_none_or(|last| now_ms >= last + PROGRESS_INTERVAL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_statuses_are_the_columns_and_the_apis() {
        let names = FileStatus::ALL.map(FileStatus::as_str);
        let migration = include_str!("../../../migrations/0002_files.sql");
        crate::migrations::assert_check(migration, "status", &names);
        for s in FileStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn download_is_1_or_absent() {
        assert_eq!(attachment_param([("exp", "1")].into_iter()), Ok(false));
        assert_eq!(attachment_param([("download", "1")].into_iter()), Ok(true));
        for v in ["", "0", "AAA", "true"] {
            let e = attachment_param([("download", v)].into_iter()).unwrap_err();
            assert_eq!((e.status(), e.field()), (400, Some("download")), "{v}");
        }
    }

    #[test]
    fn quota_refusals_name_the_share_or_the_room() {
        let limits = FileLimits {
            room_quota_bytes: 100,
            member_quota_bytes: 40,
            ..FileLimits::default()
        };
        let says = |room, mine, len| quota_refusal(room, mine, len, &limits).to_string();
        assert!(says(50, 30, 20).contains("your share"));
        assert!(says(90, 30, 20).contains("room past its quota"));
        assert!(says(90, 10, 20).contains("room past its quota"));
        assert_eq!(quota_refusal(0, 0, 1, &limits).code(), "quota_exceeded");
    }

    #[test]
    fn files_are_deleted_by_their_uploader_while_they_may_upload_or_by_admins() {
        assert!(check_delete(true, Role::Member).is_ok());
        assert!(
            check_delete(true, Role::Viewer).is_err(),
            "a demoted uploader"
        );
        assert!(check_delete(false, Role::Member).is_err());
        assert!(check_delete(false, Role::Admin).is_ok());
        assert!(check_delete(true, Role::Owner).is_ok());
    }
    use proptest::prelude::*;

    fn b64(s: &str) -> String {
        B64.encode(s)
    }

    #[test]
    fn tus_version_is_required() {
        assert!(check_tus_resumable(Some("1.0.0")).is_ok());
        assert_eq!(
            check_tus_resumable(Some("0.2.2")).unwrap_err().status(),
            412
        );
        assert_eq!(check_tus_resumable(None).unwrap_err().status(), 412);
    }

    #[test]
    fn metadata_pairs() {
        let h = format!("filename {},room_id {},empty", b64("a b.txt"), b64("r1"));
        let m = parse_metadata(&h).unwrap();
        assert_eq!(m["filename"], "a b.txt");
        assert_eq!(m["room_id"], "r1");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("k !!!").is_err());
        assert!(parse_metadata(&format!("k {0},k {0}", b64("x"))).is_err());
        assert!(parse_metadata("k a b").is_err());
        assert!(parse_metadata(&"k ".repeat(3000)).is_err());
    }

    #[test]
    fn creation_is_validated() {
        let limits = FileLimits {
            max_file_bytes: 100,
            ..FileLimits::default()
        };
        let meta = format!(
            "filename {},filetype {},room_id {}",
            b64("../../etc/pass\"wd"),
            b64("Text/Plain"),
            b64("room1")
        );
        let u = new_upload(Some("10"), None, Some(&meta), &limits).unwrap();
        assert_eq!(u.filename, "passwd");
        assert_eq!(u.declared_type, "text/plain");
        assert_eq!(u.room_id, "room1");
        assert_eq!(u.length, 10);
        let err = new_upload(Some("101"), None, Some(&meta), &limits).unwrap_err();
        assert_eq!((err.status(), err.code()), (413, "file_too_large"));
        assert!(new_upload(None, None, Some(&meta), &limits).is_err());
        assert!(new_upload(Some("-1"), None, Some(&meta), &limits).is_err());
        assert!(new_upload(Some("1"), Some("1"), Some(&meta), &limits).is_err());
        let no_room = format!("filename {}", b64("a"));
        assert!(new_upload(Some("1"), None, Some(&no_room), &limits).is_err());
        let bad_type = format!(
            "filename {},room_id {},filetype {}",
            b64("a"),
            b64("r"),
            b64("<script>")
        );
        assert_eq!(
            new_upload(Some("1"), None, Some(&bad_type), &limits)
                .unwrap()
                .declared_type,
            "application/octet-stream"
        );
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(sanitize_filename("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename("a\u{0}b\r\n.txt"), "ab.txt");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename("..hidden"), "hidden");
        let long = "é".repeat(300);
        let s = sanitize_filename(&long);
        assert!(s.len() <= FILENAME_MAX_BYTES && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn checksums() {
        let c = parse_checksum(Some(&format!("sha1 {}", B64.encode(Sha1::digest(b"abc")))))
            .unwrap()
            .unwrap();
        let mut h = BodyHasher::new(c.algorithm);
        h.update(b"a");
        h.update(b"bc");
        assert!(h.verify(&c).is_ok());
        let mut h = BodyHasher::new(c.algorithm);
        h.update(b"abd");
        assert_eq!(h.verify(&c).unwrap_err().status(), 460);
        assert!(parse_checksum(Some("md5 AAAA")).is_err());
        assert!(parse_checksum(Some("sha1 AAAA")).is_err());
        assert!(parse_checksum(Some("sha1")).is_err());
        assert_eq!(parse_checksum(None).unwrap(), None);
    }

    proptest! {
        /// The stored-state SHA-256 equals the one-shot digest however the input
        /// is split and however often the state is serialised in between.
        #[test]
        fn resumable_sha256_matches(data in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(0usize..600, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut h = ResumableSha256::default();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                h.update(&data[at..c]);
                at = c;
                h = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
            }
            let want: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(h.hex(), want);
        }

        /// Parts are all exactly the part size except the last, and nothing is
        /// lost or reordered whatever the chunking.
        #[test]
        fn parts_are_equal_sized(chunks in proptest::collection::vec(0usize..40, 0..30)) {
            let part = 16u64;
            let mut buffer = Vec::new();
            let mut parts: Vec<Vec<u8>> = Vec::new();
            let mut all = Vec::new();
            let mut n = 0u8;
            for len in chunks {
                let chunk: Vec<u8> = (0..len).map(|_| { n = n.wrapping_add(1); n }).collect();
                all.extend_from_slice(&chunk);
                buffer.extend_from_slice(&chunk);
                while let Some(p) = take_part(&mut buffer, part) {
                    parts.push(p);
                }
            }
            prop_assert!(buffer.len() < part as usize);
            prop_assert!(parts.iter().all(|p| p.len() == part as usize));
            let joined: Vec<u8> = parts.concat().into_iter().chain(buffer).collect();
            prop_assert_eq!(joined, all);
        }

        #[test]
        fn ranges_stay_inside(size in 0u64..1000, header in "bytes=[0-9]{0,4}-[0-9]{0,4}") {
            match parse_range(Some(&header), size) {
                ByteRange::Partial { start, end } => prop_assert!(start <= end && end < size),
                ByteRange::Full | ByteRange::Unsatisfiable => {}
            }
        }
    }

    fn upload_of(length: u64, now: u64) -> UploadState {
        let upload = NewUpload {
            room_id: "r".into(),
            filename: "f".into(),
            declared_type: "text/plain".into(),
            length,
            metadata: String::new(),
        };
        UploadState::new(
            "id".into(),
            "u".into(),
            &upload,
            "m".into(),
            now,
            &FileLimits::default(),
        )
    }

    #[test]
    fn an_upload_steps_through_its_phases_by_the_clock() {
        let mut s = upload_of(10, 100);
        let expiry = s.expires_at;
        assert_eq!(s.next_step(100), Step::WaitUntil(expiry));
        assert_eq!(s.next_step(expiry), Step::Expire);
        s.offset = 10;
        // Complete wins over late: the bytes were acknowledged.
        assert_eq!(s.next_step(expiry + 1), Step::StoreObject);
        s.phase = Phase::Stored;
        assert_eq!(s.next_step(expiry + 1), Step::Finish);
        for ended in [Phase::Done, Phase::Terminated] {
            s.phase = ended;
            assert_eq!(s.next_step(u64::MAX), Step::Idle);
        }
        s.offset = 3;
        s.phase = Phase::Expired;
        let forget = expiry + EXPIRED_KEPT_SECS;
        assert_eq!(s.next_step(expiry), Step::WaitUntil(forget));
        assert_eq!(s.next_step(forget), Step::Forget);
    }

    proptest! {
        /// A wait is always for a later time, and at that time something is
        /// due: the alarm never rings for nothing, nor loops without waiting.
        #[test]
        fn a_wait_ends_in_a_step(length in 0u64..20, offset in 0u64..20, phase in 0usize..5, created in 0u64..1_000_000, now in 0u64..3_000_000) {
            let mut s = upload_of(length, created);
            s.offset = offset.min(length);
            s.phase = [Phase::Receiving, Phase::Stored, Phase::Done, Phase::Terminated, Phase::Expired][phase];
            if let Step::WaitUntil(at) = s.next_step(now) {
                prop_assert!(at > now);
                prop_assert!(!matches!(s.next_step(at), Step::WaitUntil(_) | Step::Idle));
            }
        }
    }

    #[test]
    fn patches_are_checked() {
        let mut s = upload_of(10, 100);
        let ok = Some(OFFSET_OCTET_STREAM);
        assert!(s.check_patch(ok, 0, Some(10), 100).is_ok());
        assert_eq!(s.check_patch(ok, 3, None, 100).unwrap_err().status(), 409);
        assert_eq!(
            s.check_patch(Some("text/plain"), 0, None, 100)
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(
            s.check_patch(ok, 0, Some(11), 100).unwrap_err().status(),
            400
        );
        assert_eq!(
            s.check_patch(ok, 0, None, s.expires_at)
                .unwrap_err()
                .status(),
            410
        );
        s.offset = 10;
        s.phase = Phase::Done;
        assert_eq!(
            s.check_patch(ok, 10, Some(0), 100).unwrap_err().code(),
            "upload_complete"
        );
        s.phase = Phase::Terminated;
        assert_eq!(s.check_patch(ok, 10, None, 100).unwrap_err().status(), 404);
    }

    #[test]
    fn absorbed_bytes_are_counted_hashed_and_bounded() {
        let mut s = upload_of(5, 0);
        s.absorb(b"he").unwrap();
        s.absorb(b"llo").unwrap();
        assert_eq!(s.offset, 5);
        assert!(s.is_complete());
        assert_eq!(s.sniffed_type(), "text/plain; charset=utf-8");
        let want: String = Sha256::digest(b"hello")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(s.sha256.hex(), want);
        let before = s.clone();
        assert_eq!(s.absorb(b"!").unwrap_err().status(), 400);
        assert_eq!(s, before, "a refused chunk changes nothing");
    }

    #[test]
    fn head_is_kept_for_sniffing() {
        let mut s = upload_of(2000, 0);
        s.keep_head(0, b"\x89PN");
        s.keep_head(3, b"G\r\n\x1a\n rest");
        assert_eq!(s.sniffed_type(), "image/png");
        s.keep_head(600, b"ignored");
        assert_eq!(B64.decode(&s.head).unwrap().len(), 13);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"%PDF-1.7"), "application/pdf");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), "video/mp4");
        assert_eq!(
            sniff(b"<html><script>alert(1)</script>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"<svg onload=alert(1)>"), "text/plain; charset=utf-8");
        assert_eq!(sniff("h\u{e9}".as_bytes()), "text/plain; charset=utf-8");
        // A multi-byte character cut by the sniffing window is still text.
        assert_eq!(sniff(&"é".as_bytes()[..1]), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\x00\x01\x02"), "application/octet-stream");
        assert!(renders_inline("image/png") && renders_inline("application/pdf"));
        assert!(!renders_inline("text/plain; charset=utf-8") && !renders_inline("image/svg+xml"));
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("report.pdf", true),
            "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("r\u{e9}sum\u{e9} \"x\".txt", false),
            "attachment; filename=\"r_sum_ x.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20x.txt"
        );
    }

    #[test]
    fn ranges() {
        use ByteRange::*;
        let part = |start, end| Partial { start, end };
        for (header, want) in [
            (None, Full),
            (Some("bytes=0-3"), part(0, 3)),
            (Some("bytes=5-"), part(5, 9)),
            (Some("bytes=-3"), part(7, 9)),
            (Some("bytes=-30"), part(0, 9)),
            (Some("bytes=8-100"), part(8, 9)),
            (Some("bytes=10-"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=5-2"), Full),
            (Some("bytes=0-1,4-5"), Full),
            (Some("items=0-1"), Full),
            (Some("bytes=x-1"), Full),
        ] {
            assert_eq!(parse_range(header, 10), want, "{header:?}");
        }
    }

    #[test]
    fn spans() {
        let whole = ByteRange::Full.span(10).unwrap();
        assert_eq!(
            (
                whole.status,
                whole.offset,
                whole.length,
                whole.content_range
            ),
            (200, 0, 10, None)
        );
        let part = ByteRange::Partial { start: 2, end: 4 }.span(10).unwrap();
        assert_eq!((part.status, part.offset, part.length), (206, 2, 3));
        assert_eq!(part.content_range.as_deref(), Some("bytes 2-4/10"));
        assert_eq!(ByteRange::Unsatisfiable.span(10).unwrap_err().status(), 416);
        let h = download_headers("a.html", "text/plain; charset=utf-8", "ab", false);
        assert!(h.contains(&(
            "content-disposition",
            "attachment; filename=\"a.html\"; filename*=UTF-8''a.html".into()
        )));
        assert!(h.contains(&("etag", "\"ab\"".into())));
        let disposition = |attachment| {
            download_headers("p.png", "image/png", "ab", attachment)
                .into_iter()
                .find(|(k, _)| *k == "content-disposition")
                .map(|(_, v)| v)
                .unwrap_or_default()
        };
        assert!(disposition(false).starts_with("inline;"));
        assert!(disposition(true).starts_with("attachment;"));
    }

    #[test]
    fn entity_tags() {
        let e = etag("ab");
        assert!(if_none_match(Some("\"ab\""), &e));
        assert!(if_none_match(Some("\"x\", W/\"ab\""), &e));
        assert!(if_none_match(Some("*"), &e));
        assert!(!if_none_match(Some("\"x\""), &e));
        assert!(!if_none_match(None, &e));
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_794_960_000), "Wed, 18 Nov 2026 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn progress_is_throttled() {
        assert!(progress_due(None, 5));
        assert!(!progress_due(Some(1_000), 1_999));
        assert!(progress_due(Some(1_000), 2_000));
    }
}
