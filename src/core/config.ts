import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq } from 'yaml';
import { z } from 'zod';
import { SparkqError } from './errors';
import { isRecord } from './guards';
import { LIMITS, type ValidateSpec } from './model';
import { DEFAULT_PRICING, type ModelPrice } from './pricing';
import { describe, expected, floatSource, locate, offsetOf, pathString, SourceError, type SourceIssue, walkScalars, YamlSource } from './yamlSource';

/**
 * `sparkq.yml`: parsed with YAML 1.2 core schema and validated strictly. Nothing is coerced (the string "30" is not a
 * number, 1.0 is not the integer 1) and an unknown key is an error, because a typo that is dropped silently turns
 * into a setting that mysteriously does not apply. Every issue carries the line and column it came from.
 *
 * About 570 lines, on purpose: the whole of sparkq.yml (its schema, defaults, the rules between fields and how tools
 * resolve) in one place; the generic reading of YAML with positions is in yamlSource.ts.
 */

export type ToolKind = 'script' | 'codex' | 'claude' | 'manual';
export const TOOL_KINDS: readonly ToolKind[] = ['script', 'codex', 'claude', 'manual'];

export type Sandbox = 'read-only' | 'workspace-write';
export type PermissionMode = 'default' | 'acceptEdits' | 'plan';

export interface ToolConfig {
  name: string;
  /** The kind as written, so that messages can quote it. */
  kind: string;
  /** What the worker runs it as: 'manual' for a kind this version does not know. */
  knownKind: ToolKind;
  taskClass: string;
  description?: string;
  command?: string;
  interpreter?: string;
  args: string[];
  env: Record<string, string>;
  model?: string;
  sandbox?: Sandbox;
  permissionMode?: PermissionMode;
  /** codex and claude tools: give the agent SparkQ's MCP server, limited to the task's queue. Off unless true. */
  mcp?: boolean;
  maxAttempts?: number;
  timeoutSeconds?: number;
  /** `worktree`: its tasks run in a git worktree of their own even on a queue without isolation. */
  isolation?: 'worktree';
  /** The validator of this tool's tasks when an enqueue names none. */
  validate?: ValidateSpec;
}

export type MergeMode = 'ff-or-merge' | 'ff-only' | 'merge';
export const MERGE_MODES: readonly MergeMode[] = ['ff-or-merge', 'ff-only', 'merge'];

/** How tasks run in worktrees (isolation: worktree): what each new worktree gets, and how changes merge back. */
export interface WorktreeConfig {
  /** Globs, relative to the repository's top, of (usually ignored) files copied into each new worktree (`.env`). */
  copy: string[];
  /** Globs of files or folders linked into each new worktree (`node_modules`): shared, never committed. */
  link: string[];
  /** A script from the script dirs run once in each new worktree (not in a reused one), before its first task. */
  setup: string | null;
  /** The author of task commits, "Name <email>"; null: git's configured user (or SparkQ when there is none). */
  author: string | null;
  /** How a task's branch merges into its base: fast-forward when possible else a merge commit (default), or only one. */
  merge: MergeMode;
}

export interface TaskClassConfig {
  name: string;
  timeoutSeconds: number;
}

export interface SparkqConfig {
  version: 1;
  project: string;
  scriptDirs: string[];
  taskClasses: Record<string, TaskClassConfig>;
  tools: Record<string, ToolConfig>;
  purgeAfterDays: number | null;
  worker: { pollSeconds: number; leaseSeconds: number };
  store: StoreConfig;
  /**
   * Retries of failing tasks (when a tool or queue sets maxAttempts): the first retry waits about backoffSeconds,
   * each next one twice as long, up to maxBackoffSeconds, with jitter. rateLimitPauseSeconds: how long a queue pauses
   * after an agent hit a usage/rate limit without saying when it resets.
   */
  retry: { backoffSeconds: number; maxBackoffSeconds: number; rateLimitPauseSeconds: number };
  /** USD per million tokens by model name: the built-in defaults (core/pricing.ts) with sparkq.yml's entries over them. */
  pricing: Record<string, ModelPrice>;
  /** The orchestrating model (the one that writes the plans): `report --plan` prices the naive plan at it. */
  orchestrator: string | null;
  worktree: WorktreeConfig;
  /** The folder of prompt patterns (Markdown templates), relative to the workspace root. */
  patternsDir: string;
}

/** An issue in sparkq.yml, with the path and the line and column it was written at. */
export type ConfigIssue = SourceIssue;

export class ConfigError extends SourceError {
  constructor(file: string, issues: ConfigIssue[]) {
    super('config', file, issues);
    this.name = 'ConfigError';
  }
}

// ---- defaults -----------------------------------------------------------------------------------------------

const DEFAULT_PROJECT = 'sparkq';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

// Frozen so that no caller can change the defaults for everyone; defaultConfig() hands out copies.
export const DEFAULT_TASK_CLASSES: Readonly<Record<string, Readonly<TaskClassConfig>>> = deepFreeze({
  FAST_SCRIPT: { name: 'FAST_SCRIPT', timeoutSeconds: 30 },
  MEDIUM_SCRIPT: { name: 'MEDIUM_SCRIPT', timeoutSeconds: 300 },
  LLM_LITE: { name: 'LLM_LITE', timeoutSeconds: 300 },
  LLM_HEAVY: { name: 'LLM_HEAVY', timeoutSeconds: 900 },
});

