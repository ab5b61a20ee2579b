// The same integration suite under @vscode/test-electron, for machines that can download VS Code (this one cannot:
// use `npm run test:integration`, which runs it in code-server). Runs the `main` and `restricted`-free suites.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { buildTests, TESTS_BUNDLE } from './run-integration.mjs';
import { ROOT, build } from './lib/vscodeHost.mjs';

build();
await buildTests();
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-it-electron-'));
try {
  await runTests({
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: TESTS_BUNDLE,
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
    extensionTestsEnv: { SPARKQ_TEST_SUITE: 'main' },
  });
} finally {
  fs.rmSync(workspace, { recursive: true, force: true });
}
