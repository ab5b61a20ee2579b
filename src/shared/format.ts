/** How the extension's views and the dashboard write a length of time: "850 ms", "4.2 s", "3m 5s", "2h 10m", "3d 4h". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s - m * 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m - h * 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** The line under the dashboard's throughput chart: which finished tasks it counts, or that there are none yet. */
export function throughputBasisText(scanned: number, truncated: boolean): string {
  if (scanned === 0) return 'No finished tasks yet.';
  const n = scanned.toLocaleString('en-US');
  if (truncated) return `Throughput from the ${n} most recently created finished tasks (older ones not counted).`;
  return scanned === 1 ? 'Throughput from 1 finished task.' : `Throughput from all ${n} finished tasks.`;
}
