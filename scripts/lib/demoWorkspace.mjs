// A demo workspace with sessions, queues and tasks in every state, made with the real `sparkq` CLI: for `npm start`
// and `npm run screenshot`.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './vscodeHost.mjs';

const CLI = path.join(ROOT, 'dist', 'cli.js');

function sparkq(cwd, ...args) {
  return execFileSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

/** Seconds after which the demo's "stale" task goes stale (it is failed automatically at twice that). */
export const STALE_AFTER_SECONDS = 25;

export const DEMO_ROWS = {
  sessions: ['api-v2', 'docs-refresh'],
  queues: ['Back End', 'Front End', 'Scripts'],
  tasks: {
    succeeded: 'add the users endpoint',
    failed: 'migrate the orders table',
    running: 'write the OpenAPI file',
    stale: 'profile the slow search query',
    queued: 'add pagination to /users',
  },
};

/** Fills `dir` (created when missing) and returns it. Existing SparkQ state there is replaced. */
export function seedDemoWorkspace(dir) {
  fs.rmSync(path.join(dir, '.sparkq'), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'scripts', 'hello.sh'),
    '#!/usr/bin/env bash\n# name: hello\n# description: Greets whoever is named in the arguments\n# inputs: a name\necho "hello ${1:-world}"\n',
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(dir, 'scripts', 'count-lines.py'),
    '#!/usr/bin/env python3\n# name: count-lines\n# description: Counts the lines of the files given\nimport sys\nprint(sum(1 for f in sys.argv[1:] for _ in open(f)))\n',
    { mode: 0o755 },
  );
  sparkq(dir, 'init', '--project', 'demo', '--force');
  sparkq(dir, 'session', 'create', 'api-v2', '--description', 'Version 2 of the public API');
  sparkq(dir, 'session', 'create', 'docs-refresh', '--description', 'Rewrite the user guide');
  sparkq(dir, 'queue', 'create', 'Back End', '--session', 'api-v2', '--instructions', 'Keep changes small; run the tests before finishing.');
  sparkq(dir, 'queue', 'create', 'Front End', '--session', 'api-v2');
  sparkq(dir, 'queue', 'create', 'Scripts', '--session', 'docs-refresh');
  const t = DEMO_ROWS.tasks;
  const claim = (queue, worker) => JSON.parse(sparkq(dir, 'claim', '--queue', queue, '--worker', worker, '--json'));
  sparkq(dir, 'enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', t.succeeded);
  sparkq(dir, 'enqueue', 'llm-claude', '--queue', 'Back End', '--prompt', t.failed);
  let c = claim('Back End', 'codex-1');
  sparkq(dir, 'complete', c.task.id, '--summary', 'GET/POST /users added with tests', '--data', '{"files":4}', '--lease', c.lease,
    '--usage', '{"inputTokens":48210,"cachedInputTokens":31000,"outputTokens":2950,"reasoningTokens":640,"costUsd":0.0912,"model":"gpt-5-codex"}');
  c = claim('Back End', 'claude-1');
  sparkq(dir, 'fail', c.task.id, '--error', 'the migration conflicts with the orders index on main', '--lease', c.lease,
    '--usage', '{"inputTokens":20400,"cachedInputTokens":12000,"outputTokens":1310,"costUsd":0.1275,"model":"claude-sonnet-4-5"}');
  sparkq(dir, 'enqueue', 'llm-codex', '--queue', 'Front End', '--prompt', t.running, '--timeout', '3600');
  claim('Front End', 'codex-2');
  sparkq(dir, 'enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', t.stale, '--timeout', String(STALE_AFTER_SECONDS));
  claim('Back End', 'haiku-1');
  sparkq(dir, 'enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', t.queued);
  sparkq(dir, 'enqueue', 'run-bash', '--queue', 'Scripts', '--payload', '{"script":"hello","args":["SparkQ"]}');
  return dir;
}
