import type { ChangeEvent, QueueApi } from '../api/contract';
import type { QueueHandle } from '../client/open';
import { isSparkqError } from '../core/errors';
import type { Queue, TaskDetail } from '../core/model';
import { type McpServer, ProtocolError, ProtocolErrorCode, type ReadResourceResult, ResourceNotFoundError, ResourceTemplate } from './sdk';

/*
 * Queues and tasks as MCP resources, so that an orchestrator can subscribe to what it waits for and be told when it
 * changed instead of asking every few seconds:
 *
 *   sparkq://queue/<name or id>   the queue as get/list_queues give it (with its task counts)
 *   sparkq://task/<id>            the task as get_task gives it (with its attempts, summary and result data)
 *
 * Both read as JSON (application/json), the same shape as the tools' structuredContent. resources/list gives the active
 * queues; tasks are many, so they are a template only. A subscribed URI gets notifications/resources/updated when the
 * queue's change events touch it: a task by its own events, a queue by its own, its tasks' and its session's. The
 * notice says "read it again", nothing more; a burst of events (a plan applied, a batch finishing) is one notice per
 * URI per NOTIFY_DELAY_MS. A queue name is resolved to its queue when read, and once when subscribed. When the handle
 * moves to another owner, the events of the gap are lost: every subscribed URI is then told to read again.
 */

export const QUEUE_URI_TEMPLATE = 'sparkq://queue/{queue}';
export const TASK_URI_TEMPLATE = 'sparkq://task/{task}';

export const queueUri = (ref: string): string => `sparkq://queue/${encodeURIComponent(ref)}`;
export const taskUri = (id: string): string => `sparkq://task/${encodeURIComponent(id)}`;

/** Events that land within this long of the first one are one notice per URI: short next to an agent's turn. */
export const NOTIFY_DELAY_MS = 100;

const JSON_TYPE = 'application/json';
const URI_HINT = 'SparkQ resources are sparkq://queue/<name or id> and sparkq://task/<id>';

interface ResourceRef {
  kind: 'queue' | 'task';
  ref: string;
}

