/**
 * A room's screens beside the chat — Activities, the AI teammate, and for
 * admins Rules and Audit — as tabs under the room's header, and the
 * approvals inbox across rooms. Each screen is a lazy chunk: `work`
 * (activities board, approvals inbox), `ai` (check-in digest, usage) and
 * `admin` (rules editor, audit log); the chunk loads when its screen opens.
 */
import { useEffect } from 'preact/hooks';
import type { Approval } from '../api/types';
import type { RoomSession } from '../realtime/room';
import type { Role } from '../realtime/protocol';
import { atLeast } from '../state/room-admin';
import { follow, type RoomTab } from '../state/route';
import { say } from '../state/toasts';
import { admin, ai, work } from './lazy';

const TABS: readonly { tab: RoomTab | null; label: string; min: Role }[] = [
  { tab: null, label: 'Chat', min: 'viewer' },
  { tab: 'activities', label: 'Activities', min: 'viewer' },
  { tab: 'ai', label: 'AI teammate', min: 'viewer' },
  { tab: 'rules', label: 'Rules', min: 'admin' },
  { tab: 'audit', label: 'Audit', min: 'admin' },
];

export function RoomTabs({ roomId, tab, role }: { roomId: string; tab: RoomTab | null; role: Role | null }) {
  return (
    <nav class="room-tabs" aria-label="Room views">
      {TABS.filter((t) => atLeast(role, t.min)).map((t) => (
        <a key={t.label} href={`/rooms/${roomId}${t.tab ? `/${t.tab}` : ''}`} onClick={follow} aria-current={t.tab === tab ? 'page' : undefined}>{t.label}</a>
      ))}
    </nav>
  );
}

export interface ScreenProps { s: RoomSession; role: Role | null; me: string }

/** The open tab's screen, once its chunk is here. */
export function RoomScreen({ tab, ...p }: ScreenProps & { tab: RoomTab }) {
  const which = tab === 'activities' ? work : tab === 'ai' ? ai : admin;
  useEffect(() => { void which.load().catch(() => undefined); }, [which]);
  const W = work.value.value;
  const A = ai.value.value;
  const M = admin.value.value;
  if (tab === 'activities' && W) return <W.ActivitiesBoard {...p} />;
  if (tab === 'ai' && A) return <A.AiScreen {...p} />;
  if (tab === 'rules' && M) return <M.RulesScreen {...p} />;
  if (tab === 'audit' && M) return <M.AuditScreen {...p} />;
  return <p class="screen muted" role="status">Loading…</p>;
}

/** The approvals inbox (route /approvals; `request`: `<room>/<approval>` to select). */
export function ApprovalsPage({ request }: { request?: string | undefined }) {
  useEffect(() => { void work.load().catch(() => undefined); }, []);
  const W = work.value.value;
  return W ? <W.ApprovalsInbox request={request} /> : <p class="screen muted" role="status">Loading…</p>;
}

/** The requester hears the outcome of their request live, wherever they are in the room. */
export function useOutcomes(s: RoomSession | null, me: string): void {
  useEffect(() => s?.on((e) => {
    if (e.event !== 'approval_resolved') return;
    const a = (e.data as { approval?: Approval }).approval;
    if (!a || a.requested_by !== me || a.requested_kind === 'ai') return;
    const verdict = a.status === 'approved' ? 'approved' : a.status === 'rejected' ? 'rejected' : a.status;
    say(`Your request ${a.action} was ${verdict}${a.resolved_by_name ? ` by ${a.resolved_by_name}` : ''}${a.comment ? `: “${a.comment}”` : '.'}`);
  }), [s, me]);
}
