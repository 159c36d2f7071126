//! UploadDO: one tus upload, from creation to a finished file in R2. It takes
//! the upload's PATCHes one at a time, streams their bytes into R2 multipart
//! parts of one size (buffering what is below a part in its SQLite, in rows
//! under the row limit), records each part's etag itself (the binding cannot
//! list parts), completes the object when the last byte arrives, writes the
//! file's metadata to D1 and announces it to the room. An alarm aborts the
//! upload when it expires.
//!
//! Only the Worker reaches this object, after checking that the caller is the
//! uploader and may still write in the room. The rules are in
//! `tessera_core::files`.

use crate::clock::{now_ms, now_secs};
use crate::d1::arg;
use crate::http::{no_content, Failure, HttpResult};
use crate::room_client;
use crate::sql::create_schema;
use futures_util::StreamExt;
use std::cell::Cell;
use store::{SqlUploadStore, SCHEMA};
use tessera_core::files::call::{UploadCall, UPLOAD_CALL_HEADER};
use tessera_core::files::store::{commit, discard_received, Unrecorded, UploadStore};
use tessera_core::files::{
    http_date, parse_checksum, progress_due, take_part, BodyHasher, FileRef, FileStatus, NewUpload,
    Phase, Step, UploadState, PART_BYTES,
};
use tessera_core::room::RoomCall;
use tessera_core::ApiError;
use worker::{
    Bucket, Env, Method, MultipartUpload, Request, Response, ResponseBuilder, State, UploadedPart,
};

mod store;

/// When finishing fails (D1 or the room unreachable), the alarm retries after this.
const RETRY_SECS: u64 = 30;

pub struct UploadDO {
    state: State,
    env: Env,
    /// A PATCH is streaming: another one for the same upload is refused (423)
    /// rather than interleaved at an await.
    busy: Cell<bool>,
    last_progress_ms: Cell<Option<u64>>,
    schema_error: Option<String>,
}

/// Makes a call to an upload's object (named by the file id); `body` is a
/// PATCH's byte stream.
pub async fn call(
    env: &Env,
    id: &str,
    call: &UploadCall,
    body: Option<wasm_bindgen::JsValue>,
) -> HttpResult<Response> {
    let stub = env
        .durable_object("UPLOADS")?
        .id_from_name(id)?
        .get_stub()?;
    let headers = worker::Headers::new();
    headers.set(UPLOAD_CALL_HEADER, &call.to_header()?)?;
    crate::http::call_object(stub, Method::Post, "/call", headers, body).await
}

/// Erases a finished file's metadata, bytes and upload object; the caller
/// tells the room, which drops it from its list and tells the sockets.
pub async fn discard(env: &Env, room_id: &str, id: &str) -> HttpResult<()> {
    env.d1("DB")?
        .prepare("DELETE FROM files WHERE id = ?1")
        .bind(&[arg(id)])?
        .run()
        .await?;
    env.bucket("FILES")?
        .delete(tessera_core::files::r2_key(room_id, id))
        .await?;
    // The upload object only answers 404 once its state is gone.
    let _ = call(env, id, &UploadCall::Terminate, None).await;
    Ok(())
}

/// The runtime's entry points; `objects/` exports the class that calls them.
impl UploadDO {
    pub fn new(state: State, env: Env) -> Self {
        let schema_error = create_schema(&state.storage().sql(), &[SCHEMA]).err();
        Self {
            state,
            env,
            busy: Cell::new(false),
            last_progress_ms: Cell::new(None),
            schema_error,
        }
    }

    pub async fn fetch(&self, req: Request) -> worker::Result<Response> {
        crate::http::answer(self.serve(req).await)
    }

    pub async fn alarm(&self) -> worker::Result<Response> {
        if let Err(Failure(e)) = self.on_alarm().await {
            worker::console_error!("upload alarm failed: {e:?}");
            self.retry_later().await?;
        }
        Response::ok("done")
    }
}

impl UploadDO {
    fn schema_ready(&self) -> HttpResult<()> {
        match &self.schema_error {
            Some(e) => Err(ApiError::Internal(format!("upload schema: {e}")).into()),
            None => Ok(()),
        }
    }

