import { firstPage } from './boot';
import { onHostMessage } from './bridge';
import './components/app';
import { definitions } from './components.js';
import { store } from './store';

/**
 * The SparkQ dashboard: Overview (with usage and cost), Tasks (with the selected task's detail) and the Enqueue form,
 * each a lit component (components/) drawn from one store (store.ts) that the host's answers and messages feed. The
 * page keeps only UI state (tab, filters, page cursors, sort, selection) with setState; every number and text comes
 * from the host.
 */

const app = document.getElementById('app');
if (!app) throw new Error('#app is missing');
app.replaceChildren(document.createElement('sparkq-dashboard'));
app.dataset['state'] = 'waiting';

/**
 * The vscode-elements components are defined after the first page is on screen (or from COMPONENTS_AT_LATEST_MS on,
 * if the host is slow to answer), one per task: defining them and rendering every control costs the page's main
 * thread tens of milliseconds, and the host's answer waits in the queue while it is busy. Until then the elements are
 * in place but undefined (dashboard.css shows only the selected tab's panel); each definition upgrades them.
 */
const COMPONENTS_AT_LATEST_MS = 100;
const componentsReady: Promise<void> = new Promise((resolve, reject) => {
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    void (async () => {
      for (const define of definitions) {
        await new Promise((r) => setTimeout(r, 0));
        await define();
      }
    })().then(resolve, reject);
  };
  firstPage.then(start, start);
  setTimeout(start, COMPONENTS_AT_LATEST_MS);
});

// Host messages other than answers wait for the components: `init` fills the pickers, which must be defined first.
// (Each waits on the same promise, so they are still handled in the order they came.)
onHostMessage((m) => void componentsReady.then(() => store.hostMessage(m)));

// Ready (#app[data-state="ready"]) once the first page was answered and the first `init` drawn, with the components.
void componentsReady.then(() => {
  const check = () => {
    const { pageAnswered, initShown } = store.state;
    if (!pageAnswered || !initShown) return;
    app.dataset['state'] = 'ready';
    off();
  };
  const off = store.subscribe(check);
  check();
});

// The first page was asked for in boot, before this module ran.
void store.loadPage(firstPage);
if (store.state.ui.selected) void store.loadDetail();
