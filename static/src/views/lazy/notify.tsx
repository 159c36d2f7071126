/**
 * The notifications chunk: the inbox dialog (items across rooms, mark read,
 * older pages) with the person's notification settings (default level,
 * quiet hours, email, push on this device), and a room's notifications panel
 * (this room's level; for admins its outgoing webhooks — events, the secret
 * shown once, rotation, test event, delivery log — and incoming webhooks —
 * the URL shown once, revoke).
 */
import './initial';
import { useEffect } from 'preact/hooks';
import { useSignal, type Signal } from '@preact/signals';
import { describe } from '../../api/errors';
import { when } from '../../lib/format';
import type { Role } from '../../realtime/protocol';
import { items, loadInbox, markRead, nextBefore, unreadItems, type InboxItem } from '../../state/inbox';
import {
  createIncoming, createWebhook, deleteWebhook, deliveries, disablePush, enablePush, EVENTS, hookUrl, incomingHooks, loadPrefs, prefs, push, pushStatus,
  revokeIncoming, roomLevel, savePrefs, testWebhook, toClock, toMinutes, updateWebhook, webhooks,
  type Delivery, type IncomingHook, type Level, type PrefsPatch, type Webhook, type WebhookEvent,
} from '../../state/notify';
import { atLeast } from '../../state/room-admin';
import { byId, type Room } from '../../state/rooms';
import { navigate } from '../../state/route';
import { say } from '../../state/toasts';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { Panel } from '../ui/Panel';
import { Copy } from '../icons';

const KIND_TEXT: Record<InboxItem['kind'], string> = {
  mention: 'mentioned you',
  reply: 'replied to you',
  approval_requested: 'asks for an approval',
  approval_decided: 'decided on your request',
  job_finished: 'A job you started finished',
  digest: 'Daily digest',
  webhook_disabled: 'A webhook was disabled',
};

const LEVELS: ReadonlyArray<{ id: Level; label: string; hint: string }> = [
  { id: 'all', label: 'Everything', hint: 'Mentions, replies and work addressed to you' },
  { id: 'mentions', label: 'Mentions only', hint: 'Only when someone names you' },
  { id: 'muted', label: 'Muted', hint: 'Nothing from conversations; approvals and outcomes still arrive' },
];

/** Runs an action, showing its failure in `error` (cleared first). */
function useAct(): [Signal<string | null>, (fn: () => Promise<unknown>) => Promise<void>] {
  const error = useSignal<string | null>(null);
  return [error, async (fn) => {
    error.value = null;
    try { await fn(); } catch (e) { error.value = describe(e); }
  }];
}

export function InboxDialog({ onClose }: { onClose: () => void }) {
  const tab = useSignal<'inbox' | 'settings'>('inbox');
  return (
    <Dialog title="Inbox" onClose={onClose} wide>
      <div class="tabs" role="tablist" aria-label="Inbox">
        <button type="button" role="tab" class="tab" id="tab-inbox" aria-controls="tabpanel-inbox" aria-selected={tab.value === 'inbox'} onClick={() => { tab.value = 'inbox'; }}>Notifications</button>
        <button type="button" role="tab" class="tab" id="tab-settings" aria-controls="tabpanel-settings" aria-selected={tab.value === 'settings'} onClick={() => { tab.value = 'settings'; }}>Settings</button>
      </div>
      {tab.value === 'inbox'
        ? <div role="tabpanel" id="tabpanel-inbox" aria-labelledby="tab-inbox"><Items onClose={onClose} /></div>
        : <div role="tabpanel" id="tabpanel-settings" aria-labelledby="tab-settings"><Settings /></div>}
    </Dialog>
  );
}

