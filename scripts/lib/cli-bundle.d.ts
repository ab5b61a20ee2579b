import type { BuildOptions, LogLevel } from 'esbuild';

export interface CliBundleOptions {
  /** Where cli.js, cli-app.js and sql-wasm.wasm go. */
  outdir: string;
  /** Minified, no source maps: what `npm run package` ships. */
  production: boolean;
  logLevel?: LogLevel;
}

/** The program's file name inside `outdir`. */
export const APP: string;
export function appBuildOptions(opts: CliBundleOptions): BuildOptions;
/** After cli-app.js is built: builds cli.js (the entry) and copies sql-wasm.wasm; returns cli.js's path. */
export function finishCli(opts: CliBundleOptions): string;
/** The whole CLI build; resolves to cli.js's path. */
export function bundleCli(opts: CliBundleOptions): Promise<string>;
/** The whole CLI build, synchronously (in a child process); returns cli.js's path. */
export function bundleCliSync(opts: CliBundleOptions): string;
