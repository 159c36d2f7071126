/**
 * A CodeMirror 6 editor bound to a document's Y.Text (y-codemirror.next's
 * sync and undo manager; our carets), with find and replace, the document's
 * language, and read-only for viewers. The editor lives in a shadow root:
 * CodeMirror's style-mod then adopts its styles as constructed sheets rather
 * than writing <style> elements, which the app's CSP (`style-src 'self'`)
 * would refuse.
 */
import { Compartment, EditorState } from '@codemirror/state';
import { EditorView, drawSelection, dropCursor, highlightSpecialChars, keymap, lineNumbers, placeholder } from '@codemirror/view';
import { defaultKeymap } from '@codemirror/commands';
import { highlightSelectionMatches, openSearchPanel, search, searchKeymap } from '@codemirror/search';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import * as Y from 'yjs';
import type { DocSession } from '../realtime/doc-session';
import { carets } from './carets';
import { isCode, languageFor } from './languages';
import { theme } from './theme';

export interface Editor {
  readonly view: EditorView;
  readonly undo: Y.UndoManager;
  setReadOnly(ro: boolean): void;
  find(): void;
  destroy(): void;
}

const readOnlyOf = (ro: boolean) => [
  EditorState.readOnly.of(ro),
  EditorView.editable.of(!ro),
  EditorView.contentAttributes.of({ 'aria-readonly': String(ro) }),
];

export function createEditor(root: ShadowRoot, s: DocSession, readOnly: boolean): Editor {
  const ro = new Compartment();
  const lang = new Compartment();
  const undo = new Y.UndoManager(s.text);
  const code = isCode(s.name);
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({
      doc: s.text.toString(),
      extensions: [
        ro.of(readOnlyOf(readOnly)),
        lang.of([]),
        yCollab(s.text, null, { undoManager: undo }),
        carets(s.text, s.awareness),
        keymap.of([...yUndoManagerKeymap, ...searchKeymap, ...defaultKeymap]),
        search({ top: true }),
        highlightSelectionMatches(),
        highlightSpecialChars(),
        drawSelection(),
        dropCursor(),
        code ? lineNumbers() : EditorView.lineWrapping,
        EditorView.editorAttributes.of({ class: code ? 'code' : 'prose' }),
        EditorView.contentAttributes.of({ 'aria-label': `Text of ${s.name}`, spellcheck: code ? 'false' : 'true' }),
        placeholder(readOnly ? 'This document is empty.' : 'Start writing…'),
        theme,
      ],
    }),
  });
  void languageFor(s.name).then((l) => view.dispatch({ effects: lang.reconfigure(l) })).catch(() => undefined);
  return {
    view,
    undo,
    setReadOnly: (r) => view.dispatch({ effects: ro.reconfigure(readOnlyOf(r)) }),
    find: () => { openSearchPanel(view); },
    destroy: () => { view.destroy(); undo.destroy(); },
  };
}
