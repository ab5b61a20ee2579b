import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isRecord } from '../../core/guards';
import type { Usage } from '../../core/model';
import type { RunResult } from '../proc';
import type { ExecContext, ExecOutcome, Executor } from '../types';
import {
  agentOutcomeBase,
  bounded,
  bypassRefusal,
  type DataObject,
  failed,
  findBypassArg,
  howItEnded,
  indentTail,
  MCP_SERVER_NAME,
  type McpServerLaunch,
  messageForData,
  num,
  runJsonlAgent,
  processFailure,
  type RateLimitInfo,
  rateLimitError,
  rateLimited,
  readableError,
  resetFromText,
  relativeTo,
  sparkqMcpServer,
  stderrGist,
  str,
  summaryOf,
  taskText,
  tokens,
  transcriptOutput,
} from './agentCommon';

/**
 * Runs a task with Claude Code: `claude -p --output-format stream-json --verbose`, the prompt on stdin, the queue's
 * instructions appended to the system prompt. The queue keeps the session id: its first task pre-assigns one with
 * `--session-id`, later tasks continue it with `--resume`.
 */

export const DEFAULT_CLAUDE_PERMISSION_MODE = 'acceptEdits';

export interface ClaudeInvocation {
  /** The session to continue (`--resume`) or to create under this id (`--session-id`). */
  sessionId: string;
  resume: boolean;
  permissionMode: string;
  /** The queue's instructions; nothing is appended when empty. */
  appendSystemPrompt: string;
  model?: string | undefined;
  extraArgs: readonly string[];
  /** A `--mcp-config` file with SparkQ's MCP server (a tool with mcp: true); its tools are then allowed. */
  mcpConfigFile?: string | undefined;
}

/**
 * The `--mcp-config` JSON for SparkQ's MCP server. claude passes its own environment on to its MCP servers, so the
 * file holds no values from it: the lease and the owner's token stay out of files.
 */
export function claudeMcpConfig(server: McpServerLaunch): string {
  return `${JSON.stringify({ mcpServers: { [MCP_SERVER_NAME]: { type: 'stdio', command: server.command, args: server.args, env: {} } } }, null, 2)}\n`;
}

/** The argv after the command. The prompt always comes on stdin. */
export function claudeArgs(inv: ClaudeInvocation): string[] {
  return [
    '-p',
    '--output-format',
    'stream-json',
    '--verbose',
    ...(inv.resume ? ['--resume', inv.sessionId] : ['--session-id', inv.sessionId]),
    '--permission-mode',
    inv.permissionMode,
    // One argument with `=`, so that instructions starting with "-" can never read as an option.
    ...(inv.appendSystemPrompt.trim() !== '' ? [`--append-system-prompt=${inv.appendSystemPrompt}`] : []),
    ...(inv.model !== undefined ? ['--model', inv.model] : []),
    // Without --allowedTools a print-mode run is denied every MCP tool call.
    ...(inv.mcpConfigFile !== undefined ? ['--mcp-config', inv.mcpConfigFile, '--allowedTools', `mcp__${MCP_SERVER_NAME}`] : []),
    ...inv.extraArgs,
  ];
}

const EDIT_TOOLS = new Set(['Write', 'Edit', 'MultiEdit', 'NotebookEdit']);

/** What a tool call is about, in a few words: the command, the file, the pattern… */
function toolGist(input: unknown): string {
  if (!isRecord(input)) return '';
  const s = str(input['command']) ?? str(input['file_path']) ?? str(input['notebook_path']) ?? str(input['pattern']) ?? str(input['url']) ?? str(input['description']);
  return bounded((s ?? JSON.stringify(input)).replace(/\s*\n\s*/g, ' ⏎ '), 300);
}

function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((c) => (isRecord(c) ? (str(c['text']) ?? '') : '')).join('\n');
  return '';
}

/** Reads `claude -p --output-format stream-json` messages: keeps what the outcome needs and renders progress. */
export class ClaudeEvents {
  sessionId: string | undefined;
  model: string | undefined;
  lastAssistantText: string | undefined;
  result: Record<string, unknown> | undefined;
  /** The `error` of an assistant message claude made up from an API error (e.g. "rate_limit"), the last one. */
  apiError: string | undefined;
  /** A `rate_limit_event` that said the limit is reached ("rejected"), with its reset time (epoch ms) when given. */
  rejectedLimit: { resetAt?: number } | undefined;
  private readonly changed = new Set<string>();
  private readonly pendingEdits = new Map<string, string>();

  constructor(private readonly cwd: string) {}

  get changedFiles(): string[] {
    return [...this.changed];
  }

