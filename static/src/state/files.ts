/**
 * File content for <img> and <a download>: short-lived signed links
 * (`POST /files/{id}/link`), cached until a minute before they expire, so a
 * timeline of images costs one request per image at most every ten minutes.
 * And "Analyze": the AI job whose progress arrives on the room socket.
 */
import { api, ok, untyped } from '../api/client';
import type { FileLink } from '../api/pending';
import type { RoomSession } from '../realtime/room';

const links = new Map<string, Promise<FileLink>>();

export function link(fileId: string, download = false): Promise<FileLink> {
  const key = `${fileId}${download ? ':d' : ''}`;
  const cached = links.get(key);
  if (cached) return cached;
  const p = untyped<FileLink>('POST', `/api/v1/files/${encodeURIComponent(fileId)}/link${download ? '?download=1' : ''}`).then((l) => {
    setTimeout(() => links.delete(key), Math.max(0, l.expires_at * 1000 - Date.now() - 60_000));
    return l;
  });
  p.catch(() => links.delete(key));
  links.set(key, p);
  return p;
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
