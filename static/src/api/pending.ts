/**
 * Types of API pieces that other work adds in parallel and that
 * core/openapi.json does not describe yet: read markers, the user look-up,
 * signed file links, the auth configuration. Each goes away (for the
 * generated type) when its schema reaches core/openapi.json.
 */

/** `GET /rooms` items and `GET /rooms/{id}` gain the caller's read marker. */
export interface ReadMarkers {
  read_seq: number;
  head_seq: number;
  unread: number | null;
  mentions: number | null;
}

/** `GET /api/v1/auth/config`. */
export interface AuthConfig {
  password: boolean;
  oidc: null | { issuer: string; authorization_endpoint: string; client_id: string; scopes: string[] };
}

/** `GET /api/v1/users?q=`: people sharing a room with the caller, or an exact email. */
export interface UserHit {
  id: string;
  display_name: string;
}

/** `POST /api/v1/files/{id}/link`: a short-lived signed URL. */
export interface FileLink {
  url: string;
  expires_at: number;
}

/** The socket's `hello` gains the caller's marker and everyone's. */
export interface HelloReads {
  read_seq?: number;
  reads?: Array<{ user_id: string; seq: number }>;
}
