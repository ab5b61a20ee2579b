/*
 * What an agent's workflow pays (issue 14 §4), as one phase of `npm run bench`: what one CLI call costs against a bare
 * `node -e 0` (and 8 agents at once with no owner against a live one), a worker draining trivial script tasks against
 * a bare bash loop, and the dashboard's first page of a 100k-task queue. Each part is measured by its own
 * module (which also runs alone); a part that cannot run (no Chromium) is reported, not fatal.
 */
import { type CliCostResult, cliCostTargets, measureCliCost, renderCliCost } from '../cli';
import { type DashboardBenchResult, describeDashboard, measureDashboardFirstPage } from '../dashboard';
import { type DrainResult, drainTargets, measureDrain, renderDrain } from '../drain';
import type { Target } from './results';

export interface WorkflowPlan {
  cliRuns: number;
  cliRounds: number;
  /** One agent making all 80 enqueues in a row with no owner, for comparison (0: skipped). */
  cliSerialRounds: number;
  drainTasks: number;
  drainRuns: number;
  dashboardRuns: number;
}

export type Measured<T> = T | { error: string };

export interface WorkflowResults {
  cli: Measured<CliCostResult>;
  drain: Measured<DrainResult>;
  dashboard: Measured<DashboardBenchResult>;
}

function failed<T extends object>(r: Measured<T>): r is { error: string } {
  return 'error' in r;
}

async function attempt<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  try {
    return await fn();
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

export async function measureWorkflow(plan: WorkflowPlan, progress: (line: string) => void): Promise<WorkflowResults> {
  progress(`workflow: what one CLI call costs (${plan.cliRuns} runs each), and 8 agents enqueueing at once (${plan.cliRounds} rounds)`);
  const cli = await attempt(() => measureCliCost({ runs: plan.cliRuns, rounds: plan.cliRounds, serialRounds: plan.cliSerialRounds }));
  progress(`workflow: a worker draining ${plan.drainTasks} trivial script tasks against a bare bash loop (${plan.drainRuns} runs each, alternating)`);
  const drain = await attempt(() => measureDrain({ tasks: plan.drainTasks, runs: plan.drainRuns, progress }));
  progress(`workflow: the dashboard's first page of a 100,000-task queue in Chromium (${plan.dashboardRuns} page loads)`);
  const dashboard = await attempt(() => measureDashboardFirstPage({ runs: plan.dashboardRuns, log: progress }));
  return { cli, drain, dashboard };
}

export function workflowTargets(w: WorkflowResults): Target[] {
  const targets: Target[] = [];
  if (failed(w.cli)) targets.push({ name: 'one CLI call vs node -e 0', measured: 'not measured', target: '≤ 1.2× / 1.5×', result: 'INCOMPLETE', note: w.cli.error });
  else targets.push(...cliCostTargets(w.cli));
  if (failed(w.drain)) targets.push({ name: 'drain vs bare bash loop', measured: 'not measured', target: '≤ 1.3×', result: 'INCOMPLETE', note: w.drain.error });
  else targets.push(...drainTargets(w.drain));
  const d = w.dashboard;
  if (failed(d)) targets.push({ name: 'dashboard first page, 100k tasks', measured: 'not measured', target: '≤ 250 ms', result: 'INCOMPLETE', note: d.error });
  else if (d.skipped) targets.push({ name: 'dashboard first page, 100k tasks', measured: 'not measured', target: `≤ ${d.target} ms`, result: 'SKIP', note: d.reason });
  else {
    targets.push({
      name: `dashboard first page, ${d.tasks / 1000}k tasks (median of ${d.runs.length})`,
      measured: `${d.median.toFixed(0)} ms`,
      target: `≤ ${d.target} ms`,
      result: d.pass ? 'PASS' : 'FAIL',
    });
  }
  return targets;
}

export function renderWorkflow(w: WorkflowResults): string {
  const out: string[] = [];
  out.push(failed(w.cli) ? `CLI calls: not measured (${w.cli.error})` : renderCliCost(w.cli).trimEnd());
  out.push(failed(w.drain) ? `Drain: not measured (${w.drain.error})` : renderDrain(w.drain).trimEnd());
  out.push(failed(w.dashboard) ? `Dashboard: not measured (${w.dashboard.error})` : describeDashboard(w.dashboard));
  return out.join('\n');
}
