/**
 * The pure part of the workflow screens (docs/workflows.md): the activity
 * life-cycle as board columns and the named actions that move a card, how a
 * `collaboration_updated` change list applies to the activities, the words of
 * a 412 ("changed by Ada — reload"), who may decide an approval, which rule
 * editor field a server error concerns, and the audit filters as a query.
 * No I/O, so tests/web/unit.test.mjs runs it in Node.
 */

export type Status = 'proposed' | 'scheduled' | 'in_progress' | 'done' | 'cancelled';
export type Role = 'viewer' | 'member' | 'admin' | 'owner';

/** What the board needs of an activity (the API's `Activity` has these and more). */
export interface Card { id: string; status: Status; updated_at: number }

export interface Change { path: string; old: unknown; new: unknown }
export interface ChangedBy { user_id: string; display_name: string; kind: 'user' | 'ai' | 'rule' }

export const COLUMNS: readonly { status: Status; label: string }[] = [
  { status: 'proposed', label: 'Proposed' },
  { status: 'scheduled', label: 'Scheduled' },
  { status: 'in_progress', label: 'In progress' },
  { status: 'done', label: 'Done' },
  { status: 'cancelled', label: 'Cancelled' },
];

/** A named action that moves a card; `at` asks for a time (schedule_activity). */
export interface Move { action: string; label: string; min: Role; at?: true }

const SCHEDULE: Move = { action: 'schedule_activity', label: 'Schedule', min: 'member', at: true };
const START: Move = { action: 'start_activity', label: 'Start', min: 'member' };
const COMPLETE: Move = { action: 'complete_activity', label: 'Complete', min: 'member' };
const CANCEL: Move = { action: 'cancel_activity', label: 'Cancel', min: 'admin' };

/** The moves of core's `can_move_to` from a status (done and cancelled are final). */
export function moves(status: Status): Move[] {
  switch (status) {
    case 'proposed': return [SCHEDULE, START, CANCEL];
    case 'scheduled': return [{ ...SCHEDULE, label: 'Reschedule' }, START, CANCEL];
    case 'in_progress': return [COMPLETE, CANCEL];
    default: return [];
  }
}

/** The board's columns: each status with its activities, most recently changed first. */
export function columns<A extends Card>(activities: Record<string, A>): { status: Status; label: string; items: A[] }[] {
  const all = Object.values(activities).sort((a, b) => b.updated_at - a.updated_at || a.id.localeCompare(b.id));
  return COLUMNS.map((c) => ({ ...c, items: all.filter((a) => a.status === c.status) }));
}

/**
 * Applies a `collaboration_updated` change list to the activities: a path
 * `activities.<id>` replaces (or, with `new: null`, removes) the activity,
 * `activities.<id>.<field>` sets one field. Other paths (settings, rules) are
 * not the board's. Returns null when nothing of the board changed.
 */
export function applyChanges<A extends Card>(activities: Record<string, A>, changes: readonly Change[]): Record<string, A> | null {
  let next: Record<string, A> | null = null;
  for (const c of changes) {
    const [root, id, field, ...rest] = c.path.split('.');
    if (root !== 'activities' || !id || rest.length) continue;
    next ??= { ...activities };
    if (field === undefined) {
      if (c.new === null) delete next[id];
      else next[id] = c.new as A;
    } else if (next[id]) {
      next[id] = { ...next[id]!, [field]: c.new };
    }
  }
  return next;
}

/** Who made a change, in words ("Ada", "the AI", "a rule by Ada"). */
export function who(by: ChangedBy | null | undefined): string {
  if (!by) return 'someone';
  if (by.kind === 'ai') return 'the AI';
  if (by.kind === 'rule') return `a rule by ${by.display_name}`;
  return by.display_name;
}

/** The words of a 412 `version_conflict` from its error's details (`last_change`); the view adds "— Reload". */
export function conflictText(details: Record<string, unknown>): string {
  const last = details.last_change as { changed_by?: ChangedBy } | null | undefined;
  return `Changed by ${who(last?.changed_by)}`;
}

export interface Requested { requested_by: string; requested_by_name: string; requested_kind: 'user' | 'ai' | 'rule'; rule_id: string | null; status: string }

/** Who or what asked, in words. */
export function requester(a: Requested): string {
  if (a.requested_kind === 'ai') return 'The AI';
  if (a.requested_kind === 'rule') return `Rule ${a.rule_id ?? ''} by ${a.requested_by_name}`.replace('  ', ' ');
  return a.requested_by_name;
}

/**
 * Whether the app offers approve/reject: the server says so (`may_decide`:
 * pending, an owner now, not their own), and the app never offers a request
 * to the identity that asked (a rule's request is its author's), whatever a
 * stale page says.
 */
export function mayDecide(item: { may_decide: boolean; approval: Requested }, me: string): boolean {
  return item.may_decide && item.approval.status === 'pending' && item.approval.requested_by !== me;
}

/** The rule editor's fields. */
export type RuleField = 'name' | 'trigger' | 'condition' | 'action' | 'args' | 'event';

/**
 * The editor field a server error concerns, from its `field` path
 * (`condition.if[0]`, `effect.args.title`, `rule.condition`, `event.data`).
 */
export function ruleField(path: string | null): RuleField | null {
  if (!path) return null;
  const p = path.replace(/^rule\./, '');
  if (p === 'name') return 'name';
  if (p === 'trigger') return 'trigger';
  if (p === 'condition' || p.startsWith('condition.') || p.startsWith('condition[')) return 'condition';
  if (p === 'effect' || p === 'effect.action') return 'action';
  if (p.startsWith('effect.')) return 'args';
  if (p === 'event' || p.startsWith('event.') || p.startsWith('data')) return 'event';
  return null;
}

export interface AuditFilters { actor: string; kind: '' | 'user' | 'ai' | 'rule'; action: string; from: string; to: string }

/** The audit filters as query parameters: only those given, trimmed. */
export function auditQuery(f: AuditFilters, extra: Record<string, string> = {}): Record<string, string> {
  const q: Record<string, string> = {};
  for (const k of ['actor', 'kind', 'action', 'from', 'to'] as const) {
    const v = f[k].trim();
    if (v) q[k] = v;
  }
  return { ...q, ...extra };
}

/** JSON as the editor shows it; `undefined` (left out) as an empty field. */
export function pretty(v: unknown): string {
  return v === undefined ? '' : JSON.stringify(v, null, 2);
}

/** Parses an editor's JSON field; empty is `undefined` (left out). Throws a message naming the field. */
export function parseJson(text: string, label: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${label} is not valid JSON`);
  }
}
