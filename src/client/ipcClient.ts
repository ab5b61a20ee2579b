import * as net from 'node:net';
import { SparkqError, errorMessage, isSparkqError } from '../core/errors';
import type { ApiMethod, ChangeEvent, OwnerInfo } from '../api/contract';
import { FrameDecoder, FrameError, FrameTooLargeError, MAX_FRAME_BYTES, checkServerMessage, decodeJson, encodeFrame, isErrorCode } from '../ipc/frames';
import type { ServerMessage, WireError } from '../ipc/protocol';
import { writeDirect } from '../ipc/directWrite';

export interface IpcClientOptions {
  socketPath: string;
  token: string;
  /** How long to wait for the connection and the owner's welcome (default 5 s). */
  timeoutMs?: number;
  /** Who is calling, shown in the owner's log: e.g. `cli`, `worker Back End`. */
  client?: string;
}

const RESOLVED = Promise.resolve();

/** The owner answers at most this many requests of one connection at once; further calls wait here, in order. */
const MAX_IN_FLIGHT = 64;

interface Pending {
  method: ApiMethod;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One connection to the queue owner. `call` sends a request and resolves with its result, or rejects with the
 * SparkqError the owner raised (same code and message). If the connection drops, every pending call rejects with
 * code 'unavailable' and the onClose listeners run with the reason.
 */
/**
 * A handshake that failed after the process behind the socket acted (it closed the connection, or sent what this side
 * cannot read: another version of SparkQ, a token that does not match) carries `answered: true`. That process is
 * alive and serving, so it is never to be mistaken for a hung owner and replaced.
 */
const ANSWERED = { answered: true } as const;

/** Whether a failed connect means the owner answered (it lives, but this client cannot use it); see ANSWERED. */
export function ownerAnswered(e: unknown): boolean {
  return isSparkqError(e) && e.details?.['answered'] === true;
}

export class IpcClient {
  private readonly pending = new Map<number, Pending>();
  /** Calls beyond MAX_IN_FLIGHT, sent as answers come back. */
  private readonly waiting: { id: number; frame: Buffer }[] = [];
  private readonly listeners = new Set<(events: ChangeEvent[]) => void>();
  private readonly closeListeners: ((err?: Error) => void)[] = [];
  private nextId = 1;
  private subscribed = false;
  private closed = false;
  private closeError: Error | undefined;
  /** The owner said bye: no new calls; close once the written ones are answered. */
  private leaving = false;
  /** Frames of the requests made in this turn, written together at its end (see send). */
  private outbox: Buffer[] = [];

  private constructor(
    private readonly socket: net.Socket,
    private readonly decoder: FrameDecoder,
    readonly owner: OwnerInfo,
    private readonly socketPath: string,
  ) {}

