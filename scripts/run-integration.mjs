// `npm run test:integration`: the integration suite inside a real VS Code extension host (code-server) driven by
// headless Chromium. Runs the suites in windows of their own: `main` on an empty folder, `host-a` + `host-b` at the same
// time on one folder, `team` on a folder whose queue is a throwaway PostgreSQL (test/support/postgres.ts, started only
// for that suite and while code-server starts), and `restricted` in a second code-server with workspace trust on.
// Exits non-zero on failure.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT, build, ensureVscodeHost, launchChromium, runTestsInPage, startCodeServer, workbenchUrl } from './lib/vscodeHost.mjs';

export const TESTS_BUNDLE = path.join(ROOT, 'out', 'integration', 'index.js');

export async function buildTests() {
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'test', 'integration', 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: TESTS_BUNDLE,
    external: ['vscode', 'mocha'],
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}

/** test/support/postgres.ts for this script: the same throwaway server the unit tests use. */
const POSTGRES_BUNDLE = path.join(ROOT, 'out', 'integration', 'postgres.cjs');

async function loadPostgresSupport() {
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'test', 'support', 'postgres.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: POSTGRES_BUNDLE,
    external: ['pg-native'],
    logLevel: 'warning',
  });
  return createRequire(import.meta.url)(POSTGRES_BUNDLE);
}

/** The password of the team suite's URL: the test server trusts every login, so it only has to stay out of files and logs. */
const TEAM_PASSWORD = 'itest-S3cret-pw';

