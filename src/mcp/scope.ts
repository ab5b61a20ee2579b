import type { QueueApi } from '../api/contract';
import { SparkqError } from '../core/errors';
import type * as M from '../core/model';
import type { ToolArgs } from './schema';
import { type SparkqTool, type ToolCall, TOOLS } from './tools';

/*
 * `sparkq mcp --queue Q [--task T]`: the server an agent running inside a task gets. Every tool is limited to the one
 * queue (a call that names another queue, or a task of another queue, is a tool error and changes nothing), and the
 * list is what such an agent needs: put follow-up work on its queue, read its queue's tasks, and report on its own
 * task (heartbeat, complete with structured data, fail). With --task, those three default to that task and to its
 * lease (from the worker's SPARKQ_LEASE, never from an argument or a file), and finish no other task.
 */

export interface McpScope {
  /** The queue, as it was when the server started (its id and name do not change; its session neither). */
  queue: Pick<M.Queue, 'id' | 'name' | 'sessionId' | 'session'>;
  /** The task the agent runs for, with the lease of its running attempt when the worker gave it. */
  task?: { id: string; lease?: string };
}

/** The tools of a scoped server, in this order. */
export const SCOPED_TOOL_NAMES = ['enqueue', 'list_tasks', 'get_task', 'heartbeat', 'complete', 'fail', 'verdict'] as const;

/** Resolves `--queue` and `--task` against the queue: a clear error when either does not exist or they do not fit. */
export async function resolveScope(q: QueueApi, queueRef: string, task?: { id: string; lease?: string }): Promise<McpScope> {
  const queue = await q.getQueue(queueRef);
  const scope: McpScope = { queue: { id: queue.id, name: queue.name, sessionId: queue.sessionId, session: queue.session } };
  if (task !== undefined) {
    const t = await q.getTask(task.id);
    if (t.queueId !== queue.id) throw new SparkqError('invalid-input', `task ${t.id} is on queue ${t.queue}, not on ${queue.name} (${queue.id}): --task must be a task of --queue`);
    scope.task = task;
  }
  return scope;
}

const label = (s: McpScope) => `${s.queue.name} (${s.queue.id})`;

function refused(s: McpScope, what: string): SparkqError {
  return new SparkqError('invalid-input', `this SparkQ server is limited to queue ${label(s)}: ${what}`);
}

/** The queue a call names, checked: undefined stays undefined (the caller fills in the scope's). */
function checkQueueRef(s: McpScope, ref: unknown, tool: string): void {
  if (ref === undefined) return;
  if (ref !== s.queue.id && ref !== s.queue.name) throw refused(s, `${tool} on queue ${JSON.stringify(ref)} is refused; leave queue out, or give ${JSON.stringify(s.queue.name)}`);
}

/** The task must be on the scope's queue; a task elsewhere reads as not there (nothing about it is told). */
async function checkTaskOnQueue(s: McpScope, q: QueueApi, id: unknown, tool: string): Promise<void> {
  if (typeof id !== 'string' || id === '') return; // the contract's own check names the missing field
  const t = await q.getTask(id).catch(() => null);
  if (t === null || t.queueId !== s.queue.id) throw refused(s, `${tool}: task ${id} is not a task of this queue`);
}

/** The input schema without the given fields required, each such field described as defaulted. */
function relaxed(args: ToolArgs, defaults: Record<string, string>): ToolArgs {
  const schema = structuredClone(args.inputSchema);
  const props = schema['properties'] as Record<string, Record<string, unknown>>;
  for (const [field, text] of Object.entries(defaults)) {
    if (props[field] !== undefined) props[field] = { ...props[field], description: text };
  }
  const required = ((schema['required'] as string[] | undefined) ?? []).filter((f) => !(f in defaults));
  if (required.length > 0) schema['required'] = required;
  else delete schema['required'];
  return { inputSchema: schema, toParams: (a) => args.toParams(a) };
}

/**
 * `base` limited to the scope: `fill` puts in the defaults (and refuses what is plainly out of scope), `check` looks
 * up what needs the queue; the result goes through `after` (e.g. a task read checked against the queue).
 */