  static async connect(opts: IpcClientOptions): Promise<IpcClient> {
    const timeoutMs = opts.timeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    // Bytes read from the socket go to `reader.sink`: the handshake's first, then the client's.
    const reader: Reader = { sink: () => undefined };
    const socket = await openSocket(opts.socketPath, deadline, timeoutMs, reader);
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    const where = opts.socketPath;
    // Frames that arrive after the welcome but before the client is attached are kept and handed over in order.
    let early: Buffer[] | null = null;
    let earlyError: Error | null = null;
    let handshake!: { onData: (chunk: Buffer) => void; onError: (e: Error) => void; onClose: () => void };
    const owner = await new Promise<OwnerInfo>((resolve, reject) => {
      let settled = false;
      const fail = (e: SparkqError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new SparkqError('unavailable', `the queue owner at ${where} did not answer within ${timeoutMs} ms`, { path: where })),
        Math.max(0, deadline - Date.now()),
      );
      handshake = {
        onError: (e: NodeJS.ErrnoException) => {
          const why =
            e.code === 'EPIPE' || e.code === 'ECONNRESET'
              ? `the queue owner at ${where} closed the connection during the handshake (a wrong or stale token, or too many connections?)`
              : `cannot talk to the queue owner at ${where}: ${e.message}`;
          const peerClosed = e.code === 'EPIPE' || e.code === 'ECONNRESET';
          fail(new SparkqError('unavailable', why, { path: where, ...(e.code ? { errno: e.code } : {}), ...(peerClosed ? ANSWERED : {}) }));
        },
        onClose: () =>
          fail(new SparkqError('unavailable', `the queue owner at ${where} closed the connection during the handshake (a wrong or stale token, or too many connections?)`, { path: where, ...ANSWERED })),
        onData: (chunk: Buffer) => {
          let frames: Buffer[];
          try {
            frames = decoder.push(chunk, { borrowed: true });
          } catch (e) {
            if (early !== null) earlyError = e as Error;
            else fail(new SparkqError('unavailable', `the queue owner at ${where} broke the protocol: ${errorMessage(e)}`, { path: where, ...ANSWERED }));
            return;
          }
          if (early !== null) {
            early.push(...frames);
            return;
          }
          if (frames.length === 0) return;
          try {
            const first = parseServerMessage(frames[0]!);
            if (first.t !== 'welcome') throw new FrameError(`the owner's first message was ${first.t}, not welcome`);
            settled = true;
            clearTimeout(timer);
            early = frames.slice(1);
            resolve(first.owner);
          } catch (e) {
            fail(new SparkqError('unavailable', `the queue owner at ${where} broke the protocol: ${errorMessage(e)}`, { path: where, ...ANSWERED }));
          }
        },
      };
      reader.sink = handshake.onData;
      socket.on('error', handshake.onError);
      socket.on('close', handshake.onClose);
      const hello: Record<string, unknown> = { t: 'hello', token: opts.token };
      if (opts.client !== undefined) hello['client'] = opts.client.slice(0, 200);
      socket.write(encodeFrame(hello));
    });
    const client = new IpcClient(socket, decoder, owner, where);
    socket.off('error', handshake.onError);
    socket.off('close', handshake.onClose);
    reader.sink = (chunk) => client.onChunk(chunk);
    client.attach(early ?? [], earlyError);
    return client;
  }