const CLI = path.join(ROOT, 'dist', 'cli.js');
/** A test-only extension installed beside SparkQ: it reads VS Code's own list of MCP servers (test/integration/mcpProvider.tests.ts). */
const MCP_PROBE = path.join(ROOT, 'test', 'integration', 'mcpProbe');
function sparkq(cwd, ...args) {
  return execFileSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

/**
 * Two machines' workspaces on one team database: `laptop` (the VS Code window) and `buildbox` (the other machine, whose
 * `sparkq` processes the suite starts), each with its own sparkq.yml and scripts. `sparkq init --postgres` leaves the
 * URL out of sparkq.yml since it has a password, so the window must be told it (Connect to Team Database).
 */
function seedTeamWorkspaces(root, url) {
  const withPassword = url.replace('sparkq@', `sparkq:${TEAM_PASSWORD}@`);
  const dirs = {};
  for (const name of ['laptop', 'buildbox']) {
    const dir = path.join(root, 'team', name);
    fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
    sparkq(dir, 'init', '--project', 'team', '--postgres', withPassword);
    dirs[name] = dir;
  }
  // For Restricted Mode: a folder whose sparkq.yml names the database itself (no password, so it is written).
  dirs.untrusted = path.join(root, 'team', 'untrusted');
  fs.mkdirSync(dirs.untrusted, { recursive: true });
  sparkq(dirs.untrusted, 'init', '--project', 'team', '--postgres', url);
  return { ...dirs, url: withPassword };
}

/** Workspaces for the suites, each in its own folder under `root`. */
function seedWorkspaces(root) {
  const main = path.join(root, 'main');
  fs.mkdirSync(main, { recursive: true });

  const two = path.join(root, 'two');
  fs.mkdirSync(two, { recursive: true });
  sparkq(two, 'init', '--project', 'two');
  sparkq(two, 'session', 'create', 'shared-work');
  sparkq(two, 'queue', 'create', 'Shared', '--session', 'shared-work');

  const restricted = path.join(root, 'restricted');
  fs.mkdirSync(restricted, { recursive: true });
  sparkq(restricted, 'init', '--project', 'restricted');
  sparkq(restricted, 'session', 'create', 'seeded');
  sparkq(restricted, 'queue', 'create', 'Back End', '--session', 'seeded');
  sparkq(restricted, 'enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'done before');
  sparkq(restricted, 'enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'still waiting');
  const claim = JSON.parse(sparkq(restricted, 'claim', '--queue', 'Back End', '--json'));
  sparkq(restricted, 'complete', claim.task.id, '--summary', 'finished', '--lease', claim.lease);
  return { main, two, restricted };
}

/** The workbench's own chatter (offline gallery, caches, sockets) that says nothing about SparkQ. */
const NOISE = /workbench\.js|Unable to read file|ENOTFOUND|Creating a socket|Resolv(ing|ed) connection token|reconnection-grace|Updating additional builtin|Service Worker|AgentHost|AccountPolicyGate|\[lifecycle\]/;

/** Mocha's output on the console with the suite's tag; everything, noise included, in `<root>/<tag>.log`. */
function prefixed(tag, root) {
  const file = path.join(root, `${tag}.log`);
  let inNoise = false;
  return (text) => {
    fs.appendFileSync(file, text + '\n');
    for (const line of text.replace(/\n$/, '').split('\n')) {
      // A noisy message's stack frames are noise too.
      if (NOISE.test(line)) inNoise = true;
      else if (!/^\s+at /.test(line)) inNoise = false;
      if (!inNoise) process.stdout.write(`[${tag}] ${line}\n`);
    }
  };
}

async function main() {
  const started = Date.now();
  ensureVscodeHost();
  build();
  await buildTests();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-it-'));
  const ws = seedWorkspaces(root);
  const results = [];
  const chromium = await launchChromium();
  let trusted;
  let untrusted;
  try {
    const starting = startCodeServer({ dataDir: path.join(root, 'cs-trusted'), extensions: [MCP_PROBE] });
    // PostgreSQL only for the team suite, started while code-server starts (its initdb blocks this process, not that one).
    let team;
    try {
      if (wanted('team')) team = await startTeamDatabase(root);
    } finally {
      trusted = await starting;
    }
    console.log(`== code-server (trusted) at ${trusted.url}; workspaces in ${root}`);
    const page = (folder, suite, tag) =>
      runTestsInPage(chromium.browser, workbenchUrl(trusted.url, folder, { tests: TESTS_BUNDLE, env: { SPARKQ_TEST_SUITE: suite } }), { onLog: prefixed(tag, root) });

    if (wanted('main')) {
      console.log('== suite main');
      results.push(['main', await page(ws.main, 'main', 'main')]);
    }

    if (wanted('two-hosts')) {
      console.log('== suites host-a + host-b (two windows on one folder)');
      const a = page(ws.two, 'host-a', 'host-a');
      const deadline = Date.now() + 180_000;
      while (!fs.existsSync(path.join(ws.two, '.itest', 'a-ready.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      const b = page(ws.two, 'host-b', 'host-b');
      const [codeA, codeB] = await Promise.all([a, b]);
      results.push(['host-a', codeA], ['host-b', codeB]);
    }

    if (team) {
      console.log('== suite team (a window on one machine of a team database; the other machine is `sparkq` processes)');
      const env = { SPARKQ_TEST_SUITE: 'team', SPARKQ_IT_DATABASE_URL: team.url, SPARKQ_IT_OTHER_MACHINE: team.buildbox, SPARKQ_IT_PASSWORD: TEAM_PASSWORD };
      results.push(['team', await runTestsInPage(chromium.browser, workbenchUrl(trusted.url, team.laptop, { tests: TESTS_BUNDLE, env }), { onLog: prefixed('team', root) })]);
    }
    await trusted.stop();
    if (wanted('restricted') || team) {
      untrusted = await startCodeServer({ dataDir: path.join(root, 'cs-untrusted'), trust: false, extensions: [MCP_PROBE] });
      console.log(`== code-server with workspace trust on, at ${untrusted.url}`);
    }
    if (team) {
      // Before the restricted suite, which ends by trusting its folder.
      console.log('== suite team-restricted (a team folder in Restricted Mode)');
      const env = { SPARKQ_TEST_SUITE: 'team-restricted', SPARKQ_IT_DATABASE_URL: team.url };
      results.push(['team-restricted', await runTestsInPage(chromium.browser, workbenchUrl(untrusted.url, team.untrusted, { tests: TESTS_BUNDLE, env }), { onLog: prefixed('team-restricted', root) })]);
    }
    if (wanted('restricted')) {
      console.log('== suite restricted');
      const r = await runTestsInPage(
        chromium.browser,
        workbenchUrl(untrusted.url, ws.restricted, { tests: TESTS_BUNDLE, env: { SPARKQ_TEST_SUITE: 'restricted' } }),
        { onLog: prefixed('restricted', root), onPage: (p) => void grantTrustInEditor(p) },
      );
      results.push(['restricted', r]);
    }
  } finally {
    await chromium.close();
    await trusted?.stop();
    await untrusted?.stop();
  }
  finish(results, root, started);
}

/**
 * Presses Trust in the Workspace Trust editor once the restricted suite's last test opens it, as a person would (the
 * smoke-test driver refuses modal dialogs, so an extension's trust request cannot be answered).
 */
async function grantTrustInEditor(page) {
  const trust = page.locator('.workspace-trust-editor .workspace-trust-buttons .monaco-button').filter({ hasText: /^Trust/ }).first();
  try {
    await trust.click({ timeout: 10 * 60_000 });
  } catch {
    // The suite ended without opening it (a test failed before, or it was not run): nothing to press.
  }
}

/** The team suite's database and workspaces; null (said loudly) where no PostgreSQL can start and CI does not require one. */
async function startTeamDatabase(root) {
  let pg;
  try {
    pg = await (await loadPostgresSupport()).postgres();
  } catch (e) {
    if (process.env.SPARKQ_REQUIRE_POSTGRES) throw e;
    console.warn(`\n  !!! SKIPPED: the team suite needs a PostgreSQL server and none could be started: ${e instanceof Error ? e.message : e}\n`);
    return null;
  }
  const team = seedTeamWorkspaces(root, await pg.createDatabase('itest'));
  console.log(`== PostgreSQL for the team suite: socket in ${pg.socketDir}`);
  return team;
}

/** SPARKQ_SUITES=main,two-hosts,team,restricted picks suites (default: all). */
function wanted(name) {
  const list = process.env.SPARKQ_SUITES;
  return !list || list.split(',').includes(name);
}

function finish(results, root, started) {
  const failed = results.filter(([, code]) => code !== 0);
  console.log(`\n== integration: ${results.map(([n, c]) => `${n} ${c === 0 ? 'passed' : `FAILED (${c})`}`).join(', ')} in ${Math.round((Date.now() - started) / 1000)} s`);
  if (failed.length > 0) {
    console.log(`logs and workspaces kept in ${root}`);
    process.exit(1);
  }
  if (!process.env.SPARKQ_KEEP) fs.rmSync(root, { recursive: true, force: true });
  // playwright-core and esbuild can keep handles open after their work is done.
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
