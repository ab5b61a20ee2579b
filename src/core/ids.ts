import { randomFillSync } from 'node:crypto';

/*
 * Random bytes come from a pool refilled from the system CSPRNG: one randomFillSync per 4 KiB instead of one
 * randomBytes call (and a Buffer) per id, which showed up in the enqueue/claim profile. Bytes are never reused.
 */
const POOL = Buffer.alloc(4096);
let poolOff = POOL.length;

function take(n: number): Buffer {
  if (poolOff + n > POOL.length) {
    randomFillSync(POOL);
    poolOff = 0;
  }
  const out = POOL.subarray(poolOff, poolOff + n);
  poolOff += n;
  return out;
}

/** The kinds of ids SparkQ hands out; the prefix tells a reader what an id names. */
export type IdPrefix = 'ses' | 'que' | 'tsk';

const ALPHABET = '0123456789abcdefghijkmnopqrstuvwxyz'; // no 'l': ids get read aloud and typed by hand
const ID_LENGTH = 12; // 35^12 ≈ 3.4e18: collisions are not a practical concern at any queue size

/** A short, random, URL-safe id such as `tsk_4k2m9x0q7hzt`. */
export function newId(prefix: IdPrefix): string {
  const bytes = take(ID_LENGTH * 2);
  let out = '';
  for (let i = 0; i < bytes.length && out.length < ID_LENGTH; i++) {
    const b = bytes[i]!;
    // Rejection sampling keeps every character equally likely.
    if (b < 245) out += ALPHABET[b % 35];
  }
  while (out.length < ID_LENGTH) {
    const b = take(1)[0]!;
    if (b < 245) out += ALPHABET[b % 35];
  }
  return `${prefix}_${out}`;
}

const ID_PATTERN = /^(ses|que|tsk)_[0-9a-km-z]{12}$/;

export function looksLikeId(value: string, prefix?: IdPrefix): boolean {
  const m = ID_PATTERN.exec(value);
  return m !== null && (prefix === undefined || m[1] === prefix);
}

/** A lease token: 128 random bits, base64url. Presented by a worker to prove it holds the current attempt. */
export function newLeaseToken(): string {
  return take(16).toString('base64url');
}
