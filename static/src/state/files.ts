/**
 * File content for <img> and <a download>: short-lived signed links
 * (`POST /files/{id}/link`), cached until a minute before they expire, so a
 * timeline of images costs one request per image at most every ten minutes.
 * And "Analyze": the AI job whose progress arrives on the room socket, and
 * the analysis a file already has (`GET /files/{id}`), read once per file.
 */
import { api, ok } from '../api/client';
import type { FileLink } from '../api/types';
import type { RoomSession } from '../realtime/room';

const links = new Map<string, Promise<FileLink>>();

/** A signed link to a file's content; `download` makes it an attachment (`&download=1`). */
export async function link(fileId: string, download = false): Promise<string> {
  let p = links.get(fileId);
  if (!p) {
    p = ok(api.POST('/api/v1/files/{file_id}/link', { params: { path: { file_id: fileId } } }));
    links.set(fileId, p);
    p.then(
      (l) => setTimeout(() => links.delete(fileId), Math.max(0, l.expires_at * 1000 - Date.now() - 60_000)),
      () => links.delete(fileId),
    );
  }
  const { url } = await p;
  return download ? `${url}&download=1` : url;
}

/** Whether the AI can read it (the server analyses text-like files). */
export function analyzable(contentType: string | null, name: string): boolean {
  return /^text\/|json|xml|csv|markdown/.test(contentType ?? '') || /\.(md|txt|csv|json|log|ya?ml|xml|html?|rs|ts|js|py)$/i.test(name);
}

export async function analyze(session: RoomSession, fileId: string): Promise<void> {
  const { job } = (await ok(api.POST('/api/v1/files/{file_id}/analyze', { params: { path: { file_id: fileId } } }))) as {
    job: { id: string; status: string; progress: number; result: { summary?: string; key_points?: string[] } | null; error: string | null };
  };
  session.setJob({ job_id: job.id, file_id: fileId, progress: job.progress, status: job.status, result: job.result, error: job.error });
}

const known = new Set<string>();

/** Shows a file's stored analysis (its newest finished job, else its newest) once per file and session. */
export function loadAnalysis(session: RoomSession, fileId: string): void {
  if (known.has(fileId)) return;
  known.add(fileId);
  ok(api.GET('/api/v1/files/{file_id}', { params: { path: { file_id: fileId } } })).then((f) => {
    const a = f.analysis;
    if (!a || session.jobs.peek().has(fileId)) return;
    session.setJob({ job_id: a.job_id, file_id: fileId, progress: a.progress, status: a.status, error: a.error,
      result: a.summary === null ? null : { summary: a.summary, key_points: a.key_points } });
  }, () => known.delete(fileId));
}
