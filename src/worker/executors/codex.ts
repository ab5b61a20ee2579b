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
  parseJsonLine,
  runJsonlAgent,
  processFailure,
  promptWithInstructions,
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
 * Runs a task with OpenAI Codex CLI: `codex exec --json`, the prompt on stdin, JSONL events on stdout.
 * The queue keeps the thread id; later tasks resume it with every option before `resume` and the sandbox restated
 * (codex does not carry it over), never with `--last` (which silently starts a new thread when there is none).
 */

export const DEFAULT_CODEX_SANDBOX = 'workspace-write';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface CodexInvocation {
  /** Where codex works (`-C`). */
  cwd: string;
  /** `read-only` | `workspace-write` (| `danger-full-access`, which the caller allows only with bypass). */
  sandbox: string;
  model?: string | undefined;
  /** codex writes its final message here (`-o`). */
  lastMessageFile: string;
  /** The tool's extra args, passed through (e.g. `-c model_provider=…`), before `resume`. */
  extraArgs: readonly string[];
  /** Resume this thread; null starts a new one. */
  resumeThreadId: string | null;
  /**
   * Pass `--disable unbounded_connection_retries`: with it on (codex's default) an unreachable model server makes
   * codex print "Reconnecting..." forever, and the task would hang until its 2x timeout.
   */
  boundedRetries: boolean;
  /** SparkQ's MCP server for the agent (a tool with mcp: true), as per-run `-c mcp_servers.sparkq.…` overrides. */
  mcpServer?: McpServerLaunch | undefined;
}

/** The codex feature that retries a lost connection forever; off for workers unless the tool's args mention it. */
export const UNBOUNDED_RETRIES_FEATURE = 'unbounded_connection_retries';

/** A TOML string (JSON's escapes are TOML's, for the characters a path or an id holds). */
const toml = (s: string) => JSON.stringify(s);

/**
 * `-c` overrides that give codex the MCP server for this run only. codex starts MCP servers with an environment of its
 * own, not its caller's: the variables the server needs are passed on by name (env_vars), so that no value (the lease,
 * the owner's token) is in the argv. Its tool calls must be pre-approved: `codex exec` runs with approval "never" and
 * refuses a tool call that would need an approval.
 */
export function codexMcpArgs(server: McpServerLaunch): string[] {
  const key = `mcp_servers.${MCP_SERVER_NAME}`;
  const list = (xs: readonly string[]) => `[${xs.map(toml).join(',')}]`;
  return [
    '-c',
    `${key}.command=${toml(server.command)}`,
    '-c',
    `${key}.args=${list(server.args)}`,
    '-c',
    `${key}.env_vars=${list(server.envNames)}`,
    '-c',
    `${key}.default_tools_approval_mode="approve"`,
  ];
}

/** The argv after the command. The prompt always comes on stdin (`-`). */
export function codexArgs(inv: CodexInvocation): string[] {
  const model = inv.model !== undefined ? ['-m', inv.model] : [];
  const retries = inv.boundedRetries ? ['--disable', UNBOUNDED_RETRIES_FEATURE] : [];
  const mcp = inv.mcpServer !== undefined ? codexMcpArgs(inv.mcpServer) : [];
  if (inv.resumeThreadId === null) {
    return ['exec', '--json', '--skip-git-repo-check', '-s', inv.sandbox, '-C', inv.cwd, ...model, '-o', inv.lastMessageFile, ...retries, ...mcp, ...inv.extraArgs, '-'];
  }
  // `resume` takes no -s: the sandbox goes in as a config override, and every option must precede the subcommand.
  // `-C` may name another directory than the thread was started in (a worktree per task): codex 0.169 (checked against
  // a loopback mock) continues the thread there, tells the model the new cwd and workspace root in a fresh
  // environment_context, and its sandbox's writable root and tools follow the new cwd; the first one may be gone.
  return [
    'exec',
    '--json',
    '--skip-git-repo-check',
    '-C',
    inv.cwd,
    ...model,
    '-o',
    inv.lastMessageFile,
    '-c',
    `sandbox_mode="${inv.sandbox}"`,
    ...retries,
    ...mcp,
    ...inv.extraArgs,
    'resume',
    inv.resumeThreadId,
    '-',
  ];
}