export const DEFAULT_TOOLS: Readonly<Record<string, Readonly<ToolConfig>>> = deepFreeze({
  'run-bash': {
    name: 'run-bash',
    kind: 'script',
    knownKind: 'script',
    taskClass: 'MEDIUM_SCRIPT',
    description: 'Run a bash script from the script dirs',
    interpreter: 'bash',
    args: [],
    env: {},
  },
  'run-python': {
    name: 'run-python',
    kind: 'script',
    knownKind: 'script',
    taskClass: 'MEDIUM_SCRIPT',
    description: 'Run a Python script from the script dirs',
    interpreter: 'python3',
    args: [],
    env: {},
  },
  'llm-codex': {
    name: 'llm-codex',
    kind: 'codex',
    knownKind: 'codex',
    taskClass: 'LLM_HEAVY',
    description: 'OpenAI Codex CLI (codex exec) in the queue working directory',
    args: [],
    env: {},
    sandbox: 'workspace-write',
  },
  'llm-claude': {
    name: 'llm-claude',
    kind: 'claude',
    knownKind: 'claude',
    taskClass: 'LLM_HEAVY',
    description: 'Claude Code (claude -p) in the queue working directory',
    args: [],
    env: {},
  },
  'llm-sonnet': {
    name: 'llm-sonnet',
    kind: 'manual',
    knownKind: 'manual',
    taskClass: 'LLM_HEAVY',
    description: 'Shown to whoever works at the terminal (a person or a chat agent), heavy budget',
    args: [],
    env: {},
  },
  'llm-haiku': {
    name: 'llm-haiku',
    kind: 'manual',
    knownKind: 'manual',
    taskClass: 'LLM_LITE',
    description: 'Shown to whoever works at the terminal (a person or a chat agent), light budget',
    args: [],
    env: {},
  },
} satisfies Record<string, ToolConfig>);

const DEFAULT_WORKER = { pollSeconds: 5, leaseSeconds: 30 } as const;
const DEFAULT_LIVE_CAP = 20_000;

/**
 * Where the queue lives. `sqljs` (the default): the embedded store in this workspace's .sparkq/. `postgres`: team mode,
 * a PostgreSQL database that several machines share; its URL comes from SPARKQ_DATABASE_URL (which wins) or `url`.
 */
export interface StoreConfig {
  kind: 'sqljs' | 'postgres';
  /** Embedded store: finished tasks kept live before older ones move to archive files. */
  liveCap: number;
  /** Team mode: the database URL, when not given by SPARKQ_DATABASE_URL (better: keep credentials out of this file). */
  url?: string;
  /** Team mode: the PostgreSQL schema that holds SparkQ's tables (default `sparkq`). */
  schema?: string;
}
const DEFAULT_RETRY = Object.freeze({ backoffSeconds: 10, maxBackoffSeconds: 600, rateLimitPauseSeconds: 300 });
const DEFAULT_SCRIPT_DIRS = ['scripts'];
/** The orchestrator the workflow SparkQ serves names first (Claude Sonnet in chat). */
const DEFAULT_ORCHESTRATOR = 'claude-sonnet-4-5';
const DEFAULT_WORKTREE: Readonly<WorktreeConfig> = Object.freeze({ copy: [], link: [], setup: null, author: null, merge: 'ff-or-merge' });
export const DEFAULT_PATTERNS_DIR = 'sparkq/patterns';

/** A workspace folder's name is only a suggestion: make it a valid project name rather than fail on it. */
function projectOrDefault(name: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  const clean = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, LIMITS.name).trim();
  return clean || DEFAULT_PROJECT;
}

export function defaultConfig(project?: string): SparkqConfig {
  return {
    version: 1,
    project: projectOrDefault(project),
    scriptDirs: [...DEFAULT_SCRIPT_DIRS],
    taskClasses: structuredClone(DEFAULT_TASK_CLASSES),
    tools: structuredClone(DEFAULT_TOOLS),
    purgeAfterDays: null,
    worker: { ...DEFAULT_WORKER },
    store: { kind: 'sqljs', liveCap: DEFAULT_LIVE_CAP },
    retry: { ...DEFAULT_RETRY },
    pricing: structuredClone(DEFAULT_PRICING),
    orchestrator: DEFAULT_ORCHESTRATOR,
    worktree: { ...DEFAULT_WORKTREE, copy: [], link: [] },
    patternsDir: DEFAULT_PATTERNS_DIR,
  };
}

export function resolveTimeoutSeconds(config: SparkqConfig, tool: ToolConfig): number {
  if (tool.timeoutSeconds !== undefined) return tool.timeoutSeconds;
  const cls = config.taskClasses[tool.taskClass];
  // Only reachable with a hand-built config: parseConfig refuses a tool whose class is not defined.
  if (!cls) throw new SparkqError('config', `tool ${tool.name} names task class ${tool.taskClass}, which is not defined in sparkq.yml`);
  return cls.timeoutSeconds;
}

