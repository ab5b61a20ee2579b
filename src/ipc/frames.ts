import type { ErrorCode } from '../core/errors';
import type { ServerMessage } from './protocol';

/*
 * The part of the wire every client runs: frames (a 4-byte big-endian length, then that many bytes of UTF-8 JSON)
 * and the client's check of the owner's messages. No zod here: a client of a live owner validates nothing with
 * schemas, and a short CLI command would otherwise spend more time building them than talking to the owner.
 * protocol.ts (the messages, the schemas the owner checks clients with) re-exports all of it.
 */

/** Large enough for a 256 KiB prompt or 1 MiB of result data as JSON (escaping can multiply it), small enough to cap. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;
export const FRAME_HEADER_BYTES = 4;
/**
 * The first frame of a connection must be its hello (under 300 bytes: a 64-character token and a client name of at
 * most 200 characters), so the owner reads no more than this from a peer that has not shown the token yet.
 */
export const MAX_HELLO_FRAME_BYTES = 4 * 1024;

/** Every ErrorCode, so that a code arriving over the wire can be checked; `satisfies` keeps it exhaustive. */
const ERROR_CODES = {
  'invalid-input': true,
  'not-found': true,
  conflict: true,
  'lease-mismatch': true,
  config: true,
  corrupt: true,
  'store-failed': true,
  internal: true,
  unavailable: true,
  closed: true,
} as const satisfies Record<ErrorCode, true>;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const CHANGE_KINDS: ReadonlySet<unknown> = new Set(['session', 'queue', 'task']);

/**
 * The client's check of a message from the owner: a light structural one, not the zod schema (ServerMessage in
 * protocol.ts). The owner is the
 * party a client chose to trust (it proved it holds the lock and knows the token file's secret), and it validated
 * every input itself; what a client must still be sure of is the envelope it dispatches on — the kind of message, an
 * answer's id and outcome, an error's code and message, the events' kinds and ids — so that a broken or foreign peer
 * is detected as a protocol error rather than crashing the caller. Results are passed through as the owner made them
 * (RemoteQueue documents this). This runs on every answer in every client process, where code runs cold; the zod
 * union cost more than the rest of a round trip's JavaScript together.
 */
export function checkServerMessage(v: unknown): ServerMessage {
  if (!isObject(v)) throw new FrameError('invalid message: not an object');
  switch (v['t']) {
    case 'res': {
      if (!isId(v['id'])) throw new FrameError('invalid message: id: not a request id');
      if (v['ok'] === true) return v as ServerMessage;
      if (v['ok'] !== false) throw new FrameError('invalid message: ok: not a boolean');
      const e = v['error'];
      if (!isObject(e) || typeof e['code'] !== 'string' || typeof e['message'] !== 'string') throw new FrameError('invalid message: error: not a {code, message} object');
      if (e['details'] !== undefined && !isObject(e['details'])) throw new FrameError('invalid message: error.details: not an object');
      return v as ServerMessage;
    }
    case 'event': {
      const events = v['events'];
      if (!Array.isArray(events)) throw new FrameError('invalid message: events: not an array');
      for (const e of events as unknown[]) {
        if (!isObject(e) || !CHANGE_KINDS.has(e['kind']) || typeof e['id'] !== 'string') throw new FrameError('invalid message: events: not change events');
        if (e['kind'] === 'task' && (typeof e['queueId'] !== 'string' || typeof e['status'] !== 'string')) throw new FrameError('invalid message: events: a task event without queueId and status');
      }
      return v as ServerMessage;
    }
    case 'welcome': {
      // Once per connection, all of it: the owner it names is what the client reports and reconnects by. The same
      // check as WelcomeMessage in protocol.ts (unknown keys dropped), by hand so that zod stays out of clients.
      const o = v['owner'];
      if (!isObject(o)) throw new FrameError('invalid message: owner: not an object');
      const { pid, generation, role, since } = o;
      if (typeof pid !== 'number' || !Number.isSafeInteger(pid)) throw new FrameError('invalid message: owner.pid: not an integer');
      if (typeof generation !== 'number' || !Number.isSafeInteger(generation)) throw new FrameError('invalid message: owner.generation: not an integer');
      if (typeof role !== 'string') throw new FrameError('invalid message: owner.role: not a string');
      if (typeof since !== 'string') throw new FrameError('invalid message: owner.since: not a string');
      return { t: 'welcome', owner: { pid, generation, role, since } };
    }
    case 'bye':
      return { t: 'bye' };
    default:
      throw new FrameError(`invalid message: t: ${JSON.stringify(v['t'])?.slice(0, 40) ?? 'missing'} is not an owner message`);
  }
}

// ---- frames ------------------------------------------------------------------------------------------------------

/** A frame that breaks the protocol; the connection it came from cannot be trusted to stay in sync and is closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** A message that does not fit in one frame: nothing of it was sent. */
export class FrameTooLargeError extends FrameError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`the message is ${bytes} bytes as JSON; the limit per frame is ${limit}`);
    this.name = 'FrameTooLargeError';
  }
}

