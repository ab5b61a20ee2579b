import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DEFAULT_TOOLS, type ToolConfig, parseConfig } from '../../../src/core/config';
import type { Claim, Queue, Task } from '../../../src/core/model';
import { claudeExecutor } from '../../../src/worker/executors/claude';
import { codexExecutor } from '../../../src/worker/executors/codex';
import { writeSparkqLauncher } from '../../../src/worker/launcher';
import { PATH, mockAgentToolConfig, ok } from '../../support/agentRig';
import { Cli, Serving, bundleCli, cliEnv } from '../../support/cli';
import { makeExecContext } from '../../support/execContext';
import { MockModelServer, type RecordedRequest } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';

/*
 * Tools with `mcp: true`: the Codex and Claude executors give the agent SparkQ's own MCP server, limited to the task's
 * queue and to the task. First what they pass (against stand-ins that record their argv), then the real `codex` and
 * `claude` binaries, driven by the loopback mock model, calling the sparkq tools of a real `sparkq mcp` that is a
 * client of the workspace's owner (`sparkq serve`).
 */

/** A stand-in for codex or claude: records its argv (one JSON line per run) and ends its turn with "ok". */
function recordingAgent(dir: string, kind: 'codex' | 'claude'): { command: string; argvs: () => string[][] } {
  const calls = path.join(dir, `${kind}-calls.jsonl`);
  const command = path.join(dir, `fake-${kind}`);
  const events =
    kind === 'codex'
      ? `fs.writeFileSync(argv[argv.indexOf('-o') + 1], 'ok');
for (const ev of [{ type: 'thread.started', thread_id: '00000000-0000-4000-8000-000000000001' }, { type: 'item.completed', item: { id: 'i', type: 'agent_message', text: 'ok' } },
  { type: 'turn.completed', usage: { input_tokens: 1, cached_input_tokens: 0, output_tokens: 1 } }]) console.log(JSON.stringify(ev));`
      : `for (const ev of [{ type: 'system', subtype: 'init', session_id: '00000000-0000-4000-8000-000000000002', model: 'm' },
  { type: 'result', subtype: 'success', is_error: false, result: 'ok', session_id: '00000000-0000-4000-8000-000000000002' }]) console.log(JSON.stringify(ev));`;
  fs.writeFileSync(
    command,
    `#!${process.execPath}
const fs = require('fs');
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify(argv) + '\\n');
fs.readFileSync(0, 'utf8');
${events}
`,
    { mode: 0o755 },
  );
  return {
    command,
    argvs: () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]) : []),
  };
}

