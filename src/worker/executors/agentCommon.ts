import * as fs from 'node:fs';
import * as path from 'node:path';
import { BYPASS_ARG } from '../../core/config';
import { isRecord } from '../../core/guards';
import { LIMITS, type JsonValue, type Task, type Usage } from '../../core/model';
import { SERVER_NAME } from '../../mcp/hostConfig';
import { type RunResult, runProcess } from '../proc';
import type { ExecContext, ExecOutcome, ExecOutcomeBase } from '../types';

/** Shared by the Codex and Claude executors: prompts, bypass checks, bounded text, parsing JSON lines. */

/** The first argument that would loosen the agent's safety (BYPASS_ARG, the families sparkq.yml refuses), or undefined. */
export function findBypassArg(args: readonly string[]): string | undefined {
  return args.find((a) => BYPASS_ARG.test(a));
}

export function bypassRefusal(tool: string, arg: string): string {
  return (
    `tool ${tool}: ${JSON.stringify(arg)} switches off the agent's sandbox or permission checks; ` +
    'that is only honoured when bypass is allowed by a user-level setting or a CLI flag'
  );
}

/** The task text an agent receives: the prompt, then the payload as JSON when there is one. Empty when neither. */
export function taskText(task: Pick<Task, 'prompt' | 'payload'>): string {
  const parts: string[] = [];
  if (task.prompt !== null && task.prompt.trim() !== '') parts.push(task.prompt);
  if (task.payload !== null) parts.push(`Payload (JSON):\n${JSON.stringify(task.payload, null, 2)}`);
  return parts.join('\n\n');
}

export const PROMPT_SEPARATOR = '\n\n---\n\n';

/** Queue instructions, a separator, then the task: for agents that take no separate system prompt (codex). */
export function promptWithInstructions(instructions: string, task: Pick<Task, 'prompt' | 'payload'>): string {
  const text = taskText(task);
  return instructions.trim() === '' ? text : `${instructions.trim()}${PROMPT_SEPARATOR}${text}`;
}

// ---- SparkQ's MCP server for the agent (a tool with mcp: true) ----------------------------------------------------

/** The MCP server's name in the agent: its tools are mcp__sparkq__NAME. */
export const MCP_SERVER_NAME = SERVER_NAME;

/** How the agent starts `sparkq mcp` for its task. */
export interface McpServerLaunch {
  /** The `sparkq` on the tool's PATH: the worker's launcher (.sparkq/bin/sparkq), which runs this very CLI. */
  command: string;
  /** `mcp --workspace W --queue Q --task T`: ids and a path, nothing from the task's text. */
  args: string[];
  /**
   * The variables the server needs from the agent's environment (the lease of the task, the owner's socket and token,
   * a team database URL, what makes the runtime behave as Node): names only, the values are never written anywhere.
   */
  envNames: string[];
}

/** Variables passed on to the MCP server besides SPARKQ_*: VS Code's runtime needs this one to run as Node. */
const RUNTIME_ENV = ['ELECTRON_RUN_AS_NODE'];

/** The first `sparkq` on `PATH` (absolute), or undefined. */
export function sparkqOnPath(env: NodeJS.ProcessEnv): string | undefined {
  const names = process.platform === 'win32' ? ['sparkq.cmd', 'sparkq.exe'] : ['sparkq'];
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * SparkQ's MCP server for the agent of this task, limited to the task's queue and to the task itself, started the way
 * the task's own shell would run `sparkq`: the worker's launcher first on the tool's PATH. A string says why there is
 * none (the task then fails rather than run without the tools it was configured to have).
 */
export function sparkqMcpServer(ctx: ExecContext): McpServerLaunch | string {
  const env = { ...ctx.env, ...ctx.tool.env };
  const command = sparkqOnPath(env);
  if (command === undefined) {
    return `tool ${ctx.tool.name} has mcp: true, but there is no sparkq on the tool's PATH to start SparkQ's MCP server with (a worker started by \`sparkq run\` puts its own there)`;
  }
  const envNames = Object.keys(env)
    .filter((k) => (k.startsWith('SPARKQ_') || RUNTIME_ENV.includes(k)) && env[k] !== undefined && env[k] !== '')
    .sort();
  return { command, args: ['mcp', '--workspace', ctx.workspaceDir, '--queue', ctx.queue.id, '--task', ctx.task.id], envNames };
}

/** At most `max` characters, cut with a marker that says how much was left out. */
export function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  const marker = `… [${text.length - max} more characters]`;
  return text.slice(0, Math.max(0, max - marker.length)) + marker;
}

