import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { QueueHandle } from '../client/open';
import { type SparkqConfig, type ToolConfig, type ToolKind } from '../core/config';
import { errorMessage, isSparkqError } from '../core/errors';
import { type Claim, LIMITS, type Queue, type Task, type TaskChange } from '../core/model';
import { loadWorkspaceConfig } from '../owner/configWatcher';
import { sparkqDirOf } from '../owner/workspace';
import { scriptExecutor } from './executors/script';
import { useGitLauncher } from '../git/git';
import { mergeGroupIfDone } from './changes';
import { type TaskWorktree, WorktreeRunner, worktreeError } from './isolation';
import { writeSparkqLauncher } from './launcher';
import { RunLog } from './runLog';
import { Spawner } from './spawner';
import type { ExecOutcome, Executor, OutputStream } from './types';
import { oneLine, plural } from '../core/text';

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
  /** Handed back unfailed because the agent hit a usage/rate limit (the queue paused itself). */
  released: number;
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
  const summary: WorkerSummary = { ran: 0, succeeded: 0, failed: 0, released: 0, interrupted: false };

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
  // The environment tools start from, read once: every read of process.env is a call into the C library's environ.
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, PATH: `${shim}${path.delimiter}${process.env['PATH'] ?? ''}` };
  // While this process owns the queue (and so holds the database in memory), script tools start through a small
  // helper process rather than a fork of this one (see spawner.ts); started now, so that its own start-up overlaps the
  // first claim. A worker that is a client of another owner is small enough to fork directly.
  const spawner = new Spawner();
  // Tasks of a worktree queue (or tool) each run in a git worktree of their own.
  const worktrees = new WorktreeRunner(opts.workspaceDir, sparkqDirOf(opts.workspaceDir), config, baseEnv);
  if (q.isOwner && Object.values(config.tools).some((t) => t.knownKind === 'script')) spawner.start();
  // A worktree queue runs several git commands per task: through the same helper while this process is large.
  const gitThroughSpawner = q.isOwner && (queue.isolation !== null || Object.values(config.tools).some((t) => t.isolation === 'worktree'));
  if (gitThroughSpawner) {
    spawner.start();
    useGitLauncher(spawner);
  }
  let wake: (() => void) | null = null;
  // Change notifications are listened to only once the worker has to wait (the first time a claim finds nothing to
  // run now): while tasks keep coming, each claim finds the next one, and an owner would otherwise send this worker
  // an event for every claim and outcome of the drain.
  let off: (() => void) | null = null;
  // A task that becomes claimable (new, released by its dependencies, back for a retry) or the queue resuming.
  const listen = () =>
    q.onChange((events) => {
      if (events.some((e) => (e.kind === 'task' && e.queueId === queue.id && e.status === 'queued') || (e.kind === 'queue' && e.id === queue.id))) wake?.();
    });
  // Whole-output logs still being written (off the critical path); waited for before returning.
  const logs = new Set<Promise<void>>();
  // The next claim, sent in the same turn as the previous task's outcome (see runOne).
  let prefetched: Promise<Claim | null> | null = null;
  const claimNext = opts.mode === 'once' ? null : () => (opts.signal.aborted ? null : q.claim({ queue: queue.id, worker }));
  let lastWait = '';
  try {
    for (;;) {
      // A claim already made is run even after Ctrl+C: runOne then fails it as interrupted without starting it.
      if (opts.signal.aborted && !prefetched) {
        summary.interrupted = true;
        break;
      }
      const claim = await (prefetched ?? q.claim({ queue: queue.id, worker }));
      prefetched = null;
      if (!claim) {
        if (opts.signal.aborted) {
          summary.interrupted = true;
          break;
        }
        // Nothing claimable now. Say why once (paused, waiting on other tasks, retry delays); a drain stops only
        // when nothing left in the queue can become claimable by itself.
        const why = await whyNothingToClaim(q, queue.id);
        if (opts.mode === 'once' || (opts.mode === 'drain' && !why.later)) {
          const ran = summary.ran === 0 ? 'nothing to run' : `ran ${plural(summary.ran, 'task')}: ${summary.succeeded} succeeded, ${summary.failed} failed${summary.released ? `, ${summary.released} handed back` : ''}`;
          write(`${why.text === 'empty' ? `queue ${queue.name} is empty` : `queue ${queue.name}: ${why.text}`}; ${ran}\n`);
          break;
        }
        if (off === null) {
          // From now on a change wakes this worker; look once more first, for one that came before listening.
          off = listen();
          continue;
        }
        if (why.text !== lastWait && why.text !== 'empty') write(paint('2', `… queue ${queue.name}: ${why.text}\n`));
        lastWait = why.text;
        const pollMs = (opts.pollSeconds ?? config.worker.pollSeconds) * 1000;
        await new Promise<void>((resolve) => {
          wake = resolve;
          void sleep(pollMs, opts.signal).then(resolve);
        });
        wake = null;
        continue;
      }
      summary.ran++;
      // Agents continue the queue's thread/session, which the previous task may have recorded: read it fresh for them.
      // Nothing else a task needs of its queue changes after the queue is created (its working dir included), and the
      // claim brings the instructions.
      const kind = config.tools[claim.task.tool]?.knownKind;
      const current = kind === 'codex' || kind === 'claude' ? await q.getQueue(queue.id) : queue;
      lastWait = '';
      const { status, next } = await runOne(opts, config, current, claim, baseEnv, paint, logs, claimNext, spawner, worktrees);
      prefetched = next;
      if (status === 'succeeded') summary.succeeded++;
      else if (status === 'released') summary.released++;
      else summary.failed++;
      if (opts.signal.aborted && !prefetched) {
        summary.interrupted = true;
        break;
      }
      if (opts.mode === 'once') break;
    }
  } finally {
    off?.();
    clearInterval(renew);
    worktrees.release();
    if (gitThroughSpawner) useGitLauncher(null);
    spawner.close();
    await q.leaveQueue({ queue: queue.id, worker }).catch(() => undefined);
    await Promise.all(logs);
  }
  return summary;
}

