import { type ChildProcess, spawn } from 'node:child_process';

/*
 * Starting a tool process from the worker costs a fork of the worker: with the queue's database in memory that is a
 * ~100 MB process, and the fork (copying its page tables), the child's exec (tearing them down again) and the
 * copy-on-write faults after it take about 3 ms of CPU per task (measured here), with the worker's event loop blocked
 * in uv_spawn until the child has exec'd — more than the whole run of a trivial script. So a worker starts its tools
 * through a small helper process of its own ("sparkq-spawner": this Node with a few lines of script, a fraction of the
 * memory), which forks cheaply and relays each tool's output, exit and pid; everything else stays in the worker:
 * the process group is still the tool's own (detached), and stopping it is still the worker signalling that group.
 *
 * Protocol, one JSON object per line. Worker → helper: {id, command, args, cwd, set, unset, stdin|null}, the
 * environment as what differs from the helper's own (the worker's at the helper's start). Helper → worker:
 * {id, t:'spawn', pid|null}, then {id, t:'data', s:1|2, d} (stdout/stderr, UTF-8 decoded per stream),
 * {id, t:'error', code, message}, and last {id, t:'close', code, signal} — the same events, in the same order, as a
 * ChildProcess gives. The helper exits when its stdin ends (the worker finished or died); tools it started are in
 * their own sessions and are not touched by that, just as a worker's own death does not touch them.
 */
const HELPER_SOURCE = `'use strict';
process.title = 'sparkq-spawner';
const { spawn } = require('child_process');
// The worker went away (a drain that found nothing exits before this helper says ready): there is no one to tell.
process.stdout.on('error', () => process.exit(0));
const kids = new Map();
// process.env read once: each read of it is a call into the C library per variable, and it does not change here.
const baseEnv = Object.assign({}, process.env);
let paused = false;
function send(m) {
  if (process.stdout.write(JSON.stringify(m) + '\\n') || paused) return;
  paused = true;
  for (const c of kids.values()) { c.stdout.pause(); c.stderr.pause(); }
  process.stdout.once('drain', () => {
    paused = false;
    for (const c of kids.values()) { c.stdout.resume(); c.stderr.resume(); }
  });
}
function run(m) {
  let c;
  try {
    const env = Object.assign({}, baseEnv, m.set);
    for (const k of m.unset) delete env[k];
    c = spawn(m.command, m.args, { cwd: m.cwd, env, stdio: [m.stdin === null ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true, shell: false, windowsHide: true });
  } catch (e) {
    send({ id: m.id, t: 'spawn', pid: null });
    send({ id: m.id, t: 'error', code: e && e.code, message: String(e && e.message) });
    send({ id: m.id, t: 'close', code: null, signal: null });
    return;
  }
  send({ id: m.id, t: 'spawn', pid: c.pid === undefined ? null : c.pid });
  kids.set(m.id, c);
  c.stdout.setEncoding('utf8').on('data', (d) => send({ id: m.id, t: 'data', s: 1, d }));
  c.stderr.setEncoding('utf8').on('data', (d) => send({ id: m.id, t: 'data', s: 2, d }));
  if (paused) { c.stdout.pause(); c.stderr.pause(); }
  if (m.stdin !== null && c.stdin) { c.stdin.on('error', () => {}); c.stdin.end(m.stdin); }
  c.on('error', (e) => send({ id: m.id, t: 'error', code: e.code, message: e.message }));
  c.on('close', (code, signal) => { kids.delete(m.id); send({ id: m.id, t: 'close', code, signal }); });
}
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line !== '') run(JSON.parse(line));
  }
});
process.stdin.on('end', () => process.exit(0));
send({ t: 'ready' });
`;

export interface SpawnRequest {
  command: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written to the process's stdin, which is then closed; without it stdin is /dev/null. */
  stdin?: string;
}

/** A tool process started by the helper: the events of a ChildProcess that runProcess uses, set once each. */
export interface RemoteChild {
  onSpawn: (pid: number | undefined) => void;
  onData: (chunk: string, stream: 'stdout' | 'stderr') => void;
  onError: (e: { code?: string; message: string }) => void;
  onClose: (code: number | null, signal: NodeJS.Signals | null) => void;
}

type Message =
  | { id?: undefined; t: 'ready' }
  | { id: number; t: 'spawn'; pid: number | null }
  | { id: number; t: 'data'; s: 1 | 2; d: string }
  | { id: number; t: 'error'; code?: string; message: string }
  | { id: number; t: 'close'; code: number | null; signal: NodeJS.Signals | null };

const noop = () => undefined;

/**
 * The worker's side of the helper: started on first use (or by `start()`), restarted on the next use if it ended;
 * `close()` ends it. Not on Windows, where a spawn is not a fork: `spawn()` then returns null, as it does whenever the
 * helper cannot be started, and the caller starts the process itself.
 */
