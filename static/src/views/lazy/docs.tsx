/**
 * The docs chunk: a room's documents (open, create, copy, rename by copy,
 * delete for admins), and a document's named versions (save, list with
 * author and time, a side-by-side diff against now, restore after a
 * confirmation). The editor itself is the editor chunk.
 */
import './initial';
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { describe } from '../../api/errors';
import { when } from '../../lib/format';
import { sideBySide } from '../../lib/diff';
import type { Role } from '../../realtime/protocol';
import type { RoomSession } from '../../realtime/room';
import * as docs from '../../state/docs';
import { atLeast, type Member } from '../../state/room-admin';
import { follow, navigate } from '../../state/route';
import { say } from '../../state/toasts';
import { editor, prefetch } from '../lazy';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { Panel } from '../ui/Panel';
import { Copy, FilePlus, FileText, GitCompare, History, Pencil, Trash } from '../icons';

const docPath = (room: string, doc: string) => `/rooms/${room}/docs/${encodeURIComponent(doc)}`;

/** A name that fits the server's rule, or why not. */
export function checkName(name: string, taken: readonly string[] = []): string | null {
  if (!docs.DOC_NAME.test(name)) return 'Use 1 to 128 letters, digits, dots, dashes or underscores (no spaces).';
  if (taken.includes(name)) return 'A document of that name exists.';
  return null;
}

interface PanelProps { roomId: string; role: Role | null; writable: boolean; s: RoomSession; onClose: () => void }

export function DocsPanel({ roomId, role, writable, s, onClose }: PanelProps) {
  const list = useSignal<docs.DocInfo[] | null>(null);
  const deleted = useSignal<readonly string[]>([]);
  const error = useSignal<string | null>(null);
  const naming = useSignal<null | { mode: 'new' | 'copy' | 'rename'; from?: string }>(null);
  const deleting = useSignal<string | null>(null);
  const load = () => docs.list(roomId).then((d) => {
    list.value = [...d.docs].sort((a, b) => b.updated_at - a.updated_at);
    deleted.value = d.deleted.map((t) => t.name);
    error.value = null;
  })
    .catch((e) => { error.value = describe(e); });
  useEffect(() => {
    void load();
    prefetch(editor);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = s.on((e) => { if (e.event === 'doc_changed') { clearTimeout(timer); timer = setTimeout(load, 500); } });
    return () => { off(); clearTimeout(timer); };
  }, [roomId]);
  const admin = atLeast(role, 'admin');
  const names = list.value?.map((d) => d.name) ?? [];
  return (
    <Panel title="Documents" onClose={onClose}>
      {writable && <button type="button" class="btn" onClick={() => { naming.value = { mode: 'new' }; }}><Icon node={FilePlus} /> New document</button>}
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {list.value === null && !error.value && <p class="muted small" role="status">Loading documents…</p>}
      <ul class="doc-list">
        {list.value?.map((d) => (
          <li key={d.name} class="doc-item">
            <a href={docPath(roomId, d.name)} onClick={follow} class="doc-link"><Icon node={FileText} size={16} /><span class="file-name">{d.name}</span></a>
            <span class="muted small">{when(d.updated_at)}</span>
            <span class="doc-tools">
              {writable && <button type="button" class="icon-btn" aria-label={`Copy ${d.name}`} onClick={() => { naming.value = { mode: 'copy', from: d.name }; }}><Icon node={Copy} size={16} /></button>}
              {admin && writable && <button type="button" class="icon-btn" aria-label={`Rename ${d.name}`} onClick={() => { naming.value = { mode: 'rename', from: d.name }; }}><Icon node={Pencil} size={16} /></button>}
              {admin && writable && <button type="button" class="icon-btn" aria-label={`Delete ${d.name}`} onClick={() => { deleting.value = d.name; }}><Icon node={Trash} size={16} /></button>}
            </span>
          </li>
        ))}
        {list.value?.length === 0 && <li class="muted small">No documents yet.</li>}
      </ul>
      {naming.value && (
        <NameDialog mode={naming.value.mode} from={naming.value.from} taken={names} deleted={deleted.value}
          onClose={() => { naming.value = null; }}
          onDone={async (name) => {
            const { mode, from } = naming.value!;
            if (mode === 'new') await docs.create(roomId, name);
            else await docs.copy(roomId, from!, name);
            if (mode === 'rename') await docs.remove(roomId, from!);
            naming.value = null;
            if (mode === 'copy') { say(`Copied to ${name}.`); await load(); } else navigate(docPath(roomId, name));
          }} />
      )}
      {deleting.value && (
        <Dialog title={`Delete ${deleting.value}?`} onClose={() => { deleting.value = null; }}>
          <p class="muted">The document and its versions are deleted for everyone in the room. Copies kept offline are not brought back.</p>
          <div class="row end">
            <button type="button" class="btn" onClick={() => { deleting.value = null; }}>Cancel</button>
            <button type="button" class="btn danger" onClick={() => {
              const name = deleting.value!;
              deleting.value = null;
              docs.remove(roomId, name).then(() => { say(`${name} was deleted.`); return load(); }).catch((e) => { error.value = describe(e); });
            }}>Delete document</button>
          </div>
        </Dialog>
      )}
    </Panel>
  );
}