  push(ev: Record<string, unknown>): string[] {
    switch (ev['type']) {
      case 'system': {
        if (ev['subtype'] === 'init') {
          this.sessionId = str(ev['session_id']) ?? this.sessionId;
          this.model = str(ev['model']) ?? this.model;
          return [`claude session ${this.sessionId ?? '?'} · model ${this.model ?? '?'} · permission mode ${str(ev['permissionMode']) ?? '?'}`];
        }
        if (ev['subtype'] === 'api_retry') return [`retrying the API call (${str(ev['error']) ?? 'error'})`];
        return [];
      }
      case 'assistant':
        if (ev['is_api_error_message'] === true) this.apiError = str(ev['error']) ?? this.apiError;
        return this.assistant(ev['message']);
      case 'rate_limit_event': {
        const info = ev['rate_limit_info'];
        if (isRecord(info) && info['status'] === 'rejected') {
          const at = num(info['resetsAt']);
          this.rejectedLimit = at !== undefined ? { resetAt: at < 1e11 ? at * 1_000 : at } : {};
        }
        return [];
      }
      case 'user':
        return this.toolResults(ev['message']);
      case 'result': {
        this.result = ev;
        this.sessionId = str(ev['session_id']) ?? this.sessionId;
        return [];
      }
      default:
        return [];
    }
  }

  private assistant(message: unknown): string[] {
    if (!isRecord(message) || !Array.isArray(message['content'])) return [];
    const lines: string[] = [];
    for (const block of message['content']) {
      if (!isRecord(block)) continue;
      if (block['type'] === 'text') {
        const text = str(block['text']) ?? '';
        this.lastAssistantText = text;
        if (text.trim()) lines.push(text);
      } else if (block['type'] === 'tool_use') {
        const name = str(block['name']) ?? '?';
        const input = block['input'];
        const id = str(block['id']);
        if (EDIT_TOOLS.has(name) && id !== undefined && isRecord(input)) {
          const file = str(input['file_path']) ?? str(input['notebook_path']);
          if (file !== undefined) this.pendingEdits.set(id, relativeTo(this.cwd, file));
        }
        lines.push(`→ ${name}: ${toolGist(input)}`);
      } else if (block['type'] === 'thinking') {
        const first = (str(block['thinking']) ?? '').trim().split('\n')[0] ?? '';
        if (first) lines.push(`(thinking) ${bounded(first, 200)}`);
      }
    }
    return lines;
  }

  private toolResults(message: unknown): string[] {
    if (!isRecord(message) || !Array.isArray(message['content'])) return [];
    const lines: string[] = [];
    for (const block of message['content']) {
      if (!isRecord(block) || block['type'] !== 'tool_result') continue;
      const id = str(block['tool_use_id']);
      const isError = block['is_error'] === true;
      const edited = id !== undefined ? this.pendingEdits.get(id) : undefined;
      if (edited !== undefined) {
        this.pendingEdits.delete(id!);
        if (!isError) this.changed.add(edited);
      }
      const text = resultText(block['content']);
      if (isError) lines.push(`  ✗ ${bounded(text.trim().split('\n')[0] ?? '', 500)}`);
      else if (text.trim()) lines.push(indentTail(text, 8));
    }
    return lines;
  }
}

/** Usage for the task from the result message. Anthropic counts cache reads apart from input; Usage counts them in. */
export function claudeUsage(result: Record<string, unknown>, model: string | undefined): Usage | undefined {
  const u = result['usage'];
  if (!isRecord(u)) return undefined;
  const input = tokens(u['input_tokens']) ?? 0;
  const cacheRead = tokens(u['cache_read_input_tokens']) ?? 0;
  const cacheWrite = tokens(u['cache_creation_input_tokens']) ?? 0;
  const usage: Usage = { inputTokens: input + cacheRead + cacheWrite, cachedInputTokens: cacheRead, outputTokens: tokens(u['output_tokens']) ?? 0 };
  const details = u['output_tokens_details'];
  const thinking = isRecord(details) ? tokens(details['thinking_tokens']) : undefined;
  if (thinking !== undefined) usage.reasoningTokens = thinking;
  // total_cost_usd is the session's running total on --resume; the per-run figure is in model_usage_since_last_result.
  const since = result['model_usage_since_last_result'];
  let cost: number | undefined;
  if (isRecord(since)) {
    const costs = Object.values(since).map((m) => (isRecord(m) ? num(m['costUSD']) : undefined));
    if (costs.length && costs.every((c) => c !== undefined)) cost = costs.reduce<number>((a, c) => a + (c ?? 0), 0);
  }
  cost ??= num(result['total_cost_usd']);
  if (cost !== undefined) usage.costUsd = Math.max(0, Math.round(cost * 1e6) / 1e6);
  const m = model ?? (isRecord(since) ? Object.keys(since)[0] : undefined);
  if (m !== undefined) usage.model = bounded(m, 200);
  return usage;
}

