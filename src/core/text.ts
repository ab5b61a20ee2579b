import type { NaivePlan, PlanReport } from './model';
/** "1 task", "3 tasks", "0.5 days": a count with its noun, never "task(s)". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What a plan's task count holds besides its own tasks, for every report's text: " (2 of them checks)", or "". */
export function checksNote(p: Pick<PlanReport, 'checks'>): string {
  return p.checks > 0 ? ` (${p.checks.toLocaleString('en-US')} of them check${p.checks === 1 ? '' : 's'})` : '';
}

/**
 * The naive plan against the actual one in one line, for every report's text (CLI, VS Code, MCP): what the tokens
 * would have cost on the orchestrator's model, the savings and their share, and the time the parallel run saved.
 */
export function naiveLine(n: NaivePlan): string {
  const usd = (x: number) => `$${x.toFixed(4)}`;
  const time = n.timeSavedMs >= 60_000 ? `${Math.floor(n.timeSavedMs / 60_000)}m ${Math.round((n.timeSavedMs % 60_000) / 1000)}s` : `${(n.timeSavedMs / 1000).toFixed(1)} s`;
  const ran = `${time} saved by running in parallel`;
  if (n.model === null || n.costUsd === null) return `naive plan: no priced orchestrator model (orchestrator: and pricing: in sparkq.yml); ${ran}`;
  if (n.tasks === 0) return `naive plan: no task recorded token usage, nothing to price at ${n.model}; ${ran}`;
  const share = n.savedShare !== null ? ` (${Math.round(n.savedShare * 100)}%)` : '';
  return `naive plan (${n.model} doing all ${n.tasks} tasks itself): ${usd(n.costUsd)} against ${usd(n.actualCostUsd)} recorded, saved ${usd(n.savedUsd ?? 0)}${share}; ${ran}`;
}

/** Text on one line (whitespace runs become one space), cut at `max` characters with an ellipsis. */
export function oneLine(s: string, max = 200): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : flat.slice(0, max - 1) + '…';
}
