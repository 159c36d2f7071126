/**
 * The admin chunk: the room's rules (list, an editor for trigger, condition
 * and effect with the server's errors shown at the field they name, a dry run
 * against a sample event) and the audit log (filters by actor, kind, action
 * and time; the same filters as an NDJSON download).
 */
import './initial';
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, describe } from '../../api/errors';
import type { AuditEntry, DryRun, Rule } from '../../api/types';
import { when } from '../../lib/format';
import { parseJson, pretty, ruleField, type AuditFilters, type RuleField } from '../../lib/workflow';
import { exportNdjson, page } from '../../state/audit';
import { members } from '../../state/room-admin';
import { TRIGGERS, dryRun, list, remove, save, type Draft, type Trigger } from '../../state/rules';
import { say } from '../../state/toasts';
import type { ScreenProps } from '../RoomScreens';
import { Icon } from '../ui/Icon';
import { Download } from '../icons';

/** A sample event's data for each trigger, as docs/workflows.md describes them. */
const SAMPLES: Record<Trigger, Record<string, unknown>> = {
  message_posted: { message: { id: 1, author: 'u1', body: 'urgent: the build is red' } },
  activity_changed: { activity: { id: 'a1', title: 'Posters', status: 'done' }, changes: [] },
  file_added: { file: { id: 'f1', name: 'plan.md', size: 1200 }, uploader: 'u1' },
  member_joined: { user_id: 'u2', role: 'member' },
};

interface Form { name: string; trigger: Trigger; condition: string; action: string; args: string; enabled: boolean; event: string }

const blank = (): Form => ({ name: '', trigger: 'message_posted', condition: '', action: 'propose_activity', args: '{\n  "title": "Follow up: {{event.data.message.body}}"\n}', enabled: true, event: pretty(SAMPLES.message_posted) });

const fromRule = (r: Rule): Form => ({
  name: r.name, trigger: r.trigger, condition: r.condition === true || r.condition == null ? '' : pretty(r.condition),
  action: r.effect.action, args: pretty(r.effect.args), enabled: r.enabled, event: pretty(SAMPLES[r.trigger]),
});