/** The error text of a result with is_error (its `result`, else its `errors`, else its subtype). */
export function claudeResultError(result: Record<string, unknown>): string {
  const errors = Array.isArray(result['errors']) ? result['errors'].filter((e): e is string => typeof e === 'string') : [];
  const text = str(result['result'])?.trim() || errors.join('; ') || `claude reported an error (${str(result['subtype']) ?? 'no details'})`;
  return readableError(text);
}

/** claude says so when `--resume` names a session it has no record of (in this working directory). */
export function isUnknownSessionError(text: string): boolean {
  return /no conversation found|requires a valid session id|not a uuid and does not match any session/i.test(text);
}

// ---- Continuing a session from another directory --------------------------------------------------------------------
//
// Claude Code keeps a session's transcript under `<config dir>/projects/<project>/<session>.jsonl`, <project> being the
// directory it was started in, escaped. A queue with a worktree per task continues one session from a new directory
// each task. Claude Code 2.1.329 (checked here against a loopback mock) finds a `--resume <id>` in any project
// directory: from another cwd, even one whose first directory is gone, it loads the transcript, tells the model the
// working directory changed, runs the tools in the new cwd and goes on appending to the first project's file. Older
// versions looked only in the project directory of their cwd and said "No conversation found with session ID"
// (anthropics/claude-code#5768, #14252, #38089; no flag for it). For those, and only after such a refusal, the
// transcript is copied into the project directory of the new cwd and the resume tried once more.

/** Claude Code's config dir: CLAUDE_CONFIG_DIR, else ~/.claude. */
export function claudeConfigDir(env: NodeJS.ProcessEnv): string {
  return env['CLAUDE_CONFIG_DIR'] || path.join(env['HOME'] || os.homedir(), '.claude');
}

/** The hash Claude Code puts after a cut project name: Java's String.hashCode (h = h * 31 + UTF-16 unit, 32-bit). */
function claudePathHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

const CLAUDE_PROJECT_NAME_MAX = 200;

/**
 * The name of the project directory Claude Code keeps a cwd's sessions in, as 2.1.329 makes it: every UTF-16 unit
 * outside [A-Za-z0-9] becomes "-" (`/a_b/c.d e` → `-a-b-c-d-e`); a name longer than 200 is cut to 200 and followed by
 * "-" and the absolute hash of the whole path in base 36.
 */
export function claudeProjectDirName(cwd: string): string {
  const name = cwd.replace(/[^a-zA-Z0-9]/g, '-');
  if (name.length <= CLAUDE_PROJECT_NAME_MAX) return name;
  return `${name.slice(0, CLAUDE_PROJECT_NAME_MAX)}-${Math.abs(claudePathHash(cwd)).toString(36)}`;
}

/** The project directories a cwd may map to: as given and as the OS resolves it (claude's own cwd is the latter). */
function claudeProjectDirs(configDir: string, cwd: string): string[] {
  let real = cwd;
  try {
    real = fs.realpathSync(cwd);
  } catch {
    // not there (yet): the name as given is all there is
  }
  return [...new Set([real, cwd].map((d) => path.join(configDir, 'projects', claudeProjectDirName(d))))];
}

/** The session's transcript in any project directory (`<config dir>/projects/<project>/<session>.jsonl`), the newest. */
export function findClaudeTranscript(configDir: string, sessionId: string): string | undefined {
  const projects = path.join(configDir, 'projects');
  let found: { file: string; mtime: number } | undefined;
  let names: string[];
  try {
    names = fs.readdirSync(projects);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const file = path.join(projects, name, `${sessionId}.jsonl`);
    try {
      const st = fs.statSync(file);
      if (st.isFile() && (found === undefined || st.mtimeMs > found.mtime)) found = { file, mtime: st.mtimeMs };
    } catch {
      // not in this project
    }
  }
  return found?.file;
}

/**
 * Puts a copy of the session's transcript (and its companion directory of subagent and tool-result files, if any)
 * into the project directory of `cwd`, for a claude that resumes only sessions of its own cwd. Says where from and to,
 * or (a string) why nothing was copied.
 */
