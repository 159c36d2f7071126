/**
 * Syntax by file extension: Markdown (GFM, from @lezer/markdown) for notes
 * and anything unknown, built in; code languages as CodeMirror's ported
 * stream modes, each its own small chunk loaded when a document of that kind
 * opens.
 */
import { Language, StreamLanguage, defineLanguageFacet, type StreamParser } from '@codemirror/language';
import { GFM, parser as markdownParser } from '@lezer/markdown';

export const markdown = new Language(defineLanguageFacet(), markdownParser.configure(GFM), [], 'markdown');

type Mode = StreamParser<unknown>;
const MODES: Record<string, () => Promise<Mode>> = {
  js: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.javascript),
  mjs: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.javascript),
  jsx: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.javascript),
  ts: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.typescript),
  tsx: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.typescript),
  json: () => import('@codemirror/legacy-modes/mode/javascript').then((m) => m.json),
  py: () => import('@codemirror/legacy-modes/mode/python').then((m) => m.python),
  rs: () => import('@codemirror/legacy-modes/mode/rust').then((m) => m.rust),
  go: () => import('@codemirror/legacy-modes/mode/go').then((m) => m.go),
  c: () => import('@codemirror/legacy-modes/mode/clike').then((m) => m.c),
  h: () => import('@codemirror/legacy-modes/mode/clike').then((m) => m.c),
  cpp: () => import('@codemirror/legacy-modes/mode/clike').then((m) => m.cpp),
  java: () => import('@codemirror/legacy-modes/mode/clike').then((m) => m.java),
  css: () => import('@codemirror/legacy-modes/mode/css').then((m) => m.css),
  html: () => import('@codemirror/legacy-modes/mode/xml').then((m) => m.html),
  xml: () => import('@codemirror/legacy-modes/mode/xml').then((m) => m.xml),
  yaml: () => import('@codemirror/legacy-modes/mode/yaml').then((m) => m.yaml),
  yml: () => import('@codemirror/legacy-modes/mode/yaml').then((m) => m.yaml),
  toml: () => import('@codemirror/legacy-modes/mode/toml').then((m) => m.toml),
  sh: () => import('@codemirror/legacy-modes/mode/shell').then((m) => m.shell),
  sql: () => import('@codemirror/legacy-modes/mode/sql').then((m) => m.standardSQL),
};

const extensionOf = (name: string) => /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase() ?? '';

/** Whether a document of this name is code (line numbers, no wrapping) rather than prose. */
export const isCode = (name: string) => extensionOf(name) in MODES;

/** The language of a document, by its name's extension (Markdown when none is known). */
export async function languageFor(name: string): Promise<Language> {
  const load = MODES[extensionOf(name)];
  return load ? StreamLanguage.define(await load()) : markdown;
}
