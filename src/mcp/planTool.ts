import * as fs from 'node:fs';
import * as path from 'node:path';
import type { QueueApi } from '../api/contract';
import { enqueuedPlanKeys, missingTaskIds, planChecks } from '../client/planLookups';
import { SparkqError } from '../core/errors';
import type { PlanApplyResult } from '../core/model';
import { LIMITS } from '../core/constants';
import { loadPlanFile, parsePlan, type Plan } from '../core/plan';
import { analyzePlan } from '../core/planGraph';

/** What `apply_plan` takes: a plan as YAML text or as a file of the workspace, and whether to only check it. */
export interface ApplyPlanArgs {
  yaml?: string;
  file?: string;
  dryRun?: boolean;
}

export interface PlanDryRun {
  plan: string;
  dryRun: true;
  tasks: { key: string; queue: string; tool: string; after: string[] }[];
  levels: string[][];
  parallelShare: number;
  criticalPath: string[];
  /** Names an earlier apply of the same plan already enqueued (applying again leaves them). */
  existing: string[];
}

/** `file` resolved, when it is inside the workspace (links followed); an agent reads no file outside it. */
function insideWorkspace(workspace: string, file: string, what: string): string {
  const abs = path.resolve(workspace, file);
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch {
    return abs; // missing: the parser says so, with the path
  }
  const root = fs.realpathSync(workspace);
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new SparkqError('invalid-input', `${what} ${file} is outside the workspace ${root}; plans and their prompt files must be inside it`);
  }
  return real;
}

/**
 * Parses and checks the plan the way `sparkq plan apply` does (every problem with its line, the tools of sparkq.yml,
 * the queues and the task ids it waits on), then enqueues its tasks not enqueued yet, or with dryRun says what it would.
 */
export async function applyPlanTool(q: QueueApi, workspace: string, args: ApplyPlanArgs): Promise<PlanApplyResult | PlanDryRun> {
  if ((args.yaml === undefined) === (args.file === undefined)) {
    throw new SparkqError('invalid-input', 'give the plan as yaml (its text) or as file (a path in the workspace), one of the two');
  }
  const checks = await planChecks(q, workspace);
  const readFile = (abs: string) => {
    const real = insideWorkspace(workspace, abs, 'the prompt file');
    const st = fs.statSync(real);
    if (!st.isFile()) throw new Error('not a file');
    if (st.size > LIMITS.prompt) throw new Error(`the file is ${st.size} bytes; a prompt is at most ${LIMITS.prompt} bytes`);
    return fs.readFileSync(real, 'utf8');
  };
  let parsed: Plan;
  let file: string;
  if (args.file !== undefined) {
    file = insideWorkspace(workspace, args.file, 'the plan file');
    parsed = loadPlanFile(file, checks, { readFile });
  } else {
    // Prompt files of a plan given as text are relative to the workspace.
    file = path.join(workspace, 'plan.yml');
    parsed = parsePlan(args.yaml!, file, checks, { readFile });
  }
  const missing = await missingTaskIds(q, parsed);
  if (missing.length > 0) {
    throw new SparkqError('invalid-input', `the plan waits on task${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, which do${missing.length === 1 ? 'es' : ''} not exist; fix the ids in after:`);
  }
  if (args.dryRun === true) {
    const analysis = analyzePlan(parsed);
    const existing = await enqueuedPlanKeys(q, parsed.id);
    return {
      plan: parsed.id,
      dryRun: true,
      tasks: parsed.tasks.map((t) => ({ key: t.key, queue: t.queue, tool: t.tool, after: [...t.after] })),
      levels: analysis.levels,
      parallelShare: analysis.parallelShare,
      criticalPath: analysis.criticalPath,
      existing: parsed.tasks.filter((t) => existing.has(t.key)).map((t) => t.key),
    };
  }
  return q.applyPlan({ plan: parsed, ...(args.file !== undefined ? { file } : {}) });
}
