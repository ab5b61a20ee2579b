// One esbuild script, three bundles: the extension host (cjs, `vscode` external), the `sparkq` CLI/worker (node: a small
// entry, dist/cli.js, and the program, dist/cli-app.js; see scripts/lib/cli-bundle.js), and the dashboard webview
// (browser). sql.js's WebAssembly binary ships beside the node bundles.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import cliBundle from './lib/cli-bundle.js';

const require = createRequire(import.meta.url);
const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
const outdir = 'dist';
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  legalComments: 'linked',
};

// The page's bundle carries no zod: the host validates what the page sends (src/extension/dashboard/dashboardSchemas.ts),
// and zod with its locales would be three quarters of the bundle and most of its start-up time.
const noZodInWebview = {
  name: 'no-zod-in-webview',
  setup(b) {
    b.onResolve({ filter: /^zod(\/|$)/ }, (args) => ({
      errors: [{ text: `${args.importer} imports zod into the webview bundle; its schemas belong to the host (src/extension/dashboard/)` }],
    }));
  },
};

const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension/extension.ts' },
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outdir,
    external: ['vscode'],
  },
  {
    ...common,
    // dist/webview/ is the panel's only localResourceRoot: dashboard.js, which carries its stylesheet as text (adopted as
    // a constructed stylesheet, so the page has no render-blocking <link> to fetch before the bundle can run).
    entryPoints: { dashboard: 'webview/index.js' },
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outdir: join(outdir, 'webview'),
    // Minified even in development: parse time is part of how fast the panel shows its first page.
    minify: true,
    loader: { '.css': 'text' },
    plugins: [noZodInWebview],
  },
];

const wasm = join(dirname(require.resolve('sql.js')), 'sql-wasm.wasm');
copyFileSync(wasm, join(outdir, 'sql-wasm.wasm'));

// sparkq.yml's JSON Schema, generated from the config's own zod schema (package.json's yamlValidation points here).
async function writeConfigSchema() {
  const result = await esbuild.build({
    entryPoints: ['src/core/config.ts'],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', result.outputFiles[0].text)(mod, mod.exports, require);
  const schema = { ...mod.exports.configJsonSchema(), title: 'sparkq.yml' };
  writeFileSync(join(outdir, 'sparkq.schema.json'), JSON.stringify(schema, null, 2) + '\n');
}
await writeConfigSchema();

// The CLI: the program, then (once it is built) the entry with its table of answers known by heart.
const cli = { outdir, production };
const cliApp = cliBundle.appBuildOptions(cli);

if (watch) {
  const rebuildEntry = { name: 'cli-entry', setup: (b) => b.onEnd((r) => void (r.errors.length === 0 && cliBundle.finishCli(cli))) };
  const contexts = await Promise.all([...builds, cliBundle.mcpSdkBuildOptions(cli), { ...cliApp, plugins: [...cliApp.plugins, rebuildEntry] }].map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all([...builds.map((b) => esbuild.build(b)), esbuild.build(cliBundle.mcpSdkBuildOptions(cli)), esbuild.build(cliApp).then(() => cliBundle.finishCli(cli))]);
}
