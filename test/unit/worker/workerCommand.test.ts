import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALLOW_BYPASS_SETTING, workerShellArgs } from '../../../src/extension/workerCommand';

/*
 * What a worker terminal opened by the extension runs. Agent bypass modes come only from the user's machine-scoped
 * setting, and only in a trusted workspace.
 */

const base = { cliPath: '/ext/dist/cli.js', queueId: 'que_abc', worker: 'vscode-1a2b3c' };
const RUN = ['/ext/dist/cli.js', 'run', '--queue', 'que_abc', '--watch', '--worker', 'vscode-1a2b3c'];

describe('worker terminal command', () => {
  it('passes --allow-bypass only when the setting is on and the workspace is trusted', () => {
    assert.deepEqual(workerShellArgs({ ...base, allowBypass: false, trusted: true }), RUN, 'the default: no bypass');
    assert.deepEqual(workerShellArgs({ ...base, allowBypass: true, trusted: true }), [...RUN, '--allow-bypass']);
    assert.deepEqual(workerShellArgs({ ...base, allowBypass: true, trusted: false }), RUN, 'ignored in Restricted Mode');
    assert.deepEqual(workerShellArgs({ ...base, allowBypass: false, trusted: false }), RUN);
  });

  it('reads a setting that package.json contributes: boolean, off by default, machine scope, restricted when untrusted', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      contributes: { configuration: { properties: Record<string, { type: string; default: unknown; scope?: string; description: string }> } };
      capabilities: { untrustedWorkspaces: { restrictedConfigurations?: string[] } };
    };
    const setting = pkg.contributes.configuration.properties[ALLOW_BYPASS_SETTING];
    assert.ok(setting, `package.json contributes ${ALLOW_BYPASS_SETTING}`);
    assert.deepEqual({ type: setting.type, default: setting.default, scope: setting.scope }, { type: 'boolean', default: false, scope: 'machine' });
    assert.match(setting.description, /Restricted Mode/);
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations?.includes(ALLOW_BYPASS_SETTING), 'workspace values are ignored in Restricted Mode');
  });
});
