/**
 * `npm run demo`: SparkQ's main job through the real `sparkq` command line (dist/cli.js, rebuilt first when a source
 * is newer): a workspace in a temp folder, a session and a queue, a few tasks enqueued, a worker claiming and
 * finishing them (one fails and is requeued), then the task table and the status.
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

function main(): void {
  buildIfNeeded();
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-demo-'));
  try {
    sparkq(ws, ['init', '--project', 'demo']);
    sparkq(ws, ['session', 'create', 'api-v2', '--description', 'demo session']);
    sparkq(ws, ['queue', 'create', 'Back End', '--session', 'api-v2', '--instructions', 'Keep changes small; report file counts.']);
    const prompts: [string, string][] = [
      ['llm-codex', 'generate the users endpoint'],
      ['run-bash', 'run the migration script'],
      ['llm-codex', 'check the OpenAPI file'],
      ['llm-haiku', 'write the changelog entry'],
    ];
    for (const [tool, prompt] of prompts) sparkq(ws, ['enqueue', tool, '--queue', 'Back End', '--prompt', prompt]);

    console.log('\n# a worker claims each task and finishes it; the lease travels in SPARKQ_LEASE');
    let requeued = false;
    for (let i = 1; ; i++) {
      const claim = JSON.parse(sparkq(ws, ['claim', '--queue', 'Back End', '--worker', 'demo-worker', '--json'], { quiet: true })) as ClaimJson | null;
      if (claim === null) break;
      const env = { SPARKQ_LEASE: claim.lease };
      const id = claim.task.id;
      if (claim.task.prompt === 'run the migration script') {
        sparkq(ws, ['fail', id, '--error', 'exit 2: migrations/004.sql: syntax error'], { env });
        if (!requeued) sparkq(ws, ['requeue', id]); // once: the retry fails the same way
        requeued = true;
      } else {
        sparkq(ws, ['complete', id, '--summary', `done: ${claim.task.prompt ?? ''}`, '--data', JSON.stringify({ files: i })], { env });
      }
    }
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