/** Token counts as codex reports them in turn.completed (a thread's running total when it resumed a thread). */
export interface CodexTokenCounts {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

function countsOf(u: unknown): CodexTokenCounts | undefined {
  if (!isRecord(u)) return undefined;
  return {
    inputTokens: tokens(u['input_tokens']) ?? 0,
    cachedInputTokens: tokens(u['cached_input_tokens']) ?? 0,
    outputTokens: tokens(u['output_tokens']) ?? 0,
    reasoningTokens: tokens(u['reasoning_output_tokens']) ?? 0,
  };
}

/** Reads `codex exec --json` events one at a time: keeps what the outcome needs and renders readable progress. */
export class CodexEvents {
  threadId: string | undefined;
  lastAgentMessage: string | undefined;
  turnCompleted = false;
  turnFailed: string | undefined;
  /** Top-level `error` events (connection, API). */
  readonly errors: string[] = [];
  /** `error` items: codex reports non-fatal problems this way (e.g. unknown model metadata) and the turn goes on. */
  readonly warnings: string[] = [];
  usage: CodexTokenCounts | undefined;
  private readonly changed = new Set<string>();
  private readonly commandsShown = new Set<string>();

  constructor(private readonly cwd: string) {}

  get changedFiles(): string[] {
    return [...this.changed];
  }

  /** Takes one parsed event; returns the lines to show for it (possibly none). */
  push(ev: Record<string, unknown>): string[] {
    switch (ev['type']) {
      case 'thread.started':
        this.threadId = str(ev['thread_id']);
        return [`codex thread ${this.threadId ?? '?'}`];
      case 'turn.started':
        return [];
      case 'turn.completed': {
        this.turnCompleted = true;
        this.usage = countsOf(ev['usage']);
        return [];
      }
      case 'turn.failed': {
        const err = ev['error'];
        this.turnFailed = readableError((isRecord(err) ? str(err['message']) : undefined) ?? this.errors.at(-1) ?? 'the turn failed');
        return [`turn failed: ${this.turnFailed}`];
      }
      case 'error': {
        const message = readableError(str(ev['message']) ?? 'unknown error');
        this.errors.push(message);
        return [`error: ${message}`];
      }
      case 'item.started':
      case 'item.updated':
      case 'item.completed':
        return isRecord(ev['item']) ? this.item(ev['item'], ev['type'] === 'item.completed', ev['type'] === 'item.started') : [];
      default:
        return [];
    }
  }

