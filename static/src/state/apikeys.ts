/**
 * The person's API keys (docs/notifications.md): listed, created with a scope
 * (the key comes back once, in the answer), revoked. The secret is never kept
 * here: the view that asked for it shows it and lets it go.
 */
import { signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import type { ApiKey, ApiKeyScope, CreatedApiKey } from '../api/types';

export type { ApiKey, ApiKeyScope };
export type Kind = ApiKeyScope['resources'][number];
/** Every kind of route a key may be given, as the server names them. */
export const KINDS: readonly Kind[] = ['chat', 'docs', 'files', 'workflows', 'rooms'];

export const keys = signal<readonly ApiKey[]>([]);

export async function loadKeys(): Promise<void> {
  keys.value = (await ok(api.GET('/api/v1/me/keys'))).keys;
}

export async function createKey(name: string, scope: ApiKeyScope): Promise<CreatedApiKey> {
  const made = await ok(api.POST('/api/v1/me/keys', { body: { name, scope } }));
  await loadKeys();
  return made;
}

export async function revokeKey(id: string): Promise<void> {
  await ok(api.DELETE('/api/v1/me/keys/{key_id}', { params: { path: { key_id: id } } }));
  keys.value = keys.value.filter((k) => k.id !== id);
}