async function runOne(
  opts: WorkerOptions,
  config: SparkqConfig,
  queue: Queue,
  claim: Claim,
  baseEnv: NodeJS.ProcessEnv,
  paint: (code: string, s: string) => string,
  logs: Set<Promise<void>>,
  claimNext: (() => Promise<Claim | null> | null) | null,
  spawner: Spawner,
  worktrees: WorktreeRunner,
): Promise<{ status: 'succeeded' | 'failed' | 'released'; next: Promise<Claim | null> | null }> {
  const { q, write } = opts;
  const task = claim.task;
  const started = Date.now();
  const tool: ToolConfig | undefined = config.tools[task.tool];
  write(paint('1;36', `▶ ${task.id}`) + `  tool ${task.tool}  attempt ${task.attempt}  timeout ${task.timeoutSeconds} s\n`);
  if (task.prompt) write(`  prompt: ${oneLine(task.prompt, 400)}\n`);
  if (task.payload !== null) write(`  payload: ${oneLine(JSON.stringify(task.payload), 400)}\n`);

  const runDir = path.join(sparkqDirOf(opts.workspaceDir), 'runs', task.id);
  // The whole output goes to <runDir>/output.log through the thread pool (see RunLog): creating a directory and a
  // file per task cost about a millisecond of the event loop's time, more on a busy disk.
  const log = new RunLog(runDir);
  const output = (text: string, stream: OutputStream) => {
    write(stream === 'info' ? paint('2', text) : text);
    log.write(text);
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
  /**
   * The task as it is now, when it was finished in this very attempt without this worker: its agent completed (or
   * failed) it through SparkQ's own tools (`mcp: true`), or someone did by hand. Null otherwise.
   */
  const finishedInThisAttempt = async (): Promise<Task | null> => {
    const now = await q.getTask(task.id).catch(() => null);
    return now && (now.status === 'succeeded' || now.status === 'failed') && now.attempt === task.attempt ? now : null;
  };
  let finishedByAgent = false;
  const heartbeat = () => {
    if (finishedByAgent) return;
    q.heartbeat({ task: task.id, lease: claim.lease }).catch(async (e: unknown) => {
      // Succeeded in this attempt (its agent completed it): no more heartbeats; the agent may end in its own time.
      if (isSparkqError(e, 'conflict') && (await finishedInThisAttempt())?.status === 'succeeded') {
        finishedByAgent = true;
        return;
      }
      if (isSparkqError(e, 'lease-mismatch') || isSparkqError(e, 'conflict') || isSparkqError(e, 'not-found')) stopWith({ kind: 'lease-lost', why: errorMessage(e) });
    });
  };
  // A first heartbeat soon marks the task as worked by a live worker: if this process dies, the owner fails the task
  // as "worker lost" once worker.leaseSeconds pass without another one. Not at once: a heartbeat is a journal record
  // and an fdatasync of its own, and most script tasks are over within 100 ms (a worker killed before then leaves
  // its task to the time budget, as one killed between claim and first heartbeat always did).
  const firstBeat = setTimeout(heartbeat, 100);
  const beat = setInterval(heartbeat, beatMs);
  const staleTimer = setTimeout(() => write(paint('33', `⚠ ${task.id} is stale: running past its ${task.timeoutSeconds} s timeout; it is stopped at ${task.timeoutSeconds * 2} s\n`)), timeoutMs);
  const killTimer = setTimeout(() => stopWith({ kind: 'timeout', seconds: task.timeoutSeconds }), 2 * timeoutMs);

  // A fix round (the copy of a task whose check failed): the round it fixes, looked up once.
  let fixed: Promise<Task | null> | null = null;
  const fixes = () => (fixed ??= task.retryOf === null ? Promise.resolve(null) : q.getTask(task.retryOf).then((t) => (t.validation?.status === 'failed' ? t : null), () => null));

  let outcome: ExecOutcome | 'external';
  let wt: TaskWorktree | null = null;
  try {
    const kind: ToolKind = tool?.knownKind ?? 'manual';
    if (tool && WorktreeRunner.applies(queue, tool) && !stop.signal.aborted) {
      fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
      try {
        // The tasks it waits on, and the round its check failed (a fix round fixes that work, it does not start over):
        // their work goes into its start where the base does not hold it yet.
        const after = (await Promise.all(task.after.map((id) => q.getTask(id).catch(() => null)))).filter((t) => t !== null);
        wt = await worktrees.enter(task, queue, runDir, (s) => output(s, 'info'), { after, fixes: await fixes() });
      } catch (e) {
        wt = null;
        throw new WorktreeSetupError(worktreeError('prepare', e));
      }
    }
    if (!tool) {
      outcome = { status: 'failed', error: `tool ${task.tool} is not in sparkq.yml any more; add it back or requeue the task with another tool` };
    } else if (kind === 'manual') {
      if (tool.kind !== tool.knownKind) write(paint('33', `⚠ tool ${tool.name} has kind ${JSON.stringify(tool.kind)}, which this SparkQ does not know; running it as manual\n`));
      outcome = await runManual(opts, task, claim, stop.signal, write, wt?.cwd ?? null);
    } else {
      const executor = kind === 'script' ? (opts.executors?.script ?? scriptExecutor) : opts.executors?.[kind];
      if (!executor) {
        outcome = { status: 'failed', error: `no executor for tool kind ${kind} in this worker` };
      } else if (stop.signal.aborted) {
        // Interrupted before it started (a claim that was on its way when Ctrl+C came): nothing is run.
        outcome = { status: 'failed', error: 'stopped' };
      } else {
        // Executors may put files in runDir (a prompt, codex's -o file); the built-in script executor puts none.
        if (executor !== scriptExecutor && !wt) fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
        const cwd = wt?.cwd ?? worktrees.workdirOf(queue);
        const env = toolEnv(baseEnv, tool, task, claim.lease, opts.workspaceDir);
        // A script validator reads what it checks (the payload: validates, round, summary, data, change) from a file.
        if (task.validates !== null) Object.assign(env, validateFile(runDir, task));
        // A task's later round: the validator's feedback on the last one (also in its prompt).
        if (task.validation !== null) {
          env['SPARKQ_VALIDATION_ROUND'] = `${task.validation.round}`;
          if (task.validation.feedback !== null) env['SPARKQ_VALIDATOR_FEEDBACK'] = task.validation.feedback;
        }
        outcome = await executor.run({
          task,
          // It continues the conversation of the round it fixes: the queue's may be another task's by now.
          queue: continuing(queue, await fixes()),
          instructions: claim.instructions,
          tool,
          config,
          workspaceDir: opts.workspaceDir,
          cwd,
          env,
          runDir,
          signal: stop.signal,
          output,
          userSettings: opts.userSettings ?? { allowBypass: false },
          ...(q.isOwner ? { spawner } : {}),
        });
      }
    }
  } catch (e) {
    outcome = { status: 'failed', error: e instanceof WorktreeSetupError ? e.message : `the worker failed while running the task: ${errorMessage(e)}` };
  } finally {
    clearInterval(beat);
    clearTimeout(firstBeat);
    clearTimeout(staleTimer);
    clearTimeout(killTimer);
    opts.signal.removeEventListener('abort', onInterrupt);
    const closed = log.close();
    logs.add(closed);
    void closed.then(() => logs.delete(closed));
  }

  const took = seconds(Date.now() - started);
  if (outcome === 'external') {
    let now: Task | null = await q.getTask(task.id).catch(() => null);
    // Finished at the terminal, in its worktree: commit what was done there as for any task, and record it.
    if (wt && now && now.attempt === task.attempt && (now.status === 'succeeded' || now.status === 'failed')) {
      now = await recordChangeOf(q, worktrees, wt, now, output).catch((e: unknown) => {
        write(paint('31', `✖ ${task.id}: what it changed in its worktree could not be recorded: ${errorMessage(e)}\n`));
        return now;
      });
    }
    const st = now?.status ?? 'unknown';
    write((st === 'succeeded' ? paint('32', `✔ ${task.id} succeeded`) : paint('31', `✖ ${task.id} ${st}`)) + ` in ${took} (finished at the terminal)\n\n`);
    if (st === 'succeeded') await afterSuccess(opts, config, task, paint);
    return { status: st === 'succeeded' ? 'succeeded' : 'failed', next: null };
  }
  const reason = stopReason as StopReason | null;
  if (reason?.kind === 'lease-lost') {
    write(paint('31', `✖ ${task.id} was taken away from this worker (${reason.why}); its outcome is not recorded\n\n`));
    return { status: 'failed', next: null };
  }
  if (reason && outcome.status === 'rate-limited') {
    // Stopped by us (Ctrl+C, 2× timeout) while the agent was reporting a limit: what stopped it was us.
    outcome = { ...outcome, status: 'failed' };
  }
  if (reason && outcome.status === 'failed') {
    outcome = {
      ...outcome,
      error: reason.kind === 'interrupted' ? 'interrupted by the worker' : `auto-failed: ran longer than 2× its timeout (${reason.seconds} s); stopped by the worker`,
    };
  }
  // A task in a worktree: its change is committed on its branch when it succeeded, else described and kept there.
  let change: TaskChange | undefined;
  if (wt) {
    const ran = wt;
    // An agent may have finished its task itself (SparkQ's tools, `sparkq complete`): then its outcome decides, and
    // its own summary is the commit message, not the worker's reading of the run.
    const own = tool?.knownKind === 'codex' || tool?.knownKind === 'claude' ? await finishedInThisAttempt() : null;
    const message = own ? (own.status === 'succeeded' ? (own.result?.summary ?? 'done') : null) : outcome.status === 'succeeded' ? outcome.summary : null;
    if (message !== null) {
      try {
        change = await worktrees.leave(ran, { succeeded: true, summary: message });
        output(`  ${describeChange(change)}\n`, 'info');
      } catch (e) {
        if (own) output(`  ${worktreeError('commit', e)}\n`, 'info');
        else outcome = { ...outcome, status: 'failed', error: worktreeError('commit', e) };
      }
    }
    if (change === undefined) change = await worktrees.leave(ran, { succeeded: false }).catch(() => undefined);
  }
  let next: Promise<Claim | null> | null = null;
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
      ...(change ? { change } : {}),
    };
    let recorded: Promise<unknown>;
    if (outcome.status === 'succeeded') recorded = q.complete({ ...common, summary: outcome.summary });
    else if (outcome.status === 'rate-limited') {
      // Not the task's fault: it goes back to the queue unfailed, and the queue pauses until the limit resets.
      recorded = q.release({ ...common, reason: outcome.error.slice(0, LIMITS.error), ...(outcome.resetAt !== undefined ? { resetAt: outcome.resetAt } : {}) });
    } else recorded = q.fail({ ...common, error: outcome.error.slice(0, LIMITS.error) });
    // The next claim goes out in the same turn, right behind the outcome: the owner applies the two in this order
    // (so the claim sees what the outcome released), and one journal flush makes both durable before either is
    // answered: one fdatasync per task instead of two, and no round trip of its own. Not after a hand-back, which
    // pauses the queue.
    if (outcome.status !== 'rate-limited' && claimNext) {
      next = claimNext();
      next?.catch(() => undefined); // awaited by the loop; not an unhandled rejection meanwhile
    }
    await recorded;
  } catch (e) {
    // Finished in this attempt already, by its agent through SparkQ's tools (mcp: true): that outcome stands. The
    // conversation it ran in still goes onto the queue, so that the queue's next task continues it.
    const done = isSparkqError(e, 'conflict') ? await finishedInThisAttempt() : null;
    if (done) {
      if (outcome.agentSession) await q.setAgentSession(task.queueId, outcome.agentSession).catch(() => undefined);
      // What it changed and the tokens its agent used: the agent's own completion carried neither.
      if (change || outcome.usage) {
        await q.recordRun({ task: task.id, attempt: task.attempt, ...(change ? { change } : {}), ...(outcome.usage ? { usage: outcome.usage } : {}) }).catch(() => undefined);
      }
      const st = done.status === 'succeeded' ? paint('32', `✔ ${task.id} succeeded`) : paint('31', `✖ ${task.id} failed`);
      write(`${st} in ${took} (finished by its agent through SparkQ's tools): ${oneLine(done.result?.summary ?? done.error ?? '', 400)}\n\n`);
      if (done.status === 'succeeded') await afterSuccess(opts, config, task, paint);
      return { status: done.status === 'succeeded' ? 'succeeded' : 'failed', next };
    }
    write(paint('31', `✖ ${task.id}: the outcome could not be recorded: ${errorMessage(e)}\n\n`));
    return { status: 'failed', next };
  }
  for (const n of outcome.notes ?? []) write(paint('33', `note: ${n}\n`));
  if (outcome.status === 'succeeded') {
    write(paint('32', `✔ ${task.id} succeeded`) + ` in ${took}: ${oneLine(outcome.summary)}\n\n`);
    await afterSuccess(opts, config, task, paint);
  } else if (outcome.status === 'rate-limited') {
    const q2 = await q.getQueue(task.queueId).catch(() => null);
    const until = q2?.pausedUntil ? `until ${q2.pausedUntil}` : 'for now';
    write(paint('33', `⏸ ${task.id} handed back`) + ` after ${took}: ${oneLine(outcome.error, 400)}; queue ${task.queue} paused ${until}, the task stays queued\n\n`);
    return { status: 'released', next };
  } else write(paint('31', `✖ ${task.id} failed`) + ` in ${took}: ${oneLine(outcome.error, 400)}\n\n`);
  return { status: outcome.status, next };
}

