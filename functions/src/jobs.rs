//! File analysis jobs: `POST /api/v1/files/{id}/analyze`, `POST /api/v1/ai/batch`
//! and `GET /api/v1/jobs/{id}`, and the queue task that does the work —
//! reads the file's text from R2, asks the chain chunk by chunk (the built-in
//! analysis where no model answers), stores the findings and tells the room
//! (`job_progress`, then `job_done`). Transient failures are retried by the
//! queue; after `JOB_ATTEMPTS_MAX` tries, or at once for a file that cannot
//! be analysed, the job is failed with the reason.

use crate::access::{file_access, file_for};
use crate::ai::{account, ask_checked, chain, record_in_room, require_budget};
use crate::ctx::{arg, now_secs, read_json, Ctx};
use crate::tokens::authenticate;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::ai::analysis::{
    builtin, chunk_chars, chunk_prompt, chunks, combine_prompt, extract_text, merge_builtin,
    parse_findings, tokens_needed, FileAnalysis, Job, JobStatus, ANALYZE_BYTES_MAX,
    BATCH_FILES_MAX, JOB_ATTEMPTS_MAX,
};
use tessera_core::ai::providers::ProviderKind;
use tessera_core::ai::{answered_by, CallRecord, Task};
use tessera_core::files::{FileInfo, FileStatus};
use tessera_core::room::RoomCall;
use tessera_core::rooms::Role;
use tessera_core::ApiError;
use tessera_durable_objects::http::{json as respond, HttpResult};
use tessera_durable_objects::room_client;
use worker::{Env, Range, Request, Response};

#[derive(Deserialize)]
struct JobRow {
    id: String,
    room_id: String,
    file_id: String,
    kind: String,
    status: JobStatus,
    progress: u32,
    result: Option<String>,
    error: Option<String>,
    attempts: u32,
    created_by: String,
    created_at: u64,
    updated_at: u64,
}

