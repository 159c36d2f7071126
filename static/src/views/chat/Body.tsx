/** A message body: the Markdown-lite tree (lib/markdown.ts) as elements. */
import type { Block, Inline } from '../../lib/markdown';
import { parse } from '../../lib/markdown';

export interface Person { id: string; name: string }

interface Ctx { people: ReadonlyMap<string, Person>; me: string }

function inlines(ns: Inline[], c: Ctx) {
  return ns.map((n, i) => {
    switch (n.t) {
      case 'text': return n.v;
      case 'b': return <strong key={i}>{inlines(n.c, c)}</strong>;
      case 'i': return <em key={i}>{inlines(n.c, c)}</em>;
      case 's': return <s key={i}>{inlines(n.c, c)}</s>;
      case 'code': return <code key={i}>{n.v}</code>;
      case 'link': return <a key={i} href={n.href} target="_blank" rel="noopener noreferrer nofollow">{inlines(n.c, c)}</a>;
      case 'mention': {
        const p = n.handle === 'ai' ? { id: 'ai', name: 'AI teammate' } : c.people.get(n.handle);
        if (!p) return `@${n.handle}`;
        return <span key={i} class={p.id === c.me ? 'mention me' : 'mention'} title={p.name}>@{n.handle}</span>;
      }
    }
  });
}

function blocks(bs: Block[], c: Ctx) {
  return bs.map((b, i) => {
    if (b.t === 'p') return <p key={i}>{inlines(b.c, c)}</p>;
    if (b.t === 'pre') return <pre key={i} tabIndex={0} aria-label={b.lang ? `${b.lang} code` : 'code'}><code>{b.v}</code></pre>;
    return <blockquote key={i}>{blocks(b.c, c)}</blockquote>;
  });
}

export function Body({ text, people, me }: { text: string; people: ReadonlyMap<string, Person>; me: string }) {
  return <div class="body">{blocks(parse(text), { people, me })}</div>;
}
