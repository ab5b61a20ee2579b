import { type ApiMethod, QUEUE_API, type QueueApi, type StatusReport, checkParams, invoke } from '../api/contract';
import { SparkqError } from '../core/errors';
import type * as M from '../core/model';
import { MAX_WAIT_SECONDS, claimWaiting } from './claimWait';
import { type ApplyPlanArgs, applyPlanTool } from './planTool';
import { type ToolArgs, toolArgs } from './schema';
import { text } from './text';

/*
 * The agents' tool surface: a small set, each tool one entry of the queue contract (its description is the entry's
 * doc, its arguments the entry's schemas laid flat, its hints the entry's flags), plus what only an agent needs:
 * a claim that can wait for work, and a plan given as YAML text. Every tool costs context on every turn of every agent
 * that has the server (test/unit/mcp.test.ts prints the size of tools/list), so the surface stays at what an
 * orchestrator and a chat worker use; methods for workers and housekeeping (join/leave, release, sweep, purge) are not
 * tools.
 */

export interface ToolCall {
  q: QueueApi;
  workspace: string;
  signal: AbortSignal;
}

export interface SparkqTool {
  name: string;
  title: string;
  /** The contract entry the tool stands for: its doc and its hints. */
  method: ApiMethod;
  /** Said after the entry's doc: how to use the tool, in a sentence. */
  hint?: string;
  /** Whether the change can take work away or set much in motion at once (hosts may ask before running it). */
  destructive: boolean;
  args: ToolArgs;
  run(args: Record<string, unknown>, call: ToolCall): Promise<unknown>;
  /** The result as structuredContent (always a JSON object) and as a short text. */
  present(result: unknown, args: Record<string, unknown>): { structured: Record<string, unknown>; text: string };
}

/** A tool that calls its contract method with the tool's arguments as they are. */
function direct<R>(
  name: string,
  title: string,
  method: ApiMethod,
  present: (r: R, args: Record<string, unknown>) => { structured: Record<string, unknown>; text: string },
  opts: { hide?: string[]; hint?: string; destructive?: boolean } = {},
): SparkqTool {
  const args = toolArgs(name, method, opts.hide);
  return {
    name,
    title,
    method,
    ...(opts.hint !== undefined ? { hint: opts.hint } : {}),
    destructive: opts.destructive ?? false,
    args,
    run: (a, { q }) => {
      const params = args.toParams(a);
      checkParams(method, params);
      return invoke(q, method, params);
    },
    present: (r, a) => present(r as R, a),
  };
}

/** An object result as it is; the text from `t`. */
const as =
  <R extends object>(t: (r: R) => string) =>
  (r: R) => ({ structured: r as Record<string, unknown>, text: t(r) });
/** A list (or other non-object) result under `key`. */
const under =
  <R>(key: string, t: (r: R) => string) =>
  (r: R) => ({ structured: { [key]: r }, text: t(r) });

/** What a worker process reports about a run (its captured output, token usage, agent thread): not an agent's to say. */
const RUNNER_FIELDS = ['stdout', 'stderr', 'usage', 'agentSession', 'change'];

const claimArgs = toolArgs('claim', 'claim', [], {
  waitSeconds: {
    schema: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, description: `wait up to this many seconds for a task (at most ${MAX_WAIT_SECONDS}); default 0` },
  },
});

const planArgs: ToolArgs = {
  inputSchema: {
    type: 'object',
    properties: {
      yaml: { type: 'string', description: 'the plan as YAML text (as in a plan file)' },
      file: { type: 'string', description: 'or: a plan file, relative to the workspace' },
      dryRun: { type: 'boolean', description: 'check it and show its levels and critical path; enqueue nothing' },
    },
    additionalProperties: false,
  },
  toParams: (a) => [a],
};

function checkPlanArgs(a: Record<string, unknown>): ApplyPlanArgs {
  for (const [k, v] of Object.entries(a)) {
    if (k === 'yaml' || k === 'file') {
      if (v !== undefined && typeof v !== 'string') throw new SparkqError('invalid-input', `invalid plan: ${k}: expected a string`);
    } else if (k === 'dryRun') {
      if (v !== undefined && typeof v !== 'boolean') throw new SparkqError('invalid-input', 'invalid plan: dryRun: expected true or false');
    } else {
      throw new SparkqError('invalid-input', `invalid arguments for apply_plan: it takes no ${JSON.stringify(k)}; its arguments are yaml, file, dryRun`);
    }
  }
  return a;
}

function checkWait(v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_WAIT_SECONDS) {
    throw new SparkqError('invalid-input', `invalid claim: waitSeconds: expected a whole number of seconds from 0 to ${MAX_WAIT_SECONDS}`);
  }
  return v;
}

