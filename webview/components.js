// The vscode-elements components the dashboard uses (plain JS, like index.js: these packages are ES modules that the
// type-checked, CommonJS-resolved sources cannot import). main.ts defines them one by one, each in a task of its own,
// once the first page of tasks is on screen, so defining them (and their first render) does not delay those rows.
// esbuild keeps them in the one bundle, each evaluated only when its loader is called. The tabs come first (they lay
// out the page), their headers and panels before the tabs themselves.
export const definitions = [
  () => import('@vscode-elements/elements/dist/vscode-tab-header/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-tab-panel/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-tabs/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-option/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-single-select/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-textfield/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-button/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-badge/index.js'),
  () => import('@vscode-elements/elements/dist/vscode-textarea/index.js'),
];
