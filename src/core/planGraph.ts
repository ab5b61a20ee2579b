import { SparkqError } from './errors';
import { DEFAULT_MAX_ROUNDS } from './model';
import type { Plan, PlanTask } from './plan';
import { plural } from './text';

/*
 * The graph of a plan: cycles (refused by the parser), the order tasks are enqueued in, and what a dry run shows
 * (levels, the parallel share, the critical path).
 */

/**
 * One cycle per strongly connected component with more than one node (Tarjan, iterative), each starting at its
 * node that comes first in `nodes` and following `next`. Self loops are not reported (callers refuse them earlier).
 */
export function findCycles(nodes: string[], next: (k: string) => string[]): string[][] {
  const order = new Map(nodes.map((k, i) => [k, i]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  let counter = 0;
  for (const start of nodes) {
    if (index.has(start)) continue;
    const work: { k: string; succ: string[]; i: number }[] = [];
    const open = (k: string) => {
      index.set(k, counter);
      low.set(k, counter++);
      stack.push(k);
      onStack.add(k);
      work.push({ k, succ: next(k), i: 0 });
    };
    open(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      if (top.i < top.succ.length) {
        const w = top.succ[top.i++]!;
        if (!index.has(w)) open(w);
        else if (onStack.has(w)) low.set(top.k, Math.min(low.get(top.k)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]!;
        low.set(parent.k, Math.min(low.get(parent.k)!, low.get(top.k)!));
      }
      if (low.get(top.k) === index.get(top.k)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== top.k);
        if (scc.length > 1) sccs.push(scc);
      }
    }
  }
  const cycles: string[][] = [];
  for (const scc of sccs) {
    const inScc = new Set(scc);
    const s = scc.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
    // Shortest way from s back to s inside the component (BFS).
    const prev = new Map<string, string>();
    const queue = [s];
    let end: string | null = null;
    for (let qi = 0; qi < queue.length && end === null; qi++) {
      const u = queue[qi]!;
      for (const v of next(u)) {
        if (!inScc.has(v)) continue;
        if (v === s) {
          end = u;
          break;
        }
        if (!prev.has(v)) {
          prev.set(v, u);
          queue.push(v);
        }
      }
    }
    const cycle: string[] = [];
    for (let u: string | undefined = end ?? s; u !== undefined && u !== s; u = prev.get(u)) cycle.push(u);
    cycle.push(s);
    cycles.push(cycle.reverse());
  }
  return cycles.sort((a, b) => order.get(a[0]!)! - order.get(b[0]!)!);
}

/**
 * Kahn's algorithm, always taking the ready task that comes first in `tasks`: every task after the plan tasks it
 * waits on, otherwise the order given. Throws when the tasks wait on each other in a cycle.
 */
export function topoOrder(tasks: PlanTask[]): PlanTask[] {
  const pos = new Map(tasks.map((t, i) => [t.key, i]));
  const waiting = tasks.map((t) => new Set(t.after.filter((k) => pos.has(k) && k !== t.key)).size);
  const dependents: number[][] = tasks.map(() => []);
  tasks.forEach((t, i) => {
    for (const k of new Set(t.after)) if (pos.has(k) && k !== t.key) dependents[pos.get(k)!]!.push(i);
  });
  // A binary min-heap of ready positions.
  const heap: number[] = [];
  const pushHeap = (x: number) => {
    heap.push(x);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (heap[p]! <= heap[i]!) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const popHeap = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  waiting.forEach((w, i) => w === 0 && pushHeap(i));
  const out: PlanTask[] = [];
  while (heap.length) {
    const i = popHeap();
    out.push(tasks[i]!);
    for (const d of dependents[i]!) if (--waiting[d]! === 0) pushHeap(d);
  }
  if (out.length !== tasks.length) throw new SparkqError('invalid-input', 'the plan tasks wait on each other in a cycle');
  return out;
}

export interface PlanAnalysis {
  /** Task keys by level: level 0 waits on no plan task, level n on at least one task of level n-1 and none later. */
  levels: string[][];
  widths: number[];
  /** Share of the tasks that sit at a level with at least 2 tasks (they can run in parallel), 0..1. */
  parallelShare: number;
  /** Keys of one longest chain of waits, first to last. */
  criticalPath: string[];
}

export function analyzePlan(plan: Plan): PlanAnalysis {
  const ordered = topoOrder(plan.tasks);
  const keys = new Set(ordered.map((t) => t.key));
  const level = new Map<string, number>();
  const via = new Map<string, string>();
  for (const t of ordered) {
    let l = 0;
    for (const d of t.after) {
      if (!keys.has(d) || d === t.key) continue;
      const dl = level.get(d)! + 1;
      if (dl > l) {
        l = dl;
        via.set(t.key, d);
      }
    }
    level.set(t.key, l);
  }
  const levels: string[][] = [];
  for (const t of plan.tasks) (levels[level.get(t.key)!] ??= []).push(t.key);
  const widths = levels.map((l) => l.length);
  const total = plan.tasks.length;
  const parallel = widths.filter((w) => w >= 2).reduce((a, b) => a + b, 0);
  const criticalPath: string[] = [];
  const last = levels.length ? levels[levels.length - 1]![0] : undefined;
  for (let k: string | undefined = last; k !== undefined; k = via.get(k)) criticalPath.push(k);
  criticalPath.reverse();
  return { levels, widths, parallelShare: total ? parallel / total : 0, criticalPath };
}


/** The human text of `sparkq plan apply --dry-run`: the graph by levels, its parallelism and its critical path. */
export function formatPlanGraph(plan: Plan, a: PlanAnalysis): string {
  const byKey = new Map(plan.tasks.map((t) => [t.key, t]));
  const out: string[] = [];
  out.push(`Plan ${plan.id}: ${plural(plan.tasks.length, 'task')} in ${plural(a.levels.length, 'level')}`);
  if (plan.description) out.push(plan.description);
  a.levels.forEach((keys, i) => {
    out.push('');
    out.push(keys.length >= 2 ? `Level ${i}: ${keys.length} tasks can run in parallel: ${keys.join(', ')}` : `Level ${i}: 1 task: ${keys[0] ?? ''}`);
    const width = Math.max(...keys.map((k) => k.length));
    for (const k of keys) {
      const t = byKey.get(k);
      if (!t) continue;
      const waits = t.after.length ? `  waits on ${t.after.map((d) => (byKey.has(d) ? d : `${d} (existing task)`)).join(', ')}` : '';
      const batch = t.batch !== null ? `  batch ${t.batch}` : '';
      const v = t.validate;
      const checked = v ? `  validated by ${v.tool}${v.queue !== undefined ? ` on ${v.queue}` : ''} (up to ${plural(v.maxRounds ?? DEFAULT_MAX_ROUNDS, 'round')})` : '';
      out.push(`  ${k.padEnd(width)}  queue ${t.queue}  tool ${t.tool}${batch}${checked}${waits}`);
    }
  });
  const parallel = a.widths.filter((w) => w >= 2).reduce((x, y) => x + y, 0);
  out.push('');
  out.push(`Parallel: ${parallel} of ${plural(plan.tasks.length, 'task')} (${Math.round(a.parallelShare * 100)}%) share a level with other tasks and can run in parallel`);
  // A validated task on the path is followed by its validation task, which its dependents wait for too.
  const validated = a.criticalPath.filter((k) => byKey.get(k)?.validate !== undefined).length;
  const path = a.criticalPath.map((k) => (byKey.get(k)?.validate !== undefined ? `${k} → ${k}'s validation` : k)).join(' → ');
  out.push(`Critical path: ${plural(a.criticalPath.length, 'task')}${validated > 0 ? ` and ${plural(validated, 'validation')}` : ''}: ${path}`);
  return out.join('\n');
}