describe('agents with mcp: true: what the executors pass to codex and claude', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  let bin: string;
  beforeEach(() => {
    t = tempDir('sparkq-agents-mcp-args-');
    // A worker's launcher, as `sparkq run` puts it first on its tools' PATH.
    bin = writeSparkqLauncher(path.join(t.dir, 'ws', '.sparkq', 'bin'), [process.execPath, '/opt/sparkq/cli.js']);
  });
  afterEach(() => t.cleanup());

  const ctxFor = (tool: ToolConfig, withLauncher = true) => {
    const { ctx } = makeExecContext({ tool, workspaceDir: path.join(t.dir, 'ws'), queue: { id: 'que_mine', name: 'mine' }, taskId: 'tsk_own', env: { PATH: withLauncher ? `${bin}${path.delimiter}${PATH}` : PATH, HOME: t.dir } });
    ctx.env['SPARKQ_LEASE'] = 'lease-SECRET-1234';
    return ctx;
  };
  const codexTool = (command: string, mcp?: boolean): ToolConfig => ({ ...structuredClone(DEFAULT_TOOLS['llm-codex']!), command, ...(mcp !== undefined ? { mcp } : {}) });
  const claudeTool = (command: string, mcp?: boolean): ToolConfig => ({ ...structuredClone(DEFAULT_TOOLS['llm-claude']!), command, ...(mcp !== undefined ? { mcp } : {}) });

  it('reads mcp from a tool in sparkq.yml: off unless true, a warning on a tool that is not an agent', () => {
    const { config, warnings } = parseConfig(
      'tools:\n  c: { kind: codex, taskClass: LLM_HEAVY, mcp: true }\n  d: { kind: claude, taskClass: LLM_HEAVY }\n  s: { kind: script, taskClass: FAST_SCRIPT, mcp: true }\n',
      'sparkq.yml',
    );
    assert.deepEqual([config.tools['c']!.mcp, config.tools['d']!.mcp, DEFAULT_TOOLS['llm-codex']!.mcp], [true, undefined, undefined]);
    assert.deepEqual(warnings, ['tool s: mcp applies only to codex and claude tools; it is ignored for kind script']);
    assert.throws(() => parseConfig('tools:\n  c: { kind: codex, taskClass: LLM_HEAVY, mcp: yes please }\n', 'sparkq.yml'), (e: unknown) => e instanceof ConfigError && /tools\.c\.mcp/.test(JSON.stringify(e.issues)) && /true or false/.test(e.message));
  });

  it('passes no MCP server when the tool does not say mcp: true', async () => {
    const codex = recordingAgent(t.dir, 'codex');
    const claude = recordingAgent(t.dir, 'claude');
    for (const mcp of [undefined, false]) {
      ok(await codexExecutor.run(ctxFor(codexTool(codex.command, mcp))));
      const ctx = ctxFor(claudeTool(claude.command, mcp));
      ok(await claudeExecutor.run(ctx));
      assert.equal(fs.existsSync(path.join(ctx.runDir, 'mcp-config.json')), false, 'no --mcp-config file');
    }
    assert.equal(codex.argvs().length, 2);
    assert.equal(claude.argvs().length, 2);
    for (const argv of codex.argvs()) assert.ok(!argv.some((a) => a.includes('mcp_servers')), JSON.stringify(argv));
    for (const argv of claude.argvs()) assert.ok(!argv.some((a) => /mcp/i.test(a)), JSON.stringify(argv));
  });

  it("codex gets the server as -c overrides: the worker's launcher, the task's queue and task, variables by name only", async () => {
    const codex = recordingAgent(t.dir, 'codex');
    ok(await codexExecutor.run(ctxFor(codexTool(codex.command, true))));
    const argv = codex.argvs()[0]!;
    const overrides = argv.filter((a, i) => argv[i - 1] === '-c' && a.startsWith('mcp_servers.'));
    const ws = path.join(t.dir, 'ws');
    assert.deepEqual(overrides, [
      `mcp_servers.sparkq.command=${JSON.stringify(path.join(bin, 'sparkq'))}`,
      `mcp_servers.sparkq.args=${JSON.stringify(['mcp', '--workspace', ws, '--queue', 'que_mine', '--task', 'tsk_own'])}`,
      `mcp_servers.sparkq.env_vars=${JSON.stringify(['SPARKQ_LEASE', 'SPARKQ_QUEUE', 'SPARKQ_TASK_ID', 'SPARKQ_WORKSPACE'])}`,
      'mcp_servers.sparkq.default_tools_approval_mode="approve"',
    ]);
    assert.ok(argv.indexOf(overrides[0]!) < argv.indexOf('-'), 'before the prompt');
    assert.ok(!argv.some((a) => a.includes('SECRET')), 'the lease is never an argument');
  });

  it('claude gets a --mcp-config file with no values from the environment, and the sparkq tools allowed', async () => {
    const claude = recordingAgent(t.dir, 'claude');
    const ctx = ctxFor(claudeTool(claude.command, true));
    ok(await claudeExecutor.run(ctx));
    const argv = claude.argvs()[0]!;
    const file = path.join(ctx.runDir, 'mcp-config.json');
    const at = argv.indexOf('--mcp-config');
    assert.deepEqual(argv.slice(at, at + 4), ['--mcp-config', file, '--allowedTools', 'mcp__sparkq']);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
      mcpServers: { sparkq: { type: 'stdio', command: path.join(bin, 'sparkq'), args: ['mcp', '--workspace', path.join(t.dir, 'ws'), '--queue', 'que_mine', '--task', 'tsk_own'], env: {} } },
    });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /SECRET/, 'no lease in the file');
    assert.ok(!argv.some((a) => a.includes('SECRET')));
  });

  it('fails the task, without starting the agent, when there is no sparkq on the PATH to start the server with', async () => {
    const codex = recordingAgent(t.dir, 'codex');
    const claude = recordingAgent(t.dir, 'claude');
    for (const o of [await codexExecutor.run(ctxFor(codexTool(codex.command, true), false)), await claudeExecutor.run(ctxFor(claudeTool(claude.command, true), false))]) {
      assert.equal(o.status, 'failed');
      assert.match(o.status === 'failed' ? o.error : '', /^tool llm-(codex|claude) has mcp: true, but there is no sparkq on the tool's PATH/);
    }
    assert.deepEqual([codex.argvs().length, claude.argvs().length], [0, 0]);
  });
});