const NAME_TITLES = { new: 'New document', copy: 'Copy document', rename: 'Rename document' } as const;

interface NameProps {
  mode: 'new' | 'copy' | 'rename';
  from: string | undefined;
  taken: readonly string[];
  deleted: readonly string[];
  onClose: () => void;
  onDone: (name: string) => Promise<void>;
}

function NameDialog({ mode, from, taken, deleted, onClose, onDone }: NameProps) {
  const suggested = mode === 'new' ? 'notes.md' : from!.replace(/(\.[^.]+)?$/, (ext) => `-copy${ext}`);
  const name = useSignal(suggested);
  const error = useSignal<string | null>(null);
  const busy = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const n = name.value.trim();
    const bad = checkName(n, taken);
    if (bad) { error.value = bad; return; }
    busy.value = true;
    try { await onDone(n); } catch (err) { error.value = describe(err); } finally { busy.value = false; }
  };
  return (
    <Dialog title={NAME_TITLES[mode]} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label>Name
          <input value={name.value} onInput={(e) => { name.value = e.currentTarget.value; error.value = null; }} aria-invalid={!!error.value} aria-describedby="doc-name-hint" autoFocus />
        </label>
        <p id="doc-name-hint" class={error.value ? 'error small' : 'hint'} role={error.value ? 'alert' : undefined}>
          {error.value ?? 'The extension chooses the highlighting: .md for notes, .js, .py, .rs, .json… for code.'}
        </p>
        {deleted.includes(name.value.trim()) && <p class="muted small">A document of this name was deleted; this makes a new one.</p>}
        {mode === 'rename' && <p class="muted small">Renaming copies the document to the new name and deletes the old one; its versions stay with the old name.</p>}
        <div class="row end">
          <button type="button" class="btn" onClick={onClose}>Cancel</button>
          <button type="submit" class="btn primary" disabled={busy.value}>{mode === 'new' ? 'Create' : mode === 'copy' ? 'Copy' : 'Rename'}</button>
        </div>
      </form>
    </Dialog>
  );
}

interface VersionsProps { roomId: string; doc: string; writable: boolean; members: readonly Member[]; current: () => string; onClose: () => void }

