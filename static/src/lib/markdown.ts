/**
 * Markdown-lite for messages, parsed into a small tree that views turn into
 * elements (never HTML strings, so nothing a person types can become markup):
 * paragraphs with line breaks, ``` fences, > quotes, `code`, **bold**,
 * *italic* / _italic_, ~~strike~~, [text](url) and bare links (http, https,
 * mailto only), and @mentions.
 */
export type Inline =
  | { t: 'text'; v: string }
  | { t: 'b' | 'i' | 's'; c: Inline[] }
  | { t: 'code'; v: string }
  | { t: 'link'; href: string; c: Inline[] }
  | { t: 'mention'; handle: string };

export type Block =
  | { t: 'p'; c: Inline[] }
  | { t: 'pre'; v: string; lang: string }
  | { t: 'quote'; c: Block[] };

const FENCE = /^\s*```\s*([\w+-]*)\s*$/;

export function parse(src: string, depth = 0): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const out: Block[] = [];
  let para: string[] = [];
  const flush = () => {
    if (para.length) out.push({ t: 'p', c: inline(para.join('\n')) });
    para = [];
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !FENCE.test(lines[i]!)) body.push(lines[i++]!);
      out.push({ t: 'pre', v: body.join('\n'), lang: fence[1] ?? '' });
      continue;
    }
    if (/^\s*>/.test(line) && depth < 3) {
      flush();
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i]!)) quoted.push(lines[i++]!.replace(/^\s*> ?/, ''));
      i -= 1;
      out.push({ t: 'quote', c: parse(quoted.join('\n'), depth + 1) });
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line);
  }
  flush();
  return out;
}

/** A rule matches at a position and gives the node and how many characters it took. */
interface Rule {
  re: RegExp;
  /** Must not follow a letter or digit (mentions, links, `_`). */
  boundary?: boolean;
  make(m: RegExpExecArray, depth: number): [Inline, number] | null;
}

const whole = (n: Inline, m: RegExpExecArray): [Inline, number] => [n, m[0].length];

const RULES: Rule[] = [
  { re: /`([^`\n]+)`/y, make: (m) => whole({ t: 'code', v: m[1]! }, m) },
  { re: /\*\*(?=\S)([\s\S]+?)(?<=\S)\*\*/y, make: (m, d) => whole({ t: 'b', c: inline(m[1]!, d + 1) }, m) },
  { re: /~~(?=\S)([\s\S]+?)(?<=\S)~~/y, make: (m, d) => whole({ t: 's', c: inline(m[1]!, d + 1) }, m) },
  { re: /\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![*\p{L}\p{N}])/uy, make: (m, d) => whole({ t: 'i', c: inline(m[1]!, d + 1) }, m) },
  { re: /_(?=\S)([^_\n]+?)(?<=\S)_(?![\p{L}\p{N}_])/uy, boundary: true, make: (m, d) => whole({ t: 'i', c: inline(m[1]!, d + 1) }, m) },
  { re: /\[([^\]\n]+)\]\(((?:https?:\/\/|mailto:)[^\s)]+)\)/y, make: (m, d) => whole({ t: 'link', href: m[2]!, c: inline(m[1]!, d + 1) }, m) },
  { re: /(?:https?:\/\/|mailto:)[^\s<>"]+/y, boundary: true, make: (m) => autolink(m[0]!) },
  {
    re: /@([\p{L}\p{N}_.-]{1,64})/uy,
    boundary: true,
    make: (m) => {
      const handle = m[1]!.replace(/[.-]+$/, '');
      return handle ? [{ t: 'mention', handle: handle.toLowerCase() }, handle.length + 1] : null;
    },
  },
];

/** Characters at which a rule may start; everything else is plain text. */
const STARTS = /[`*~_[hm@]/g;
const WORD = /[\p{L}\p{N}_]/u;

function autolink(raw: string): [Inline, number] {
  // Trailing punctuation belongs to the sentence, and a closing parenthesis to
  // the text unless the link opened one.
  let href = raw.replace(/[.,;:!?'"]+$/, '');
  while (href.endsWith(')') && (href.match(/\(/g)?.length ?? 0) < (href.match(/\)/g)?.length ?? 0)) href = href.slice(0, -1);
  return [{ t: 'link', href, c: [{ t: 'text', v: href }] }, href.length];
}

export function inline(src: string, depth = 0): Inline[] {
  if (depth > 4) return [{ t: 'text', v: src }];
  const out: Inline[] = [];
  let text = '';
  let i = 0;
  while (i < src.length) {
    STARTS.lastIndex = i;
    const next = STARTS.exec(src);
    if (!next) break;
    text += src.slice(i, next.index);
    i = next.index;
    const afterWord = WORD.test(src[i - 1] ?? ' ');
    let hit: [Inline, number] | null = null;
    for (const rule of RULES) {
      if (rule.boundary && afterWord) continue;
      rule.re.lastIndex = i;
      const m = rule.re.exec(src);
      if (m && (hit = rule.make(m, depth))) break;
    }
    if (hit) {
      if (text) out.push({ t: 'text', v: text });
      text = '';
      out.push(hit[0]);
      i += hit[1];
    } else {
      text += src[i];
      i += 1;
    }
  }
  text += src.slice(i);
  if (text) out.push({ t: 'text', v: text });
  return out;
}

/** The handle that mentions a person: the display name in lower case without spaces (docs/protocol.md). */
export function handleOf(displayName: string): string {
  return displayName.toLowerCase().replace(/\s+/g, '');
}

/** The text of a message without markup, for quotes and previews. */
export function plain(src: string, max = 140): string {
  const flat = (ns: Inline[]): string => ns.map((n) => (n.t === 'text' || n.t === 'code' ? n.v : n.t === 'mention' ? `@${n.handle}` : flat(n.c))).join('');
  const blocks = (bs: Block[]): string => bs.map((b) => (b.t === 'p' ? flat(b.c) : b.t === 'pre' ? b.v : blocks(b.c))).join(' ');
  const text = blocks(parse(src)).replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