    fn store(&self) -> SqlUploadStore {
        SqlUploadStore {
            sql: self.state.storage().sql(),
        }
    }

    fn existing(&self) -> HttpResult<UploadState> {
        Ok(self.store().load()?.ok_or(ApiError::NotFound("upload"))?)
    }

    fn bucket(&self) -> HttpResult<Bucket> {
        Ok(self.env.bucket("FILES")?)
    }

    fn multipart(&self, st: &UploadState) -> HttpResult<MultipartUpload> {
        Ok(self
            .bucket()?
            .resume_multipart_upload(&st.r2_key, &st.multipart_id)?)
    }

    async fn serve(&self, req: Request) -> HttpResult<Response> {
        self.schema_ready()?;
        let call = UploadCall::from_header(req.headers().get(UPLOAD_CALL_HEADER)?.as_deref())?;
        match call {
            UploadCall::Create {
                id,
                uploader,
                upload,
                expiry_secs,
            } => self.create(id, uploader, &upload, expiry_secs).await,
            UploadCall::State => self.status().await,
            UploadCall::Patch {
                offset,
                content_type,
                content_length,
                checksum,
            } => {
                if self.busy.replace(true) {
                    return Err(ApiError::Locked {
                        code: tessera_core::error::code::UPLOAD_LOCKED,
                        message: "another PATCH of this upload is in progress".into(),
                    }
                    .into());
                }
                let result = self
                    .patch(req, offset, content_type, content_length, checksum)
                    .await;
                self.busy.set(false);
                result
            }
            UploadCall::Terminate => self.terminate().await,
        }
    }

    async fn create(
        &self,
        id: String,
        uploader: String,
        upload: &NewUpload,
        expiry_secs: u64,
    ) -> HttpResult<Response> {
        if self.store().load()?.is_some() {
            return Err(ApiError::Conflict {
                code: tessera_core::error::code::UPLOAD_EXISTS,
                message: "this upload already exists".into(),
            }
            .into());
        }
        let now = now_secs();
        let key = tessera_core::files::r2_key(&upload.room_id, &id);
        let multipart = self
            .bucket()?
            .create_multipart_upload(key)
            .execute()
            .await?;
        let limits = tessera_core::files::FileLimits {
            upload_expiry_secs: expiry_secs,
            ..Default::default()
        };
        let st = UploadState::new(
            id,
            uploader,
            upload,
            multipart.upload_id().await,
            now,
            &limits,
        );
        self.store().save(&st)?;
        self.alarm_at(st.expires_at).await?;
        self.tus_response(201, &st)
    }

    /// 204 (or `status`) with the upload's offset and, while it runs, its expiry.
    fn tus_response(&self, status: u16, st: &UploadState) -> HttpResult<Response> {
        let mut b = ResponseBuilder::new()
            .with_status(status)
            .with_header("upload-offset", &st.offset.to_string())?
            .with_header("upload-length", &st.length.to_string())?
            .with_header("cache-control", "no-store")?;
        if st.phase == Phase::Receiving {
            b = b.with_header("upload-expires", &http_date(st.expires_at))?;
        }
        if !st.metadata.is_empty() {
            b = b.with_header("upload-metadata", &st.metadata)?;
        }
        Ok(b.empty())
    }

    /// HEAD: where the upload stands. Finishing that an earlier request could
    /// not complete is retried first.
    async fn status(&self) -> HttpResult<Response> {
        let mut st = self.existing()?;
        st.check_exists()?;
        if let Err(e) = self.run_steps(&mut st, false).await {
            worker::console_error!("finishing upload {} failed: {:?}", st.id, e.0);
            self.retry_later().await?;
        }
        self.tus_response(200, &st)
    }

