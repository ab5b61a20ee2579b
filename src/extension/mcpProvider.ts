import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { Log } from './log';
import type { CliRuntime } from './workerTerminals';

/*
 * VS Code's agent mode gets the workspace's `sparkq mcp` with no setup: an MCP server definition provider (VS Code
 * 1.101+) that starts the bundled CLI with the editor's own runtime, as the worker terminals do. Only in a trusted
 * workspace: the contribution's `when: isWorkspaceTrusted` keeps VS Code from taking in the collection at all in
 * Restricted Mode, and the provider itself offers nothing there (for hosts that ignore `when`); both let the server in
 * once trust is granted, with no reload. VS Code activates SparkQ for the collection by itself (`onMcpCollection:`,
 * generated from the contribution), which it does in any trusted workspace when agent mode gathers its servers: so the
 * server is offered only where the folder uses SparkQ (sparkq.yml or .sparkq/, what SparkQ activates on otherwise).
 * Elsewhere `sparkq mcp` would make a queue in the user's project the moment agent mode started it; after `Set up
 * SparkQ` it is offered at once. Where the running VS Code lacks the API, SparkQ works as before and says so once
 * in its log. No `vscode` import here (the API is passed in), so the logic is tested in plain Node; the real host is
 * test/integration/mcpProvider.tests.ts.
 */

/** The id of `contributes.mcpServerDefinitionProviders` in package.json. */
export const MCP_PROVIDER_ID = 'sparkq.mcp';

type McpServerDefinitionCtor = new (label: string, command: string, args?: string[], env?: Record<string, string | number | null>, version?: string) => object;

interface McpServerDefinitionProvider {
  onDidChangeMcpServerDefinitions: (listener: () => void) => vscode.Disposable;
  provideMcpServerDefinitions(): object[];
}

/** The part of VS Code's MCP API used here, typed locally: @types/vscode follows `engines.vscode` (^1.95), which lacks it. */
export interface McpApi {
  registerMcpServerDefinitionProvider(id: string, provider: McpServerDefinitionProvider): vscode.Disposable;
  McpStdioServerDefinition: McpServerDefinitionCtor;
}

/** The MCP API of the running VS Code (the `vscode` module), or null when it has none. */
export function mcpApiOf(vscodeModule: unknown): McpApi | null {
  const m = vscodeModule as { lm?: { registerMcpServerDefinitionProvider?: unknown }; McpStdioServerDefinition?: unknown } | undefined;
  const register = m?.lm?.registerMcpServerDefinitionProvider;
  const ctor = m?.McpStdioServerDefinition;
  if (typeof register !== 'function' || typeof ctor !== 'function') return null;
  return {
    registerMcpServerDefinitionProvider: (id, provider) => (register as McpApi['registerMcpServerDefinitionProvider']).call(m!.lm, id, provider),
    McpStdioServerDefinition: ctor as McpServerDefinitionCtor,
  };
}

export interface McpServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** Whether `folder` uses SparkQ: it has sparkq.yml or a .sparkq folder (the workspaceContains activation events). */
export function usesSparkq(folder: string): boolean {
  return fs.existsSync(path.join(folder, 'sparkq.yml')) || fs.existsSync(path.join(folder, '.sparkq'));
}

/**
 * What VS Code runs for the workspace `folder`; null when nothing should run (no folder, not trusted, or a folder that
 * does not use SparkQ).
 */
export function mcpServerCommand(runtime: CliRuntime, folder: string | undefined, trusted: boolean, uses: (folder: string) => boolean = usesSparkq): McpServerCommand | null {
  if (!trusted || folder === undefined || !uses(folder)) return null;
  return { command: runtime.execPath, args: [runtime.cliPath, 'mcp', '--workspace', folder], env: { ...runtime.env } };
}

export interface McpProviderDeps {
  runtime: CliRuntime;
  /** The workspace folder SparkQ serves, if any. */
  folder: () => string | undefined;
  isTrusted: () => boolean;
  /** Events after which the folder, the trust or whether the folder uses SparkQ may have changed. */
  changes: readonly vscode.Event<unknown>[];
  /** Whether a folder uses SparkQ; `usesSparkq` (the files) unless a test says otherwise. */
  usesSparkq?: (folder: string) => boolean;
  /** The extension's version: VS Code offers to refresh the tools when it changes. */
  version: string;
  log: Log;
}

/** Registers the provider when the API exists; otherwise logs once that agent mode does not get the tools. */
export function registerMcpProvider(api: McpApi | null, deps: McpProviderDeps): vscode.Disposable {
  if (api === null) {
    deps.log.info('this VS Code has no MCP server provider API (it needs 1.101 or later): agent mode does not get SparkQ\'s tools; register them by hand with `sparkq mcp --print-config vscode`');
    return { dispose: () => undefined };
  }
  const listeners = new Set<() => void>();
  const uses = deps.usesSparkq ?? usesSparkq;
  const key = () => {
    const folder = deps.folder();
    return `${deps.isTrusted()}|${folder ?? ''}|${folder !== undefined && uses(folder)}`;
  };
  let last = key();
  const subscriptions = deps.changes.map((event) =>
    event(() => {
      const now = key();
      if (now === last) return;
      last = now;
      for (const l of [...listeners]) l();
    }),
  );
  const provider: McpServerDefinitionProvider = {
    onDidChangeMcpServerDefinitions: (listener) => {
      listeners.add(listener);
      return { dispose: () => listeners.delete(listener) };
    },
    provideMcpServerDefinitions: () => {
      const cmd = mcpServerCommand(deps.runtime, deps.folder(), deps.isTrusted(), uses);
      return cmd === null ? [] : [new api.McpStdioServerDefinition('SparkQ', cmd.command, cmd.args, cmd.env, deps.version)];
    },
  };
  const registration = api.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider);
  deps.log.info(`MCP server provider registered (offered to agent mode in a trusted workspace that uses SparkQ; now ${provider.provideMcpServerDefinitions().length > 0 ? 'offered' : 'not offered'})`);
  return {
    dispose: () => {
      for (const s of subscriptions) s.dispose();
      listeners.clear();
      registration.dispose();
    },
  };
}
