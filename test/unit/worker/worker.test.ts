import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import { defaultConfigYaml } from '../../../src/core/config';
import { type WorkerOptions, runWorker } from '../../../src/worker/runner';
import { EXECUTORS } from '../../../src/worker/executors';
import { splitShellWords } from '../../../src/worker/shellWords';
import { MockModelServer } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';
import { isRunning } from '../../support/children';

const ECHO_ARGS = `#!/usr/bin/env bash
# name: echo-args
# description: prints each argument on its own line, framed
for a in "$@"; do printf '<%s>\\n' "$a"; done
echo "done with $# args"
`;

describe('worker: sparkq run with script tools', function () {
  this.timeout(60_000);
  let tmp: { dir: string; cleanup: () => void };
  let q: QueueHandle;
  let out: string;

  beforeEach(async () => {
    tmp = tempDir('sparkq-worker-');
    fs.writeFileSync(path.join(tmp.dir, 'sparkq.yml'), defaultConfigYaml('worker-test'));
    const scripts = path.join(tmp.dir, 'scripts');
    fs.mkdirSync(scripts);
    fs.writeFileSync(path.join(scripts, 'echo-args.sh'), ECHO_ARGS);
    fs.writeFileSync(path.join(scripts, 'fail.sh'), '#!/usr/bin/env bash\necho partial work\necho "disk full at step 3" >&2\nexit 3\n');
    fs.writeFileSync(path.join(scripts, 'env.sh'), '#!/usr/bin/env bash\necho "id=$SPARKQ_TASK_ID queue=$SPARKQ_QUEUE lease=$SPARKQ_LEASE ws=$SPARKQ_WORKSPACE"\ncommand -v sparkq\n');
    // Sleeps, with a grandchild in the background that records its pid and would outlive a careless kill.
    fs.writeFileSync(path.join(scripts, 'hang.sh'), '#!/usr/bin/env bash\n( sleep 60 & echo $! > "$1"; wait ) &\nsleep 60\n');
    q = await openQueue(tmp.dir, { role: 'test', watchConfig: false });
    await q.createSession({ name: 's' });
    await q.createQueue({ name: 'q', session: 's', instructions: 'Keep it small.\nReport counts.' });
    out = '';
  });
  afterEach(async () => {
    await q.close();
    tmp.cleanup();
  });

  function opts(extra: Partial<WorkerOptions> = {}): WorkerOptions {
    return { q, workspaceDir: tmp.dir, queue: 'q', mode: 'drain', write: (s) => (out += s), signal: new AbortController().signal, ...extra };
  }

  it('splits shell words without interpreting anything', () => {
    assert.deepEqual(splitShellWords(`a 'b c' "d \\"e\\" $HOME" f\\ g '' "" h;i`), ['a', 'b c', 'd "e" $HOME', 'f g', '', '', 'h;i']);
    assert.throws(() => splitShellWords(`'open`), /unterminated single quote/);
    assert.throws(() => splitShellWords(`"open`), /unterminated double quote/);
  });

  it('runs a script: succeeded with the last output line as summary, instructions in the banner, output kept whole', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo-args one "two words"' });
    const r = await runWorker(opts());
    assert.deepEqual(r, { ran: 1, succeeded: 1, failed: 0, released: 0, interrupted: false });
    const done = await q.getTask(t.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result?.summary, 'done with 2 args');
    assert.match(done.stdout ?? '', /<one>\n<two words>\n/);
    assert.match(out, /Keep it small\.\n {2}Report counts\./);
    assert.match(out, new RegExp(`▶ ${t.id}`));
    assert.match(out, /queue q is empty; ran 1 task/);
    assert.match(fs.readFileSync(path.join(tmp.dir, '.sparkq', 'runs', t.id, 'output.log'), 'utf8'), /<two words>/);
  });

  it('arguments full of shell metacharacters arrive byte-exact, and nothing they spell is ever run', async () => {
    const canary = path.join(tmp.dir, 'CANARY');
    const nasty = [`; touch ${canary}`, `$(touch ${canary})`, `\`touch ${canary}\``, `&& touch ${canary} ||`, `| tee ${canary}`, `> ${canary}`, `*`, `~`, `$HOME`, `a\nb`, `'`, `"`, `\\`];
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', payload: { script: 'echo-args', args: nasty } });
    // The same through the prompt, quoted as a person would.
    const t2 = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `echo-args '; touch ${canary}' "\\$(touch ${canary})" '|' '>' ${canary}x` });
    await runWorker(opts());
    const a = await q.getTask(t.id);
    assert.equal(a.status, 'succeeded', a.error ?? '');
    assert.equal(a.stdout, nasty.map((x) => `<${x}>\n`).join('') + `done with ${nasty.length} args\n`);
    const b = await q.getTask(t2.id);
    assert.equal(b.stdout, `<; touch ${canary}>\n<$(touch ${canary})>\n<|>\n<>>\n<${canary}x>\ndone with 5 args\n`);
    assert.equal(fs.existsSync(canary), false);
    assert.equal(fs.existsSync(canary + 'x'), false);
  });

  it('a failing script fails the task with its exit code and stderr tail', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'fail.sh' });
    const r = await runWorker(opts());
    assert.equal(r.failed, 1);
    const done = await q.getTask(t.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'exit 3: disk full at step 3');
    assert.match(done.stdout ?? '', /partial work/);
  });

  it('refuses script paths outside the script dirs: .., absolute, and a symlink that leads out', async () => {
    const outside = path.join(tmp.dir, 'outside.sh');
    fs.writeFileSync(outside, '#!/usr/bin/env bash\ntouch "$0.ran"\n');
    fs.symlinkSync(outside, path.join(tmp.dir, 'scripts', 'escape.sh'));
    const ids = [
      (await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: '../outside.sh' })).id,
      (await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: outside })).id,
      (await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'escape.sh' })).id,
      (await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'no-such-script' })).id,
    ];
    await runWorker(opts());
    const errors = await Promise.all(ids.map(async (id) => (await q.getTask(id)).error ?? ''));
    assert.match(errors[0]!, /"\.\." is not allowed/);
    assert.match(errors[1]!, /absolute paths are not allowed/);
    assert.match(errors[2]!, /outside the script dirs/);
    assert.match(errors[3]!, /no script "no-such-script"/);
    assert.equal(fs.existsSync(outside + '.ran'), false);
  });

  it('gives the tool its task id, queue, lease, workspace, and sparkq on PATH', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'env.sh' });
    await runWorker(opts());
    const done = await q.getTask(t.id);
    assert.match(done.stdout ?? '', new RegExp(`id=${t.id} queue=q lease=\\S+ ws=${tmp.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(done.result?.summary, path.join(tmp.dir, '.sparkq', 'bin', 'sparkq'));
  });

  it('at 2× its timeout the worker stops the whole process group (grandchild included) and fails the task', async () => {
    const pidFile = path.join(tmp.dir, 'grandchild.pid');
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `hang.sh ${pidFile}`, timeoutSeconds: 1 });
    const started = Date.now();
    await runWorker(opts());
    assert.ok(Date.now() - started < 10_000);
    const done = await q.getTask(t.id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /ran longer than 2× its timeout \(1 s\)/);
    assert.match(out, /is stale/);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.ok(grandchild > 0);
    assert.equal(isRunning(grandchild), false, 'the grandchild was left running');
  });

  it('Ctrl+C stops the running tool, fails the task as interrupted, and the worker returns', async () => {
    const pidFile = path.join(tmp.dir, 'gc.pid');
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `hang.sh ${pidFile}` });
    await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo-args never' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 700);
    const r = await runWorker(opts({ signal: ac.signal, mode: 'watch' }));
    assert.equal(r.interrupted, true);
    assert.equal(r.ran, 1);
    const done = await q.getTask(t.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'interrupted by the worker');
    assert.equal((await q.status()).counts.queued, 1, 'the next task was not started');
    assert.equal(isRunning(Number(fs.readFileSync(pidFile, 'utf8'))), false);
  });

  it('--watch wakes as soon as a task is enqueued (no poll needed), --once runs exactly one', async () => {
    const ac = new AbortController();
    const running = runWorker(opts({ mode: 'watch', pollSeconds: 3600, signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo-args late' });
    while ((await q.getTask(t.id)).status !== 'succeeded') {
      assert.ok(Date.now() - t0 < 5_000, 'the watching worker did not pick the task up');
      await new Promise((r) => setTimeout(r, 20));
    }
    ac.abort();
    assert.equal((await running).succeeded, 1);

    await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo-args a' });
    await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo-args b' });
    assert.equal((await runWorker(opts({ mode: 'once' }))).ran, 1);
    assert.equal((await q.status()).counts.queued, 1);
  });

  it('one worker per queue unless the queue allows more: a second worker is refused with who holds the place', async () => {
    await q.enqueue({ queue: 'q', tool: 'llm-sonnet', prompt: 'wait here' });
    const ac = new AbortController();
    const first = runWorker(opts({ mode: 'watch', signal: ac.signal, worker: 'first' }));
    while (!out.includes('waiting for the task')) await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(runWorker(opts({ worker: 'second' })), /queue q already has 1 worker \(first\) and allows 1/);
    ac.abort();
    await first;
    // The place is free again once the first worker left.
    const again = await runWorker(opts({ worker: 'second' }));
    assert.equal(again.ran, 0);

    await q.createQueue({ name: 'wide', session: 's', maxWorkers: 2 });
    const ac2 = new AbortController();
    const a = runWorker(opts({ queue: 'wide', mode: 'watch', signal: ac2.signal, worker: 'a' }));
    const b = runWorker(opts({ queue: 'wide', mode: 'watch', signal: ac2.signal, worker: 'b' }));
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(runWorker(opts({ queue: 'wide', worker: 'c' })), /allows 2/);
    ac2.abort();
    await Promise.all([a, b]);
  });

  it('manual tools show the prompt and how to finish, then wait until someone finishes the task', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'llm-sonnet', prompt: 'Review the API diff and list breaking changes.' });
    const running = runWorker(opts());
    let lease = '';
    const deadline = Date.now() + 5_000;
    while (!lease) {
      assert.ok(Date.now() < deadline, 'the manual task was not shown');
      lease = /--lease (\S+)/.exec(out)?.[1] ?? '';
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(out, /Review the API diff/);
    // The agent form: the summary as the second word, the lease given.
    assert.match(out, new RegExp(`sparkq complete ${t.id} "what was done, where, counts" \\[--data "details, as text or JSON"\\] --lease ${lease}\n`));
    assert.match(out, new RegExp(`sparkq fail ${t.id} "what went wrong and what would fix it" \\[--data "partial results"\\] --lease ${lease}\n`));
    assert.match(out, /sparkq guide/);
    await q.complete({ task: t.id, lease, summary: 'found 2 breaking changes' });
    const r = await running;
    assert.equal(r.succeeded, 1);
    assert.match(out, /succeeded.*finished at the terminal/);
  });
});

describe('worker: agent tools through sparkq run', function () {
  this.timeout(60_000);

  /** sparkq.yml whose llm-codex is the real codex talking to the mock model on `port` (no retries), plus `settings`. */
  function writeCodexConfig(dir: string, port: number, settings: string[]): void {
    const home = path.join(dir, 'codex-home');
    fs.mkdirSync(home);
    const provider = `model_providers.mock={name="mock",base_url="http://127.0.0.1:${port}/v1",env_key="MOCK_API_KEY",wire_api="responses",request_max_retries=0,stream_max_retries=0}`;
    const yml = [
      'version: 1',
      ...settings,
      'tools:',
      '  llm-codex:',
      '    kind: codex',
      '    taskClass: LLM_HEAVY',
      `    command: ${JSON.stringify(path.resolve(__dirname, '..', '..', '..', 'node_modules', '.bin', 'codex'))}`,
      '    model: gpt-5.5',
      `    args: ${JSON.stringify(['-c', 'model_provider=mock', '-c', provider, '-c', 'analytics.enabled=false', '--disable', 'plugins'])}`,
      `    env: ${JSON.stringify({ CODEX_HOME: home, MOCK_API_KEY: 'mock-key' })}`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'sparkq.yml'), yml);
  }

  it("records the Codex thread on the queue, so the queue's next task resumes it (real codex, mock model)", async () => {
    const tmp = tempDir('sparkq-worker-codex-');
    const mock = await MockModelServer.start();
    const q = await openQueue(tmp.dir, { role: 'test', watchConfig: false });
    try {
      writeCodexConfig(tmp.dir, mock.port, ['project: codex-run']);
      await q.createSession({ name: 's' });
      await q.createQueue({ name: 'agents', session: 's', instructions: 'Answer briefly.' });
      mock.script('responses', { kind: 'text', text: 'First answer ALPHA' });
      mock.script('responses', { kind: 'text', text: 'Second answer' });
      const t1 = await q.enqueue({ queue: 'agents', tool: 'llm-codex', prompt: 'First task BRAVO' });
      const t2 = await q.enqueue({ queue: 'agents', tool: 'llm-codex', prompt: 'Second task CHARLIE' });
      let out = '';
      const r = await runWorker({ q, workspaceDir: tmp.dir, queue: 'agents', mode: 'drain', write: (s) => (out += s), signal: new AbortController().signal, executors: EXECUTORS });
      assert.equal(r.succeeded, 2, out);
      const threadId = (await q.getQueue('agents')).codexThreadId;
      assert.match(threadId ?? '', /^[0-9a-f-]{36}$/);
      assert.equal((await q.getTask(t1.id)).result?.summary, 'First answer ALPHA');
      assert.equal((await q.getTask(t2.id)).result?.summary, 'Second answer');
      const requests = mock.modelRequests('responses');
      assert.equal(requests.length, 2);
      const second = JSON.stringify(requests[1]?.body ?? null);
      for (const marker of ['First task BRAVO', 'First answer ALPHA', 'Second task CHARLIE', 'Answer briefly.']) assert.ok(second.includes(marker), marker);
      assert.match(out, new RegExp(`resume ${threadId ?? 'x'}`));
    } finally {
      await q.close();
      await mock.close();
      tmp.cleanup();
    }
  });

  it('a Codex rate limit hands the task back unfailed, pauses the queue until the reset, and the queue resumes by itself (real codex)', async () => {
    const tmp = tempDir('sparkq-worker-ratelimit-');
    const mock = await MockModelServer.start();
    const q = await openQueue(tmp.dir, { role: 'test', watchConfig: false, sweepIntervalMs: 200 });
    try {
      writeCodexConfig(tmp.dir, mock.port, ['project: codex-limit', 'worker: { pollSeconds: 0.5 }']);
      await q.createSession({ name: 's' });
      await q.createQueue({ name: 'agents', session: 's' });
      // The first run hits a rate limit that resets in 3 s; the run after the pause answers.
      mock.script('responses', { kind: 'stream-error', code: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-5.5. Please try again in 3s.' });
      mock.script('responses', { kind: 'text', text: 'Done after the pause' });
      const t = await q.enqueue({ queue: 'agents', tool: 'llm-codex', prompt: 'Do the thing' });
      const seen: { paused: boolean; status: string; pausedUntil: string | null }[] = [];
      const off = q.onChange((events) => {
        if (events.some((e) => e.kind === 'queue' || (e.kind === 'task' && e.id === t.id))) {
          void Promise.all([q.getQueue('agents'), q.getTask(t.id)]).then(([queue, task]) => seen.push({ paused: queue.paused, status: task.status, pausedUntil: queue.pausedUntil }));
        }
      });
      let out = '';
      const started = Date.now();
      const r = await runWorker({ q, workspaceDir: tmp.dir, queue: 'agents', mode: 'drain', write: (s) => (out += s), signal: new AbortController().signal, executors: EXECUTORS });
      off();
      assert.deepEqual({ succeeded: r.succeeded, failed: r.failed, released: r.released }, { succeeded: 1, failed: 0, released: 1 }, out);
      assert.ok(Date.now() - started >= 2_500, 'the worker waited for the pause to end');
      assert.match(out, /handed back .*Codex hit a rate limit \(resets at .*queue agents paused until/);
      assert.match(out, /queue agents: paused until/);
      const paused = seen.find((x) => x.paused);
      assert.ok(paused, 'the queue was paused');
      assert.equal(paused.status, 'queued', 'the task went back to queued, not failed');
      const resetAt = Date.parse(paused.pausedUntil!);
      assert.ok(Math.abs(resetAt - (started + 3_000)) < 4_000, 'paused until the reset the agent reported');
      const done = await q.getTask(t.id);
      assert.equal(done.status, 'succeeded');
      assert.equal(done.result?.summary, 'Done after the pause');
      assert.deepEqual(done.attempts.map((a) => a.outcome), ['released', 'succeeded']);
      assert.equal((await q.getQueue('agents')).paused, false);
      assert.equal((await q.getQueue('agents')).counts.failed, 0);
    } finally {
      await q.close();
      await mock.close();
      tmp.cleanup();
    }
  });
});
