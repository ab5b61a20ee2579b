import type { Task } from '../../src/core/model';
import type { QueueService } from '../../src/core/queue/service';
import type { ScriptEntry } from '../../src/core/scriptIndex';
import type { DashboardDeps } from '../../src/extension/dashboard/dashboardController';
import type { QueueApi } from '../../src/api/contract';
import type { HostMessage, ToolInfo } from '../../src/shared/dashboardProtocol';

/** The QueueApi the dashboard uses, over an in-process QueueService (what the owner does, without IPC). */
export function serviceApi(q: QueueService, scripts: ScriptEntry[] = []): QueueApi {
  const api: Partial<QueueApi> = {
    status: () => Promise.resolve({ owner: { pid: process.pid, generation: 1, role: 'test', since: new Date().toISOString() }, project: 'test', counts: q.counts(), queues: q.listQueues(), workers: [] }),
    listSessions: (o) => Promise.resolve(q.listSessions(o)),
    getSession: (r) => Promise.resolve(q.getSession(r)),
    listQueues: (o) => Promise.resolve(q.listQueues(o)),
    getQueue: (r) => Promise.resolve(q.getQueue(r)),
    listTasks: (i) => Promise.resolve(q.listTasks(i)),
    getTask: (id) => Promise.resolve().then(() => q.getTask(id)),
    enqueue: (i) => q.enqueue(i),
    complete: (i) => q.complete(i),
    fail: (i) => q.fail(i),
    requeue: (id) => q.requeue(id),
    requeueFailed: (i) => q.requeueFailed(i),
    pauseQueue: (i) => q.pauseQueue(i),
    resumeQueue: (ref) => q.resumeQueue(ref),
    report: (i) => Promise.resolve().then(() => q.report(i)),
    scripts: (query) => Promise.resolve(scripts.filter((s) => !query || s.name.includes(query))),
    onChange: (l) => q.onChange(l),
  };
  return api as QueueApi;
}

export const TEST_TOOLS: ToolInfo[] = [
  { name: 'llm-codex', kind: 'codex', script: false, timeoutSeconds: 1800 },
  { name: 'run-bash', kind: 'script', script: true, timeoutSeconds: 600 },
];

export function script(name: string, description = ''): ScriptEntry {
  return { name, path: `/ws/scripts/${name}`, relativePath: name, dir: 'scripts', description, inputs: '', outputs: '', tags: [], mtimeMs: 0, size: 0 };
}

/** Deps over a QueueApi, with the commands the dashboard runs done directly on the api (as the real ones do). */
export function depsFor(api: QueueApi, post: (m: HostMessage) => void, opts: { readOnly?: boolean; tools?: ToolInfo[]; commands?: string[] } = {}): DashboardDeps {
  return {
    reader: () => Promise.resolve(api),
    api: (action) => (opts.readOnly ? Promise.reject(new Error(`read-only: cannot ${action}`)) : Promise.resolve(api)),
    isReadOnly: () => opts.readOnly ?? false,
    problem: () => null,
    tools: () => opts.tools ?? TEST_TOOLS,
    post,
    runCommand: async (command, args): Promise<Task | { started: boolean } | undefined> => {
      opts.commands?.push(`${command} ${JSON.stringify(args)}`);
      const a = args as { task: string; summary?: string; error?: string; queue?: string };
      try {
        if (command === 'requeue') return await api.requeue(a.task);
        if (command === 'complete') return await api.complete({ task: a.task, summary: a.summary ?? '' });
        if (command === 'fail') return await api.fail({ task: a.task, error: a.error ?? '' });
        return { started: true };
      } catch {
        return undefined; // the command wrapper shows the error and resolves undefined
      }
    },
    openLog: () => Promise.resolve(),
  };
}
