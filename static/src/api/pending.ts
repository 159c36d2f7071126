/**
 * Types of API pieces that other work adds in parallel and that
 * core/openapi.json does not describe yet. Each goes away (for the generated
 * type) when its schema reaches core/openapi.json.
 */

/** `GET /api/v1/auth/config` (the cookie session and OIDC sign-in). */
export interface AuthConfig {
  password: boolean;
  oidc: null | { issuer: string; authorization_endpoint: string; client_id: string; scopes: string[] };
}