/** Named versions of a document: save one, compare one with now, restore one. */
export function VersionsPanel({ roomId, doc, writable, members, current, onClose }: VersionsProps) {
  const list = useSignal<docs.DocVersion[] | null>(null);
  const error = useSignal<string | null>(null);
  const label = useSignal('');
  const comparing = useSignal<null | { v: docs.DocVersion; text: string }>(null);
  const restoring = useSignal<docs.DocVersion | null>(null);
  const load = () => docs.versions(roomId, doc).then((v) => { list.value = v; error.value = null; }).catch((e) => { error.value = describe(e); });
  useEffect(() => { void load(); }, [roomId, doc]);
  const author = (id: string) => members.find((m) => m.user_id === id)?.display_name ?? 'Someone who left';
  const save = async (e: Event) => {
    e.preventDefault();
    const l = label.value.trim();
    if (!l) { error.value = 'Name the version first.'; return; }
    try {
      await docs.saveVersion(roomId, doc, l);
      label.value = '';
      say(`Version “${l}” saved.`);
      await load();
    } catch (err) { error.value = describe(err); }
  };
  return (
    <Panel title="Versions" onClose={onClose}>
      {writable && (
        <form class="form" onSubmit={save}>
          <label>Name this version<input value={label.value} maxLength={100} placeholder="Draft for review" onInput={(e) => { label.value = e.currentTarget.value; }} /></label>
          <button type="submit" class="btn"><Icon node={History} /> Save version</button>
        </form>
      )}
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      <ul class="versions">
        {list.value?.map((v) => (
          <li key={v.v} class="version">
            <strong>{v.label}</strong>
            <span class="muted small">{author(v.created_by)} · {when(v.created_at)}</span>
            <span class="row">
              <button type="button" class="btn small" aria-label={`Compare ${v.label} with now`}
                onClick={() => docs.versionText(roomId, doc, v.v).then((text) => { comparing.value = { v, text }; }).catch((e) => { error.value = describe(e); })}>
                <Icon node={GitCompare} size={14} /> Compare
              </button>
              {writable && <button type="button" class="btn small" aria-label={`Restore ${v.label}`} onClick={() => { restoring.value = v; }}><Icon node={History} size={14} /> Restore</button>}
            </span>
          </li>
        ))}
        {list.value?.length === 0 && <li class="muted small">No versions yet. Save one before a big change.</li>}
      </ul>
      {comparing.value && <DiffDialog label={comparing.value.v.label} before={comparing.value.text} after={current()} onClose={() => { comparing.value = null; }} />}
      {restoring.value && (
        <Dialog title={`Restore “${restoring.value.label}”?`} onClose={() => { restoring.value = null; }}>
          <p class="muted">Everyone's copy of {doc} changes to this version, as one edit. Save a version of the current text first if you may want it back.</p>
          <div class="row end">
            <button type="button" class="btn" onClick={() => { restoring.value = null; }}>Cancel</button>
            <button type="button" class="btn primary" onClick={() => {
              const v = restoring.value!;
              restoring.value = null;
              docs.restore(roomId, doc, v.v).then(() => say(`Restored “${v.label}”.`)).catch((e) => { error.value = describe(e); });
            }}>Restore version</button>
          </div>
        </Dialog>
      )}
    </Panel>
  );
}

/** A version (left) against the document now (right), line by line. */
function DiffDialog({ label, before, after, onClose }: { label: string; before: string; after: string; onClose: () => void }) {
  const rows = sideBySide(before, after);
  const changed = rows.filter((r) => r.kind === 'change').length;
  return (
    <Dialog title={`“${label}” compared with now`} onClose={onClose} wide>
      <p class="muted small" role="status">{changed ? `${changed} ${changed === 1 ? 'line differs' : 'lines differ'}.` : 'No differences.'}</p>
      <div class="diff-scroll">
        <table class="diff">
          <caption class="visually-hidden">Lines of “{label}” beside the same lines now</caption>
          <thead><tr><th scope="col">“{label}”</th><th scope="col">Now</th></tr></thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i} class={r.kind}>
                <td>{r.kind === 'change' && r.left !== null ? <del>{r.left || ' '}</del> : r.left}</td>
                <td>{r.kind === 'change' && r.right !== null ? <ins>{r.right || ' '}</ins> : r.right}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Dialog>
  );
}
