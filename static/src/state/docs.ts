/**
 * A room's collaborative documents over REST: the list, copies, deletion,
 * named versions and restore. The device's copies are realtime/doc-cache.ts;
 * the live document (Yjs, its socket and cache) is realtime/doc-session.ts,
 * loaded with the editor.
 */
import { api, ok } from '../api/client';
import { token, user } from '../api/auth';
import { readError, networkError } from '../api/errors';
import type { components } from '../api/schema.gen';
import { forgetLocal } from '../realtime/doc-cache';

type S = components['schemas'];
export type DocInfo = S['DocInfo'];
export type DocList = S['DocList'];
export type DocVersion = S['DocVersion'];

/** Document names the server accepts: 1–128 of A-Z a-z 0-9 . _ - */
export const DOC_NAME = /^[A-Za-z0-9._-]{1,128}$/;

const path = (room: string, doc: string) => ({ path: { room_id: room, doc } });

/** The room's documents, and the names deleted (newest first), which stay deleted until created again. */
export async function list(room: string): Promise<DocList> {
  return ok(api.GET('/api/v1/rooms/{room_id}/docs', { params: { path: { room_id: room } } }));
}

/** Creates an empty document; a deleted name is used again only this way (409 when it exists). */
export async function create(room: string, name: string): Promise<void> {
  await ok(api.POST('/api/v1/rooms/{room_id}/docs', { params: { path: { room_id: room } }, body: { name } }));
}

export async function remove(room: string, doc: string): Promise<void> {
  await ok(api.DELETE('/api/v1/rooms/{room_id}/docs/{doc}', { params: path(room, doc) }));
  const me = user.value;
  if (me) await forgetLocal(me.id, room, doc);
}

/** Raw bytes of a route openapi-fetch would parse (the document as a Yjs update, its text). */
async function raw(method: 'GET' | 'POST', url: string, body?: Uint8Array<ArrayBuffer>): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${await token()}` };
  if (body) headers['content-type'] = 'application/octet-stream';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body ?? null });
  } catch (e) {
    throw networkError(e);
  }
  if (!res.ok) throw await readError(res);
  return res;
}

const docUrl = (room: string, doc: string) => `/api/v1/rooms/${encodeURIComponent(room)}/docs/${encodeURIComponent(doc)}`;

/** A new document `name` holding a Yjs update (all of another document's roots). */
export async function createWith(room: string, name: string, update: Uint8Array<ArrayBuffer>): Promise<void> {
  await create(room, name);
  await raw('POST', `${docUrl(room, name)}/updates`, update);
}

/** A copy of every root of `doc` under a new name (how a document is renamed: copy, then delete). */
export async function copy(room: string, doc: string, to: string): Promise<void> {
  await createWith(room, to, new Uint8Array(await (await raw('GET', `${docUrl(room, doc)}?format=update`)).arrayBuffer()));
}

export async function versions(room: string, doc: string): Promise<DocVersion[]> {
  const r = await ok(api.GET('/api/v1/rooms/{room_id}/docs/{doc}/versions', { params: path(room, doc) }));
  return [...r.versions].sort((a, b) => b.v - a.v);
}

export async function saveVersion(room: string, doc: string, label: string): Promise<DocVersion> {
  return ok(api.POST('/api/v1/rooms/{room_id}/docs/{doc}/versions', { params: path(room, doc), body: { label } }));
}

/** The editor's text in version `v` (the server reads the editor's root, `content`, by default). */
export async function versionText(room: string, doc: string, v: number): Promise<string> {
  return (await raw('GET', `${docUrl(room, doc)}/versions/${v}?format=text`)).text();
}

/**
 * Restores version `v` as a forward change that every connected editor
 * receives like an edit. With no body the server restores every root, reading
 * each one's type from the stored content.
 */
export async function restore(room: string, doc: string, v: number): Promise<void> {
  await ok(api.POST('/api/v1/rooms/{room_id}/docs/{doc}/versions/{version}/restore', {
    params: { path: { room_id: room, doc, version: v } },
  }));
}