impl JobRow {
    fn job(self) -> HttpResult<Job> {
        Ok(Job {
            result: self
                .result
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            id: self.id,
            room_id: self.room_id,
            file_id: self.file_id,
            kind: self.kind,
            status: self.status,
            progress: self.progress,
            error: self.error,
            attempts: self.attempts,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const JOB_COLUMNS: &str = "j.id, j.room_id, j.file_id, j.kind, j.status, j.progress, j.result, j.error, j.attempts, j.created_by, j.created_at, j.updated_at";

async fn load(env: &Env, id: &str) -> HttpResult<Option<Job>> {
    let row: Option<JobRow> = env
        .d1("DB")?
        .prepare(format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ?1"))
        .bind(&[arg(id)])?
        .first(None)
        .await?;
    row.map(JobRow::job).transpose()
}

async fn save(env: &Env, job: &Job) -> HttpResult<()> {
    let result = job.result.as_ref().map(Value::to_string);
    env.d1("DB")?
        .prepare(
            "UPDATE jobs SET status = ?2, progress = ?3, result = ?4, error = ?5, attempts = ?6,
               updated_at = ?7 WHERE id = ?1",
        )
        .bind(&[
            arg(&job.id),
            arg(job.status.as_str()),
            arg(job.progress),
            arg(result.as_ref()),
            arg(job.error.as_ref()),
            arg(job.attempts),
            arg(job.updated_at),
        ])?
        .run()
        .await?;
    Ok(())
}

/// Checks that `user` may have `file` analysed now: a member (viewers do not
/// spend the room's AI budget), a text-like file, budget left (the room's, and
/// the member's share of it).
async fn check(ctx: &Ctx, file: &FileInfo, role: Role, user_id: &str) -> HttpResult<()> {
    if role < Role::Member {
        return Err(ApiError::forbidden("viewers cannot start AI work").into());
    }
    let content_type = file.content_type.as_deref().unwrap_or(&file.declared_type);
    extract_text(&file.name, content_type, b"")?;
    require_budget(
        &ctx.env,
        &file.room_id,
        Some(user_id),
        tokens_needed(file.size),
    )
    .await
}

/// The file's running job, or a new one handed to the queue.
async fn start(ctx: &Ctx, file: &FileInfo, user_id: &str) -> HttpResult<(Job, bool)> {
    let db = ctx.db()?;
    let running: Option<JobRow> = db
        .prepare(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.file_id = ?1 AND j.status IN (?2, ?3)
             ORDER BY j.created_at DESC LIMIT 1"
        ))
        .bind(&[
            arg(&file.id),
            arg(JobStatus::Queued.as_str()),
            arg(JobStatus::Running.as_str()),
        ])?
        .first(None)
        .await?;
    if let Some(row) = running {
        return Ok((row.job()?, false));
    }
    let now = now_secs();
    let mut job = Job {
        id: crate::crypto::new_id()?,
        room_id: file.room_id.clone(),
        file_id: file.id.clone(),
        kind: "analyze".into(),
        status: JobStatus::Queued,
        progress: 0,
        result: None,
        error: None,
        attempts: 0,
        created_by: user_id.to_string(),
        created_at: now,
        updated_at: now,
    };
    db.prepare(
        "INSERT INTO jobs (id, room_id, file_id, kind, status, progress, attempts, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'analyze', ?6, 0, 0, ?4, ?5, ?5)",
    )
    .bind(&[
        arg(&job.id),
        arg(&job.room_id),
        arg(&job.file_id),
        arg(user_id),
        arg(now),
        arg(job.status.as_str()),
    ])?
    .run()
    .await?;
    let task = Task::Analyze {
        job_id: job.id.clone(),
    };
    if let Err(e) = ctx.env.queue("JOBS")?.send(task).await {
        job.status = JobStatus::Failed;
        job.error = Some("the job could not be queued; try again".into());
        save(&ctx.env, &job).await?;
        return Err(ApiError::Unavailable(format!("the job queue is unavailable: {e}")).into());
    }
    Ok((job, true))
}

/// `POST /api/v1/files/{id}/analyze`: 202 with a new job, 200 with the
/// file's job already under way.
pub async fn analyze(ctx: &Ctx, req: Request, file_id: &str) -> HttpResult<Response> {
    let (file, role, user_id) = file_access(ctx, &req, file_id).await?;
    check(ctx, &file, role, &user_id).await?;
    let (job, created) = start(ctx, &file, &user_id).await?;
    respond(if created { 202 } else { 200 }, &json!({ "job": job }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    file_ids: Vec<String>,
}

/// `POST /api/v1/ai/batch`: every file is checked before any job starts.
/// The caller is known before the body is read (no token: 401, not 400).
pub async fn batch(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let body: Batch = read_json(&mut req).await?;
    let mut ids = body.file_ids.clone();
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > BATCH_FILES_MAX || ids.len() != body.file_ids.len() {
        return Err(ApiError::invalid(format!(
            "file_ids must list 1 to {BATCH_FILES_MAX} different files"
        ))
        .into());
    }
    let mut files = Vec::new();
    for id in &body.file_ids {
        let (file, role) = file_for(ctx, id, &user_id).await?;
        check(ctx, &file, role, &user_id).await?;
        files.push(file);
    }
    let mut jobs = Vec::new();
    for file in &files {
        jobs.push(start(ctx, file, &user_id).await?.0);
    }
    respond(202, &json!({ "jobs": jobs }))
}

/// The analysis `GET /api/v1/files/{id}` shows (see `FileAnalysis`): the
/// file's newest finished job, else its newest, if any.
pub async fn file_analysis(ctx: &Ctx, file_id: &str) -> HttpResult<Option<FileAnalysis>> {
    let row: Option<JobRow> = ctx
        .db()?
        .prepare(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.file_id = ?1
             ORDER BY j.status = ?2 DESC, j.created_at DESC LIMIT 1"
        ))
        .bind(&[arg(file_id), arg(JobStatus::Done.as_str())])?
        .first(None)
        .await?;
    Ok(row
        .map(JobRow::job)
        .transpose()?
        .as_ref()
        .map(FileAnalysis::of))
}

/// `GET /api/v1/jobs/{id}`: members of the job's room.
pub async fn get(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let row: JobRow = ctx
        .db()?
        .prepare(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j
             JOIN memberships m ON m.room_id = j.room_id AND m.user_id = ?2 WHERE j.id = ?1"
        ))
        .bind(&[arg(id), arg(&user_id)])?
        .first(None)
        .await?
        .filter(|j: &JobRow| ctx.key_allows_room(&j.room_id))
        .ok_or(ApiError::NotFound("job"))?;
    respond(200, &json!({ "job": row.job()? }))
}

async fn progress(env: &Env, job: &mut Job, percent: u32) -> HttpResult<()> {
    job.progress = percent;
    job.updated_at = now_secs();
    save(env, job).await?;
    let data = json!({ "job_id": job.id, "file_id": job.file_id, "progress": percent });
    let progress = RoomCall::Ephemeral {
        event: "job_progress".into(),
        data,
    };
    let _: serde_json::Value = room_client::call_room(env, &job.room_id, &progress).await?;
    Ok(())
}

/// Ends a job (done or failed), stores it and tells the room, with the audit
/// of the calls it made.
async fn finish(
    env: &Env,
    mut job: Job,
    outcome: Result<Value, String>,
    calls: &[CallRecord],
) -> HttpResult<()> {
    match outcome {
        Ok(result) => {
            job.status = JobStatus::Done;
            job.progress = 100;
            job.result = Some(result);
            job.error = None;
        }
        Err(reason) => {
            job.status = JobStatus::Failed;
            job.error = Some(reason);
        }
    }
    job.updated_at = now_secs();
    save(env, &job).await?;
    let body = json!({
        "purpose": "analyze",
        "subject": { "job": job.id, "file": job.file_id },
        "calls": calls,
        "event": { "event": "job_done", "data": { "job": job } },
    });
    record_in_room(env, &job.room_id, &body, &format!("job-{}", job.id)).await
}

/// The queue task. `Err` asks the queue to try again later.
pub async fn process(env: &Env, job_id: &str) -> HttpResult<()> {
    let Some(mut job) = load(env, job_id).await? else {
        return Ok(());
    };
    if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
        return Ok(());
    }
    if job.attempts >= JOB_ATTEMPTS_MAX {
        let reason = job
            .error
            .clone()
            .unwrap_or_else(|| "the job kept failing".into());
        return finish(
            env,
            job,
            Err(format!("gave up after {JOB_ATTEMPTS_MAX} tries: {reason}")),
            &[],
        )
        .await;
    }
    job.attempts += 1;
    job.status = JobStatus::Running;
    progress(env, &mut job, 5).await?;
    match analyse(env, &mut job).await {
        Ok((result, calls)) => {
            account(env, &job.room_id, Some(&job.created_by), &calls).await?;
            finish(env, job, result, &calls).await
        }
        Err(e) => {
            job.status = JobStatus::Queued;
            job.error = Some(e.0.to_string());
            job.updated_at = now_secs();
            save(env, &job).await?;
            Err(e)
        }
    }
}

type Analysis = (Result<Value, String>, Vec<CallRecord>);

async fn analyse(env: &Env, job: &mut Job) -> HttpResult<Analysis> {
    #[derive(Deserialize)]
    struct File {
        name: String,
        content_type: Option<String>,
        declared_type: String,
        size: u64,
    }
    let file: Option<File> = env
        .d1("DB")?
        .prepare("SELECT name, content_type, declared_type, size FROM files WHERE id = ?1 AND room_id = ?2 AND status = ?3")
        .bind(&[arg(&job.file_id), arg(&job.room_id), arg(FileStatus::Ready.as_str())])?
        .first(None)
        .await?;
    let Some(file) = file else {
        return Ok((Err("the file no longer exists".into()), Vec::new()));
    };
    let head = match file.size {
        0 => Vec::new(),
        size => {
            env.bucket("FILES")?
                .get(tessera_core::files::r2_key(&job.room_id, &job.file_id))
                .range(Range::OffsetWithLength {
                    offset: 0,
                    length: size.min(ANALYZE_BYTES_MAX as u64),
                })
                .execute()
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(format!("file {} is missing from R2", job.file_id))
                })?
                .body()
                .ok_or_else(|| ApiError::Internal("R2 returned no body".into()))?
                .bytes()
                .await?
        }
    };
    let content_type = file.content_type.as_deref().unwrap_or(&file.declared_type);
    let text = match extract_text(&file.name, content_type, &head) {
        Ok(t) => t,
        Err(e) => return Ok((Err(e.to_string()), Vec::new())),
    };
    // The analysed text becomes searchable; a failure here does not fail the job.
    if let Err(e) = crate::search::file_text(env, &job.room_id, &job.file_id, &text).await {
        worker::console_error!("indexing the text of file {} failed: {}", job.file_id, e.0);
    }
    let needed = tokens_needed(text.chars().count() as u64);
    if let Err(e) = require_budget(env, &job.room_id, Some(&job.created_by), needed).await {
        return Ok((Err(e.0.to_string()), Vec::new()));
    }
    let chain = chain(env)?;
    let mut calls = Vec::new();
    let model = chain.iter().find(|p| p.kind != ProviderKind::Builtin);
    let (parts, cut) = chunks(
        &text,
        chunk_chars(model.map_or(32_000, |p| p.context_tokens)),
    );
    let mut found = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let prompt = chunk_prompt(&file.name, i, parts.len(), part);
        let f = match ask_checked(env, &chain, &prompt, parse_findings, &mut calls).await {
            Some(f) => f,
            None => {
                let f = builtin(&file.name, part);
                calls.push(CallRecord::builtin(part, &f.summary));
                f
            }
        };
        found.push(f);
        progress(env, job, 10 + (80 * (i as u32 + 1)) / parts.len() as u32).await?;
    }
    let merged = match found.len() {
        0 => builtin(&file.name, ""),
        1 => found.remove(0),
        _ => {
            let prompt = combine_prompt(&file.name, &found);
            match ask_checked(env, &chain, &prompt, parse_findings, &mut calls).await {
                Some(f) => f,
                None => merge_builtin(&file.name, &found),
            }
        }
    };
    let result = json!({
        "summary": merged.summary,
        "key_points": merged.key_points,
        "providers": answered_by(&calls),
        "chunks": parts.len(),
        "bytes_read": head.len(),
        "truncated": cut || file.size > ANALYZE_BYTES_MAX as u64,
    });
    Ok((Ok(result), calls))
}
