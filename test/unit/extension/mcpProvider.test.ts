import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { Log } from '../../../src/extension/log';
import { MCP_PROVIDER_ID, type McpApi, mcpApiOf, registerMcpProvider, usesSparkq } from '../../../src/extension/mcpProvider';
import type { CliRuntime } from '../../../src/extension/workerTerminals';

/*
 * The MCP server definition provider against a fake of VS Code's API: what it offers in a trusted and an untrusted
 * workspace, when it tells VS Code to ask again, and what it does where the API is missing. The real VS Code host is
 * the integration tier's.
 */

const runtime: CliRuntime = { execPath: '/editor/code', env: { ELECTRON_RUN_AS_NODE: '1' }, cliPath: '/ext/dist/cli.js' };

class FakeDefinition {
  constructor(
    readonly label: string,
    readonly command: string,
    readonly args?: string[],
    readonly env?: Record<string, string | number | null>,
    readonly version?: string,
  ) {}
}

type Provider = Parameters<McpApi['registerMcpServerDefinitionProvider']>[1];

function fakeVscode() {
  const registered: { id: string; provider: Provider; disposed: boolean }[] = [];
  const module = {
    lm: {
      registerMcpServerDefinitionProvider(id: string, provider: Provider) {
        const r = { id, provider, disposed: false };
        registered.push(r);
        return { dispose: () => (r.disposed = true) };
      },
    },
    McpStdioServerDefinition: FakeDefinition,
  };
  return { module, registered };
}

/** A vscode.Event fired by hand. */
function fakeEvent(): { event: vscode.Event<unknown>; fire(): void } {
  const listeners = new Set<(e: unknown) => unknown>();
  const event = ((l: (e: unknown) => unknown) => {
    listeners.add(l);
    return { dispose: () => listeners.delete(l) };
  }) as vscode.Event<unknown>;
  return { event, fire: () => [...listeners].forEach((l) => l(undefined)) };
}

function memoryLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  const log: Log & { lines: string[] } = {
    lines,
    trace: (m) => lines.push(m),
    info: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    error: (m) => lines.push(m),
    area: () => log,
  };
  return log;
}

describe('the MCP server definition provider', () => {
  it('is contributed in package.json under the id it registers, for trusted workspaces only', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      contributes: { mcpServerDefinitionProviders: { id: string; label: string; when?: string }[] };
      activationEvents: string[];
    };
    assert.deepEqual(pkg.contributes.mcpServerDefinitionProviders, [{ id: MCP_PROVIDER_ID, label: 'SparkQ', when: 'isWorkspaceTrusted' }]);
    // VS Code 1.101+ generates `onMcpCollection:sparkq.mcp` from the contribution; listing it too only earns a warning.
    assert.equal(pkg.activationEvents.filter((e) => e.startsWith('onMcpCollection:')).length, 0);
  });

  it('offers `sparkq mcp` on the workspace with the editor runtime in a trusted workspace, nothing in Restricted Mode', () => {
    const { module, registered } = fakeVscode();
    let trusted = false;
    let folder: string | undefined = '/work/project';
    const trust = fakeEvent();
    const state = fakeEvent();
    const log = memoryLog();
    const disposable = registerMcpProvider(mcpApiOf(module), { runtime, folder: () => folder, isTrusted: () => trusted, changes: [trust.event, state.event], version: '1.2.3', log, usesSparkq: () => true });
    assert.equal(registered.length, 1);
    assert.equal(registered[0]!.id, MCP_PROVIDER_ID);
    const provider = registered[0]!.provider;
    assert.deepEqual(provider.provideMcpServerDefinitions(), [], 'Restricted Mode: no server');

    let asked = 0;
    provider.onDidChangeMcpServerDefinitions(() => asked++);
    state.fire();
    assert.equal(asked, 0, 'nothing changed: VS Code is not asked again');
    trusted = true;
    trust.fire();
    assert.equal(asked, 1, 'trust granted: VS Code asks again');
    assert.deepEqual(provider.provideMcpServerDefinitions(), [
      new FakeDefinition('SparkQ', '/editor/code', ['/ext/dist/cli.js', 'mcp', '--workspace', '/work/project'], { ELECTRON_RUN_AS_NODE: '1' }, '1.2.3'),
    ]);
    folder = undefined;
    state.fire();
    assert.equal(asked, 2);
    assert.deepEqual(provider.provideMcpServerDefinitions(), [], 'no folder: no server');

    disposable.dispose();
    assert.equal(registered[0]!.disposed, true);
    folder = '/elsewhere';
    state.fire();
    assert.equal(asked, 2, 'after dispose nothing is fired');
  });

  it('offers nothing in a trusted folder that does not use SparkQ, and the server once it is set up', () => {
    const { module, registered } = fakeVscode();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-mcp-provider-'));
    try {
      const state = fakeEvent();
      const d = registerMcpProvider(mcpApiOf(module), { runtime, folder: () => dir, isTrusted: () => true, changes: [state.event], version: '1', log: memoryLog() });
      const provider = registered[0]!.provider;
      // Agent mode activates SparkQ in any trusted workspace; `sparkq mcp` there would make a queue in the project.
      assert.deepEqual(provider.provideMcpServerDefinitions(), []);
      let asked = 0;
      provider.onDidChangeMcpServerDefinitions(() => asked++);
      fs.writeFileSync(path.join(dir, 'sparkq.yml'), 'project: p\n');
      state.fire(); // the connection's state changes after `Set up SparkQ`
      assert.equal(asked, 1);
      assert.equal(provider.provideMcpServerDefinitions().length, 1);
      fs.rmSync(path.join(dir, 'sparkq.yml'));
      assert.equal(usesSparkq(dir), false);
      fs.mkdirSync(path.join(dir, '.sparkq'));
      assert.equal(usesSparkq(dir), true, 'a .sparkq folder alone is a queue');
      d.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('where VS Code lacks the API, registers nothing and says so once in the log', () => {
    for (const module of [{}, { lm: {} }, { lm: { registerMcpServerDefinitionProvider: () => undefined } }, undefined]) {
      assert.equal(mcpApiOf(module), null, JSON.stringify(module));
    }
    const log = memoryLog();
    const d = registerMcpProvider(mcpApiOf({ lm: {} }), { runtime, folder: () => '/w', isTrusted: () => true, changes: [], version: '1', log });
    assert.equal(log.lines.length, 1);
    assert.match(log.lines[0]!, /no MCP server provider API .*1\.101.*sparkq mcp --print-config vscode/);
    d.dispose();
  });
});
