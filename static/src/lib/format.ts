/** Numbers, sizes, times and durations in words, through Intl (no date library). */
const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const clock = (ms: number) => time.format(ms);
export const when = (ms: number) => full.format(ms);

export function dayLabel(ms: number, now = Date.now()): string {
  const d = new Date(ms).toDateString();
  if (d === new Date(now).toDateString()) return 'Today';
  if (d === new Date(now - 86_400_000).toDateString()) return 'Yesterday';
  return day.format(ms);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function duration(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return '';
  if (secs < 60) return `${Math.ceil(secs)} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${Math.round(secs % 60)} s`;
  return `${Math.floor(secs / 3600)} h ${Math.round((secs % 3600) / 60)} min`;
}

/** "Ada", "Ada and Bob", "Ada, Bob and 2 others". */
export function names(list: readonly string[]): string {
  if (list.length <= 2) return list.join(' and ');
  if (list.length === 3) return `${list[0]}, ${list[1]} and ${list[2]}`;
  return `${list[0]}, ${list[1]} and ${list.length - 2} others`;
}

/** A stable colour (hue) per person, for avatars. */
export function hue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i += 1) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 360;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? parts.at(-1)![0] : '')).toUpperCase();
}
