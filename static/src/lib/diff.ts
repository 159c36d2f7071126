/**
 * A line diff (Myers' O((N+M)·D) algorithm) shaped for a side-by-side view:
 * rows of unchanged lines, and blocks where lines on the left were replaced
 * by lines on the right (either side may be empty).
 */
export type Row =
  | { kind: 'same'; left: string; right: string }
  | { kind: 'change'; left: string | null; right: string | null };

/** Beyond this many differing lines the two texts are shown as one replaced block. */
const MAX_EDITS = 4000;

type Op = 'same' | 'del' | 'add';

function script(a: readonly string[], b: readonly string[]): Op[] | null {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const off = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= Math.min(max, MAX_EDITS); d += 1) {
    trace.push(v.slice());
    const next = v.slice();
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!) ? v[off + k + 1]! : v[off + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x += 1; y += 1; }
      next[off + k] = x;
      if (x >= n && y >= m) return backtrack(trace, next, d, off, n, m);
    }
    v = next;
  }
  return null;
}

function backtrack(trace: Int32Array[], last: Int32Array, d: number, off: number, n: number, m: number): Op[] {
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let e = d; e > 0; e -= 1) {
    const v = trace[e]!;
    const k = x - y;
    const down = k === -e || (k !== e && v[off + k - 1]! < v[off + k + 1]!);
    const pk = down ? k + 1 : k - 1;
    const px = v[off + pk]!;
    const py = px - pk;
    while (x > (down ? px : px + 1) && y > (down ? py + 1 : py)) { ops.push('same'); x -= 1; y -= 1; }
    ops.push(down ? 'add' : 'del');
    x = px;
    y = py;
  }
  void last;
  while (x > 0 && y > 0) { ops.push('same'); x -= 1; y -= 1; }
  return ops.reverse();
}

/** The rows that show `before` (left) against `after` (right). */
export function sideBySide(before: string, after: string): Row[] {
  const a = before.split('\n');
  const b = after.split('\n');
  const ops = script(a, b) ?? [...a.map((): Op => 'del'), ...b.map((): Op => 'add')];
  const rows: Row[] = [];
  let i = 0;
  let j = 0;
  let dels: string[] = [];
  let adds: string[] = [];
  const flush = () => {
    for (let r = 0; r < Math.max(dels.length, adds.length); r += 1) rows.push({ kind: 'change', left: dels[r] ?? null, right: adds[r] ?? null });
    dels = [];
    adds = [];
  };
  for (const op of ops) {
    if (op === 'same') { flush(); rows.push({ kind: 'same', left: a[i++]!, right: b[j++]! }); }
    else if (op === 'del') dels.push(a[i++]!);
    else adds.push(b[j++]!);
  }
  flush();
  return rows;
}
