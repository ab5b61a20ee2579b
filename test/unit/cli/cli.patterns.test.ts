import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskJson } from '../../../src/cli/json';
import type { PatternStatsRow } from '../../../src/core/patternStats';
import { assertError, bundleCli, Cli, type Serving } from '../../support/cli';
import { tempDir } from '../../support/tmp';

const API = [
  '---',
  'name: api-endpoint',
  'description: Add a REST endpoint with its tests',
  'tool: llm-codex',
  'variables:',
  '  resource: { description: "the resource, plural" }',
  '  verb: { description: the HTTP method, default: GET }',
  '---',
  '',
  'Add `{{verb}} /{{resource}}` with tests. Literal {{{{x}}.',
  '',
].join('\n');
const NO_TOOL = ['---', 'name: chore', 'description: Any chore', '---', 'Do the chore.'].join('\n');

/* Prompt patterns end to end (real processes): list, show, enqueue --pattern, plans with pattern:, and the stats table. */
describe('sparkq CLI: prompt patterns (real processes)', function () {
  this.timeout(120_000);
  const tmp = tempDir('sparkq-cli-patterns-');
  let cli: Cli;
  let serving: Serving;
  const o = { cwd: path.join(tmp.dir, 'ws') };
  const hash = createHash('sha256').update(API).digest('hex');

  before(async () => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    fs.mkdirSync(o.cwd);
    await cli.ok(['init'], o);
    fs.mkdirSync(path.join(o.cwd, 'sparkq', 'patterns'), { recursive: true });
    fs.writeFileSync(path.join(o.cwd, 'sparkq', 'patterns', 'api-endpoint.md'), API);
    fs.writeFileSync(path.join(o.cwd, 'sparkq', 'patterns', 'chore.md'), NO_TOOL);
    serving = await cli.serve(o);
    await cli.ok(['session', 'create', 's'], o);
    await cli.ok(['queue', 'create', 'q', '--session', 's'], o);
  });
  after(async () => {
    await serving.stop('SIGTERM');
    tmp.cleanup();
  });

  it('patterns lists them, and show prints one', async () => {
    const list = await cli.ok(['patterns'], o);
    assert.match(list, /^PATTERN +TOOL +VARIABLES +DESCRIPTION$/m);
    assert.match(list, /^api-endpoint +llm-codex +resource, verb=GET +Add a REST endpoint with its tests$/m);
    assert.match(list, /^chore +- +Any chore$/m);
    const json = await cli.json<{ patterns: { name: string; hash: string }[]; errors: unknown[] }>(['patterns', 'list'], o);
    assert.deepEqual(json.patterns.map((p) => [p.name, p.hash]), [['api-endpoint', hash], ['chore', createHash('sha256').update(NO_TOOL).digest('hex')]]);
    assert.deepEqual(json.errors, []);
    const shown = await cli.ok(['patterns', 'show', 'api-endpoint'], o);
    assert.match(shown, new RegExp(`^hash +${hash}$`, 'm'));
    assert.match(shown, /^verb +"GET" +the HTTP method$/m);
    assert.match(shown, /^ {2}Add `\{\{verb\}\} \/\{\{resource\}\}` with tests\. Literal \{\{\{\{x\}\}\.$/m);
    assertError(await cli.run(['patterns', 'show', 'api-endpont'], o), 1, /unknown pattern "api-endpont"; the patterns in .* are: api-endpoint, chore/);
  });

  it('enqueue --pattern renders the prompt, takes the pattern\'s tool, and records the pattern on the task', async () => {
    const made = await cli.json<TaskJson>(['enqueue', '--pattern', 'api-endpoint', '--var', 'resource=users', '--queue', 'q'], o);
    assert.equal(made.tool, 'llm-codex');
    const task = await cli.json<TaskJson>(['task', made.id], o);
    assert.deepEqual(task.pattern, { name: 'api-endpoint', hash });
    assert.equal(task.prompt, 'Add `GET /users` with tests. Literal {{x}}.');
    const own = await cli.json<TaskJson>(['enqueue', 'llm-sonnet', '--pattern', 'api-endpoint', '--var', 'resource=orders', '--var', 'verb=POST=x', '--prompt', 'Also the docs.', '--queue', 'q'], o);
    assert.equal(own.tool, 'llm-sonnet');
    assert.equal(own.prompt, 'Add `POST=x /orders` with tests. Literal {{x}}.\n\nAlso the docs.');
    assert.match(await cli.ok(['task', own.id], o), new RegExp(`^pattern +api-endpoint \\(${hash.slice(0, 12)}\\)$`, 'm'));
  });

  it('enqueue --pattern: clear errors for a missing tool, unknown patterns and variables', async () => {
    assertError(await cli.run(['enqueue', '--queue', 'q', '--prompt', 'x'], o), 2, /missing required argument 'tool'.*or name a --pattern that has one/);
    assertError(await cli.run(['enqueue', '--pattern', 'chore', '--queue', 'q'], o), 2, /pattern chore names no tool; say which tool runs the task/);
    assertError(await cli.run(['enqueue', 'llm-codex', '--var', 'a=b', '--queue', 'q', '--prompt', 'x'], o), 2, /--var gives a value to a variable of --pattern/);
    assertError(await cli.run(['enqueue', '--pattern', 'nope', '--queue', 'q'], o), 1, /unknown pattern "nope"/);
    assertError(await cli.run(['enqueue', '--pattern', 'api-endpoint', '--queue', 'q'], o), 1, /pattern api-endpoint needs the variable "resource" \(the resource, plural\), which has no default \(used at .*api-endpoint\.md:10\)/);
    assertError(await cli.run(['enqueue', '--pattern', 'api-endpoint', '--var', 'resource=a', '--var', 'colour=red', '--queue', 'q'], o), 1, /pattern api-endpoint has no variable "colour"; it declares: resource, verb/);
    assertError(await cli.run(['enqueue', '--pattern', 'api-endpoint', '--var', 'resource', '--queue', 'q'], o), 1, /--var takes NAME=VALUE/);
    assert.equal((await cli.json<TaskJson[]>(['tasks', '--queue', 'q'], o)).length, 2, 'nothing enqueued by the refused ones');
  });

  it('plan apply: tasks with pattern: record it; a missing variable is an error at its line', async () => {
    const plan = path.join(o.cwd, 'p.yml');
    fs.writeFileSync(plan, ['id: pp', 'defaults: { queue: q }', 'tasks:', '  - name: a', '    pattern: api-endpoint', '    with: { resource: things }', ''].join('\n'));
    const applied = await cli.json<{ created: { key: string; id: string; tool: string }[] }>(['plan', 'apply', plan], o);
    assert.equal(applied.created[0]!.tool, 'llm-codex');
    const t = await cli.json<TaskJson>(['task', applied.created[0]!.id], o);
    assert.deepEqual(t.pattern, { name: 'api-endpoint', hash });
    assert.equal(t.prompt, 'Add `GET /things` with tests. Literal {{x}}.');
    const bad = path.join(o.cwd, 'bad.yml');
    fs.writeFileSync(bad, ['defaults: { queue: q }', 'tasks:', '  - name: a', '    pattern: api-endpoint', '    with: { resourse: x }', ''].join('\n'));
    const r = await cli.run(['plan', 'apply', bad], o);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yml:3:5: tasks\[0\]: task "a": pattern api-endpoint needs the variable "resource"/);
    assert.match(r.stderr, /bad\.yml:5:13: tasks\[0\]\.with\.resourse: pattern api-endpoint has no variable "resourse"/);
  });

  it('patterns stats: exact on a history made here (first try, a requeued use, tokens and cost)', async () => {
    await cli.ok(['queue', 'create', 'h', '--session', 's'], o);
    const first = (await cli.ok(['enqueue', '--pattern', 'chore', 'run-bash', '--queue', 'h'], o)).trim();
    const second = (await cli.ok(['enqueue', 'run-bash', '--pattern', 'chore', '--queue', 'h'], o)).trim();
    const claim = async () => (await cli.json<{ task: TaskJson; lease: string }>(['claim', '--queue', 'h'], o));
    const c1 = await claim();
    assert.equal(c1.task.id, first);
    await cli.ok(['complete', first, '--summary', 'ok', '--lease', c1.lease, '--usage', JSON.stringify({ inputTokens: 100, outputTokens: 20, costUsd: 0.5 })], o);
    const c2 = await claim();
    await cli.ok(['fail', second, '--error', 'no', '--lease', c2.lease, '--usage', JSON.stringify({ inputTokens: 40, outputTokens: 10, costUsd: 0.25 })], o);
    const copy = (await cli.ok(['requeue', second], o)).trim();
    const c3 = await claim();
    assert.equal(c3.task.id, copy);
    await cli.ok(['complete', copy, '--summary', 'ok', '--lease', c3.lease, '--usage', JSON.stringify({ inputTokens: 60, outputTokens: 30, costUsd: 0.125 })], o);

    const rows = await cli.json<PatternStatsRow[]>(['patterns', 'stats'], o);
    const chore = rows.find((r) => r.pattern === 'chore')!;
    assert.ok(chore.medianRunMs !== null && chore.medianRunMs >= 0);
    assert.deepEqual(
      { ...chore, medianRunMs: 0 },
      { pattern: 'chore', versions: 1, uses: 2, settled: 2, succeeded: 2, firstTry: 1, firstTryRate: 0.5, medianRounds: 1.5, medianAttempts: 1.5, medianTokens: 130, medianRunMs: 0, costUsd: 0.875, validated: 0, firstRoundPassed: 0, validationPassRate: null },
    );
    const api = rows.find((r) => r.pattern === 'api-endpoint')!;
    assert.deepEqual({ uses: api.uses, settled: api.settled, firstTryRate: api.firstTryRate }, { uses: 3, settled: 0, firstTryRate: null });
    assert.deepEqual(rows.map((r) => r.pattern), ['api-endpoint', 'chore'], 'most used first');
    const md = await cli.ok(['patterns', 'stats', '--markdown'], o);
    assert.match(md, /^\| Pattern \| Uses \| First-try success \|/);
    assert.match(md, /^\| chore \| 2 \| 50% \(1\/2\) \| 1\.5 \| 1\.5 \| 130 \| .* \| \$0\.8750 \| n\/a \|$/m);
    assert.match(await cli.ok(['patterns', 'stats'], o), /^chore +2 +50% \(1\/2\) +1\.5 +1\.5 +130 /m);
    assertError(await cli.run(['patterns', 'stats', '--markdown', '--json'], o), 2, /--json or --markdown, not both/);
  });
});