// ---- The real CLIs ----------------------------------------------------------------------------------------------

describe('agents inside tasks drive SparkQ through its MCP server (real codex and claude, mock model)', function () {
  this.timeout(90_000);
  let tmp: ReturnType<typeof tempDir>;
  let cli: Cli;
  let ws: string;
  let serving: Serving;
  let bin: string;
  let mock: MockModelServer;
  let n = 0;

  before(async () => {
    // Made here, not when the file is loaded: a run that filters these tests out leaves nothing behind.
    tmp = tempDir('sparkq-agents-mcp-');
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    ws = path.join(tmp.dir, 'ws');
    fs.mkdirSync(ws);
    await cli.ok(['init'], { cwd: ws });
    await cli.ok(['session', 'create', 's1'], { cwd: ws });
    await cli.ok(['queue', 'create', 'other', '--session', 's1'], { cwd: ws });
    // The workspace's owner, as the extension or a worker would be: the agents' MCP servers are its clients.
    const child = spawn(process.execPath, [cli.bundle, 'serve', '--json'], { cwd: ws, env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    serving = new Serving(child, (s) => {
      try {
        return JSON.parse(s) as Awaited<Serving['started']>;
      } catch {
        return null;
      }
    });
    await serving.started;
    bin = writeSparkqLauncher(path.join(ws, '.sparkq', 'bin'), [process.execPath, cli.bundle]);
    mock = await MockModelServer.start();
  });
  after(async () => {
    await mock?.close();
    if (serving) await serving.stop();
    tmp?.cleanup();
  });
  afterEach(() => mock.reset());

  /** A fresh queue with one task on it, claimed as a worker would: the task the agent runs for. */
  async function claimedTask(tool: string, prompt: string): Promise<{ queue: Queue; claim: Claim }> {
    const name = `work${++n}`;
    const queue = await cli.json<Queue>(['queue', 'create', name, '--session', 's1'], { cwd: ws });
    await cli.ok(['enqueue', tool, '--queue', name, '--prompt', prompt], { cwd: ws });
    const claim = await cli.json<Claim>(['claim', '--queue', name, '--worker', 'test-worker'], { cwd: ws });
    return { queue, claim };
  }

  /** The context the worker would give the executor for that claim: its launcher first on PATH, the task's lease. */
  function contextFor(tool: ToolConfig, queue: Queue, claim: Claim) {
    const made = makeExecContext({ tool, workspaceDir: ws, queue: { id: queue.id, name: queue.name, sessionId: queue.sessionId }, taskId: claim.task.id, prompt: claim.task.prompt, env: { PATH: `${bin}${path.delimiter}${PATH}`, HOME: tmp.dir } });
    made.ctx.env['SPARKQ_LEASE'] = claim.lease;
    return made;
  }

  const task = (id: string) => cli.json<Task>(['task', id], { cwd: ws });
  const tasksOn = async (queue: string) => cli.json<Task[]>(['tasks', '--queue', queue], { cwd: ws });
  /** The text of every request body from the given one on: tool results come back to the model in them (JSON-escaped). */
  const bodiesFrom = (reqs: RecordedRequest[], from: number) => reqs.slice(from).map((r) => JSON.stringify(r.body)).join('\n');

  const codexTool = (): ToolConfig => mockAgentToolConfig('codex', mock, { homes: tmp.dir, mcp: true });
  const claudeTool = (): ToolConfig => mockAgentToolConfig('claude', mock, { homes: tmp.dir, mcp: true });

  const agents = [
    { name: 'codex', api: 'responses' as const, tool: codexTool, executor: codexExecutor, toolCall: /tool sparkq\.complete → completed/ },
    { name: 'claude', api: 'messages' as const, tool: claudeTool, executor: claudeExecutor, toolCall: /→ mcp__sparkq__complete: / },
  ];

  for (const agent of agents) {
    it(`${agent.name} completes its own task with structured data through the sparkq complete tool`, async () => {
      const { queue, claim } = await claimedTask(`llm-${agent.name}`, 'Count the files, then finish this task through SparkQ with the count as data.');
      mock.script(
        agent.api,
        { kind: 'tool-search', server: 'sparkq', tools: ['complete'], query: 'complete task' },
        // No task and no lease: the server is the task's own and fills both in.
        { kind: 'mcp-call', server: 'sparkq', tool: 'complete', arguments: { summary: 'Counted 3 files', data: { files: 3, names: ['a', 'b', 'c'] } } },
        { kind: 'text', text: 'Finished the task through SparkQ.' },
      );
      const { ctx, text } = contextFor(agent.tool(), queue, claim);
      const o = ok(await agent.executor.run(ctx));
      assert.equal(o.summary, 'Finished the task through SparkQ.');
      assert.match(text('info'), agent.toolCall);
      const done = await task(claim.task.id);
      assert.equal(done.status, 'succeeded');
      assert.deepEqual(done.result, { summary: 'Counted 3 files', data: { files: 3, names: ['a', 'b', 'c'] } }, 'what the agent gave the tool, stored as the result');
      assert.equal(done.attempt, claim.task.attempt, 'the attempt the worker claimed');
      // The tool's answer reached the model.
      const reqs = mock.modelRequests(agent.api);
      assert.equal(reqs.length, 3);
      // Both agents hand the model the tool's structuredContent: the finished task, as JSON.
      const answer = bodiesFrom(reqs, 2).replace(/\\+"/g, '"');
      assert.match(answer, new RegExp(`"id":"${claim.task.id}"[^}]*"status":"succeeded"`), 'the finished task came back to the model');
      assert.equal(mock.pending(agent.api), 0);
    });

    it(`${agent.name} enqueues a follow-up on its own queue through SparkQ's MCP server; another queue is refused`, async () => {
      const { queue, claim } = await claimedTask(`llm-${agent.name}`, 'Plan the follow-up work.');
      mock.script(
        agent.api,
        { kind: 'tool-search', server: 'sparkq', tools: ['enqueue'], query: 'enqueue task' },
        { kind: 'mcp-call', server: 'sparkq', tool: 'enqueue', arguments: { queue: 'other', tool: 'run-bash', prompt: 'not my queue' } },
        { kind: 'mcp-call', server: 'sparkq', tool: 'enqueue', arguments: { tool: 'run-bash', prompt: `write the tests (from ${agent.name})`, payload: { files: ['a.ts'] } } },
        { kind: 'text', text: 'Enqueued the follow-up.' },
      );
      const { ctx } = contextFor(agent.tool(), queue, claim);
      const o = ok(await agent.executor.run(ctx));
      assert.equal(o.summary, 'Enqueued the follow-up.');
      const reqs = mock.modelRequests(agent.api);
      assert.equal(reqs.length, 4);
      assert.match(bodiesFrom(reqs, 2).replace(/\\+"/g, '"'), /this SparkQ server is limited to queue work\d+ \(que_\w+\): enqueue on queue "other" is refused/, 'the refusal came back to the model');
      const onQueue = await tasksOn(queue.name);
      const followUp = onQueue.find((x) => x.id !== claim.task.id);
      assert.ok(followUp, `a new task on ${queue.name}: ${JSON.stringify(onQueue.map((x) => x.id))}`);
      assert.deepEqual([followUp.status, followUp.tool, followUp.prompt, followUp.payload], ['queued', 'run-bash', `write the tests (from ${agent.name})`, { files: ['a.ts'] }]);
      assert.equal(onQueue.length, 2);
      assert.deepEqual((await tasksOn('other')).map((x) => x.prompt), [], 'nothing on the other queue');
      assert.equal((await task(claim.task.id)).status, 'running', 'the task itself is left to the worker');
      // The MCP server was a client of the owner, never an owner of its own.
      const status = await cli.json<{ owner: { pid: number } }>(['status'], { cwd: ws });
      assert.equal(status.owner.pid, serving.child.pid);
    });
  }
});
