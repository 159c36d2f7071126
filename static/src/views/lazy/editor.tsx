/**
 * The editor chunk: a document open in CodeMirror (editor/), bound to its
 * Y.Text and cached offline (realtime/doc-session.ts). The header says
 * whether edits are saved, who else is here, and offers undo, redo, find and
 * versions; viewers get a read-only editor; a document deleted meanwhile
 * offers to save this device's copy instead of bringing it back.
 */
import './initial';
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import * as Y from 'yjs';
import { user } from '../../api/auth';
import { describe } from '../../api/errors';
import { forgetLocal } from '../../realtime/doc-cache';
import { DocSession, type SaveState } from '../../realtime/doc-session';
import { createEditor, type Editor } from '../../editor/setup';
import * as docs from '../../state/docs';
import { archived as loadArchived, atLeast, members as loadMembers, type Member } from '../../state/room-admin';
import { byId, get } from '../../state/rooms';
import { follow, navigate } from '../../state/route';
import { fail, say } from '../../state/toasts';
import { Avatar } from '../rooms/AccountButton';
import { Icon } from '../ui/Icon';
import { ArrowLeft, Download, History, Redo2, Search, Undo2 } from '../icons';
import { VersionsPanel, checkName } from './docs';

const WORDS: Record<SaveState, string> = {
  loading: 'Opening…',
  connecting: 'Connecting…',
  saving: 'Saving…',
  saved: 'Saved',
  offline: 'Offline — changes will sync',
};

export function DocView({ roomId, doc }: { roomId: string; doc: string }) {
  const me = user.value!;
  const host = useRef<HTMLDivElement>(null);
  const session = useSignal<DocSession | null>(null);
  const ed = useSignal<Editor | null>(null);
  const members = useSignal<Member[]>([]);
  const archivedRoom = useSignal(false);
  const versions = useSignal(false);
  const room = byId.value.get(roomId);
  const role = room?.role ?? null;
  // Read-only until the role is known: a viewer's keystrokes are never applied, so never cached.
  const writable = atLeast(role, 'member') && !archivedRoom.value;

  // A new epoch opens the document afresh (after the device's copy was dropped).
  const epoch = useSignal(0);
  useEffect(() => {
    const s = new DocSession(roomId, doc, { id: me.id, name: me.display_name });
    session.value = s;
    return () => { ed.value?.destroy(); ed.value = null; s.stop(); session.value = null; };
  }, [roomId, doc, epoch.value]);
  useEffect(() => {
    if (!byId.peek().has(roomId)) get(roomId).catch(fail);
    loadMembers(roomId).then((m) => { members.value = m; }).catch(() => undefined);
    loadArchived(roomId).then((a) => { archivedRoom.value = a; }).catch(() => undefined);
  }, [roomId]);
  // Demoted to viewer while the document was open: the server dropped what was
  // typed since (it learns of the role before this tab does), so the device's
  // copy starts again from the server's rather than keep text nobody else has.
  const wasMember = useRef(false);
  useEffect(() => {
    if (wasMember.current && role === 'viewer') {
      void forgetLocal(me.id, roomId, doc);
      epoch.value += 1;
    }
    wasMember.current = atLeast(role, 'member');
  }, [role]);

  const s = session.value;
  const loaded = s?.loaded.value ?? false;
  useEffect(() => {
    const el = host.current;
    if (!s || !loaded || !el || ed.value) return;
    const root = el.shadowRoot ?? el.attachShadow({ mode: 'open' });
    ed.value = createEditor(root, s, !writable);
  }, [s, loaded]);
  useEffect(() => { ed.value?.setReadOnly(!writable); }, [writable, ed.value]);

  const state = s?.state.value ?? 'loading';
  const gone = s?.gone.value ?? null;
  const peers = s?.peers.value ?? [];
  const e = ed.value;
  return (
    <section class="doc" aria-labelledby="doc-title">
      <header class="room-head">
        <a class="icon-btn" href={`/rooms/${roomId}`} onClick={follow} aria-label={`Back to ${room?.name ?? 'the room'}`}><Icon node={ArrowLeft} /></a>
        <div class="room-title">
          <h1 id="doc-title">{doc}</h1>
          <p class="muted small">{room?.name ?? 'Room'} · <span class={`save ${gone ? 'offline' : state}`} role="status">{gone ? (gone === 'deleted' ? 'Deleted' : 'Closed') : WORDS[state]}</span></p>
        </div>
        {peers.length > 0 && (
          <ul class="peers" aria-label="Also here">
            {peers.slice(0, 5).map((p) => (
              <li key={p.id} class={`peer c${p.colour}`} title={p.name}><Avatar id={p.id} name={p.name} size={28} /><span class="visually-hidden">{p.name}</span></li>
            ))}
            {peers.length > 5 && <li class="muted small">+{peers.length - 5}</li>}
          </ul>
        )}
        {!gone && <div class="room-tools">
          {writable && <button type="button" class="icon-btn" aria-label="Undo" disabled={!e} onClick={() => { e?.undo.undo(); e?.view.focus(); }}><Icon node={Undo2} /></button>}
          {writable && <button type="button" class="icon-btn" aria-label="Redo" disabled={!e} onClick={() => { e?.undo.redo(); e?.view.focus(); }}><Icon node={Redo2} /></button>}
          <button type="button" class="icon-btn" aria-label="Find and replace" disabled={!e} onClick={() => e?.find()}><Icon node={Search} /></button>
          <button type="button" class="icon-btn" aria-label="Versions" aria-pressed={versions.value} onClick={() => { versions.value = !versions.value; }}><Icon node={History} /></button>
        </div>}
      </header>
      {!writable && role !== null && <p class="notice" role="note">{archivedRoom.value ? 'This room is archived: documents can be read but not changed.' : 'You are a viewer here: you can read this document but not change it.'}</p>}
      {gone && s && <Gone s={s} why={gone} roomId={roomId} />}
      <div class="room-body">
        <div class={`editor-host${gone ? ' hidden' : ''}`} ref={host} />
        {versions.value && !gone && (
          <VersionsPanel roomId={roomId} doc={doc} writable={writable} members={members.value}
            current={() => s?.text.toString() ?? ''} onClose={() => { versions.value = false; }} />
        )}
      </div>
    </section>
  );
}

