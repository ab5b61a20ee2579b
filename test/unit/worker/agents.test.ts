import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ToolConfig } from '../../../src/core/config';
import { LIMITS } from '../../../src/core/model';
import { claudeArgs, claudeExecutor, claudeUsage } from '../../../src/worker/executors/claude';
import { CodexEvents, codexArgs, codexExecutor, codexUsage } from '../../../src/worker/executors/codex';
import { promptWithInstructions, summaryOf } from '../../../src/worker/executors/agentCommon';
import type { ExecOutcome } from '../../../src/worker/types';
import { PATH, bodyText, mockAgentToolConfig } from '../../support/agentRig';
import { type ExecContextOptions, makeExecContext } from '../../support/execContext';
import { MockModelServer } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';

/**
 * The Codex and Claude executors against the real `codex` and `claude` binaries (devDependencies), talking to a mock
 * model server on 127.0.0.1. Each test gets throwaway CODEX_HOME / HOME / CLAUDE_CONFIG_DIR and a work dir.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** "Quickly": an API error or a dead server must fail the task in well under this. */
const QUICK_MS = 20_000;

function ok(o: ExecOutcome): Extract<ExecOutcome, { status: 'succeeded' }> {
  assert.equal(o.status, 'succeeded', o.status === 'failed' ? `expected success, got: ${o.error}\n--- stdout\n${o.stdout ?? ''}\n--- stderr\n${o.stderr ?? ''}` : '');
  return o;
}

function notOk(o: ExecOutcome): Extract<ExecOutcome, { status: 'failed' }> {
  assert.equal(o.status, 'failed', o.status === 'succeeded' ? `expected failure, got success: ${o.summary}` : '');
  return o;
}

function limited(o: ExecOutcome): Extract<ExecOutcome, { status: 'rate-limited' }> {
  assert.equal(o.status, 'rate-limited', o.status === 'failed' ? `expected rate-limited, got failed: ${o.error}` : o.status === 'succeeded' ? `expected rate-limited, got success: ${o.summary}` : '');
  return o;
}

/** Within 2 s. */
function near(actual: number | undefined, expected: number): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= 2_000, `resetAt ${actual === undefined ? 'undefined' : new Date(actual).toISOString()}, expected ${new Date(expected).toISOString()}`);
}

interface Harness {
  mock: MockModelServer;
  dir: string;
  work: string;
  cleanup: () => Promise<void>;
}

async function harness(): Promise<Harness> {
  const t = tempDir('sparkq-agents-');
  const mock = await MockModelServer.start();
  const work = path.join(t.dir, 'work');
  fs.mkdirSync(work);
  return {
    mock,
    dir: t.dir,
    work,
    cleanup: async () => {
      await mock.close();
      t.cleanup();
    },
  };
}

/** A port nobody listens on: one the OS just handed out, then closed. */
async function deadPort(): Promise<number> {
  const m = await MockModelServer.start();
  const port = m.port;
  await m.close();
  return port;
}

// ---- Codex ------------------------------------------------------------------------------------------------------

/**
 * The llm-codex tool pointed at the mock: a custom provider via -c, no retries, nothing outside 127.0.0.1. No
 * --disable unbounded_connection_retries in it: the executor adds that itself (the dead-server test proves it).
 */
function codexTool(h: Harness, port = h.mock.port): ToolConfig {
  return mockAgentToolConfig('codex', h.mock, { homes: h.dir, port });
}

function codexCtx(h: Harness, more: Partial<ExecContextOptions> = {}) {
  return makeExecContext({ tool: codexTool(h), workspaceDir: h.work, env: { PATH, HOME: h.dir }, ...more });
}

