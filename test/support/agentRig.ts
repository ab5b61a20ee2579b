import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_TOOLS, type Sandbox, type ToolConfig } from '../../src/core/config';
import type { ExecOutcome } from '../../src/worker/types';
import type { MockApi, MockModelServer, RecordedRequest } from './mockModel';

/**
 * The rig of the real-agent tests (test/unit/worker/agents*.test.ts): the real `codex` and `claude` binaries
 * (devDependencies) configured to talk to the loopback mock model (./mockModel) and nothing else, and the small helpers
 * those tests share.
 */

const ROOT = path.resolve(__dirname, '..', '..');
export const CODEX_BIN = path.join(ROOT, 'node_modules', '.bin', 'codex');
export const CLAUDE_BIN = path.join(ROOT, 'node_modules', '.bin', 'claude');
/** The PATH the agents run with: this process's, or a bare one. */
export const PATH = process.env['PATH'] ?? '/usr/bin:/bin';

export type Agent = 'codex' | 'claude';
/** The mock's API each agent talks to. */
export const API: Record<Agent, MockApi> = { codex: 'responses', claude: 'messages' };

/** A recorded request's body as JSON text, to look for what the agent sent the model (`null` for none). */
export const bodyText = (r: RecordedRequest | undefined) => JSON.stringify(r?.body ?? null);

/** Asserts that an executor's run succeeded (on failure: its error, stdout and stderr); the outcome, narrowed. */
export function ok(o: ExecOutcome): Extract<ExecOutcome, { status: 'succeeded' }> {
  assert.equal(o.status, 'succeeded', o.status !== 'succeeded' ? `expected success, got: ${o.error}\n--- stdout\n${o.stdout ?? ''}\n--- stderr\n${o.stderr ?? ''}` : '');
  return o;
}

export interface MockAgentToolOptions {
  /**
   * The folder of the throwaway agent homes: the agent gets `<homes>/codex-home` (CODEX_HOME) or `<homes>/claude-home`
   * (HOME, with CLAUDE_CONFIG_DIR `.claude` in it), made here if missing. See {@link agentHome}.
   */
  homes: string;
  /** The model server's port: default the mock's own; another (a dead one) to test an unreachable model. */
  port?: number;
  /** The binary to run: default the real codex / claude; a stand-in (a wrapper, an older version) otherwise. */
  command?: string;
  /** `mcp: true`: the executor gives the agent SparkQ's MCP server. Left out (off) unless set. */
  mcp?: boolean;
  /**
   * Arguments after the mock's: for claude the tool's whole `args` (e.g. `['--allowedTools', 'Bash']` for a validator
   * that gives its verdict from its shell), left out when not given; for codex appended to the provider overrides.
   */
  args?: string[];
  /**
   * codex only: HOME in the tool's env. A tool in sparkq.yml runs under the worker's environment, whose HOME is the
   * real one; an executor called directly gets HOME from its context instead. claude's HOME is always its own home.
   */
  home?: string;
}

/** The tool entry {@link mockAgentTool} builds: a sparkq.yml tool, also spread over DEFAULT_TOOLS as a ToolConfig. */
export interface MockAgentTool {
  kind: Agent;
  taskClass: 'LLM_HEAVY';
  command: string;
  model?: string;
  sandbox?: Sandbox;
  mcp?: boolean;
  args?: string[];
  env: Record<string, string>;
}

/** The throwaway home of `agent` below `homes` (`codex-home` / `claude-home`), made if missing. */
export function agentHome(agent: Agent, homes: string): string {
  const home = path.join(homes, `${agent}-home`);
  fs.mkdirSync(home, { recursive: true });
  return home;
}

/**
 * An agent tool pointed at the mock model, as its entry under `tools:` in sparkq.yml (JSON is YAML: write it with
 * JSON.stringify); {@link mockAgentToolConfig} gives the same as a ToolConfig for calling an executor directly.
 *
 * - codex (kind codex, model gpt-5.5, sandbox workspace-write): a custom provider `mock` set with `-c` overrides, at
 *   `http://127.0.0.1:<port>/v1` (the Responses API), its key from MOCK_API_KEY, no request or stream retries;
 *   analytics and plugins off; CODEX_HOME a throwaway home. No `--disable unbounded_connection_retries`: the executor
 *   adds that itself.
 * - claude (kind claude): ANTHROPIC_BASE_URL `http://127.0.0.1:<port>` with a dummy key, HOME and CLAUDE_CONFIG_DIR
 *   in a throwaway home, no non-essential traffic, no retries.
 *
 * So nothing leaves 127.0.0.1, an API error fails at once, and no test reads or writes the user's agent settings.
 */
export function mockAgentTool(agent: Agent, mock: MockModelServer, o: MockAgentToolOptions): MockAgentTool {
  const port = o.port ?? mock.port;
  const home = agentHome(agent, o.homes);
  const mcp = o.mcp !== undefined ? { mcp: o.mcp } : {};
  if (agent === 'codex') {
    return {
      kind: 'codex',
      taskClass: 'LLM_HEAVY',
      command: o.command ?? CODEX_BIN,
      model: 'gpt-5.5',
      sandbox: 'workspace-write',
      ...mcp,
      args: [
        '-c',
        'model_provider=mock',
        '-c',
        `model_providers.mock={name="mock",base_url="http://127.0.0.1:${port}/v1",env_key="MOCK_API_KEY",wire_api="responses",request_max_retries=0,stream_max_retries=0}`,
        '-c',
        'analytics.enabled=false',
        '--disable',
        'plugins',
        ...(o.args ?? []),
      ],
      env: { CODEX_HOME: home, ...(o.home !== undefined ? { HOME: o.home } : {}), MOCK_API_KEY: 'mock-key' },
    };
  }
  return {
    kind: 'claude',
    taskClass: 'LLM_HEAVY',
    command: o.command ?? CLAUDE_BIN,
    ...mcp,
    ...(o.args !== undefined ? { args: o.args } : {}),
    env: {
      HOME: home,
      CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`,
      ANTHROPIC_API_KEY: 'dummy',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      CLAUDE_CODE_MAX_RETRIES: '0',
    },
  };
}

/** {@link mockAgentTool} as a ToolConfig: the built-in llm-codex / llm-claude tool with the mock's settings over it. */
export function mockAgentToolConfig(agent: Agent, mock: MockModelServer, o: MockAgentToolOptions): ToolConfig {
  return { ...structuredClone(DEFAULT_TOOLS[`llm-${agent}`]!), ...mockAgentTool(agent, mock, o) };
}
