/**
 * Writing a message: the draft is saved on every keystroke (per room, across
 * reloads); Enter sends, Shift+Enter breaks the line, ↑ in an empty box edits
 * your last message, Escape cancels a reply or an edit; `@` offers members
 * and the AI; files can be attached by picker, paste or drop.
 */
import { useSignal, type Signal } from '@preact/signals';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { user } from '../../api/auth';
import { handleOf, plain } from '../../lib/markdown';
import type { RoomSession } from '../../realtime/room';
import * as drafts from '../../state/drafts';
import type { Member } from '../../state/room-admin';
import { files as filesChunk } from '../lazy';
import { Icon } from '../ui/Icon';
import { Paperclip, Send, X } from '../icons';
import type { Person } from './Body';

export interface Editing { id: number; body: string }

interface Option { handle: string; name: string; id: string }

const MENTION = /(?:^|\s)@([\p{L}\p{N}_.-]{0,64})$/u;

export function Composer({ s, members, editing, replyTo, roomName }: {
  s: RoomSession;
  people: ReadonlyMap<string, Person>;
  members: readonly Member[];
  editing: Signal<Editing | null>;
  replyTo: Signal<number | null>;
  roomName: string;
}) {
  const me = user.value!.id;
  const area = useRef<HTMLTextAreaElement>(null);
  const text = useSignal('');
  const options = useSignal<Option[]>([]);
  const active = useSignal(0);
  const saved = useRef<drafts.Draft | null>(null);

  // The box holds new text in the same frame that shows it (a layout effect,
  // and the element written, not only the signal, whose render is a frame
  // later): after paint, an edit's text overwrote what was typed at once, and
  // a room showed an empty box for a frame before its draft.
  const fill = (body: string) => {
    text.value = body;
    if (area.current) area.current.value = body;
  };
  useLayoutEffect(() => {
    const d = drafts.load(me, s.roomId);
    fill(d.body);
    replyTo.value = d.reply_to;
  }, [s.roomId]);

  // Entering an edit keeps the draft aside and brings it back afterwards.
  const edit = editing.value;
  useLayoutEffect(() => {
    if (edit) {
      saved.current ??= { body: text.value, reply_to: replyTo.value };
      fill(edit.body);
      area.current?.focus();
    } else if (saved.current) {
      fill(saved.current.body);
      saved.current = null;
    }
  }, [edit?.id]);

  useEffect(() => {
    if (!editing.value) drafts.save(me, s.roomId, { body: text.value, reply_to: replyTo.value });
  }, [text.value, replyTo.value]);

  useEffect(() => { if (replyTo.value !== null) area.current?.focus(); }, [replyTo.value]);

  const F = filesChunk.value.value;
  const attached = F ? F.attachments(s).value : [];
  const uploading = attached.some((u) => u.state !== 'done' && u.state !== 'error');

  const suggest = () => {
    const el = area.current!;
    const m = MENTION.exec(el.value.slice(0, el.selectionStart));
    if (!m) { options.value = []; return; }
    const q = m[1]!.toLowerCase();
    const all: Option[] = [
      ...members.filter((x) => x.user_id !== me).map((x) => ({ handle: handleOf(x.display_name), name: x.display_name, id: x.user_id })),
      { handle: 'ai', name: 'AI teammate', id: 'ai' },
    ];
    options.value = all.filter((o) => o.handle.startsWith(q) || o.name.toLowerCase().includes(q)).slice(0, 8);
    active.value = 0;
  };

  const insert = (o: Option) => {
    const el = area.current!;
    const before = el.value.slice(0, el.selectionStart).replace(MENTION, (all) => `${all.startsWith('@') ? '' : all[0]}@${o.handle} `);
    const after = el.value.slice(el.selectionStart);
    text.value = before + after;
    options.value = [];
    requestAnimationFrame(() => { el.focus(); el.setSelectionRange(before.length, before.length); });
  };

  const submit = () => {
    const body = text.value.trim();
    if (edit) {
      if (body && body !== edit.body) s.edit(edit.id, body);
      editing.value = null;
      return;
    }
    if (uploading) return;
    const files = F ? F.take(s) : [];
    if (!body && !files.length) return;
    s.send(body, replyTo.value, files);
    text.value = '';
    replyTo.value = null;
  };

  const onKey = (e: KeyboardEvent) => {
    if (options.value.length) {
      if (e.key === 'ArrowDown') { e.preventDefault(); active.value = (active.value + 1) % options.value.length; return; }
      if (e.key === 'ArrowUp') { e.preventDefault(); active.value = (active.value - 1 + options.value.length) % options.value.length; return; }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); insert(options.value[active.value]!); return; }
      if (e.key === 'Escape') { e.preventDefault(); options.value = []; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); return; }
    if (e.key === 'Escape' && (edit || replyTo.value !== null)) { e.preventDefault(); editing.value = null; replyTo.value = null; return; }
    if (e.key === 'ArrowUp' && !text.value && !edit) {
      const last = [...s.timeline.messages.value].reverse().find((m) => m.author === me && !m.deleted && m.body);
      if (last) { e.preventDefault(); editing.value = { id: last.id, body: last.body }; }
    }
  };

  const attach = (files: File[]) => { if (files.length) void filesChunk.load().then((f) => f.upload(s, files, true)); };
  const replying = replyTo.value !== null ? s.timeline.get(replyTo.value) : undefined;
  const listId = `mentions-${s.roomId}`;

  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      {(edit || replyTo.value !== null) && (
        <div class="composer-context">
          <span>{edit ? 'Editing your message' : <>Replying to <strong>{replying?.author_name ?? 'a message'}</strong>{replying ? `: ${plain(replying.body, 80)}` : ''}</>}</span>
          <button type="button" class="icon-btn" aria-label={edit ? 'Cancel edit' : 'Cancel reply'} onClick={() => { editing.value = null; replyTo.value = null; }}><Icon node={X} size={16} /></button>
        </div>
      )}
      {F && !edit && <F.AttachList s={s} />}
      {options.value.length > 0 && (
        <ul id={listId} role="listbox" aria-label="People to mention" class="options mentions">
          {options.value.map((o, i) => (
            <li key={o.id} id={`${listId}-${i}`} role="option" aria-selected={i === active.value} class="option"
              onMouseDown={(e) => { e.preventDefault(); insert(o); }}>
              <strong>@{o.handle}</strong> <span class="muted">{o.name}</span>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        {!edit && (
          <label class="icon-btn attach" aria-label="Attach files">
            <Icon node={Paperclip} />
            <input type="file" multiple class="visually-hidden" onChange={(e) => { const el = e.currentTarget; attach([...(el.files ?? [])]); el.value = ''; }} />
          </label>
        )}
        <textarea
          ref={area}
          rows={1}
          aria-label={edit ? 'Edit message' : `Message ${roomName}`}
          aria-autocomplete="list"
          aria-controls={options.value.length ? listId : undefined}
          aria-activedescendant={options.value.length ? `${listId}-${active.value}` : undefined}
          placeholder={edit ? 'Edit your message' : `Message ${roomName}`}
          value={text.value}
          maxLength={8192}
          onInput={(e) => { text.value = e.currentTarget.value; if (!edit) s.typingNow(); suggest(); }}
          onKeyDown={onKey}
          onPaste={(e) => { const files = [...(e.clipboardData?.files ?? [])]; if (files.length && !edit) { e.preventDefault(); attach(files); } }}
          onBlur={() => { options.value = []; }}
        />
        <button type="submit" class="icon-btn send" aria-label={edit ? 'Save edit' : uploading ? 'Send (waiting for uploads)' : 'Send'} disabled={!edit && uploading}>
          <Icon node={Send} />
        </button>
      </div>
    </form>
  );
}
