// The types of lit.js's exports, taken from lit itself (an ES module, hence `resolution-mode`).
import type * as lit from 'lit' with { 'resolution-mode': 'import' };

export declare const LitElement: typeof lit.LitElement;
export type LitElement = lit.LitElement;
export type TemplateResult = lit.TemplateResult;
export type PropertyValues = lit.PropertyValues;
export declare const html: typeof lit.html;
export declare const svg: typeof lit.svg;
export declare const nothing: typeof lit.nothing;
