import type { Task } from './model';

/**
 * The proven-patterns table, computed from the queue's history: how each prompt pattern has done. A pure function of
 * the tasks (live and archived), so that it is exact and testable on a handmade history.
 *
 * A **use** is one task made from the pattern together with its requeued copies (a copy points to the task it
 * replaced with retryOf, so a chain of copies is followed to its original). A use is **settled** when its newest copy
 * has finished (succeeded or failed); the rates and medians are over settled uses, so that work in progress does not
 * count as a failure. Validation: of the uses whose first round a validator judged, the share it passed.
 */

export interface PatternStatsRow {
  pattern: string;
  /** Distinct file hashes its tasks recorded: how many versions of the pattern were used. */
  versions: number;
  uses: number;
  settled: number;
  /** Settled uses whose newest copy succeeded. */
  succeeded: number;
  /** Uses whose original task succeeded on its first attempt and was never requeued. */
  firstTry: number;
  /** firstTry / settled, rounded to 3 decimals; null before any use settled. */
  firstTryRate: number | null;
  /** Median over settled uses of their rounds: the original and each requeued copy (a fix round, a requeue) is one. */
  medianRounds: number | null;
  /** Median over settled uses of the attempts of all their copies (each claim of a copy is one attempt). */
  medianAttempts: number | null;
  /** Median over settled uses that reported usage of input + output tokens, all copies summed. */
  medianTokens: number | null;
  /** Median over settled uses of the run time of all copies summed (each copy from its start to its finish), ms. */
  medianRunMs: number | null;
  /** usage.costUsd of every copy of every use, settled or not, rounded to 6 decimals. */
  costUsd: number;
  /** Uses whose original task a validator judged (passed or failed its first round). */
  validated: number;
  /** Of those, the ones it passed in the first round. */
  firstRoundPassed: number;
  /** firstRoundPassed / validated, rounded to 3 decimals; null before any validator judged a use. */
  validationPassRate: number | null;
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const FINISHED = new Set(['succeeded', 'failed']);

/** One row per pattern that any task recorded, most used first (then by name). */
export function patternStats(tasks: readonly Task[]): PatternStatsRow[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const rootOf = (t: Task): Task => {
    const seen = new Set<string>();
    let cur = t;
    while (cur.retryOf !== null && !seen.has(cur.id)) {
      seen.add(cur.id);
      const prev = byId.get(cur.retryOf);
      if (!prev) break; // purged: the oldest copy known stands for the original
      cur = prev;
    }
    return cur;
  };

  // Uses by their original task's id, each with its pattern (the original's: copies inherit it).
  const uses = new Map<string, { pattern: string; root: Task; copies: Task[] }>();
  for (const t of tasks) {
    if (t.pattern === null) continue;
    const root = rootOf(t);
    let use = uses.get(root.id);
    if (!use) uses.set(root.id, (use = { pattern: (root.pattern ?? t.pattern).name, root, copies: [] }));
    use.copies.push(t);
  }

  const rows = new Map<string, { hashes: Set<string>; uses: number; settled: number; succeeded: number; firstTry: number; rounds: number[]; attempts: number[]; tokens: number[]; runMs: number[]; cost: number; validated: number; firstRoundPassed: number }>();
  for (const use of uses.values()) {
    let row = rows.get(use.pattern);
    if (!row) rows.set(use.pattern, (row = { hashes: new Set(), uses: 0, settled: 0, succeeded: 0, firstTry: 0, rounds: [], attempts: [], tokens: [], runMs: [], cost: 0, validated: 0, firstRoundPassed: 0 }));
    row.uses++;
    // The original task's first round, once a validator judged it.
    const v = use.root.validation;
    if (v !== null && v.round === 1 && v.status !== 'pending') {
      row.validated++;
      if (v.status === 'passed') row.firstRoundPassed++;
    }
    const newest = use.copies.reduce((a, b) => (Date.parse(b.createdAt) > Date.parse(a.createdAt) ? b : a));
    const requeued = use.copies.some((c) => c !== use.root);
    if (!requeued && use.root.status === 'succeeded' && use.root.attempt === 1 && use.root.retryOf === null) row.firstTry++;
    let attempts = 0;
    let tokens = 0;
    let reported = false;
    let runMs = 0;
    for (const c of use.copies) {
      if (c.pattern) row.hashes.add(c.pattern.hash);
      attempts += c.attempt;
      if (c.usage) {
        reported = true;
        tokens += (c.usage.inputTokens ?? 0) + (c.usage.outputTokens ?? 0);
        row.cost += c.usage.costUsd ?? 0;
      }
      if (c.startedAt !== null && c.finishedAt !== null) runMs += Math.max(0, Date.parse(c.finishedAt) - Date.parse(c.startedAt));
    }
    if (!FINISHED.has(newest.status)) continue;
    row.settled++;
    if (newest.status === 'succeeded') row.succeeded++;
    row.rounds.push(use.copies.length);
    row.attempts.push(attempts);
    if (reported) row.tokens.push(tokens);
    row.runMs.push(runMs);
  }

  return [...rows.entries()]
    .map(([pattern, r]) => ({
      pattern,
      versions: r.hashes.size,
      uses: r.uses,
      settled: r.settled,
      succeeded: r.succeeded,
      firstTry: r.firstTry,
      firstTryRate: r.settled > 0 ? Math.round((r.firstTry / r.settled) * 1000) / 1000 : null,
      medianRounds: median(r.rounds),
      medianAttempts: median(r.attempts),
      medianTokens: median(r.tokens),
      medianRunMs: median(r.runMs),
      costUsd: Math.round(r.cost * 1e6) / 1e6,
      validated: r.validated,
      firstRoundPassed: r.firstRoundPassed,
      validationPassRate: r.validated > 0 ? Math.round((r.firstRoundPassed / r.validated) * 1000) / 1000 : null,
    }))
    .sort((a, b) => b.uses - a.uses || a.pattern.localeCompare(b.pattern));
}

/** A run time for people: 850 ms, 12.5 s, 3.2 min, 1.5 h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The columns of the table as people read it (the CLI's table and its Markdown export). */
export const PATTERN_STATS_HEADER = ['PATTERN', 'USES', 'FIRST-TRY', 'ROUNDS', 'ATTEMPTS', 'TOKENS', 'RUN TIME', 'COST', 'VALIDATION'] as const;

/** A row's cells: rates as percentages with the counts behind them, medians, "n/a" where there is nothing yet. */
export function patternStatsCells(r: PatternStatsRow): string[] {
  const na = 'n/a';
  return [
    r.pattern,
    r.settled < r.uses ? `${r.uses} (${r.uses - r.settled} running)` : String(r.uses),
    r.firstTryRate === null ? na : `${Math.round(r.firstTryRate * 100)}% (${r.firstTry}/${r.settled})`,
    r.medianRounds === null ? na : String(r.medianRounds),
    r.medianAttempts === null ? na : String(r.medianAttempts),
    r.medianTokens === null ? na : String(Math.round(r.medianTokens)),
    r.medianRunMs === null ? na : formatDuration(r.medianRunMs),
    `$${r.costUsd.toFixed(4)}`,
    r.validationPassRate === null ? na : `${Math.round(r.validationPassRate * 100)}% (${r.firstRoundPassed}/${r.validated})`,
  ];
}

/** The table as GitHub Markdown, the form the playbook keeps its proven patterns in. */
export function patternStatsMarkdown(rows: readonly PatternStatsRow[]): string {
  const header = ['Pattern', 'Uses', 'First-try success', 'Median rounds', 'Median attempts', 'Median tokens', 'Median run time', 'Cost (USD)', 'Validation pass (1st round)'];
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const r of rows) lines.push(`| ${patternStatsCells(r).map(esc).join(' | ')} |`);
  return lines.join('\n');
}
