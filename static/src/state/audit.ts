/** A room's audit log (admins): filtered pages, and the same filters as an NDJSON download. */
import { api, ok } from '../api/client';
import { fromResponse } from '../api/errors';
import type { AuditEntry } from '../api/types';
import { auditQuery, type AuditFilters } from '../lib/workflow';

export async function page(roomId: string, f: AuditFilters, cursor?: string): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
  return ok(api.GET('/api/v1/rooms/{room_id}/audit', {
    params: { path: { room_id: roomId }, query: auditQuery(f, cursor ? { cursor } : {}) as never },
  }));
}

/** The filtered log as NDJSON (one entry a line, up to 5,000), saved as a file. */
export async function exportNdjson(roomId: string, f: AuditFilters): Promise<void> {
  const r = await api.GET('/api/v1/rooms/{room_id}/audit/export', {
    params: { path: { room_id: roomId }, query: auditQuery(f) as never },
    parseAs: 'blob',
  });
  if (!r.response.ok) throw fromResponse(r.response, r.error);
  const url = URL.createObjectURL(r.data as Blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `audit-${roomId}-${new Date().toISOString().slice(0, 10)}.ndjson`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
