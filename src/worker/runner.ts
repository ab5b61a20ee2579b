import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { QueueHandle } from '../client/open';
import { type SparkqConfig, type ToolConfig, type ToolKind } from '../core/config';
import { errorMessage, isSparkqError } from '../core/errors';
import { type Claim, LIMITS, type Queue, type Task } from '../core/model';
import { loadWorkspaceConfig } from '../owner/owner';
import { sparkqDirOf } from '../owner/workspace';
import { scriptExecutor } from './executors/script';
import { writeSparkqLauncher } from './launcher';
import type { ExecOutcome, Executor, OutputStream } from './types';

export type WorkerMode = 'drain' | 'watch' | 'once';

export interface WorkerOptions {
  q: QueueHandle;
  workspaceDir: string;
  queue: string;
  mode: WorkerMode;
  /** Fallback wake-up for --watch when no change notification arrives. Default: the config's worker.pollSeconds. */
  pollSeconds?: number;
  worker?: string;
  /** The terminal. */
  write: (text: string) => void;
  /** Ctrl+C: stop the running tool, fail its task as interrupted, and return. */
  signal: AbortSignal;
  /** Executors by tool kind; script is built in, manual is handled by the runner itself. */
  executors?: Partial<Record<ToolKind, Executor>>;
  /** The `sparkq` command for tool processes, as argv (default: this Node running this CLI bundle). */
  sparkqCommand?: string[];
  userSettings?: { allowBypass: boolean };
  /** Colour for the status lines (the CLI decides: TTY and no NO_COLOR). */
  color?: boolean;
}

export interface WorkerSummary {
  ran: number;
  succeeded: number;
  failed: number;
  interrupted: boolean;
}

type StopReason = { kind: 'interrupted' } | { kind: 'timeout'; seconds: number } | { kind: 'lease-lost'; why: string };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function oneLine(s: string, max = 200): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : flat.slice(0, max - 1) + '…';
}

