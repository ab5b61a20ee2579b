import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { QueueApi } from '../../../src/api/contract';
import type { Task } from '../../../src/core/model';
import { patternLoader, renderPattern } from '../../../src/core/patterns';
import { patternStats } from '../../../src/core/patternStats';
import type { QueueService } from '../../../src/core/queue/service';
import { DashboardController } from '../../../src/extension/dashboard/dashboardController';
import { taskFromPattern } from '../../../src/extension/patternEnqueue';
import type { HostMessage, PatternsOverview } from '../../../src/shared/dashboardProtocol';
import { testQueue } from '../../support/queue';
import { depsFor, serviceApi } from '../../webview/queueApi';

type Response = Extract<HostMessage, { type: 'response' }>;

const ENDPOINT = `---
name: api-endpoint
description: Add a REST endpoint with its tests
tool: llm-codex
variables:
  resource: { description: "the resource, plural (users)" }
  verb: { description: the HTTP method, default: GET }
validate: { tool: llm-codex, prompt: check the endpoint, maxRounds: 3 }
---
Add \`{{verb}} /{{resource}}\` with its tests.
`;

describe('dashboard host: prompt patterns', () => {
  let q: QueueService;
  let cleanup: () => void;
  let api: QueueApi;
  let posted: HostMessage[];
  let ctl: DashboardController;
  let dir: string;
  let readOnly: boolean;
  let seq = 0;

  beforeEach(async () => {
    const t = await testQueue();
    q = t.q;
    cleanup = t.cleanup;
    api = serviceApi(q);
    posted = [];
    readOnly = false;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-patterns-'));
    fs.writeFileSync(path.join(dir, 'api-endpoint.md'), ENDPOINT);
    fs.writeFileSync(path.join(dir, 'broken.md'), '---\nname: broken\n---\nHello {{who}}\n');
    ctl = new DashboardController({ ...depsFor(api, (m) => posted.push(m)), isReadOnly: () => readOnly, patterns: () => (readOnly ? null : patternLoader(dir)) });
  });
  afterEach(async () => {
    ctl.dispose();
    await q.close();
    cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function req(method: string, params: unknown): Promise<Response> {
    const id = ++seq;
    await ctl.handleMessage({ type: 'request', id, method, params });
    const r = posted.find((m): m is Response => m.type === 'response' && m.id === id);
    assert.ok(r, `no response to ${method}`);
    return r;
  }

  it('lists the folder\'s patterns with their variables, and the files that do not parse with their line', async () => {
    const r = await req('patterns', {});
    assert.ok(r.ok);
    const o = r.result as PatternsOverview;
    assert.equal(o.folder, dir);
    assert.deepEqual(o.patterns.map((p) => p.name), ['api-endpoint']);
    assert.deepEqual(o.patterns[0]!.variables, [
      { name: 'resource', description: 'the resource, plural (users)', default: null },
      { name: 'verb', description: 'the HTTP method', default: 'GET' },
    ]);
    assert.equal(o.patterns[0]!.validator, 'llm-codex');
    assert.equal(o.problems.length, 1);
    assert.match(o.problems[0]!.message, /^line \d+: /);
    assert.deepEqual(o.stats, [], 'no table unless asked for');
  });

  it('enqueues from a pattern as sparkq enqueue --pattern does: rendered prompt, recorded pattern, its validator and tool', async () => {
    const r = await req('enqueue', { queue: 'q', tool: '', pattern: 'api-endpoint', vars: { resource: 'users', verb: '' }, prompt: 'Use the v2 router.' });
    assert.ok(r.ok, r.ok ? '' : r.error);
    const task = r.result as Task;
    const pattern = patternLoader(dir).load('api-endpoint')!;
    assert.equal(task.prompt, `${renderPattern(pattern, { resource: 'users' })}\n\nUse the v2 router.`);
    assert.equal(task.prompt, 'Add `GET /users` with its tests.\n\nUse the v2 router.');
    assert.deepEqual(task.pattern, { name: 'api-endpoint', hash: pattern.hash });
    assert.equal(task.tool, 'llm-codex');
    assert.equal(task.validation?.maxRounds, 3);
    assert.equal(task.validation?.spec.tool, 'llm-codex');
  });

  it("lets the form's validator replace the pattern's, as --validate-with does, and keeps the pattern's when none is chosen", async () => {
    const own = await req('enqueue', { queue: 'q', tool: '', pattern: 'api-endpoint', vars: { resource: 'users' }, validateWith: 'run-bash', validatePrompt: 'check.sh users', validateQueue: '', maxRounds: '' });
    assert.ok(own.ok, own.ok ? '' : own.error);
    const replaced = q.getTask((own.result as Task).id).validation;
    assert.deepEqual(replaced?.spec, { tool: 'run-bash', prompt: 'check.sh users', maxRounds: 2 }, "the pattern's prompt and rounds do not carry over to another validator");
    assert.equal(replaced?.maxRounds, 2);
    const kept = await req('enqueue', { queue: 'q', tool: '', pattern: 'api-endpoint', vars: { resource: 'users' }, validateWith: '' });
    assert.ok(kept.ok, kept.ok ? '' : kept.error);
    assert.deepEqual(q.getTask((kept.result as Task).id).validation?.spec, { tool: 'llm-codex', prompt: 'check the endpoint', maxRounds: 3 });
    // Rounds alone do not change the pattern's validator: they go with a tool, as on the command line.
    const rounds = await req('enqueue', { queue: 'q', tool: '', pattern: 'api-endpoint', vars: { resource: 'users' }, maxRounds: '5' });
    assert.equal(rounds.ok, false);
    assert.match((!rounds.ok && rounds.fields?.validateWith) || '', /^Choose a tool to check with/);
    assert.equal(q.listTasks({}).tasks.length, 2);
  });

  it('marks a missing variable, an unknown pattern and an invalid one as field errors, and enqueues nothing', async () => {
    const missing = await req('enqueue', { queue: 'q', tool: 'llm-codex', pattern: 'api-endpoint', vars: { resource: '' } });
    assert.equal(missing.ok, false);
    assert.match((!missing.ok && missing.fields?.['var:resource']) || '', /Give resource a value: the resource, plural/);
    const unknown = await req('enqueue', { queue: 'q', tool: 'llm-codex', pattern: 'nope' });
    assert.match((!unknown.ok && unknown.fields?.pattern) || '', /unknown pattern "nope"; the patterns in .* are: api-endpoint, broken/);
    const broken = await req('enqueue', { queue: 'q', tool: 'llm-codex', pattern: 'broken' });
    assert.match((!broken.ok && broken.fields?.pattern) || '', /^Pattern broken is invalid: line \d+: /);
    assert.equal(q.listTasks({}).tasks.length, 0);
  });

  it('refuses to enqueue in Restricted Mode, and lists no patterns there (sparkq.yml is not read)', async () => {
    readOnly = true;
    const r = await req('enqueue', { queue: 'q', tool: 'llm-codex', pattern: 'api-endpoint', vars: { resource: 'users' } });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /read-only in Restricted Mode/);
    const o = await req('patterns', { stats: true });
    assert.ok(o.ok);
    assert.equal((o.result as PatternsOverview).folder, null);
  });

  it('computes the patterns table from the whole history with the CLI\'s function', async () => {
    const hash = 'f'.repeat(64);
    for (let i = 0; i < 3; i++) await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: `p${i}`, pattern: { name: i === 2 ? 'other' : 'api-endpoint', hash } });
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'no pattern' });
    const c = await q.claim({ queue: 'q', worker: 'w' });
    await q.complete({ task: c!.task.id, lease: c!.lease, summary: 'done' });
    const r = await req('patterns', { stats: true });
    assert.ok(r.ok);
    const o = r.result as PatternsOverview;
    assert.deepEqual(o.stats, patternStats(q.listTasks({}).tasks));
    assert.deepEqual(o.stats.map((s) => [s.pattern, s.uses]), [['api-endpoint', 2], ['other', 1]]);
    assert.equal(o.scanned, 4);
    assert.equal(o.truncated, false);
    const bad = await req('patterns', { stats: 'yes' });
    assert.equal(bad.ok, false, 'a bad request gets an error answer');
  });

  it('taskFromPattern (the form\'s and the command\'s one path): an unknown variable is the pattern\'s problem, no folder is said plainly', () => {
    const loader = patternLoader(dir);
    const unknown = taskFromPattern(loader, 'api-endpoint', { resource: 'users', colour: 'red' }, undefined);
    assert.deepEqual(unknown.problems?.map((p) => p.field), ['pattern']);
    assert.match(unknown.problems?.[0]?.message ?? '', /has no variable "colour"; it declares: resource, verb/);
    assert.match(taskFromPattern(null, 'api-endpoint', {}, undefined).problems?.[0]?.message ?? '', /not read here/);
    const made = taskFromPattern(loader, 'api-endpoint', { resource: 'users', verb: 'PUT' }, '  ');
    assert.equal(made.made?.prompt, 'Add `PUT /users` with its tests.', 'a blank own prompt adds nothing');
    assert.deepEqual(made.made?.validate, { tool: 'llm-codex', prompt: 'check the endpoint', maxRounds: 3 });
  });
});