/** The queue or task a URI names; null for anything else. */
export function parseResourceUri(uri: string): ResourceRef | null {
  const m = /^sparkq:\/\/(queue|task)\/([^/?#]+)$/.exec(uri);
  if (m === null) return null;
  try {
    const ref = decodeURIComponent(m[2]!);
    return ref.trim() === '' ? null : { kind: m[1] as ResourceRef['kind'], ref };
  } catch {
    return null;
  }
}

export interface ResourceOptions {
  describeError: (e: unknown) => string;
  onUnexpected?: (what: string, e: unknown) => void;
}

/** A queue error as the protocol error a client can act on: a missing queue or task is a resource not found. */
function protocolError(uri: string, e: unknown, opts: ResourceOptions): Error {
  const message = opts.describeError(e);
  if (isSparkqError(e, 'not-found')) return new ResourceNotFoundError(uri, message);
  if (isSparkqError(e)) return new ProtocolError(ProtocolErrorCode.InvalidParams, message, { uri });
  opts.onUnexpected?.(`resource ${uri}`, e);
  return new ProtocolError(ProtocolErrorCode.InternalError, message, { uri });
}

type Found = { kind: 'queue'; value: Queue } | { kind: 'task'; value: TaskDetail };

async function lookUp(q: QueueApi, uri: string, opts: ResourceOptions): Promise<Found> {
  const ref = parseResourceUri(uri);
  if (ref === null) throw new ResourceNotFoundError(uri, `no such resource: ${uri} (${URI_HINT})`);
  try {
    return ref.kind === 'queue' ? { kind: 'queue', value: await q.getQueue(ref.ref) } : { kind: 'task', value: await q.getTask(ref.ref) };
  } catch (e) {
    throw protocolError(uri, e, opts);
  }
}

/** The queue as watched here: the workspace's handle also says when it switched owners (a bare QueueApi never does). */
export type WatchedQueue = QueueApi & Partial<Pick<QueueHandle, 'onReconnect'>>;

type Watched = { kind: 'queue'; queueId: string; sessionId: string } | { kind: 'task'; taskId: string };

function touches(w: Watched, e: ChangeEvent): boolean {
  if (w.kind === 'task') return e.kind === 'task' && e.id === w.taskId;
  switch (e.kind) {
    case 'queue':
      return e.id === w.queueId;
    case 'task':
      return e.queueId === w.queueId;
    case 'session':
      return e.id === w.sessionId;
  }
}

/**
 * The client's subscriptions, by the URI it subscribed with (the notice names that same URI). The queue's change
 * events are listened to only while something is subscribed.
 */
export class ResourceSubscriptions {
  private readonly watched = new Map<string, Watched>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;

  constructor(
    private readonly q: WatchedQueue,
    private readonly notify: (uri: string) => Promise<void>,
    private readonly delayMs: number,
  ) {}

  /** Watches what `uri` names from now on; throws (as `resources/read` would) when it names nothing. */
  async subscribe(uri: string, opts: ResourceOptions): Promise<void> {
    // Listening before the look-up: a change between the look-up and the answer is not lost.
    this.stopListening ??= this.listen();
    try {
      const found = await lookUp(this.q, uri, opts);
      this.watched.set(uri, found.kind === 'queue' ? { kind: 'queue', queueId: found.value.id, sessionId: found.value.sessionId } : { kind: 'task', taskId: found.value.id });
    } finally {
      if (this.watched.size === 0) this.stop();
    }
  }

  unsubscribe(uri: string): void {
    this.watched.delete(uri);
    this.dirty.delete(uri);
    if (this.watched.size === 0) this.stop();
  }

  /** Tells every subscriber to read again: changes may have happened that no event reported. */
  private changedUnseen(): void {
    for (const uri of this.watched.keys()) this.dirty.add(uri);
    this.schedule();
  }

  /** Forgets every subscription (the client went away). */
  close(): void {
    this.watched.clear();
    this.dirty.clear();
    this.stop();
  }

  private listen(): () => void {
    const stopEvents = this.q.onChange((events) => this.onEvents(events));
    const stopReconnect = this.q.onReconnect?.(() => this.changedUnseen());
    return () => {
      stopEvents();
      stopReconnect?.();
    };
  }

  private stop(): void {
    this.stopListening?.();
    this.stopListening = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onEvents(events: ChangeEvent[]): void {
    for (const [uri, w] of this.watched) {
      if (events.some((e) => touches(w, e))) this.dirty.add(uri);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.dirty.size === 0 || this.timer !== undefined) return;
    // Not reset by later events: a steady stream of changes still gets its notices every delayMs.
    this.timer = setTimeout(() => this.flush(), this.delayMs);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = undefined;
    const uris = [...this.dirty];
    this.dirty.clear();
    // A notice that cannot be sent (the client is going away) has nobody to tell.
    for (const uri of uris) void this.notify(uri).catch(() => undefined);
  }
}

/**
 * Registers the queue and task resources on `server` and answers resources/subscribe and resources/unsubscribe.
 * The server must have been created with `capabilities.resources` set (see createMcpServer). Returns the
 * subscriptions, to be closed with the connection.
 */
export function registerResources(server: McpServer, q: WatchedQueue, opts: ResourceOptions): ResourceSubscriptions {
  const read = async (uri: URL): Promise<ReadResourceResult> => {
    const href = uri.toString();
    const { value } = await lookUp(q, href, opts);
    return { contents: [{ uri: href, mimeType: JSON_TYPE, text: JSON.stringify(value) }] };
  };
  server.registerResource(
    'queue',
    new ResourceTemplate(QUEUE_URI_TEMPLATE, {
      list: async () => {
        try {
          const queues = await q.listQueues();
          return {
            resources: queues.map((x) => ({ uri: queueUri(x.name), name: x.name, title: `Queue ${x.name} (session ${x.session})`, mimeType: JSON_TYPE })),
          };
        } catch (e) {
          throw protocolError('sparkq://queue/', e, opts);
        }
      },
    }),
    { title: 'Queue', description: 'A queue with its task counts, by name or id; subscribe to hear when its tasks change.', mimeType: JSON_TYPE },
    read,
  );
  server.registerResource(
    'task',
    new ResourceTemplate(TASK_URI_TEMPLATE, { list: undefined }),
    { title: 'Task', description: 'A task with its attempts, summary and result data; subscribe to hear when it changes.', mimeType: JSON_TYPE },
    read,
  );
  const subscriptions = new ResourceSubscriptions(q, (uri) => server.server.sendResourceUpdated({ uri }), NOTIFY_DELAY_MS);
  server.server.setRequestHandler('resources/subscribe', async (request) => {
    await subscriptions.subscribe(request.params.uri, opts);
    return {};
  });
  server.server.setRequestHandler('resources/unsubscribe', (request) => {
    subscriptions.unsubscribe(request.params.uri);
    return {};
  });
  return subscriptions;
}
