/**
 * The integration suite's entry point, with the runner contract of @vscode/test-electron: the extension host loads
 * this module and awaits `run()`, which fails when any test fails. The same bundle runs in code-server
 * (scripts/run-integration.mjs) and under @vscode/test-electron (scripts/run-integration-electron.mjs).
 *
 * SPARKQ_TEST_SUITE picks what runs: `main` (activation, commands, views, terminals, config), `restricted`
 * (Restricted Mode), `host-a` / `host-b` (two windows on the same folder, run at the same time), `team` (a folder whose
 * queue is a team database, with another "machine" beside it).
 */
import Mocha from 'mocha';
import { registerMainSuite } from './main.suite';
import { registerRestrictedSuite } from './restricted.suite';
import { registerTeamRestrictedSuite, registerTeamSuite } from './team.suite';
import { registerHostASuite, registerHostBSuite } from './twoHosts.suite';

const SUITES: Record<string, () => void> = {
  main: registerMainSuite,
  restricted: registerRestrictedSuite,
  'host-a': registerHostASuite,
  'host-b': registerHostBSuite,
  team: registerTeamSuite,
  'team-restricted': registerTeamRestrictedSuite,
};

export function run(): Promise<void> {
  const name = process.env['SPARKQ_TEST_SUITE'] ?? 'main';
  const register = SUITES[name];
  if (!register) return Promise.reject(new Error(`unknown SPARKQ_TEST_SUITE ${name}; expected one of ${Object.keys(SUITES).join(', ')}`));
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'spec' });
  const grep = process.env['SPARKQ_TEST_GREP'];
  if (grep) mocha.grep(grep);
  // The suites are bundled with this file, so they register through mocha's globals rather than files to require.
  mocha.suite.emit('pre-require', globalThis, `${name}.suite`, mocha);
  register();
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} integration test(s) failed in suite ${name}`)) : resolve()));
  });
}