/** The summary of an agent's final message: its first non-empty line, bounded to LIMITS.summary. */
export function summaryOf(message: string, fallback: string): string {
  const line = message
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '');
  return bounded(line ?? fallback, LIMITS.summary);
}

/** The final message as stored in data: whole unless it would crowd the data limit. */
export function messageForData(message: string): string {
  return bounded(message, Math.floor(LIMITS.data / 2));
}

/** Parses a line only when it starts with `{` (agents also print warnings on stdout); undefined otherwise. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return isRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A non-negative integer token count, or undefined. */
export function tokens(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined ? undefined : Math.max(0, Math.round(n));
}

/** API errors often arrive as the provider's JSON body; the message inside reads better. */
export function readableError(message: string): string {
  const t = message.trim();
  if (t.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(t);
      if (isRecord(v)) {
        const inner = isRecord(v['error']) ? str(v['error']['message']) : str(v['message']);
        if (inner) return inner;
      }
    } catch {
      // not JSON after all
    }
  }
  return t;
}

/** The gist of a tool's stderr for an error message: no Rust backtraces, the last few meaningful lines. */
export function stderrGist(stderr: string, maxLines = 6): string {
  const cut = stderr.split(/\n\s*Stack backtrace:/)[0] ?? stderr;
  const lines = cut
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^WARNING: proceeding, even though we could not create PATH aliases/.test(l));
  return lines.slice(-maxLines).join('\n');
}

/** A path relative to `cwd` when it lies inside it (how people read a changed-files list), else as given. */
export function relativeTo(cwd: string, file: string): string {
  const base = cwd.endsWith('/') ? cwd : `${cwd}/`;
  return file.startsWith(base) ? file.slice(base.length) : file;
}

/** The text kept for the database: a bounded tail of what the terminal showed. */
export class TranscriptTail {
  private text = '';
  constructor(private readonly max: number = LIMITS.output) {}
  push(s: string): void {
    this.text += s;
    if (this.text.length > this.max * 2) this.text = this.text.slice(this.text.length - this.max);
  }
  get value(): string {
    return this.text.length > this.max ? this.text.slice(this.text.length - this.max) : this.text;
  }
}

/** Output helpers that write to the terminal/capture and keep the readable transcript for the outcome. */
export function transcriptOutput(ctx: ExecContext) {
  const transcript = new TranscriptTail();
  const stderr = new TranscriptTail();
  return {
    transcript,
    stderr,
    info(text: string): void {
      const s = text.endsWith('\n') ? text : `${text}\n`;
      transcript.push(s);
      ctx.output(s, 'info');
    },
    stdout(line: string): void {
      transcript.push(`${line}\n`);
      ctx.output(`${line}\n`, 'stdout');
    },
    stderrLine(line: string): void {
      stderr.push(`${line}\n`);
      ctx.output(`${line}\n`, 'stderr');
    },
  };
}

/** Lines of `text`, indented, at most `maxLines` (the last ones) and `maxChars`. */
export function indentTail(text: string, maxLines = 12, maxChars = 2_000): string {
  const lines = text.replace(/\s+$/, '').split(/\r?\n/);
  const kept = lines.slice(-maxLines);
  const head = lines.length > kept.length ? [`    … ${lines.length - kept.length} earlier lines`] : [];
  return bounded([...head, ...kept.map((l) => `    ${l}`)].join('\n'), maxChars);
}

