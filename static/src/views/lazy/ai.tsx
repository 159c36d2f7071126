/**
 * The ai chunk: the day's check-in as a digest card (the summary the AI
 * posted, each proposal with what became of it and, for a request, a link to
 * its approval), "Check in now" for owners, and the room's AI usage against
 * its daily budget (owners).
 */
import './initial';
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { describe } from '../../api/errors';
import type { CheckinView, UsageReport } from '../../api/types';
import { atLeast } from '../../state/room-admin';
import { checkin, runCheckin, today, usage } from '../../state/ai';
import { follow } from '../../state/route';
import type { ScreenProps } from '../RoomScreens';
import { Icon } from '../ui/Icon';
import { Sparkles } from '../icons';

const STATUS: Record<string, string> = { pending: 'waits for an owner', approved: 'approved', rejected: 'rejected', expired: 'expired' };

export function AiScreen({ s, role }: ScreenProps) {
  const day = useSignal(today());
  const view = useSignal<CheckinView | null | undefined>(undefined);
  const use = useSignal<UsageReport | null>(null);
  const error = useSignal<string | null>(null);
  const busy = useSignal(false);
  const owner = atLeast(role, 'owner');
  const reload = async () => {
    try {
      view.value = await checkin(s.roomId, day.value);
      if (owner) use.value = await usage(s.roomId, day.value);
      error.value = null;
    } catch (e) {
      error.value = describe(e);
    }
  };
  useEffect(() => { void reload(); }, [s.roomId, day.value, owner]);
  // A decision on one of its requests, or a new check-in, shows here as it happens.
  useEffect(() => s.on((e) => { if (e.event === 'approval_resolved' || e.event === 'approval_requested') void reload(); }), [s]);
  const now = async () => {
    busy.value = true;
    try { await runCheckin(s.roomId); day.value = today(); await reload(); } catch (e) { error.value = describe(e); } finally { busy.value = false; }
  };
  const v = view.value;
  return (
    <section class="screen" aria-labelledby="screen-title">
      <header class="screen-head">
        <h2 id="screen-title">AI teammate</h2>
        <label class="small">Day<input type="date" value={day.value} max={today()} onChange={(e) => { if (e.currentTarget.value) day.value = e.currentTarget.value; }} /></label>
        {owner && day.value === today() && <button type="button" class="btn primary" disabled={busy.value} onClick={() => void now()}><Icon node={Sparkles} size={16} /> Check in now</button>}
      </header>
      {error.value && <p class="error" role="alert">{error.value}</p>}
      {v === undefined && !error.value && <p class="muted" role="status">Loading…</p>}
      {v === null && <p class="muted">No check-in for {day.value}. The AI checks in daily when the room was active.</p>}
      {v && (
        <article class="digest" aria-labelledby="digest-title">
          <header>
            <h3 id="digest-title"><Icon node={Sparkles} size={16} /> Daily check-in, {v.day}</h3>
            <p class="muted small">By the AI ({v.provider}){v.finished ? '' : ' · still running'}</p>
          </header>
          {v.summary === null ? <p class="muted">The summary message was deleted.</p> : <p class="digest-summary">{v.summary}</p>}
          {v.message_id !== null && v.summary !== null && <p class="small"><a href={`/rooms/${s.roomId}#m${v.message_id}`} onClick={follow}>See it in the chat</a></p>}
          <h4>Proposals</h4>
          {v.proposals.length === 0 ? <p class="muted small">None today.</p> : (
            <ul class="proposals">
              {v.proposals.map((p, i) => (
                <li key={i} class="proposal">
                  <p><strong>{p.name}</strong> <span class="muted small">{p.reason}</span></p>
                  <p class="small">
                    {p.approval ? <>Approval request: {STATUS[p.approval.status] ?? p.approval.status}{p.approval.resolved_by_name ? ` (${p.approval.resolved_by_name}${p.approval.comment ? `: “${p.approval.comment}”` : ''})` : ''} · <a href={`/approvals?request=${encodeURIComponent(`${s.roomId}/${p.approval.id}`)}`} onClick={follow}>Open in approvals</a></>
                      : p.status === null ? 'Not run yet.' : p.status < 300 ? 'Done.' : `Refused (${p.status}).`}
                  </p>
                </li>
              ))}
            </ul>
          )}
        </article>
      )}
      {owner && use.value && <Usage u={use.value} />}
    </section>
  );
}

function Usage({ u }: { u: UsageReport }) {
  const used = Math.min(u.budget_tokens, u.tokens);
  return (
    <section class="usage" aria-labelledby="usage-title">
      <h3 id="usage-title">AI usage on {u.day}</h3>
      <p class="small">{u.tokens.toLocaleString('en-US')} of {u.budget_tokens.toLocaleString('en-US')} tokens ({u.remaining_tokens.toLocaleString('en-US')} left) · {u.calls} {u.calls === 1 ? 'call' : 'calls'} · ${(u.cost_micros / 1e6).toFixed(4)}</p>
      <progress max={Math.max(1, u.budget_tokens)} value={used} aria-label="Share of the daily AI budget used" />
      {u.providers.length > 0 && (
        <table class="audit">
          <thead><tr><th scope="col">Provider</th><th scope="col">Calls</th><th scope="col">Tokens in</th><th scope="col">Tokens out</th><th scope="col">Cost (USD)</th></tr></thead>
          <tbody>{u.providers.map((p) => <tr key={p.provider}><td>{p.provider}</td><td>{p.calls}</td><td>{p.tokens_in}</td><td>{p.tokens_out}</td><td>{(p.cost_micros / 1e6).toFixed(4)}</td></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}
