import * as net from 'node:net';
import type { ApiMethod, OwnerInfo } from '../../src/api/contract';
import { systemClock } from '../../src/core/clock';
import { ScriptIndex } from '../../src/core/scriptIndex';
import { Housekeeping } from '../../src/owner/housekeeping';
import { ownerDispatch } from '../../src/owner/ownerApi';
import { WorkerPlaces } from '../../src/owner/workerPlaces';
import type { QueueService } from '../../src/core/queue/service';
import { FRAME_HEADER_BYTES, FrameDecoder, newIpcToken } from '../../src/ipc/protocol';
import { socketPathFor } from '../../src/ipc/socketPath';
import { IpcServer, type IpcServerOptions } from '../../src/owner/ipcServer';
import { testQueue } from './queue';

/** The owner's own dispatcher over a bare QueueService: what the real owner serves, without its lock and timers. */
export function serviceHandler(q: QueueService, owner: OwnerInfo): (method: ApiMethod, params: unknown[]) => Promise<unknown> {
  const housekeeping = new Housekeeping(q, systemClock, () => undefined, () => true);
  return ownerDispatch({ info: owner, service: q, housekeeping, places: new WorkerPlaces(), scriptIndex: new ScriptIndex([]) });
}

export interface IpcOwner {
  q: QueueService;
  server: IpcServer;
  socketPath: string;
  token: string;
  owner: OwnerInfo;
  logs: string[];
  stop: () => Promise<void>;
}

/** A real QueueService (fsync'd journal) in a temp folder behind a real IpcServer on a real socket (from socketPathFor). */
export async function startIpcOwner(extra: Partial<IpcServerOptions> = {}): Promise<IpcOwner> {
  const env = await testQueue({ durability: 'full' });
  const token = newIpcToken();
  const owner: OwnerInfo = { pid: process.pid, generation: 1, role: 'test', since: new Date().toISOString() };
  const socketPath = socketPathFor(env.dir, 1);
  const logs: string[] = [];
  const server = await IpcServer.listen({
    socketPath,
    token,
    owner,
    handle: serviceHandler(env.q, owner),
    subscribe: (cb) => env.q.onChange(cb),
    log: (m) => logs.push(m),
    ...extra,
  });
  return {
    q: env.q,
    server,
    socketPath,
    token,
    owner,
    logs,
    stop: async () => {
      await server.close();
      await env.q.close().catch(() => undefined);
      env.cleanup();
    },
  };
}

export function frame(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
}

/** A hand-driven connection for protocol tests: write raw bytes, see decoded replies and whether it closed. */
export interface RawConnection {
  socket: net.Socket;
  /** Parsed JSON of every frame received. */
  received: Record<string, unknown>[];
  closed: Promise<void>;
  isClosed: () => boolean;
  write: (bytes: Buffer) => void;
  /** Resolves with the next frame received (or rejects when the connection closes first). */
  next: () => Promise<Record<string, unknown>>;
}

/** Connects, retrying while the listener's accept queue is full (EAGAIN), as IpcClient does. */
export async function rawConnect(socketPath: string): Promise<RawConnection> {
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      return await rawConnectOnce(socketPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function rawConnectOnce(socketPath: string): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const decoder = new FrameDecoder();
    const received: Record<string, unknown>[] = [];
    const waiters: { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
    let closed = false;
    let delivered = 0;
    const pump = () => {
      while (waiters.length > 0 && delivered < received.length) waiters.shift()!.resolve(received[delivered++]!);
      if (closed) for (const w of waiters.splice(0)) w.reject(new Error('closed'));
    };
    const closedP = new Promise<void>((res) => socket.on('close', () => ((closed = true), pump(), res())));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) received.push(JSON.parse(f.toString('utf8')) as Record<string, unknown>);
      pump();
    });
    socket.once('connect', () =>
      resolve({
        socket,
        received,
        closed: closedP,
        isClosed: () => closed,
        write: (bytes) => {
          if (!closed && !socket.destroyed) socket.write(bytes);
        },
        next: () =>
          new Promise((res, rej) => {
            waiters.push({ resolve: res, reject: rej });
            pump();
          }),
      }),
    );
    socket.once('error', reject);
  });
}

/** Resolves true if `p` settles within `ms`, false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((res) => (timer = setTimeout(() => res(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