/** The failed outcome for a run that never got to an answer: spawn error or stop. */
export function processFailure(agent: string, r: RunResult, ctx: ExecContext): string | undefined {
  if (r.spawnError) return r.spawnError;
  if (r.stopped) {
    const reason: unknown = ctx.signal.reason;
    const why = typeof reason === 'string' ? reason : reason instanceof Error && !/aborted/i.test(reason.message) ? reason.message : '';
    return `${agent} was stopped${why ? `: ${why}` : ''}${r.groupGone ? '' : ' (some of its processes could not be verified gone)'}`;
  }
  return undefined;
}

export function failed(error: string, rest: Omit<Extract<ExecOutcome, { status: 'failed' }>, 'status' | 'error'> = {}): ExecOutcome {
  return { status: 'failed', error: bounded(error, LIMITS.error), ...rest };
}

export type DataObject = { [key: string]: JsonValue };

/**
 * Runs an agent CLI that prints JSON lines: stderr and non-JSON lines go to the transcript as they are; every JSON
 * event is appended to `eventLog` (for a post-mortem) and fed to `push`, whose readable lines become progress.
 * `shown` is the argv as printed (e.g. with long arguments abbreviated); the process always gets `args`.
 */
export async function runJsonlAgent(
  ctx: ExecContext,
  opts: { command: string; args: string[]; shown?: string[]; stdin: string; eventLog: string; push: (ev: Record<string, unknown>) => string[] },
  out: ReturnType<typeof transcriptOutput>,
): Promise<RunResult> {
  let eventsFd: number | undefined;
  try {
    eventsFd = fs.openSync(opts.eventLog, 'a');
  } catch {
    eventsFd = undefined; // the log is for a post-mortem; the task does not depend on it
  }
  out.info(`running ${opts.command} ${(opts.shown ?? opts.args).map((a) => (/^[\w@%+=:,./<>-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`);
  try {
    return await runProcess({
      command: opts.command,
      args: opts.args,
      cwd: ctx.cwd,
      env: { ...ctx.env, ...ctx.tool.env },
      stdin: opts.stdin,
      signal: ctx.signal,
      onLine: (line, stream) => {
        if (stream === 'stderr') return out.stderrLine(line);
        const ev = parseJsonLine(line);
        if (!ev) return line.trim() ? out.stdout(line) : undefined;
        if (eventsFd !== undefined) fs.writeSync(eventsFd, `${line}\n`);
        for (const l of opts.push(ev)) out.info(l);
      },
    });
  } finally {
    if (eventsFd !== undefined) fs.closeSync(eventsFd);
  }
}

/** The parts of an agent's outcome that do not depend on how it ended: transcript, stderr, usage, notes, session. */
export function agentOutcomeBase(
  out: ReturnType<typeof transcriptOutput>,
  usage: Usage | undefined,
  notes: string[],
  agentSession: ExecOutcomeBase['agentSession'] | undefined,
): ExecOutcomeBase {
  return {
    stdout: out.transcript.value,
    stderr: out.stderr.value,
    ...(usage ? { usage } : {}),
    ...(notes.length ? { notes } : {}),
    ...(agentSession ? { agentSession } : {}),
  };
}

/** "code 3" or "signal SIGKILL": how a process ended, for an error message. */
export function howItEnded(r: RunResult): string {
  return r.exitCode === null ? `signal ${r.signal ?? '?'}` : `code ${r.exitCode}`;
}

// ---- Usage and rate limits ---------------------------------------------------------------------------------------

/** What an agent's run said about a usage or rate limit: a readable reason and, when it said so, when it resets. */
export interface RateLimitInfo {
  /** What the agent said, as it said it (bounded by the caller). */
  reason: string;
  /** When the limit resets (epoch ms), when the agent said so. */
  resetAt?: number;
}

/** The rate-limited outcome, with the same base fields as a failed one. */
export function rateLimited(error: string, resetAt: number | undefined, rest: ExecOutcomeBase = {}): ExecOutcome {
  return { status: 'rate-limited', error: bounded(error, LIMITS.error), ...(resetAt !== undefined ? { resetAt } : {}), ...rest };
}