describe('agents: codex executor against the real codex binary', function () {
  this.timeout(60_000);
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('builds argv with every option before resume, the sandbox restated, the prompt on stdin', () => {
    const base = { cwd: '/w', sandbox: 'workspace-write', model: 'gpt-5.5', lastMessageFile: '/r/last-message.txt', extraArgs: ['-c', 'x=1'], boundedRetries: true };
    assert.deepEqual(codexArgs({ ...base, resumeThreadId: null }), [
      'exec', '--json', '--skip-git-repo-check', '-s', 'workspace-write', '-C', '/w', '-m', 'gpt-5.5', '-o', '/r/last-message.txt',
      '--disable', 'unbounded_connection_retries', '-c', 'x=1', '-',
    ]);
    const resume = codexArgs({ ...base, resumeThreadId: 'th-1' });
    assert.deepEqual(resume, [
      'exec', '--json', '--skip-git-repo-check', '-C', '/w', '-m', 'gpt-5.5', '-o', '/r/last-message.txt', '-c', 'sandbox_mode="workspace-write"',
      '--disable', 'unbounded_connection_retries', '-c', 'x=1', 'resume', 'th-1', '-',
    ]);
    assert.deepEqual(codexArgs({ ...base, model: undefined, extraArgs: [], boundedRetries: false, resumeThreadId: null }), [
      'exec', '--json', '--skip-git-repo-check', '-s', 'workspace-write', '-C', '/w', '-o', '/r/last-message.txt', '-',
    ]);
    assert.ok(!resume.includes('--last'));
    assert.equal(resume.indexOf('resume'), resume.length - 3);
  });

  it('a plain reply succeeds with its first line as summary, the whole message, the usage and the thread id', async () => {
    h.mock.script('responses', { kind: 'text', text: 'Refactored the parser.\nDetails: 3 files.', usage: { inputTokens: 500, cachedInputTokens: 100, outputTokens: 40, reasoningTokens: 12 } });
    const { ctx, text } = codexCtx(h, { instructions: 'Work in small steps.', prompt: 'Refactor the parser.', payload: { files: ['a.ts'] } });
    const o = ok(await codexExecutor.run(ctx));
    assert.equal(o.summary, 'Refactored the parser.');
    assert.deepEqual(o.data, { message: 'Refactored the parser.\nDetails: 3 files.', changedFiles: [], threadId: o.agentSession?.codexThreadId });
    assert.match(o.agentSession?.codexThreadId ?? '', UUID);
    assert.deepEqual(o.usage, { inputTokens: 500, cachedInputTokens: 100, outputTokens: 40, reasoningTokens: 12, model: 'gpt-5.5' });
    // The prompt reached the model: instructions, separator, task prompt, payload.
    const req = h.mock.modelRequests('responses');
    assert.equal(req.length, 1);
    assert.ok(bodyText(req[0]).includes(JSON.stringify(promptWithInstructions('Work in small steps.', ctx.task)).slice(1, -1)), bodyText(req[0]).slice(-2000));
    assert.match(text('info'), /Refactored the parser\./);
    assert.equal(fs.readFileSync(path.join(ctx.runDir, 'last-message.txt'), 'utf8'), 'Refactored the parser.\nDetails: 3 files.');
    assert.ok(fs.readFileSync(path.join(ctx.runDir, 'codex-events.jsonl'), 'utf8').includes('"turn.completed"'));
  });

  it('a shell-tool turn really runs the command in the work dir, then finishes with the final message', async () => {
    h.mock.script('responses', { kind: 'shell', command: 'echo made-by-codex > shell-made.txt && echo wrote it' }, { kind: 'text', text: 'Created shell-made.txt' });
    const { ctx, text } = codexCtx(h, { prompt: 'Create a file.' });
    const o = ok(await codexExecutor.run(ctx));
    assert.equal(fs.readFileSync(path.join(h.work, 'shell-made.txt'), 'utf8'), 'made-by-codex\n');
    assert.equal(o.summary, 'Created shell-made.txt');
    assert.match(text('info'), /\$ .*echo made-by-codex > shell-made\.txt/);
    assert.match(text('info'), /→ exit 0/);
    // Two model calls in one turn; the second carries the command's output back.
    const req = h.mock.modelRequests('responses');
    assert.equal(req.length, 2);
    assert.match(bodyText(req[1]), /function_call_output/);
    assert.match(bodyText(req[1]), /wrote it/);
    assert.deepEqual(o.usage, { inputTokens: 240, cachedInputTokens: 40, outputTokens: 18, reasoningTokens: 6, model: 'gpt-5.5' });
  });

  it('file edits are listed as changed files, relative to the work dir', async () => {
    h.mock.script('responses', { kind: 'write-file', path: 'notes/hello.txt', content: 'hello\n' }, { kind: 'text', text: 'Added notes/hello.txt' });
    const { ctx, text } = codexCtx(h);
    const o = ok(await codexExecutor.run(ctx));
    assert.equal(fs.readFileSync(path.join(h.work, 'notes', 'hello.txt'), 'utf8'), 'hello\n');
    assert.deepEqual((o.data as { changedFiles: string[] }).changedFiles, ['notes/hello.txt']);
    assert.match(text('info'), /changed: add notes\/hello\.txt/);
  });

  it("the queue's second task resumes the same thread: the model sees the first task's conversation", async () => {
    h.mock.script('responses', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await codexExecutor.run(codexCtx(h, { prompt: 'First task BRAVO' }).ctx));
    const threadId = first.agentSession!.codexThreadId!;
    h.mock.script('responses', { kind: 'text', text: 'Second answer', usage: { inputTokens: 300, cachedInputTokens: 30, outputTokens: 5, reasoningTokens: 1 } });
    const { ctx, text } = codexCtx(h, { prompt: 'Second task CHARLIE', queue: { codexThreadId: threadId } });
    const second = ok(await codexExecutor.run(ctx));
    assert.equal(second.agentSession?.codexThreadId, threadId);
    assert.equal(second.summary, 'Second answer');
    assert.equal(second.notes, undefined);
    const req = h.mock.modelRequests('responses');
    assert.equal(req.length, 2);
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE']) assert.ok(bodyText(req[1]).includes(marker), marker);
    // codex reports the thread's running total; the task's usage is its own share.
    assert.deepEqual(second.usage, { inputTokens: 300, cachedInputTokens: 30, outputTokens: 5, reasoningTokens: 1, model: 'gpt-5.5' });
    assert.match(text('info'), / resume [0-9a-f-]{36} -/);
  });

  it('an unknown thread id starts a new thread and says so', async () => {
    const madeUp = '019a0000-0000-7000-8000-000000000000';
    h.mock.script('responses', { kind: 'text', text: 'Fresh start' });
    const o = ok(await codexExecutor.run(codexCtx(h, { queue: { codexThreadId: madeUp } }).ctx));
    assert.equal(o.summary, 'Fresh start');
    assert.match(o.agentSession?.codexThreadId ?? '', UUID);
    assert.notEqual(o.agentSession?.codexThreadId, madeUp);
    assert.equal(o.notes?.length, 1);
    assert.match(o.notes[0]!, new RegExp(`no record of the queue's thread ${madeUp}.*started a new thread`));
  });

  it('a thread id that is not a UUID is never passed to resume (codex would take it as a name)', async () => {
    h.mock.script('responses', { kind: 'text', text: 'Fresh start' });
    const { ctx, text } = codexCtx(h, { queue: { codexThreadId: 'last' } });
    const o = ok(await codexExecutor.run(ctx));
    assert.match(o.notes?.[0] ?? '', /"last" is not a thread id; started a new thread/);
    assert.doesNotMatch(text('info'), / resume /);
  });

  it('an API error fails the task quickly with the API message', async () => {
    h.mock.script('responses', { kind: 'http-error', status: 400, message: 'mock says: bad request' });
    const t0 = Date.now();
    const o = notOk(await codexExecutor.run(codexCtx(h).ctx));
    assert.ok(Date.now() - t0 < QUICK_MS);
    assert.equal(o.error, 'codex: mock says: bad request');
    assert.match(o.agentSession?.codexThreadId ?? '', UUID);
  });

  it('a stream that fails midway fails the task with the message', async () => {
    h.mock.script('responses', { kind: 'stream-error', message: 'upstream fell over' });
    const o = notOk(await codexExecutor.run(codexCtx(h).ctx));
    assert.match(o.error, /^codex: .*upstream fell over/);
  });

  it('a usage limit (HTTP 429 usage_limit_reached) is rate-limited, with the reset time codex prints', async () => {
    // codex prints the reset as a local clock time in whole minutes ("try again at 7:19 AM"): reset on a minute.
    const resetsAt = Math.ceil(Date.now() / 60_000) * 60 + 3_600;
    h.mock.script('responses', {
      kind: 'rate-limit',
      body: { error: { type: 'usage_limit_reached', message: 'The usage limit has been reached', plan_type: 'plus', resets_at: resetsAt, resets_in_seconds: resetsAt - Math.floor(Date.now() / 1000) } },
    });
    const t0 = Date.now();
    const o = limited(await codexExecutor.run(codexCtx(h).ctx));
    assert.ok(Date.now() - t0 < QUICK_MS);
    near(o.resetAt, resetsAt * 1_000);
    assert.match(o.error, /^Codex hit a usage limit \(resets at \d{4}-\d\d-\d\dT\d\d:\d\d:00Z\): You.ve hit your usage limit\./);
    assert.match(o.agentSession?.codexThreadId ?? '', UUID);
    assert.equal(h.mock.modelRequests('responses').length, 1);
  });

  it('an HTTP 429 rate_limit_exceeded is rate-limited; codex does not pass on its retry-after', async () => {
    h.mock.script('responses', {
      kind: 'rate-limit',
      headers: { 'retry-after': '20' },
      body: { error: { type: 'rate_limit_exceeded', code: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM). Please try again in 20s.' } },
    });
    const o = limited(await codexExecutor.run(codexCtx(h).ctx));
    assert.equal(o.error, 'Codex hit a rate limit (reset time unknown): exceeded retry limit, last status: 429 Too Many Requests');
    assert.equal(o.resetAt, undefined);
  });

  it('a stream that fails with rate_limit_exceeded is rate-limited until the "try again in" time', async () => {
    h.mock.script('responses', { kind: 'stream-error', code: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-5 in organization org-x. Please try again in 1m30s.' });
    const o = limited(await codexExecutor.run(codexCtx(h).ctx));
    near(o.resetAt, Date.now() + 90_000);
    assert.match(o.error, /^Codex hit a rate limit \(resets at .*\): rate limit exceeded: Rate limit reached/);
  });

  it('a stream that fails with insufficient_quota is a usage limit with no reset time', async () => {
    h.mock.script('responses', { kind: 'stream-error', code: 'insufficient_quota', message: 'You exceeded your current quota.' });
    const o = limited(await codexExecutor.run(codexCtx(h).ctx));
    assert.equal(o.error, 'Codex hit a usage limit (reset time unknown): Quota exceeded. Check your plan and billing details.');
    assert.equal(o.resetAt, undefined);
  });

  it('a dead model server fails the task quickly', async () => {
    const port = await deadPort();
    const t0 = Date.now();
    const { ctx } = makeExecContext({ tool: codexTool(h, port), workspaceDir: h.work, env: { PATH: process.env['PATH'] ?? '', HOME: h.dir } });
    const o = notOk(await codexExecutor.run(ctx));
    const ms = Date.now() - t0;
    assert.ok(ms < QUICK_MS, `took ${ms} ms`);
    assert.match(o.error, /^codex: Connection failed/);
  });

  it('stops codex when the task is aborted', async () => {
    h.mock.script('responses', { kind: 'hang' });
    const ac = new AbortController();
    const { ctx } = codexCtx(h, { signal: ac.signal });
    const running = codexExecutor.run(ctx);
    const deadline = Date.now() + 10_000;
    while (h.mock.modelRequests('responses').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ac.abort('interrupted by the worker');
    const o = notOk(await running);
    assert.equal(o.error, 'codex was stopped: interrupted by the worker');
  });

  it('refuses bypass flags in tool.args unless bypass is allowed by the user', async () => {
    const tool = codexTool(h);
    tool.args = [...tool.args, '--dangerously-bypass-approvals-and-sandbox'];
    const o = notOk(await codexExecutor.run(makeExecContext({ tool, workspaceDir: h.work }).ctx));
    assert.match(o.error, /--dangerously-bypass-approvals-and-sandbox.*only honoured when bypass is allowed/);
    const danger = { ...codexTool(h), sandbox: 'danger-full-access' as unknown as 'read-only' };
    assert.match(notOk(await codexExecutor.run(makeExecContext({ tool: danger, workspaceDir: h.work }).ctx)).error, /danger-full-access/);
    assert.equal(h.mock.requests.length, 0, 'codex never ran');
  });

  it('runs a codex that does not know the unbounded_connection_retries feature without that flag, and says so', async () => {
    // A stand-in for an older/newer codex: it refuses the unknown feature flag the way codex 0.169 does.
    const fake = path.join(h.dir, 'old-codex');
    const calls = path.join(h.dir, 'calls.jsonl');
    fs.writeFileSync(
      fake,
      `#!${process.execPath}
const fs = require('fs');
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify(argv) + '\\n');
if (argv.includes('unbounded_connection_retries')) { console.error('Error: Unknown feature flag: unbounded_connection_retries'); process.exit(1); }
const prompt = fs.readFileSync(0, 'utf8');
const out = argv[argv.indexOf('-o') + 1];
const text = 'old codex read: ' + prompt.trim();
fs.writeFileSync(out, text);
for (const ev of [{ type: 'thread.started', thread_id: '00000000-0000-4000-8000-000000000001' }, { type: 'item.completed', item: { id: 'i', type: 'agent_message', text } },
  { type: 'turn.completed', usage: { input_tokens: 5, cached_input_tokens: 0, output_tokens: 2, reasoning_output_tokens: 0 } }]) console.log(JSON.stringify(ev));
`,
      { mode: 0o755 },
    );
    const tool = { ...codexTool(h), command: fake, args: [] };
    const o = ok(await codexExecutor.run(makeExecContext({ tool, workspaceDir: h.work, prompt: 'hello there' }).ctx));
    assert.equal(o.summary, 'old codex read: hello there');
    assert.match(o.notes?.[0] ?? '', /no unbounded_connection_retries feature/);
    const argvs = fs.readFileSync(calls, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    assert.equal(argvs.length, 2);
    assert.ok(argvs[0]!.includes('unbounded_connection_retries'));
    assert.ok(!argvs[1]!.includes('unbounded_connection_retries'));
  });

  it('parses events: error items are warnings, turn.failed fails, command output is shown with its exit code', () => {
    const ev = new CodexEvents('/w');
    const lines = [
      { type: 'thread.started', thread_id: 't' },
      { type: 'item.completed', item: { id: 'i0', type: 'error', message: 'Model metadata not found' } },
      { type: 'item.started', item: { id: 'i1', type: 'command_execution', command: 'ls', status: 'in_progress' } },
      { type: 'item.completed', item: { id: 'i1', type: 'command_execution', command: 'ls', aggregated_output: 'a\nb\n', exit_code: 2, status: 'failed' } },
      { type: 'turn.failed', error: { message: '{"error":{"message":"quota exceeded"}}' } },
    ].flatMap((e) => ev.push(e));
    assert.deepEqual(lines, ['codex thread t', 'warning: Model metadata not found', '$ ls', '    a\n    b', '  → exit 2', 'turn failed: quota exceeded']);
    assert.equal(ev.turnFailed, 'quota exceeded');
    assert.deepEqual(ev.warnings, ['Model metadata not found']);
    assert.deepEqual(codexUsage({ inputTokens: 10, cachedInputTokens: 2, outputTokens: 3, reasoningTokens: 1 }, { inputTokens: 4, cachedInputTokens: 1, outputTokens: 1, reasoningTokens: 0 }, undefined), {
      inputTokens: 6,
      cachedInputTokens: 1,
      outputTokens: 2,
      reasoningTokens: 1,
    });
    assert.equal(summaryOf(`\n\n  ${'x'.repeat(LIMITS.summary + 10)}\nmore`, 'none').length, LIMITS.summary);
  });
});

// ---- Claude -----------------------------------------------------------------------------------------------------

/** The llm-claude tool pointed at the mock (ANTHROPIC_BASE_URL), no retries, a throwaway home and config dir. */
function claudeTool(h: Harness, port = h.mock.port): ToolConfig {
  return mockAgentToolConfig('claude', h.mock, { homes: h.dir, port });
}

function claudeCtx(h: Harness, more: Partial<ExecContextOptions> = {}) {
  return makeExecContext({ tool: claudeTool(h), workspaceDir: h.work, env: { PATH }, ...more });
}

describe('agents: claude executor against the real claude binary', function () {
  this.timeout(60_000);
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('builds argv: a new session id or --resume, acceptEdits, the instructions as one argument', () => {
    const base = { permissionMode: 'acceptEdits', appendSystemPrompt: '- be brief', model: undefined, extraArgs: ['--max-turns', '5'] };
    assert.deepEqual(claudeArgs({ ...base, sessionId: 'S', resume: false }), [
      '-p', '--output-format', 'stream-json', '--verbose', '--session-id', 'S', '--permission-mode', 'acceptEdits', '--append-system-prompt=- be brief', '--max-turns', '5',
    ]);
    assert.deepEqual(claudeArgs({ ...base, appendSystemPrompt: '', model: 'm', sessionId: 'S', resume: true }), [
      '-p', '--output-format', 'stream-json', '--verbose', '--resume', 'S', '--permission-mode', 'acceptEdits', '--model', 'm', '--max-turns', '5',
    ]);
  });

  it('a plain reply succeeds with its first line as summary, the usage and cost, and a new session id', async () => {
    h.mock.script('messages', { kind: 'text', text: 'All tests pass.\n12 passing.', usage: { inputTokens: 300, cachedInputTokens: 50, outputTokens: 20 } });
    const { ctx, text } = claudeCtx(h, { instructions: '- Always run the tests (QUEUE-INSTRUCTIONS).', prompt: 'Run the tests.', payload: { suite: 'unit' } });
    const o = ok(await claudeExecutor.run(ctx));
    assert.equal(o.summary, 'All tests pass.');
    const sessionId = o.agentSession?.claudeSessionId ?? '';
    assert.match(sessionId, UUID);
    assert.deepEqual(o.data, { message: 'All tests pass.\n12 passing.', changedFiles: [], sessionId, numTurns: 1 });
    assert.equal(o.usage?.inputTokens, 350);
    assert.equal(o.usage?.cachedInputTokens, 50);
    assert.equal(o.usage?.outputTokens, 20);
    assert.ok((o.usage?.costUsd ?? 0) > 0, JSON.stringify(o.usage));
    assert.ok(o.usage?.model);
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 1);
    const body = req[0]!.body as { system: unknown; messages: unknown };
    assert.match(JSON.stringify(body.system), /- Always run the tests \(QUEUE-INSTRUCTIONS\)\./);
    assert.match(JSON.stringify(body.messages), /Run the tests\./);
    assert.match(JSON.stringify(body.messages), /\\"suite\\": \\"unit\\"/);
    assert.match(text('info'), /All tests pass\./);
    assert.match(text('info'), /--session-id [0-9a-f-]{36} --permission-mode acceptEdits/);
  });

  it('a Bash tool turn really runs the command in the work dir', async () => {
    h.mock.script('messages', { kind: 'shell', command: 'echo made-by-claude > shell-made.txt' }, { kind: 'text', text: 'Created shell-made.txt' });
    const { ctx, text } = claudeCtx(h);
    const o = ok(await claudeExecutor.run(ctx));
    assert.equal(fs.readFileSync(path.join(h.work, 'shell-made.txt'), 'utf8'), 'made-by-claude\n');
    assert.equal(o.summary, 'Created shell-made.txt');
    assert.match(text('info'), /→ Bash: echo made-by-claude > shell-made\.txt/);
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 2);
    assert.match(bodyText(req[1]), /tool_result/);
  });

  it('files written with the edit tools are listed as changed files', async () => {
    h.mock.script('messages', { kind: 'write-file', path: path.join(h.work, 'hello.txt'), content: 'hello\n' }, { kind: 'text', text: 'Wrote hello.txt' });
    const o = ok(await claudeExecutor.run(claudeCtx(h).ctx));
    assert.equal(fs.readFileSync(path.join(h.work, 'hello.txt'), 'utf8'), 'hello\n');
    assert.deepEqual((o.data as { changedFiles: string[] }).changedFiles, ['hello.txt']);
  });

  it("the queue's second task resumes the same session: the model sees the first task's conversation", async () => {
    h.mock.script('messages', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await claudeExecutor.run(claudeCtx(h, { prompt: 'First task BRAVO' }).ctx));
    const sessionId = first.agentSession!.claudeSessionId!;
    h.mock.script('messages', { kind: 'text', text: 'Second answer' });
    const { ctx, text } = claudeCtx(h, { prompt: 'Second task CHARLIE', queue: { claudeSessionId: sessionId } });
    const second = ok(await claudeExecutor.run(ctx));
    assert.equal(second.agentSession?.claudeSessionId, sessionId);
    assert.equal(second.notes, undefined);
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 2);
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE']) assert.ok(bodyText(req[1]).includes(marker), marker);
    assert.match(text('info'), /--resume [0-9a-f-]{36}/);
    // Per-task figures, not the session's running total.
    assert.equal(second.usage?.inputTokens, first.usage?.inputTokens);
    assert.equal(second.usage?.costUsd, first.usage?.costUsd);
  });

  it('an unknown session id starts a new session and says so', async () => {
    const madeUp = '99999999-2222-4333-8444-555555555555';
    h.mock.script('messages', { kind: 'text', text: 'Fresh start' });
    const o = ok(await claudeExecutor.run(claudeCtx(h, { queue: { claudeSessionId: madeUp } }).ctx));
    assert.equal(o.summary, 'Fresh start');
    assert.match(o.agentSession?.claudeSessionId ?? '', UUID);
    assert.notEqual(o.agentSession?.claudeSessionId, madeUp);
    assert.match(o.notes?.[0] ?? '', new RegExp(`no record of the queue's session ${madeUp}.*No conversation found.*started a new session`));
  });

  it('an API error fails the task quickly with the API message', async () => {
    h.mock.script('messages', { kind: 'http-error', status: 500, message: 'mock overloaded' });
    const t0 = Date.now();
    const o = notOk(await claudeExecutor.run(claudeCtx(h).ctx));
    assert.ok(Date.now() - t0 < QUICK_MS);
    assert.match(o.error, /^claude: API Error: 500 mock overloaded/);
  });

  it('an HTTP 429 rate_limit_error is rate-limited; claude does not pass on its reset headers', async () => {
    h.mock.script('messages', {
      kind: 'rate-limit',
      headers: { 'retry-after': '30', 'anthropic-ratelimit-requests-reset': new Date(Date.now() + 30_000).toISOString() },
      body: { type: 'error', error: { type: 'rate_limit_error', message: 'This request would exceed the rate limit for your organization of 50 requests per minute.' } },
    });
    const t0 = Date.now();
    const o = limited(await claudeExecutor.run(claudeCtx(h).ctx));
    assert.ok(Date.now() - t0 < QUICK_MS);
    assert.equal(o.error, 'Claude hit a rate limit (reset time unknown): API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 requests per minute.');
    assert.equal(o.resetAt, undefined);
    assert.match(o.agentSession?.claudeSessionId ?? '', UUID);
  });

  it('the subscription reply "Claude AI usage limit reached|<epoch>" is rate-limited until that time', async () => {
    const resetsAt = Math.floor(Date.now() / 1000) + 5 * 3600;
    h.mock.script('messages', { kind: 'text', text: `Claude AI usage limit reached|${resetsAt}` });
    const o = limited(await claudeExecutor.run(claudeCtx(h).ctx));
    near(o.resetAt, resetsAt * 1_000);
    assert.equal(o.error, `Claude hit a usage limit (resets at ${new Date(resetsAt * 1000).toISOString().replace('.000', '')}): Claude AI usage limit reached`);
  });

  it('a dead model server fails the task quickly', async () => {
    const port = await deadPort();
    const t0 = Date.now();
    const { ctx } = makeExecContext({ tool: claudeTool(h, port), workspaceDir: h.work, env: { PATH: process.env['PATH'] ?? '' } });
    const o = notOk(await claudeExecutor.run(ctx));
    const ms = Date.now() - t0;
    assert.ok(ms < QUICK_MS, `took ${ms} ms`);
    assert.match(o.error, /^claude: API Error: Connection refused/);
  });

  it('stops claude when the task is aborted', async () => {
    h.mock.script('messages', { kind: 'hang' });
    const ac = new AbortController();
    const running = claudeExecutor.run(claudeCtx(h, { signal: ac.signal }).ctx);
    const deadline = Date.now() + 10_000;
    while (h.mock.modelRequests('messages').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ac.abort('interrupted by the worker');
    assert.equal(notOk(await running).error, 'claude was stopped: interrupted by the worker');
  });

  it('refuses bypass unless the user allows it', async () => {
    const tool = claudeTool(h);
    tool.args = ['--dangerously-skip-permissions'];
    assert.match(notOk(await claudeExecutor.run(makeExecContext({ tool, workspaceDir: h.work }).ctx)).error, /--dangerously-skip-permissions/);
    const bypass = { ...claudeTool(h), permissionMode: 'bypassPermissions' as unknown as 'default' };
    assert.match(notOk(await claudeExecutor.run(makeExecContext({ tool: bypass, workspaceDir: h.work }).ctx)).error, /bypassPermissions/);
    assert.equal(h.mock.requests.length, 0, 'claude never ran');
  });

  it('maps a result to usage: cache reads count as input, the per-run cost over the running total', () => {
    const usage = claudeUsage(
      {
        usage: { input_tokens: 10, cache_read_input_tokens: 5, cache_creation_input_tokens: 2, output_tokens: 7, output_tokens_details: { thinking_tokens: 3 } },
        total_cost_usd: 0.5,
        model_usage_since_last_result: { 'claude-x': { costUSD: 0.125 } },
      },
      'claude-x',
    );
    assert.deepEqual(usage, { inputTokens: 17, cachedInputTokens: 5, outputTokens: 7, reasoningTokens: 3, costUsd: 0.125, model: 'claude-x' });
  });
});
