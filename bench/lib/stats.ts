/** Timing and summary helpers shared by the bench scenarios. */

export interface Summary {
  samples: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** Milliseconds, with sub-microsecond resolution. */
export function now(): number {
  return performance.now();
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length > 0 ? sum / sorted.length : NaN,
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
  };
}

/** Full collection when the process runs with --expose-gc (npm run bench does); a no-op otherwise. */
export function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect) {
    collect();
    collect();
  }
}

export function hasGc(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

export const MB = 1024 * 1024;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn(i)` for i in [0, total), `batch` at a time concurrently (what many workers at once look like). */
export async function inBatches<T>(total: number, batch: number, fn: (i: number) => Promise<T>): Promise<void> {
  for (let start = 0; start < total; start += batch) {
    const end = Math.min(total, start + batch);
    const pending: Promise<T>[] = [];
    for (let i = start; i < end; i++) pending.push(fn(i));
    await Promise.all(pending);
  }
}
