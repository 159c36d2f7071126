/** A room's rules (admins): list, save, delete, and the dry run of a draft against a sample event. */
import { api, ok } from '../api/client';
import type { DryRun, Rule } from '../api/types';

export type Trigger = Rule['trigger'];
export const TRIGGERS: readonly Trigger[] = ['message_posted', 'activity_changed', 'file_added', 'member_joined'];

export interface Draft {
  name: string;
  trigger: Trigger;
  condition?: unknown;
  effect: { action: string; args?: Record<string, unknown> };
  enabled: boolean;
}

export async function list(roomId: string): Promise<Rule[]> {
  return (await ok(api.GET('/api/v1/rooms/{room_id}/rules', { params: { path: { room_id: roomId } } }))).rules;
}

/** Creates the rule, or with `id` replaces it; answers the rule as stored. */
export async function save(roomId: string, draft: Draft, id?: string): Promise<Rule> {
  const r = id
    ? await ok(api.PATCH('/api/v1/rooms/{room_id}/rules/{rule_id}', { params: { path: { room_id: roomId, rule_id: id } }, body: draft }))
    : await ok(api.POST('/api/v1/rooms/{room_id}/rules', { params: { path: { room_id: roomId } }, body: draft }));
  return r.rule;
}

export async function remove(roomId: string, id: string): Promise<void> {
  await ok(api.DELETE('/api/v1/rooms/{room_id}/rules/{rule_id}', { params: { path: { room_id: roomId, rule_id: id } } }));
}

/** What the draft would do for `data` as the trigger's event (nothing is stored or run). */
export async function dryRun(roomId: string, draft: Draft, data: Record<string, unknown>): Promise<DryRun> {
  return ok(api.POST('/api/v1/rooms/{room_id}/rules/dry-run', {
    params: { path: { room_id: roomId } },
    body: { ...draft, event: { type: draft.trigger, data } },
  }));
}