/**
 * Why a claim found nothing, and whether something may become claimable without anyone doing anything here: a pause
 * that ends, a retry delay, tasks that wait on others still to run. Tasks blocked by failed tasks (directly or through
 * the tasks they wait on) wait for a requeue, so a draining worker does not wait for them.
 */
async function whyNothingToClaim(q: WorkerOptions['q'], queueId: string): Promise<{ text: string; later: boolean }> {
  const queue = await q.getQueue(queueId);
  if (queue.counts.queued === 0) return { text: 'empty', later: false };
  if (queue.paused) return { text: `paused ${queue.pausedUntil ? `until ${queue.pausedUntil}` : 'until resumed'}${queue.pauseReason ? ` (${queue.pauseReason})` : ''}`, later: true };
  const { tasks } = await q.listTasks({ queue: queueId, status: 'queued', limit: 1000 });
  // A waiting task is stuck when something it waits on failed, or is itself stuck. Looked up at most a few hundred
  // tasks deep; beyond that it is taken as able to go on (the worker keeps waiting, as it would in watch mode).
  const known = new Map<string, Task | null>(tasks.map((t) => [t.id, t]));
  const stuck = new Map<string, boolean>();
  let lookups = 0;
  const isStuck = async (t: Task, path: Set<string>): Promise<boolean> => {
    const memo = stuck.get(t.id);
    if (memo !== undefined) return memo;
    if (t.status !== 'queued') return t.status === 'failed';
    if (t.blockedBy.length > 0) {
      stuck.set(t.id, true);
      return true;
    }
    let result = false;
    for (const id of t.waitingOn) {
      if (path.has(id)) continue;
      let dep = known.get(id);
      if (dep === undefined && lookups < 300) {
        lookups++;
        dep = await q.getTask(id).catch(() => null);
        known.set(id, dep);
      }
      if (dep === null) {
        result = true; // gone: nothing will release this task
        break;
      }
      if (dep !== undefined && (await isStuck(dep, new Set([...path, t.id])))) {
        result = true;
        break;
      }
    }
    stuck.set(t.id, result);
    return result;
  };
  let blocked = 0;
  let waiting = 0;
  let delayed = 0;
  for (const t of tasks) {
    if (t.waitingOn.length > 0) {
      if (await isStuck(t, new Set())) blocked++;
      else waiting++;
    } else if (t.notBefore !== null) delayed++;
  }
  const parts: string[] = [];
  if (waiting) parts.push(`${waiting} waiting on other tasks`);
  if (delayed) parts.push(`${delayed} waiting to retry`);
  if (blocked) parts.push(`${blocked} blocked by failed tasks (requeue them to go on: sparkq requeue --failed)`);
  return { text: parts.length ? parts.join(', ') : `${queue.counts.queued} queued`, later: waiting + delayed > 0 };
}