/** The document was deleted (or this person removed) while this copy was open or offline; the device's copy is already erased. */
function Gone({ s, why, roomId }: { s: DocSession; why: 'deleted' | 'removed'; roomId: string }) {
  const name = useSignal(s.name.replace(/(\.[^.]+)?$/, (ext) => `-saved${ext || '.md'}`));
  const error = useSignal<string | null>(null);
  const text = s.text.toString();
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = s.name.includes('.') ? s.name : `${s.name}.md`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  const saveAs = async (e: Event) => {
    e.preventDefault();
    const n = name.value.trim();
    const bad = checkName(n);
    if (bad) { error.value = bad; return; }
    try {
      await docs.createWith(roomId, n, new Uint8Array(Y.encodeStateAsUpdate(s.doc)));
      say(`Saved as ${n}.`);
      navigate(`/rooms/${roomId}/docs/${encodeURIComponent(n)}`);
    } catch (err) { error.value = describe(err); }
  };
  return (
    <section class="gone" role="alert" aria-labelledby="gone-title">
      <h2 id="gone-title">{why === 'deleted' ? 'This document was deleted' : 'You are no longer in this room'}</h2>
      <p class="muted">{why === 'deleted'
        ? `Someone deleted it while this copy was open or offline. This page still holds its text (${text.length} characters) until you leave it; it is not sent back.`
        : 'This page still holds the text of the document until you leave it; nobody else receives it.'}</p>
      <div class="row">
        <button type="button" class="btn" onClick={download}><Icon node={Download} /> Save my copy as a file</button>
        <a class="btn" href={`/rooms/${roomId}`} onClick={follow}>Discard my copy</a>
      </div>
      {why === 'deleted' && (
        <form class="row" onSubmit={saveAs}>
          <label class="grow">Save it as a new document<input value={name.value} onInput={(e) => { name.value = e.currentTarget.value; error.value = null; }} /></label>
          <button type="submit" class="btn primary">Save as new document</button>
        </form>
      )}
      {error.value && <p class="error small" role="alert">{error.value}</p>}
    </section>
  );
}
