// Identifiers: time-ordered queue ids for messages, short ids for connections.
import { randomBytes } from 'node:crypto';

const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function base32(n: bigint, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    s = B32[Number(n & 31n)] + s;
    n >>= 5n;
  }
  return s;
}

// Random bytes drawn 4 KiB at a time: a call into the CSPRNG per id costs more than the id itself.
let pool = Buffer.alloc(0);
let used = 0;
function random(n: number): bigint {
  if (used + n > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(pool[used++]);
  return v;
}

/** 20 characters: 10 of milliseconds since the epoch, 10 random; sorts by creation time. */
export function queueId(now = Date.now()): string {
  return base32(BigInt(now), 10) + base32(random(7), 10);
}

/** 12 random characters for a connection. */
export function connId(): string {
  return base32(random(8), 12);
}