/** The configured script dirs as absolute paths below the workspace root. */
export function resolveScriptDirs(config: SparkqConfig, workspaceRoot: string): string[] {
  return config.scriptDirs.map((d) => path.resolve(workspaceRoot, d));
}

// ---- the file's schema ----------------------------------------------------------------------------------------

// No `i` flag: the JSON Schema pattern would lose it and reject valid names.
const TOOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TOOL_NAME_MAX = 64;
const CLASS_NAME = /^[A-Z][A-Z0-9_]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_FILE_BYTES = 1024 * 1024;

const REFUSED_ELSEWHERE = "is only honoured from a user-level setting or a CLI flag, never from the workspace's sparkq.yml";

/** How a value reads in a message: its type and, for scalars, the value itself. */
function posInt(what: string, max: number = Number.MAX_SAFE_INTEGER) {
  const e = expected(what);
  return z.number(e).int(e).positive(e).max(max, e);
}

function str(what: string, max = 4096) {
  const e = expected(what);
  return z.string(e).min(1, e).max(max, e);
}

const timeoutSchema = () =>
  posInt(`a whole number of seconds from 1 to ${LIMITS.maxTimeoutSeconds}`, LIMITS.maxTimeoutSeconds).meta({
    description: 'Seconds a task may run. Past 1x it is reported stale, past 2x it is failed automatically.',
  });

const scriptDirSchema = str('a folder relative to the workspace root').refine(
  (d) => {
    if (path.posix.isAbsolute(d) || path.win32.isAbsolute(d)) return false;
    const n = path.posix.normalize(d.replace(/\\/g, '/'));
    return n !== '..' && !n.startsWith('../');
  },
  { error: (iss) => `expected a folder relative to the workspace root and inside it, got ${describe(iss.input)}` },
);

const TaskClassSchema = z
  .object({ timeoutSeconds: timeoutSchema() }, expected('a mapping with timeoutSeconds, e.g. { timeoutSeconds: 300 }'))
  .strict()
  .meta({ title: 'Task class', description: 'A timeout budget shared by the tools that name it.' });

const sandboxSchema = z
  .enum(['read-only', 'workspace-write'], {
    error: (iss) =>
      typeof iss.input === 'string' && /danger|bypass/i.test(iss.input)
        ? `sandbox ${iss.input} ${REFUSED_ELSEWHERE}`
        : `expected read-only or workspace-write, got ${describe(iss.input)}`,
  })
  .meta({ description: 'Codex sandbox (default workspace-write). danger-full-access is refused here: use a user setting or a CLI flag.' });

const permissionModeSchema = z
  .enum(['default', 'acceptEdits', 'plan'], {
    error: (iss) =>
      typeof iss.input === 'string' && /bypass|dangerous/i.test(iss.input)
        ? `permissionMode ${iss.input} ${REFUSED_ELSEWHERE}`
        : `expected default, acceptEdits or plan, got ${describe(iss.input)}`,
  })
  .meta({ description: 'Claude Code permission mode. bypassPermissions is refused here: use a user setting or a CLI flag.' });

const ToolSchema = z
  .object(
    {
      kind: str('a tool kind: script, codex, claude or manual', 100).meta({
        description: 'script | codex | claude | manual. An unknown kind runs as manual, with a warning.',
        examples: [...TOOL_KINDS],
      }),
      taskClass: str('the name of a task class, e.g. MEDIUM_SCRIPT', 100).meta({ description: 'A task class defined by default or under taskClasses.' }),
      description: z.string(expected('a string')).max(LIMITS.description, expected(`a string of at most ${LIMITS.description} characters`)).optional(),
      command: str('an executable name or path').meta({ description: 'The program to run (e.g. the codex or claude binary).' }).optional(),
      interpreter: str('an interpreter name or path, e.g. bash or python3')
        .meta({ description: 'For script tools: the interpreter that runs the script.' })
        .optional(),
      args: z
        .array(z.string(expected('a string (quote numbers and booleans)')), expected('a list of strings'))
        .meta({ description: 'Extra arguments, passed as an argv array (never through a shell).' })
        .optional(),
      env: z
        .record(
          z.string().regex(ENV_NAME, expected('an environment variable name (letters, digits, _)')),
          z.string(expected('a string (quote numbers and booleans)')),
          expected('a mapping of environment variable → string'),
        )
        .meta({ description: 'Environment variables added for this tool.' })
        .optional(),
      model: str('a model name').optional(),
      sandbox: sandboxSchema.optional(),
      permissionMode: permissionModeSchema.optional(),
      mcp: z
        .boolean(expected('true or false'))
        .meta({
          description:
            "codex and claude tools: give the agent SparkQ's own MCP server, limited to the task's queue, so that it can enqueue follow-up tasks, heartbeat, and complete its task with structured data. Default false.",
        })
        .optional(),
      maxAttempts: posInt('a whole number from 1 to 100', 100).meta({ description: 'Attempts before a failing task stays failed.' }).optional(),
      timeoutSeconds: timeoutSchema().meta({ description: "Overrides the task class's timeout for this tool." }).optional(),
      isolation: z
        .enum(['worktree', 'none'], expected('worktree or none'))
        .meta({ description: 'worktree: each task of this tool runs in a git worktree of its own, on its own branch, even on a queue without isolation. Default none.' })
        .optional(),
      validate: z
        .object(
          {
            tool: str('the name of the tool that validates'),
            prompt: z.string(expected('a string')).max(LIMITS.prompt, expected(`a string of at most ${LIMITS.prompt} characters`)).optional(),
            queue: str('a queue name').optional(),
            maxRounds: posInt('a whole number from 1 to 10', 10).optional(),
          },
          expected('a mapping with tool (and optionally prompt, queue, maxRounds)'),
        )
        .strict()
        .meta({
          description:
            "Validator of this tool's tasks when an enqueue names none: when a task succeeds, a task of `tool` checks its result (on `queue`, default the task's own) before its dependents start; a fail requeues the task with the feedback, up to maxRounds rounds (default 2).",
        })
        .optional(),
    },
    expected('a mapping of tool settings (kind, taskClass, ...)'),
  )
  .strict()
  .meta({ title: 'Tool', description: 'How a task is executed. A tool named here replaces the built-in tool of that name entirely.' });