function Items({ onClose }: { onClose: () => void }) {
  const [error, act] = useAct();
  useEffect(() => { void act(() => loadInbox()); }, []);
  const list = items.value;
  const open = (i: InboxItem) => {
    if (!i.read) void act(() => markRead([i.id]));
    onClose();
    navigate(i.link);
  };
  return (
    <div class="inbox">
      <div class="row between">
        <p class="muted small">{unreadItems.value ? `${unreadItems.value} unread` : 'All caught up.'}</p>
        <button type="button" class="btn small" disabled={!unreadItems.value} onClick={() => void act(() => markRead('all'))}>Mark all read</button>
      </div>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {list === null && <p class="muted" role="status">Loading…</p>}
      {list?.length === 0 && <p class="muted">Nothing yet. Mentions, replies and approvals for you land here.</p>}
      <ul class="inbox-items" aria-label="Notifications">
        {list?.map((i) => {
          const room = byId.value.get(i.room_id)?.name ?? 'a room';
          const who = i.actor_name ?? (i.actor === 'ai' ? 'AI teammate' : null);
          const head = who && !KIND_TEXT[i.kind].startsWith('A ') && i.kind !== 'digest' ? `${who} ${KIND_TEXT[i.kind]}` : KIND_TEXT[i.kind];
          return (
            <li key={i.id}>
              <a href={i.link} class={`inbox-item${i.read ? '' : ' unread'}`} onClick={(e) => { e.preventDefault(); open(i); }}>
                <span class="inbox-head"><strong>{head}</strong> <span class="muted small">in {room} · {when(i.at)}</span>{!i.read && <span class="sr-only"> (unread)</span>}</span>
                {i.text && <span class="inbox-text">{i.text}</span>}
              </a>
            </li>
          );
        })}
      </ul>
      {nextBefore.value !== null && <button type="button" class="btn small" onClick={() => void act(() => loadInbox(true))}>Older</button>}
    </div>
  );
}

