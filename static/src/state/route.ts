/** The URL as app state: `/`, `/rooms/:id`, `/rooms/:id/docs/:doc`, `/invite/:code`, `/oidc/callback`. */
import { computed, signal } from '@preact/signals-core';

export type Route =
  | { name: 'home' }
  | { name: 'room'; id: string }
  | { name: 'doc'; id: string; doc: string }
  | { name: 'invite'; code: string }
  | { name: 'oidc' }
  | { name: 'missing' };

export const path = signal(location.pathname);

export function parse(p: string): Route {
  if (p === '/' || p === '') return { name: 'home' };
  let m = /^\/rooms\/([\w-]{1,64})\/?$/.exec(p);
  if (m) return { name: 'room', id: m[1]! };
  m = /^\/rooms\/([\w-]{1,64})\/docs\/([A-Za-z0-9._-]{1,128})\/?$/.exec(p);
  if (m) return { name: 'doc', id: m[1]!, doc: m[2]! };
  m = /^\/invite\/([\w-]{1,128})\/?$/.exec(p);
  if (m) return { name: 'invite', code: m[1]! };
  if (p === '/oidc/callback') return { name: 'oidc' };
  return { name: 'missing' };
}

export const route = computed(() => parse(path.value));

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  path.value = location.pathname;
}

window.addEventListener('popstate', () => { path.value = location.pathname; });

/** onClick for same-origin links: navigates in the app unless a modifier asks for a new tab. */
export function follow(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null);
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target === '_blank') return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
