/**
 * The editor's look, from the app's tokens (custom properties inherit into
 * the editor's shadow root), and its syntax colours. Everything here is a
 * style-mod module, which the shadow root adopts as a constructed sheet: no
 * <style> element, so `style-src 'self'` holds.
 */
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { EditorView } from '@codemirror/view';
import { tags as t } from '@lezer/highlight';
import type { Extension } from '@codemirror/state';
import { COLOURS } from '../realtime/doc-session';

const people: Record<string, Record<string, string>> = {};
for (let i = 0; i < COLOURS; i += 1) {
  people[`.cm-ySelection.c${i}, .cm-yLineSelection.c${i}`] = { backgroundColor: `color-mix(in srgb, var(--p${i}) 28%, transparent)` };
  people[`.cm-ySelectionCaret.c${i}`] = { borderColor: `var(--p${i})`, backgroundColor: `var(--p${i})` };
}

const base = EditorView.theme({
  '&': { flex: '1', minHeight: '0', height: '100%', color: 'var(--text)', backgroundColor: 'var(--surface)', fontSize: '15px' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': { fontFamily: 'var(--font)', lineHeight: '1.6', overflow: 'auto' },
  '&.code .cm-scroller': { fontFamily: 'var(--mono)', fontSize: '13.5px' },
  '.cm-content': { padding: '16px 0 40vh', caretColor: 'var(--text)', maxWidth: '820px', margin: '0 auto' },
  '&.code .cm-content': { maxWidth: 'none', margin: '0' },
  '.cm-line': { padding: '0 24px' },
  '&.code .cm-line': { padding: '0 12px' },
  '.cm-gutters': { backgroundColor: 'var(--surface)', color: 'var(--muted)', border: 'none' },
  '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--text)', borderLeftWidth: '2px' },
  '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, ::selection': { backgroundColor: 'color-mix(in srgb, var(--accent) 30%, transparent) !important' },
  '.cm-activeLine': { backgroundColor: 'transparent' },
  '.cm-searchMatch': { backgroundColor: 'var(--mention)', outline: '1px solid var(--line)' },
  '.cm-searchMatch.cm-searchMatch-selected': { backgroundColor: 'color-mix(in srgb, var(--accent) 35%, transparent)' },
  '.cm-panels': { backgroundColor: 'var(--surface-2)', color: 'var(--text)', borderColor: 'var(--line)' },
  '.cm-panels.cm-panels-top': { borderBottom: '1px solid var(--line)' },
  '.cm-panel.cm-search': { padding: '8px 12px', fontFamily: 'var(--font)', fontSize: '14px', display: 'flex', flexWrap: 'wrap', gap: '6px', alignItems: 'center' },
  '.cm-panel.cm-search input, .cm-panel.cm-search button, .cm-panel.cm-search label': { fontSize: '14px', margin: '0' },
  '.cm-textfield': { border: '1px solid var(--line)', borderRadius: '6px', padding: '4px 8px', backgroundColor: 'var(--surface)', color: 'var(--text)', minHeight: '32px' },
  '.cm-button': { border: '1px solid var(--line)', borderRadius: '6px', padding: '4px 10px', backgroundImage: 'none', backgroundColor: 'var(--surface)', color: 'var(--text)', minHeight: '32px' },
  '.cm-panel.cm-search [name=close]': { position: 'static', marginLeft: 'auto', fontSize: '20px', color: 'var(--muted)', minWidth: '32px', minHeight: '32px' },
  ':focus-visible': { outline: '2px solid var(--focus)', outlineOffset: '1px' },
  // The text's own focus is its caret (an outline would frame the whole page-long column).
  '.cm-content:focus-visible': { outline: 'none' },
  '.cm-placeholder': { color: 'var(--muted)' },
  // Other people: a caret in their colour with their name above it.
  '.cm-ySelectionCaret': { position: 'relative', borderLeft: '2px solid', marginLeft: '-1px', marginRight: '-1px', boxSizing: 'border-box', display: 'inline' },
  '.cm-ySelectionCaretDot': { position: 'absolute', width: '6px', height: '6px', top: '-3px', left: '-4px', borderRadius: '50%', backgroundColor: 'inherit' },
  '.cm-ySelectionInfo': {
    position: 'absolute', top: '-1.35em', left: '-2px', padding: '0 4px', borderRadius: '3px 3px 3px 0',
    font: '600 11px/1.5 var(--font)', whiteSpace: 'nowrap', userSelect: 'none', pointerEvents: 'none',
    backgroundColor: 'inherit', color: 'var(--surface)', opacity: '0', transition: 'opacity .2s', zIndex: '10',
  },
  '.cm-ySelectionCaret.active > .cm-ySelectionInfo, .cm-ySelectionCaret:hover > .cm-ySelectionInfo': { opacity: '1' },
  ...people,
});

const highlight = HighlightStyle.define([
  { tag: t.heading1, fontSize: '1.5em', fontWeight: '700' },
  { tag: t.heading2, fontSize: '1.3em', fontWeight: '700' },
  { tag: [t.heading3, t.heading4, t.heading5, t.heading6], fontWeight: '700' },
  { tag: t.strong, fontWeight: '700' },
  { tag: t.emphasis, fontStyle: 'italic' },
  { tag: t.strikethrough, textDecoration: 'line-through' },
  { tag: [t.link, t.url], color: 'var(--accent)', textDecoration: 'underline' },
  { tag: t.monospace, fontFamily: 'var(--mono)', fontSize: '0.92em' },
  { tag: t.quote, color: 'var(--muted)', fontStyle: 'italic' },
  { tag: [t.processingInstruction, t.contentSeparator, t.meta], color: 'var(--muted)' },
  { tag: [t.keyword, t.modifier, t.operatorKeyword], color: 'var(--p6)' },
  { tag: [t.string, t.special(t.string), t.regexp], color: 'var(--p1)' },
  { tag: [t.number, t.bool, t.atom, t.null], color: 'var(--p3)' },
  { tag: [t.comment, t.lineComment, t.blockComment], color: 'var(--muted)', fontStyle: 'italic' },
  { tag: [t.definition(t.variableName), t.function(t.variableName), t.className, t.typeName], color: 'var(--p2)' },
  { tag: [t.propertyName, t.attributeName, t.tagName], color: 'var(--p5)' },
  { tag: t.invalid, color: 'var(--danger)' },
]);

export const theme: Extension = [base, syntaxHighlighting(highlight)];
