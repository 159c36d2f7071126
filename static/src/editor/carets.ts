/**
 * Other people's carets and selections in a CodeMirror view, from the Yjs
 * awareness (the `cursor` field y-codemirror.next clients share: relative
 * positions of anchor and head), and this view's own selection written
 * there. Colours are classes (`c0`…`c7`), never style attributes, so the
 * editor keeps a CSP without 'unsafe-inline'; the name flag shows for a few
 * seconds after its caret moves (and on hover), as in Google Docs.
 */
import { StateEffect, type Extension, type Range } from '@codemirror/state';
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from '@codemirror/view';
import * as Y from 'yjs';
import type { Awareness } from 'y-protocols/awareness';
import { COLOURS, colourOf } from '../realtime/doc-session';

const FLAG_MS = 2500;
const repaint = StateEffect.define<null>();

class Caret extends WidgetType {
  constructor(readonly colour: number, readonly name: string, readonly active: boolean) { super(); }

  override eq(w: Caret): boolean {
    return w.colour === this.colour && w.name === this.name && w.active === this.active;
  }

  override toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = `cm-ySelectionCaret c${this.colour}${this.active ? ' active' : ''}`;
    const dot = document.createElement('span');
    dot.className = 'cm-ySelectionCaretDot';
    const info = document.createElement('span');
    info.className = 'cm-ySelectionInfo';
    info.textContent = this.name;
    caret.append('\u2060', dot, '\u2060', info, '\u2060');
    return caret;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

interface Cursor { anchor: unknown; head: unknown }
interface Seen { key: string; at: number }

export function carets(text: Y.Text, awareness: Awareness): Extension {
  const doc = text.doc!;
  return ViewPlugin.fromClass(class {
    decorations: DecorationSet = Decoration.none;
    private readonly seen = new Map<number, Seen>();
    private timer: ReturnType<typeof setTimeout> | undefined;
    private readonly onChange: (c: { added: number[]; updated: number[]; removed: number[] }) => void;

    constructor(readonly view: EditorView) {
      this.onChange = ({ added, updated, removed }) => {
        if ([...added, ...updated, ...removed].some((id) => id !== doc.clientID)) this.schedule(0);
      };
      awareness.on('change', this.onChange);
      this.decorations = this.build();
    }

    private schedule(ms: number): void {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.view.dispatch({ effects: repaint.of(null) }), ms);
    }

    update(u: ViewUpdate): void {
      this.share(u);
      this.decorations = this.build();
    }

    /** This view's selection, as relative positions, for the others (only while it has focus). */
    private share(u: ViewUpdate): void {
      const local = awareness.getLocalState() as { cursor?: Cursor | null } | null;
      if (!local) return;
      const focused = u.view.hasFocus && u.view.dom.ownerDocument.hasFocus();
      if (!focused) return;
      const sel = u.state.selection.main;
      const anchor = Y.createRelativePositionFromTypeIndex(text, sel.anchor);
      const head = Y.createRelativePositionFromTypeIndex(text, sel.head);
      const was = local.cursor;
      const same = was && Y.compareRelativePositions(Y.createRelativePositionFromJSON(was.anchor), anchor)
        && Y.compareRelativePositions(Y.createRelativePositionFromJSON(was.head), head);
      if (!same) awareness.setLocalStateField('cursor', { anchor, head });
    }

    private build(): DecorationSet {
      const ranges: Array<Range<Decoration>> = [];
      const now = Date.now();
      let nextExpiry = Infinity;
      const lines = this.view.state.doc;
      for (const [client, st] of awareness.getStates()) {
        if (client === doc.clientID) continue;
        const { cursor, user } = st as { cursor?: Cursor | null; user?: { id?: string; name?: string; colour?: number } };
        if (!cursor?.anchor || !cursor.head) continue;
        const a = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.anchor), doc);
        const h = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.head), doc);
        if (!a || !h || a.type !== text || h.type !== text) continue;
        const max = lines.length;
        const anchor = Math.min(a.index, max);
        const head = Math.min(h.index, max);
        const colour = typeof user?.colour === 'number' ? Math.abs(Math.trunc(user.colour)) % COLOURS : colourOf(String(user?.id ?? client));
        const key = `${anchor}:${head}`;
        const was = this.seen.get(client);
        if (!was || was.key !== key) this.seen.set(client, { key, at: now });
        const movedAt = this.seen.get(client)!.at;
        const active = now - movedAt < FLAG_MS;
        if (active) nextExpiry = Math.min(nextExpiry, movedAt + FLAG_MS - now);
        const from = Math.min(anchor, head);
        const to = Math.max(anchor, head);
        if (from < to) {
          const mark = Decoration.mark({ class: `cm-ySelection c${colour}` });
          const first = lines.lineAt(from);
          const last = lines.lineAt(to);
          if (first.number === last.number) ranges.push(mark.range(from, to));
          else {
            ranges.push(mark.range(from, first.to));
            for (let n = first.number + 1; n < last.number; n += 1) {
              ranges.push(Decoration.line({ class: `cm-yLineSelection c${colour}` }).range(lines.line(n).from));
            }
            if (last.from < to) ranges.push(mark.range(last.from, to));
          }
        }
        ranges.push(Decoration.widget({ widget: new Caret(colour, String(user?.name ?? 'Someone'), active), side: head > anchor ? -1 : 1 }).range(head));
      }
      for (const client of this.seen.keys()) if (!awareness.getStates().has(client)) this.seen.delete(client);
      if (nextExpiry < Infinity) this.schedule(nextExpiry + 20);
      return Decoration.set(ranges, true);
    }

    destroy(): void {
      clearTimeout(this.timer);
      awareness.off('change', this.onChange);
    }
  }, { decorations: (v) => v.decorations });
}