/** A task's change in one line: its commit and diff stat, or that it changed nothing. */
export function describeChange(c: TaskChange): string {
  if (c.commit === null) return c.filesChanged === 0 ? `no changes on ${c.branch}` : `${plural(c.filesChanged, 'file')} changed, not committed, kept in ${c.worktree}`;
  return `committed ${c.commit.slice(0, 12)} on ${c.branch}: ${plural(c.filesChanged, 'file')} changed, +${c.insertions} −${c.deletions}`;
}

/**
 * A task finished without its worker (at the terminal, or by its agent): its change in the worktree is committed (on
 * success, with its summary) or described, and recorded on the task.
 */
async function recordChangeOf(q: WorkerOptions['q'], worktrees: WorktreeRunner, wt: TaskWorktree, t: Task, output: (text: string, stream: OutputStream) => void): Promise<Task> {
  const change = await worktrees.leave(wt, t.status === 'succeeded' ? { succeeded: true, summary: t.result?.summary ?? 'done' } : { succeeded: false });
  output(`  ${describeChange(change)}\n`, 'info');
  return q.recordRun({ task: t.id, attempt: t.attempt, change });
}

/**
 * What a success may complete: the task's merge group; or, for a validation task whose verdict passed the task it
 * checks, that task's merge group (a validated task merges only once it passed).
 */
