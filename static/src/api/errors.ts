/**
 * One error type for everything the API or the network refuses: the status,
 * the API's machine-readable code, its message, and the request id a person
 * can quote when they report it.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null = null,
    readonly retryAfter: number | null = null,
    /** The error object's other fields (`field`, `current_version`, `last_change`, …). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** invalid_input: the part of the request it concerns (`condition.if[0]`, `comment`). */
  get field(): string | null {
    return typeof this.details.field === 'string' ? this.details.field : null;
  }
}

/** The network itself failed (offline, DNS, connection reset). */
export const OFFLINE = 'offline';

function isBody(v: unknown): v is { error: { code: string; message: string } & Record<string, unknown> } {
  const e = (v as { error?: unknown } | null)?.error as { code?: unknown; message?: unknown } | undefined;
  return typeof e?.code === 'string' && typeof e.message === 'string';
}

/** Builds the error of a failed response from its JSON body (`{"error":{code,message}}`) or its status. */
export function fromResponse(res: Response, body: unknown): ApiError {
  const retry = Number(res.headers.get('retry-after'));
  const requestId = res.headers.get('x-request-id');
  if (isBody(body)) {
    return new ApiError(res.status, body.error.code, body.error.message, requestId, Number.isFinite(retry) && retry > 0 ? retry : null, body.error);
  }
  return new ApiError(res.status, `http_${res.status}`, res.statusText || `the server answered ${res.status}`, requestId);
}

export async function readError(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return fromResponse(res, body);
}

export function networkError(cause: unknown): ApiError {
  const e = new ApiError(0, OFFLINE, 'Tessera cannot reach the server. Check your connection; it will retry.');
  e.cause = cause;
  return e;
}

/** What a person reads: the message in words, with the request id to quote. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    const text = WORDS[e.code] ?? sentence(e.message);
    return e.requestId ? `${text} (request ${e.requestId})` : text;
  }
  if (e instanceof Error) return sentence(e.message);
  return 'Something went wrong.';
}

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return 'Something went wrong.';
  return t[0]!.toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

const WORDS: Record<string, string> = {
  invalid_credentials: 'That email and password do not match an account.',
  email_taken: 'An account with this email already exists. Sign in instead.',
  rate_limited: 'Too many requests right now. Wait a moment and try again.',
  invite_expired: 'This invite has expired. Ask for a new link.',
  invite_used_up: 'This invite has been used up. Ask for a new link.',
  quota_exceeded: 'This room has no space left for that file. Delete files first.',
  file_too_large: 'That file is larger than the server accepts.',
  upload_expired: 'This upload expired on the server; start it again.',
  room_archived: 'This room is archived: it can be read but not changed.',
  document_deleted: 'This document was deleted.',
  document_exists: 'A document of that name exists.',
  too_many_versions: 'This document has as many versions as it can keep. Ask an admin to delete old ones.',
};
