/** The URL as app state: `/`, `/rooms/:id[/activities|ai|rules|audit]` (`?message=<id>` opens the chat at that message), `/rooms/:id/docs/:doc`, `/approvals[?request=<room>/<approval>]` (that request selected), `/invite/:code`, `/oidc/callback`. */
import { computed, signal } from '@preact/signals-core';

/** A room's screens beside the chat (views/RoomScreens.tsx). */
export type RoomTab = 'activities' | 'ai' | 'rules' | 'audit';

export type Route =
  | { name: 'home' }
  | { name: 'room'; id: string; tab?: RoomTab; message?: number }
  | { name: 'doc'; id: string; doc: string }
  | { name: 'approvals'; request?: string }
  | { name: 'invite'; code: string }
  | { name: 'oidc' }
  | { name: 'missing' };

const here = () => location.pathname + location.search;

export const path = signal(here());

export function parse(url: string): Route {
  const [p = '', search = ''] = url.split('?', 2);
  if (p === '/' || p === '') return { name: 'home' };
  let m = /^\/rooms\/([\w-]{1,64})\/?$/.exec(p);
  if (m) {
    const message = Number(new URLSearchParams(search).get('message') ?? NaN);
    return Number.isSafeInteger(message) && message > 0 ? { name: 'room', id: m[1]!, message } : { name: 'room', id: m[1]! };
  }
  m = /^\/rooms\/([\w-]{1,64})\/(activities|ai|rules|audit)\/?$/.exec(p);
  if (m) return { name: 'room', id: m[1]!, tab: m[2] as RoomTab };
  m = /^\/rooms\/([\w-]{1,64})\/docs\/([A-Za-z0-9._-]{1,128})\/?$/.exec(p);
  if (m) return { name: 'doc', id: m[1]!, doc: m[2]! };
  if (p === '/approvals') {
    const request = new URLSearchParams(search).get('request');
    return request ? { name: 'approvals', request } : { name: 'approvals' };
  }
  m = /^\/invite\/([\w-]{1,128})\/?$/.exec(p);
  if (m) return { name: 'invite', code: m[1]! };
  if (p === '/oidc/callback') return { name: 'oidc' };
  return { name: 'missing' };
}

export const route = computed(() => parse(path.value));

export function navigate(to: string, replace = false): void {
  if (to === here()) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  path.value = here();
}

window.addEventListener('popstate', () => { path.value = here(); });

/** onClick for same-origin links: navigates in the app unless a modifier asks for a new tab. */
export function follow(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null);
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target === '_blank') return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