const toolNameSchema = z
  .string()
  .max(TOOL_NAME_MAX, `a tool name must be at most ${TOOL_NAME_MAX} characters`)
  .regex(TOOL_NAME, 'a tool name must start with a letter or digit and hold only letters, digits, ".", "_" and "-"');
// A model name as usage records it (gpt-5, claude-sonnet-4-5): printable, no blanks around it.
const MODEL_NAME = /^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u;
const modelNameSchema = z.string().max(200, 'a model name must be at most 200 characters').regex(MODEL_NAME, 'a model name must not be empty, have blanks around it or control characters');

const usdPerMillion = (what: string) => {
  const e = expected(`a number of US dollars per million ${what} tokens, 0 or more`);
  return z.number(e).nonnegative(e).max(1_000_000, e);
};

const PriceSchema = z
  .object(
    {
      input: usdPerMillion('input').meta({ description: 'USD per million input tokens not read from the cache.' }),
      cachedInput: usdPerMillion('cached input').meta({ description: 'USD per million input tokens read from the cache. Default: the input price.' }).optional(),
      output: usdPerMillion('output').meta({ description: 'USD per million output tokens (reasoning included).' }),
    },
    expected('a mapping with input, output and optionally cachedInput, e.g. { input: 1.25, cachedInput: 0.125, output: 10 }'),
  )
  .strict()
  .meta({ title: 'Model price', description: 'What a model bills, in US dollars per million tokens.' });

const globList = (what: string) =>
  z
    .array(
      str('a glob relative to the repository top, e.g. node_modules or config/*.local').refine((g) => !g.startsWith('/') && !/(^|\/)\.\.(\/|$)/.test(g), {
        error: (iss) => `expected a glob inside the repository (relative, no ..), got ${describe(iss.input)}`,
      }),
      expected('a list of globs'),
    )
    .meta({ description: what });

const WorktreeSchema = z
  .object(
    {
      copy: globList('Files (usually ignored ones, e.g. .env) copied from the repository into each new worktree.'),
      link: globList('Files or folders (e.g. node_modules) linked into each new worktree: shared with the repository, never committed.'),
      setup: str('the name of a script in the script dirs').meta({ description: 'A script from the script dirs run once in each new worktree, before its first task (not in a reused one).' }),
      author: z
        .string(expected('"Name <email>"'))
        .regex(/^[^<>\p{Cc}]+ <[^<>\s\p{Cc}]+>$/u, expected('"Name <email>"'))
        .meta({ description: "The author of task commits. Default: git's configured user." }),
      merge: z.enum(MERGE_MODES, expected(MERGE_MODES.join(', '))).meta({
        description: 'How a task branch merges into its base: ff-or-merge (default: fast-forward when possible, else a merge commit), ff-only, or merge (always a merge commit).',
      }),
    },
    expected('a mapping with copy, link, setup, author or merge'),
  )
  .partial()
  .strict()
  .nullable()
  .meta({ description: 'Queues with isolation: worktree run each task in a git worktree under .sparkq/worktrees/, on a branch sparkq/<queue>/<task>.' });

const classNameSchema = z.string().regex(CLASS_NAME, 'a task class name must be UPPER_CASE: a capital letter, then capitals, digits and "_"');

