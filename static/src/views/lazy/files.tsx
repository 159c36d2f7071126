/**
 * The files chunk (loaded on the first upload or when the files panel opens):
 * the upload manager, the upload tray with per-file and total progress, the
 * attachments of the message being written, and the room's files panel.
 */
import './initial';
import { useSignal } from '@preact/signals';
import { useEffect, useMemo } from 'preact/hooks';
import { user } from '../../api/auth';
import { api, ok } from '../../api/client';
import { describe } from '../../api/errors';
import { bytes, duration } from '../../lib/format';
import { latest } from '../../lib/latest';
import type { FileRef } from '../../realtime/protocol';
import type { RoomSession } from '../../realtime/room';
import type { components } from '../../api/schema.gen';
import { Uploads, type Up } from '../../realtime/uploads';
import { current } from '../../state/session';
import { Attachment } from '../chat/Attachment';
import { Icon } from '../ui/Icon';
import { Panel } from '../ui/Panel';
import { Pause, Play, Trash, Upload, X } from '../icons';

let manager: Uploads | null = null;

/** Waits until the room announces the file (`file_added`), or reads it when the event was missed. */
function finished(room: string, id: string): Promise<FileRef> {
  return new Promise<FileRef>((resolve, reject) => {
    const done = (f: FileRef) => { off(); clearInterval(poll); resolve(f); };
    const s = current.value;
    const seen = s?.roomId === room ? s.added.get(id) : undefined;
    if (seen) { resolve(seen); return; }
    const off = s?.roomId === room ? s.on((e) => {
      const file = e.data.file as FileRef | undefined;
      if (e.event === 'file_added' && file?.id === id) done(file);
    }) : () => undefined;
    let tries = 0;
    const poll = setInterval(async () => {
      tries += 1;
      try {
        const f = (await ok(api.GET('/api/v1/files/{file_id}', { params: { path: { file_id: id } } }))) as FileRef & { status: string };
        if (f.status === 'ready') done({ id: f.id, name: f.name, content_type: f.content_type, size: f.size });
      } catch (e) {
        if (tries > 10) { off(); clearInterval(poll); reject(e); }
      }
    }, 2000);
  });
}

/** One manager per signed-in person: uploads go on while they move between rooms. */
function uploads(): Uploads {
  const me = user.value!.id;
  if (!manager || manager.userId !== me) manager = new Uploads(me, finished);
  return manager;
}

export function upload(s: RoomSession, files: File[], attach: boolean): void {
  uploads().add(s.roomId, files, attach);
}

export function attachments(s: RoomSession) {
  return uploads().attachments(s.roomId);
}

export function take(s: RoomSession): FileRef[] {
  return uploads().take(s.roomId);
}

const STATE_WORDS: Record<Up['state'], string> = {
  queued: 'Waiting',
  uploading: 'Uploading',
  paused: 'Paused',
  waiting: 'Waiting for the connection',
  finishing: 'Finishing',
  done: 'Uploaded',
  error: 'Failed',
};

function UploadRow({ u, m }: { u: Up; m: Uploads }) {
  const pct = u.size ? Math.floor((u.sent / u.size) * 100) : 100;
  const left = u.speed > 0 ? (u.size - u.sent) / u.speed : Infinity;
  return (
    <li class={`upload ${u.state}`}>
      <div class="upload-line">
        <span class="file-name">{u.name}</span>
        <span class="muted small">
          {STATE_WORDS[u.state]}{u.resumed && u.state === 'uploading' ? ' (resumed)' : ''} · {bytes(u.sent)} of {bytes(u.size)}
          {u.state === 'uploading' && u.speed > 0 && ` · ${bytes(u.speed)}/s · ${duration(left)} left`}
        </span>
        <span class="upload-tools">
          {u.state === 'uploading' && <button type="button" class="icon-btn" aria-label={`Pause ${u.name}`} onClick={() => m.pause(u.key)}><Icon node={Pause} size={16} /></button>}
          {(u.state === 'paused' || u.state === 'waiting' || u.state === 'error') && (
            <button type="button" class="icon-btn" aria-label={`Resume ${u.name}`} onClick={() => m.resume(u.key)}><Icon node={Play} size={16} /></button>
          )}
          {u.state !== 'done' ? (
            <button type="button" class="icon-btn" aria-label={`Cancel ${u.name}`} onClick={() => void m.cancel(u.key)}><Icon node={X} size={16} /></button>
          ) : (
            <button type="button" class="icon-btn" aria-label={`Remove ${u.name}`} onClick={() => m.dismiss(u.key)}><Icon node={X} size={16} /></button>
          )}
        </span>
      </div>
      <progress max={100} value={pct} aria-label={u.name} aria-valuetext={`${pct} %`}>{pct} %</progress>
      {u.error && <p class="error small" role="alert">{u.error}</p>}
    </li>
  );
}

