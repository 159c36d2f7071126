/**
 * Roving focus (the WAI-ARIA toolbar pattern): a group of buttons is one tab
 * stop; arrow keys, Home and End move between them. The buttons render with
 * `tabIndex={rovingIndex(i)}` and the group handles keys with `onRovingKey`;
 * the button that had focus last keeps the tab stop.
 */

/** The tab index of the `i`-th button before anyone moved: only the first is a tab stop. */
export const rovingIndex = (i: number): number => (i === 0 ? 0 : -1);

const NEXT: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

export function onRovingKey(e: KeyboardEvent): void {
  const group = e.currentTarget as HTMLElement;
  const items = [...group.querySelectorAll<HTMLElement>(':scope > button')];
  const at = items.indexOf(document.activeElement as HTMLElement);
  if (at < 0 || items.length === 0) return;
  let to: number;
  if (e.key in NEXT) to = (at + NEXT[e.key]! + items.length) % items.length;
  else if (e.key === 'Home') to = 0;
  else if (e.key === 'End') to = items.length - 1;
  else return;
  e.preventDefault();
  e.stopPropagation();
  for (const [i, el] of items.entries()) el.tabIndex = i === to ? 0 : -1;
  items[to]!.focus();
}
