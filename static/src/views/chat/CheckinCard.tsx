/**
 * Under the AI's daily check-in summary in the chat: a digest line — how many
 * proposals, how many wait for an owner — and the way to the full digest
 * (the room's AI tab), where each proposal links to its approval.
 */
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { CheckinView } from '../../api/types';
import type { RoomSession } from '../../realtime/room';
import { checkinOf } from '../../state/ai';
import { follow } from '../../state/route';
import { Icon } from '../ui/Icon';
import { Sparkles } from '../icons';

export function CheckinCard({ s, messageId, createdAt }: { s: RoomSession; messageId: number; createdAt: number }) {
  const view = useSignal<CheckinView | null>(null);
  const roomId = s.roomId;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let tries = 0;
    const read = (fresh: boolean) => checkinOf(roomId, messageId, createdAt, fresh).then((v) => {
      view.value = v;
      // A summary that just arrived is posted before the check-in is stored and its proposals run.
      if (!v?.finished && Date.now() - createdAt < 120_000 && tries++ < 8) timer = setTimeout(() => void read(true), 1_500);
    }, () => undefined);
    void read(false);
    // Owners decide the proposals later.
    const off = s.on((e) => { if (e.event === 'approval_resolved') void read(true); });
    return () => { off(); clearTimeout(timer); };
  }, [s, messageId]);
  const v = view.value;
  if (!v) return null;
  const waiting = v.proposals.filter((p) => p.approval?.status === 'pending').length;
  const n = v.proposals.length;
  return (
    <p class="checkin-card small">
      <Icon node={Sparkles} size={14} /> Daily check-in · {n} {n === 1 ? 'proposal' : 'proposals'}{waiting ? `, ${waiting} waiting for an owner` : ''} ·{' '}
      <a href={`/rooms/${roomId}/ai`} onClick={follow}>Open the digest</a>
    </p>
  );
}
