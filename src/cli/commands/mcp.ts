import * as fs from 'node:fs';
import { Option } from 'commander';
import { version } from '../../../package.json';
import { openQueue } from '../../client/open';
import { MCP_HOSTS, type McpHost, hostConfig, serverCommand } from '../../mcp/hostConfig';
import type { McpScope } from '../../mcp/scope';
import type * as McpServerModule from '../../mcp/server';
import { action } from '../context';
import { CliError, describeError } from '../errors';
import type { CommandGroup } from '../registry';

interface McpOptions {
  printConfig?: McpHost;
  queue?: string;
  task?: string;
}

/**
 * The agent's own task, with its lease from the environment a worker gives its tool ($SPARKQ_LEASE beside
 * $SPARKQ_TASK_ID): a lease is never an argument, which any process on the machine can read.
 */
function ownTask(id: string, env: NodeJS.ProcessEnv): { id: string; lease?: string } {
  const lease = env['SPARKQ_LEASE'];
  const forTask = env['SPARKQ_TASK_ID'];
  return lease !== undefined && lease !== '' && (forTask === undefined || forTask === '' || forTask === id) ? { id, lease } : { id };
}

/** `sparkq mcp`: the queue as Model Context Protocol tools for agents, over stdio; `--print-config HOST` registers it. */
export const mcpCommand: CommandGroup = {
  register(program, io) {
    program
      .command('mcp')
      .description('serve the queue to agents as MCP tools over stdin/stdout (Claude Code, Codex, VS Code); --print-config shows how to register it')
      .addOption(new Option('--print-config <host>', 'print the registration for claude (--mcp-config JSON), codex (config.toml) or vscode (.vscode/mcp.json), then exit').choices(MCP_HOSTS))
      .option('--queue <queue>', 'limit every tool to this queue (name or id), with a smaller tool list: for an agent that works on one queue')
      .option('--task <task>', "with --queue: the agent's own task; heartbeat, complete and fail default to it and to the lease in $SPARKQ_LEASE")
      .action(
        action<McpOptions>(io, async (ctx, _args, opts) => {
          const workspace = ctx.workspace();
          if (opts.task !== undefined && opts.queue === undefined) throw new CliError('--task needs --queue: the task is one of that queue');
          if (opts.printConfig !== undefined) {
            if (opts.task !== undefined) throw new CliError('--task is for a server started for one task run, not for a registration');
            // This very sparkq, with links resolved: the host starts it from its own folder and environment.
            const script = fs.realpathSync(process.argv[1]!);
            const cmd = serverCommand(process.execPath, script, workspace);
            if (opts.queue !== undefined) cmd.args.push('--queue', opts.queue);
            ctx.out.line(hostConfig(opts.printConfig, cmd).trimEnd());
            return;
          }
          // The SDK is loaded by this command only, not by `sparkq --help`, which loads every command group.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { createMcpServer, resolveScope, serveStdio } = require('../../mcp/server') as typeof McpServerModule;
          const q = await openQueue(workspace, { role: 'mcp', client: 'sparkq mcp', syncOn: 'event-loop' });
          let scope: McpScope | undefined;
          try {
            scope = opts.queue !== undefined ? await resolveScope(q, opts.queue, opts.task !== undefined ? ownTask(opts.task, io.env) : undefined) : undefined;
          } catch (e) {
            await q.close();
            throw e;
          }
          const server = createMcpServer({
            queue: q,
            workspace,
            version,
            describeError,
            ...(scope !== undefined ? { scope } : {}),
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
