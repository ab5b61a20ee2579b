import type { DashboardParams, DashboardUiState, TaskPageView } from '../src/shared/dashboardProtocol';
import { SORT_KEYS } from '../src/shared/dashboardProtocol';
import { adoptEarlyPage, loadUiState, request, sendReady } from './bridge';
import css from './dashboard.css';

/**
 * The first module the bundle evaluates. The first page of tasks was asked for by the HTML's own first script, while the
 * bundle was still being fetched (bridge: adoptEarlyPage); failing that it is asked for here, before any DOM is built or
 * any component is defined, so the host answers while the rest of the bundle starts up. The stylesheet travels inside
 * the bundle and is adopted here as a constructed stylesheet (as vscode-elements does for its components): no
 * render-blocking <link> to fetch first.
 */

const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

const TABS: DashboardUiState['tab'][] = ['overview', 'tasks', 'enqueue', 'plans', 'patterns'];
const saved = loadUiState();

/** The UI state (tab, filters, page cursors, sort, selection) restored from setState: the store's first. */
export const ui: DashboardUiState = {
  tab: saved.tab && TABS.includes(saved.tab) ? saved.tab : 'overview',
  query: { limit: 50, ...(saved.query ?? {}) },
  cursors: Array.isArray(saved.cursors) ? saved.cursors : [],
  sort: saved.sort && SORT_KEYS.includes(saved.sort.key) ? saved.sort : { key: 'created', dir: -1 },
  selected: typeof saved.selected === 'string' ? saved.selected : null,
  plan: typeof saved.plan === 'string' ? saved.plan : null,
};
export { TABS };

/** The parameters of the page of tasks a UI state says to show (the HTML's first script computes the same; see bridge). */
function pageParams(state: DashboardUiState): DashboardParams<'listTasks'> {
  const before = state.cursors.length > 0 ? state.cursors[state.cursors.length - 1] : undefined;
  const { before: _old, ...rest } = state.query;
  return { ...rest, ...(before ? { before } : {}) };
}

/** The page of tasks a UI state says to show, as asked of the host. */
export function requestPage(state: DashboardUiState): Promise<TaskPageView> {
  return request('listTasks', pageParams(state));
}

// The first page goes out first (from the HTML, or now), so the host works on it while the page starts up. `ready` (to which the host answers
// with `init`: the pickers' sessions and queues, which cost it more than a page of tasks) follows once that page is
// here, so that work does not hold up the answer; at the latest after READY_AT_LATEST_MS, should the host be slow.
export const firstPage = adoptEarlyPage(pageParams(ui)) ?? requestPage(ui);
const READY_AT_LATEST_MS = 250;
let readySent = false;
const ready = () => {
  if (readySent) return;
  readySent = true;
  sendReady();
};
firstPage.then(ready, ready);
setTimeout(ready, READY_AT_LATEST_MS);
