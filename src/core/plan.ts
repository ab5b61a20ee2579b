import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import { z } from 'zod';
import { isRecord } from './guards';
import { looksLikeId } from './ids';
import { type JsonValue, LIMITS, type PlanInput, type PlanTaskInput, type ValidateSpec } from './model';
import { fillTemplate, joinPrompts, type Pattern, PatternError, type PatternLoader, taskPatternOf, variableProblems, variableText } from './patterns';
import { findCycles, topoOrder } from './planGraph';
import { describe, editDistance, expected, floatSource, keyOffset, locate, offsetOf, pathString, type Seg, SourceError, type SourceIssue, unknownKeyMessage, valueOffset, YamlSource } from './yamlSource';

/**
 * Plan files (`sparkq plan apply PLAN.yml`): a YAML list of tasks with dependencies, in flat `tasks` and/or named
 * `batches`. Parsed with the YAML 1.2 core schema and validated strictly, like sparkq.yml: nothing is coerced, an
 * unknown key is an error, and every issue carries its line and column. All issues are collected before throwing,
 * and a plan is returned only when there are none.
 *
 * A little over 500 lines, on purpose: the file's schema and parsePlan, one pass over the document that resolves names,
 * batches and prompt files and collects every issue with its position, read best as one piece. The graph of a plan
 * (cycles, order, levels, critical path) is in planGraph.ts.
 */

/**
 * A plan task as the queue applies it (PlanTaskInput: `prompt` holds promptFile's content when the file gave one;
 * `after` has batch names expanded to their tasks, deduplicated), with where it came from in the file.
 */
export interface PlanTask extends PlanTaskInput {
  /** The batch the task belongs to; null for a task under the top-level tasks. */
  batch: string | null;
  /** 1-based line of the task's entry. */
  line: number;
}

/** Its tasks are in a topological order: every task after all plan tasks it waits on; otherwise in file order. */
export interface Plan extends PlanInput {
  tasks: PlanTask[];
}

/** An issue in a plan file, with the path and the line and column it was written at. */
export type PlanIssue = SourceIssue;

export class PlanError extends SourceError {
  constructor(file: string, issues: PlanIssue[]) {
    super('invalid-input', file, issues);
    this.name = 'PlanError';
  }
}

export interface PlanChecks {
  /** The tools defined in sparkq.yml (built-in and configured). */
  tools: readonly string[];
  /** Whether a queue name or id exists; when absent, queues are not checked. */
  queueExists?: (ref: string) => boolean;
  /** Whether a task id exists; when absent, tsk_ ids are only checked for their form. */
  taskExists?: (id: string) => boolean;
  /** The prompt patterns (sparkq.yml `patterns:`) that `pattern:` names; when absent, a plan that uses one is refused. */
  patterns?: PatternLoader;
}

export interface ParsePlanOptions {
  /** Reads a promptFile (absolute path) as UTF-8; default: the file system, refusing files over the prompt limit. */
  readFile?: (absPath: string) => string;
}

// ---- limits and schema ----------------------------------------------------------------------------------------