const FileSchema = z
  .object(
    {
      version: z.literal(1, expected('the integer 1 (the only sparkq.yml version there is)')).meta({ description: 'Format version; 1.' }),
      project: str('a project name', LIMITS.name)
        .refine((s) => s.trim().length > 0, { error: 'expected a project name, got only blanks' })
        // eslint-disable-next-line no-control-regex
        .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: 'a project name must not contain control characters' })
        .meta({ description: "Shown for this workspace's queue. Default: the workspace folder's name." }),
      scriptDirs: z.array(scriptDirSchema, expected('a list of folders relative to the workspace root')).meta({
        description: 'Folders, relative to the workspace root, whose scripts script tools may run. Default [scripts].',
      }),
      taskClasses: z
        .record(classNameSchema, TaskClassSchema, expected('a mapping of task class name → { timeoutSeconds }'))
        .nullable()
        .meta({ description: 'Merged over the built-in classes FAST_SCRIPT, MEDIUM_SCRIPT, LLM_LITE and LLM_HEAVY.' }),
      tools: z
        .record(toolNameSchema, ToolSchema, expected('a mapping of tool name → tool settings'))
        .nullable()
        .meta({ description: 'Merged over the built-in tools by name.' }),
      purgeAfterDays: posInt('a whole number of days, or null to never purge automatically')
        .nullable()
        .meta({ description: 'Finished tasks older than this are deleted automatically; null (default) never.' }),
      worker: z
        .object(
          {
            pollSeconds: z.number(expected('a positive number of seconds')).positive(expected('a positive number of seconds')).meta({
              description: 'How often an idle worker looks for a task. Default 5.',
            }),
            leaseSeconds: z.number(expected('a positive number of seconds')).positive(expected('a positive number of seconds')).meta({
              description: "How long a worker's claim stays valid without a heartbeat. Default 30.",
            }),
          },
          expected('a mapping with pollSeconds and leaseSeconds'),
        )
        .partial()
        .strict()
        .nullable(),
      store: z
        .object(
          {
            kind: z.enum(['sqljs', 'postgres'], expected('sqljs or postgres')).meta({
              description: 'sqljs (default): the embedded queue in .sparkq/. postgres: team mode, one queue in PostgreSQL shared by several machines.',
            }),
            liveCap: posInt('a whole number of at least 100').min(100, expected('a whole number of at least 100')),
            url: z
              .string(expected('a postgres:// URL'))
              .regex(/^postgres(ql)?:\/\//, expected('a postgres:// URL'))
              .meta({ description: 'Team mode: the database URL; SPARKQ_DATABASE_URL wins over it. Keep passwords out of this file (use the variable, ~/.pgpass or VS Code\'s secret storage).' }),
            schema: z
              .string(expected('a PostgreSQL schema name'))
              .regex(/^[a-z_][a-z0-9_]{0,62}$/, expected('a plain lower-case PostgreSQL name (letters, digits, _)'))
              .meta({ description: 'Team mode: the schema that holds SparkQ\'s tables. Default sparkq.' }),
          },
          expected('a mapping with kind, liveCap, url or schema'),
        )
        .partial()
        .strict()
        .nullable()
        .meta({ description: 'Where the queue lives: kind sqljs (default, liveCap: finished tasks kept live before archiving, default 20000) or postgres (team mode: url, schema).' }),
      retry: z
        .object(
          {
            backoffSeconds: posInt('a whole number of seconds from 1 to 86400', 86_400).meta({
              description: 'Delay before the first retry of a failed task (tools/queues with maxAttempts); doubles each attempt, with jitter. Default 10.',
            }),
            maxBackoffSeconds: posInt('a whole number of seconds from 1 to 604800', 604_800).meta({ description: 'Longest delay between retries. Default 600.' }),
            rateLimitPauseSeconds: posInt('a whole number of seconds from 1 to 604800', 604_800).meta({
              description: 'How long a queue pauses when an agent hit a usage or rate limit without saying when it resets. Default 300.',
            }),
          },
          expected('a mapping with backoffSeconds, maxBackoffSeconds and rateLimitPauseSeconds'),
        )
        .partial()
        .strict()
        .nullable(),
      pricing: z
        .record(modelNameSchema, PriceSchema, expected('a mapping of model name → { input, cachedInput, output }'))
        .nullable()
        .meta({
          description:
            'Prices per model in USD per million tokens, for `sparkq report --plan` ("what the Codex tokens would have cost at model M"). Merged over built-in defaults (2025 list prices of gpt-5, gpt-5-codex, gpt-5-mini, claude-opus-4-5, claude-sonnet-4-5, claude-haiku-4-5); an entry here replaces the default of that name.',
        }),
      worktree: WorktreeSchema,
      orchestrator: modelNameSchema.nullable().meta({
        description: `The orchestrating model (the one that writes the plans), priced under pricing: \`report --plan\` shows what the plan would have cost had it done every task itself. Default ${DEFAULT_ORCHESTRATOR}; null for none.`,
      }),
      patterns: scriptDirSchema.meta({ description: `The folder of prompt patterns (Markdown templates with front matter), relative to the workspace root. Default ${DEFAULT_PATTERNS_DIR}.` }),
    },
    expected('a mapping of settings at the top level (e.g. version: 1)'),
  )
  .partial()
  .strict()
  .meta({
    title: 'SparkQ configuration (sparkq.yml)',
    description: 'Tools, task classes and limits of the SparkQ task queue in this workspace. Unknown keys are errors.',
  });

type FileConfig = z.infer<typeof FileSchema>;
type FileTool = z.infer<typeof ToolSchema>;