/** "Codex hit a usage limit (resets at 2026-11-21T08:00:00Z): <what it said>". */
export function rateLimitError(agent: string, kind: 'usage' | 'rate', info: RateLimitInfo): string {
  const when = info.resetAt !== undefined ? ` (resets at ${new Date(info.resetAt).toISOString().replace(/\.\d{3}Z$/, 'Z')})` : ' (reset time unknown)';
  return `${agent} hit a ${kind === 'usage' ? 'usage' : 'rate'} limit${when}: ${info.reason}`;
}

const UNIT_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1_000, sec: 1_000, secs: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

/**
 * A relative wait the way APIs write it: "try again in 20s", "in 1m30s", "in 1.5s", "in 120ms", "in 2 minutes",
 * "in 1h 5m". Milliseconds, or undefined when the text has none.
 */
export function parseRetryIn(text: string): number | undefined {
  const m = /\b(?:try again|retry|resets?|available again)\s+in\s+((?:\d+(?:\.\d+)?\s*(?:milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?![a-z])[\s,]*(?:and\s+)?)+)/i.exec(text);
  if (!m?.[1]) return undefined;
  let total = 0;
  for (const part of m[1].matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)/gi)) {
    const ms = UNIT_MS[(part[2] ?? '').toLowerCase()];
    if (ms === undefined) return undefined;
    total += Number(part[1]) * ms;
  }
  return Math.round(total);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * Codex's "try again at 7:19 AM" (today) or "try again at Nov 23rd, 2026 6:21 AM", in the local time zone of the
 * codex process (assumed to be this process's): epoch ms, or undefined. Codex prints whole minutes only.
 */
export function parseTryAgainAt(text: string, now: number): number | undefined {
  const m = /\btry again at\s+(?:([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}),?\s+)?(\d{1,2}):(\d{2})\s*([AP]M)\b/i.exec(text);
  if (!m) return undefined;
  let hour = Number(m[4]) % 12;
  if ((m[6] ?? '').toUpperCase() === 'PM') hour += 12;
  const minute = Number(m[5]);
  const d = new Date(now);
  if (m[1] !== undefined) {
    const month = MONTHS.indexOf(m[1].toLowerCase());
    if (month < 0) return undefined;
    d.setFullYear(Number(m[3]), month, Number(m[2]));
  }
  d.setHours(hour, minute, 0, 0);
  return d.getTime();
}

/** An epoch in seconds or milliseconds (by size) as epoch ms; undefined when not a plausible time. */
export function epochToMs(v: number): number | undefined {
  if (!Number.isFinite(v) || v <= 0) return undefined;
  return v < 1e11 ? v * 1_000 : v;
}

/**
 * A `Retry-After` header value (delta seconds or an HTTP date) or an RFC 3339 reset time
 * (`anthropic-ratelimit-*-reset`): epoch ms, or undefined.
 */
export function parseRetryAfter(value: string, now: number): number | undefined {
  const t = value.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return now + Math.round(Number(t) * 1_000);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The reset time a rate/usage-limit message carries, in whatever form: an API body's `resets_at` (epoch s) or
 * `resets_in_seconds`, Claude's `…|<epoch s>` suffix, codex's "try again at 7:19 AM", "try again in 1m30s",
 * "retry-after: 30". Epoch ms, or undefined.
 */
export function resetFromText(text: string, now: number): number | undefined {
  const at = /"?resets_at"?\s*[:=]\s*(\d+)/.exec(text);
  if (at?.[1]) return epochToMs(Number(at[1]));
  const inSec = /"?resets_in_seconds"?\s*[:=]\s*(\d+(?:\.\d+)?)/.exec(text);
  if (inSec?.[1]) return now + Math.round(Number(inSec[1]) * 1_000);
  const pipe = /\|\s*(\d{10,13})\s*$/.exec(text.trim());
  if (pipe?.[1]) return epochToMs(Number(pipe[1]));
  const clock = parseTryAgainAt(text, now);
  if (clock !== undefined) return clock;
  const rel = parseRetryIn(text);
  if (rel !== undefined) return now + rel;
  const ra = /\bretry[-_ ]after"?\s*[:=]\s*"?([^",}\n]+)/i.exec(text);
  if (ra?.[1]) return parseRetryAfter(ra[1], now);
  return undefined;
}