export function RulesScreen({ s }: ScreenProps) {
  const rules = useSignal<Rule[]>([]);
  const editing = useSignal<{ id?: string; form: Form } | null>(null);
  const error = useSignal<string | null>(null);
  const reload = () => list(s.roomId).then((r) => { rules.value = r; error.value = null; }, (e) => { error.value = describe(e); });
  useEffect(() => { void reload(); }, [s.roomId]);
  const del = async (r: Rule) => {
    try { await remove(s.roomId, r.id); say(`Rule “${r.name}” deleted.`); await reload(); } catch (e) { error.value = describe(e); }
  };
  return (
    <section class="screen" aria-labelledby="screen-title">
      <header class="screen-head">
        <h2 id="screen-title">Rules</h2>
        <button type="button" class="btn primary" onClick={() => { editing.value = { form: blank() }; }}>New rule</button>
      </header>
      {error.value && <p class="error" role="alert">{error.value}</p>}
      {editing.value && (
        <RuleEditor key={editing.value.id ?? 'new'} roomId={s.roomId} id={editing.value.id} initial={editing.value.form}
          onSaved={() => { editing.value = null; void reload(); }} onClose={() => { editing.value = null; }} />
      )}
      {rules.value.length === 0 ? <p class="muted">No rules yet. A rule runs an action when something happens in the room.</p> : (
        <ul class="rules">
          {rules.value.map((r) => (
            <li key={r.id} class="rule">
              <div class="grow">
                <strong>{r.name || r.id}</strong> {!r.enabled && <span class="muted small">(off)</span>}
                <p class="muted small">When {r.trigger.replace('_', ' ')} → {r.effect.action}</p>
              </div>
              <button type="button" class="btn small" aria-label={`Edit rule ${r.name || r.id}`} onClick={() => { editing.value = { id: r.id, form: fromRule(r) }; }}>Edit</button>
              <button type="button" class="btn small danger" aria-label={`Delete rule ${r.name || r.id}`} onClick={() => void del(r)}>Delete</button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function RuleEditor({ roomId, id, initial, onSaved, onClose }: { roomId: string; id?: string; initial: Form; onSaved: () => void; onClose: () => void }) {
  const f = useSignal<Form>(initial);
  const errors = useSignal<Partial<Record<RuleField | 'form', string>>>({});
  const result = useSignal<DryRun | null>(null);
  const busy = useSignal(false);
  const set = (k: keyof Form, v: string | boolean) => {
    const next = { ...f.value, [k]: v };
    if (k === 'trigger') next.event = pretty(SAMPLES[v as Trigger]);
    f.value = next;
  };
  /** The draft from the form; a field that is not JSON is an error at that field. */
  const draft = (): Draft | null => {
    const bad: Partial<Record<RuleField, string>> = {};
    const json = (k: 'condition' | 'args' | 'event', label: string) => {
      try { return parseJson(f.value[k], label); } catch (e) { bad[k] = (e as Error).message; return undefined; }
    };
    const condition = json('condition', 'The condition');
    const args = json('args', 'The arguments');
    errors.value = bad;
    if (Object.keys(bad).length) return null;
    return { name: f.value.name, trigger: f.value.trigger, ...(condition === undefined ? {} : { condition }), effect: { action: f.value.action, args: (args ?? {}) as Record<string, unknown> }, enabled: f.value.enabled };
  };
  /** A server refusal goes to the field it names, or above the form. */
  const refused = (e: unknown) => {
    const field = e instanceof ApiError ? ruleField(e.field) : null;
    const text = e instanceof ApiError ? `${describe(e)}${e.field ? ` (${e.field})` : ''}` : describe(e);
    errors.value = { ...errors.value, [field ?? 'form']: text };
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const d = draft();
    if (!d) return;
    busy.value = true;
    try { await save(roomId, d, id); say(id ? 'Rule saved.' : 'Rule created.'); onSaved(); } catch (err) { refused(err); } finally { busy.value = false; }
  };
  const test = async () => {
    const d = draft();
    result.value = null;
    if (!d) return;
    let data: unknown;
    try { data = parseJson(f.value.event, 'The sample event'); } catch (err) { errors.value = { ...errors.value, event: (err as Error).message }; return; }
    busy.value = true;
    try { result.value = await dryRun(roomId, d, (data ?? {}) as Record<string, unknown>); } catch (err) { refused(err); } finally { busy.value = false; }
  };
  const err = errors.value;
  const at = (k: RuleField) => (err[k] ? { 'aria-invalid': true, 'aria-describedby': `rule-${k}-error` } : {});
  const msg = (k: RuleField) => err[k] && <span id={`rule-${k}-error`} class="error small">{err[k]}</span>;
  return (
    <form class="form rule-editor" onSubmit={submit} aria-label={id ? 'Edit rule' : 'New rule'}>
      <div class="grid2">
        <label>Name<input value={f.value.name} onInput={(e) => set('name', e.currentTarget.value)} maxLength={100} {...at('name')} />{msg('name')}</label>
        <label>Trigger
          <select value={f.value.trigger} onChange={(e) => set('trigger', e.currentTarget.value)} {...at('trigger')}>
            {TRIGGERS.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>{msg('trigger')}
        </label>
      </div>
      <label>Condition (JSONLogic; empty: always)<textarea class="code" rows={4} value={f.value.condition} onInput={(e) => set('condition', e.currentTarget.value)} spellcheck={false} {...at('condition')} />{msg('condition')}</label>
      <div class="grid2">
        <label>Effect action<input value={f.value.action} onInput={(e) => set('action', e.currentTarget.value)} spellcheck={false} {...at('action')} />{msg('action')}</label>
        <label class="check"><input type="checkbox" checked={f.value.enabled} onChange={(e) => set('enabled', e.currentTarget.checked)} /> Enabled</label>
      </div>
      <label><span>Effect arguments (JSON; <code>{'{{event.…}}'}</code> templates)</span><textarea class="code" rows={3} value={f.value.args} onInput={(e) => set('args', e.currentTarget.value)} spellcheck={false} {...at('args')} />{msg('args')}</label>
      <label>Sample event data (for the dry run)<textarea class="code" rows={3} value={f.value.event} onInput={(e) => set('event', e.currentTarget.value)} spellcheck={false} {...at('event')} />{msg('event')}</label>
      {err.form && <p class="error small" role="alert">{err.form}</p>}
      {result.value && <DryResult r={result.value} />}
      <div class="row end">
        <button type="button" class="btn" onClick={onClose}>Close</button>
        <button type="button" class="btn" disabled={busy.value} onClick={() => void test()}>Dry run</button>
        <button type="submit" class="btn primary" disabled={busy.value}>{id ? 'Save rule' : 'Create rule'}</button>
      </div>
    </form>
  );
}

function DryResult({ r }: { r: DryRun }) {
  const e = r.effect;
  return (
    <section class="dry" role="status" aria-label="Dry run result">
      <p><strong>{r.matches ? 'The condition matches this event.' : 'The condition does not match this event.'}</strong>{r.error && ` ${r.error.message}`}</p>
      {e && (
        <>
          <p class="small">The effect {e.action} would {e.decision === 'run' ? 'run' : e.decision === 'approval' ? 'ask an owner for approval' : 'be refused'}{e.error ? `: ${e.error.message}` : '.'}</p>
          <pre class="args">{pretty(e.args)}</pre>
          {e.changes && e.changes.length > 0 && <p class="muted small">It would change {e.changes.map((c) => c.path).join(', ')} (version {e.version}).</p>}
        </>
      )}
    </section>
  );
}

const NO_FILTERS: AuditFilters = { actor: '', kind: '', action: '', from: '', to: '' };

export function AuditScreen({ s }: ScreenProps) {
  const filters = useSignal<AuditFilters>(NO_FILTERS);
  const entries = useSignal<AuditEntry[]>([]);
  const next = useSignal<string | null>(null);
  const error = useSignal<string | null>(null);
  const loaded = useSignal(false);
  const names = useSignal<ReadonlyMap<string, string>>(new Map([['ai', 'Tessera AI']]));
  useEffect(() => {
    members(s.roomId).then((m) => { names.value = new Map([['ai', 'Tessera AI'], ...m.map((x) => [x.user_id, x.display_name] as const)]); }, () => undefined);
  }, [s.roomId]);
  const asked = useRef(0);
  const run = async (more = false) => {
    error.value = null;
    // Only the newest request's answer is shown: the first page may come back after a filtered one.
    const mine = ++asked.current;
    try {
      const r = await page(s.roomId, filters.value, more ? next.value ?? undefined : undefined);
      if (mine !== asked.current) return;
      entries.value = more ? [...entries.value, ...r.entries] : r.entries;
      next.value = r.next_cursor;
      loaded.value = true;
    } catch (e) {
      if (mine === asked.current) error.value = describe(e) + (e instanceof ApiError && e.field ? ` (${e.field})` : '');
    }
  };
  useEffect(() => { void run(); }, [s.roomId]);
  const set = (k: keyof AuditFilters, v: string) => { filters.value = { ...filters.value, [k]: v }; };
  return (
    <section class="screen" aria-labelledby="screen-title">
      <header class="screen-head">
        <h2 id="screen-title">Audit log</h2>
        <button type="button" class="btn" onClick={() => exportNdjson(s.roomId, filters.value).catch((e) => { error.value = describe(e); })}><Icon node={Download} size={16} /> Export NDJSON</button>
      </header>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); void run(); }} aria-label="Filters">
        <label>Actor<input value={filters.value.actor} onInput={(e) => set('actor', e.currentTarget.value)} placeholder="user id or ai" /></label>
        <label>Kind
          <select value={filters.value.kind} onChange={(e) => set('kind', e.currentTarget.value)}>
            <option value="">any</option><option value="user">user</option><option value="ai">ai</option><option value="rule">rule</option>
          </select>
        </label>
        <label>Action<input value={filters.value.action} onInput={(e) => set('action', e.currentTarget.value)} placeholder="propose_activity" /></label>
        <label>From<input type="date" value={filters.value.from} onInput={(e) => set('from', e.currentTarget.value)} /></label>
        <label>To<input type="date" value={filters.value.to} onInput={(e) => set('to', e.currentTarget.value)} /></label>
        <button type="submit" class="btn primary">Apply</button>
      </form>
      {error.value && <p class="error" role="alert">{error.value}</p>}
      {loaded.value && entries.value.length === 0 && <p class="muted">No entries match.</p>}
      {entries.value.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Audit entries">
          <table class="audit">
            <caption class="visually-hidden">Audit entries, newest first</caption>
            <thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Result</th><th scope="col">Arguments</th></tr></thead>
            <tbody>
              {entries.value.map((e) => (
                <tr key={e.id}>
                  <td>{when(e.at * 1000)}</td>
                  <td title={e.actor}>{names.value.get(e.actor) ?? e.actor}<span class="muted small"> ({e.actor_kind})</span></td>
                  <td><code>{e.action}</code></td>
                  <td>{String((e.result as { status?: unknown } | null)?.status ?? '')}</td>
                  <td><code class="small">{JSON.stringify(e.arguments)}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next.value && <button type="button" class="btn" onClick={() => void run(true)}>Older entries</button>}
    </section>
  );
}