/** Serialises `message` into one frame; throws FrameError if it has no JSON form, FrameTooLargeError if too long. */
export function encodeFrame(message: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const json = JSON.stringify(message);
  if (json === undefined) throw new FrameError('the message has no JSON form');
  const length = Buffer.byteLength(json, 'utf8');
  if (length > maxBytes) throw new FrameTooLargeError(length, maxBytes);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, FRAME_HEADER_BYTES, 'utf8');
  return frame;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a frame body as strict UTF-8 JSON; throws FrameError on either failure. */
export function decodeJson(body: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new FrameError('the frame is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FrameError(`the frame is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

const SMALL_CHUNK_BYTES = 4 * 1024;
const SLAB_BYTES = 64 * 1024;

/**
 * Splits a byte stream into frame bodies. Chunks are kept as a list and copied once, when a whole frame is there, so
 * a large frame arriving in many small chunks costs linear time. A declared length of 0 or above the limit throws as
 * soon as the 4 header bytes have arrived, before any of the body is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read, once its header is in; null while waiting for a header. */
  private expected: number | null = null;
  private failed = false;
  /** Staging area for small chunks; bytes in slab[slabStart, slabEnd) come after every entry of `chunks`. */
  private slab: Buffer | null = null;
  private slabStart = 0;
  private slabEnd = 0;
  /** The limit for the next frame's declared length: `firstFrameMaxBytes` until a first header was accepted. */
  private limit: number;

  /** `firstFrameMaxBytes`: a lower limit for the first frame only (the owner's hello, read before the peer is known). */
  constructor(
    private readonly maxBytes = MAX_FRAME_BYTES,
    firstFrameMaxBytes = maxBytes,
  ) {
    this.limit = firstFrameMaxBytes;
  }

  /** Bytes held that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** True while a frame has begun (some of its header or body arrived) but has not completed. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.expected !== null;
  }

  /**
   * Adds `chunk` and returns the frame bodies it completes, in order. After a throw the decoder stays failed.
   * `borrowed`: the chunk's bytes are reused after this call (a read buffer), so whatever is kept is copied.
   */
  push(chunk: Buffer, options: { borrowed?: boolean } = {}): Buffer[] {
    if (this.failed) throw new FrameError('the stream already broke the protocol');
    const frames: Buffer[] = [];
    if (this.buffered === 0 && this.expected === null) {
      // Nothing held (the usual case: a read holds whole frames): frames at the start of the chunk are cut out of it
      // directly, without staging them in the slab; a partial frame at its end goes the general way below.
      let off = 0;
      while (chunk.length - off >= FRAME_HEADER_BYTES) {
        const length = chunk.readUInt32BE(off);
        if (length === 0 || length > this.limit) this.refuse(length);
        this.limit = this.maxBytes;
        const end = off + FRAME_HEADER_BYTES + length;
        if (end > chunk.length) break;
        const body = chunk.subarray(off + FRAME_HEADER_BYTES, end);
        // Copied when the chunk is reused after this call, or when a view would pin much more than the frame.
        frames.push(options.borrowed || chunk.length - length > SMALL_CHUNK_BYTES ? Buffer.from(body) : body);
        off = end;
      }
      if (off === chunk.length) return frames;
      if (off > 0) chunk = chunk.subarray(off);
    }
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.sealSlab();
      this.chunks.push(options.borrowed ? Buffer.from(chunk) : chunk);
    } else if (chunk.length > 0) {
      // A peer trickling bytes would otherwise leave one Buffer object per byte; small chunks are copied side by side
      // into a slab instead, so the chunk count stays proportional to bytes / SMALL_CHUNK_BYTES.
      if (this.slab === null || this.slab.length - this.slabEnd < chunk.length) {
        this.sealSlab();
        this.slab = Buffer.allocUnsafe(SLAB_BYTES);
        this.slabStart = this.slabEnd = 0;
      }
      chunk.copy(this.slab, this.slabEnd);
      this.slabEnd += chunk.length;
    }
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected === null) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        this.sealSlab();
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length === 0 || length > this.limit) this.refuse(length);
        this.limit = this.maxBytes;
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      this.sealSlab();
      frames.push(this.take(this.expected));
      this.expected = null;
    }
    return frames;
  }

  /** A declared length of 0 or over the limit: the decoder fails for good, holding nothing. */
  private refuse(length: number): never {
    this.failed = true;
    this.chunks = [];
    this.slab = null;
    this.buffered = 0;
    if (length === 0) throw new FrameError('empty frame');
    if (length > this.maxBytes) throw new FrameError(`frame of ${length} bytes is over the ${this.maxBytes}-byte limit`);
    throw new FrameError(`frame of ${length} bytes is over the ${this.limit}-byte limit for the first frame (the hello)`);
  }

  /** Moves the slab's unsealed bytes to the end of `chunks`, keeping its spare room for the next small chunks. */
  private sealSlab(): void {
    if (this.slab !== null && this.slabEnd > this.slabStart) {
      this.chunks.push(this.slab.subarray(this.slabStart, this.slabEnd));
      this.slabStart = this.slabEnd;
    }
  }

  /** Removes and returns the first `n` bytes of `chunks` (n ≤ their total, the slab sealed). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      // Copy: a small frame must not pin a large socket chunk in memory through a view.
      return Buffer.from(first.subarray(0, n));
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