function limit(
  base: SparkqTool,
  hint: string,
  args: ToolArgs,
  fill: (a: Record<string, unknown>) => Record<string, unknown>,
  check: (a: Record<string, unknown>, call: ToolCall) => Promise<void> = () => Promise.resolve(),
  after: (r: unknown) => void = () => undefined,
): SparkqTool {
  return {
    ...base,
    hint: base.hint !== undefined ? `${base.hint} ${hint}` : hint,
    args,
    run: async (a, call) => {
      const filled = fill(a);
      await check(filled, call);
      const r = await base.run(filled, call);
      after(r);
      return r;
    },
    present: (r, a) => base.present(r, fill(a)),
  };
}

/** The scoped server's tools: SCOPED_TOOL_NAMES, each limited to the scope's queue (and task). */
export function scopedTools(s: McpScope): SparkqTool[] {
  const base = (name: string) => {
    const t = TOOLS.find((x) => x.name === name);
    if (t === undefined) throw new Error(`scopedTools: no tool ${name}`);
    return t;
  };
  const queueDefault = `this server's queue, ${s.queue.name}; no other is allowed`;
  const own = s.task;

  /** heartbeat/complete/fail: the scope's task (and lease) unless given; with --task, no other task. */
  const ownTask = (name: string): SparkqTool => {
    const t = base(name);
    const defaults: Record<string, string> = {};
    if (own !== undefined) {
      defaults['task'] = `default: your own task, ${own.id}`;
      if (own.lease !== undefined) defaults['lease'] = 'default: the lease of your own task';
    }
    return limit(
      t,
      own !== undefined ? `Only your own task ${own.id}; task and lease may be left out.` : `Only tasks of queue ${s.queue.name}.`,
      relaxed(t.args, defaults),
      (a) => {
        if (own === undefined) return a;
        const task = a['task'] ?? own.id;
        if (task !== own.id) throw refused(s, `${name} is for this agent's own task ${own.id} only, not ${JSON.stringify(task)}`);
        return { ...a, task, ...(a['lease'] === undefined && own.lease !== undefined ? { lease: own.lease } : {}) };
      },
      own !== undefined ? undefined : async (a, call) => checkTaskOnQueue(s, call.q, a['task'], name),
    );
  };

  const enqueue = base('enqueue');
  const listTasks = base('list_tasks');
  const getTask = base('get_task');
  return [
    limit(
      enqueue,
      `Only on queue ${s.queue.name} (the default); after takes tasks of that queue.`,
      relaxed(enqueue.args, { queue: queueDefault }),
      (a) => {
        checkQueueRef(s, a['queue'], 'enqueue');
        return { ...a, queue: s.queue.id };
      },
      async (a, call) => {
        if (Array.isArray(a['after'])) for (const id of a['after']) await checkTaskOnQueue(s, call.q, id, 'enqueue after');
      },
    ),
    limit(listTasks, `Only the tasks of queue ${s.queue.name}.`, relaxed(listTasks.args, { queue: queueDefault }), (a) => {
      checkQueueRef(s, a['queue'], 'list_tasks');
      if (a['session'] !== undefined && a['session'] !== s.queue.sessionId && a['session'] !== s.queue.session) {
        throw refused(s, `list_tasks in session ${JSON.stringify(a['session'])} is refused; its session is ${s.queue.session}`);
      }
      return { ...a, queue: s.queue.id };
    }),
    limit(
      getTask,
      `Only tasks of queue ${s.queue.name}.`,
      getTask.args,
      (a) => a,
      undefined,
      (r) => {
        const t = r as M.TaskDetail;
        if (t.queueId !== s.queue.id) throw refused(s, `get_task: task ${t.id} is not a task of this queue`);
      },
    ),
    ownTask('heartbeat'),
    ownTask('complete'),
    ownTask('fail'),
    // A validator agent gives its verdict on its own (validation) task.
    ownTask('verdict'),
  ];
}

/** What a scoped server tells the agent when it connects. */
export function scopedInstructions(s: McpScope): string {
  const who =
    s.task !== undefined
      ? `You are running SparkQ task ${s.task.id}. When your work is done, call complete with a one-line summary and any structured result as data (or fail with the reason); heartbeat tells the queue you are still working. `
      : '';
  return `SparkQ tools limited to queue ${s.queue.name} (${s.queue.id}) of session ${s.queue.session}. ${who}Use enqueue to put follow-up work on this queue, and list_tasks/get_task to read its tasks.`;
}