  private item(item: Record<string, unknown>, completed: boolean, started: boolean): string[] {
    const id = str(item['id']) ?? '';
    switch (item['type']) {
      case 'agent_message': {
        if (!completed) return [];
        const text = str(item['text']) ?? '';
        this.lastAgentMessage = text;
        return [text];
      }
      case 'reasoning': {
        if (!completed) return [];
        const first = (str(item['text']) ?? '').trim().split('\n')[0] ?? '';
        return first ? [`(thinking) ${bounded(first, 200)}`] : [];
      }
      case 'command_execution': {
        const command = str(item['command']) ?? '?';
        const lines: string[] = [];
        if ((started || completed) && !this.commandsShown.has(id)) {
          this.commandsShown.add(id);
          lines.push(`$ ${command}`);
        }
        if (completed) {
          const output = str(item['aggregated_output']) ?? '';
          if (output.trim()) lines.push(indentTail(output));
          const code = item['exit_code'];
          lines.push(typeof code === 'number' ? `  → exit ${code}` : `  → ${str(item['status']) ?? 'done'}`);
        }
        return lines;
      }
      case 'file_change': {
        if (!completed) return [];
        const changes = Array.isArray(item['changes']) ? item['changes'].filter(isRecord) : [];
        const ok = item['status'] !== 'failed';
        return changes.map((c) => {
          const file = relativeTo(this.cwd, str(c['path']) ?? '?');
          if (ok) this.changed.add(file);
          return `${ok ? 'changed' : 'change failed'}: ${str(c['kind']) ?? 'update'} ${file}`;
        });
      }
      case 'todo_list': {
        const items = Array.isArray(item['items']) ? item['items'].filter(isRecord) : [];
        if (!completed && !started) return [];
        return ['plan:', ...items.map((t) => `  [${t['completed'] === true ? 'x' : ' '}] ${str(t['text']) ?? ''}`)];
      }
      case 'mcp_tool_call':
        return completed ? [`tool ${str(item['server']) ?? '?'}.${str(item['tool']) ?? '?'} → ${str(item['status']) ?? 'done'}`] : [];
      case 'web_search':
        return completed ? [`web search: ${str(item['query']) ?? ''}`] : [];
      case 'error': {
        if (!completed) return [];
        const message = str(item['message']) ?? 'unknown error';
        this.warnings.push(message);
        return [`warning: ${message}`];
      }
      default:
        return [];
    }
  }
}

/** Usage for the task: codex reports the thread's running total, so a resumed thread's earlier total is taken off. */
export function codexUsage(total: CodexTokenCounts, before: CodexTokenCounts | undefined, model: string | undefined): Usage {
  const d = (k: keyof CodexTokenCounts) => Math.max(0, total[k] - (before?.[k] ?? 0));
  const usage: Usage = { inputTokens: d('inputTokens'), cachedInputTokens: d('cachedInputTokens'), outputTokens: d('outputTokens'), reasoningTokens: d('reasoningTokens') };
  if (model !== undefined) usage.model = model;
  return usage;
}

/** codex's home: where it keeps its config and thread logs. */
export function codexHome(env: NodeJS.ProcessEnv): string {
  return env['CODEX_HOME'] || path.join(env['HOME'] || os.homedir(), '.codex');
}

/**
 * The thread's running token total as codex last logged it (the last token_count event of its rollout file under
 * `$CODEX_HOME/sessions/…/rollout-…-<thread>.jsonl`), or undefined when there is no such file.
 */
export function readThreadTotal(home: string, threadId: string): CodexTokenCounts | undefined {
  for (const dir of ['sessions', 'archived_sessions']) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(home, dir), { recursive: true, encoding: 'utf8' });
    } catch {
      continue;
    }
    const name = names.find((n) => n.endsWith(`-${threadId}.jsonl`));
    if (!name) continue;
    let text: string;
    try {
      text = fs.readFileSync(path.join(home, dir, name), 'utf8');
    } catch {
      return undefined;
    }
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i] ?? '';
      if (!line.includes('"token_count"')) continue;
      const ev = parseJsonLine(line);
      const payload = ev && isRecord(ev['payload']) ? ev['payload'] : undefined;
      const info = payload && isRecord(payload['info']) ? payload['info'] : undefined;
      const total = info ? countsOf(info['total_token_usage']) : undefined;
      if (total) return total;
    }
    return { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0 };
  }
  return undefined;
}

/** The model named in the tool's settings or extra args (`-m X`, `--model X`, `-c model=X`), if any. */
export function codexModel(model: string | undefined, args: readonly string[]): string | undefined {
  if (model !== undefined) return model;
  let found: string | undefined;
  args.forEach((a, i) => {
    const next = args[i + 1];
    if ((a === '-m' || a === '--model') && next !== undefined) found = next;
    else if (a.startsWith('--model=')) found = a.slice('--model='.length);
    else if ((a === '-c' || a === '--config') && next !== undefined) {
      const m = /^model\s*=\s*"?([^"]*)"?\s*$/.exec(next);
      if (m?.[1]) found = m[1];
    }
  });
  return found;
}

/** codex says so on stderr (exit 1, no thread.started) when `resume` names a thread it has no record of. */
export function isUnknownThreadError(stderr: string): boolean {
  return /no rollout found|thread\/resume failed|thread not found|no (such )?thread|no conversation found/i.test(stderr);
}