function Settings() {
  const [error, act] = useAct();
  useEffect(() => { void act(() => loadPrefs()); void act(() => pushStatus()); }, []);
  const p = prefs.value;
  if (!p) return error.value ? <p class="error small" role="alert">{error.value}</p> : <p class="muted" role="status">Loading…</p>;
  const save = (patch: PrefsPatch) => act(() => savePrefs(patch).then(() => say('Saved.')));
  const offset = -new Date().getTimezoneOffset();
  const quiet = p.quiet_hours;
  return (
    <div class="form notify-settings">
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      <fieldset class="kinds">
        <legend>Notify me about</legend>
        {LEVELS.map((l) => (
          <label key={l.id} class="kind">
            <input type="radio" name="level" checked={p.level === l.id} onChange={() => void save({ level: l.id })} />
            <span><strong>{l.label}</strong><span class="muted small">{l.hint}</span></span>
          </label>
        ))}
      </fieldset>
      <p class="hint">Each room can differ: its Notifications panel (the bell in the room's header).</p>
      <label class="check">
        <input type="checkbox" checked={quiet !== null} onChange={(e) => void save({ quiet_hours: e.currentTarget.checked ? { start_minute: 22 * 60, end_minute: 7 * 60, utc_offset_minutes: offset } : null })} />
        Quiet hours (no pushes; emails wait until they end)
      </label>
      {quiet && (
        <div class="row">
          <label>From <input type="time" value={toClock(quiet.start_minute)} onChange={(e) => void save({ quiet_hours: { ...quiet, start_minute: toMinutes(e.currentTarget.value), utc_offset_minutes: offset } })} /></label>
          <label>to <input type="time" value={toClock(quiet.end_minute)} onChange={(e) => void save({ quiet_hours: { ...quiet, end_minute: toMinutes(e.currentTarget.value), utc_offset_minutes: offset } })} /></label>
        </div>
      )}
      <label class="check">
        <input type="checkbox" checked={p.email} onChange={(e) => void save({ email: e.currentTarget.checked })} />
        Email me a mention or an approval I have not seen within 10 minutes
      </label>
      <PushToggle act={act} />
    </div>
  );
}

function PushToggle({ act }: { act: (fn: () => Promise<unknown>) => Promise<void> }) {
  const st = push.value;
  const busy = useSignal(false);
  const run = (fn: () => Promise<unknown>) => { busy.value = true; void act(fn).finally(() => { busy.value = false; }); };
  return (
    <div class="push">
      <strong>Notifications on this device</strong>
      {st === null && <p class="muted small" role="status">Checking…</p>}
      {st === 'unsupported' && <p class="muted small">This browser cannot receive push notifications.</p>}
      {st === 'unconfigured' && <p class="muted small">This server has no push key configured (VAPID), so push notifications are off.</p>}
      {st === 'denied' && <p class="muted small">Notifications are blocked for this site in the browser's settings.</p>}
      {st === 'off' && <button type="button" class="btn small" disabled={busy.value} onClick={() => run(enablePush)}>Turn on push notifications</button>}
      {st === 'on' && (
        <p class="small">On: when Tessera is closed, mentions and approvals arrive as notifications.{' '}
          <button type="button" class="btn small" disabled={busy.value} onClick={() => run(disablePush)}>Turn off</button>
        </p>
      )}
    </div>
  );
}

// ---- A room's notifications panel

interface PanelProps { roomId: string; room: Room | null; role: Role | null; onClose: () => void }

export function RoomNotifyPanel({ roomId, room, role, onClose }: PanelProps) {
  const [error, act] = useAct();
  useEffect(() => { if (!prefs.value) void act(() => loadPrefs()); }, []);
  const p = prefs.value;
  const own = p ? roomLevel(p, roomId) : null;
  const setLevel = (v: string) => void act(() => savePrefs({ rooms: { [roomId]: v ? (v as Level) : null } }).then(() => say('Saved.')));
  const admin = atLeast(role, 'admin') && room?.kind !== 'direct';
  return (
    <Panel title="Notifications" onClose={onClose}>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      <label class="field">
        Notify me in this room
        <select value={own ?? ''} disabled={!p} onChange={(e) => setLevel(e.currentTarget.value)}>
          <option value="">Default ({LEVELS.find((l) => l.id === p?.level)?.label ?? '…'})</option>
          {LEVELS.map((l) => <option key={l.id} value={l.id}>{l.label}</option>)}
        </select>
      </label>
      {admin && <Outgoing roomId={roomId} />}
      {admin && <Incoming roomId={roomId} />}
    </Panel>
  );
}

/** A secret shown once, with a copy button. */
function Once({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div class="once" role="group" aria-label={label}>
      <label class="field">{label} — shown only now<input readOnly value={value} onFocus={(e) => e.currentTarget.select()} /></label>
      <div class="row">
        <button type="button" class="btn small" onClick={() => navigator.clipboard.writeText(value).then(() => say('Copied.'), () => say('Copy it from the box.'))}><Icon node={Copy} size={14} /> Copy</button>
        <button type="button" class="btn small" onClick={onDone}>Done</button>
      </div>
    </div>
  );
}

function Outgoing({ roomId }: { roomId: string }) {
  const [error, act] = useAct();
  const list = useSignal<Webhook[] | null>(null);
  const secret = useSignal<{ hook: string; value: string } | null>(null);
  const url = useSignal('');
  const description = useSignal('');
  const events = useSignal<WebhookEvent[]>(['message.posted']);
  const reload = () => webhooks(roomId).then((l) => { list.value = l; });
  useEffect(() => { void act(reload); }, [roomId]);
  const create = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      const h = await createWebhook(roomId, url.value.trim(), events.value, description.value.trim());
      secret.value = h.secret ? { hook: h.id, value: h.secret } : null;
      url.value = '';
      description.value = '';
      await reload();
    });
  };
  const toggleEvent = (id: WebhookEvent, on: boolean) => { events.value = on ? [...events.value, id] : events.value.filter((x) => x !== id); };
  return (
    <section class="hooks" aria-labelledby="out-title">
      <h3 id="out-title">Outgoing webhooks</h3>
      <p class="muted small">Tessera POSTs the chosen events to a URL, signed as Standard Webhooks says.</p>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {secret.value && <Once label="Signing secret" value={secret.value.value} onDone={() => { secret.value = null; }} />}
      <ul class="hook-list">
        {list.value?.map((h) => <HookItem key={h.id} roomId={roomId} h={h} act={act} reload={reload} onSecret={(v) => { secret.value = { hook: h.id, value: v }; }} />)}
      </ul>
      {list.value?.length === 0 && <p class="muted small">No outgoing webhooks yet.</p>}
      <form class="form" onSubmit={create} aria-label="New outgoing webhook">
        <label>URL<input type="url" required value={url.value} placeholder="https://example.com/hooks/tessera" onInput={(e) => { url.value = e.currentTarget.value; }} /></label>
        <label>Description<input value={description.value} maxLength={200} onInput={(e) => { description.value = e.currentTarget.value; }} /></label>
        <fieldset class="events">
          <legend>Events</legend>
          {EVENTS.map((ev) => (
            <label key={ev.id} class="check"><input type="checkbox" checked={events.value.includes(ev.id)} onChange={(e) => toggleEvent(ev.id, e.currentTarget.checked)} />{ev.label}</label>
          ))}
        </fieldset>
        <button type="submit" class="btn primary" disabled={!events.value.length}>Add webhook</button>
      </form>
    </section>
  );
}

