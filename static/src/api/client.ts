/**
 * The typed API client (openapi-fetch over the generated `paths`): every call
 * carries a fresh bearer token, and every failure becomes one `ApiError`.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema.gen';
import { rejected, token } from './auth';
import { takeRead } from './early';
import { fromResponse, networkError, readError } from './errors';

const bearer: Middleware = {
  async onRequest({ request }) {
    if (!request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${await token()}`);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401) rejected(request.headers.get('authorization')?.slice(7) ?? '');
    return response;
  },
};

/** A first read the inline script began is answered from there (api/early.ts). */
const send = async (req: Request): Promise<Response> => {
  try {
    return (await takeRead(req)) ?? (await fetch(req));
  } catch (e) {
    throw networkError(e);
  }
};

export const api = createClient<paths>({ baseUrl: location.origin, fetch: send });
api.use(bearer);

interface Result<T> { data?: T; error?: unknown; response: Response }

/** The data of a successful call, or its `ApiError`. */
export async function ok<T>(call: Promise<Result<T>>): Promise<NonNullable<T>> {
  const r = await call;
  if (!r.response.ok) throw fromResponse(r.response, r.error);
  return r.data as NonNullable<T>;
}

/**
 * A call to a route that core/openapi.json does not describe yet (see
 * api/pending.ts); the same token and error handling as `api`.
 */
export async function untyped<T>(method: string, path: string, body?: unknown): Promise<T> {
  const t = await token();
  const headers: Record<string, string> = { authorization: `Bearer ${t}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await send(new Request(path, { method, headers, body: body === undefined ? null : JSON.stringify(body) }));
  if (res.status === 401) rejected(t);
  if (!res.ok) throw await readError(res);
  return (res.status === 204 ? null : await res.json()) as T;
}
