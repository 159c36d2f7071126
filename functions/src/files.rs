//! `/api/v1/uploads/*` (tus 1.0) and `/api/v1/files/*`: the Worker's side of
//! files. Creation checks the room, the size limit and the room's quota, then
//! hands the upload to its own Upload Durable Object; PATCH bodies stream
//! through to it without being buffered here. Downloads stream from R2 with
//! ranges and entity tags, typed by what the bytes are, not what they claimed.

use crate::access::{file_access, file_for, role_in, FILE_COLUMNS};
use crate::crypto;
use crate::ctx::{arg, changes, now_secs, page, Ctx};
use crate::tokens::authenticate;
use serde::Deserialize;
use tessera_core::files::call::UploadCall;
use tessera_core::files::{
    self, attachment_param, check_delete, check_tus_resumable, download_headers, etag,
    if_none_match, new_upload, parse_range, parse_u64_header, room_prefix, FileInfo, FileLimits,
    FileList, FileStatus, FileUsage, OFFSET_OCTET_STREAM, TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS,
    TUS_VERSION,
};
use tessera_core::links::{sign, verify, LinkKey, LinkParams};
use tessera_core::room::{ArchivedAnswer, RoomCall};
use tessera_core::rooms::{require, Permission, Role};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, no_content, Failure, HttpResult};
use tessera_durable_objects::{room_client, upload};
use worker::{Env, Headers, Method, Range, Request, Response, ResponseBuilder};

/// The tus headers every answer under `/api/v1/uploads` carries, and what
/// `OPTIONS` announces.
pub fn tus_headers(ctx: &Ctx, headers: &Headers, method: &Method) {
    let _ = headers.set("tus-resumable", TUS_VERSION);
    if *method == Method::Options {
        let max = limits(ctx).max_file_bytes.to_string();
        for (k, v) in [
            ("tus-version", TUS_VERSION),
            ("tus-extension", TUS_EXTENSIONS),
            ("tus-max-size", &max),
            ("tus-checksum-algorithm", TUS_CHECKSUM_ALGORITHMS),
        ] {
            let _ = headers.set(k, v);
        }
    }
}

pub fn limits(ctx: &Ctx) -> FileLimits {
    let d = FileLimits::default();
    let num = |name: &str, default: u64| {
        ctx.var(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    FileLimits {
        max_file_bytes: num("FILE_MAX_BYTES", d.max_file_bytes),
        room_quota_bytes: num("ROOM_QUOTA_BYTES", d.room_quota_bytes),
        member_quota_bytes: num("MEMBER_QUOTA_BYTES", d.member_quota_bytes),
        upload_expiry_secs: num("UPLOAD_EXPIRY_SECS", d.upload_expiry_secs),
    }
}

fn header(req: &Request, name: &str) -> HttpResult<Option<String>> {
    Ok(req.headers().get(name)?)
}

/// tus creation (and creation-with-upload): `POST /api/v1/uploads`.
pub async fn create(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    check_tus_resumable(header(&req, "tus-resumable")?.as_deref())?;
    let limits = limits(ctx);
    let upload = new_upload(
        header(&req, "upload-length")?.as_deref(),
        header(&req, "upload-defer-length")?.as_deref(),
        header(&req, "upload-metadata")?.as_deref(),
        &limits,
    )?;
    let role = role_in(ctx, &upload.room_id, &user_id).await?;
    require(role, Permission::UploadFile)?;
    // An archived room takes no files (refused before any byte is sent).
    let answer: ArchivedAnswer =
        room_client::call_room(&ctx.env, &upload.room_id, &RoomCall::Archived).await?;
    if answer.archived {
        return Err(ApiError::room_archived().into());
    }
    let id = crypto::new_id()?;
    let now = now_secs();
    // One statement, so two uploads racing for the last of the quota cannot
    // both pass: abandoned (expired) uploads no longer count. The uploader's
    // own files and running uploads in the room must stay within their share.
    let held = held("?8");
    let inserted = ctx
        .db()?
        .prepare(format!(
            "INSERT INTO files (id, room_id, uploader_id, name, declared_type, size, status, r2_key, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?12, ?7, ?8, ?9
             WHERE (SELECT COALESCE(SUM(size), 0) FROM files WHERE room_id = ?2 AND {held}) + ?6 <= ?10
               AND (SELECT COALESCE(SUM(size), 0) FROM files WHERE room_id = ?2 AND uploader_id = ?3
                    AND {held}) + ?6 <= ?11"
        ))
        .bind(&[
            arg(&id),
            arg(&upload.room_id),
            arg(&user_id),
            arg(&upload.filename),
            arg(&upload.declared_type),
            arg(upload.length),
            arg(&tessera_core::files::r2_key(&upload.room_id, &id)),
            arg(now),
            arg(now + limits.upload_expiry_secs),
            arg(limits.room_quota_bytes),
            arg(limits.member_quota_bytes),
            arg(FileStatus::Uploading.as_str()),
        ])?
        .run()
        .await?;
    if changes(&inserted)? == 0 {
        return Err(quota_refusal(ctx, &upload.room_id, &user_id, upload.length, &limits).await);
    }
    let call = UploadCall::Create {
        id: id.clone(),
        uploader: user_id,
        upload,
        expiry_secs: limits.upload_expiry_secs,
    };
    let created = upload::call(&ctx.env, &id, &call, None).await;
    let mut created = match created {
        Ok(r) if r.status_code() == 201 => r,
        other => {
            ctx.db()?
                .prepare("DELETE FROM files WHERE id = ?1")
                .bind(&[arg(&id)])?
                .run()
                .await?;
            return other;
        }
    };
    let location = format!(
        "{}/api/v1/uploads/{id}",
        req.url()?.origin().ascii_serialization()
    );
    let with_data = header(&req, "content-type")?
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM));
    if with_data {
        // creation-with-upload: the body is the first PATCH. If it fails, the
        // upload still exists and the answer says how much was kept.
        let patched = forward_patch(ctx, &req, &id, "0").await?;
        if patched.status_code() < 300 {
            created = patched;
        } else {
            created = upload::call(&ctx.env, &id, &UploadCall::State, None).await?;
        }
    }
    let headers = created.headers().clone();
    headers.set("location", &location)?;
    Ok(Response::empty()?.with_status(201).with_headers(headers))
}