/** Uploads into the room (not attached to a message), with the total. */
export function Tray({ s }: { s: RoomSession }) {
  const m = uploads();
  const list = m.list.value.filter((u) => u.room === s.roomId && !u.attach);
  const t = m.roomTotals(s.roomId).value;
  const left = m.leftovers.value.filter((l) => l.room === s.roomId);
  if (!list.length && !left.length) return null;
  return (
    <section class="tray" aria-label="Uploads">
      {t.count > 1 && (
        <p class="small">
          {t.count} uploads · {bytes(t.sent)} of {bytes(t.size)}{t.speed > 0 ? ` · ${duration(t.eta)} left` : ''}
          <progress max={100} value={t.size ? Math.floor((t.sent / t.size) * 100) : 0} aria-label="All uploads" />
        </p>
      )}
      <ul class="uploads">{list.map((u) => <UploadRow key={u.key} u={u} m={m} />)}</ul>
      {left.map((l) => (
        <p key={l.storageKey} class="leftover small">
          {l.name} ({bytes(l.size)}) was not finished. Choose the same file again to resume it.
          <label class="btn small">Choose file<input type="file" class="visually-hidden" onChange={(e) => { const f = e.currentTarget.files?.[0]; if (f) m.add(s.roomId, [f], false); }} /></label>
          <button type="button" class="link-btn" onClick={() => void m.forget(l)}>Forget it</button>
        </p>
      ))}
    </section>
  );
}

/** The files attached to the message being written. */
export function AttachList({ s }: { s: RoomSession }) {
  const m = uploads();
  const list = m.attachments(s.roomId).value;
  if (!list.length) return null;
  return <ul class="uploads attach-list" aria-label="Attachments">{list.map((u) => <UploadRow key={u.key} u={u} m={m} />)}</ul>;
}

type Listed = components['schemas']['File'];

/** The room's files, newest first, live; drop or pick files to upload them into the room. */
export function FilesPanel({ s, writable, onClose }: { s: RoomSession; writable: boolean; onClose: () => void }) {
  const files = useSignal<Listed[]>([]);
  const usage = useSignal<components['schemas']['FileUsage'] | null>(null);
  const error = useSignal<string | null>(null);
  const m = uploads();
  const max = m.maxBytes.value;
  // Each file_added re-reads the list; only the newest read may answer (an
  // older one, slower under load, would hide the files added since).
  const reads = useMemo(() => latest(
    (_: void, signal: AbortSignal) => ok(api.GET('/api/v1/rooms/{room_id}/files', { params: { path: { room_id: s.roomId }, query: { limit: 100 } }, signal })),
    0,
    (r) => { files.value = r.files; usage.value = r.usage; error.value = null; },
    (e) => { error.value = describe(e); },
  ), [s]);
  const load = () => reads.now();
  useEffect(() => {
    load();
    const off = s.on((e) => { if (e.event === 'file_added' || e.event === 'file_deleted') load(); });
    return () => { off(); reads.cancel(); };
  }, [s]);
  const u = usage.value;
  return (
    <Panel title="Files" onClose={onClose}>
      {writable && (
        <div class="dropzone"
          onDragOver={(e) => { e.preventDefault(); e.stopPropagation(); }}
          onDrop={(e) => { e.preventDefault(); e.stopPropagation(); m.add(s.roomId, [...(e.dataTransfer?.files ?? [])], false); }}>
          <label class="btn"><Icon node={Upload} /> Upload files<input type="file" multiple class="visually-hidden" onChange={(e) => { const el = e.currentTarget; m.add(s.roomId, [...(el.files ?? [])], false); el.value = ''; }} /></label>
          <p class="muted small">or drop them here. {max ? `Up to ${bytes(max)} per file. ` : ''}
            {u && `${bytes(u.room_bytes)} of ${bytes(u.room_quota_bytes)} used in this room; yours ${bytes(u.my_bytes)} of ${bytes(u.member_quota_bytes)}.`}</p>
        </div>
      )}
      <Tray s={s} />
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      <ul class="file-list">
        {files.value.map((f) => (
          <li key={f.id}>
            <Attachment f={f} s={s} job={s.jobs.value.get(f.id)} mayAnalyze={writable} />
            {writable && (f.uploader_id === user.value?.id) && (
              <button type="button" class="link-btn small" onClick={() => ok(api.DELETE('/api/v1/files/{file_id}', { params: { path: { file_id: f.id } } })).then(load).catch((e) => { error.value = describe(e); })}>
                <Icon node={Trash} size={14} /> Delete {f.name}
              </button>
            )}
          </li>
        ))}
        {!files.value.length && !error.value && <li class="muted small">No files yet.</li>}
      </ul>
    </Panel>
  );
}
