/** Members, roles, invites and settings of one room: thin calls the panels make. */
import { api, ok, untyped } from '../api/client';
import type { Invite, Member } from '../api/types';
import type { Role } from '../realtime/protocol';
import { forget, upsert, type Room } from './rooms';

export type { Invite, Member };

const RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };
export const ROLES: readonly Role[] = ['viewer', 'member', 'admin', 'owner'];

export function atLeast(role: Role | null | undefined, min: Role): boolean {
  return role ? RANK[role] >= RANK[min] : false;
}

/** Roles `actor` may give (core/src/rooms.rs: owners any, others only below their own). */
export function grantable(actor: Role | null | undefined): Role[] {
  if (!actor) return [];
  return ROLES.filter((r) => actor === 'owner' || RANK[r] < RANK[actor]);
}

/** Whether `actor` may change or remove `target` (admins manage those below them; owners everyone). */
export function manages(actor: Role | null | undefined, target: Role): boolean {
  return atLeast(actor, 'admin') && (actor === 'owner' || RANK[target] < RANK[actor!]);
}

export async function members(roomId: string): Promise<Member[]> {
  const r = await ok(api.GET('/api/v1/rooms/{room_id}/members', { params: { path: { room_id: roomId }, query: { limit: 200 } } }));
  return r.members;
}

export async function setRole(roomId: string, userId: string, role: Role): Promise<Member> {
  return (await ok(api.PATCH('/api/v1/rooms/{room_id}/members/{user_id}', {
    params: { path: { room_id: roomId, user_id: userId } },
    body: { role },
  })));
}

export async function removeMember(roomId: string, userId: string): Promise<void> {
  await ok(api.DELETE('/api/v1/rooms/{room_id}/members/{user_id}', { params: { path: { room_id: roomId, user_id: userId } } }));
}

export async function leave(roomId: string, me: string): Promise<void> {
  await removeMember(roomId, me);
  forget(roomId);
}

export async function invite(roomId: string, role: Exclude<Role, 'owner'>, maxUses: number, expiresIn: number): Promise<Invite> {
  return (await ok(api.POST('/api/v1/rooms/{room_id}/invites', {
    params: { path: { room_id: roomId } },
    body: { role, max_uses: maxUses, expires_in: expiresIn },
  })));
}

export async function revokeInvite(code: string): Promise<void> {
  await untyped('DELETE', `/api/v1/invites/${encodeURIComponent(code)}`);
}

export async function accept(code: string): Promise<Room> {
  const room = (await ok(api.POST('/api/v1/invites/{code}/accept', { params: { path: { code } } })));
  upsert(room);
  return room;
}

export async function update(roomId: string, name: string, topic: string): Promise<Room> {
  const room = (await ok(api.PATCH('/api/v1/rooms/{room_id}', { params: { path: { room_id: roomId } }, body: { name, topic } })));
  upsert(room);
  return room;
}

export async function remove(roomId: string): Promise<void> {
  await ok(api.DELETE('/api/v1/rooms/{room_id}', { params: { path: { room_id: roomId } } }));
  forget(roomId);
}

/** Whether the room is archived (read-only): the workflow state's settings. */
export async function archived(roomId: string): Promise<boolean> {
  const s = (await ok(api.GET('/api/v1/rooms/{room_id}/state', { params: { path: { room_id: roomId } } })));
  return s.settings.archived === true;
}

/** Archives the room (owners; the action is audited). */
export async function archive(roomId: string): Promise<void> {
  await ok(api.POST('/api/v1/rooms/{room_id}/actions/{action}', { params: { path: { room_id: roomId, action: 'archive_room' } }, body: {} }));
}