export const PLAN_LIMITS = {
  maxTasks: 10_000,
  maxFileBytes: 4 * 1024 * 1024,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ID_PREFIX = /^(ses|que|tsk)_/;

/** Why a name is not valid, or null when it is. */
function nameProblem(s: string, noun: string): string | null {
  if (s.length === 0) return `expected a ${noun}, got an empty string`;
  if (s.length > LIMITS.name) return `a ${noun} must be at most ${LIMITS.name} characters, got ${s.length}`;
  if (!NAME.test(s)) return `a ${noun} must start with a letter or digit and hold only letters, digits, ".", "_" and "-", got ${describe(s)}`;
  if (ID_PREFIX.test(s)) return `a ${noun} must not start with an id prefix (ses_, que_, tsk_), got ${describe(s)}`;
  return null;
}

function nameSchema(noun: string) {
  return z.string(expected(`a ${noun}`)).superRefine((s, ctx) => {
    const p = nameProblem(s, noun);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });
}

function intSchema(what: string, min: number, max: number) {
  const e = expected(what);
  return z.number(e).int(e).min(min, e).max(max, e);
}

const timeoutSchema = () => intSchema(`a whole number of seconds from 1 to ${LIMITS.maxTimeoutSeconds}`, 1, LIMITS.maxTimeoutSeconds);
const prioritySchema = () => intSchema(`an integer from ${-LIMITS.maxPriority} to ${LIMITS.maxPriority}`, -LIMITS.maxPriority, LIMITS.maxPriority);
const refSchema = () => z.string(expected('a string: a task or batch name, or a task id (tsk_…)')).min(1, expected('a task or batch name, or a task id (tsk_…)'));
const afterSchema = () => z.array(refSchema(), expected('a list of task or batch names or task ids, e.g. [setup, tsk_4k2m9x0q7hzt]'));
const queueRefSchema = () => z.string(expected('a queue name or id')).min(1, expected('a queue name or id')).max(LIMITS.name, expected(`a queue name or id of at most ${LIMITS.name} characters`));
const toolRefSchema = () => z.string(expected('a tool name from sparkq.yml')).min(1, expected('a tool name from sparkq.yml'));
const patternRefSchema = () => nameSchema('pattern name');
/** A pattern's variables: `with: { resource: users, retries: 3 }`. */
const withSchema = () =>
  z
    .record(
      z.string(),
      z.union([z.string(), z.number(), z.boolean()], expected('a string, a number or a boolean (the value of a pattern variable)')),
      expected('a mapping of pattern variable → value, e.g. { resource: users }'),
    )
    .nullable();

/** Why a value is not JSON data, or null when it is. */
function jsonProblem(v: unknown, depth = 0): string | null {
  // Levels are counted as the queue counts them: each list or mapping is one ([] is one level).
  if (typeof v === 'object' && v !== null && depth >= LIMITS.jsonDepth) return `nested more than ${LIMITS.jsonDepth} levels deep (the limit of a payload)`;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : `expected JSON data, got the number ${v} (JSON has no infinities or NaN)`;
  if (Array.isArray(v)) {
    for (const x of v) {
      const p = jsonProblem(x, depth + 1);
      if (p) return p;
    }
    return null;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v as Record<string, unknown>)) {
      const p = jsonProblem(x, depth + 1);
      if (p) return p;
    }
    return null;
  }
  return `expected JSON data (null, booleans, numbers, strings, lists and mappings), got ${describe(v)}`;
}

const payloadSchema = () =>
  z.unknown().superRefine((v, ctx) => {
    const p = jsonProblem(v);
    if (p) return void ctx.addIssue({ code: 'custom', message: p });
    const bytes = Buffer.byteLength(JSON.stringify(v), 'utf8');
    if (bytes > LIMITS.payload) ctx.addIssue({ code: 'custom', message: `the payload is ${bytes} bytes as JSON; at most ${LIMITS.payload} bytes: put large data in a file and pass its path` });
  });

const promptSchema = () =>
  z.string(expected('a string (the prompt)')).superRefine((s, ctx) => {
    const bytes = Buffer.byteLength(s, 'utf8');
    if (bytes > LIMITS.prompt) ctx.addIssue({ code: 'custom', message: `the prompt is ${bytes} bytes; at most ${LIMITS.prompt} bytes` });
  });

/** A validator: `validate: { tool: llm-haiku, prompt: …, queue: checks, maxRounds: 2 }` on a task, a batch or defaults. */
const validateSchema = () =>
  z
    .object(
      {
        tool: toolRefSchema(),
        prompt: promptSchema().optional(),
        queue: queueRefSchema().optional(),
        maxRounds: intSchema('a whole number from 1 to 10', 1, 10).optional(),
      },
      expected('a validator: a mapping with tool (and optionally prompt, queue, maxRounds)'),
    )
    .strict();

const TaskSchema = z
  .object(
    {
      name: nameSchema('task name'),
      queue: queueRefSchema().optional(),
      tool: toolRefSchema().optional(),
      prompt: promptSchema().optional(),
      promptFile: z.string(expected("a path relative to the plan file's folder")).min(1, expected("a path relative to the plan file's folder")).optional(),
      payload: payloadSchema().optional(),
      timeoutSeconds: timeoutSchema().optional(),
      priority: prioritySchema().optional(),
      after: afterSchema().optional(),
      pattern: patternRefSchema().optional(),
      with: withSchema().optional(),
      validate: validateSchema().optional(),
    },
    expected('a task: a mapping with name, queue, tool and prompt (e.g. { name: schema, prompt: Write the schema })'),
  )
  .strict();

const BatchSchema = z
  .object(
    {
      name: nameSchema('batch name'),
      after: afterSchema().optional(),
      tasks: z.array(TaskSchema, expected('a list of tasks')),
      pattern: patternRefSchema().optional(),
      with: withSchema().optional(),
      merge: z.enum(['auto', 'none'], expected('auto or none')).optional(),
      validate: validateSchema().optional(),
    },
    expected('a batch: a mapping with name and tasks (and optionally after)'),
  )
  .strict();

