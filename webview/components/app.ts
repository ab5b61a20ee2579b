import type { DashboardUiState } from '../../src/shared/dashboardProtocol';
import { type TemplateResult, html } from '../lit';
import { TABS } from '../boot';
import { type DashboardState, store } from '../store';
import { StoreElement } from './base';
import './enqueue';
import './overview';
import './patterns';
import './plans';
import './tasks';

/** The tab shown first: the panel the page shows while the tabs are not defined yet (dashboard.css). */
const initialTab = store.state.ui.tab;

/** The dashboard: its title, the banner that says why something cannot be shown, and the tabs. */
export class DashboardApp extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.init, s.pageError];
  }

  override render(): TemplateResult {
    const { init, pageError } = this.state;
    const banner = init.problem ?? pageError;
    const panel = (tab: DashboardUiState['tab'], view: TemplateResult) => html`<vscode-tab-panel class=${tab === initialTab ? 'initial' : ''}>${view}</vscode-tab-panel>`;
    return html`<header class="top"><h1>SparkQ</h1><vscode-badge id="read-only" ?hidden=${!init.readOnly}>Restricted Mode: read-only</vscode-badge></header>
      <div id="banner" class="banner" ?hidden=${banner === null}>${banner ?? ''}</div>
      <vscode-tabs id="tabs" selected-index=${String(TABS.indexOf(initialTab))} @vsc-tabs-select=${(e: CustomEvent<{ selectedIndex: number }>) => store.setTab(e.detail.selectedIndex)}>
        <vscode-tab-header slot="header" data-tab="overview">Overview</vscode-tab-header>
        ${panel('overview', html`<sparkq-overview></sparkq-overview>`)}
        <vscode-tab-header slot="header" data-tab="tasks">Tasks</vscode-tab-header>
        ${panel('tasks', html`<sparkq-tasks></sparkq-tasks>`)}
        <vscode-tab-header slot="header" data-tab="enqueue">Enqueue</vscode-tab-header>
        ${panel('enqueue', html`<sparkq-enqueue></sparkq-enqueue>`)}
        <vscode-tab-header slot="header" data-tab="plans">Plans</vscode-tab-header>
        ${panel('plans', html`<sparkq-plans></sparkq-plans>`)}
        <vscode-tab-header slot="header" data-tab="patterns">Patterns</vscode-tab-header>
        ${panel('patterns', html`<sparkq-patterns></sparkq-patterns>`)}
      </vscode-tabs>`;
  }
}
customElements.define('sparkq-dashboard', DashboardApp);
