/*
 * `sparkq mcp --print-config HOST`: the registration of this workspace's server for each agent host, with the exact
 * command that starts it (this Node and this sparkq, absolute paths) and the workspace passed as an argument: Codex
 * does not pass its environment on to MCP servers, and an agent's working folder may be anywhere.
 */

export const MCP_HOSTS = ['claude', 'codex', 'vscode'] as const;
export type McpHost = (typeof MCP_HOSTS)[number];

/** The server's name in every host: agents see its tools as mcp__sparkq__NAME. */
export const SERVER_NAME = 'sparkq';

export interface ServerCommand {
  /** The Node binary. */
  command: string;
  /** The sparkq entry script, then `mcp --workspace DIR`. */
  args: string[];
}

export function serverCommand(node: string, sparkqScript: string, workspace: string): ServerCommand {
  return { command: node, args: [sparkqScript, 'mcp', '--workspace', workspace] };
}

/** A TOML basic string (JSON's escapes are TOML's, for the characters a path or command holds). */
const toml = (s: string) => JSON.stringify(s);
/** A word for a POSIX shell, quoted when it needs it. */
function sh(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function hostConfig(host: McpHost, cmd: ServerCommand): string {
  switch (host) {
    case 'claude':
      // For `claude --mcp-config FILE` (add --allowedTools mcp__sparkq in -p mode); the same entry fits .mcp.json.
      return `${JSON.stringify({ mcpServers: { [SERVER_NAME]: { type: 'stdio', command: cmd.command, args: cmd.args, env: {} } } }, null, 2)}\n`;
    case 'codex': {
      const c = (key: string, value: string) => `-c ${sh(`mcp_servers.${SERVER_NAME}.${key}=${value}`)}`;
      return [
        '# ~/.codex/config.toml (or pass each line as -c to codex exec, as below)',
        `[mcp_servers.${SERVER_NAME}]`,
        `command = ${toml(cmd.command)}`,
        `args = [${cmd.args.map(toml).join(', ')}]`,
        // codex exec refuses a tool call that needs approval when its approval policy is never.
        'default_tools_approval_mode = "approve"',
        '',
        `# codex exec ${c('command', toml(cmd.command))} ${c('args', `[${cmd.args.map(toml).join(',')}]`)} ${c('default_tools_approval_mode', '"approve"')} …`,
        '',
      ].join('\n');
    }
    case 'vscode':
      // .vscode/mcp.json.
      return `${JSON.stringify({ servers: { [SERVER_NAME]: { type: 'stdio', command: cmd.command, args: cmd.args } } }, null, 2)}\n`;
  }
}
