import * as fs from 'node:fs';
import { type ApiMethod, type ChangeEvent, ForwardingQueue, type OwnerInfo, type QueueApi, SAFE_TO_REPEAT, invoke, withIdempotencyKey } from '../api/contract';
import { SparkqError, errorMessage, isSparkqError } from '../core/errors';
import { type LockHolder, readOwner, tryAcquireOwnerLock } from '../owner/lock';
import type * as OwnerModule from '../owner/owner';
import type { OwnerTuning, QueueOwner } from '../owner/owner';
import { readOwnerRecord } from '../owner/record';
import { ensureSparkqDir } from '../owner/workspace';
import { IpcClient, ownerAnswered } from './ipcClient';
import { RemoteQueue } from './remoteQueue';
import type * as TeamHandleModule from './teamHandle';
import { teamStoreOf } from './teamStore';

/**
 * How to reach the queue; the OwnerTuning fields are passed to the owner this process may become. The CLI's syncOn is
 * 'event-loop'; the extension host keeps the default ('thread-pool'), so that a slow disk never stalls other extensions.
 */
export interface OpenOptions extends OwnerTuning {
  /** What this process is, as the owner record and logs show it: `cli`, `serve`, `worker`, `extension`, … */
  role: string;
  /** Shown in the owner's log for connections from this process (default: the role). */
  client?: string;
  /** How long to keep trying to reach or become the owner before giving up (default 15 s). */
  timeoutMs?: number;
  /** Called once, right before this process takes the lock's owner part on (loads the owner's code, sql.js). */
  beforeOwning?: () => void;
  /**
   * When this process owns the queue at close: first keep serving the other processes that came to it — while any
   * is connected, and for `graceMs` after the last one left, `maxMs` at most — if any came at all. For a short CLI
   * command: with several agents and no long-lived owner, the commands that arrive while one owns are its clients,
   * instead of each taking the queue over in turn (loading the owner's code, sql.js and the store every time).
   */
  linger?: { graceMs: number; maxMs: number };
  /**
   * Where SPARKQ_SOCKET and SPARKQ_TOKEN may name the owner directly (a worker terminal opened by VS Code gets them,
   * with SPARKQ_WORKSPACE). Tried first when SPARKQ_WORKSPACE is this workspace; when that owner has gone, the lock
   * and owner.json say who owns the queue now.
   */
  env?: NodeJS.ProcessEnv;
}

/** The workspace queue as one process uses it, whoever owns it at the moment. */
export interface QueueHandle extends QueueApi {
  readonly workspaceDir: string;
  /** Whether this process owns the queue right now (it may change after a hand-over). */
  readonly isOwner: boolean;
  /** Who owned the queue when this handle last reached it. */
  readonly ownerInfo: OwnerInfo;
  /** Called after the handle switched to another owner (or became it); listeners should re-read what they show. */
  onReconnect(cb: () => void): () => void;
  /** When this process owns the queue: the owner itself (its socket, reload, log); null for a client. */
  readonly owner: QueueOwner | null;
  /** Ends the connection, or — when this process owns — hands ownership over gracefully. */
  close(): Promise<void>;
}

/**
 * A live holder that does not complete a handshake within this long is taken to be hung and is replaced. Generous,
 * because replacing an owner that is merely slow (a busy machine) costs far more than waiting: the handshake needs
 * only its event loop, and the owner never blocks it for long.
 */
const PING_TIMEOUT_MS = 5_000;

type Backend = { kind: 'owner'; owner: QueueOwner } | { kind: 'remote'; client: IpcClient; remote: RemoteQueue };