/**
 * Whether codex's turn error is a usage or rate limit of the account/API, and when it resets. The forms codex 0.169
 * prints (turn.failed / error events):
 * - usage_limit_reached (HTTP 429): "You’ve hit your usage limit. … try again at 7:19 AM." (local time; a date when
 *   not today), or "… Try again later." when the API gave no resets_at;
 * - insufficient_quota: "Quota exceeded. Check your plan and billing details.";
 * - HTTP 429 rate_limit_exceeded (after its retries): "exceeded retry limit, last status: 429 Too Many Requests";
 * - response.failed rate_limit_exceeded: "rate limit exceeded: <API message, e.g. Please try again in 20s.>";
 * - response.failed usage_limit_reached: "stream disconnected before completion: The usage limit has been reached".
 */
export function codexRateLimit(message: string, now: number): (RateLimitInfo & { kind: 'usage' | 'rate' }) | undefined {
  const text = message.trim();
  let kind: 'usage' | 'rate' | undefined;
  if (/hit your usage limit|usage limit (?:has been )?reached|usage_limit_reached|usage_limit_exceeded|quota exceeded|exceeded your current quota|insufficient_quota/i.test(text)) kind = 'usage';
  else if (/rate limit (?:exceeded|reached)|rate_limit_exceeded|last status: 429\b|\b429 Too Many Requests/i.test(text)) kind = 'rate';
  if (kind === undefined) return undefined;
  const resetAt = resetFromText(text, now);
  return { kind, reason: text, ...(resetAt !== undefined ? { resetAt } : {}) };
}

interface CodexRun {
  result: RunResult;
  events: CodexEvents;
  lastMessage: string | undefined;
}

async function runCodexOnce(ctx: ExecContext, inv: CodexInvocation, stdin: string, out: ReturnType<typeof transcriptOutput>): Promise<CodexRun> {
  const events = new CodexEvents(ctx.cwd);
  try {
    fs.rmSync(inv.lastMessageFile, { force: true });
  } catch {
    // a stale file only matters if codex does not write a new one; the events say what it said then
  }
  const command = ctx.tool.command ?? 'codex';
  const args = codexArgs(inv);
  const result = await runJsonlAgent(ctx, { command, args, stdin, eventLog: path.join(ctx.runDir, 'codex-events.jsonl'), push: (ev) => events.push(ev) }, out);
  let lastMessage: string | undefined;
  try {
    lastMessage = fs.readFileSync(inv.lastMessageFile, 'utf8');
  } catch {
    lastMessage = undefined;
  }
  return { result, events, lastMessage };
}

