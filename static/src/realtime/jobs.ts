/**
 * What a room session knows of a file's AI job, and the rule that merges
 * news of it. News arrives on two paths that do not keep order with each
 * other — the room socket (`job_progress`, `job_done`) and HTTP answers
 * (`POST …/analyze`, `GET /files/{id}`) — so a late answer about the same job
 * must not move it back: a finished job stays finished and progress never
 * shrinks. Another job of the file (analysed again) replaces it.
 */
export interface JobSeen { job_id?: string; file_id: string; progress: number; status?: string; result?: { summary?: string; key_points?: string[] } | null; error?: string | null }

const finished = (j: JobSeen) => j.status === 'done' || j.status === 'failed';

export function advance(prev: JobSeen | undefined, next: JobSeen): JobSeen {
  if (!prev || (next.job_id !== undefined && prev.job_id !== undefined && next.job_id !== prev.job_id)) return next;
  if (finished(prev) && !finished(next)) return prev;
  return { ...prev, ...next, progress: finished(next) ? next.progress : Math.max(prev.progress, next.progress) };
}