async function afterSuccess(opts: WorkerOptions, config: SparkqConfig, task: Task, paint: (code: string, s: string) => string): Promise<void> {
  let subject: Task | null = task;
  if (task.validates !== null) {
    subject = await opts.q.getTask(task.validates).catch(() => null);
    if (subject?.validation?.status !== 'passed') return;
  }
  if (subject.mergeGroup !== null) await mergeGroup(opts, config, subject, paint);
}

/**
 * The task's merge group (a plan batch with merge: auto) merges into its base once all of it succeeded. A merge that
 * stops (a conflict, a base with uncommitted changes) pauses the task's queue with the reason, so that nobody misses
 * it and nothing more is built on the unmerged work; the rest of the group stays on its branches.
 */
async function mergeGroup(opts: WorkerOptions, config: SparkqConfig, task: Task, paint: (code: string, s: string) => string): Promise<void> {
  const { q, write } = opts;
  try {
    const r = await mergeGroupIfDone({ q, workspaceDir: opts.workspaceDir, sparkqDir: sparkqDirOf(opts.workspaceDir) }, task, config.worktree.merge);
    if (r === null) return;
    if (r.merged.length > 0) write(paint('32', `⇢ merge group ${r.group}: ${plural(r.merged.length, 'task')} merged into the base (${r.merged.map((t) => t.id).join(', ')})`) + '\n');
    if (r.stopped) {
      const why = `auto-merge of ${r.group} stopped at ${r.stopped.task.id}: ${r.stopped.reason}`.slice(0, LIMITS.description);
      write(paint('31', `✖ ${why}; ${plural(r.stopped.left.length + 1, 'task')} not merged; queue ${task.queue} paused: merge by hand (sparkq merge ${r.stopped.task.id}), then resume it`) + '\n');
      await q.pauseQueue({ queue: task.queueId, reason: why });
    }
    write('\n');
  } catch (e) {
    write(paint('31', `✖ merge group ${task.mergeGroup ?? ''}: ${errorMessage(e)}`) + '\n\n');
  }
}

