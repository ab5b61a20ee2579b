import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A model server on 127.0.0.1 (random port) for the real `codex` and `claude` binaries: the OpenAI Responses API
 * (POST /v1/responses) and the Anthropic Messages API (HEAD /, POST /v1/messages), both streaming SSE.
 *
 * Each API has a script: a list of replies, one per model request, taken in order. A request with nothing scripted
 * gets an HTTP 500 that says so, which fails the test visibly. Every request is recorded with its parsed body.
 */

export type MockReply =
  /** The model answers with text and ends its turn. */
  | { kind: 'text'; text: string; usage?: MockUsage }
  /** The model calls the agent's shell tool (codex: exec_command; claude: Bash) with this command line. */
  | { kind: 'shell'; command: string; usage?: MockUsage }
  /** The model creates a file with the agent's edit tool (codex: an apply_patch "Add File"; claude: Write). */
  | { kind: 'write-file'; path: string; content: string; usage?: MockUsage }
  /**
   * The model looks up MCP tools, which both agents hide behind a tool search until then: codex gets a client-side
   * `tool_search_call` for `query` (whole words matched against the tools' names and descriptions); claude calls its
   * ToolSearch tool with `select:mcp__SERVER__TOOL,…` for each of `tools`.
   */
  | { kind: 'tool-search'; server: string; tools: string[]; query: string; usage?: MockUsage }
  /**
   * The model calls tool `tool` of MCP server `server` with these arguments (codex: a function call in namespace
   * mcp__SERVER; claude: the tool mcp__SERVER__TOOL). Both need the tool-search step first.
   */
  | { kind: 'mcp-call'; server: string; tool: string; arguments: Record<string, unknown>; usage?: MockUsage }
  /** An HTTP error status with an API error body. */
  | { kind: 'http-error'; status: number; message: string }
  /**
   * A usage/rate-limit answer as the API sends it: an HTTP status (default 429) with this JSON body and headers
   * (e.g. retry-after), for either API.
   */
  | { kind: 'rate-limit'; status?: number; body: object; headers?: Record<string, string> }
  /** The model never answers: the stream opens and stays silent (until the server closes). */
  | { kind: 'hang' }
  /**
   * A 200 stream that fails midway (Responses: response.failed with error.code `code`, default server_error;
   * Messages: an `error` event with error.type `code`, default overloaded_error).
   */
  | { kind: 'stream-error'; message: string; code?: string };

/** A reply that answers with the API's own shapes (all but hang and the verbatim rate-limit body). */
type Answer = Exclude<MockReply, { kind: 'hang' } | { kind: 'rate-limit' }>;

export interface MockUsage {
  inputTokens: number;
  cachedInputTokens?: number;
  outputTokens: number;
  reasoningTokens?: number;
}

export type MockApi = 'responses' | 'messages';

export interface RecordedRequest {
  api: MockApi | 'other';
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, or null (HEAD, empty or not JSON). */
  body: unknown;
}

const DEFAULT_USAGE: MockUsage = { inputTokens: 120, cachedInputTokens: 20, outputTokens: 9, reasoningTokens: 3 };

export class MockModelServer {
  readonly requests: RecordedRequest[] = [];
  private readonly scripts: Record<MockApi, MockReply[]> = { responses: [], messages: [] };
  private seq = 0;

  private readonly server: http.Server;
  private listeningPort = 0;