/// The bytes that count against a quota, `now` being the parameter that holds
/// the time: finished files and uploads that have not expired. The statuses
/// are written in (constants, not input) so that callers bind only their own.
fn held(now: &str) -> String {
    let (ready, uploading) = (FileStatus::Ready.as_str(), FileStatus::Uploading.as_str());
    format!("(status = '{ready}' OR (status = '{uploading}' AND expires_at > {now}))")
}

#[derive(Deserialize)]
struct Held {
    room: u64,
    mine: u64,
}

async fn held_bytes(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Option<Held>> {
    let held = held("?3");
    Ok(ctx
        .db()?
        .prepare(format!(
            "SELECT (SELECT COALESCE(SUM(size), 0) FROM files WHERE room_id = ?1 AND {held}) AS room,
                    (SELECT COALESCE(SUM(size), 0) FROM files WHERE room_id = ?1 AND uploader_id = ?2
                     AND {held}) AS mine"
        ))
        .bind(&[arg(room_id), arg(user_id), arg(now_secs())])?
        .first(None)
        .await?)
}

/// Why an upload of `length` bytes did not fit (see `files::quota_refusal`).
async fn quota_refusal(
    ctx: &Ctx,
    room_id: &str,
    user_id: &str,
    length: u64,
    limits: &FileLimits,
) -> Failure {
    match held_bytes(ctx, room_id, user_id).await {
        Ok(h) => {
            let h = h.unwrap_or(Held { room: 0, mine: 0 });
            files::quota_refusal(h.room, h.mine, length, limits).into()
        }
        Err(e) => e,
    }
}

/// Forwards a PATCH body (a stream) to the upload's object.
async fn forward_patch(ctx: &Ctx, req: &Request, id: &str, offset: &str) -> HttpResult<Response> {
    let call = UploadCall::Patch {
        offset: parse_u64_header("Upload-Offset", Some(offset))?,
        content_type: header(req, "content-type")?,
        content_length: header(req, "content-length")?
            .map(|v| parse_u64_header("Content-Length", Some(&v)))
            .transpose()?,
        checksum: header(req, "upload-checksum")?,
    };
    let body = req.inner().body().map(Into::into);
    upload::call(&ctx.env, id, &call, body).await
}

/// An upload as its uploader reaches it.
#[derive(Deserialize)]
struct Access {
    uploader_id: String,
    room_id: String,
    status: FileStatus,
    role: Option<String>,
}

/// The upload and the caller's role in its room, in one query. Only the
/// uploader reaches an upload, while a member; anyone else gets 404 as for a
/// missing one.
async fn upload_access(ctx: &Ctx, req: &Request, id: &str) -> HttpResult<(Access, Role)> {
    let user_id = authenticate(ctx, req).await?;
    check_tus_resumable(header(req, "tus-resumable")?.as_deref())?;
    let access: Access = ctx
        .db()?
        .prepare(
            "SELECT f.uploader_id, f.room_id, f.status, m.role FROM files f
             LEFT JOIN memberships m ON m.room_id = f.room_id AND m.user_id = ?2
             WHERE f.id = ?1",
        )
        .bind(&[arg(id), arg(&user_id)])?
        .first(None)
        .await?
        .filter(|a: &Access| {
            a.uploader_id == user_id && a.role.is_some() && ctx.key_allows_room(&a.room_id)
        })
        .ok_or(ApiError::NotFound("upload"))?;
    let role = access.role.as_deref().unwrap_or_default().parse()?;
    Ok((access, role))
}

/// tus `HEAD /api/v1/uploads/{id}`.
pub async fn status(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    upload_access(ctx, &req, id).await?;
    upload::call(&ctx.env, id, &UploadCall::State, None).await
}

/// tus `PATCH /api/v1/uploads/{id}`: the uploader must still be allowed to
/// write in the room.
pub async fn patch(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let (_, role) = upload_access(ctx, &req, id).await?;
    require(role, Permission::UploadFile)?;
    let offset = header(&req, "upload-offset")?
        .ok_or_else(|| ApiError::invalid("the Upload-Offset header is required"))?;
    forward_patch(ctx, &req, id, &offset).await
}

/// tus termination: `DELETE /api/v1/uploads/{id}`. Of an unfinished upload it
/// frees what the upload holds; of a finished one it deletes the file, with
/// the rule and the effects of `DELETE /files/{id}` (so the file never stays
/// listed without its bytes).
pub async fn terminate(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let (access, role) = upload_access(ctx, &req, id).await?;
    if access.status == FileStatus::Ready {
        check_delete(true, role)?;
        remove(ctx, &access.room_id, id).await?;
        return no_content();
    }
    let resp = upload::call(&ctx.env, id, &UploadCall::Terminate, None).await?;
    if resp.status_code() >= 300 {
        return Ok(resp);
    }
    #[derive(Deserialize)]
    struct Gone {
        status: FileStatus,
    }
    let gone: Option<Gone> = ctx
        .db()?
        .prepare("DELETE FROM files WHERE id = ?1 RETURNING status")
        .bind(&[arg(id)])?
        .first(None)
        .await?;
    // It finished meanwhile: the room listed it, and must drop it again.
    if gone.is_some_and(|g| g.status == FileStatus::Ready) {
        tell_removed(ctx, &access.room_id, id).await?;
    }
    no_content()
}

/// The file, with its AI analysis (`analysis`: see `jobs::file_analysis`).
pub async fn get(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let (file, _, _) = file_access(ctx, &req, id).await?;
    let mut body = serde_json::to_value(&file)?;
    body["analysis"] = serde_json::to_value(crate::jobs::file_analysis(ctx, id).await?)?;
    json(200, &body)
}

/// `GET /api/v1/rooms/{id}/files`: finished files, newest first.
pub async fn list(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    role_in(ctx, room_id, &user_id).await?;
    let page = page(&req)?;
    let mut files: Vec<FileInfo> = ctx
        .db()?
        .prepare(format!(
            "SELECT {FILE_COLUMNS} FROM files f
             WHERE f.room_id = ?1 AND f.status = ?4
               AND (?3 IS NULL OR (f.created_at, f.id) < (SELECT created_at, id FROM files WHERE id = ?3))
             ORDER BY f.created_at DESC, f.id DESC LIMIT ?2"
        ))
        .bind(&[
            arg(room_id),
            arg(page.limit + 1),
            arg(page.cursor.as_ref()),
            arg(FileStatus::Ready.as_str()),
        ])?
        .all()
        .await?
        .results()?;
    let next_cursor = page.finish(&mut files, |f| f.id.clone());
    let held = held_bytes(ctx, room_id, &user_id).await?;
    let h = held.unwrap_or(Held { room: 0, mine: 0 });
    let usage = FileUsage::of(h.room, h.mine, &limits(ctx));
    json(
        200,
        &FileList {
            files,
            next_cursor,
            usage,
        },
    )
}

fn link_key(ctx: &Ctx) -> HttpResult<LinkKey> {
    Ok(LinkKey::derive(crate::tokens::secret(ctx)?.as_bytes()))
}

/// `POST /api/v1/files/{id}/link`: a signed link for the caller, for what
/// cannot send a bearer header (see `tessera_core::links`).
pub async fn link(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let (file, _, user_id) = file_access(ctx, &req, id).await?;
    json(200, &sign(&link_key(ctx)?, &file.id, &user_id, now_secs()))
}

/// The file a content request may read: by a signed link (for the person it
/// was made for, while they are still a member of the file's room) or by the
/// bearer token.
async fn readable_file(
    ctx: &Ctx,
    req: &Request,
    id: &str,
    link: &LinkParams,
) -> HttpResult<FileInfo> {
    if !link.present() {
        return Ok(file_access(ctx, req, id).await?.0);
    }
    let user_id = verify(&link_key(ctx)?, id, link, now_secs())?;
    *ctx.user.borrow_mut() = Some(user_id.clone());
    Ok(file_for(ctx, id, &user_id).await?.0)
}

/// `GET|HEAD /api/v1/files/{id}/content`: the bytes, streamed from R2.
/// `?download=1` makes every type an attachment.
pub async fn content(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let pairs = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let link = LinkParams::from_query(pairs());
    let attachment = attachment_param(pairs())?;
    let file = readable_file(ctx, &req, id, &link).await?;
    let content_type = file
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    let sha256 = file.sha256.unwrap_or_default();
    let headers = Headers::new();
    for (name, value) in download_headers(&file.name, &content_type, &sha256, attachment) {
        headers.set(name, &value)?;
    }
    if if_none_match(header(&req, "if-none-match")?.as_deref(), &etag(&sha256)) {
        return Ok(ResponseBuilder::new()
            .with_status(304)
            .with_headers(headers)
            .empty());
    }
    let span = parse_range(header(&req, "range")?.as_deref(), file.size).span(file.size)?;
    if let Some(range) = &span.content_range {
        headers.set("content-range", range)?;
    }
    headers.set("content-length", &span.length.to_string())?;
    let builder = ResponseBuilder::new()
        .with_status(span.status)
        .with_headers(headers);
    if req.method() == Method::Head || span.length == 0 {
        return Ok(builder.empty());
    }
    let object = ctx
        .env
        .bucket("FILES")?
        .get(tessera_core::files::r2_key(&file.room_id, &file.id))
        .range(Range::OffsetWithLength {
            offset: span.offset,
            length: span.length,
        })
        .execute()
        .await?
        .ok_or_else(|| ApiError::Internal(format!("file {} is missing from R2", file.id)))?;
    let body = object
        .body()
        .ok_or_else(|| ApiError::Internal("R2 returned no body".into()))?;
    Ok(builder.body(body.response_body()?))
}

/// `DELETE /api/v1/files/{id}`: the uploader (while a member) or an admin.
pub async fn delete(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let (file, role, user_id) = file_access(ctx, &req, id).await?;
    check_delete(file.uploader_id == user_id, role)?;
    remove(ctx, &file.room_id, id).await?;
    no_content()
}

/// Removes a finished file everywhere: metadata, bytes, its upload object and
/// the room's list (which tells the sockets).
pub async fn remove(ctx: &Ctx, room_id: &str, id: &str) -> HttpResult<()> {
    upload::discard(&ctx.env, room_id, id).await?;
    tell_removed(ctx, room_id, id).await
}

async fn tell_removed(ctx: &Ctx, room_id: &str, id: &str) -> HttpResult<()> {
    let removed = RoomCall::FileRemoved { id: id.to_string() };
    let _: serde_json::Value = room_client::call_room(&ctx.env, room_id, &removed).await?;
    Ok(())
}

/// Deletes every object of a deleted room from R2 (D1 rows go by cascade).
pub async fn purge_room(env: &Env, room_id: &str) -> HttpResult<()> {
    let bucket = env.bucket("FILES")?;
    Ok(tessera_durable_objects::r2::delete_prefix(&bucket, &room_prefix(room_id)).await?)
}
