/** Loaders that each define one vscode-elements component (see components.js). */
export declare const definitions: readonly (() => Promise<unknown>)[];
