/**
 * The manage chunk: the members panel (roles, promote/demote/remove within
 * one's rights), invites by link (role, uses, expiry; revoke), room settings
 * (rename, topic, archive, delete, leave) and the account dialog (display
 * name, API keys, sign out, sign out everywhere).
 */
import './initial';
import { useSignal, type Signal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { signOut, updated, user } from '../../api/auth';
import { api, ok } from '../../api/client';
import { describe } from '../../api/errors';
import type { Role } from '../../realtime/protocol';
import type { RoomSession } from '../../realtime/room';
import { archive, atLeast, grantable, invite, leave, manages, members as loadMembers, remove, removeMember, revokeInvite, setRole, update, type Invite, type Member } from '../../state/room-admin';
import { rooms, type Room } from '../../state/rooms';
import { createKey, keys, KINDS, loadKeys, revokeKey, type ApiKey } from '../../state/apikeys';
import { navigate } from '../../state/route';
import { say } from '../../state/toasts';
import { Avatar } from '../rooms/AccountButton';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { Panel as SidePanel } from '../ui/Panel';
import { Copy, LogOut, X } from '../icons';
import type { Panel } from '../chat/RoomView';

interface PanelProps {
  which: Exclude<Panel, 'files' | 'docs' | 'notify' | null>;
  s: RoomSession;
  room: Room | null;
  members: Signal<Member[]>;
  role: Role | null;
  onClose: () => void;
}

const TITLES = { members: 'Members', invite: 'Invite people', settings: 'Room settings' } as const;

export function RoomPanel(p: PanelProps) {
  return (
    <SidePanel title={TITLES[p.which]} onClose={p.onClose}>
      {p.which === 'members' ? <Members {...p} /> : p.which === 'invite' ? <Invites {...p} /> : <Settings {...p} />}
    </SidePanel>
  );
}

function Members({ s, members, role, room }: PanelProps) {
  const me = user.value!.id;
  const error = useSignal<string | null>(null);
  const reload = () => loadMembers(s.roomId).then((m) => { members.value = m; });
  const act = async (fn: () => Promise<unknown>) => {
    error.value = null;
    try { await fn(); await reload(); } catch (e) { error.value = describe(e); }
  };
  const fixed = room?.kind === 'direct';
  return (
    <>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      <ul class="members">
        {members.value.map((m) => {
          const status = m.user_id === me ? 'online' : s.presence.value.get(m.user_id)?.status ?? 'offline';
          const canChange = !fixed && m.user_id !== me && manages(role, m.role as Role);
          return (
            <li key={m.user_id} class="member">
              <Avatar id={m.user_id} name={m.display_name} />
              <span class="member-name">
                {m.display_name}{m.user_id === me ? ' (you)' : ''}
                <span class={`presence ${status}`}>{status}</span>
              </span>
              {canChange ? (
                <>
                  <select aria-label={`Role of ${m.display_name}`} value={m.role} onChange={(e) => void act(() => setRole(s.roomId, m.user_id, e.currentTarget.value as Role))}>
                    {[...new Set([m.role as Role, ...grantable(role)])].map((r) => <option key={r} value={r}>{r}</option>)}
                  </select>
                  <button type="button" class="icon-btn" aria-label={`Remove ${m.display_name}`} onClick={() => void act(() => removeMember(s.roomId, m.user_id))}><Icon node={X} size={16} /></button>
                </>
              ) : <span class="role muted small">{m.role}</span>}
            </li>
          );
        })}
      </ul>
    </>
  );
}

const EXPIRY = [
  { label: '1 hour', secs: 3600 },
  { label: '1 day', secs: 86_400 },
  { label: '7 days', secs: 7 * 86_400 },
  { label: '30 days', secs: 30 * 86_400 },
];

function Invites({ s, role }: PanelProps) {
  const made = useSignal<Invite[]>([]);
  const error = useSignal<string | null>(null);
  const roles = grantable(role).filter((r) => r !== 'owner');
  const create = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    error.value = null;
    try {
      const inv = await invite(s.roomId, String(f.get('role')) as Exclude<Role, 'owner'>, Number(f.get('uses')), Number(f.get('expiry')));
      made.value = [inv, ...made.value];
    } catch (err) {
      error.value = describe(err);
    }
  };
  const url = (code: string) => `${location.origin}/invite/${code}`;
  return (
    <>
      <form class="form" onSubmit={create}>
        <label>Role<select name="role">{roles.map((r) => <option key={r} value={r} selected={r === 'member'}>{r}</option>)}</select></label>
        <label>Uses<input name="uses" type="number" min={1} max={1000} value={1} required /></label>
        <label>Expires after<select name="expiry">{EXPIRY.map((x) => <option key={x.secs} value={x.secs} selected={x.secs === 7 * 86_400}>{x.label}</option>)}</select></label>
        {error.value && <p class="error small" role="alert">{error.value}</p>}
        <button type="submit" class="btn primary">Create invite link</button>
      </form>
      <ul class="invites">
        {made.value.map((i) => (
          <li key={i.code} class="invite">
            <label>Invite link ({i.role}, {i.max_uses} {i.max_uses === 1 ? 'use' : 'uses'})
              <input readOnly value={url(i.code!)} onFocus={(e) => e.currentTarget.select()} />
            </label>
            <div class="row">
              <button type="button" class="btn small" onClick={() => navigator.clipboard.writeText(url(i.code!)).then(() => say('Invite link copied.'), () => say('Copy the link from the box.'))}>
                <Icon node={Copy} size={14} /> Copy link
              </button>
              <button type="button" class="btn small" onClick={() => revokeInvite(i.code!).then(() => { made.value = made.value.filter((x) => x.code !== i.code); say('Invite revoked.'); }, (e) => { error.value = describe(e); })}>
                Revoke
              </button>
            </div>
          </li>
        ))}
      </ul>
    </>
  );
}

