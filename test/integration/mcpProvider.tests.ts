import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import * as vscode from 'vscode';
import { EXTENSION_ID, waitFor } from './helpers';

/**
 * SparkQ's MCP server definition provider as VS Code itself sees it. The test probe (test/integration/mcpProbe, loaded
 * beside SparkQ by scripts/run-integration.mjs) reads the workbench's list of MCP server definitions, every
 * provider's, through the proposed `vscode.lm.mcpServerDefinitions` that SparkQ itself must not declare.
 */

export const PROBE_ID = 'sparkq-test.mcp-probe';

export interface McpDefinitionSeen {
  kind: 'stdio' | 'http';
  label: string;
  command?: string;
  args?: string[];
  env?: Record<string, string | number | null>;
  cwd?: string;
  version?: string;
}

export interface McpProbe {
  /** The label of the probe's own definition: listed once VS Code took in every collection registered before it. */
  marker: string;
  definitions(): McpDefinitionSeen[];
  onDidChange: vscode.Event<void>;
}

export async function activateProbe(): Promise<McpProbe> {
  const ext = vscode.extensions.getExtension<McpProbe>(PROBE_ID);
  assert.ok(ext, `the test probe ${PROBE_ID} is not loaded (scripts/run-integration.mjs loads it beside SparkQ)`);
  return ext.activate();
}

/** VS Code's definitions once it took in SparkQ's collection (SparkQ is active, so its provider registered before the probe's). */
export async function definitionsAfterSparkq(probe: McpProbe): Promise<McpDefinitionSeen[]> {
  return waitFor("the probe's own definition in VS Code's list", () => {
    const all = probe.definitions();
    return all.some((d) => d.label === probe.marker) ? all : undefined;
  });
}

/** What the definition must be: `sparkq mcp` on this folder, run by the extension host's own runtime. */
export function expectedDefinition(folder: string): McpDefinitionSeen {
  const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
  return {
    kind: 'stdio',
    label: 'SparkQ',
    command: process.execPath,
    args: [path.join(ext.extensionPath, 'dist', 'cli.js'), 'mcp', '--workspace', folder],
    env: typeof process.versions['electron'] === 'string' ? { ELECTRON_RUN_AS_NODE: '1' } : {},
    version: (ext.packageJSON as { version: string }).version,
  };
}

/** SparkQ's definitions among all, as plain JSON (no keys whose value is undefined). */
export const sparkqDefinitions = (all: McpDefinitionSeen[]): McpDefinitionSeen[] => JSON.parse(JSON.stringify(all.filter((d) => d.label === 'SparkQ'))) as McpDefinitionSeen[];

/** A stdio definition started the way VS Code starts one (its env over the extension host's, in `cwd`), with the SDK's client. */
export async function startMcpDefinition(def: McpDefinitionSeen, cwd: string): Promise<{ call<T>(tool: string, args?: Record<string, unknown>): Promise<T>; close(): Promise<void> }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...def.env })) if (v !== undefined && v !== null) env[k] = String(v);
  const transport = new StdioClientTransport({ command: def.command!, args: def.args ?? [], cwd, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const client = new Client({ name: 'sparkq-integration', version: '0.0.0' });
  await client.connect(transport);
  return {
    async call<T>(tool: string, args: Record<string, unknown> = {}): Promise<T> {
      const r = await client.callTool({ name: tool, arguments: args });
      const text = ((r.content ?? []) as { text?: string }[]).map((c) => c.text ?? '').join('\n');
      assert.notEqual(r.isError, true, `${tool} failed: ${text}; server stderr: ${stderr}`);
      return r.structuredContent as T;
    },
    close: () => client.close(),
  };
}
