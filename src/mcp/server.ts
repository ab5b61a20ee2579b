import { McpServer, type StandardSchemaWithJSON, StdioServerTransport } from './sdk';
import type { QueueApi } from '../api/contract';
import { isSparkqError } from '../core/errors';
import { registerResources } from './resources';
import { type McpScope, scopedInstructions, scopedTools } from './scope';
import { TOOLS, type SparkqTool, annotationsOf, describeTool } from './tools';

export { resolveScope } from './scope';

/*
 * `sparkq mcp`: the queue's tools over the Model Context Protocol, on the official SDK (@modelcontextprotocol/server).
 * The server is a client of the workspace queue like any command: it holds one handle (the live owner over IPC, or
 * the queue's ownership when nobody else has it) and never opens the store on its own.
 */

export interface McpServerOptions {
  /** The queue, as a handle opened for this workspace. */
  queue: QueueApi;
  workspace: string;
  version: string;
  /** The text of an error as the CLI prints it after `error: `: a tool error says the same. */
  describeError: (e: unknown) => string;
  /** Called with an error that was not the caller's (a bug, a broken owner): for the server's log on stderr. */
  onUnexpected?: (tool: string, e: unknown) => void;
  /**
   * Limits the server to one queue (and an agent's own task): the smaller tool list of src/mcp/scope.ts, and no
   * resources (they would read every queue). For agents that run inside tasks.
   */
  scope?: McpScope;
}

/**
 * The tool's arguments as its handler gets them: any JSON object, unchecked here. The queue's own checks run in the
 * handler, so that a bad value gets the CLI's message ("invalid task: queue: say which queue …"), not the SDK's
 * rendering of a schema issue; the JSON Schema advertised is the one generated from those same checks.
 */
function advertised(t: SparkqTool): StandardSchemaWithJSON<Record<string, unknown>> {
  const schema = t.args.inputSchema;
  return {
    '~standard': {
      version: 1,
      vendor: 'sparkq',
      validate: (value: unknown) =>
        typeof value === 'object' && value !== null && !Array.isArray(value)
          ? { value: value as Record<string, unknown> }
          : { issues: [{ message: 'the arguments must be a JSON object' }] },
      jsonSchema: { input: () => schema, output: () => schema },
    },
  };
}

export function createMcpServer(opts: McpServerOptions): McpServer {
  const scope = opts.scope;
  const server = new McpServer(
    { name: 'sparkq', title: 'SparkQ', version: opts.version },
    {
      // Resources: queues and tasks to read and subscribe to (src/mcp/resources.ts). The list of queues is not
      // announced when it changes (listChanged false): the subscriptions are what an orchestrator waits on.
      capabilities: scope === undefined ? { tools: {}, resources: { subscribe: true, listChanged: false } } : { tools: {} },
      instructions:
        scope !== undefined
          ? scopedInstructions(scope)
          : 'SparkQ is the durable task queue of this workspace: sessions hold queues, queues hold tasks that workers claim and finish. ' +
            'Enqueue work (or apply a plan), then read results with list_tasks/get_task; a worker claims, then completes or fails with the lease it got.',
    },
  );
  for (const tool of scope !== undefined ? scopedTools(scope) : TOOLS) {
    server.registerTool(
      tool.name,
      { title: tool.title, description: describeTool(tool), inputSchema: advertised(tool), annotations: annotationsOf(tool) },
      async (args: Record<string, unknown>, ctx) => {
        try {
          const result = await tool.run(args, { q: opts.queue, workspace: opts.workspace, signal: ctx.mcpReq.signal });
          const { structured, text } = tool.present(result, args);
          return { content: [{ type: 'text', text }], structuredContent: structured };
        } catch (e) {
          if (!isSparkqError(e)) opts.onUnexpected?.(tool.name, e);
          const message = opts.describeError(e);
          return {
            content: [{ type: 'text', text: message }],
            structuredContent: { error: { code: isSparkqError(e) ? e.code : 'internal', message } },
            isError: true,
          };
        }
      },
    );
  }
  if (scope === undefined) {
    const subscriptions = registerResources(server, opts.queue, {
      describeError: opts.describeError,
      ...(opts.onUnexpected !== undefined ? { onUnexpected: opts.onUnexpected } : {}),
    });
    server.server.onclose = () => subscriptions.close();
  }
  return server;
}

/**
 * Serves `server` on this process's stdin and stdout until the host closes stdin (or `stop` resolves); closes it then.
 * The protocol needs the process's own streams, not the CLI's line writer.
 */
export async function serveStdio(server: McpServer, stop: Promise<void>): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    const before = server.server.onclose;
    server.server.onclose = () => {
      before?.();
      resolve();
    };
  });
  try {
    await server.connect(new StdioServerTransport(process.stdin, process.stdout));
    await Promise.race([closed, stop]);
  } finally {
    await server.close().catch(() => undefined);
  }
}
