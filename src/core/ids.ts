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

/** 20 characters: 10 of milliseconds since the epoch, 10 random; sorts by creation time. */
export function queueId(now = Date.now()): string {
  const r = randomBytes(7);
  return base32(BigInt(now), 10) + base32(BigInt('0x' + r.toString('hex')), 10);
}

/** 12 random characters for a connection. */
export function connId(): string {
  return base32(BigInt('0x' + randomBytes(8).toString('hex')), 12);
}
