// The y-websocket wire format by hand (lib0 variable-length integers), for
// tests that must send what no well-behaved client would: exact messages,
// wrong lengths, deep nesting.

/** lib0's unsigned varint: 7 bits per byte, low first (arithmetic, so values past 2^31 work). */
export function varuint(n) {
  const out = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

export const varbytes = (b) => Buffer.concat([varuint(b.length), Buffer.from(b)]);
export const varstring = (s) => varbytes(Buffer.from(s, 'utf8'));

export const MSG_SYNC = 0;
export const MSG_AWARENESS = 1;
export const SYNC_STEP1 = 0;
export const SYNC_STEP2 = 1;
export const SYNC_UPDATE = 2;

export const syncStep1 = (stateVector) => Buffer.concat([varuint(MSG_SYNC), varuint(SYNC_STEP1), varbytes(stateVector)]);
export const syncUpdate = (update) => Buffer.concat([varuint(MSG_SYNC), varuint(SYNC_UPDATE), varbytes(update)]);

/** An awareness message announcing one client's state. */
export function awareness(clientId, clock, state) {
  const inner = Buffer.concat([varuint(1), varuint(clientId), varuint(clock), varstring(JSON.stringify(state))]);
  return Buffer.concat([varuint(MSG_AWARENESS), varbytes(inner)]);
}

/** The kind of a message from the server: `sync_step1`, `sync_step2`, `update`, `awareness` or `other`. */
export function kindOf(data) {
  const b = Buffer.from(data);
  if (b[0] === MSG_AWARENESS) return 'awareness';
  if (b[0] !== MSG_SYNC) return 'other';
  return ['sync_step1', 'sync_step2', 'update'][b[1]] ?? 'other';
}
