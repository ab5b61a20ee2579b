// Flat config: type-aware rules so that a forgotten `await` is an error, not a lost write.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * One no-restricted-imports block per layer: `vscode` only in src/extension, and none of the named later layers.
 * Matched on the import path, so a relative import that climbs into a later layer's folder is refused.
 */
function layerRules(layers) {
  return layers.map(([files, later]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'only src/extension may import vscode (see DESIGN.md, Layers).' }],
          patterns: [
            {
              regex: `^(\\.\\./)+(src/)?(${later.join('|')})(/|$)`,
              message: `${files.split('/**')[0]} must not import a later layer (${later.join(', ')}); see DESIGN.md, Layers.`,
            },
          ],
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-host/**', 'bench/results/**', '**/*.mjs', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-imports': 'off',
    },
  },
  // The layers of DESIGN.md, one direction of imports: core ← api ← ipc ← owner/team/client ← cli/worker/mcp ← extension, and
  // the webview beside the extension. A file may import its own layer and the layers before it, never a later one.
  ...layerRules([
    ['src/core/**/*.ts', ['git', 'api', 'ipc', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    ['src/api/**/*.ts', ['git', 'ipc', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    ['src/ipc/**/*.ts', ['git', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    ['src/owner/**/*.ts', ['client', 'team', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    ['src/client/**/*.ts', ['cli', 'worker', 'mcp', 'extension', 'shared']],
    // The team database (PostgreSQL): the second store of the contract, beside the owner; the client chooses it.
    ['src/team/**/*.ts', ['ipc', 'owner', 'client', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    // git (worktrees per task, merges): I/O on a repository, beside the stores; the worker, the CLI and the extension use it.
    ['src/git/**/*.ts', ['api', 'ipc', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension', 'shared']],
    ['src/cli/**/*.ts', ['extension', 'shared']],
    ['src/worker/**/*.ts', ['cli', 'extension', 'shared']],
    // The MCP server beside the CLI and the worker: `sparkq mcp` (in cli) starts it; it needs neither of them.
    ['src/mcp/**/*.ts', ['cli', 'worker', 'extension', 'shared']],
    ['src/shared/**/*.ts', ['git', 'api', 'ipc', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension']],
    ['webview/**/*.ts', ['git', 'api', 'ipc', 'owner', 'client', 'team', 'cli', 'worker', 'mcp', 'extension']],
  ]),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