  private constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    // Agents keep connections alive; closing the server must not wait for them.
    this.server.keepAliveTimeout = 1_000;
  }

  static async start(): Promise<MockModelServer> {
    const self = new MockModelServer();
    await new Promise<void>((resolve, reject) => {
      self.server.once('error', reject);
      self.server.listen(0, '127.0.0.1', () => resolve());
    });
    self.listeningPort = (self.server.address() as AddressInfo).port;
    return self;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** Base URL for codex's provider (`…/v1`). */
  get openaiBaseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** Base URL for claude (ANTHROPIC_BASE_URL; it appends /v1/messages itself). */
  get anthropicBaseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Appends replies to an API's script. */
  script(api: MockApi, ...replies: MockReply[]): void {
    this.scripts[api].push(...replies);
  }

  /** Replies scripted but not yet requested. */
  pending(api: MockApi): number {
    return this.scripts[api].length;
  }

  /** The recorded model requests (the ones that asked for a completion) of one API. */
  modelRequests(api: MockApi): RecordedRequest[] {
    return this.requests.filter((r) => r.api === api && r.method === 'POST');
  }

  reset(): void {
    this.requests.length = 0;
    this.scripts.responses.length = 0;
    this.scripts.messages.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = null;
      }
      const url = req.url ?? '/';
      const pathname = url.split('?')[0] ?? url;
      const api: RecordedRequest['api'] = pathname === '/v1/responses' ? 'responses' : pathname === '/v1/messages' ? 'messages' : 'other';
      this.requests.push({ api, method: req.method ?? '', url, headers: req.headers, body });
      if (api === 'other' || req.method !== 'POST') {
        // claude probes the base URL with HEAD / before its first request.
        res.writeHead(req.method === 'HEAD' ? 200 : 404, { 'content-type': 'application/json' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: { message: `mock: no route ${req.method ?? ''} ${url}` } }));
        return;
      }
      const reply = this.scripts[api].shift() ?? { kind: 'http-error', status: 500, message: `mock: no reply scripted for request ${this.modelRequests(api).length} to ${pathname}` };
      if (reply.kind === 'rate-limit') {
        res.writeHead(reply.status ?? 429, { 'content-type': 'application/json', ...reply.headers });
        res.end(JSON.stringify(reply.body));
        return;
      }
      if (reply.kind === 'hang') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        return;
      }
      if (api === 'responses') this.replyResponses(reply, res);
      else this.replyMessages(reply, body, res);
    });
  }

  private id(prefix: string): string {
    return `${prefix}_mock${++this.seq}`;
  }

  // ---- OpenAI Responses API ----------------------------------------------------------------------------------

  private replyResponses(reply: Answer, res: http.ServerResponse): void {
    if (reply.kind === 'http-error') {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: reply.message, type: 'server_error', code: null, param: null } }));
      return;
    }
    const responseId = this.id('resp');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    send('response.created', { response: { id: responseId, status: 'in_progress' } });
    if (reply.kind === 'stream-error') {
      send('response.failed', { response: { id: responseId, status: 'failed', error: { code: reply.code ?? 'server_error', message: reply.message } } });
      res.end();
      return;
    }
    if (reply.kind === 'text') {
      const itemId = this.id('msg');
      const item = { type: 'message', id: itemId, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: reply.text, annotations: [] }] };
      send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
      send('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: reply.text });
      send('response.output_item.done', { output_index: 0, item });
    } else if (reply.kind === 'write-file') {
      const added = reply.content.replace(/\n$/, '').split('\n').map((l) => `+${l}\n`).join('');
      const patch = `*** Begin Patch\n*** Add File: ${reply.path}\n${added}*** End Patch\n`;
      const item = { type: 'custom_tool_call', id: this.id('ctc'), call_id: this.id('call'), name: 'apply_patch', input: patch, status: 'completed' };
      send('response.output_item.added', { output_index: 0, item: { ...item, input: '', status: 'in_progress' } });
      send('response.output_item.done', { output_index: 0, item });
    } else if (reply.kind === 'tool-search') {
      const item = { type: 'tool_search_call', id: this.id('tsc'), call_id: this.id('call'), execution: 'client', arguments: { query: reply.query, limit: 8 }, status: 'completed' };
      send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress' } });
      send('response.output_item.done', { output_index: 0, item });
    } else {
      const [namespace, name, args] = reply.kind === 'mcp-call' ? [`mcp__${reply.server}`, reply.tool, reply.arguments] : [undefined, 'exec_command', { cmd: reply.command }];
      const item = {
        type: 'function_call',
        id: this.id('fc'),
        call_id: this.id('call'),
        ...(namespace !== undefined ? { namespace } : {}),
        name,
        arguments: JSON.stringify(args),
        status: 'completed',
      };
      send('response.output_item.added', { output_index: 0, item: { ...item, arguments: '', status: 'in_progress' } });
      send('response.output_item.done', { output_index: 0, item });
    }
    const u = reply.usage ?? DEFAULT_USAGE;
    send('response.completed', {
      response: {
        id: responseId,
        status: 'completed',
        usage: {
          input_tokens: u.inputTokens,
          input_tokens_details: { cached_tokens: u.cachedInputTokens ?? 0 },
          output_tokens: u.outputTokens,
          output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
          total_tokens: u.inputTokens + u.outputTokens,
        },
      },
    });
    res.end();
  }

  // ---- Anthropic Messages API --------------------------------------------------------------------------------

  private replyMessages(reply: Answer, body: unknown, res: http.ServerResponse): void {
    if (reply.kind === 'http-error') {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: reply.status >= 500 ? 'api_error' : 'invalid_request_error', message: reply.message } }));
      return;
    }
    const model = typeof body === 'object' && body !== null && typeof (body as { model?: unknown }).model === 'string' ? (body as { model: string }).model : 'claude-mock';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    const u = reply.kind === 'stream-error' ? DEFAULT_USAGE : (reply.usage ?? DEFAULT_USAGE);
    send('message_start', {
      message: {
        id: this.id('msg'),
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: u.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: u.cachedInputTokens ?? 0, output_tokens: 1 },
      },
    });
    if (reply.kind === 'stream-error') {
      send('error', { error: { type: reply.code ?? 'overloaded_error', message: reply.message } });
      res.end();
      return;
    }
    let stopReason: string;
    if (reply.kind === 'text') {
      send('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      send('content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply.text } });
      send('content_block_stop', { index: 0 });
      stopReason = 'end_turn';
    } else {
      const [name, input]: [string, Record<string, unknown>] =
        reply.kind === 'shell'
          ? ['Bash', { command: reply.command, description: 'Run the command' }]
          : reply.kind === 'write-file'
            ? ['Write', { file_path: reply.path, content: reply.content }]
            : reply.kind === 'tool-search'
              ? ['ToolSearch', { query: `select:${reply.tools.map((t) => `mcp__${reply.server}__${t}`).join(',')}` }]
              : [`mcp__${reply.server}__${reply.tool}`, reply.arguments];
      send('content_block_start', { index: 0, content_block: { type: 'tool_use', id: this.id('toolu'), name, input: {} } });
      send('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(input) } });
      send('content_block_stop', { index: 0 });
      stopReason = 'tool_use';
    }
    send('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: u.outputTokens } });
    send('message_stop', {});
    res.end();
  }
}
