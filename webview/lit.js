// lit, as the dashboard's components use it (plain JS, like components.js: lit is an ES module package, which the
// type-checked, CommonJS-resolved sources cannot import; lit.d.ts gives these their types). It is the copy that
// @vscode-elements/elements depends on, so the bundle holds one lit for both.
export { LitElement, html, svg, nothing } from 'lit';
