import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ToolConfig } from '../../../src/core/config';
import { claudeExecutor, claudeProjectDirName } from '../../../src/worker/executors/claude';
import { codexExecutor } from '../../../src/worker/executors/codex';
import { CLAUDE_BIN, PATH, agentHome, bodyText, mockAgentToolConfig, ok } from '../../support/agentRig';
import { type ExecContextOptions, makeExecContext } from '../../support/execContext';
import { MockModelServer } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';

/*
 * A queue with a worktree per task runs consecutive tasks in different directories, yet keeps one Codex thread / one
 * Claude session. The real `codex` and `claude` binaries (devDependencies, as in agents.test.ts), driven by the
 * loopback mock model: the first task runs in worktree A, the second in worktree B of the same repository, and must
 * continue the same conversation, with its tools working in B.
 */

function git(cwd: string, ...args: string[]): void {
  const r = spawnSync('git', ['-c', 'user.email=sparkq@test', '-c', 'user.name=SparkQ test', ...args], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
}

interface Harness {
  mock: MockModelServer;
  dir: string;
  repo: string;
  /** Two worktrees of `repo`, as a queue with isolation: worktree makes for two tasks; names with `.`, `_` and a space. */
  a: string;
  b: string;
  cleanup: () => Promise<void>;
}

async function harness(): Promise<Harness> {
  const t = tempDir('sparkq-agents-cwd-');
  const dir = fs.realpathSync(t.dir);
  const repo = path.join(dir, 'my repo');
  fs.mkdirSync(repo);
  git(repo, 'init', '-q');
  fs.writeFileSync(path.join(repo, 'README.md'), 'hello\n');
  git(repo, 'add', 'README.md');
  git(repo, 'commit', '-q', '-m', 'init');
  const a = path.join(repo, '.sparkq', 'worktrees', 'tsk_first.1');
  const b = path.join(repo, '.sparkq', 'worktrees', 'tsk_second.2');
  git(repo, 'worktree', 'add', '-q', '-b', 'sparkq/q/tsk_first', a);
  git(repo, 'worktree', 'add', '-q', '-b', 'sparkq/q/tsk_second', b);
  const mock = await MockModelServer.start();
  return {
    mock,
    dir,
    repo,
    a,
    b,
    cleanup: async () => {
      await mock.close();
      t.cleanup();
    },
  };
}

// ---- Codex ------------------------------------------------------------------------------------------------------

function codexCtx(h: Harness, cwd: string, more: Partial<ExecContextOptions> = {}) {
  return makeExecContext({ tool: mockAgentToolConfig('codex', h.mock, { homes: h.dir }), workspaceDir: h.repo, cwd, env: { PATH, HOME: h.dir }, ...more });
}

describe('agents across working directories: codex resumes the queue thread from another worktree', function () {
  this.timeout(60_000);
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('the second task, in worktree B, continues the thread started in A, and its edits and commands land in B', async () => {
    h.mock.script('responses', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await codexExecutor.run(codexCtx(h, h.a, { prompt: 'First task BRAVO' }).ctx));
    const threadId = first.agentSession!.codexThreadId!;
    h.mock.script('responses', { kind: 'write-file', path: 'made-in-b.txt', content: 'from the second task\n' }, { kind: 'shell', command: 'pwd > where.txt' }, { kind: 'text', text: 'Second answer' });
    const { ctx, text } = codexCtx(h, h.b, { prompt: 'Second task CHARLIE', queue: { codexThreadId: threadId } });
    const second = ok(await codexExecutor.run(ctx));

    assert.equal(second.agentSession?.codexThreadId, threadId, 'the queue keeps one thread');
    assert.equal(second.notes, undefined, 'no fallback was needed');
    assert.match(text('info'), new RegExp(` -C ${JSON.stringify(h.b).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .* resume ${threadId} -`));
    const req = h.mock.modelRequests('responses');
    assert.equal(req.length, 4);
    // The model got the first task's turn, then was told the working directory is now B.
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE', `<cwd>${h.b}</cwd>`]) assert.ok(bodyText(req[1]).includes(marker), marker);
    // The file edit and the command ran in B; nothing was written in A.
    assert.equal(fs.readFileSync(path.join(h.b, 'made-in-b.txt'), 'utf8'), 'from the second task\n');
    assert.equal(fs.readFileSync(path.join(h.b, 'where.txt'), 'utf8').trim(), h.b);
    assert.ok(!fs.existsSync(path.join(h.a, 'made-in-b.txt')) && !fs.existsSync(path.join(h.a, 'where.txt')));
    assert.deepEqual((second.data as { changedFiles: string[] }).changedFiles, ['made-in-b.txt']);
  });

  it('continues the thread even when the first worktree has been removed', async () => {
    h.mock.script('responses', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await codexExecutor.run(codexCtx(h, h.a, { prompt: 'First task BRAVO' }).ctx));
    git(h.repo, 'worktree', 'remove', '--force', h.a);
    assert.ok(!fs.existsSync(h.a));
    h.mock.script('responses', { kind: 'text', text: 'Second answer' });
    const second = ok(await codexExecutor.run(codexCtx(h, h.b, { prompt: 'Second task CHARLIE', queue: { codexThreadId: first.agentSession!.codexThreadId! } }).ctx));
    assert.equal(second.agentSession?.codexThreadId, first.agentSession?.codexThreadId);
    assert.equal(second.notes, undefined);
    const req = h.mock.modelRequests('responses');
    assert.equal(req.length, 2);
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE']) assert.ok(bodyText(req[1]).includes(marker), marker);
  });
});

// ---- Claude -----------------------------------------------------------------------------------------------------

function claudeTool(h: Harness, command = CLAUDE_BIN): ToolConfig {
  return mockAgentToolConfig('claude', h.mock, { homes: h.dir, command });
}

function claudeCtx(h: Harness, cwd: string, more: Partial<ExecContextOptions> & { command?: string } = {}) {
  const { command, ...rest } = more;
  return makeExecContext({ tool: claudeTool(h, command), workspaceDir: h.repo, cwd, env: { PATH }, ...rest });
}

/** Where claude keeps a session's transcript: every `<config dir>/projects/<project>/<session>.jsonl`. */
function transcriptsOf(h: Harness, sessionId: string): string[] {
  const projects = path.join(agentHome('claude', h.dir), '.claude', 'projects');
  if (!fs.existsSync(projects)) return [];
  return fs
    .readdirSync(projects)
    .filter((p) => fs.existsSync(path.join(projects, p, `${sessionId}.jsonl`)))
    .sort();
}

/**
 * A stand-in for a Claude Code that resumes only sessions of its own cwd (as versions before the cross-directory lookup
 * did: "No conversation found with session ID"): it refuses a --resume whose transcript is not in the project directory
 * of its cwd, and otherwise runs the real claude with the same argv and stdin. Logs each call.
 */
function cwdScopedClaude(h: Harness): { command: string; calls: () => { cwd: string; argv: string[] }[] } {
  const log = path.join(h.dir, 'scoped-claude.jsonl');
  const command = path.join(h.dir, 'cwd-scoped-claude');
  fs.writeFileSync(
    command,
    `#!${process.execPath}
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ cwd: process.cwd(), argv }) + '\\n');
const i = argv.indexOf('--resume');
if (i >= 0) {
  const id = argv[i + 1];
  const project = path.join(process.env.CLAUDE_CONFIG_DIR, 'projects', process.cwd().replace(/[^a-zA-Z0-9]/g, '-'));
  if (!fs.existsSync(path.join(project, id + '.jsonl'))) {
    console.error('No conversation found with session ID: ' + id);
    process.exit(1);
  }
}
const r = spawnSync(${JSON.stringify(CLAUDE_BIN)}, argv, { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
`,
    { mode: 0o755 },
  );
  return { command, calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { cwd: string; argv: string[] }) : []) };
}