// Integer settings. A YAML float such as 30.0 loads as the JS number 30, so these are checked against the source text.
const INT_PATHS: readonly (readonly string[])[] = [
  ['version'],
  ['purgeAfterDays'],
  ['store', 'liveCap'],
  ['taskClasses', '*', 'timeoutSeconds'],
  ['tools', '*', 'timeoutSeconds'],
  ['tools', '*', 'maxAttempts'],
];

/**
 * Arguments that switch an agent's sandbox or permission checks off (danger-full-access, --dangerously-*,
 * bypassPermissions, --yolo …). sparkq.yml refuses them in a codex or claude tool's args, because passing them there
 * would undo the refusal of danger-full-access and bypassPermissions above; a worker honours them only when bypass is
 * allowed by a user setting or a CLI flag.
 */
export const BYPASS_ARG = /dangerous|bypass|yolo|danger-full-access|skip-permissions/i;

// ---- parsing ---------------------------------------------------------------------------------------------------

export function parseConfig(text: string, file: string, opts: { defaultProject?: string } = {}): { config: SparkqConfig; warnings: string[] } {
  const src = new YamlSource(text);
  const { doc, push } = src;
  const warnings: string[] = [];
  const fail = () => new ConfigError(file, src.sortedIssues());

  src.checkYamlErrors();
  if (src.issues.length) throw fail();
  for (const w of doc.warnings) {
    const { line, column } = src.at(w.pos[0]);
    warnings.push(`${file}:${line}:${column}: ${w.message}`);
  }

  const root = doc.contents;
  if (root !== null && !isMap(root)) {
    push([], offsetOf(root), `expected a mapping of settings at the top level (e.g. version: 1), got ${isSeq(root) ? 'a list' : 'a single value'}`);
    throw fail();
  }

  src.checkPlainKeys(root);
  if (src.issues.length) throw fail();

  const raw = src.load();
  if (raw === undefined) throw fail();

  const result = FileSchema.safeParse(raw);
  if (!result.success) src.reportSchemaIssues(FileSchema, result.error.issues);

  // Integers written as floats (1.0, 3e2) load as whole numbers; the source text shows they were floats.
  walkScalars(doc, root, [], (p, n) => {
    const float = floatSource(n);
    if (float === undefined) return;
    if (!INT_PATHS.some((pat) => pat.length === p.length && pat.every((s, i) => s === '*' || s === p[i]))) return;
    const ps = pathString(p);
    if (src.issues.some((i) => i.path === ps)) return;
    push(p, offsetOf(n), `expected an integer, got the float ${float}`);
  });

  // Cross-checks on what was written, whether or not the rest validated, so that one run reports everything.
  const rawObj = isRecord(raw) ? raw : {};
  const classNames = new Set(Object.keys(DEFAULT_TASK_CLASSES));
  if (isRecord(rawObj['taskClasses'])) for (const k of Object.keys(rawObj['taskClasses'])) if (CLASS_NAME.test(k)) classNames.add(k);
  const rawTools = isRecord(rawObj['tools']) ? rawObj['tools'] : {};
  for (const [name, t] of Object.entries(rawTools)) {
    if (!isRecord(t)) continue;
    const cls = t['taskClass'];
    if (typeof cls === 'string' && cls.length > 0 && !classNames.has(cls)) {
      const p = ['tools', name, 'taskClass'];
      push(p, offsetOf(locate(doc, p).node), `unknown task class ${JSON.stringify(cls)}; expected one of ${[...classNames].join(', ')} (or define it under taskClasses)`);
    }
    const kind = t['kind'];
    if ((kind === 'codex' || kind === 'claude') && Array.isArray(t['args'])) {
      t['args'].forEach((a, i) => {
        if (typeof a !== 'string' || !BYPASS_ARG.test(a)) return;
        const p = ['tools', name, 'args', i];
        push(p, offsetOf(locate(doc, p).node), `${JSON.stringify(a)} switches off the agent's sandbox or permission checks; that ${REFUSED_ELSEWHERE}`);
      });
    }
  }

  if (src.issues.length || !result.success) throw fail();
  return { config: build(result.data, opts.defaultProject, warnings), warnings };
}

