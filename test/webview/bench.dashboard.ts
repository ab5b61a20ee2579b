// `npm run bench:dashboard`: how long the dashboard takes to show the first page of a 100,000-task queue in headless
// Chromium — from navigation to the first rows on screen, through the real HTML/CSP, bundle, protocol and queue.
// The measurement is bench/dashboard.ts (measureDashboardFirstPage), which `npm run bench` can call too.
// SPARKQ_BENCH_TASKS and SPARKQ_BENCH_RUNS change the queue's size and the number of timed page loads.
import { describeDashboard, measureDashboardFirstPage } from '../../bench/dashboard';

const tasks = Number(process.env['SPARKQ_BENCH_TASKS'] ?? 100_000);
const runs = Number(process.env['SPARKQ_BENCH_RUNS'] ?? 7);

// `npm run bench:dashboard` has just built the bundles.
measureDashboardFirstPage({ tasks, runs, build: false, log: (line) => console.log(line) }).then(
  (r) => {
    console.log(describeDashboard(r));
    process.exit(0);
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