/** A shell-safe rendering of an argument for commands we print for a person to copy (never executed by us). */
export function quoteForDisplay(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `sparkq run`: claims tasks from one queue and runs each with the executor of its tool's kind, heartbeating while it
 * runs, stopping it at 2× its timeout, on Ctrl+C, or when the lease is lost, and recording the outcome.
 */
export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const { q, write } = opts;
  const config = loadWorkspaceConfig(opts.workspaceDir);
  const queue = await q.getQueue(opts.queue);
  const worker = opts.worker ?? `${os.hostname().split('.')[0] ?? 'worker'}-${process.pid}`;
  const paint = (code: string, s: string) => (opts.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const summary: WorkerSummary = { ran: 0, succeeded: 0, failed: 0, interrupted: false };

  write(paint('1', `SparkQ worker ${worker} — queue ${queue.name} (session ${queue.session})`) + '\n');
  write(`mode: ${opts.mode === 'watch' ? 'watch (waits for new tasks; Ctrl+C to stop)' : opts.mode === 'once' ? 'one task' : 'drain (exits when the queue is empty)'}\n`);
  if (queue.instructions.trim() !== '') {
    write(paint('1', 'Instructions for every task of this queue:') + '\n');
    for (const l of queue.instructions.trimEnd().split('\n')) write(`  ${l}\n`);
  }
  write('\n');

  // A place on the queue (one worker per queue unless it allows more), renewed while this worker lives.
  const leaseSeconds = config.worker.leaseSeconds;
  const place = await q.joinQueue({ queue: queue.id, worker, leaseSeconds });
  if (place.maxWorkers > 1) write(`workers on this queue: ${place.workers.join(', ')} (up to ${place.maxWorkers})\n`);
  let renewWarned = false;
  const renew = setInterval(() => {
    q.joinQueue({ queue: queue.id, worker, leaseSeconds }).then(
      () => (renewWarned = false),
      (e: unknown) => {
        if (!renewWarned) write(paint('33', `⚠ could not renew this worker's place on the queue: ${errorMessage(e)}\n`));
        renewWarned = true;
      },
    );
  }, Math.max(500, (leaseSeconds * 1000) / 3));
  // `.sparkq/bin/sparkq`, so tool processes find `sparkq` on PATH and can finish their own task.
  const shim = writeSparkqLauncher(path.join(sparkqDirOf(opts.workspaceDir), 'bin'), opts.sparkqCommand ?? defaultSparkqCommand());
  let wake: (() => void) | null = null;
  const off = opts.mode === 'watch' ? q.onChange((events) => {
    if (events.some((e) => e.kind === 'task' && e.queueId === queue.id && e.status === 'queued')) wake?.();
  }) : () => undefined;
  try {
    for (;;) {
      if (opts.signal.aborted) {
        summary.interrupted = true;
        break;
      }
      const claim = await q.claim({ queue: queue.id, worker });
      if (!claim) {
        if (opts.mode !== 'watch') {
          write(summary.ran === 0 ? `queue ${queue.name} is empty; nothing to run\n` : `queue ${queue.name} is empty; ran ${summary.ran} task(s): ${summary.succeeded} succeeded, ${summary.failed} failed\n`);
          break;
        }
        const pollMs = (opts.pollSeconds ?? config.worker.pollSeconds) * 1000;
        await new Promise<void>((resolve) => {
          wake = resolve;
          void sleep(pollMs, opts.signal).then(resolve);
        });
        wake = null;
        continue;
      }
      summary.ran++;
      // Fresh each time: the previous task may have recorded the queue's agent thread/session.
      const current = await q.getQueue(queue.id);
      const outcome = await runOne(opts, config, current, claim, shim, paint);
      if (outcome === 'succeeded') summary.succeeded++;
      else summary.failed++;
      if (opts.signal.aborted) {
        summary.interrupted = true;
        break;
      }
      if (opts.mode === 'once') break;
    }
  } finally {
    off();
    clearInterval(renew);
    await q.leaveQueue({ queue: queue.id, worker }).catch(() => undefined);
  }
  return summary;
}

async function runOne(
  opts: WorkerOptions,
  config: SparkqConfig,
  queue: Queue,
  claim: Claim,
  shimDir: string,
  paint: (code: string, s: string) => string,
): Promise<'succeeded' | 'failed'> {
  const { q, write } = opts;
  const task = claim.task;
  const started = Date.now();
  const tool: ToolConfig | undefined = config.tools[task.tool];
  write(paint('1;36', `▶ ${task.id}`) + `  tool ${task.tool}  attempt ${task.attempt}  timeout ${task.timeoutSeconds} s\n`);
  if (task.prompt) write(`  prompt: ${oneLine(task.prompt, 400)}\n`);
  if (task.payload !== null) write(`  payload: ${oneLine(JSON.stringify(task.payload), 400)}\n`);

  const runDir = path.join(sparkqDirOf(opts.workspaceDir), 'runs', task.id);
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const logFd = fs.openSync(path.join(runDir, 'output.log'), 'a', 0o600);
  const output = (text: string, stream: OutputStream) => {
    write(stream === 'info' ? paint('2', text) : text);
    try {
      fs.writeSync(logFd, text);
    } catch {
      // the terminal still has it; a full disk must not fail the task
    }
  };

  const stop = new AbortController();
  let stopReason: StopReason | null = null;
  const stopWith = (r: StopReason) => {
    if (stopReason) return;
    stopReason = r;
    stop.abort();
  };
  const onInterrupt = () => stopWith({ kind: 'interrupted' });
  opts.signal.addEventListener('abort', onInterrupt, { once: true });
  if (opts.signal.aborted) onInterrupt();

  // Liveness: heartbeats; the time budget: stale at 1×, stopped and failed at 2×.
  const timeoutMs = task.timeoutSeconds * 1000;
  const beatMs = Math.max(1_000, Math.min(10_000, (config.worker.leaseSeconds * 1000) / 3));
  const heartbeat = () => {
    q.heartbeat({ task: task.id, lease: claim.lease }).catch((e: unknown) => {
      if (isSparkqError(e, 'lease-mismatch') || isSparkqError(e, 'conflict') || isSparkqError(e, 'not-found')) stopWith({ kind: 'lease-lost', why: errorMessage(e) });
    });
  };
  // A first heartbeat right away marks the task as worked by a live worker: if this process dies, the owner fails
  // the task as "worker lost" once worker.leaseSeconds pass without another one.
  const firstBeat = setTimeout(heartbeat, 20);
  const beat = setInterval(heartbeat, beatMs);
  const staleTimer = setTimeout(() => write(paint('33', `⚠ ${task.id} is stale: running past its ${task.timeoutSeconds} s timeout; it is stopped at ${task.timeoutSeconds * 2} s\n`)), timeoutMs);
  const killTimer = setTimeout(() => stopWith({ kind: 'timeout', seconds: task.timeoutSeconds }), 2 * timeoutMs);

  let outcome: ExecOutcome | 'external';
  try {
    const kind: ToolKind = tool?.knownKind ?? 'manual';
    if (!tool) {
      outcome = { status: 'failed', error: `tool ${task.tool} is not in sparkq.yml any more; add it back or requeue the task with another tool` };
    } else if (kind === 'manual') {
      if (tool.kind !== tool.knownKind) write(paint('33', `⚠ tool ${tool.name} has kind ${JSON.stringify(tool.kind)}, which this SparkQ does not know; running it as manual\n`));
      outcome = await runManual(opts, task, claim, stop.signal, write);
    } else {
      const executor = kind === 'script' ? (opts.executors?.script ?? scriptExecutor) : opts.executors?.[kind];
      if (!executor) {
        outcome = { status: 'failed', error: `no executor for tool kind ${kind} in this worker` };
      } else {
        const cwd = queue.workdir ? path.resolve(opts.workspaceDir, queue.workdir) : opts.workspaceDir;
        outcome = await executor.run({
          task,
          queue,
          instructions: claim.instructions,
          tool,
          config,
          workspaceDir: opts.workspaceDir,
          cwd,
          env: toolEnv(tool, task, claim.lease, opts.workspaceDir, shimDir),
          runDir,
          signal: stop.signal,
          output,
          userSettings: opts.userSettings ?? { allowBypass: false },
        });
      }
    }
  } catch (e) {
    outcome = { status: 'failed', error: `the worker failed while running the task: ${errorMessage(e)}` };
  } finally {
    clearInterval(beat);
    clearTimeout(firstBeat);
    clearTimeout(staleTimer);
    clearTimeout(killTimer);
    opts.signal.removeEventListener('abort', onInterrupt);
    fs.closeSync(logFd);
  }

  const took = seconds(Date.now() - started);
  if (outcome === 'external') {
    const now = await q.getTask(task.id).catch(() => null);
    const st = now?.status ?? 'unknown';
    write((st === 'succeeded' ? paint('32', `✔ ${task.id} succeeded`) : paint('31', `✖ ${task.id} ${st}`)) + ` in ${took} (finished at the terminal)\n\n`);
    return st === 'succeeded' ? 'succeeded' : 'failed';
  }
  const reason = stopReason as StopReason | null;
  if (reason?.kind === 'lease-lost') {
    write(paint('31', `✖ ${task.id} was taken away from this worker (${reason.why}); its outcome is not recorded\n\n`));
    return 'failed';
  }
  if (outcome.status === 'rate-limited') {
    // Until the queue can take a task back and pause (issue 7, in progress), a rate-limited run fails its task.
    outcome = { ...outcome, status: 'failed' };
  }
  if (reason && outcome.status === 'failed') {
    outcome = {
      ...outcome,
      error: reason.kind === 'interrupted' ? 'interrupted by the worker' : `auto-failed: ran longer than 2× its timeout (${reason.seconds} s); stopped by the worker`,
    };
  }
  try {
    const common = {
      task: task.id,
      lease: claim.lease,
      ...(outcome.data !== undefined ? { data: outcome.data } : {}),
      ...(outcome.usage ? { usage: outcome.usage } : {}),
      ...(outcome.stdout ? { stdout: outcome.stdout.slice(-LIMITS.output) } : {}),
      ...(outcome.stderr ? { stderr: outcome.stderr.slice(-LIMITS.output) } : {}),
      // The Codex thread / Claude session the task ran in: recorded on the queue, so its next task continues it.
      ...(outcome.agentSession ? { agentSession: outcome.agentSession } : {}),
    };
    if (outcome.status === 'succeeded') await q.complete({ ...common, summary: outcome.summary });
    else await q.fail({ ...common, error: outcome.error.slice(0, LIMITS.error) });
  } catch (e) {
    write(paint('31', `✖ ${task.id}: the outcome could not be recorded: ${errorMessage(e)}\n\n`));
    return 'failed';
  }
  for (const n of outcome.notes ?? []) write(paint('33', `note: ${n}\n`));
  if (outcome.status === 'succeeded') write(paint('32', `✔ ${task.id} succeeded`) + ` in ${took}: ${oneLine(outcome.summary)}\n\n`);
  else write(paint('31', `✖ ${task.id} failed`) + ` in ${took}: ${oneLine(outcome.error, 400)}\n\n`);
  return outcome.status;
}

/** Manual tools: show the prompt and how to finish, then wait for someone at this terminal to finish the task. */
async function runManual(opts: WorkerOptions, task: Task, claim: Claim, signal: AbortSignal, write: (s: string) => void): Promise<ExecOutcome | 'external'> {
  write('\n' + (task.prompt ?? JSON.stringify(task.payload, null, 2)) + '\n\n');
  write('This is a manual task: do the work, then finish it from this terminal (SPARKQ_LEASE is not needed here, the lease is given):\n');
  write(`  sparkq complete ${task.id} --lease ${claim.lease} --summary "what was done, where, counts" [--data '{"…": …}']\n`);
  write(`  sparkq fail ${task.id} --lease ${claim.lease} --error "what went wrong" [--data '{"partial": …}']\n`);
  write('  (`sparkq guide` explains how to work a queue by hand)\n');
  write('waiting for the task to be finished…\n');
  const { q } = opts;
  let wake: (() => void) | null = null;
  const off = q.onChange((events) => {
    if (events.some((e) => e.kind === 'task' && e.id === task.id)) wake?.();
  });
  try {
    for (;;) {
      const now = await q.getTask(task.id);
      if (now.status !== 'running' || now.attempt !== task.attempt) return 'external';
      if (signal.aborted) return { status: 'failed', error: 'stopped' };
      await new Promise<void>((resolve) => {
        wake = resolve;
        void sleep(2_000, signal).then(resolve);
      });
      wake = null;
    }
  } finally {
    off();
  }
}

function defaultSparkqCommand(): string[] {
  const script = process.argv[1];
  return script ? [process.execPath, path.resolve(script)] : [process.execPath];
}

function toolEnv(tool: ToolConfig, task: Task, lease: string, workspaceDir: string, shimDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...tool.env };
  env['SPARKQ_TASK_ID'] = task.id;
  env['SPARKQ_QUEUE'] = task.queue;
  env['SPARKQ_LEASE'] = lease;
  env['SPARKQ_WORKSPACE'] = workspaceDir;
  env['PATH'] = `${shimDir}${path.delimiter}${process.env['PATH'] ?? ''}`;
  return env;
}

