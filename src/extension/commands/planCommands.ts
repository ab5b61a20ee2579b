import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { enqueuedPlanKeys, missingTaskIds, planChecks } from '../../client/planLookups';
import { type Plan, PlanError, loadPlanFile, parsePlan } from '../../core/plan';
import { analyzePlan, formatPlanGraph } from '../../core/planGraph';
import type { QueueApi } from '../../api/contract';
import { Cancelled, UserFacingError } from '../errors';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandContext, type CommandFactory, withProgress } from './commandContext';

/** `SparkQ: Apply Plan`: a plan YAML (tasks with dependencies) checked, shown as a dry run, then enqueued once. */

const PLAN_FILE = /\.ya?ml$/i;

/** A YAML file that has a top-level `tasks:` or `batches:` and is not sparkq.yml. */
export function looksLikePlan(file: string, text: string): boolean {
  return PLAN_FILE.test(file) && path.basename(file) !== 'sparkq.yml' && /^(tasks|batches):/m.test(text);
}

/** The text VS Code has for the file (unsaved edits included), else the file's. */
function textOf(file: string): string | undefined {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && d.uri.fsPath === file);
  if (open) return open.getText();
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function choosePlanFile(workspaceDir: string): Promise<string> {
  const active = vscode.window.activeTextEditor?.document;
  if (active && active.uri.scheme === 'file' && looksLikePlan(active.uri.fsPath, active.getText())) return active.uri.fsPath;
  const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.fsPath === workspaceDir);
  const include = folder ? new vscode.RelativePattern(folder, '**/*.{yml,yaml}') : '**/*.{yml,yaml}';
  const found = await vscode.workspace.findFiles(include, '{**/node_modules/**,**/.sparkq/**,**/.git/**}', 500);
  const candidates = found
    .map((u) => u.fsPath)
    .filter((f) => path.basename(f) !== 'sparkq.yml')
    .map((f) => ({ file: f, plan: looksLikePlan(f, textOf(f) ?? '') }))
    .sort((a, b) => Number(b.plan) - Number(a.plan) || a.file.localeCompare(b.file));
  if (candidates.length === 0) throw new UserFacingError('No plan file (.yml or .yaml) in this workspace. Write one with a list of tasks, each with a name, queue, tool and prompt.');
  const chosen = await vscode.window.showQuickPick(
    candidates.map((c) => ({ label: path.relative(workspaceDir, c.file), description: c.plan ? 'plan' : '', file: c.file })),
    { title: 'SparkQ: Apply which plan?', placeHolder: 'A plan file of this workspace', ignoreFocusOut: true, matchOnDescription: true },
  );
  if (!chosen) throw new Cancelled();
  return chosen.file;
}

/** Parses and checks the plan against sparkq.yml's tools, the live queues and the existing tasks it waits on. */
async function readPlan(ctx: CommandContext, api: QueueApi, workspaceDir: string, file: string): Promise<Plan> {
  const checks = await planChecks(api, workspaceDir);
  const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && d.uri.fsPath === file);
  try {
    const plan = open ? parsePlan(open.getText(), file, checks) : loadPlanFile(file, checks);
    const issues = [];
    for (const id of await missingTaskIds(api, plan)) {
      for (const t of plan.tasks.filter((x) => x.after.includes(id))) issues.push({ path: `${t.key}.after`, line: t.line, column: null, message: `waits on task ${id}, which does not exist; fix the id in after:` });
    }
    if (issues.length > 0) throw new PlanError(file, issues);
    ctx.planDiagnostics.clear(file);
    return plan;
  } catch (e) {
    if (!(e instanceof PlanError)) throw e;
    ctx.planDiagnostics.set(file, e.issues, textOf(file));
    const first = e.issues[0];
    const where = first?.line ? `line ${first.line}: ` : '';
    const more = e.issues.length > 1 ? ` (and ${e.issues.length - 1} more problem${e.issues.length === 2 ? '' : 's'}, see Problems)` : '';
    throw new UserFacingError(`${path.basename(file)} is not a valid plan: ${where}${first?.path ? `${first.path}: ` : ''}${first?.message ?? e.message}${more}`, [
      { title: 'Open Plan', command: 'vscode.open', args: vscode.Uri.file(file) },
      { title: 'Show Problems', command: 'workbench.actions.view.problems' },
    ]);
  }
}

export const applyPlan: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.ApplyPlan, ArgSchemas.applyPlan, raw instanceof vscode.Uri ? raw.fsPath : raw);
  const api = await ctx.connection.api('apply a plan');
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first: SparkQ keeps its queue in a workspace folder.');
  const file = args.file !== undefined ? path.resolve(dir, args.file) : await choosePlanFile(dir);
  const plan = await withProgress(`Checking ${path.basename(file)}…`, () => readPlan(ctx, api, dir, file));
  const analysis = analyzePlan(plan);
  const existing = await enqueuedPlanKeys(api, plan.id);
  const already = plan.tasks.filter((t) => existing.has(t.key)).map((t) => t.key);
  const graph = formatPlanGraph(plan, analysis);
  const pending = plan.tasks.length - already.length;
  const footer =
    already.length === 0
      ? `Applying enqueues all ${plan.tasks.length} task${plan.tasks.length === 1 ? '' : 's'}.`
      : `${already.length} of ${plan.tasks.length} tasks were enqueued by an earlier apply of plan ${plan.id}; applying enqueues the other ${pending}.`;

  if (args.dryRun === true) {
    return {
      plan: plan.id,
      dryRun: true,
      tasks: plan.tasks.map((t) => ({ key: t.key, queue: t.queue, tool: t.tool, after: [...t.after], batch: t.batch, line: t.line })),
      levels: analysis.levels,
      widths: analysis.widths,
      parallelShare: analysis.parallelShare,
      criticalPath: analysis.criticalPath,
      existing: already,
      text: `${graph}\n\n${footer}`,
    };
  }
  if (interactive) {
    const apply = pending === 0 ? 'Apply (nothing new)' : `Apply ${pending} Task${pending === 1 ? '' : 's'}`;
    const choice = await vscode.window.showInformationMessage(
      `Apply plan ${plan.id}? ${plan.tasks.length} task${plan.tasks.length === 1 ? '' : 's'} in ${analysis.levels.length} level${analysis.levels.length === 1 ? '' : 's'}, ${Math.round(analysis.parallelShare * 100)}% parallel, critical path ${analysis.criticalPath.length}.`,
      { modal: true, detail: `${graph}\n\n${footer}` },
      apply,
    );
    if (choice !== apply) throw new Cancelled();
  }
  const result = await withProgress(`Applying plan ${plan.id}…`, () => api.applyPlan({ plan, file }), true);
  ctx.log.info(`applied plan ${result.plan} from ${file}: ${result.created.length} enqueued, ${result.existing.length} already enqueued`);
  await ctx.views.refreshNow();
  if (interactive) {
    const message = `Plan ${result.plan}: enqueued ${result.created.length} task${result.created.length === 1 ? '' : 's'}${result.existing.length > 0 ? `; ${result.existing.length} already enqueued by an earlier apply` : ''}.`;
    void vscode.window.showInformationMessage(message, 'Show Tasks').then((c) => {
      if (c === 'Show Tasks') void vscode.commands.executeCommand(CommandId.ShowTasks);
    });
  }
  return {
    plan: result.plan,
    created: result.created.map((c) => ({ key: c.key, id: c.task.id, queue: c.task.queue, tool: c.task.tool, after: [...c.task.after] })),
    existing: result.existing.map((e) => ({ key: e.key, id: e.id, status: e.status })),
  };
};