export class Spawner {
  private helper: ChildProcess | null = null;
  /** The environment the helper started with: requests carry only what differs from it. */
  private helperEnv: NodeJS.ProcessEnv = {};
  private readonly runs = new Map<number, RemoteChild>();
  private nextId = 1;
  private buf = '';
  /** The helper said it runs: if it ends before that, it cannot run here, and spawns are direct from then on. */
  private ready = false;
  /** Started ahead of use (`start()`): until it is ready, a spawn is the caller's own rather than a wait for it. */
  private warming = false;
  private closed = false;
  /** Set when the helper could not be started: from then on every spawn is direct. */
  private broken = process.platform === 'win32';

  /**
   * Starts the helper now (it takes a Node start-up, ~40 ms), so that the first task does not wait for it: until the
   * helper says it is ready, `spawn()` returns null and the caller starts its process itself (one fork of this
   * process) rather than queue behind the helper's start-up, which a first claim can beat (measured, 6 drains: the
   * first task took 16–24 ms, and 75 ms when it waited for the helper; 14–19 ms and at most 35 ms without waiting).
   */
  start(): void {
    if (this.closed || this.broken || this.helper) return;
    this.warming = true;
    this.startHelper();
  }

  private startHelper(): void {
    if (this.closed || this.broken || this.helper) return;
    let h: ChildProcess;
    try {
      // Its own process group: Ctrl+C at the worker's terminal is the worker's to handle, not the helper's.
      h = spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'], detached: true, windowsHide: true });
    } catch {
      this.broken = true;
      return;
    }
    this.helper = h;
    this.helperEnv = { ...process.env };
    h.unref();
    (h.stdin as unknown as { unref?: () => void }).unref?.();
    (h.stdout as unknown as { unref?: () => void }).unref?.();
    h.stdin!.on('error', noop); // a helper that died: its exit says so
    h.stdout!.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    h.on('error', () => {
      // It could not be started at all (the runtime is not runnable as a plain Node): spawn directly from now on.
      this.broken = true;
      this.lost(h);
    });
    h.on('exit', () => this.lost(h));
  }

  /** Starts a process through the helper; null when the caller must start it itself. */
  spawn(req: SpawnRequest): RemoteChild | null {
    if (this.closed || this.broken) return null;
    this.startHelper();
    if (this.warming && !this.ready) return null;
    const h = this.helper;
    if (!h || !h.stdin || h.stdin.destroyed) return null;
    const id = this.nextId++;
    const child: RemoteChild = { onSpawn: noop, onData: noop, onError: noop, onClose: noop };
    this.runs.set(id, child);
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.env)) if (v !== undefined && this.helperEnv[k] !== v) set[k] = v;
    const unset = Object.keys(this.helperEnv).filter((k) => req.env[k] === undefined);
    h.stdin.write(JSON.stringify({ id, command: req.command, args: req.args, cwd: req.cwd, set, unset, stdin: req.stdin ?? null }) + '\n');
    // While a tool runs, the helper must keep this process alive (a worker waits for its tool anyway).
    if (this.runs.size === 1) h.ref();
    return child;
  }

  /** Ends the helper (its stdin closes; it exits). Tools still running are not touched. */
  close(): void {
    this.closed = true;
    const h = this.helper;
    if (h?.stdin && !h.stdin.destroyed) h.stdin.end();
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line === '') continue;
      let m: Message;
      try {
        m = JSON.parse(line) as Message;
      } catch {
        continue;
      }
      if (m.t === 'ready') {
        this.ready = true;
        continue;
      }
      const child = this.runs.get(m.id);
      if (!child) continue;
      switch (m.t) {
        case 'spawn':
          child.onSpawn(m.pid ?? undefined);
          break;
        case 'data':
          child.onData(m.d, m.s === 1 ? 'stdout' : 'stderr');
          break;
        case 'error':
          child.onError({ ...(m.code !== undefined && m.code !== null ? { code: m.code } : {}), message: m.message });
          break;
        case 'close':
          this.runs.delete(m.id);
          if (this.runs.size === 0) this.helper?.unref();
          child.onClose(m.code, m.signal);
          break;
      }
    }
  }

  /** The helper ended: whatever it was running is reported as failed (its process group is then stopped by the caller). */
  private lost(h: ChildProcess): void {
    if (this.helper !== h) return;
    this.helper = null;
    this.buf = '';
    if (!this.ready) this.broken = true;
    this.ready = false;
    const runs = [...this.runs.values()];
    this.runs.clear();
    for (const child of runs) {
      child.onError({ message: 'the helper process that starts tools for this worker (sparkq-spawner) ended while the tool ran' });
      child.onClose(null, null);
    }
  }
}
