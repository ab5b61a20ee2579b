import * as fs from 'node:fs';
import { Option } from 'commander';
import { version } from '../../../package.json';
import { openQueue } from '../../client/open';
import { MCP_HOSTS, type McpHost, hostConfig, serverCommand } from '../../mcp/hostConfig';
import type * as McpServerModule from '../../mcp/server';
import { action } from '../context';
import { describeError } from '../errors';
import type { CommandGroup } from '../registry';

interface McpOptions {
  printConfig?: McpHost;
}

/** `sparkq mcp`: the queue as Model Context Protocol tools for agents, over stdio; `--print-config HOST` registers it. */
export const mcpCommand: CommandGroup = {
  register(program, io) {
    program
      .command('mcp')
      .description('serve the queue to agents as MCP tools over stdin/stdout (Claude Code, Codex, VS Code); --print-config shows how to register it')
      .addOption(new Option('--print-config <host>', 'print the registration for claude (--mcp-config JSON), codex (config.toml) or vscode (.vscode/mcp.json), then exit').choices(MCP_HOSTS))
      .action(
        action<McpOptions>(io, async (ctx, _args, opts) => {
          const workspace = ctx.workspace();
          if (opts.printConfig !== undefined) {
            // This very sparkq, with links resolved: the host starts it from its own folder and environment.
            const script = fs.realpathSync(process.argv[1]!);
            ctx.out.line(hostConfig(opts.printConfig, serverCommand(process.execPath, script, workspace)).trimEnd());
            return;
          }
          // The SDK is loaded by this command only, not by `sparkq --help`, which loads every command group.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { createMcpServer, serveStdio } = require('../../mcp/server') as typeof McpServerModule;
          const q = await openQueue(workspace, { role: 'mcp', client: 'sparkq mcp', syncOn: 'event-loop' });
          const server = createMcpServer({
            queue: q,
            workspace,
            version,
            describeError,
            // stdout is the protocol: anything else goes to stderr, which hosts keep as the server's log.
            onUnexpected: (tool, e) => io.stderr.write(`[sparkq mcp] ${tool}: ${describeError(e)}\n`),
          });
          let unsubscribe!: () => void;
          const stopped = new Promise<void>((resolve) => {
            unsubscribe = io.onStopSignal(() => resolve());
          });
          try {
            // Until the host closes stdin (or stops this process); the queue is then handed over if this process owns it.
            await serveStdio(server, stopped);
          } finally {
            unsubscribe();
            await q.close();
          }
        }),
      );
  },
};