export function carryClaudeSession(configDir: string, sessionId: string, cwd: string): { from: string; to: string } | string {
  const from = findClaudeTranscript(configDir, sessionId);
  if (from === undefined) return `no transcript of it under ${path.join(configDir, 'projects')}`;
  const targets = claudeProjectDirs(configDir, cwd).filter((d) => d !== path.dirname(from));
  if (targets.length === 0) return `no other transcript to use: the one in ${path.dirname(from)} is this directory's own`;
  try {
    for (const dir of targets) {
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(from, path.join(dir, `${sessionId}.jsonl`));
      const companion = path.join(path.dirname(from), sessionId);
      if (fs.existsSync(companion)) fs.cpSync(companion, path.join(dir, sessionId), { recursive: true });
    }
  } catch (e) {
    return `its transcript ${from} could not be copied: ${e instanceof Error ? e.message : String(e)}`;
  }
  return { from: path.dirname(from), to: targets[0]! };
}

/** Claude Code's subscription form: the whole final text is "Claude AI usage limit reached|<epoch seconds>". */
const CLAUDE_USAGE_LIMIT_TEXT = /^Claude AI usage limit reached(?:\s*\|\s*(\d{9,13}))?\s*$/i;

/**
 * Whether claude's result is a usage or rate limit of the account/API, and when it resets. Claude Code 2.1 reports an
 * HTTP 429 as an error result with `api_error_status: 429`, `api_error_type: "rate_limit_error"` (its assistant
 * message has `error: "rate_limit"`) and the text "API Error: Request rejected (429) · <API message>"; the reset
 * headers do not reach its output. The subscription form is the result text "Claude AI usage limit reached|<epoch s>",
 * which can come with is_error false and exit 0. `rejectedResetAt` is from a rate_limit_event, when there was one.
 */
export function claudeRateLimit(
  result: Record<string, unknown>,
  apiError: string | undefined,
  now: number,
  rejectedResetAt?: number,
): (RateLimitInfo & { kind: 'usage' | 'rate' }) | undefined {
  const text = (str(result['result']) ?? '').trim();
  const m = CLAUDE_USAGE_LIMIT_TEXT.exec(text);
  if (m) {
    const resetAt = m[1] !== undefined ? Number(m[1]) * (m[1].length <= 10 ? 1_000 : 1) : rejectedResetAt;
    return { kind: 'usage', reason: 'Claude AI usage limit reached', ...(resetAt !== undefined ? { resetAt } : {}) };
  }
  if (result['is_error'] !== true) return undefined;
  let kind: 'usage' | 'rate' | undefined;
  if (/hit your (?:\w+ )?limit|usage limit reached/i.test(text)) kind = 'usage';
  else if (result['api_error_status'] === 429 || result['api_error_type'] === 'rate_limit_error' || apiError === 'rate_limit') kind = 'rate';
  if (kind === undefined) return undefined;
  const resetAt = resetFromText(text, now) ?? rejectedResetAt;
  return { kind, reason: claudeResultError(result), ...(resetAt !== undefined ? { resetAt } : {}) };
}

interface ClaudeRun {
  result: RunResult;
  events: ClaudeEvents;
}

async function runClaudeOnce(ctx: ExecContext, inv: ClaudeInvocation, stdin: string, out: ReturnType<typeof transcriptOutput>): Promise<ClaudeRun> {
  const events = new ClaudeEvents(ctx.cwd);
  const command = ctx.tool.command ?? 'claude';
  const args = claudeArgs(inv);
  const shown = args.map((a) => (a.startsWith('--append-system-prompt=') ? '--append-system-prompt=<queue instructions>' : a));
  const result = await runJsonlAgent(ctx, { command, args, shown, stdin, eventLog: path.join(ctx.runDir, 'claude-events.jsonl'), push: (ev) => events.push(ev) }, out);
  return { result, events };
}

