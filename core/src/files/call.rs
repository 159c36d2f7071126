//! The calls the Worker makes to an upload's object, as one typed enum (as
//! [`crate::room::RoomCall`] is for rooms): the Worker serialises an
//! [`UploadCall`] into the `x-tessera-call` header, since a PATCH's bytes
//! travel as the request's body stream, and the object matches it
//! exhaustively.

use super::NewUpload;
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// The header that carries the call.
pub const UPLOAD_CALL_HEADER: &str = "x-tessera-call";

/// The largest call a header carries (a creation's filename and metadata are
/// bounded well below it).
pub const UPLOAD_CALL_BYTES_MAX: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case", deny_unknown_fields)]
pub enum UploadCall {
    /// Start an upload that D1 has admitted (answers 201 with its tus headers).
    Create {
        id: String,
        uploader: String,
        upload: NewUpload,
        expiry_secs: u64,
    },
    /// Where the upload stands (tus `HEAD`); finishing that an earlier
    /// request could not complete is retried first.
    State,
    /// Bytes at `offset`, in the request's body stream, with the client's
    /// headers as the object checks them.
    Patch {
        offset: u64,
        content_type: Option<String>,
        content_length: Option<u64>,
        checksum: Option<String>,
    },
    /// Abandon an unfinished upload (or forget a finished one's state).
    Terminate,
}

impl UploadCall {
    /// The call as its header carries it: JSON with every character past
    /// ASCII escaped, since a header value holds bytes, not text (a filename
    /// may be in any script).
    pub fn to_header(&self) -> Result<String, ApiError> {
        let json = serde_json::to_string(self)
            .map_err(|e| ApiError::Internal(format!("an upload call: {e}")))?;
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        Ok(out)
    }

    /// Reads a call from its header; a missing or malformed one is a bug of
    /// the caller (our own Worker), answered as an internal error.
    pub fn from_header(header: Option<&str>) -> Result<Self, ApiError> {
        let text = header.ok_or_else(|| {
            ApiError::Internal("an upload object was called without a call".into())
        })?;
        if text.len() > UPLOAD_CALL_BYTES_MAX {
            return Err(ApiError::Internal("an upload call is too large".into()));
        }
        serde_json::from_str(text).map_err(|e| ApiError::Internal(format!("an upload call: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_reads_back_from_its_header() {
        let calls = [
            UploadCall::Create {
                id: "f1".into(),
                uploader: "u1".into(),
                upload: NewUpload {
                    room_id: "r1".into(),
                    filename: "a \"b\" résumé 文件 🎉.txt".into(),
                    declared_type: "text/plain".into(),
                    length: 12,
                    metadata: "filename YQ==".into(),
                },
                expiry_secs: 60,
            },
            UploadCall::State,
            UploadCall::Patch {
                offset: 5,
                content_type: Some("application/offset+octet-stream".into()),
                content_length: None,
                checksum: Some("sha1 abc=".into()),
            },
            UploadCall::Terminate,
        ];
        for call in calls {
            let header = call.to_header().unwrap();
            assert!(header.is_ascii(), "{header}");
            assert_eq!(
                UploadCall::from_header(Some(&header)).unwrap(),
                call,
                "{header}"
            );
        }
    }

    #[test]
    fn a_missing_oversized_or_unknown_call_is_refused() {
        assert!(UploadCall::from_header(None).is_err());
        assert!(UploadCall::from_header(Some(r#"{"call":"explode"}"#)).is_err());
        let extra = r#"{"call":"patch","offset":0,"content_type":null,"content_length":null,"checksum":null,"x":1}"#;
        assert!(UploadCall::from_header(Some(extra)).is_err());
        let big = format!(
            r#"{{"call":"state","pad":"{}"}}"#,
            "x".repeat(UPLOAD_CALL_BYTES_MAX)
        );
        assert!(UploadCall::from_header(Some(&big)).is_err());
    }
}
