import type { z } from 'zod';
import { SparkqError } from './errors';
import { ApplyPlanInput, EnqueueInput, type JsonValue, LIMITS, type Usage } from './model';
import { isRecord } from './guards';
import { wellFormedProblem } from './wellFormed';

/*
 * The checks of a request that need nothing but the request: its schema and its size limits. The queue runs them
 * first; a client of a live owner runs the same ones before it sends, so a value over a limit gets the same answer
 * whoever owns the queue (a 10 MB prompt is "longer than 262144 bytes", never a frame too large for the socket).
 */

/** Usage as JSON is at most this long. */
const USAGE_JSON_BYTES = 4096;

/**
 * Null when every text of `input` (keys included) is well-formed Unicode and none of its fields nests deeper than
 * LIMITS.jsonDepth; otherwise what is wrong, naming the field. Depth counts from each field of an input object, so that
 * a payload may nest exactly as deep as the limit says. Runs before any schema: zod's JSON schema is recursive.
 */
export function inputProblem(input: unknown, what: string, at = ''): string | null {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return wellFormedProblem(input, at === '' ? what : at.replace(/\.$/, ''), LIMITS.jsonDepth);
  const fields = input as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    // A bad key is reported escaped by the walker (one level holding just that key), never echoed raw.
    const problem = wellFormedProblem(key, '', 0) === null ? wellFormedProblem(fields[key], at + key, LIMITS.jsonDepth) : wellFormedProblem({ [key]: null }, what, 1);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * Input objects the owner's IPC boundary has just read, each with what its schema gave, for the queue's own check of
 * the same object in the same turn (see checkedForRun): a request is parsed once, not at the boundary and again in the
 * queue. Taken on first use. Only a request decoded from a frame is ever recorded, an object no one else holds.
 */
const vouched = new WeakMap<object, { schema: z.ZodType; output: unknown }>();
let recording = false;

/** Runs the boundary's checks of a request that is run right after, in this turn; see `vouched`. */
export function checkedForRun(check: () => void): void {
  recording = true;
  try {
    check();
  } finally {
    recording = false;
  }
}

/**
 * `input` as `schema` reads it; otherwise invalid-input naming each field that is wrong. `problemOf` finds what the
 * schema must not see first (inputProblem; a plan's own for applyPlan, see checkPlanApply).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string, problemOf = inputProblem): z.output<S> {
  const isObject = typeof input === 'object' && input !== null;
  if (isObject) {
    const known = vouched.get(input);
    if (known?.schema === schema) {
      vouched.delete(input);
      return known.output as z.output<S>;
    }
  }
  const problem = problemOf(input, what);
  if (problem !== null) throw new SparkqError('invalid-input', `invalid ${what}: ${problem}`);
  const r = schema.safeParse(input);
  if (r.success) {
    if (recording && isObject) vouched.set(input, { schema, output: r.data });
    return r.data;
  }
  const issues = r.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new SparkqError('invalid-input', `invalid ${what}: ${issues.join('; ')}`);
}

/** A value as the JSON text it is stored as; invalid-input if that is longer than `max`. Null for no value. */
export function jsonText(value: unknown, max: number, what: string): string | null {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  if (text.length > max) throw new SparkqError('invalid-input', `${what} is ${text.length} bytes as JSON; the limit is ${max}. Write large results to a file and put its path in ${what}.`);
  return text;
}

/** An enqueue's own checks: its fields, a prompt or a payload, and the payload's size. */
export function checkEnqueue(input: unknown, what = 'task'): { input: z.output<typeof EnqueueInput>; payload: string | null } {
  const e = parseInput(EnqueueInput, input, what);
  if (e.prompt === undefined && e.payload === undefined) {
    throw new SparkqError('invalid-input', 'a task needs a prompt or a payload (or both)');
  }
  return { input: e, payload: jsonText(e.payload, LIMITS.payload, 'payload') };
}

/** The own checks of an end of a running task (complete, fail, hand back): its fields and the size of data and usage. */
export function checkOutcome<T extends { data?: JsonValue | undefined; usage?: Usage | undefined }>(
  schema: z.ZodType<T>,
  input: unknown,
  what: string,
): { input: T; data: string | null; usage: string | null } {
  const c: T = parseInput(schema, input, what);
  return { input: c, data: jsonText(c.data, LIMITS.data, 'data'), usage: jsonText(c.usage, USAGE_JSON_BYTES, 'usage') };
}

/**
 * An applyPlan's own checks: each of its tasks is checked as the enqueue it becomes, so a payload in a plan nests
 * exactly as deep as one enqueued alone (LIMITS.jsonDepth from the task's own field, not from the plan's).
 */
export function checkPlanApply(input: unknown): z.output<typeof ApplyPlanInput> {
  return parseInput(ApplyPlanInput, input, 'plan', planProblem);
}

function planProblem(input: unknown, what: string): string | null {
  if (!isRecord(input) || !isRecord(input['plan']) || !Array.isArray(input['plan']['tasks'])) return inputProblem(input, what);
  const { plan, ...rest } = input;
  const { tasks, ...head } = plan as Record<string, unknown> & { tasks: unknown[] };
  const problem = inputProblem(rest, what) ?? inputProblem(head, what, 'plan.');
  if (problem !== null) return problem;
  for (let i = 0; i < tasks.length; i++) {
    const p = inputProblem(tasks[i], what, `plan.tasks[${i}].`);
    if (p !== null) return p;
  }
  return null;
}