  /**
   * Sends one request. Trailing undefined arguments are dropped (JSON would turn them into null). A request too large
   * for one frame is not sent: `tooLarge`, if given, runs first and may throw the error to reject with instead.
   */
  call(method: ApiMethod, params: unknown[], tooLarge?: () => void): Promise<unknown> {
    if (this.closed) return Promise.reject(this.unavailable());
    if (this.leaving) return Promise.reject(this.handOver());
    const args = [...params];
    while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeFrame({ t: 'req', id, method, params: args });
    } catch (e) {
      if (e instanceof FrameTooLargeError && tooLarge) {
        try {
          tooLarge();
        } catch (better) {
          return Promise.reject(better instanceof Error ? better : new SparkqError('invalid-input', errorMessage(better)));
        }
      }
      const size = e instanceof FrameTooLargeError ? { frameBytes: e.bytes, frameLimit: e.limit } : undefined;
      return Promise.reject(new SparkqError('invalid-input', `cannot send ${method} to the queue owner: ${errorMessage(e)}`, size));
    }
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      if (this.pending.size - this.waiting.length > MAX_IN_FLIGHT) this.waiting.push({ id, frame });
      else this.send(frame);
    });
  }

  /**
   * Requests made in the same turn go out in one write, so the owner reads them together and answers them with one
   * journal flush: a worker sends a task's outcome and its next claim back to back, one fdatasync for both.
   */
  private send(frame: Buffer): void {
    if (this.outbox.push(frame) === 1) void RESOLVED.then(this.flushOutbox);
  }

  /**
   * Writes the frames of the calls made so far in this turn, in one write (see writeDirect). It runs as a promise job queued by
   * the first of them, so calls made together — one after the other in the same synchronous code, even each behind
   * the same number of awaits, as WorkspaceQueue's are — are written together. Not process.nextTick and not
   * cork/uncork: a nextTick makes Node run its JavaScript tick queue after every callback, and cork adds the stream's
   * buffered-write path; with 16 clients the two cost about 12 µs of CPU per call in a client that has made a few
   * thousand calls (unoptimised code), a fifth of its cost (bench/ipc.ts).
   */
  private readonly flushOutbox = (): void => {
    const frames = this.outbox;
    if (frames.length === 0) return;
    this.outbox = [];
    if (this.closed) return;
    writeDirect(this.socket, frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  };

  /** Change events from the owner. The first listener subscribes the connection; returns an unsubscribe function. */
  subscribe(cb: (events: ChangeEvent[]) => void): () => void {
    this.listeners.add(cb);
    if (!this.subscribed && !this.closed) {
      this.subscribed = true;
      this.send(encodeFrame({ t: 'sub' }));
    }
    return () => {
      this.listeners.delete(cb);
    };
  }

  /** Closes the connection; pending calls reject with 'unavailable'. onClose listeners get no error. */
  close(): void {
    this.shutdown(undefined);
  }

  /** Runs `cb` once when the connection ends: with the reason if it dropped, without one after close(). */
  onClose(cb: (err?: Error) => void): void {
    if (this.closed) {
      const err = this.closeError;
      queueMicrotask(() => (err === undefined ? cb() : cb(err)));
      return;
    }
    this.closeListeners.push(cb);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  /** Takes over the socket from the handshake, with the frames (or the decoding error) that arrived in between. */
  private attach(early: Buffer[], earlyError: Error | null): void {
    this.socket.on('error', (e) => this.shutdown(new SparkqError('unavailable', `the connection to the queue owner failed: ${e.message}`)));
    this.socket.on('close', () => this.shutdown(new SparkqError('unavailable', 'the queue owner went away (its process ended or closed the connection)')));
    for (const frame of early) if (!this.closed) this.onFrame(frame);
    if (earlyError) this.shutdown(new SparkqError('unavailable', `the queue owner broke the protocol: ${earlyError.message}`));
    else if (this.socket.destroyed) this.shutdown(new SparkqError('unavailable', 'the queue owner went away (its process ended or closed the connection)'));
  }

  private onChunk(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk, { borrowed: true });
    } catch (e) {
      this.shutdown(new SparkqError('unavailable', `the queue owner broke the protocol: ${errorMessage(e)}`));
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    let m: ServerMessage;
    try {
      m = parseServerMessage(frame);
    } catch (e) {
      this.shutdown(new SparkqError('unavailable', `the queue owner broke the protocol: ${errorMessage(e)}`));
      return;
    }
    if (m.t === 'event') {
      for (const l of [...this.listeners]) {
        try {
          l(m.events);
        } catch {
          // one listener's failure must not affect the connection or the other listeners
        }
      }
      return;
    }
    if (m.t === 'welcome') {
      this.shutdown(new SparkqError('unavailable', 'the queue owner broke the protocol: a second welcome'));
      return;
    }
    if (m.t === 'bye') {
      this.onBye();
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return; // an answer to nothing we asked: ignore rather than tear down every other call
    this.pending.delete(m.id);
    if (this.leaving) {
      if (this.pending.size === 0) this.shutdown(this.handOver());
    } else {
      this.sendWaiting();
    }
    if (m.ok) p.resolve(m.result);
    else p.reject(toSparkqError(m.error));
  }

  private handOver(): SparkqError {
    return new SparkqError('unavailable', 'the queue owner handed over to the next one', { path: this.socketPath, notSent: true, retry: true });
  }

  /**
   * The owner is leaving. Calls not yet written are failed as not sent (safe to send to the next owner); calls
   * already written will all be answered (see ByeMessage), and once they are, this side closes the connection.
   */
  private onBye(): void {
    if (this.leaving) return;
    this.leaving = true;
    const rejection = this.handOver();
    for (const w of this.waiting.splice(0)) {
      const p = this.pending.get(w.id);
      this.pending.delete(w.id);
      p?.reject(new SparkqError('unavailable', `${p.method}: ${rejection.message}`, rejection.details));
    }
    if (this.pending.size === 0) this.shutdown(rejection);
  }

  private sendWaiting(): void {
    while (this.waiting.length > 0 && this.pending.size - this.waiting.length < MAX_IN_FLIGHT) {
      const next = this.waiting.shift()!;
      if (this.pending.has(next.id)) this.send(next.frame);
    }
  }

  /** `notSent`: the request never left this process, so the owner cannot have run it and a retry is safe. */
  private unavailable(): SparkqError {
    return this.closeError instanceof SparkqError
      ? new SparkqError('unavailable', this.closeError.message, { path: this.socketPath, notSent: true })
      : new SparkqError('unavailable', `the connection to the queue owner at ${this.socketPath} is closed`, { path: this.socketPath, notSent: true });
  }

  private shutdown(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.socket.destroy();
    const rejection = this.unavailable();
    const unsent = new Set(this.waiting.map((w) => w.id));
    const calls = [...this.pending.entries()];
    this.pending.clear();
    this.waiting.length = 0;
    for (const [id, p] of calls) {
      // A request that was written may or may not have run before the connection broke; one still waiting here did not.
      p.reject(new SparkqError('unavailable', `${p.method}: ${rejection.message}`, { path: this.socketPath, notSent: unsent.has(id) }));
    }
    this.listeners.clear();
    for (const cb of this.closeListeners.splice(0)) {
      try {
        if (err === undefined) cb();
        else cb(err);
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }
}

/** Where a connection's bytes go; a chunk is only valid during the call (see openSocket). */
interface Reader {
  sink: (chunk: Buffer) => void;
}

/** The read buffer of a connection: answers are small, and a larger frame arrives in several reads. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Connects to the socket. A listener whose accept queue is momentarily full makes a Unix-socket connect fail with
 * EAGAIN (seen with as few as 8 simultaneous connects); that is retried with a short backoff until the deadline.
 *
 * Reads go into one buffer per connection (Node's `onread`), handed to `reader.sink` as a view that is only valid
 * during the call (the FrameDecoder copies what it keeps): no Buffer and no stream machinery per read, which took
 * about a third of a client's CPU per call (measured with 16 clients on 2 cores). There are no 'data' events.
 */
function openSocket(where: string, deadline: number, timeoutMs: number, reader: Reader): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    let delay = 2;
    const attempt = () => {
      const socket = net.createConnection({
        path: where,
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
          callback: (n: number, buf: Uint8Array) => {
            reader.sink(Buffer.from(buf.buffer, buf.byteOffset, n));
            return true; // keep reading
          },
        },
      });
      const onConnect = () => {
        socket.off('error', onError);
        resolve(socket);
      };
      const onError = (e: NodeJS.ErrnoException) => {
        socket.off('connect', onConnect);
        socket.destroy();
        if (e.code === 'EAGAIN' && Date.now() + delay < deadline) {
          setTimeout(attempt, delay);
          delay = Math.min(delay * 2, 100);
          return;
        }
        const why =
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? `no queue owner is listening at ${where}`
            : e.code === 'EAGAIN'
              ? `the queue owner at ${where} accepted no connection within ${timeoutMs} ms`
              : `cannot connect to the queue owner at ${where}: ${e.message}`;
        reject(new SparkqError('unavailable', why, { path: where, ...(e.code ? { errno: e.code } : {}) }));
      };
      socket.once('connect', onConnect);
      socket.once('error', onError);
    };
    attempt();
  });
}

function parseServerMessage(frame: Buffer): ServerMessage {
  return checkServerMessage(decodeJson(frame));
}

function toSparkqError(e: WireError): SparkqError {
  const code = isErrorCode(e.code) ? e.code : 'internal';
  return e.details === undefined ? new SparkqError(code, e.message) : new SparkqError(code, e.message, e.details);
}