function Settings({ s, room, role }: PanelProps) {
  const me = user.value!.id;
  const error = useSignal<string | null>(null);
  const admin = atLeast(role, 'admin') && !s.archived.value;
  const save = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    try {
      await update(s.roomId, String(f.get('name')).trim(), String(f.get('topic')).trim());
      say('Room saved.');
    } catch (err) {
      error.value = describe(err);
    }
  };
  const run = async (fn: () => Promise<unknown>, then?: () => void) => {
    error.value = null;
    try { await fn(); then?.(); } catch (err) { error.value = describe(err); }
  };
  return (
    <div class="settings">
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {admin && room && (
        <form class="form" onSubmit={save}>
          <label>Name<input name="name" defaultValue={room.name} required maxLength={100} /></label>
          <label>Topic<textarea name="topic" defaultValue={room.topic} maxLength={500} rows={3} /></label>
          <button type="submit" class="btn primary">Save</button>
        </form>
      )}
      {s.archived.value && <p class="muted">This room is archived: it stays readable, and nothing in it can change.</p>}
      {role === 'owner' && !s.archived.value && room?.kind !== 'direct' && (
        <ConfirmButton label="Archive room" title={`Archive ${room?.name ?? 'this room'}?`}
          text="Everyone can still read it, but nobody can write in it or change it again."
          onConfirm={() => run(() => archive(s.roomId), () => { s.archived.value = true; say('Room archived.'); })} />
      )}
      {room?.kind !== 'direct' && (
        <button type="button" class="btn" onClick={() => void run(() => leave(s.roomId, me), () => navigate('/'))}>Leave room</button>
      )}
      {role === 'owner' && (
        <ConfirmButton danger label="Delete room" title={`Delete ${room?.name ?? 'this room'}?`}
          text="Its messages, documents and files are deleted for everyone. This cannot be undone."
          onConfirm={() => run(() => remove(s.roomId), () => navigate('/'))} />
      )}
    </div>
  );
}

/** A button for something that cannot be undone: it asks first, in a dialog that says what happens. */
function ConfirmButton({ label, title, text, danger, onConfirm }: { label: string; title: string; text: string; danger?: boolean; onConfirm: () => Promise<void> }) {
  const asking = useSignal(false);
  return (
    <>
      <button type="button" class={danger ? 'btn danger' : 'btn'} onClick={() => { asking.value = true; }}>{label}</button>
      {asking.value && (
        <Dialog title={title} onClose={() => { asking.value = false; }}>
          <p>{text}</p>
          <div class="row end">
            <button type="button" class="btn" onClick={() => { asking.value = false; }}>Cancel</button>
            <button type="button" class={danger ? 'btn danger' : 'btn primary'} onClick={() => { asking.value = false; void onConfirm(); }}>{label}</button>
          </div>
        </Dialog>
      )}
    </>
  );
}