const TUNING: readonly (keyof OwnerTuning)[] = ['clock', 'durability', 'syncOn', 'log', 'sweepIntervalMs', 'watchConfig'];
/** The OwnerTuning fields of `o` that are set (an absent option is absent, not undefined). */
function tuningOf(o: OwnerTuning): OwnerTuning {
  const out: Record<string, unknown> = {};
  for (const k of TUNING) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function samePath(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The owner's module (store, sql.js glue, config parser, IPC server), for the process that takes the lock. A require,
 * not an import: the bundle then evaluates that code on this call only, and a client never pays for it.
 */
function loadOwnerModule(): typeof OwnerModule {
  ownerLoaded = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../owner/owner') as typeof OwnerModule;
}
let ownerLoaded = false;

/** Whether this process loaded the owner's code (it owned the queue at some point): the CLI's code cache asks. */
export function ownerCodeLoaded(): boolean {
  return ownerLoaded;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Reaches the live owner of `workspaceDir`'s queue over IPC, or becomes the owner when there is none. The handle
 * survives a change of owner: when the owner goes away, the next call reaches (or becomes) the next one. Calls that
 * provably did not run (refused during a hand-over, never sent) and read-only calls are retried there; a mutation
 * that was in flight when the connection broke is reported as 'unavailable' with a note that it may have taken effect.
 */
export async function openQueue(workspaceDir: string, options: OpenOptions): Promise<QueueHandle> {
  // Team mode (sparkq.yml: store.kind postgres): a client of the team database, with no owner, lock or socket.
  const team = teamStoreOf(workspaceDir, options.env ?? process.env);
  if (team) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads pg only for a team workspace
    const { openTeamQueue } = require('./teamHandle') as typeof TeamHandleModule;
    return openTeamQueue(workspaceDir, team, options);
  }
  const handle = new WorkspaceQueue(workspaceDir, options);
  await handle.connect();
  return handle;
}

class WorkspaceQueue extends ForwardingQueue implements QueueHandle {
  private backend: Backend | null = null;
  private connecting: Promise<Backend> | null = null;
  private readonly sparkqDir: string;
  private readonly listeners = new Set<(events: ChangeEvent[]) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private unsubscribeBackend: (() => void) | null = null;
  private lastOwner: OwnerInfo | null = null;
  private triedEnv = false;
  private closed = false;

  constructor(
    readonly workspaceDir: string,
    private readonly opts: OpenOptions,
  ) {
    super();
    this.sparkqDir = ensureSparkqDir(workspaceDir);
  }

  get isOwner(): boolean {
    return this.backend?.kind === 'owner' && !this.backend.owner.isLost;
  }

  get ownerInfo(): OwnerInfo {
    if (!this.lastOwner) throw new SparkqError('unavailable', 'the queue has not been reached yet');
    return { ...this.lastOwner };
  }

  async connect(): Promise<void> {
    await this.ensure();
  }

  private ensure(): Promise<Backend> {
    if (this.closed) return Promise.reject(new SparkqError('closed', 'this queue handle was closed'));
    if (this.backend) return Promise.resolve(this.backend);
    this.connecting ??= this.reach().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** One loop of: connect to the recorded owner → else take the lock → else wait for the holder to start serving. */
  private async reach(): Promise<Backend> {
    const env = this.opts.env ?? process.env;
    const socketPath = env['SPARKQ_SOCKET'];
    const token = env['SPARKQ_TOKEN'];
    // Only for the workspace they were given for: a shell inside a worker terminal may open another workspace.
    const forHere = env['SPARKQ_WORKSPACE'] !== undefined && samePath(env['SPARKQ_WORKSPACE'], this.workspaceDir);
    if (!this.triedEnv && socketPath && token && forHere) {
      this.triedEnv = true;
      try {
        const client = await IpcClient.connect({ socketPath, token, timeoutMs: 2_000, client: this.opts.client ?? this.opts.role });
        return this.attach({ kind: 'remote', client, remote: new RemoteQueue(client) });
      } catch {
        // That owner is gone (or the values are stale): find the current one the usual way.
      }
    }
    const timeoutMs = this.opts.timeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    let lastProblem = '';
    let lastAnswered = false;
    let lastHolder: LockHolder;
    for (let round = 0; ; round++) {
      const holder = readOwner(this.sparkqDir);
      if (holder?.socketPath) {
        const remote = await this.tryConnect(holder, Math.min(2_000, Math.max(200, deadline - Date.now())));
        if (remote.ok) return this.attach(remote.backend);
        lastProblem = remote.problem;
        lastAnswered = remote.answered;
      }
      const r = await tryAcquireOwnerLock(this.sparkqDir, {
        role: this.opts.role,
        ping: (h) => this.ping(h),
        pingTimeoutMs: PING_TIMEOUT_MS,
      });
      if ('lock' in r) {
        // Loaded only now: a client of a live owner never evaluates the store, sql.js or the config parser.
        if (!ownerLoaded) this.opts.beforeOwning?.();
        const { QueueOwner } = loadOwnerModule();
        const owner = await QueueOwner.start({
          workspaceDir: this.workspaceDir,
          lock: r.lock,
          role: this.opts.role,
          ...tuningOf(this.opts),
        });
        return this.attach({ kind: 'owner', owner });
      }
      lastHolder = r.holder;
      if (Date.now() >= deadline) break;
      // The holder is alive and still starting (no socket yet), or its socket refused us a moment ago. Looked at again
      // soon: it serves once it has opened the store, and this command is then its client (see OpenOptions.linger).
      await sleep(Math.min(10 * (round + 1), 50));
    }
    const who = `process ${lastHolder.pid} (${lastHolder.role}, owner since ${lastHolder.acquiredAt})`;
    throw new SparkqError(
      'unavailable',
      lastAnswered
        ? `cannot use the queue owner: ${who} holds the lock in ${this.sparkqDir} and answers, but not in a way this sparkq understands (${lastProblem}). ` +
            'Is it another version of SparkQ? Stop it (or update one side); the next command takes over.'
        : `cannot reach the queue owner: ${who} holds the lock in ${this.sparkqDir} but did not answer within ${timeoutMs} ms` +
            (lastProblem ? ` (${lastProblem})` : '') +
            '. If that process is hung, end it; the next command takes over.',
      { pid: lastHolder.pid, role: lastHolder.role },
    );
  }

  private async tryConnect(holder: LockHolder, timeoutMs: number): Promise<{ ok: true; backend: Backend } | { ok: false; problem: string; answered: boolean }> {
    const rec = readOwnerRecord(this.sparkqDir);
    if (!rec || rec.generation !== holder.generation || rec.socketPath !== holder.socketPath) {
      return { ok: false, problem: 'its owner.json does not match its lock yet', answered: false };
    }
    try {
      const client = await IpcClient.connect({ socketPath: rec.socketPath, token: rec.token, timeoutMs, client: this.opts.client ?? this.opts.role });
      return { ok: true, backend: { kind: 'remote', client, remote: new RemoteQueue(client) } };
    } catch (e) {
      return { ok: false, problem: errorMessage(e), answered: ownerAnswered(e) };
    }
  }

  /** Liveness of a lock holder whose pid is alive: it answers a handshake on its socket, or is still starting. */
  private async ping(holder: LockHolder): Promise<boolean> {
    if (!holder.socketPath) return true; // alive and still opening the store: not stale
    const rec = readOwnerRecord(this.sparkqDir);
    if (!rec || rec.generation !== holder.generation) return false;
    try {
      const client = await IpcClient.connect({ socketPath: rec.socketPath, token: rec.token, timeoutMs: PING_TIMEOUT_MS, client: 'ping' });
      client.close();
      return true;
    } catch (e) {
      // It answered, in a way this build cannot use (another version, a token mismatch): alive, not hung. Taking over
      // from it would only let one broken client steal the queue from every working one.
      if (ownerAnswered(e)) return true;
      throw e;
    }
  }

  private attach(b: Backend): Backend {
    if (this.closed) {
      void this.releaseBackend(b);
      throw new SparkqError('closed', 'this queue handle was closed');
    }
    const isSwitch = this.lastOwner !== null;
    this.backend = b;
    this.lastOwner = b.kind === 'owner' ? { ...b.owner.info } : { ...b.client.owner };
    if (b.kind === 'remote') {
      b.client.onClose(() => this.lose(b));
    } else {
      b.owner.onLost(() => this.lose(b));
    }
    if (this.listeners.size > 0) this.subscribeBackend(b);
    if (isSwitch) {
      for (const cb of [...this.reconnectListeners]) {
        try {
          cb();
        } catch {
          // one listener's failure must not stop the others
        }
      }
    }
    return b;
  }

  private subscribeBackend(b: Backend): void {
    this.unsubscribeBackend?.();
    const fan = (events: ChangeEvent[]) => {
      for (const l of [...this.listeners]) {
        try {
          l(events);
        } catch {
          // see above
        }
      }
    };
    this.unsubscribeBackend = b.kind === 'owner' ? b.owner.onChange(fan) : b.remote.onChange(fan);
  }

  /** The backend broke (connection closed, ownership lost). Subscribers get reconnected at once; others on next use. */
  private lose(b: Backend): void {
    if (this.backend !== b) return;
    this.backend = null;
    this.unsubscribeBackend = null;
    if (!this.closed && this.listeners.size > 0) {
      setTimeout(() => {
        if (!this.closed && !this.backend) this.ensure().catch(() => undefined);
      }, 50).unref();
    }
  }

  private async run<T>(method: ApiMethod, call: (api: QueueApi) => Promise<T>, repeatable = SAFE_TO_REPEAT.has(method)): Promise<T> {
    // A hand-over takes as long as the leaving owner's last snapshot; calls that did not run wait that out.
    const deadline = Date.now() + (this.opts.timeoutMs ?? 15_000);
    for (let switches = 1; ; switches++) {
      const b = await this.ensure();
      const api: QueueApi = b.kind === 'owner' ? b.owner : b.remote;
      try {
        return await call(api);
      } catch (e) {
        if (!isSparkqError(e, 'unavailable')) throw e;
        const d = e.details ?? {};
        const didNotRun = d['retry'] === true || d['notSent'] === true;
        // Only a broken backend is worth switching; an 'unavailable' the owner raised on purpose passes through.
        const broken = b.kind === 'remote' ? b.client.isClosed : b.owner.isLost;
        if (!broken && d['retry'] !== true) throw e;
        // A connection the owner is winding down closes itself once its other calls are answered.
        this.lose(b);
        if (Date.now() > deadline) throw e;
        if (!didNotRun && !repeatable) {
          throw new SparkqError(
            'unavailable',
            `the queue owner went away while ${method} was in flight, so it may or may not have taken effect; ` +
              'check with `sparkq tasks` before repeating it',
            { method, mayHaveRun: true },
          );
        }
        await sleep(Math.min(5 * switches, 100));
      }
    }
  }

  protected forward(method: ApiMethod, params: unknown[]): Promise<unknown> {
    // A call that makes something carries an idempotency key (one is made when the caller gave none), so that it can
    // be repeated on the next owner when its answer was lost: the repeat returns what the first call made.
    const keyed = withIdempotencyKey(method, params);
    if (keyed) return this.run(method, (api) => invoke(api, method, keyed), true);
    return this.run(method, (api) => invoke(api, method, params));
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1 && this.backend) this.subscribeBackend(this.backend);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.unsubscribeBackend?.();
        this.unsubscribeBackend = null;
      }
    };
  }

  onReconnect(cb: () => void): () => void {
    this.reconnectListeners.add(cb);
    return () => this.reconnectListeners.delete(cb);
  }

  /** When this process owns, the owner object itself (e.g. for `sparkq serve` to report its socket). */
  get owner(): QueueOwner | null {
    return this.backend?.kind === 'owner' ? this.backend.owner : null;
  }

  private async releaseBackend(b: Backend): Promise<void> {
    if (b.kind === 'owner') await b.owner.close();
    else b.client.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.connecting;
    if (pending) await pending.catch(() => undefined);
    const b = this.backend;
    if (b?.kind === 'owner' && this.opts.linger) await lingerWhileWanted(b.owner, this.opts.linger);
    this.backend = null;
    this.unsubscribeBackend?.();
    this.unsubscribeBackend = null;
    if (b) await this.releaseBackend(b);
  }
}

/** See OpenOptions.linger. Returns at once when no other process has connected to `owner`. */
async function lingerWhileWanted(owner: QueueOwner, { graceMs, maxMs }: { graceMs: number; maxMs: number }): Promise<void> {
  const start = Date.now();
  let idleSince = start;
  while (!owner.isLost && owner.clients.ever > 0) {
    const now = Date.now();
    if (owner.clients.now > 0) idleSince = now;
    else if (now - idleSince >= graceMs) return;
    if (now - start >= maxMs) return;
    await sleep(5);
  }
}