const DefaultsSchema = z
  .object(
    {
      queue: queueRefSchema().optional(),
      tool: toolRefSchema().optional(),
      timeoutSeconds: timeoutSchema().optional(),
      priority: prioritySchema().optional(),
      pattern: patternRefSchema().optional(),
      with: withSchema().optional(),
      validate: validateSchema().optional(),
    },
    expected('a mapping of defaults (queue, tool, timeoutSeconds, priority, pattern, with, validate)'),
  )
  .strict();

const PlanFileSchema = z
  .object(
    {
      id: nameSchema('plan id').optional(),
      description: z.string(expected('a string')).max(LIMITS.description, expected(`a string of at most ${LIMITS.description} characters`)).nullable().optional(),
      defaults: DefaultsSchema.nullable().optional(),
      tasks: z.array(TaskSchema, expected('a list of tasks')).nullable().optional(),
      batches: z.array(BatchSchema, expected('a list of batches')).nullable().optional(),
    },
    expected('a plan: a mapping with tasks and/or batches at the top level'),
  )
  .strict();

function unknownKey(key: string, allowed: string[]): string {
  if (key === '<<') return `unknown key "<<": YAML merge keys are not supported in plan files; use defaults or write the settings out; expected one of: ${allowed.join(', ')}`;
  return unknownKeyMessage(key, allowed);
}

/** Up to three names close to `s`, for "did you mean" hints. */
function nearNames(s: string, names: Iterable<string>): string[] {
  const lower = s.toLowerCase();
  return [...names]
    .map((n) => ({ n, d: editDistance(lower, n.toLowerCase()) }))
    .filter((x) => x.d < Math.max(x.n.length, s.length) && x.d <= Math.max(1, Math.floor(Math.max(x.n.length, s.length) / 3)))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, 3)
    .map((x) => x.n);
}

function didYouMean(s: string, names: Iterable<string>): string {
  const near = nearNames(s, names);
  return near.length ? ` (did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?)` : '';
}

function defaultReadFile(absPath: string): string {
  const st = fs.statSync(absPath);
  if (!st.isFile()) throw new Error('not a file');
  if (st.size > LIMITS.prompt) throw new Error(`the file is ${st.size} bytes; a prompt is at most ${LIMITS.prompt} bytes`);
  return fs.readFileSync(absPath, 'utf8');
}

// ---- parsing ---------------------------------------------------------------------------------------------------

/** One task entry as written, before validation finished. */
interface Entry {
  path: Seg[];
  raw: Record<string, unknown>;
  name: string | null;
  batch: string | null;
  batchPath: Seg[] | null;
  batchRaw: Record<string, unknown> | null;
  offset: number;
}