export const claudeExecutor: Executor = {
  async run(ctx: ExecContext): Promise<ExecOutcome> {
    const tool = ctx.tool;
    const permissionMode: string = tool.permissionMode ?? DEFAULT_CLAUDE_PERMISSION_MODE;
    if (!ctx.userSettings.allowBypass) {
      const bad = findBypassArg([...tool.args, permissionMode]);
      if (bad !== undefined) return failed(bypassRefusal(tool.name, bad));
    }
    const stdin = taskText(ctx.task);
    if (stdin === '') return failed('the task has no prompt and no payload: there is nothing to ask claude');
    let mcpConfigFile: string | undefined;
    if (tool.mcp === true) {
      const server = sparkqMcpServer(ctx);
      if (typeof server === 'string') return failed(server);
      mcpConfigFile = path.join(ctx.runDir, 'mcp-config.json');
      fs.writeFileSync(mcpConfigFile, claudeMcpConfig(server), { mode: 0o600 });
    }
    const out = transcriptOutput(ctx);
    const notes: string[] = [];
    const base = { permissionMode, appendSystemPrompt: ctx.instructions, model: tool.model, extraArgs: tool.args, mcpConfigFile };

    const previous = ctx.queue.claudeSessionId;
    let run = await runClaudeOnce(ctx, previous !== null ? { ...base, sessionId: previous, resume: true } : { ...base, sessionId: randomUUID(), resume: false }, stdin, out);
    // A session claude cannot load fails before its init message, with a result (or stderr) that says why.
    const unknownSession = (r: ClaudeRun): string | undefined => {
      if (r.result.stopped || r.events.model !== undefined) return undefined;
      const why = r.events.result ? claudeResultError(r.events.result) : stderrGist(r.result.stderrTail, 2);
      return isUnknownSessionError(why) || isUnknownSessionError(r.result.stderrTail) ? why : undefined;
    };
    let why = previous !== null ? unknownSession(run) : undefined;
    if (previous !== null && why !== undefined) {
      // The session may have been started in another directory (a worktree per task), by a claude that resumes only
      // sessions of its own cwd: give it a copy of the transcript there and try once more (see carryClaudeSession).
      const carried = carryClaudeSession(claudeConfigDir({ ...ctx.env, ...tool.env }), previous, ctx.cwd);
      let detail: string;
      if (typeof carried === 'string') {
        detail = carried;
      } else {
        out.info(`claude did not find the queue's session ${previous} from ${ctx.cwd}; copied its transcript from ${carried.from} to ${carried.to} and resuming again`);
        run = await runClaudeOnce(ctx, { ...base, sessionId: previous, resume: true }, stdin, out);
        const again = unknownSession(run);
        if (again === undefined) {
          if (!run.result.stopped) notes.push(`claude resumed the queue's session ${previous} only after its transcript was copied from ${carried.from} into this directory's project (${carried.to})`);
          why = undefined;
        } else {
          why = again;
        }
        detail = `even with its transcript copied from ${carried.from}`;
      }
      if (why !== undefined) {
        notes.push(`claude has no record of the queue's session ${previous} here (${why}; ${detail}); started a new session`);
        out.info(notes[notes.length - 1]!);
        run = await runClaudeOnce(ctx, { ...base, sessionId: randomUUID(), resume: false }, stdin, out);
      }
    }

    const { result, events } = run;
    const final = events.result;
    const usage = final ? claudeUsage(final, events.model ?? tool.model) : undefined;
    if (usage) out.info(`tokens: in ${usage.inputTokens} (cached ${usage.cachedInputTokens}), out ${usage.outputTokens}${usage.costUsd !== undefined ? ` · $${usage.costUsd}` : ''}`);
    const denials = final && Array.isArray(final['permission_denials']) ? final['permission_denials'].filter(isRecord) : [];
    for (const d of denials) notes.push(`claude was not permitted to use ${str(d['tool_name']) ?? 'a tool'}: ${toolGist(d['tool_input'])}`);
    const rest = agentOutcomeBase(out, usage, notes, events.sessionId !== undefined ? { claudeSessionId: events.sessionId } : undefined);

    const procError = processFailure('claude', result, ctx);
    if (procError !== undefined) return failed(procError, rest);
    if (!final) {
      const why = stderrGist(result.stderrTail);
      return failed(`claude exited with ${howItEnded(result)} without a result${why ? `: ${why}` : ''}`, rest);
    }
    const limit = claudeRateLimit(final, events.apiError, Date.now(), events.rejectedLimit?.resetAt);
    if (limit !== undefined) return rateLimited(rateLimitError('Claude', limit.kind, limit), limit.resetAt, rest);
    // `subtype` can say success while is_error is true: is_error decides.
    if (final['is_error'] === true) return failed(`claude: ${claudeResultError(final)}`, rest);
    if (result.exitCode !== 0) return failed(`claude exited with code ${result.exitCode ?? `signal ${result.signal ?? '?'}`}: ${stderrGist(result.stderrTail) || 'no message'}`, rest);
    const message = str(final['result']) ?? events.lastAssistantText ?? '';
    const data: DataObject = { message: messageForData(message), changedFiles: events.changedFiles };
    if (events.sessionId !== undefined) data['sessionId'] = events.sessionId;
    const turns = num(final['num_turns']);
    if (turns !== undefined) data['numTurns'] = turns;
    return { status: 'succeeded', summary: summaryOf(message, 'claude finished without a final message'), data, ...rest };
  },
};
