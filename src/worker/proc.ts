import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Spawner } from './spawner';

/**
 * Runs a tool process in its own process group — argv only, never a shell — and stops the whole group (grandchildren
 * included) on request: SIGTERM to the group, SIGKILL after a grace period, then a check that the group is gone.
 */
export interface RunOptions {
  command: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written to the process's stdin, which is then closed. Without it stdin is /dev/null (agents wait on an open stdin). */
  stdin?: string;
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL. Default 3 s. */
  graceMs?: number;
  /** Called with each complete line (without the newline) as it arrives; a last unterminated line comes at exit. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Raw chunks, for a live terminal and the whole-output log. */
  onChunk?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** The most characters of each stream kept in the result (the tail). Default 64 KiB. */
  tailChars?: number;
  /** Start the process through this worker's spawn helper (see spawner.ts) instead of forking this process. */
  spawner?: Spawner;
}

export interface RunResult {
  /** null when it ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when it was stopped through `signal` (abort). */
  stopped: boolean;
  stdoutTail: string;
  stderrTail: string;
  /** The spawn failed (command not found, not executable…): the message says which and why. */
  spawnError: string | null;
  /** After a stop: whether the process group was verified gone. */
  groupGone: boolean;
}

const DEFAULT_TAIL = 64 * 1024;

class Tail {
  private text = '';
  constructor(private readonly max: number) {}
  push(s: string): void {
    this.text += s;
    if (this.text.length > this.max * 2) this.text = this.text.slice(this.text.length - this.max);
  }
  get value(): string {
    return this.text.length > this.max ? this.text.slice(this.text.length - this.max) : this.text;
  }
}

/** Whether any process of group `pgid` is still alive (a zombie awaiting its reaper counts as gone). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(0) succeeds on zombies too; on Linux, look for a member that is not a zombie.
  if (process.platform !== 'linux') return true;
  try {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      } catch {
        continue;
      }
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0] = state, rest[2] = pgrp
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') return true;
    }
    return false;
  } catch {
    return true;
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

export function runProcess(opts: RunOptions): Promise<RunResult> {
  const max = opts.tailChars ?? DEFAULT_TAIL;
  const out = new Tail(max);
  const err = new Tail(max);
  const graceMs = opts.graceMs ?? 3_000;
  return new Promise<RunResult>((resolve) => {
    let stopped = false;
    let spawnError: string | null = null;
    let groupGone = true;
    // The process group: the child's pid (detached). Through the helper it is known once the helper says so; a stop
    // asked for before then happens then.
    let pgid: number | undefined;
    let stopAsked = false;
    const partial = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr', chunk: string) => {
      (stream === 'stdout' ? out : err).push(chunk);
      opts.onChunk?.(chunk, stream);
      if (!opts.onLine) return;
      let buf = partial[stream] + chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        opts.onLine(buf.slice(0, nl).replace(/\r$/, ''), stream);
        buf = buf.slice(nl + 1);
      }
      partial[stream] = buf;
    };
    let stopping: Promise<void> | null = null;
    const stop = () => {
      if (stopping) return;
      if (pgid === undefined) {
        stopAsked = true;
        return;
      }
      stopped = true;
      const group = pgid;
      stopping = (async () => {
        killGroup(group, 'SIGTERM');
        if (!(await waitGroupGone(group, graceMs))) {
          killGroup(group, 'SIGKILL');
          groupGone = await waitGroupGone(group, 5_000);
        }
      })();
    };
    const onAbort = () => stop();
    const onSpawn = (pid: number | undefined) => {
      pgid = pid;
      if (stopAsked && pid !== undefined) stop();
    };
    const onError = (e: unknown) => {
      spawnError = spawnMessage(opts.command, e);
    };
    const onClose = (code: number | null, sig: NodeJS.Signals | null) => {
      opts.signal?.removeEventListener('abort', onAbort);
      void (async () => {
        if (stopping) await stopping;
        // The leader is gone; members it left behind (a backgrounded grandchild) are stopped too.
        else if (pgid !== undefined && process.platform !== 'win32' && groupAlive(pgid)) {
          killGroup(pgid, 'SIGTERM');
          if (!(await waitGroupGone(pgid, graceMs))) {
            killGroup(pgid, 'SIGKILL');
            groupGone = await waitGroupGone(pgid, 5_000);
          }
        }
        for (const stream of ['stdout', 'stderr'] as const) {
          if (partial[stream] !== '' && opts.onLine) opts.onLine(partial[stream].replace(/\r$/, ''), stream);
          partial[stream] = '';
        }
        resolve({ exitCode: code, signal: sig, stopped, stdoutTail: out.value, stderrTail: err.value, spawnError, groupGone });
      })();
    };

    // Node gives a child's stdin as a socket, and a bash whose stdin is a socket reads ~/.bashrc, as if started by
    // rshd, when SHLVL is unset (a worker started by a service manager, a CI job): SHLVL=1 keeps the tool's bash
    // non-interactive and quiet, as it is under any shell.
    const env = opts.stdin !== undefined && opts.env['SHLVL'] === undefined ? { ...opts.env, SHLVL: '1' } : opts.env;
    const request = { command: opts.command, args: opts.args, cwd: opts.cwd, env, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) };
    const remote = opts.spawner?.spawn(request) ?? null;
    if (remote) {
      remote.onSpawn = onSpawn;
      remote.onData = (chunk, stream) => feed(stream, chunk);
      remote.onError = onError;
      remote.onClose = onClose;
    } else {
      let child: ChildProcess;
      try {
        child = spawn(opts.command, [...opts.args], {
          cwd: opts.cwd,
          env,
          stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
          detached: process.platform !== 'win32', // its own process group, so that stopping it reaches grandchildren
          shell: false,
          windowsHide: true,
        });
      } catch (e) {
        resolve({ exitCode: null, signal: null, stopped: false, stdoutTail: '', stderrTail: '', spawnError: spawnMessage(opts.command, e), groupGone: true });
        return;
      }
      onSpawn(child.pid);
      child.stdout!.setEncoding('utf8').on('data', (c: string) => feed('stdout', c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => feed('stderr', c));
      if (opts.stdin !== undefined && child.stdin) {
        child.stdin.on('error', () => undefined); // a tool that exits without reading its stdin is not an error
        child.stdin.end(opts.stdin);
      }
      child.on('error', onError);
      child.on('close', onClose);
    }
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function spawnMessage(command: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `cannot run ${command}: no such command (is it installed and on PATH? set the tool's command in sparkq.yml)`;
  if (code === 'EACCES') return `cannot run ${command}: permission denied (is it executable?)`;
  const message = e instanceof Error ? e.message : typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : String(e);
  return `cannot run ${command}: ${message}`;
}