    /// A PATCH: `offset` and the rest as the client's headers gave them.
    async fn patch(
        &self,
        mut req: Request,
        offset: u64,
        content_type: Option<String>,
        content_length: Option<u64>,
        checksum: Option<String>,
    ) -> HttpResult<Response> {
        let mut st = self.existing()?;
        st.check_patch(content_type.as_deref(), offset, content_length, now_secs())?;
        let checksum = parse_checksum(checksum.as_deref())?;
        let mut hasher = checksum.as_ref().map(|c| BodyHasher::new(c.algorithm));
        let multipart = self.multipart(&st)?;
        let mut store = self.store();
        let mut buffer = store.buffer()?;
        let mut unrecorded = Unrecorded::after(&buffer);
        // A PATCH without a body is a valid, empty one.
        let mut stream = match req.inner().body() {
            Some(_) => Some(req.stream()?),
            None => None,
        };
        let mut broken = false;
        while let Some(chunk) = match stream.as_mut() {
            Some(s) => s.next().await,
            None => None,
        } {
            let Ok(chunk) = chunk else {
                broken = true;
                break;
            };
            st.absorb(&chunk)?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            buffer.extend_from_slice(&chunk);
            while let Some(part) = take_part(&mut buffer, PART_BYTES) {
                let number = st.parts + 1;
                let etag = multipart.upload_part(number as u16, part).await?.etag();
                st.parts = number;
                unrecorded.parts.push((number, etag));
                // Without a checksum to verify at the end, what reached R2 is
                // kept at once: a broken connection loses at most a part.
                if hasher.is_none() {
                    commit(&mut store, &st, &buffer, &mut unrecorded)?;
                }
            }
        }
        if let (Some(h), Some(c)) = (hasher, &checksum) {
            if broken {
                return Err(ApiError::invalid(
                    "the body ended before its end; nothing of it was kept (Upload-Checksum covers the whole body)",
                )
                .into());
            }
            h.verify(c)?;
        }
        commit(&mut store, &st, &buffer, &mut unrecorded)?;
        self.report_progress(&st).await;
        if st.is_complete() {
            if let Err(e) = self.run_steps(&mut st, false).await {
                self.retry_later().await?;
                return Err(e);
            }
        }
        self.tus_response(204, &st)
    }

    /// Runs the upload's due steps (`UploadState::next_step`), each recorded
    /// before the next, so a retry resumes where a failure stopped. A request
    /// runs only the finishing steps; the alarm runs every step due and is
    /// then set for the next one.
    async fn run_steps(&self, st: &mut UploadState, from_alarm: bool) -> HttpResult<()> {
        loop {
            match st.next_step(now_secs()) {
                Step::StoreObject => self.store_object(st).await?,
                Step::Finish => {
                    self.finish(st).await?;
                    st.phase = Phase::Done;
                    self.store().save(st)?;
                    self.state.storage().delete_alarm().await?;
                }
                Step::Idle => return Ok(()),
                _ if !from_alarm => return Ok(()),
                Step::Expire => self.expire(st).await?,
                Step::Forget => return Ok(self.state.storage().delete_all().await?),
                Step::WaitUntil(at) => return Ok(self.alarm_at(at).await?),
            }
        }
    }

    /// Every byte is in: the last part and the complete R2 object.
    async fn store_object(&self, st: &mut UploadState) -> HttpResult<()> {
        let mut store = self.store();
        let buffer = store.buffer()?;
        if st.length == 0 {
            self.bucket()?
                .put(&st.r2_key, Vec::<u8>::new())
                .execute()
                .await?;
            // An empty object needs no parts; the empty multipart upload goes.
            let _ = self.multipart(st)?.abort().await;
        } else {
            let multipart = self.multipart(st)?;
            if !buffer.is_empty() {
                let number = st.parts + 1;
                let etag = multipart.upload_part(number as u16, buffer).await?.etag();
                st.parts = number;
                let mut unrecorded = Unrecorded {
                    rows_len: 0,
                    parts: vec![(number, etag)],
                };
                commit(&mut store, st, &[], &mut unrecorded)?;
            }
            let parts = store.parts()?.into_iter();
            let parts = parts.map(|(n, etag)| UploadedPart::new(n as u16, etag));
            multipart.complete(parts).await?;
        }
        st.phase = Phase::Stored;
        discard_received(&mut store, st)
    }

