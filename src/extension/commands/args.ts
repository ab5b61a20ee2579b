import { z } from 'zod';
import { QueueNode, SessionNode, TaskNode } from '../views/nodes';
import { REPORT_GROUPS, ValidateSpecSchema } from '../../core/model';
import { MERGE_MODES, type MergeMode } from '../../core/config';
import { UserFacingError } from '../errors';

/**
 * Commands take their arguments in one of three shapes: nothing (from the palette: ask), a tree row (from a view's
 * menu), or an arguments object (from scripts, keybindings and tests, e.g. `{ queue, tool, prompt }`).
 * `readArgs` turns a row into the object it stands for and validates objects strictly, so that a misspelt key is
 * reported instead of silently asking.
 */
export type Invocation<T> = { interactive: true; args: Partial<T> } | { interactive: false; args: T };

export function readArgs<S extends z.ZodObject>(command: string, schema: S, raw: unknown): Invocation<z.output<S>> {
  if (raw === undefined || raw === null) return { interactive: true, args: {} };
  let given: unknown = raw;
  if (raw instanceof TaskNode) given = { task: raw.task.id };
  else if (raw instanceof QueueNode) given = { queue: raw.queue.id };
  else if (raw instanceof SessionNode) given = { session: raw.session.id };
  else if (typeof raw === 'string') given = { [primaryKey(schema)]: raw };
  const fromRow = given !== raw || typeof raw === 'string';
  // A row or a bare id fills one field; the rest is asked for.
  const parsed = (fromRow ? schema.partial() : schema).safeParse(given);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    throw new UserFacingError(`${command}: invalid arguments (${issues}). Expected ${describeShape(schema)}.`);
  }
  return fromRow ? { interactive: true, args: parsed.data as Partial<z.output<S>> } : { interactive: false, args: parsed.data as z.output<S> };
}

function primaryKey(schema: z.ZodObject): string {
  const keys = Object.keys(schema.shape);
  return keys.find((k) => ['task', 'queue', 'session', 'name'].includes(k)) ?? keys[0] ?? 'value';
}

function describeShape(schema: z.ZodObject): string {
  const keys = Object.entries(schema.shape).map(([k, v]) => ((v as z.ZodType).safeParse(undefined).success ? `${k}?` : k));
  return `{ ${keys.join(', ')} }`;
}

const ref = z.string().trim().min(1);
const json = z.json();

export const ArgSchemas = {
  setup: z
    .object({
      project: z.string().trim().min(1).optional(),
      scriptDirs: z.array(z.string().trim().min(1)).optional(),
      session: z.string().trim().min(1).optional(),
      queue: z.string().trim().min(1).optional(),
      instructions: z.string().optional(),
      overwrite: z.boolean().optional(),
    })
    .strict(),
  connectTeamDatabase: z.object({ url: z.string().trim().min(1) }).strict(),
  createSession: z.object({ name: ref, description: z.string().optional() }).strict(),
  endSession: z.object({ session: ref }).strict(),
  createQueue: z
    .object({
      name: ref,
      session: ref.optional(),
      instructions: z.string().optional(),
      workdir: z.string().min(1).optional(),
      maxWorkers: z.number().int().min(1).optional(),
      maxAttempts: z.number().int().min(1).optional(),
      isolation: z.enum(['none', 'worktree']).optional(),
      base: ref.optional(),
      baseFollow: z.boolean().optional(),
    })
    .strict(),
  /** prune: what to do with an ended worktree queue's merged worktrees without asking ('none' by default; unmerged work only ever after a modal yes). */
  endQueue: z.object({ queue: ref, prune: z.enum(['merged', 'none']).optional() }).strict(),
  taskChange: z.object({ task: ref }).strict(),
  mergeChange: z.object({ task: ref, mode: z.enum(MERGE_MODES as [MergeMode, ...MergeMode[]]).optional() }).strict(),
  /** open: false only makes sure the worktree is there and returns its folder. */
  openWorktree: z.object({ task: ref, open: z.boolean().optional() }).strict(),
  /** confirm: ask the modal question even when called with arguments (the dashboard's button does). */
  discardChange: z.object({ task: ref, confirm: z.boolean().optional() }).strict(),
  enqueue: z
    .object({
      queue: ref,
      /** Optional only with a pattern that names its tool. */
      tool: ref.optional(),
      prompt: z.string().optional(),
      /** Make the prompt from this prompt pattern, as `sparkq enqueue --pattern` (the prompt, if given, is added after it). */
      pattern: ref.optional(),
      /** Values of the pattern's variables (`--var k=v`). */
      vars: z.record(z.string(), z.string()).optional(),
      /** Check the result with a validator (`--validate-with`…); default: the pattern's, then the tool's in sparkq.yml. */
      validate: ValidateSpecSchema.optional(),
      payload: json.optional(),
      timeoutSeconds: z.number().int().positive().optional(),
      priority: z.number().int().optional(),
      after: z.array(ref).optional(),
    })
    .strict(),
  claim: z.object({ queue: ref, worker: z.string().min(1).optional() }).strict(),
  complete: z.object({ task: ref, summary: z.string(), data: json.optional(), lease: z.string().min(1).optional() }).strict(),
  fail: z.object({ task: ref, error: z.string(), data: json.optional(), lease: z.string().min(1).optional() }).strict(),
  requeue: z.object({ task: ref }).strict(),
  showTask: z.object({ task: ref, preview: z.boolean().optional() }).strict(),
  startWorker: z.object({ queue: ref }).strict(),
  startWorkers: z.object({ queue: ref.optional(), session: ref.optional(), count: z.number().int().min(1).optional() }).strict(),
  applyPlan: z.object({ file: ref, dryRun: z.boolean().optional() }).strict(),
  pauseQueue: z.object({ queue: ref, forSeconds: z.number().positive().optional(), reason: z.string().optional() }).strict(),
  resumeQueue: z.object({ queue: ref }).strict(),
  requeueFailed: z.object({ queue: ref.optional(), plan: ref.optional(), session: ref.optional() }).strict(),
  report: z.object({ session: ref.optional(), plan: ref.optional(), by: z.enum(REPORT_GROUPS).optional() }).strict(),
  stopWorker: z.object({ queue: ref }).strict(),
  purge: z.object({ olderThanDays: z.number().min(0) }).strict(),
  filterTasks: z.object({ status: z.array(z.enum(['queued', 'running', 'succeeded', 'failed', 'stale'])) }).strict(),
  none: z.object({}).strict(),
} as const;
