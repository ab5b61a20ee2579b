import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClaimJson, TaskJson } from '../../../src/cli/json';
import { assertError, type Cli, cliSandbox, type RunOptions } from '../../support/cli';

/*
 * A value over a limit gets the same answer whoever owns the queue: the command itself (no owner around) or a live
 * `sparkq serve`, where the client checks it before sending rather than failing on a frame too large for the socket.
 */
describe('sparkq CLI: the same limits with or without a live owner', function () {
  this.timeout(90_000);
  const sandbox = cliSandbox('sparkq-cli-limits-');
  let cli: Cli;
  before(() => (cli = sandbox.cli));

  async function workspace(name: string): Promise<RunOptions & { dir: string }> {
    const dir = path.join(sandbox.dir, name);
    fs.mkdirSync(dir);
    const o = { cwd: dir, dir };
    await cli.ok(['init', '--project', 'demo'], o);
    await cli.ok(['session', 'create', 'api-v2'], o);
    await cli.ok(['queue', 'create', 'Back End', '--session', 'api-v2'], o);
    return o;
  }

  /** Runs the same failing command without an owner, then with `sparkq serve` owning; returns both stderrs. */
  async function withAndWithoutOwner(o: RunOptions, args: string[]): Promise<[string, string]> {
    const alone = await cli.run(args, o);
    assertError(alone, 1, /^error: /, 'without an owner');
    await sandbox.serve(o);
    const served = await cli.run(args, o);
    assertError(served, 1, /^error: /, 'with sparkq serve');
    return [alone.stderr, served.stderr];
  }

  it('a 10 MB --prompt-file says the prompt is too long, the same with sparkq serve running as without, and enqueues nothing', async () => {
    const o = await workspace('prompt');
    fs.writeFileSync(path.join(o.dir, 'big.txt'), 'a'.repeat(10_000_000));
    const [alone, served] = await withAndWithoutOwner(o, ['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt-file', 'big.txt']);
    assert.equal(alone, 'error: invalid task: prompt: prompt is longer than 262144 bytes\n');
    assert.equal(served, alone, 'the same error with a live owner');
    assert.deepEqual(await cli.json<TaskJson[]>(['tasks'], o), [], 'nothing was enqueued');
  });

  it('result data over the limit from --data-file says so, the same with sparkq serve running as without, and the task keeps running', async () => {
    const o = await workspace('data');
    const id = (await cli.ok(['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'p'], o)).trim();
    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o);
    assert.equal(claim.task.id, id);
    fs.writeFileSync(path.join(o.dir, 'data.json'), JSON.stringify({ text: 'd'.repeat(9_000_000) }));
    const [alone, served] = await withAndWithoutOwner(o, ['complete', id, 'did it', '--data-file', 'data.json', '--lease', claim.lease]);
    assert.match(alone, /^error: data is 9000011 bytes as JSON; the limit is 1048576\. Write large results to a file and put its path in data\.\n$/);
    assert.equal(served, alone, 'the same error with a live owner');
    assert.equal((await cli.json<TaskJson>(['task', id], o)).status, 'running');
  });

  it('result data nested 100,000 levels deep from --data-file says the limit, the same with sparkq serve running as without, and the task keeps running', async () => {
    const o = await workspace('deep');
    const id = (await cli.ok(['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'p'], o)).trim();
    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o);
    fs.writeFileSync(path.join(o.dir, 'deep.json'), `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const [alone, served] = await withAndWithoutOwner(o, ['complete', id, 'x', '--data-file', 'deep.json', '--lease', claim.lease]);
    assert.match(alone, /^error: --data-file nests arrays and objects more than 64 levels deep \(at --data-file(\[0\])+…(\[0\])+\); the limit is 64/);
    assert.equal(served, alone, 'the same error with a live owner');
    assert.equal((await cli.json<TaskJson>(['task', id], o)).status, 'running');
  });

  it('a lone surrogate escaped in --payload or --data-json is refused naming the option; nothing changes', async () => {
    const o = await workspace('surrogate');
    const bad = await cli.run(['enqueue', 'llm-codex', '--queue', 'Back End', '--payload', String.raw`{"note":"a\ud800b"}`], o);
    assertError(bad, 1, /^error: --payload\.note is not well-formed Unicode: a lone UTF-16 surrogate \\ud800 at character 1/);
    assert.deepEqual(await cli.json<TaskJson[]>(['tasks'], o), [], 'nothing was enqueued');
    const id = (await cli.ok(['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'p'], o)).trim();
    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o);
    for (const option of ['--data-json', '--data']) {
      const r = await cli.run(['complete', id, 'x', option, String.raw`["\udc00"]`, '--lease', claim.lease], o);
      assertError(r, 1, new RegExp(`^error: ${option}\\[0\\] is not well-formed Unicode`), option);
    }
    assert.equal((await cli.json<TaskJson>(['task', id], o)).status, 'running');
  });

  it('--workspace or SPARKQ_WORKSPACE naming a file says it is not a folder (init and any other command)', async () => {
    const dir = path.join(sandbox.dir, 'file-workspace');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'not a folder');
    const o = { cwd: dir };
    for (const [args, env, from] of [
      [['status', '--workspace', 'notes.txt'], {}, '--workspace'],
      [['init', '--workspace', 'notes.txt'], {}, '--workspace'],
      [['queue', 'list'], { SPARKQ_WORKSPACE: file }, 'SPARKQ_WORKSPACE'],
    ] as const) {
      const r = await cli.run([...args], { ...o, env });
      assertError(r, 1, new RegExp(`^error: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(from ${from}\\) is a file, not a folder; point ${from} at the workspace folder`), args.join(' '));
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a folder', 'the file is left alone');
  });
});