/** A worktree that could not be made: the task fails with this message, nothing of it having run. */
class WorktreeSetupError extends Error {}

/** Manual tools: show the prompt and how to finish, then wait for someone at this terminal to finish the task. */
async function runManual(opts: WorkerOptions, task: Task, claim: Claim, signal: AbortSignal, write: (s: string) => void, worktree: string | null): Promise<ExecOutcome | 'external'> {
  write('\n' + (task.prompt ?? JSON.stringify(task.payload, null, 2)) + '\n\n');
  if (worktree) write(`Work in this task's own worktree (its own branch; changes are committed when the task is completed):\n  cd ${quoteForDisplay(worktree)}\n\n`);
  write('This is a manual task: do the work, then finish it from this terminal (SPARKQ_LEASE is not needed here, the lease is given):\n');
  write(`  sparkq complete ${task.id} "what was done, where, counts" [--data "details, as text or JSON"] --lease ${claim.lease}\n`);
  write(`  sparkq fail ${task.id} "what went wrong and what would fix it" [--data "partial results"] --lease ${claim.lease}\n`);
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

/** Writes a validation task's payload to `<runDir>/validate.json`; the environment that names it and the checked task. */
function validateFile(runDir: string, task: Task): NodeJS.ProcessEnv {
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const file = path.join(runDir, 'validate.json');
  fs.writeFileSync(file, JSON.stringify(task.payload, null, 2) + '\n', { mode: 0o600 });
  return { SPARKQ_VALIDATES: task.validates ?? '', SPARKQ_VALIDATE_FILE: file };
}

/** `baseEnv` (the worker's environment with the launcher's dir first on PATH), the tool's env, and the task's. */
function toolEnv(baseEnv: NodeJS.ProcessEnv, tool: ToolConfig, task: Task, lease: string, workspaceDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...baseEnv, ...tool.env };
  env['SPARKQ_TASK_ID'] = task.id;
  env['SPARKQ_QUEUE'] = task.queue;
  env['SPARKQ_LEASE'] = lease;
  env['SPARKQ_WORKSPACE'] = workspaceDir;
  env['PATH'] = baseEnv['PATH'];
  return env;
}

/**
 * The queue as a fix round's agent sees it: the Codex thread and Claude session of the round it fixes (as that
 * round's result data recorded them), where it has them; with parallel workers the queue's own are its latest task's.
 */
function continuing(queue: Queue, fixes: Task | null): Queue {
  const data = fixes?.result?.data;
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) return queue;
  const thread = data['threadId'];
  const session = data['sessionId'];
  return {
    ...queue,
    ...(typeof thread === 'string' ? { codexThreadId: thread } : {}),
    ...(typeof session === 'string' ? { claudeSessionId: session } : {}),
  };
}
