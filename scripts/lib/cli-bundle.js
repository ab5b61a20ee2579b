'use strict';
/*
 * How the `sparkq` CLI is bundled: one definition for scripts/build.mjs (what ships), the tests (test/support/cli.ts)
 * and the benches, so that they all run what users run.
 *
 *   dist/cli-app.js   the whole program (src/cli/app.ts), CommonJS; each command group and the owner's code are
 *                     evaluated only when a command needs them (commands/index.ts, client/open.ts)
 *   dist/cli.js       the entry (src/cli/main.ts), a few KiB: answers --version and help from a table made here by
 *                     running the real program, else loads cli-app.js through V8's code cache (src/cli/codeCache.ts)
 *   dist/cli-mcp-sdk.js  the MCP SDK (src/mcp/sdk.ts), loaded by `sparkq mcp` only: bundled apart so that the
 *                     program every other command loads stays as small as it was
 *   dist/sql-wasm.wasm  sql.js's WebAssembly, beside them
 */
const { build: esbuild, buildSync } = require('esbuild');
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const APP = 'cli-app.js';

function common({ production, logLevel }) {
  return {
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: !production,
    minify: production,
    legalComments: 'linked',
    logLevel: logLevel ?? 'info',
  };
}

/**
 * zod's error messages in English only. zod bundles 60-odd locales (two fifths of the CLI's bundle) that nothing here
 * uses: it configures English itself and SparkQ never switches (`z.locales` keeps `en`). Smaller to read and to
 * compile where no code cache helps (the first command, a read-only install).
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({ contents: 'export { default as en } from "./en.js";', loader: 'js' }));
  },
};

const MCP_SDK = 'cli-mcp-sdk.js';

/** In the program, src/mcp/sdk.ts is the separate bundle beside it, required at run time (see MCP_SDK). */
const mcpSdkApart = {
  name: 'mcp-sdk-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/sdk$/ }, (args) =>
      path.dirname(args.importer) === path.join(ROOT, 'src', 'mcp') ? { path: `./${MCP_SDK}`, external: true } : undefined,
    );
  },
};

/** esbuild options for dist/cli-app.js. */
function appBuildOptions(opts) {
  return { ...common(opts), entryPoints: { 'cli-app': path.join(ROOT, 'src', 'cli', 'app.ts') }, outdir: opts.outdir, plugins: [zodEnglishOnly, mcpSdkApart] };
}

/** esbuild options for dist/cli-mcp-sdk.js. */
function mcpSdkBuildOptions(opts) {
  return { ...common(opts), entryPoints: { 'cli-mcp-sdk': path.join(ROOT, 'src', 'mcp', 'sdk.ts') }, outdir: opts.outdir, plugins: [zodEnglishOnly] };
}

/**
 * Once cli-app.js is built: its build id (the code cache is only ever used for this exact file) and the table of
 * answers known by heart (run in a child process with pipes, so help is wrapped as for output that is not a
 * terminal), then dist/cli.js with both inside, executable, and the WebAssembly beside it. Returns cli.js's path.
 */
function finishCli(opts) {
  const appFile = path.resolve(opts.outdir, APP);
  const app = fs.readFileSync(appFile);
  const build = createHash('sha256').update(app).digest('hex').slice(0, 16);
  const ascii = !app.some((b) => b > 0x7f);
  const script = `require(${JSON.stringify(appFile)}).fastPathTable().then((t) => process.stdout.write(JSON.stringify(t)))`;
  // Kept as JSON text inside cli.js: parsed only for a command line that may be in it.
  const fastPaths = JSON.stringify(JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20 })));
  buildSync({
    ...common(opts),
    entryPoints: { cli: path.join(ROOT, 'src', 'cli', 'main.ts') },
    outdir: opts.outdir,
    banner: { js: '#!/usr/bin/env node' },
    define: { SPARKQ_CLI_BUILD: JSON.stringify({ app: APP, build, ascii, fastPaths }) },
  });
  const cli = path.join(opts.outdir, 'cli.js');
  fs.chmodSync(cli, 0o755);
  fs.copyFileSync(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), path.join(opts.outdir, 'sql-wasm.wasm'));
  return cli;
}

/** The whole CLI build. */
async function bundleCli(opts) {
  fs.mkdirSync(opts.outdir, { recursive: true });
  await Promise.all([esbuild(appBuildOptions(opts)), esbuild(mcpSdkBuildOptions(opts))]);
  return finishCli(opts);
}

/** The whole CLI build, synchronously (for test fixtures): esbuild takes plugins only asynchronously, so in a child. */
function bundleCliSync(opts) {
  execFileSync(process.execPath, [__filename, JSON.stringify(opts)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  return path.join(opts.outdir, 'cli.js');
}

module.exports = { APP, MCP_SDK, appBuildOptions, mcpSdkBuildOptions, finishCli, bundleCli, bundleCliSync };

if (require.main === module) {
  bundleCli(JSON.parse(process.argv[2])).catch((e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