function build(f: FileConfig, defaultProject: string | undefined, warnings: string[]): SparkqConfig {
  const config = defaultConfig(defaultProject);
  // The file's own name is used as written (it was validated); only the caller's folder name gets cleaned up.
  if (f.project !== undefined) config.project = f.project;
  if (f.scriptDirs) config.scriptDirs = [...f.scriptDirs];
  for (const [name, tc] of Object.entries(f.taskClasses ?? {})) config.taskClasses[name] = { name, timeoutSeconds: tc.timeoutSeconds };
  for (const [name, t] of Object.entries(f.tools ?? {})) config.tools[name] = buildTool(name, t, warnings);
  if (f.purgeAfterDays !== undefined) config.purgeAfterDays = f.purgeAfterDays;
  if (f.worker) config.worker = { pollSeconds: f.worker.pollSeconds ?? DEFAULT_WORKER.pollSeconds, leaseSeconds: f.worker.leaseSeconds ?? DEFAULT_WORKER.leaseSeconds };
  if (f.store) {
    config.store = { kind: f.store.kind ?? 'sqljs', liveCap: f.store.liveCap ?? DEFAULT_LIVE_CAP };
    if (f.store.url !== undefined) config.store.url = f.store.url;
    if (f.store.schema !== undefined) config.store.schema = f.store.schema;
    if (f.store.url !== undefined && /^postgres(ql)?:\/\/[^/@:]*:[^@]+@/.test(f.store.url)) {
      warnings.push('store.url has a password in it: anyone who can read sparkq.yml can read it; put the URL in SPARKQ_DATABASE_URL (or ~/.pgpass) instead');
    }
    if (f.store.kind !== 'postgres' && (f.store.url !== undefined || f.store.schema !== undefined)) {
      warnings.push('store.url and store.schema apply only with store.kind: postgres; they are ignored');
    }
  }
  if (f.retry) {
    config.retry = {
      backoffSeconds: f.retry.backoffSeconds ?? DEFAULT_RETRY.backoffSeconds,
      maxBackoffSeconds: f.retry.maxBackoffSeconds ?? DEFAULT_RETRY.maxBackoffSeconds,
      rateLimitPauseSeconds: f.retry.rateLimitPauseSeconds ?? DEFAULT_RETRY.rateLimitPauseSeconds,
    };
  }
  for (const [model, p] of Object.entries(f.pricing ?? {})) config.pricing[model] = { input: p.input, cachedInput: p.cachedInput ?? p.input, output: p.output };
  if (f.worktree) {
    config.worktree = {
      copy: [...(f.worktree.copy ?? [])],
      link: [...(f.worktree.link ?? [])],
      setup: f.worktree.setup ?? null,
      author: f.worktree.author ?? null,
      merge: f.worktree.merge ?? DEFAULT_WORKTREE.merge,
    };
  }
  if (f.patterns !== undefined) config.patternsDir = f.patterns;
  if (f.orchestrator !== undefined) config.orchestrator = f.orchestrator;
  if (config.orchestrator !== null && !config.pricing[config.orchestrator]) {
    warnings.push(`orchestrator ${config.orchestrator} has no price: add it under pricing: (USD per million tokens), or report --plan cannot price the naive plan`);
  }
  return config;
}

function buildTool(name: string, t: FileTool, warnings: string[]): ToolConfig {
  const known = (TOOL_KINDS as readonly string[]).includes(t.kind);
  const knownKind = known ? (t.kind as ToolKind) : 'manual';
  if (!known) warnings.push(`tool ${name} has unknown kind ${t.kind}; it will run as manual`);
  // Settings that the tool's kind never reads: accepted, but said, so that nobody believes they took effect.
  if (known && t.sandbox !== undefined && knownKind !== 'codex') warnings.push(`tool ${name}: sandbox applies only to codex tools; it is ignored for kind ${t.kind}`);
  if (known && t.permissionMode !== undefined && knownKind !== 'claude') warnings.push(`tool ${name}: permissionMode applies only to claude tools; it is ignored for kind ${t.kind}`);
  if (known && t.interpreter !== undefined && knownKind !== 'script') warnings.push(`tool ${name}: interpreter applies only to script tools; it is ignored for kind ${t.kind}`);
  if (known && t.mcp === true && knownKind !== 'codex' && knownKind !== 'claude') warnings.push(`tool ${name}: mcp applies only to codex and claude tools; it is ignored for kind ${t.kind}`);

  const tool: ToolConfig = { name, kind: t.kind, knownKind, taskClass: t.taskClass, args: [...(t.args ?? [])], env: { ...(t.env ?? {}) } };
  if (t.description !== undefined) tool.description = t.description;
  if (t.command !== undefined) tool.command = t.command;
  if (t.interpreter !== undefined) tool.interpreter = t.interpreter;
  if (t.model !== undefined) tool.model = t.model;
  const sandbox = t.sandbox ?? (knownKind === 'codex' ? 'workspace-write' : undefined);
  if (sandbox !== undefined) tool.sandbox = sandbox;
  if (t.permissionMode !== undefined) tool.permissionMode = t.permissionMode;
  if (t.mcp !== undefined) tool.mcp = t.mcp;
  if (t.maxAttempts !== undefined) tool.maxAttempts = t.maxAttempts;
  if (t.timeoutSeconds !== undefined) tool.timeoutSeconds = t.timeoutSeconds;
  if (t.isolation === 'worktree') tool.isolation = 'worktree';
  if (t.validate !== undefined) {
    const v: ValidateSpec = { tool: t.validate.tool };
    if (t.validate.prompt !== undefined) v.prompt = t.validate.prompt;
    if (t.validate.queue !== undefined) v.queue = t.validate.queue;
    if (t.validate.maxRounds !== undefined) v.maxRounds = t.validate.maxRounds;
    tool.validate = v;
  }
  return tool;
}

export function loadConfigFile(file: string, opts: { defaultProject?: string } = {}): { config: SparkqConfig; warnings: string[] } {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new ConfigError(file, [{ path: '', line: null, column: null, message: 'expected a file, found a directory or something else' }]);
    if (st.size > MAX_FILE_BYTES) throw new ConfigError(file, [{ path: '', line: null, column: null, message: `the file is larger than ${MAX_FILE_BYTES} bytes; a sparkq.yml is a few KiB` }]);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'no such file; run `sparkq init` to create one' : `cannot read the file: ${e instanceof Error ? e.message : String(e)}`;
    throw new ConfigError(file, [{ path: '', line: null, column: null, message }]);
  }
  return parseConfig(text, file, opts);
}