function HookItem({ roomId, h, act, reload, onSecret }: { roomId: string; h: Webhook; act: (fn: () => Promise<unknown>) => Promise<void>; reload: () => Promise<void>; onSecret: (v: string) => void }) {
  const log = useSignal<Delivery[] | null>(null);
  const loadLog = () => deliveries(roomId, h.id).then((d) => { log.value = d; });
  const name = h.description || h.url;
  return (
    <li class="hook">
      <p class="hook-url"><strong>{name}</strong>{h.description && <span class="muted small">{h.url}</span>}</p>
      <p class="muted small">{h.events.map((e) => EVENTS.find((x) => x.id === e)?.label ?? e).join(', ')}</p>
      <p class={`small ${h.enabled ? 'ok' : 'error'}`}>{h.enabled ? (h.failures_in_row ? `Enabled · ${h.failures_in_row} failures in a row` : 'Enabled') : `Disabled${h.disabled_reason ? `: ${h.disabled_reason}` : ''}`}</p>
      <div class="row" role="group" aria-label={`Actions for ${name}`}>
        <button type="button" class="btn small" onClick={() => void act(() => testWebhook(roomId, h.id).then(() => { say('Test event queued.'); return log.value ? loadLog() : undefined; }))}>Send test event</button>
        <button type="button" class="btn small" aria-expanded={log.value !== null} onClick={() => { if (log.value) log.value = null; else void act(loadLog); }}>Delivery log</button>
        <button type="button" class="btn small" onClick={() => void act(() => updateWebhook(roomId, h.id, { rotate_secret: true }).then((n) => { if (n.secret) onSecret(n.secret); }))}>Rotate secret</button>
        <button type="button" class="btn small" onClick={() => void act(() => updateWebhook(roomId, h.id, { enabled: !h.enabled }).then(reload))}>{h.enabled ? 'Disable' : 'Enable'}</button>
        <button type="button" class="btn small danger" onClick={() => void act(() => deleteWebhook(roomId, h.id).then(reload))}>Delete</button>
      </div>
      {log.value && (
        log.value.length === 0 ? <p class="muted small">No deliveries yet.</p> : (
          <table class="deliveries">
            <caption class="sr-only">Deliveries to {name}</caption>
            <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Try</th><th scope="col">Answer</th></tr></thead>
            <tbody>
              {log.value.map((d) => (
                <tr key={d.id}>
                  <td>{when(d.at * 1000)}</td>
                  <td>{d.event}</td>
                  <td>{d.attempt}</td>
                  <td class={d.ok ? 'ok' : 'error'} title={d.response ?? d.error ?? ''}>{d.status ?? d.error ?? '—'} · {d.duration_ms} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
    </li>
  );
}

function Incoming({ roomId }: { roomId: string }) {
  const [error, act] = useAct();
  const list = useSignal<IncomingHook[] | null>(null);
  const made = useSignal<string | null>(null);
  const name = useSignal('');
  const reload = () => incomingHooks(roomId).then((l) => { list.value = l; });
  useEffect(() => { void act(reload); }, [roomId]);
  const create = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      const h = await createIncoming(roomId, name.value.trim());
      made.value = h.path ? hookUrl(h.path) : null;
      name.value = '';
      await reload();
    });
  };
  return (
    <section class="hooks" aria-labelledby="in-title">
      <h3 id="in-title">Incoming webhooks</h3>
      <p class="muted small">A secret URL that posts into this room as a bot (Slack-compatible <code>{'{"text": …}'}</code>).</p>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {made.value && <Once label="Webhook URL" value={made.value} onDone={() => { made.value = null; }} />}
      <ul class="hook-list">
        {list.value?.map((h) => (
          <li key={h.id} class="hook incoming">
            <span><strong>{h.name}</strong> <span class="muted small">{h.last_used_at ? `last used ${when(h.last_used_at * 1000)}` : 'never used'}</span></span>
            <button type="button" class="btn small danger" aria-label={`Revoke ${h.name}`} onClick={() => void act(() => revokeIncoming(roomId, h.id).then(reload))}>Revoke</button>
          </li>
        ))}
      </ul>
      {list.value?.length === 0 && <p class="muted small">No incoming webhooks yet.</p>}
      <form class="form" onSubmit={create} aria-label="New incoming webhook">
        <label>Bot name<input required maxLength={64} value={name.value} onInput={(e) => { name.value = e.currentTarget.value; }} /></label>
        <button type="submit" class="btn primary">Create URL</button>
      </form>
    </section>
  );
}
