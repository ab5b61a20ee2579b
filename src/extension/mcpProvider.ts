import type * as vscode from 'vscode';
import type { Log } from './log';
import type { CliRuntime } from './workerTerminals';

/*
 * VS Code's agent mode gets the workspace's `sparkq mcp` with no setup: an MCP server definition provider (VS Code
 * 1.101+) that starts the bundled CLI with the editor's own runtime, as the worker terminals do. Only in a trusted
 * workspace: the contribution's `when: isWorkspaceTrusted` keeps VS Code from taking in the collection at all in
 * Restricted Mode, and the provider itself offers nothing there (for hosts that ignore `when`); both let the server in
 * once trust is granted, with no reload. VS Code activates SparkQ for the collection by itself (`onMcpCollection:`,
 * generated from the contribution). Where the running VS Code lacks the API, SparkQ works as before and says so once
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

/** What VS Code runs for the workspace `folder`; null when nothing should run (no folder, or not trusted). */
export function mcpServerCommand(runtime: CliRuntime, folder: string | undefined, trusted: boolean): McpServerCommand | null {
  if (!trusted || folder === undefined) return null;
  return { command: runtime.execPath, args: [runtime.cliPath, 'mcp', '--workspace', folder], env: { ...runtime.env } };
}

export interface McpProviderDeps {
  runtime: CliRuntime;
  /** The workspace folder SparkQ serves, if any. */
  folder: () => string | undefined;
  isTrusted: () => boolean;
  /** Events after which the folder or the trust may have changed. */
  changes: readonly vscode.Event<unknown>[];
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
  const key = () => `${deps.isTrusted()}|${deps.folder() ?? ''}`;
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
      const cmd = mcpServerCommand(deps.runtime, deps.folder(), deps.isTrusted());
      return cmd === null ? [] : [new api.McpStdioServerDefinition('SparkQ', cmd.command, cmd.args, cmd.env, deps.version)];
    },
  };
  const registration = api.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider);
  deps.log.info(`MCP server provider registered (${deps.isTrusted() ? 'offered in this trusted workspace' : 'offered once the workspace is trusted'})`);
  return {
    dispose: () => {
      for (const s of subscriptions) s.dispose();
      listeners.clear();
      registration.dispose();
    },
  };
}