export function parsePlan(text: string, file: string, checks: PlanChecks, opts: ParsePlanOptions = {}): Plan {
  const src = new YamlSource(text);
  const { doc, push, issues } = src;
  const at = (offset: number | undefined) => src.at(offset);
  const fail = () => new PlanError(file, src.sortedIssues());
  const offsetAt = (p: readonly Seg[]): number => valueOffset(doc, p);

  // 1. YAML syntax.
  src.checkYamlErrors();
  if (issues.length) throw fail();

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    push('', 0, 'the plan has no tasks: add a list under tasks (or batches), e.g. tasks: [{ name: build, queue: backend, tool: run-bash, prompt: build.sh }]');
    throw fail();
  }
  if (!isMap(root)) {
    push([], offsetOf(root), `expected a plan: a mapping with tasks and/or batches at the top level, got ${isSeq(root) ? 'a list' : 'a single value'}`);
    throw fail();
  }

  src.checkPlainKeys(root);
  if (issues.length) throw fail();

  const raw = src.load();
  if (raw === undefined) throw fail();

  // 2. Shape, types and limits.
  const result = PlanFileSchema.safeParse(raw);
  if (!result.success) src.reportSchemaIssues(PlanFileSchema, result.error.issues, unknownKey);

  // 3. Everything that needs more than one key at a time, on what was written, so that one run reports everything.
  const rawObj = isRecord(raw) ? raw : {};
  const pathHasIssue = (p: readonly Seg[]) => {
    const ps = pathString(p);
    return issues.some((i) => i.path === ps || i.path.startsWith(`${ps}.`) || i.path.startsWith(`${ps}[`));
  };

  // Integers written as floats (1.0, 3e2) load as whole numbers; the source text shows they were floats.
  const checkInts = (p: Seg[]) => {
    for (const k of ['timeoutSeconds', 'priority']) {
      const n = locate(doc, [...p, k]);
      const float = n.depth === p.length + 1 ? floatSource(n.node) : undefined;
      if (float === undefined || pathHasIssue([...p, k])) continue;
      push([...p, k], offsetOf(n.node), `expected an integer, got the float ${float}`);
    }
  };
  checkInts(['defaults']);

  // Collect task entries from tasks and batches, in file order.
  const entries: Entry[] = [];
  const entryOf = (t: unknown, p: Seg[], batch: string | null, batchPath: Seg[] | null, batchRaw: Record<string, unknown> | null) => {
    if (!isRecord(t)) return;
    entries.push({ path: p, raw: t, name: typeof t['name'] === 'string' ? t['name'] : null, batch, batchPath, batchRaw, offset: offsetAt(p) });
  };
  if (Array.isArray(rawObj['tasks'])) rawObj['tasks'].forEach((t, i) => entryOf(t, ['tasks', i], null, null, null));
  const batches: { name: string | null; path: Seg[]; raw: Record<string, unknown>; offset: number }[] = [];
  if (Array.isArray(rawObj['batches'])) {
    rawObj['batches'].forEach((b, i) => {
      if (!isRecord(b)) return;
      const bp: Seg[] = ['batches', i];
      const name = typeof b['name'] === 'string' ? b['name'] : null;
      batches.push({ name, path: bp, raw: b, offset: offsetAt(bp) });
      if (Array.isArray(b['tasks'])) b['tasks'].forEach((t, j) => entryOf(t, [...bp, 'tasks', j], name, bp, b));
    });
  }
  entries.sort((a, b) => a.offset - b.offset);
  for (const e of entries) checkInts(e.path);

  if (entries.length === 0 && !pathHasIssue(['tasks']) && !pathHasIssue(['batches'])) {
    push([], offsetOf(root), 'the plan has no tasks: add a list under tasks (or batches), e.g. tasks: [{ name: build, queue: backend, tool: run-bash, prompt: build.sh }]');
  }
  if (entries.length > PLAN_LIMITS.maxTasks) {
    push([], offsetOf(root), `the plan has ${entries.length} tasks; at most ${PLAN_LIMITS.maxTasks} tasks per plan: split it into several plans`);
  }

  // Names: tasks and batches share one namespace.
  const named = new Map<string, { kind: 'task' | 'batch'; line: number | null; entry?: Entry }>();
  const nameLine = (p: Seg[]) => at(offsetAt([...p, 'name'])).line;
  const claim = (name: string | null, kind: 'task' | 'batch', p: Seg[], entry?: Entry) => {
    if (name === null || name.length === 0) return;
    const prev = named.get(name);
    if (prev) {
      push([...p, 'name'], offsetAt([...p, 'name']), `duplicate name ${JSON.stringify(name)}: already used by the ${prev.kind} at line ${prev.line ?? '?'}; task and batch names share one namespace, so rename one of them`);
      return;
    }
    named.set(name, { kind, line: nameLine(p), ...(entry ? { entry } : {}) });
  };
  // In file order, so that the first one written keeps the name.
  const claims = [...entries.map((e) => ({ offset: e.offset, run: () => claim(e.name, 'task', e.path, e) })), ...batches.map((b) => ({ offset: b.offset, run: () => claim(b.name, 'batch', b.path) }))];
  claims.sort((a, b) => a.offset - b.offset).forEach((c) => c.run());

  const batchTasks = new Map<string, string[]>();
  for (const b of batches) {
    if (b.name === null || named.get(b.name)?.kind !== 'batch') continue;
    batchTasks.set(b.name, []);
    if (Array.isArray(b.raw['tasks']) && b.raw['tasks'].length === 0) {
      push([...b.path, 'tasks'], offsetAt([...b.path, 'tasks']), `batch ${JSON.stringify(b.name)} has no tasks; add tasks to it or remove the batch`);
    }
  }
  for (const e of entries) if (e.name !== null && e.batch !== null && named.get(e.name)?.entry === e) batchTasks.get(e.batch)?.push(e.name);

  // Defaults, checked once where they are written.
  const defaults = isRecord(rawObj['defaults']) ? rawObj['defaults'] : {};
  const defaultQueue = typeof defaults['queue'] === 'string' && defaults['queue'] ? defaults['queue'] : undefined;
  const defaultTool = typeof defaults['tool'] === 'string' && defaults['tool'] ? defaults['tool'] : undefined;
  const queueKnown = new Map<string, boolean>();
  const queueOk = (q: string) => {
    if (!checks.queueExists) return true;
    let ok = queueKnown.get(q);
    if (ok === undefined) queueKnown.set(q, (ok = checks.queueExists(q)));
    return ok;
  };
  const toolSet = new Set(checks.tools);
  const checkQueue = (q: string, p: Seg[]) => {
    if (!queueOk(q)) push(p, offsetAt(p), `unknown queue ${JSON.stringify(q)}: no active queue has this name or id; create it with \`sparkq queue create ${q} --session NAME\` or fix the name`);
  };
  const checkTool = (t: string, p: Seg[]) => {
    if (toolSet.has(t)) return;
    const list = checks.tools.length ? `the tools in sparkq.yml are: ${checks.tools.join(', ')}` : 'sparkq.yml defines no tools';
    push(p, offsetAt(p), `unknown tool ${JSON.stringify(t)}${didYouMean(t, checks.tools)}; ${list} (or add it under tools in sparkq.yml)`);
  };
  if (defaultQueue !== undefined) checkQueue(defaultQueue, ['defaults', 'queue']);
  if (defaultTool !== undefined) checkTool(defaultTool, ['defaults', 'tool']);
  // A validator's tool and queue, checked once where the validator is written.
  const validatorsChecked = new Set<string>();
  const checkValidator = (raw: unknown, p: Seg[]) => {
    const key = pathString(p);
    if (!isRecord(raw) || validatorsChecked.has(key)) return;
    validatorsChecked.add(key);
    if (typeof raw['tool'] === 'string' && raw['tool']) checkTool(raw['tool'], [...p, 'tool']);
    if (typeof raw['queue'] === 'string' && raw['queue']) checkQueue(raw['queue'], [...p, 'queue']);
    const n = locate(doc, [...p, 'maxRounds']);
    const float = n.depth === p.length + 1 ? floatSource(n.node) : undefined;
    if (float !== undefined && !pathHasIssue([...p, 'maxRounds'])) push([...p, 'maxRounds'], offsetOf(n.node), `expected an integer, got the float ${float}`);
  };
  checkValidator(defaults['validate'], ['defaults', 'validate']);
  const defaultsHas = (k: string) => defaults[k] !== undefined;

  // Per task: queue, tool, what it does, its prompt file.
  const baseDir = path.dirname(path.resolve(file));
  const readFile = opts.readFile ?? defaultReadFile;
  const prompts = new Map<Entry, string>();
  const patterned = new Map<Entry, { pattern: Pattern; values: Record<string, string> }>();
  const pushOnce = (() => {
    const said = new Set<string>();
    return (p: Seg[], offset: number | undefined, message: string) => {
      const k = `${pathString(p)}\0${message}`;
      if (said.has(k)) return;
      said.add(k);
      push(p, offset, message);
    };
  })();
  const patternsByPath = new Map<string, Pattern | null>();
  /** The pattern a `pattern:` at `p` names, loaded once; null (and reported once) when it cannot be used. */
  const patternAt = (name: string, p: Seg[]): Pattern | null => {
    const k = pathString(p);
    if (patternsByPath.has(k)) return patternsByPath.get(k)!;
    let found: Pattern | null = null;
    if (!checks.patterns) {
      push(p, offsetAt(p), `pattern ${JSON.stringify(name)}: prompt patterns are not available here; write the prompt out`);
    } else {
      try {
        found = checks.patterns.load(name);
        if (found === null) {
          const names = checks.patterns.names();
          const list = names.length ? `the patterns in ${checks.patterns.dir} are: ${names.join(', ')}` : `${checks.patterns.dir} holds no patterns (NAME.md files)`;
          push(p, offsetAt(p), `unknown pattern ${JSON.stringify(name)}${didYouMean(name, names)}; ${list}`);
        }
      } catch (err) {
        if (!(err instanceof PatternError)) throw err;
        push(p, offsetAt(p), `pattern ${JSON.stringify(name)} cannot be used: ${err.message.split('\n').join('; ')}`);
      }
    }
    patternsByPath.set(k, found);
    return found;
  };

  for (const e of entries) {
    const t = e.raw;
    const what = e.name !== null ? `task ${JSON.stringify(e.name)}` : 'this task';

    // The pattern: the task's own, else its batch's, else the defaults'. `with:` values apply from the level that
    // names the pattern down to the task (the more specific one wins); a `with:` above any pattern has nothing to fill.
    const levels: { raw: Record<string, unknown>; path: Seg[] }[] = [{ raw: defaults, path: ['defaults'] }];
    if (e.batchRaw && e.batchPath) levels.push({ raw: e.batchRaw, path: e.batchPath });
    levels.push({ raw: t, path: e.path });
    let from = -1;
    levels.forEach((l, i) => {
      if (typeof l.raw['pattern'] === 'string' && l.raw['pattern']) from = i;
    });
    levels.forEach((l, i) => {
      if (!isRecord(l.raw['with']) || levels.slice(0, i + 1).some((x) => typeof x.raw['pattern'] === 'string')) return;
      const wp = [...l.path, 'with'];
      pushOnce(wp, keyOffset(doc, wp), 'with: gives values to the variables of a pattern, but no pattern is named here or above; add pattern: NAME');
    });
    let pattern: Pattern | null = null;
    if (from >= 0) {
      const level = levels[from]!;
      pattern = patternAt(level.raw['pattern'] as string, [...level.path, 'pattern']);
    }
    if (pattern) {
      const values: Record<string, string> = {};
      const invalid = new Set<string>();
      const writtenAt = new Map<string, Seg[]>();
      for (const l of levels.slice(from)) {
        if (!isRecord(l.raw['with'])) continue;
        for (const [k, v] of Object.entries(l.raw['with'])) {
          const text = variableText(v);
          if (text === null) {
            invalid.add(k); // the schema reported it
            continue;
          }
          values[k] = text;
          writtenAt.set(k, [...l.path, 'with', k]);
        }
      }
      const problems = variableProblems(pattern, values).filter((x) => !invalid.has(x.variable));
      for (const x of problems) {
        if (x.kind === 'unknown') {
          const wp = writtenAt.get(x.variable)!;
          pushOnce(wp, keyOffset(doc, wp), x.message);
        } else push(e.path, e.offset, `${what}: ${x.message} under with`);
      }
      if (problems.length === 0 && invalid.size === 0) patterned.set(e, { pattern, values });
    }
    const patternTool = pattern?.tool ?? undefined;

    checkValidator(t['validate'], [...e.path, 'validate']);
    if (e.batchRaw && e.batchPath) checkValidator(e.batchRaw['validate'], [...e.batchPath, 'validate']);
    if (t['queue'] === undefined) {
      if (!defaultsHas('queue')) push(e.path, e.offset, `${what} has no queue: set queue on the task, or a default for every task under defaults (defaults: { queue: NAME })`);
    } else if (typeof t['queue'] === 'string' && t['queue']) checkQueue(t['queue'], [...e.path, 'queue']);
    if (t['tool'] === undefined) {
      if (from >= 0 && !pattern) {
        // The pattern could not be used (reported): whether it names a tool is unknown.
      } else if (patternTool !== undefined && pattern) {
        if (!toolSet.has(patternTool)) {
          const pp = [...levels[from]!.path, 'pattern'];
          pushOnce(pp, offsetAt(pp), `pattern ${pattern.name} runs with the tool ${JSON.stringify(patternTool)}, which sparkq.yml does not define; set tool on the task, or fix the pattern's tool (the tools in sparkq.yml are: ${checks.tools.join(', ')})`);
        }
      } else if (!defaultsHas('tool')) {
        push(e.path, e.offset, `${what} has no tool: set tool on the task, or a default for every task under defaults (defaults: { tool: NAME }); the tools in sparkq.yml are: ${checks.tools.join(', ')}`);
      }
    } else if (typeof t['tool'] === 'string' && t['tool']) checkTool(t['tool'], [...e.path, 'tool']);

    const hasPayload = t['payload'] !== undefined && t['payload'] !== null;
    if (t['prompt'] === undefined && t['promptFile'] === undefined && !hasPayload && from < 0) {
      push(e.path, e.offset, `${what} has nothing to do: set prompt, promptFile, pattern or payload`);
    }
    if (t['prompt'] !== undefined && t['promptFile'] !== undefined) {
      push([...e.path, 'promptFile'], keyOffset(doc, [...e.path, 'promptFile']), 'set either prompt or promptFile, not both');
    } else if (typeof t['promptFile'] === 'string' && t['promptFile']) {
      const pf = t['promptFile'];
      const p = [...e.path, 'promptFile'];
      if (path.isAbsolute(pf) || path.win32.isAbsolute(pf)) {
        push(p, offsetAt(p), `expected a path relative to the plan file's folder (${baseDir}), got the absolute path ${JSON.stringify(pf)}`);
      } else {
        const abs = path.resolve(baseDir, pf);
        try {
          const content = readFile(abs);
          const bytes = Buffer.byteLength(content, 'utf8');
          if (bytes > LIMITS.prompt) push(p, offsetAt(p), `prompt file ${abs} is ${bytes} bytes; a prompt is at most ${LIMITS.prompt} bytes`);
          else prompts.set(e, content);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException | null)?.code;
          const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : err instanceof Error ? err.message : String(err);
          push(p, offsetAt(p), `cannot read prompt file ${abs}: ${why}; promptFile is relative to the plan file's folder (${baseDir})`);
        }
      }
    }
    const used = patterned.get(e);
    if (used) {
      const own = typeof t['prompt'] === 'string' ? t['prompt'] : prompts.get(e);
      const bytes = Buffer.byteLength(joinPrompts(fillTemplate(used.pattern, used.values), own), 'utf8');
      if (bytes > LIMITS.prompt) push(e.path, e.offset, `${what}: the prompt made from pattern ${used.pattern.name} is ${bytes} bytes; at most ${LIMITS.prompt} bytes`);
    }
  }

  // 4. What each task waits on.
  const allNames = [...named.keys()];
  /** Plan keys (or the id) that a reference stands for; null when it is invalid (and reported). */
  const resolveRef = (ref: string, p: Seg[]): string[] | null => {
    if (ref.startsWith('tsk_')) {
      if (!looksLikeId(ref, 'tsk')) {
        push(p, offsetAt(p), `${JSON.stringify(ref)} is not a task id: a task id is tsk_ followed by 12 lowercase letters and digits (e.g. tsk_4k2m9x0q7hzt); plan names cannot start with tsk_`);
        return null;
      }
      if (checks.taskExists && !checks.taskExists(ref)) {
        push(p, offsetAt(p), `no task has the id ${ref}; list tasks with \`sparkq tasks\` and fix the id, or name a task of this plan`);
        return null;
      }
      return [ref];
    }
    const n = named.get(ref);
    if (!n) {
      const hint = didYouMean(ref, allNames);
      push(p, offsetAt(p), `unknown name ${JSON.stringify(ref)}${hint}; after takes names of tasks or batches in this plan, or ids of existing tasks (tsk_…)`);
      return null;
    }
    return n.kind === 'task' ? [ref] : (batchTasks.get(ref) ?? []);
  };

  const batchAfter = new Map<string, string[]>();
  for (const b of batches) {
    if (b.name === null || named.get(b.name)?.kind !== 'batch' || !Array.isArray(b.raw['after'])) continue;
    const out: string[] = [];
    const own = new Set(batchTasks.get(b.name));
    b.raw['after'].forEach((ref, i) => {
      if (typeof ref !== 'string' || !ref) return;
      const p = [...b.path, 'after', i];
      if (ref === b.name) return void push(p, offsetAt(p), `batch ${JSON.stringify(b.name)} waits on itself; remove ${JSON.stringify(ref)} from its after`);
      if (own.has(ref)) {
        return void push(
          p,
          offsetAt(p),
          `batch ${JSON.stringify(b.name)} waits on its own task ${JSON.stringify(ref)}, so that task would wait on itself; move the wait onto the batch's other tasks, or move ${JSON.stringify(ref)} out of the batch`,
        );
      }
      const keys = resolveRef(ref, p);
      if (keys) out.push(...keys);
    });
    batchAfter.set(b.name, out);
  }

  const deps = new Map<string, string[]>();
  const byKey = new Map<string, Entry>();
  for (const e of entries) {
    if (e.name === null || named.get(e.name)?.entry !== e) continue;
    byKey.set(e.name, e);
    const out: string[] = [];
    if (Array.isArray(e.raw['after'])) {
      e.raw['after'].forEach((ref, i) => {
        if (typeof ref !== 'string' || !ref) return;
        const p = [...e.path, 'after', i];
        if (ref === e.name) return void push(p, offsetAt(p), `task ${JSON.stringify(e.name)} waits on itself; remove ${JSON.stringify(ref)} from its after`);
        if (e.batch !== null && ref === e.batch) {
          return void push(p, offsetAt(p), `task ${JSON.stringify(e.name)} waits on its own batch ${JSON.stringify(ref)}, which includes the task itself; name the other tasks of the batch instead`);
        }
        const keys = resolveRef(ref, p);
        if (keys) out.push(...keys);
      });
    }
    if (e.batch !== null) out.push(...(batchAfter.get(e.batch) ?? []));
    deps.set(e.name, [...new Set(out)].filter((k) => k !== e.name));
  }

  // 5. Cycles: one per strongly connected component, named task by task with lines.
  for (const cycle of findCycles([...byKey.keys()], (k) => (deps.get(k) ?? []).filter((d) => byKey.has(d)))) {
    const first = byKey.get(cycle[0]!)!;
    const lineOf = (k: string) => at(byKey.get(k)!.offset).line;
    const chain = [...cycle, cycle[0]!].join(' → ');
    const lines = cycle.map((k) => `${k} at line ${lineOf(k)}`).join(', ');
    push(
      [...first.path, 'after'],
      first.offset,
      `cycle: ${chain} (→ reads "waits on"; ${lines}); no task of a cycle can ever start: remove one of these waits`,
    );
  }

  // 6. The plan's id: written, or the file's name.
  const baseName = path.basename(file, path.extname(file));
  if (rawObj['id'] === undefined) {
    const p = nameProblem(baseName, 'plan id');
    if (p) push('id', 0, `the plan has no id and its file name ${JSON.stringify(baseName)} cannot be one (${p}); set id: at the top of the plan`);
  }

  if (issues.length || !result.success) throw fail();

  // 7. The plan.
  const data = result.data;
  const id = data.id ?? baseName;
  const dq = data.defaults?.queue;
  const dt = data.defaults?.tool;
  const tasks: PlanTask[] = [];
  for (const e of byKey.values()) {
    const t = TaskSchema.parse(e.raw);
    const used = patterned.get(e);
    const task: PlanTask = { key: t.name, queue: (t.queue ?? dq)!, tool: (t.tool ?? used?.pattern.tool ?? dt)!, after: deps.get(t.name) ?? [], batch: e.batch, line: at(e.offset).line ?? 1 };
    const own = t.prompt ?? prompts.get(e);
    const prompt = used ? joinPrompts(fillTemplate(used.pattern, used.values), own) : own;
    if (prompt !== undefined) task.prompt = prompt;
    if (used) task.pattern = taskPatternOf(used.pattern);
    // merge: auto on its batch: the worker that finishes the batch's last task merges all of them into their base.
    if (e.batch !== null && e.batchRaw?.['merge'] === 'auto') task.mergeGroup = `${id}/${e.batch}`;
    if (t.payload !== undefined && t.payload !== null) task.payload = t.payload as JsonValue;
    const timeout = t.timeoutSeconds ?? data.defaults?.timeoutSeconds;
    if (timeout !== undefined) task.timeoutSeconds = timeout;
    const priority = t.priority ?? data.defaults?.priority;
    if (priority !== undefined) task.priority = priority;
    // The validator: the task's own, else its batch's, else the defaults', else its pattern's.
    const batchValidate = e.batchRaw?.['validate'] !== undefined ? validateSchema().parse(e.batchRaw['validate']) : undefined;
    const validate = t.validate ?? batchValidate ?? data.defaults?.validate;
    if (validate !== undefined) task.validate = validateSpec(validate);
    else if (used?.pattern.validate) task.validate = { ...used.pattern.validate };
    tasks.push(task);
  }
  return { id, description: data.description ?? null, tasks: topoOrder(tasks) };
}

function validateSpec(v: z.output<ReturnType<typeof validateSchema>>): ValidateSpec {
  return {
    tool: v.tool,
    ...(v.prompt !== undefined ? { prompt: v.prompt } : {}),
    ...(v.queue !== undefined ? { queue: v.queue } : {}),
    ...(v.maxRounds !== undefined ? { maxRounds: v.maxRounds } : {}),
  };
}

export function loadPlanFile(file: string, checks: PlanChecks, opts: ParsePlanOptions = {}): Plan {
  let text: string;
  const refuse = (message: string) => new PlanError(file, [{ path: '', line: null, column: null, message }]);
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw refuse('expected a plan file, found a directory or something else');
    if (st.size > PLAN_LIMITS.maxFileBytes) throw refuse(`the file is ${st.size} bytes; a plan file is at most ${PLAN_LIMITS.maxFileBytes} bytes: split it into several plans, or move long prompts into promptFile files`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof PlanError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(code === 'ENOENT' ? 'no such file; check the path (it is relative to the current folder)' : `cannot read the file: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parsePlan(text, file, checks, opts);
}
