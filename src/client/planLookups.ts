import * as path from 'node:path';
import { patternLoader } from '../core/patterns';
import type { Plan, PlanChecks } from '../core/plan';
import type { QueueApi } from '../api/contract';
import { loadWorkspaceConfig } from '../owner/configWatcher';

/*
 * What applying a plan file needs to know from the queue before it sends anything, shared by `sparkq plan apply` and
 * the `SparkQ: Apply Plan` command: the checks the parser makes against the workspace, the task ids a plan waits on
 * that do not exist, and which of its names an earlier apply already enqueued.
 */

/** The parser's checks: sparkq.yml's tools, the active queues (by name or id) and the prompt patterns folder. */
export async function planChecks(api: Pick<QueueApi, 'listQueues'>, workspaceDir: string): Promise<PlanChecks> {
  const config = loadWorkspaceConfig(workspaceDir);
  const queues = await api.listQueues({ includeEnded: false });
  const known = new Set(queues.flatMap((q) => [q.name, q.id]));
  return { tools: Object.keys(config.tools), queueExists: (ref) => known.has(ref), patterns: patternLoader(path.resolve(workspaceDir, config.patternsDir)) };
}

/** The existing tasks (tsk_… ids in after:) the plan waits on that the queue does not have. */
export async function missingTaskIds(api: Pick<QueueApi, 'getTask'>, plan: Plan): Promise<string[]> {
  const keys = new Set(plan.tasks.map((t) => t.key));
  const missing: string[] = [];
  for (const id of new Set(plan.tasks.flatMap((t) => t.after.filter((a) => !keys.has(a))))) {
    if (!(await api.getTask(id).then(() => true, () => false))) missing.push(id);
  }
  return missing;
}

/** The names of a plan already enqueued by an earlier apply of the same plan id, with their (newest) task ids. */
export async function enqueuedPlanKeys(api: Pick<QueueApi, 'listTasks'>, planId: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let before: string | undefined;
  for (;;) {
    let page;
    try {
      page = await api.listTasks({ plan: planId, limit: 1000, ...(before !== undefined ? { before } : {}) });
    } catch (e) {
      if (e instanceof Error && /no plan /.test(e.message)) return found; // never applied
      throw e;
    }
    for (const t of page.tasks) if (t.planKey !== null && t.validates === null && !found.has(t.planKey)) found.set(t.planKey, t.id);
    if (page.next === null) return found;
    before = page.next;
  }
}