    /// Marks the file ready in D1 and tells the room (both idempotent).
    async fn finish(&self, st: &UploadState) -> HttpResult<()> {
        let file = FileRef {
            id: st.id.clone(),
            name: st.filename.clone(),
            content_type: st.sniffed_type().to_string(),
            size: st.length,
        };
        let db = self.env.d1("DB")?;
        let result = db
            .prepare(
                "UPDATE files SET status = ?5, sha256 = ?2, content_type = ?3, completed_at = ?4
                 WHERE id = ?1 AND status IN (?6, ?5)",
            )
            .bind(&[
                arg(&st.id),
                arg(&st.sha256.hex()),
                arg(&file.content_type),
                arg(now_secs()),
                arg(FileStatus::Ready.as_str()),
                arg(FileStatus::Uploading.as_str()),
            ])?
            .run()
            .await?;
        if crate::d1::changes(&result)? == 0 {
            // The file was deleted (or its room) while the last bytes arrived.
            self.bucket()?.delete(&st.r2_key).await?;
            return Ok(());
        }
        let added = RoomCall::FileAdded {
            file,
            uploader: st.uploader.clone(),
        };
        let _: serde_json::Value = room_client::call_room(&self.env, &st.room_id, &added).await?;
        Ok(())
    }

    /// A throttled `upload_progress` event on the room socket (best effort:
    /// progress is advisory, the upload does not wait on the room).
    async fn report_progress(&self, st: &UploadState) {
        let now = now_ms();
        if st.is_complete() || !progress_due(self.last_progress_ms.get(), now) {
            return;
        }
        self.last_progress_ms.set(Some(now));
        let event = RoomCall::Ephemeral {
            event: "upload_progress".into(),
            data: serde_json::json!({
                "file_id": st.id,
                "name": st.filename,
                "uploader": st.uploader,
                "offset": st.offset,
                "length": st.length,
            }),
        };
        let told: HttpResult<serde_json::Value> =
            room_client::call_room(&self.env, &st.room_id, &event).await;
        if let Err(Failure(e)) = told {
            worker::console_error!("upload progress not delivered: {e:?}");
        }
    }

    /// tus termination (and deletion of a finished file): aborts the multipart
    /// upload or removes the object, then erases this object's storage.
    async fn terminate(&self) -> HttpResult<Response> {
        let st = self.existing()?;
        if self.busy.get() {
            return Err(ApiError::Locked {
                code: tessera_core::error::code::UPLOAD_LOCKED,
                message: "a PATCH of this upload is in progress".into(),
            }
            .into());
        }
        match st.phase {
            Phase::Receiving => {
                // Already gone in R2 is fine: the goal is that nothing remains.
                let _ = self.multipart(&st)?.abort().await;
            }
            Phase::Stored | Phase::Done => self.bucket()?.delete(&st.r2_key).await?,
            Phase::Terminated | Phase::Expired => {}
        }
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        no_content()
    }

    async fn on_alarm(&self) -> HttpResult<()> {
        self.schema_ready()?;
        let Some(mut st) = self.store().load()? else {
            return Ok(());
        };
        self.run_steps(&mut st, true).await
    }

    /// Frees everything an unfinished upload holds: its R2 parts, its buffer,
    /// its place in the room's quota. `HEAD` answers 410 for a while after.
    async fn expire(&self, st: &mut UploadState) -> HttpResult<()> {
        let _ = self.multipart(st)?.abort().await;
        self.env
            .d1("DB")?
            .prepare("UPDATE files SET status = ?2 WHERE id = ?1 AND status = ?3")
            .bind(&[
                arg(&st.id),
                arg(FileStatus::Expired.as_str()),
                arg(FileStatus::Uploading.as_str()),
            ])?
            .run()
            .await?;
        st.phase = Phase::Expired;
        discard_received(&mut self.store(), st)
    }

    async fn retry_later(&self) -> worker::Result<()> {
        self.alarm_at(now_secs() + RETRY_SECS).await
    }

    /// Wakes this object at `unix_secs`.
    async fn alarm_at(&self, unix_secs: u64) -> worker::Result<()> {
        self.state
            .storage()
            .set_alarm(crate::clock::alarm_at(unix_secs * 1000))
            .await
    }
}
