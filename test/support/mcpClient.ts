import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { type Cli, cliEnv, cliSandbox } from './cli';

/*
 * `sparkq mcp` driven by the SDK's own client over stdio, the way agent hosts start it: a child process of the bundled
 * CLI, the protocol on its stdin/stdout, its log on stderr.
 */

export interface McpSession {
  client: Client;
  /** What the server wrote to stderr so far. */
  stderr(): string;
  /** The server process's pid. */
  pid: number;
  close(): Promise<void>;
}

/** Starts `command args…` (as a host would from its registration) and connects the SDK client to it. */
export async function connectMcp(command: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<McpSession> {
  const env = Object.fromEntries(Object.entries(cliEnv(opts.env)).filter((e): e is [string, string] => e[1] !== undefined));
  const transport = new StdioClientTransport({ command, args, cwd: opts.cwd, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const client = new Client({ name: 'sparkq-test', version: '0.0.0' });
  await client.connect(transport);
  const pid = transport.pid;
  assert.ok(pid !== null, 'the server process started');
  return { client, stderr: () => stderr, pid, close: () => client.close() };
}

/** `sparkq mcp` of the sandbox's bundled CLI, in `cwd`. */
export function connectSparkqMcp(cli: Cli, opts: { cwd: string; env?: Record<string, string>; args?: string[] }): Promise<McpSession> {
  return connectMcp(process.execPath, [cli.bundle, 'mcp', ...(opts.args ?? [])], opts);
}

export interface ToolResult {
  isError: boolean;
  text: string;
  structured: Record<string, unknown>;
}

/** Calls a tool; its text content joined, its structured content, and whether it is an error result. */
export async function callTool(s: McpSession, name: string, args: Record<string, unknown> = {}, options: { signal?: AbortSignal; timeout?: number } = {}): Promise<ToolResult> {
  const r = await s.client.callTool({ name, arguments: args }, options);
  const content = (r.content ?? []) as { type: string; text?: string }[];
  return {
    isError: r.isError === true,
    text: content.map((c) => c.text ?? '').join('\n'),
    structured: (r.structuredContent ?? {}) as Record<string, unknown>,
  };
}

/** Calls a tool that must succeed; its structured content. */
export async function callOk<T = Record<string, unknown>>(s: McpSession, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await callTool(s, name, args);
  assert.equal(r.isError, false, `${name} ${JSON.stringify(args)} failed: ${r.text}`);
  assert.notEqual(r.text.trim(), '', `${name} has a text form`);
  return r.structured as T;
}

export interface ResourceUpdates {
  /** Every URI the server said was updated, in the order the notices came. */
  readonly uris: string[];
  /** Resolves once `uri` has been notified `count` times in all; rejects after `timeoutMs`, naming what did come. */
  until(uri: string, count?: number, timeoutMs?: number): Promise<void>;
}

/** Records the session's notifications/resources/updated from now on. */
export function resourceUpdates(s: McpSession): ResourceUpdates {
  const uris: string[] = [];
  const waiters = new Set<() => void>();
  s.client.setNotificationHandler('notifications/resources/updated', (n) => {
    uris.push(n.params.uri);
    for (const w of [...waiters]) w();
  });
  return {
    uris,
    until: (uri, count = 1, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (uris.filter((u) => u === uri).length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no update #${count} for ${uri} within ${timeoutMs} ms; updates so far: ${JSON.stringify(uris)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

/** Reads a resource that must be JSON; its parsed content. */
export async function readJson<T = Record<string, unknown>>(s: McpSession, uri: string): Promise<T> {
  const r = await s.client.readResource({ uri });
  assert.equal(r.contents.length, 1, `${uri}: one content`);
  const c = r.contents[0]!;
  assert.equal(c.mimeType, 'application/json');
  assert.ok('text' in c, `${uri}: a text content`);
  return JSON.parse(c.text) as T;
}

/**
 * For a describe block: the bundled CLI (cliSandbox), fresh workspaces with session s1 and the given queues, and MCP
 * sessions to them that are closed after each test.
 */
export function mcpSandbox(prefix: string, queues: readonly string[]) {
  const sb = cliSandbox(prefix);
  const sessions: McpSession[] = [];
  let n = 0;
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close().catch(() => undefined)));
  });
  return {
    sb,
    /** A fresh workspace with session s1 and the sandbox's queues in it. */
    workspace: async (): Promise<string> => {
      const ws = path.join(sb.dir, `ws${++n}`);
      fs.mkdirSync(ws);
      await sb.cli.ok(['init'], { cwd: ws });
      await sb.cli.ok(['session', 'create', 's1'], { cwd: ws });
      for (const q of queues) await sb.cli.ok(['queue', 'create', q, '--session', 's1'], { cwd: ws });
      return ws;
    },
    connect: async (ws: string): Promise<McpSession> => {
      const s = await connectSparkqMcp(sb.cli, { cwd: ws });
      sessions.push(s);
      return s;
    },
    /** A session the test connected itself, closed after the test like the others. */
    track: (s: McpSession): McpSession => {
      sessions.push(s);
      return s;
    },
  };
}