export const codexExecutor: Executor = {
  async run(ctx: ExecContext): Promise<ExecOutcome> {
    const tool = ctx.tool;
    const sandbox: string = tool.sandbox ?? DEFAULT_CODEX_SANDBOX;
    if (!ctx.userSettings.allowBypass) {
      const bad = findBypassArg(tool.args) ?? (sandbox !== 'read-only' && sandbox !== 'workspace-write' ? sandbox : undefined);
      if (bad !== undefined) return failed(bypassRefusal(tool.name, bad));
    }
    if (taskText(ctx.task) === '') return failed('the task has no prompt and no payload: there is nothing to ask codex');
    const mcpServer = tool.mcp === true ? sparkqMcpServer(ctx) : undefined;
    if (typeof mcpServer === 'string') return failed(mcpServer);
    const stdin = promptWithInstructions(ctx.instructions, ctx.task);
    const out = transcriptOutput(ctx);
    const notes: string[] = [];
    const env = { ...ctx.env, ...tool.env };
    const model = codexModel(tool.model, tool.args);

    let resumeId = ctx.queue.codexThreadId;
    if (resumeId !== null && !UUID.test(resumeId)) {
      // codex takes a non-UUID as a thread *name* and quietly starts a new thread when none matches: say so instead.
      notes.push(`the queue's Codex thread id ${JSON.stringify(resumeId)} is not a thread id; started a new thread`);
      out.info(notes[notes.length - 1]!);
      resumeId = null;
    }
    const base = {
      cwd: ctx.cwd,
      sandbox,
      model: tool.model,
      lastMessageFile: path.join(ctx.runDir, 'last-message.txt'),
      extraArgs: tool.args,
      boundedRetries: !tool.args.some((a) => a.includes(UNBOUNDED_RETRIES_FEATURE)),
      mcpServer,
    };
    const totalBefore = resumeId !== null ? readThreadTotal(codexHome(env), resumeId) : undefined;
    let inv: CodexInvocation = { ...base, resumeThreadId: resumeId };
    let run = await runCodexOnce(ctx, inv, stdin, out);
    // Refused before it started a thread: an option this codex does not know, or a thread it has no record of.
    const refused = (r: CodexRun) => !r.result.stopped && r.result.exitCode !== 0 && r.events.threadId === undefined;
    if (inv.boundedRetries && refused(run) && /unknown feature flag:?\s*unbounded_connection_retries/i.test(run.result.stderrTail)) {
      notes.push(`this codex has no ${UNBOUNDED_RETRIES_FEATURE} feature to switch off; ran it with its own retry policy (an unreachable model server may hold the task until it times out)`);
      out.info(notes[notes.length - 1]!);
      inv = { ...inv, boundedRetries: false };
      run = await runCodexOnce(ctx, inv, stdin, out);
    }
    let resumed = resumeId !== null;
    if (resumeId !== null && refused(run) && isUnknownThreadError(run.result.stderrTail)) {
      notes.push(`codex has no record of the queue's thread ${resumeId} (${stderrGist(run.result.stderrTail, 1)}); started a new thread`);
      out.info(notes[notes.length - 1]!);
      run = await runCodexOnce(ctx, { ...inv, resumeThreadId: null }, stdin, out);
      resumed = false;
    } else if (resumeId !== null && run.events.threadId !== undefined && run.events.threadId !== resumeId) {
      notes.push(`codex started thread ${run.events.threadId} instead of resuming ${resumeId}`);
      resumed = false;
    }

    const { result, events } = run;
    if (events.warnings.length) notes.push(...events.warnings.map((w) => `codex: ${w}`));
    let usage: Usage | undefined;
    if (events.usage) {
      if (resumed && totalBefore === undefined) notes.push("codex's log of this thread was not found: the usage shown is the thread's running total");
      usage = codexUsage(events.usage, resumed ? totalBefore : undefined, model);
      out.info(`tokens: in ${usage.inputTokens} (cached ${usage.cachedInputTokens}), out ${usage.outputTokens} (reasoning ${usage.reasoningTokens})`);
    }
    const withUsage = agentOutcomeBase(out, usage, notes, events.threadId !== undefined ? { codexThreadId: events.threadId } : undefined);

    const procError = processFailure('codex', result, ctx);
    if (procError !== undefined) return failed(procError, withUsage);
    const turnError = events.turnFailed ?? (result.exitCode !== 0 || !events.turnCompleted ? events.errors.at(-1) : undefined);
    const limit = turnError !== undefined ? codexRateLimit(turnError, Date.now()) : undefined;
    if (limit !== undefined) return rateLimited(rateLimitError('Codex', limit.kind, limit), limit.resetAt, withUsage);
    if (events.turnFailed !== undefined) return failed(`codex: ${events.turnFailed}`, withUsage);
    if (result.exitCode !== 0) {
      const why = events.errors.at(-1) ?? stderrGist(result.stderrTail);
      return failed(`codex exited with ${howItEnded(result)}${why ? `: ${why}` : ''}`, withUsage);
    }
    if (!events.turnCompleted) {
      const why = events.errors.at(-1) ?? stderrGist(result.stderrTail);
      return failed(`codex ended without completing its turn${why ? `: ${why}` : ''}`, withUsage);
    }
    const message = (run.lastMessage?.trim() ? run.lastMessage : events.lastAgentMessage) ?? '';
    const data: DataObject = { message: messageForData(message), changedFiles: events.changedFiles };
    if (events.threadId !== undefined) data['threadId'] = events.threadId;
    return { status: 'succeeded', summary: summaryOf(message, 'codex finished without a final message'), data, ...withUsage };
  },
};