// ---- what `sparkq init` writes ----------------------------------------------------------------------------------

/** A plain YAML scalar where that reads unambiguously, a double-quoted one (JSON is valid YAML there) otherwise. */
function yamlScalar(s: string): string {
  return /^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s) ? s : JSON.stringify(s);
}

export function defaultConfigYaml(project: string, store: Partial<StoreConfig> = {}): string {
  const c = defaultConfig(project);
  c.store = { ...c.store, ...store };
  const lines = [
    '# SparkQ configuration. Every key is optional; unknown keys are errors, so a typo is reported, never ignored.',
    'version: 1',
    '',
    "# Shown for this workspace's queue.",
    `project: ${JSON.stringify(c.project)}`,
    '',
    '# Folders, relative to the workspace root, whose scripts the script tools may run.',
    'scriptDirs:',
    ...c.scriptDirs.map((d) => `  - ${yamlScalar(d)}`),
    '',
    '# Task classes are timeout budgets: a running task past 1x its timeout is stale, past 2x it is failed.',
    '# Entries are merged over the built-in classes; add your own with UPPER_CASE names.',
    'taskClasses:',
    ...Object.values(c.taskClasses).map((tc) => `  ${tc.name}: { timeoutSeconds: ${tc.timeoutSeconds} }`),
    '',
    '# Tools say how a task runs. A tool named here replaces the built-in tool of that name entirely.',
    '#   kind: script | codex | claude | manual          taskClass: one of the task classes above',
    '#   optional: description, command, interpreter (script), args (list), env (mapping), model,',
    '#   sandbox (codex: read-only | workspace-write), permissionMode (claude: default | acceptEdits | plan),',
    "#   mcp (codex, claude: true gives the agent SparkQ's MCP server for its own queue; default false),",
    '#   maxAttempts (1..100), timeoutSeconds (overrides the task class).',
    '#   danger-full-access and bypassPermissions are refused here: they come only from a user setting or a CLI flag.',
    'tools:',
  ];
  for (const t of Object.values(c.tools)) {
    lines.push(`  ${t.name}:`, `    kind: ${t.kind}`);
    if (t.interpreter !== undefined) lines.push(`    interpreter: ${yamlScalar(t.interpreter)}`);
    if (t.sandbox !== undefined) lines.push(`    sandbox: ${t.sandbox}`);
    lines.push(`    taskClass: ${t.taskClass}`);
    if (t.description !== undefined) lines.push(`    description: ${JSON.stringify(t.description)}`);
  }
  lines.push(
    '',
    '# Finished tasks older than this many days are deleted automatically; null keeps them until `sparkq purge`.',
    `purgeAfterDays: ${c.purgeAfterDays ?? 'null'}`,
    '',
    'worker:',
    `  pollSeconds: ${c.worker.pollSeconds}    # how often an idle worker looks for a task`,
    `  leaseSeconds: ${c.worker.leaseSeconds}  # how long a claim stays valid without a heartbeat from its worker`,
    '',
    '# Where the queue lives: sqljs (this workspace\'s .sparkq/) or postgres (team mode: several machines share one',
    '# queue; the URL comes from SPARKQ_DATABASE_URL, or store.url without a password in it).',
    'store:',
    `  kind: ${c.store.kind}`,
    ...(c.store.url !== undefined ? [`  url: ${c.store.url}`] : []),
    ...(c.store.schema !== undefined ? [`  schema: ${c.store.schema}`] : []),
    `  liveCap: ${c.store.liveCap}  # finished tasks kept live; older ones move to archive files`,
    '',
    '# A task whose tool (or queue) sets maxAttempts is retried after a failure: the first retry waits about',
    '# backoffSeconds, each next one twice as long (with jitter), at most maxBackoffSeconds.',
    'retry:',
    `  backoffSeconds: ${c.retry.backoffSeconds}`,
    `  maxBackoffSeconds: ${c.retry.maxBackoffSeconds}`,
    `  rateLimitPauseSeconds: ${c.retry.rateLimitPauseSeconds}  # queue pause after an agent's usage/rate limit with no reset time`,
    '',
    '# Prices per model, US dollars per million tokens, for `sparkq report --plan` (what the Codex tokens would have',
    `# cost at each model). Built in: 2025 API list prices of ${Object.keys(c.pricing).join(', ')}.`,
    '# Entries here are merged over them by model name (cachedInput defaults to input). For example:',
    '# pricing:',
    '#   gpt-5: { input: 1.25, cachedInput: 0.125, output: 10 }',
    '',
  );
  return lines.join('\n');
}

/** JSON Schema (draft 2020-12) of sparkq.yml, for editor completion and validation (e.g. the YAML extension). */
export function configJsonSchema(): object {
  // io 'input': the file's view, where every key is optional.
  return z.toJSONSchema(FileSchema, { io: 'input', target: 'draft-2020-12' });
}
