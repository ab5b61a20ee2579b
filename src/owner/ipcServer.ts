import { timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { ApiMethod, OwnerInfo } from '../api/contract';
import { SparkqError, errorMessage } from '../core/errors';
import type { ChangeEvent } from '../api/contract';
import {
  type ClientMessage,
  FrameDecoder,
  FrameTooLargeError,
  IPC_TOKEN_PATTERN,
  MAX_FRAME_BYTES,
  type RequestMessage,
  type WireError,
  decodeJson,
  encodeFrame,
  paramsProblem,
  parseClientMessage,
} from '../ipc/protocol';
import { MAX_HELLO_FRAME_BYTES } from '../ipc/frames';
import { ensurePrivateDir } from '../ipc/socketPath';
import { writeDirect } from '../ipc/directWrite';

export interface IpcServerOptions {
  socketPath: string;
  /** 64 hex characters (see newIpcToken) that every client must present in its hello. */
  token: string;
  /** Runs one QueueApi method; a SparkqError it throws reaches the client with its code. */
  handle: (method: ApiMethod, params: unknown[]) => Promise<unknown>;
  /** Change events from the queue; subscribed while at least one client listens. Returns an unsubscribe function. */
  subscribe: (cb: (events: ChangeEvent[]) => void) => () => void;
  owner: OwnerInfo;
  /** One line per refused connection or internal failure, for the owner's log. */
  log?: (msg: string) => void;
  /**
   * Defaults: 5 s, 256 connections of which 32 not yet authenticated, 64 requests in flight per connection, 10,000
   * undelivered events per subscriber.
   */
  helloTimeoutMs?: number;
  maxConnections?: number;
  maxUnauthenticated?: number;
  maxInFlight?: number;
  maxPendingEvents?: number;
}

// eslint-disable-next-line no-control-regex -- masking control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f\u2028\u2029]/g;
const DEFAULTS = { helloTimeoutMs: 5_000, maxConnections: 256, maxUnauthenticated: 32, maxInFlight: 64, maxPendingEvents: 10_000 };
/** Events per `event` frame, so that a purge of many tasks never builds a frame near the size limit. */
const EVENTS_PER_FRAME = 2_000;
/** A client that stops reading its answers is cut off once this much is waiting to be written to it. */
const MAX_WRITE_BACKLOG = 4 * MAX_FRAME_BYTES;

interface Connection {
  readonly n: number;
  readonly socket: net.Socket;
  readonly decoder: FrameDecoder;
  client: string;
  authed: boolean;
  helloTimer: NodeJS.Timeout | null;
  inFlight: number;
  subscribed: boolean;
  /** Events held back while the socket's write buffer is full; flushed on 'drain'. */
  pendingEvents: ChangeEvent[];
  closed: boolean;
}

/**
 * The owner's end of the IPC socket: authenticates each connection by token, validates every frame, runs requests
 * through `handle` and pushes change events to subscribers. A connection that breaks the protocol in any way is
 * destroyed, with one log line, and nothing else is affected.
 *
 * Peers that have not shown the token get a tiny budget: their first frame (which must be the hello) may declare at
 * most MAX_HELLO_FRAME_BYTES, so a connection reads no more than that before it is authenticated or closed, and at most
 * `maxUnauthenticated` such connections are open at once (more are closed on arrival). Without it, 32 connections
 * each sending one 8 MiB frame of nested brackets before their hello took the owner's memory past 600 MB.
 *
 * Slow subscribers: events are batched per tick; while a subscriber's socket is congested its events wait in memory,
 * and past `maxPendingEvents` the connection is closed rather than events dropped. A client never silently misses a
 * change: either it gets every event or it sees its connection close and must re-read the state.
 */
export class IpcServer {
  private readonly conns = new Set<Connection>();
  private readonly token: Buffer;
  private readonly limits: typeof DEFAULTS;
  private readonly log: (msg: string) => void;
  private nextConn = 1;
  /** Open connections that have not presented the token yet. */
  private unauthenticated = 0;
  private unsubscribe: (() => void) | null = null;
  private batch: ChangeEvent[] = [];
  private batchScheduled = false;
  private closing: Promise<void> | null = null;
  private draining: Promise<void> | null = null;
  /** Set once the drain has said bye to everyone: later connections get their bye right after the welcome. */
  private saidBye = false;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: IpcServerOptions,
  ) {
    this.token = Buffer.from(opts.token, 'utf8');
    this.limits = {
      helloTimeoutMs: opts.helloTimeoutMs ?? DEFAULTS.helloTimeoutMs,
      maxConnections: opts.maxConnections ?? DEFAULTS.maxConnections,
      maxUnauthenticated: opts.maxUnauthenticated ?? DEFAULTS.maxUnauthenticated,
      maxInFlight: opts.maxInFlight ?? DEFAULTS.maxInFlight,
      maxPendingEvents: opts.maxPendingEvents ?? DEFAULTS.maxPendingEvents,
    };
    const log = opts.log;
    // Lines can quote what a peer sent (a key, a client name): control characters are masked so one stays one line.
    this.log = log ? (msg) => log(msg.replace(CONTROL_CHARS, '?').slice(0, 500)) : () => undefined;
  }

  static async listen(opts: IpcServerOptions): Promise<IpcServer> {
    if (!IPC_TOKEN_PATTERN.test(opts.token)) throw new SparkqError('invalid-input', 'the IPC token must be 64 lowercase hex characters (see newIpcToken)');
    const posix = process.platform !== 'win32';
    if (posix) {
      ensurePrivateDir(path.dirname(opts.socketPath));
      await removeStaleSocket(opts.socketPath);
    }
    const server = net.createServer({ pauseOnConnect: false });
    const ipc = new IpcServer(server, opts);
    server.on('connection', (socket) => ipc.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        reject(
          (e as NodeJS.ErrnoException).code === 'EADDRINUSE'
            ? new SparkqError('conflict', `another process is already listening at ${opts.socketPath}`, { path: opts.socketPath })
            : new SparkqError('unavailable', `cannot listen at ${opts.socketPath}: ${errorMessage(e)}`, { path: opts.socketPath }),
        );
      };
      server.once('error', onError);
      // The bind happens synchronously inside listen(); a 077 umask makes the socket 0600 from its first instant,
      // and the chmod below restates it in case the umask could not be set (e.g. in a worker thread).
      const oldMask = posix ? trySetUmask(0o077) : null;
      try {
        server.listen(opts.socketPath, () => {
          server.off('error', onError);
          resolve();
        });
      } finally {
        if (oldMask !== null) trySetUmask(oldMask);
      }
    });
    server.on('error', (e) => ipc.log(`[IPC] server error: ${errorMessage(e)}`));
    if (posix) {
      try {
        fs.chmodSync(opts.socketPath, 0o600);
      } catch (e) {
        await ipc.close();
        throw new SparkqError('unavailable', `cannot make ${opts.socketPath} private: ${errorMessage(e)}`, { path: opts.socketPath });
      }
    }
    return ipc;
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Connections accepted since the server started (pings included). */
  get accepted(): number {
    return this.nextConn - 1;
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  /**
   * A graceful hand-over, while still listening: requests already running finish and are answered; every client then
   * gets a `bye` (see ByeMessage) and closes its end once its calls are answered; requests that arrive meanwhile are
   * refused as not run (`retry: true`) so clients send them to the next owner. Connections made during the drain get
   * their welcome and a `bye` at once — the socket still answers, so nobody mistakes a leaving owner for a dead one.
   * Waits at most `drainMs` for all of it; call close() afterwards.
   */
  drain(drainMs: number): Promise<void> {
    this.draining ??= (async () => {
      this.setSubscribed(false);
      const deadline = Date.now() + drainMs;
      const waitUntil = async (done: () => boolean) => {
        while (Date.now() < deadline && !done()) await new Promise<void>((r) => setTimeout(r, 2));
      };
      await waitUntil(() => ![...this.conns].some((c) => c.inFlight > 0));
      this.saidBye = true;
      for (const c of [...this.conns]) if (c.authed) this.send(c, { t: 'bye' });
      await waitUntil(() => ![...this.conns].some((c) => c.authed));
    })();
    return this.draining;
  }

  /** Stops listening and drops every connection at once (their pending calls fail on the client side). */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.setSubscribed(false);
      this.server.close(() => resolve());
      for (const c of [...this.conns]) this.drop(c, null);
    });
    return this.closing;
  }

  // ---- connections -----------------------------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    const n = this.nextConn++;
    const refused = this.closing
      ? 'the server is closing'
      : this.conns.size >= this.limits.maxConnections
        ? `already ${this.conns.size} connections (the limit)`
        : this.unauthenticated >= this.limits.maxUnauthenticated
          ? `already ${this.unauthenticated} connections waiting for their hello (the limit)`
          : null;
    if (refused !== null) {
      this.log(`[IPC] connection #${n} refused: ${refused}`);
      socket.destroy();
      return;
    }
    const c: Connection = {
      n,
      socket,
      decoder: new FrameDecoder(MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES),
      client: '?',
      authed: false,
      helloTimer: null,
      inFlight: 0,
      subscribed: false,
      pendingEvents: [],
      closed: false,
    };
    this.conns.add(c);
    this.unauthenticated++;
    c.helloTimer = setTimeout(() => this.drop(c, `no hello within ${this.limits.helloTimeoutMs} ms`), this.limits.helloTimeoutMs);
    c.helloTimer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('end', () => {
      if (c.decoder.midFrame) this.drop(c, 'the client ended the connection in the middle of a frame');
      else if (!c.authed) this.drop(c, 'the client ended the connection before its hello');
    });
    socket.on('drain', () => this.flushPendingEvents(c));
    socket.on('error', () => undefined); // 'close' follows; a reset by the peer is not worth a log line
    socket.on('close', () => this.forget(c));
  }

  private onData(c: Connection, chunk: Buffer): void {
    if (c.closed) return;
    let frames: Buffer[];
    try {
      frames = c.decoder.push(chunk);
    } catch (e) {
      this.drop(c, errorMessage(e));
      return;
    }
    for (const body of frames) {
      if (c.closed) return;
      let message: ClientMessage;
      try {
        message = parseClientMessage(decodeJson(body));
      } catch (e) {
        this.drop(c, errorMessage(e));
        return;
      }
      this.onMessage(c, message);
    }
  }

  private onMessage(c: Connection, m: ClientMessage): void {
    if (!c.authed) {
      if (m.t !== 'hello') return this.drop(c, `the first message was ${JSON.stringify(m.t)}, not hello`);
      const presented = Buffer.from(m.token, 'utf8');
      if (presented.length !== this.token.length || !timingSafeEqual(presented, this.token)) return this.drop(c, 'wrong token');
      c.authed = true;
      this.unauthenticated--;
      c.client = m.client ?? '?';
      if (c.helloTimer) clearTimeout(c.helloTimer);
      c.helloTimer = null;
      this.send(c, { t: 'welcome', owner: this.opts.owner });
      if (this.saidBye) this.send(c, { t: 'bye' });
      return;
    }
    switch (m.t) {
      case 'hello':
        return this.drop(c, 'a second hello');
      case 'sub':
        if (!c.subscribed && !this.draining) {
          c.subscribed = true;
          this.setSubscribed(true);
        }
        return;
      case 'req':
        return this.onRequest(c, m);
    }
  }

  private onRequest(c: Connection, req: RequestMessage): void {
    if (this.draining || this.closing) {
      this.send(c, {
        t: 'res',
        id: req.id,
        ok: false,
        error: { code: 'unavailable', message: `the queue owner is shutting down; ${req.method} was not run`, details: { retry: true } },
      });
      return;
    }
    if (c.inFlight >= this.limits.maxInFlight) {
      this.send(c, {
        t: 'res',
        id: req.id,
        ok: false,
        error: { code: 'unavailable', message: `too many requests in flight on one connection (the limit is ${this.limits.maxInFlight}); wait for answers before sending more` },
      });
      return;
    }
    const problem = paramsProblem(req.method, req.params);
    if (problem !== null) {
      this.send(c, { t: 'res', id: req.id, ok: false, error: { code: 'invalid-input', message: problem } });
      return;
    }
    // One promise hop per request: handle() starts right away (its synchronous part — the transaction and the journal
    // append — runs in this turn, in frame order), and a synchronous throw is answered like a rejection.
    let running: Promise<unknown>;
    try {
      running = this.opts.handle(req.method, req.params);
    } catch (e) {
      this.answer(c, req, { t: 'res', id: req.id, ok: false, error: this.wireError(req, e) });
      return;
    }
    c.inFlight++;
    running.then(
      (result) => {
        c.inFlight--;
        this.answer(c, req, { t: 'res', id: req.id, ok: true, result });
      },
      (e: unknown) => {
        c.inFlight--;
        this.answer(c, req, { t: 'res', id: req.id, ok: false, error: this.wireError(req, e) });
      },
    );
  }

  private answer(c: Connection, req: RequestMessage, message: object): void {
    if (c.closed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(message);
    } catch (e) {
      this.log(`[IPC] cannot send the answer to ${req.method} (#${c.n}): ${errorMessage(e)}`);
      const error: WireError = { code: 'internal', message: `the owner could not send the answer to ${req.method}: ${errorMessage(e)}` };
      // The sizes let a client that can ask for less (a smaller page of tasks) ask again.
      if (e instanceof FrameTooLargeError) error.details = { frameBytes: e.bytes, frameLimit: e.limit };
      frame = encodeFrame({ t: 'res', id: req.id, ok: false, error });
    }
    this.write(c, frame);
  }

  private wireError(req: RequestMessage, e: unknown): WireError {
    if (e instanceof SparkqError) {
      const error: WireError = { code: e.code, message: e.message };
      if (e.details !== undefined) {
        try {
          // Details that cannot cross as JSON are left out rather than failing the whole answer.
          if (JSON.stringify(e.details) !== undefined) error.details = e.details;
        } catch {
          // ignored: see above
        }
      }
      return error;
    }
    this.log(`[IPC] ${req.method} failed unexpectedly: ${e instanceof Error && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : errorMessage(e)}`);
    return { code: 'internal', message: errorMessage(e) };
  }

  private send(c: Connection, message: object): void {
    this.write(c, encodeFrame(message));
  }

  private write(c: Connection, frame: Buffer): void {
    if (c.closed) return;
    writeDirect(c.socket, frame);
    if (c.socket.writableLength > MAX_WRITE_BACKLOG) this.drop(c, `the client is not reading (over ${MAX_WRITE_BACKLOG} bytes waiting to be sent)`);
  }

  /** Destroys the connection; `reason` null means a deliberate close that is not worth a log line. */
  private drop(c: Connection, reason: string | null): void {
    if (c.closed) return;
    if (reason !== null) this.log(`[IPC] connection #${c.n} (${c.client}) closed: ${reason}`);
    c.socket.destroy();
    this.forget(c);
  }

  private forget(c: Connection): void {
    if (c.closed) return;
    c.closed = true;
    if (!c.authed) this.unauthenticated--;
    if (c.helloTimer) clearTimeout(c.helloTimer);
    c.helloTimer = null;
    c.pendingEvents = [];
    this.conns.delete(c);
    if (c.subscribed) {
      c.subscribed = false;
      if (![...this.conns].some((x) => x.subscribed)) this.setSubscribed(false);
    }
  }

  // ---- events ----------------------------------------------------------------------------------------------------

  private setSubscribed(on: boolean): void {
    if (on && this.unsubscribe === null && !this.closing && !this.draining) {
      this.unsubscribe = this.opts.subscribe((events) => this.collect(events));
    } else if (!on && this.unsubscribe !== null) {
      const off = this.unsubscribe;
      this.unsubscribe = null;
      off();
    }
  }

  /** Gathers events for one tick, so that a burst of changes goes out as one frame per subscriber. */
  private collect(events: ChangeEvent[]): void {
    if (events.length === 0) return;
    for (const e of events) this.batch.push(e);
    if (this.batchScheduled) return;
    this.batchScheduled = true;
    setImmediate(() => {
      this.batchScheduled = false;
      const batch = this.batch;
      this.batch = [];
      for (const c of this.conns) if (c.subscribed) this.deliver(c, batch);
    });
  }

  private deliver(c: Connection, events: ChangeEvent[]): void {
    if (c.closed) return;
    if (c.socket.writableNeedDrain || c.pendingEvents.length > 0) {
      for (const e of events) c.pendingEvents.push(e);
      if (c.pendingEvents.length > this.limits.maxPendingEvents) {
        this.drop(c, `the subscriber fell behind by more than ${this.limits.maxPendingEvents} events`);
      }
      return;
    }
    for (let i = 0; i < events.length; i += EVENTS_PER_FRAME) this.send(c, { t: 'event', events: events.slice(i, i + EVENTS_PER_FRAME) });
  }

  private flushPendingEvents(c: Connection): void {
    if (c.closed || c.pendingEvents.length === 0 || c.socket.writableNeedDrain) return;
    const events = c.pendingEvents;
    c.pendingEvents = [];
    this.deliver(c, events);
  }
}

function trySetUmask(mask: number): number | null {
  try {
    return process.umask(mask);
  } catch {
    return null; // worker threads cannot change the umask; the chmod after listen still applies
  }
}

/**
 * A socket file left by an owner that died would make listen fail with EADDRINUSE. It is removed only after a connect
 * attempt proves that nothing answers on it; a live listener is reported as a conflict, and anything that is not a
 * socket is left alone.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new SparkqError('conflict', `${socketPath} exists and is not a socket; refusing to replace it. Remove it if it is not needed.`, { path: socketPath });
  }
  const answer = await new Promise<'alive' | 'dead' | Error>((resolve) => {
    const probe = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve('alive'); // accepted into a backlog but slow: someone is there
    }, 1_000);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve('alive');
    });
    probe.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'dead' : e);
    });
  });
  if (answer === 'alive') {
    throw new SparkqError('conflict', `another process is already serving the queue at ${socketPath}`, { path: socketPath });
  }
  if (answer instanceof Error) throw new SparkqError('unavailable', `cannot check the old socket ${socketPath}: ${answer.message}`, { path: socketPath });
  try {
    fs.unlinkSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