export const TOOLS: readonly SparkqTool[] = [
  direct<StatusReport>('status', 'Queue status', 'status', as(text.status)),
  direct<M.Session[]>('list_sessions', 'List sessions', 'listSessions', under('sessions', text.sessions)),
  direct<M.Queue[]>('list_queues', 'List queues', 'listQueues', under('queues', text.queues)),
  direct<M.Session>('create_session', 'Create session', 'createSession', as(text.session)),
  // A worktree queue's base is resolved in its repository by the CLI or VS Code (`queue create --isolation worktree`).
  direct<M.Queue>('create_queue', 'Create queue', 'createQueue', as(text.queue), { hide: ['isolation'] }),
  // A pattern is recorded by whoever rendered the prompt from its file (`enqueue --pattern`), not typed by an agent.
  direct<M.Task>('enqueue', 'Enqueue task', 'enqueue', as(text.task), {
    hint: 'Needs a prompt or a payload; after takes task ids.',
    hide: ['pattern', 'mergeGroup', 'validate'],
  }),
  {
    name: 'apply_plan',
    title: 'Apply plan',
    method: 'applyPlan',
    hint: 'Give yaml (plan text) or file (in the workspace); dryRun checks only.',
    destructive: false,
    args: planArgs,
    run: (a, { q, workspace }) => applyPlanTool(q, workspace, checkPlanArgs(a)),
    present: (r) => ({ structured: r as Record<string, unknown>, text: text.plan(r as Parameters<typeof text.plan>[0]) }),
  },
  direct<M.TaskPage>('list_tasks', 'List tasks', 'listTasks', as(text.page), { hint: 'Page on with before=next.' }),
  direct<M.TaskDetail>('get_task', 'Get task', 'getTask', as(text.detail)),
  {
    name: 'claim',
    title: 'Claim task',
    method: 'claim',
    hint: 'waitSeconds waits for one. Keep the lease for complete/fail.',
    destructive: false,
    args: claimArgs,
    run: async (a, { q, signal }) => {
      const { waitSeconds, ...rest } = a;
      const wait = checkWait(waitSeconds);
      const params = claimArgs.toParams(rest);
      checkParams('claim', params);
      return claimWaiting(q, params[0] as M.ClaimInput, wait, signal);
    },
    present: (r, a) => {
      const c = r as M.Claim | null;
      return { structured: c === null ? { claimed: false } : { claimed: true, ...c }, text: text.claim(c, String(a['queue'])) };
    },
  },
  direct<void>('heartbeat', 'Heartbeat', 'heartbeat', (_r, a) => ({ structured: { ok: true }, text: `Heartbeat recorded for ${String(a['task'])}.` })),
  direct<M.Task>('complete', 'Complete task', 'complete', as(text.task), { hide: RUNNER_FIELDS }),
  direct<M.Task>('fail', 'Fail task', 'fail', as(text.task), { hide: RUNNER_FIELDS }),
  direct<M.Task>('verdict', 'Give verdict', 'verdict', as(text.task), { hint: 'For a validation task (its validates names the checked task); fail feedback goes to the next round.' }),
  direct<M.Task>('requeue', 'Requeue task', 'requeue', as((t: M.Task) => `Requeued ${t.retryOf ?? ''} as ${t.id}.`)),
  direct<M.Task[]>('requeue_failed', 'Requeue failed tasks', 'requeueFailed', under('tasks', (ts: M.Task[]) => (ts.length === 0 ? 'No failed tasks to requeue.' : ts.map((t) => `${t.retryOf ?? ''} → ${t.id} queue=${t.queue}`).join('\n'))), {
    destructive: true,
  }),
  direct<M.Queue>('pause_queue', 'Pause queue', 'pauseQueue', as(text.queue), { destructive: true }),
  direct<M.Queue>('resume_queue', 'Resume queue', 'resumeQueue', as(text.queue)),
  direct<M.Report>('report', 'Usage report', 'report', as(text.report)),
];

/** The tool's description: the contract entry's doc, then its hint. */
export function describeTool(t: SparkqTool): string {
  const doc = QUEUE_API[t.method].doc;
  return t.hint !== undefined ? `${doc} ${t.hint}` : doc;
}

/** Its annotations, all four set: a host treats an unset hint as the unsafe side. */
export function annotationsOf(t: SparkqTool): { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean; openWorldHint: boolean } {
  const spec = QUEUE_API[t.method];
  return { readOnlyHint: !spec.changesState, destructiveHint: t.destructive, idempotentHint: spec.safeToRepeat, openWorldHint: false };
}
