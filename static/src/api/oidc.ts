/**
 * Sign-in with the configured OpenID Connect provider: Authorization Code
 * with PKCE (S256), state and nonce, done by the app itself; the provider's ID
 * token is then exchanged for a Tessera session (`POST /api/v1/auth/oidc`).
 * The provider's origin must be in the CSP's connect-src (the build adds
 * OIDC_ISSUER's; docs/app.md).
 */
import type { AuthConfig } from './types';
import { signInWithIdToken, type User } from './auth';
import { networkError, readError } from './errors';

const KEY = 'tessera.oidc';
export const CALLBACK = '/oidc/callback';

type Provider = NonNullable<AuthConfig['oidc']>;

export async function config(): Promise<AuthConfig> {
  let res: Response;
  try { res = await fetch('/api/v1/auth/config'); } catch (e) { throw networkError(e); }
  if (!res.ok) throw await readError(res);
  return res.json() as Promise<AuthConfig>;
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n = 32) => b64url(crypto.getRandomValues(new Uint8Array(n)));

/** Sends the browser to the provider; `back` is where to land after sign-in. */
export async function begin(p: Provider, back: string): Promise<void> {
  const verifier = random(48);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = random();
  const nonce = random();
  sessionStorage.setItem(KEY, JSON.stringify({ verifier, state, nonce, back, issuer: p.issuer, client_id: p.client_id }));
  const url = new URL(p.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: p.client_id,
    redirect_uri: location.origin + CALLBACK,
    scope: p.scopes.join(' ') || 'openid email profile',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

interface Pending { verifier: string; state: string; nonce: string; back: string; issuer: string; client_id: string }

/** On the callback page: checks state and nonce, redeems the code, signs in. Returns where to go. */
export async function complete(query: URLSearchParams): Promise<{ user: User; back: string }> {
  const raw = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  const p = raw ? (JSON.parse(raw) as Pending) : null;
  if (query.get('error')) throw new Error(`the provider refused the sign-in: ${query.get('error_description') ?? query.get('error')}`);
  if (!p || query.get('state') !== p.state) throw new Error('this sign-in link is stale or was not started here; start again');
  const code = query.get('code');
  if (!code) throw new Error('the provider sent no authorization code');
  const discovery = await fetch(`${p.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`).then((r) => r.json() as Promise<{ token_endpoint?: string }>);
  if (!discovery.token_endpoint) throw new Error('the provider does not name a token endpoint');
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: location.origin + CALLBACK,
      client_id: p.client_id,
      code_verifier: p.verifier,
    }),
  });
  const tokens = (await res.json()) as { id_token?: string; error?: string };
  if (!res.ok || !tokens.id_token) throw new Error(`the provider did not issue an ID token${tokens.error ? `: ${tokens.error}` : ''}`);
  const claims = JSON.parse(atob(tokens.id_token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { nonce?: string };
  if (claims.nonce !== p.nonce) throw new Error('the ID token does not belong to this sign-in (nonce)');
  return { user: await signInWithIdToken(tokens.id_token), back: p.back || '/' };
}
