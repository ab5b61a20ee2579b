/**
 * `npm run demo`: SparkQ's main job through the real `sparkq` command line (dist/cli.js, rebuilt first when a source
 * is newer): a workspace in a temp folder with two scripts, a session and a queue of script tasks that a worker
 * (`sparkq run`) drains — one fails and is requeued —, a manual task worked by hand, then the task table and status.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');

function newestMtime(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((name) => newestMtime(path.join(p, name))));
}

function buildIfNeeded(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  const sources = Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(ROOT, 'package.json')));
  if (built >= sources && fs.existsSync(path.join(ROOT, 'dist', 'sql-wasm.wasm'))) return;
  console.log('building dist/cli.js …');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'pipe' });
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Runs `sparkq …` in the workspace, echoing the command line and (unless quiet) its output. */
function sparkq(cwd: string, args: string[], opts: { env?: Record<string, string>; quiet?: boolean } = {}): string {
  const out = execFileSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  if (!opts.quiet) {
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${quote(v.length > 12 ? `${v.slice(0, 8)}…` : v)} `);
    console.log(`$ ${env.join('')}sparkq ${args.map(quote).join(' ')}`);
    if (out.trim() !== '') console.log(out.trimEnd().replace(/^(?=.)/gm, '  '));
  }
  return out;
}

interface ClaimJson {
  task: { id: string; prompt: string | null };
  lease: string;
}

const COUNT_LINES = `#!/usr/bin/env bash
# name: count-lines
# description: counts the lines of the files it is given
# inputs: file paths
# tags: demo, files
total=0
for f in "$@"; do n=$(wc -l < "$f"); echo "$f: $n lines"; total=$((total + n)); done
echo "counted $total lines in $# files"
`;

const CHECK_JSON = `#!/usr/bin/env python3
# name: check-json
# description: validates a JSON file and reports its top-level keys
# tags: demo, json
import json, sys
try:
    with open(sys.argv[1]) as f:
        data = json.load(f)
except json.JSONDecodeError as e:
    sys.exit(f"{sys.argv[1]}: invalid JSON: {e}")
print(f"{sys.argv[1]} is valid JSON with keys: {', '.join(sorted(data))}")
`;

function main(): void {
  buildIfNeeded();
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-demo-'));
  try {
    sparkq(ws, ['init', '--project', 'demo']);
    fs.mkdirSync(path.join(ws, 'scripts'));
    fs.writeFileSync(path.join(ws, 'scripts', 'count-lines.sh'), COUNT_LINES);
    fs.writeFileSync(path.join(ws, 'scripts', 'check-json.py'), CHECK_JSON);
    fs.writeFileSync(path.join(ws, 'api.json'), JSON.stringify({ openapi: '3.1.0', info: {}, paths: {} }, null, 2) + '\n');
    fs.writeFileSync(path.join(ws, 'broken.json'), '{"openapi": "3.1.0",\n');
    sparkq(ws, ['scripts']);
    sparkq(ws, ['session', 'create', 'api-v2', '--description', 'demo session']);
    sparkq(ws, ['queue', 'create', 'Checks', '--session', 'api-v2', '--instructions', 'Run each check; report counts.']);
    sparkq(ws, ['enqueue', 'run-bash', '--queue', 'Checks', '--prompt', 'count-lines api.json scripts/check-json.py']);
    sparkq(ws, ['enqueue', 'run-python', '--queue', 'Checks', '--prompt', 'check-json api.json']);
    sparkq(ws, ['enqueue', 'run-python', '--queue', 'Checks', '--prompt', 'check-json broken.json']);

    console.log('\n# a worker drains the queue: each task runs with its tool, argv only, and its outcome is recorded');
    sparkq(ws, ['run', '--queue', 'Checks', '--worker', 'demo-worker']);
    const failed = JSON.parse(sparkq(ws, ['tasks', '--status', 'failed', '--json'], { quiet: true })) as { id: string }[];
    if (failed[0]) sparkq(ws, ['requeue', failed[0].id]);

    console.log('\n# a manual task, worked by hand (a person or a chat agent): claim, then complete with a summary');
    sparkq(ws, ['queue', 'create', 'Review', '--session', 'api-v2', '--instructions', 'Read-only review.']);
    sparkq(ws, ['enqueue', 'llm-haiku', '--queue', 'Review', '--prompt', 'list the endpoints in api.json']);
    const claim = JSON.parse(sparkq(ws, ['claim', '--queue', 'Review', '--worker', 'a-person', '--json'], { quiet: true })) as ClaimJson;
    sparkq(ws, ['complete', claim.task.id, '--summary', 'api.json has no endpoints yet', '--data', '{"endpoints":0}'], { env: { SPARKQ_LEASE: claim.lease } });
    console.log();
    sparkq(ws, ['tasks']);
    console.log();
    sparkq(ws, ['status']);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  const err = e as { stderr?: string; message?: string };
  console.error(err.stderr?.trim() || `error: ${err.message ?? String(e)}`);
  process.exitCode = 1;
}