describe('agents across working directories: claude resumes the queue session from another worktree', function () {
  this.timeout(60_000);
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('the second task, in worktree B, continues the session started in A, and its edits and commands land in B', async () => {
    h.mock.script('messages', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await claudeExecutor.run(claudeCtx(h, h.a, { prompt: 'First task BRAVO' }).ctx));
    const sessionId = first.agentSession!.claudeSessionId!;
    assert.deepEqual(transcriptsOf(h, sessionId), [claudeProjectDirName(h.a)]);
    // A relative path, as the model may give it: claude resolves it against its cwd.
    h.mock.script('messages', { kind: 'write-file', path: 'made-in-b.txt', content: 'from the second task\n' }, { kind: 'shell', command: 'pwd > where.txt' }, { kind: 'text', text: 'Second answer' });
    const { ctx, text } = claudeCtx(h, h.b, { prompt: 'Second task CHARLIE', queue: { claudeSessionId: sessionId } });
    const second = ok(await claudeExecutor.run(ctx));

    assert.equal(second.agentSession?.claudeSessionId, sessionId, 'the queue keeps one session');
    assert.equal(second.notes, undefined, 'no fallback was needed');
    assert.match(text('info'), new RegExp(`--resume ${sessionId}`));
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 4);
    // The model got the first task's turn, and B as its working directory.
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE', h.b]) assert.ok(bodyText(req[1]).includes(marker), marker);
    assert.equal(fs.readFileSync(path.join(h.b, 'made-in-b.txt'), 'utf8'), 'from the second task\n');
    assert.equal(fs.readFileSync(path.join(h.b, 'where.txt'), 'utf8').trim(), h.b);
    assert.ok(!fs.existsSync(path.join(h.a, 'made-in-b.txt')) && !fs.existsSync(path.join(h.a, 'where.txt')));
    assert.deepEqual((second.data as { changedFiles: string[] }).changedFiles, ['made-in-b.txt']);
    // This claude found the transcript in A's project by itself and went on writing it there: nothing was copied.
    assert.deepEqual(transcriptsOf(h, sessionId), [claudeProjectDirName(h.a)]);
  });

  it('continues the session even when the first worktree has been removed', async () => {
    h.mock.script('messages', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await claudeExecutor.run(claudeCtx(h, h.a, { prompt: 'First task BRAVO' }).ctx));
    git(h.repo, 'worktree', 'remove', '--force', h.a);
    h.mock.script('messages', { kind: 'text', text: 'Second answer' });
    const second = ok(await claudeExecutor.run(claudeCtx(h, h.b, { prompt: 'Second task CHARLIE', queue: { claudeSessionId: first.agentSession!.claudeSessionId! } }).ctx));
    assert.equal(second.agentSession?.claudeSessionId, first.agentSession?.claudeSessionId);
    assert.equal(second.notes, undefined);
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 2);
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE']) assert.ok(bodyText(req[1]).includes(marker), marker);
  });

  it('names project directories as claude does: "/", ".", "_", spaces and other characters become "-", long paths are cut and hashed', async () => {
    const long = path.join(h.dir, 'x'.repeat(120), 'y_Y.z é'.repeat(12));
    fs.mkdirSync(long, { recursive: true });
    assert.ok(claudeProjectDirName(long).length > 200 && /-[0-9a-z]+$/.test(claudeProjectDirName(long)));
    for (const cwd of [h.a, h.b, long]) {
      h.mock.script('messages', { kind: 'text', text: 'ok' });
      const o = ok(await claudeExecutor.run(claudeCtx(h, cwd).ctx));
      assert.deepEqual(transcriptsOf(h, o.agentSession!.claudeSessionId!), [claudeProjectDirName(cwd)], cwd);
    }
    assert.equal(claudeProjectDirName('/tmp/my repo/.sparkq/worktrees/tsk_first.1'), '-tmp-my-repo--sparkq-worktrees-tsk-first-1');
  });

  it('a claude that resumes only sessions of its own cwd gets a copy of the transcript in B and resumes, with a note', async () => {
    const scoped = cwdScopedClaude(h);
    h.mock.script('messages', { kind: 'text', text: 'First answer ALPHA' });
    const first = ok(await claudeExecutor.run(claudeCtx(h, h.a, { prompt: 'First task BRAVO', command: scoped.command }).ctx));
    const sessionId = first.agentSession!.claudeSessionId!;
    h.mock.script('messages', { kind: 'write-file', path: 'made-in-b.txt', content: 'b\n' }, { kind: 'text', text: 'Second answer' });
    const { ctx, text } = claudeCtx(h, h.b, { prompt: 'Second task CHARLIE', queue: { claudeSessionId: sessionId }, command: scoped.command });
    const second = ok(await claudeExecutor.run(ctx));

    assert.equal(second.agentSession?.claudeSessionId, sessionId);
    assert.equal(second.notes?.length, 1, JSON.stringify(second.notes));
    assert.match(second.notes[0]!, new RegExp(`resumed the queue's session ${sessionId} only after its transcript was copied`));
    assert.match(text('stderr'), /No conversation found with session ID/);
    assert.match(text('info'), /did not find the queue's session .* copied its transcript/);
    // Refused in B, then resumed there with the copy: the model saw the first task's conversation.
    const calls = scoped.calls();
    assert.deepEqual(calls.map((c) => [c.cwd, c.argv.includes('--resume')]), [[h.a, false], [h.b, true], [h.b, true]]);
    const req = h.mock.modelRequests('messages');
    assert.equal(req.length, 3);
    for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE']) assert.ok(bodyText(req[1]).includes(marker), marker);
    assert.equal(fs.readFileSync(path.join(h.b, 'made-in-b.txt'), 'utf8'), 'b\n');
    assert.deepEqual(transcriptsOf(h, sessionId), [claudeProjectDirName(h.a), claudeProjectDirName(h.b)].sort());
  });

  it('a session with no transcript anywhere starts a new session, and the note says no transcript was found', async () => {
    const madeUp = '99999999-2222-4333-8444-555555555555';
    h.mock.script('messages', { kind: 'text', text: 'Fresh start' });
    const o = ok(await claudeExecutor.run(claudeCtx(h, h.b, { queue: { claudeSessionId: madeUp } }).ctx));
    assert.notEqual(o.agentSession?.claudeSessionId, madeUp);
    assert.equal(o.notes?.length, 1);
    assert.match(o.notes[0]!, new RegExp(`no record of the queue's session ${madeUp} here \\(No conversation found.*; no transcript of it under .*projects\\); started a new session`));
  });
});