export function Account({ onClose }: { onClose: () => void }) {
  const u = user.value!;
  const error = useSignal<string | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget as HTMLFormElement).get('name')).trim();
    try {
      updated(await ok(api.PATCH('/api/v1/me', { body: { display_name: name } })));
      say('Name saved.');
    } catch (err) {
      error.value = describe(err);
    }
  };
  const out = async (everywhere: boolean) => {
    onClose();
    const confirmed = await signOut(everywhere);
    if (!confirmed) say('Signed out on this device; the server could not be reached to end the session.', 'error');
    navigate('/');
  };
  return (
    <Dialog title="Your account" onClose={onClose}>
      <form class="form" onSubmit={save}>
        <label>Display name<input name="name" defaultValue={u.display_name} required maxLength={64} /></label>
        {u.email && <p class="muted small">Signed in as {u.email}</p>}
        {error.value && <p class="error small" role="alert">{error.value}</p>}
        <button type="submit" class="btn primary">Save name</button>
      </form>
      <ApiKeys />
      <div class="row">
        <button type="button" class="btn" onClick={() => void out(false)}><Icon node={LogOut} /> Sign out</button>
        <button type="button" class="btn" onClick={() => void out(true)}>Sign out everywhere</button>
      </div>
    </Dialog>
  );
}

/** What a key reaches, in words. */
function reach(k: ApiKey): string {
  const names = new Map(rooms.value.map((r) => [r.id, r.name]));
  const where = k.scope.rooms ? k.scope.rooms.map((id) => names.get(id) ?? 'a room').join(', ') : 'all your rooms';
  return `${k.scope.access === 'read' ? 'Read' : 'Read and write'} ${k.scope.resources.join(', ')} in ${where}`;
}

/** The person's API keys: listed, created with a scope (the key shown once, to copy), revoked after asking. */
function ApiKeys() {
  const error = useSignal<string | null>(null);
  const shown = useSignal<{ name: string; key: string } | null>(null);
  useEffect(() => { loadKeys().catch((e) => { error.value = describe(e); }); }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const picked = f.getAll('room').map(String);
    error.value = null;
    try {
      const made = await createKey(String(f.get('name')).trim(), {
        access: f.get('access') === 'write' ? 'write' : 'read',
        resources: KINDS.filter((k) => f.getAll('kind').includes(k)),
        rooms: picked.length ? picked : null,
      });
      shown.value = { name: made.name, key: made.key };
      form.reset();
    } catch (err) {
      error.value = describe(err);
    }
  };
  return (
    <section class="api-keys" aria-labelledby="api-keys-title">
      <h3 id="api-keys-title">API keys</h3>
      <p class="muted small">For scripts and integrations: a key acts as you, within its scope.</p>
      <ul class="keys">
        {keys.value.map((k) => (
          <li key={k.id} class="key">
            <div><strong>{k.name}</strong><div class="muted small">{reach(k)} · {k.last_used_at ? `last used ${new Date(k.last_used_at * 1000).toLocaleString()}` : 'never used'}</div></div>
            <ConfirmButton danger label="Revoke" title={`Revoke ${k.name}?`}
              text="Scripts using this key stop working at once."
              onConfirm={() => revokeKey(k.id).then(() => say('API key revoked.'), (err) => { error.value = describe(err); })} />
          </li>
        ))}
      </ul>
      {shown.value && (
        <div class="invite">
          <label>New key {shown.value.name} (shown once: copy it now)
            <input readOnly value={shown.value.key} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <div class="row">
            <button type="button" class="btn small" onClick={() => navigator.clipboard.writeText(shown.value!.key).then(() => say('API key copied.'), () => say('Copy the key from the box.'))}>
              <Icon node={Copy} size={14} /> Copy key
            </button>
            <button type="button" class="btn small" onClick={() => { shown.value = null; }}>Done</button>
          </div>
        </div>
      )}
      <form class="form" onSubmit={create}>
        <label>Key name<input name="name" required maxLength={100} /></label>
        <label>Access<select name="access"><option value="read">Read only</option><option value="write">Read and write</option></select></label>
        <fieldset><legend>Kinds</legend>
          {KINDS.map((k) => <label key={k} class="check"><input type="checkbox" name="kind" value={k} defaultChecked={k === 'chat'} /> {k}</label>)}
        </fieldset>
        <fieldset><legend>Rooms (none ticked: all your rooms)</legend>
          {rooms.value.map((r) => <label key={r.id} class="check"><input type="checkbox" name="room" value={r.id} /> {r.name}</label>)}
        </fieldset>
        {error.value && <p class="error small" role="alert">{error.value}</p>}
        <button type="submit" class="btn primary">Create API key</button>
      </form>
    </section>
  );
}
