/** Numbers, sizes, times and durations in words, through Intl (no date library). */
import { whenIdle } from './idle';

/**
 * A formatter made on first use: making one costs tens of milliseconds on a
 * slow phone, and at module load that delayed the first request of the page.
 */
function formatter(options: Intl.DateTimeFormatOptions): (ms: number) => string {
  let f: Intl.DateTimeFormat | undefined;
  return (ms) => (f ??= new Intl.DateTimeFormat(undefined, options)).format(ms);
}

export const clock = formatter({ hour: '2-digit', minute: '2-digit' });

/**
 * Makes the timeline's formatter while the page waits for the network: the
 * first formatter loads the locale's data (150 ms on a slow phone), which
 * would otherwise fall on the room's first frame.
 */
export function warmUp(): void {
  whenIdle(() => clock(0), 0);
}
export const when = formatter({ dateStyle: 'medium', timeStyle: 'short' });
const day = formatter({ weekday: 'long', month: 'long', day: 'numeric' });

export function dayLabel(ms: number, now = Date.now()): string {
  const d = new Date(ms).toDateString();
  if (d === new Date(now).toDateString()) return 'Today';
  if (d === new Date(now - 86_400_000).toDateString()) return 'Yesterday';
  return day(ms);
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
