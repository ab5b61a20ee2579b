import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  type ConfigIssue,
  configJsonSchema,
  DEFAULT_TASK_CLASSES,
  DEFAULT_TOOLS,
  defaultConfig,
  defaultConfigYaml,
  loadConfigFile,
  parseConfig,
  resolveTimeoutSeconds,
} from '../../../src/core/config';
import { isSparkqError } from '../../../src/core/errors';
import { tempDir } from '../../support/tmp';

const FILE = '/ws/sparkq.yml';

/** Parses text that must be invalid and returns its issues. */
function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(isSparkqError(e, 'config'));
    assert.equal(e.file, FILE);
    assert.equal(e.message.split('\n').length, e.issues.length, 'one message line per issue');
    return e.issues;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** Line and column (1-based) of the first `needle` in `text`: where an issue must point. */
function at(text: string, needle: string): { line: number; column: number } {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} not in the text`);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

/** The only issue of an invalid text, with its place asserted. */
function oneIssue(text: string, where: { path: string; line: number; column: number }, message: RegExp): ConfigIssue {
  const issues = issuesOf(text);
  assert.equal(issues.length, 1, `one issue expected, got ${JSON.stringify(issues)}`);
  const i = issues[0]!;
  assert.deepEqual({ path: i.path, line: i.line, column: i.column }, where);
  assert.match(i.message, message);
  return i;
}

describe('config', () => {
  describe('defaults', () => {
    it('an empty or comment-only file is all defaults', () => {
      for (const text of ['', '\n', '# nothing here\n', '\uFEFF# with a BOM\n']) {
        const { config, warnings } = parseConfig(text, FILE, { defaultProject: 'my-ws' });
        assert.deepEqual(config, defaultConfig('my-ws'));
        assert.deepEqual(warnings, []);
      }
    });

    it('has the documented default values', () => {
      const c = defaultConfig();
      assert.equal(c.version, 1);
      assert.equal(c.project, 'sparkq');
      assert.deepEqual(c.scriptDirs, ['scripts']);
      assert.deepEqual(
        Object.fromEntries(Object.values(c.taskClasses).map((t) => [t.name, t.timeoutSeconds])),
        { FAST_SCRIPT: 30, MEDIUM_SCRIPT: 300, LLM_LITE: 300, LLM_HEAVY: 900 },
      );
      assert.deepEqual(Object.keys(c.tools), ['run-bash', 'run-python', 'llm-codex', 'llm-claude', 'llm-sonnet', 'llm-haiku']);
      assert.deepEqual(
        Object.values(c.tools).map((t) => [t.name, t.kind, t.knownKind, t.taskClass]),
        [
          ['run-bash', 'script', 'script', 'MEDIUM_SCRIPT'],
          ['run-python', 'script', 'script', 'MEDIUM_SCRIPT'],
          ['llm-codex', 'codex', 'codex', 'LLM_HEAVY'],
          ['llm-claude', 'claude', 'claude', 'LLM_HEAVY'],
          ['llm-sonnet', 'manual', 'manual', 'LLM_HEAVY'],
          ['llm-haiku', 'manual', 'manual', 'LLM_LITE'],
        ],
      );
      assert.equal(c.tools['run-bash']!.interpreter, 'bash');
      assert.equal(c.tools['run-python']!.interpreter, 'python3');
      assert.equal(c.tools['llm-codex']!.sandbox, 'workspace-write');
      assert.equal(c.purgeAfterDays, null);
      assert.deepEqual(c.worker, { pollSeconds: 5, leaseSeconds: 30 });
      assert.deepEqual(c.store, { kind: 'sqljs', liveCap: 20000 });
    });

    it('hands out copies, so that changing one config leaves the defaults alone', () => {
      const a = defaultConfig('a');
      a.store.liveCap = 100;
      a.tools['run-bash']!.args.push('-x');
      a.taskClasses['FAST_SCRIPT']!.timeoutSeconds = 1;
      const b = defaultConfig('b');
      assert.equal(b.store.liveCap, 20000);
      assert.deepEqual(b.tools['run-bash']!.args, []);
      assert.equal(b.taskClasses['FAST_SCRIPT']!.timeoutSeconds, 30);
      assert.ok(Object.isFrozen(DEFAULT_TOOLS['run-bash']) && Object.isFrozen(DEFAULT_TASK_CLASSES['LLM_HEAVY']));
    });

    it('takes the project from the file, else the caller, else "sparkq"', () => {
      assert.equal(parseConfig('project: from-file\n', FILE, { defaultProject: 'ws' }).config.project, 'from-file');
      assert.equal(parseConfig('version: 1\n', FILE, { defaultProject: 'ws' }).config.project, 'ws');
      assert.equal(parseConfig('version: 1\n', FILE).config.project, 'sparkq');
      assert.equal(parseConfig('version: 1\n', FILE, { defaultProject: '  ' }).config.project, 'sparkq');
    });

    it('treats a section whose entries are all commented out as empty', () => {
      const { config } = parseConfig('tools:\n  # run-bash: { kind: script }\ntaskClasses:\nworker:\nstore:\n', FILE, { defaultProject: 'p' });
      assert.deepEqual(config, defaultConfig('p'));
    });

    it('resolves a timeout from the tool, else its task class', () => {
      const c = defaultConfig();
      assert.equal(resolveTimeoutSeconds(c, c.tools['run-bash']!), 300);
      assert.equal(resolveTimeoutSeconds(c, c.tools['llm-haiku']!), 300);
      assert.equal(resolveTimeoutSeconds(c, c.tools['llm-codex']!), 900);
      assert.equal(resolveTimeoutSeconds(c, { ...c.tools['llm-codex']!, timeoutSeconds: 42 }), 42);
      assert.throws(() => resolveTimeoutSeconds(c, { ...c.tools['llm-codex']!, taskClass: 'NOPE' }), (e) => isSparkqError(e, 'config'));
    });
  });

  describe('sparkq init', () => {
    it('writes a commented file that parses back to the defaults', () => {
      for (const project of ['my-project', 'with space', 'quote"and\\slash', 'yes', '123', 'ünïcödé', '']) {
        const text = defaultConfigYaml(project);
        assert.match(text, /^# /m);
        const { config, warnings } = parseConfig(text, FILE, { defaultProject: 'other' });
        assert.deepEqual(config, defaultConfig(project), project);
        assert.deepEqual(warnings, []);
      }
    });
  });

  describe('merging over the defaults', () => {
    it('adds and overrides task classes', () => {
      const { config } = parseConfig('taskClasses:\n  FAST_SCRIPT: { timeoutSeconds: 10 }\n  BATCH_2: { timeoutSeconds: 3600 }\n', FILE);
      assert.deepEqual(config.taskClasses['FAST_SCRIPT'], { name: 'FAST_SCRIPT', timeoutSeconds: 10 });
      assert.deepEqual(config.taskClasses['BATCH_2'], { name: 'BATCH_2', timeoutSeconds: 3600 });
      assert.deepEqual(config.taskClasses['LLM_HEAVY'], { name: 'LLM_HEAVY', timeoutSeconds: 900 });
      assert.equal(resolveTimeoutSeconds(config, config.tools['run-bash']!), 300);
    });

    it('replaces a default tool of the same name entirely and adds new ones', () => {
      const text = [
        'taskClasses:',
        '  BATCH: { timeoutSeconds: 7200 }',
        'tools:',
        '  run-bash: { kind: script, taskClass: FAST_SCRIPT }',
        '  llm-codex:',
        '    kind: codex',
        '    taskClass: BATCH',
        '    command: /opt/codex/bin/codex',
        '    model: gpt-5-codex',
        '    sandbox: read-only',
        '    args: [--skip-git-repo-check]',
        '    env: { CODEX_HOME: /tmp/codex }',
        '    maxAttempts: 3',
        '  my.Tool_2:',
        '    kind: claude',
        '    taskClass: LLM_LITE',
        '    permissionMode: acceptEdits',
        '    timeoutSeconds: 60',
        '',
      ].join('\n');
      const { config, warnings } = parseConfig(text, FILE);
      assert.deepEqual(warnings, []);
      // No interpreter or description any more: the file's run-bash replaced the default one.
      assert.deepEqual(config.tools['run-bash'], { name: 'run-bash', kind: 'script', knownKind: 'script', taskClass: 'FAST_SCRIPT', args: [], env: {} });
      assert.deepEqual(config.tools['llm-codex'], {
        name: 'llm-codex',
        kind: 'codex',
        knownKind: 'codex',
        taskClass: 'BATCH',
        command: '/opt/codex/bin/codex',
        model: 'gpt-5-codex',
        sandbox: 'read-only',
        args: ['--skip-git-repo-check'],
        env: { CODEX_HOME: '/tmp/codex' },
        maxAttempts: 3,
      });
      assert.equal(resolveTimeoutSeconds(config, config.tools['llm-codex']), 7200);
      assert.equal(config.tools['my.Tool_2']!.permissionMode, 'acceptEdits');
      assert.equal(resolveTimeoutSeconds(config, config.tools['my.Tool_2']!), 60);
      assert.deepEqual(config.tools['llm-haiku'], DEFAULT_TOOLS['llm-haiku'], 'tools not named keep their defaults');
    });

    it('gives a codex tool the workspace-write sandbox unless it says otherwise', () => {
      const { config } = parseConfig('tools:\n  cx: { kind: codex, taskClass: LLM_HEAVY }\n', FILE);
      assert.equal(config.tools['cx']!.sandbox, 'workspace-write');
    });

    it('store: the embedded store by default; team mode with kind postgres, a URL and a schema; a password in the file is warned about', () => {
      const team = parseConfig('store:\n  kind: postgres\n  url: postgres://sparkq@db.example/team?sslmode=require\n  schema: acme\n', FILE);
      assert.deepEqual(team.config.store, { kind: 'postgres', liveCap: 20000, url: 'postgres://sparkq@db.example/team?sslmode=require', schema: 'acme' });
      assert.deepEqual(team.warnings, []);
      const secret = parseConfig('store:\n  kind: postgres\n  url: postgres://sparkq:hunter2@db.example/team\n', FILE);
      assert.match(secret.warnings.join('\n'), /store\.url has a password in it.*SPARKQ_DATABASE_URL/);
      oneIssue('store:\n  kind: mysql\n', { path: 'store.kind', line: 2, column: 9 }, /sqljs or postgres/);
      oneIssue('store:\n  kind: postgres\n  schema: Bad-Name\n', { path: 'store.schema', line: 3, column: 11 }, /plain lower-case PostgreSQL name/);
    });

    it('reads every other top-level setting', () => {
      const text = 'version: 1\nproject: p\nscriptDirs: [tools/scripts, ./more]\npurgeAfterDays: 14\nworker: { pollSeconds: 0.5 }\nstore: { liveCap: 100 }\n';
      const { config } = parseConfig(text, FILE);
      assert.deepEqual(config.scriptDirs, ['tools/scripts', './more']);
      assert.equal(config.purgeAfterDays, 14);
      assert.deepEqual(config.worker, { pollSeconds: 0.5, leaseSeconds: 30 });
      assert.deepEqual(config.store, { kind: 'sqljs', liveCap: 100 });
      assert.equal(parseConfig('purgeAfterDays: null\n', FILE).config.purgeAfterDays, null);
    });
  });

  describe('pricing', () => {
    it('has built-in defaults per model, documented as 2025 list prices', () => {
      const { pricing } = defaultConfig();
      assert.deepEqual(pricing['gpt-5'], { input: 1.25, cachedInput: 0.125, output: 10 });
      assert.deepEqual(pricing['claude-sonnet-4-5'], { input: 3, cachedInput: 0.3, output: 15 });
      assert.deepEqual(Object.keys(pricing), ['gpt-5', 'gpt-5-codex', 'gpt-5-mini', 'claude-opus-4-5', 'claude-sonnet-4-5', 'claude-haiku-4-5']);
      assert.match(defaultConfigYaml('p'), /^# pricing:\n# {3}gpt-5: \{ input: 1\.25, cachedInput: 0\.125, output: 10 \}$/m);
      const gpt5 = pricing['gpt-5'];
      assert.ok(gpt5);
      gpt5.input = 99;
      assert.equal(defaultConfig().pricing['gpt-5']!.input, 1.25, 'the defaults are copied, never shared');
    });

    it('merges the file over the defaults by model name; cachedInput defaults to the input price', () => {
      const text = 'pricing:\n  gpt-5: { input: 2, cachedInput: 0.5, output: 8 }\n  my-model: { input: 0.4, output: 1.6 }\n';
      const { pricing } = parseConfig(text, FILE).config;
      assert.deepEqual(pricing['gpt-5'], { input: 2, cachedInput: 0.5, output: 8 });
      assert.deepEqual(pricing['my-model'], { input: 0.4, cachedInput: 0.4, output: 1.6 });
      assert.deepEqual(pricing['claude-haiku-4-5'], { input: 1, cachedInput: 0.1, output: 5 });
      assert.deepEqual(parseConfig('pricing:\n', FILE).config.pricing, defaultConfig().pricing);
    });

    it('names the file, line and column of a bad key or value', () => {
      const typo = 'pricing:\n  gpt-5: { input: 1, output: 2, cached: 0.1 }\n';
      oneIssue(typo, { path: 'pricing.gpt-5.cached', ...at(typo, 'cached') }, /expected one of: input, cachedInput, output$/);
      const text = 'pricing:\n  gpt-5: { input: "1.25", output: 10 }\n';
      const issue = oneIssue(text, { path: 'pricing.gpt-5.input', ...at(text, '"1.25"') }, /expected a number of US dollars per million input tokens, 0 or more, got the string "1.25"/);
      assert.equal(issue.line, 2);
      const negative = 'pricing:\n  m: { input: 1, output: -3 }\n';
      oneIssue(negative, { path: 'pricing.m.output', ...at(negative, '-3') }, /per million output tokens, 0 or more, got the number -3/);
      const missing = 'pricing:\n  m: { input: 1 }\n';
      oneIssue(missing, { path: 'pricing.m.output', ...at(missing, '{') }, /output/);
      const list = 'pricing: [gpt-5]\n';
      oneIssue(list, { path: 'pricing', ...at(list, '[') }, /expected a mapping of model name → \{ input, cachedInput, output \}, got a list/);
      try {
        parseConfig(negative, FILE);
        assert.fail('refused');
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        const { line, column } = at(negative, '-3');
        assert.ok(e.message.startsWith(`${FILE}:${line}:${column}: pricing.m.output: `), e.message);
      }
    });
  });

  describe('worktrees and patterns', () => {
    it('defaults: no copies or links, no setup, git\'s author, fast-forward or merge; patterns in sparkq/patterns', () => {
      const c = defaultConfig('p');
      assert.deepEqual(c.worktree, { copy: [], link: [], setup: null, author: null, merge: 'ff-or-merge' });
      assert.equal(c.patternsDir, 'sparkq/patterns');
    });

    it('reads the worktree section, a tool\'s isolation and the patterns folder', () => {
      const { config } = parseConfig(
        [
          'version: 1',
          'worktree:',
          '  copy: [.env, "config/*.local"]',
          '  link: [node_modules]',
          '  setup: setup-worktree.sh',
          '  author: "Spark Bot <bot@example.com>"',
          '  merge: ff-only',
          'patterns: prompts/patterns',
          'tools:',
          '  iso-bash: { kind: script, taskClass: FAST_SCRIPT, interpreter: bash, isolation: worktree }',
          '  plain: { kind: script, taskClass: FAST_SCRIPT, isolation: none }',
        ].join('\n'),
        FILE,
      );
      assert.deepEqual(config.worktree, { copy: ['.env', 'config/*.local'], link: ['node_modules'], setup: 'setup-worktree.sh', author: 'Spark Bot <bot@example.com>', merge: 'ff-only' });
      assert.equal(config.patternsDir, 'prompts/patterns');
      assert.equal(config.tools['iso-bash']!.isolation, 'worktree');
      assert.equal(config.tools['plain']!.isolation, undefined);
    });

    it('names the orchestrator (default claude-sonnet-4-5), null for none, and warns when it has no price', () => {
      assert.equal(defaultConfig('p').orchestrator, 'claude-sonnet-4-5');
      assert.equal(parseConfig('version: 1\norchestrator: null\n', FILE).config.orchestrator, null);
      const r = parseConfig('version: 1\norchestrator: my-model\n', FILE);
      assert.equal(r.config.orchestrator, 'my-model');
      assert.ok(r.warnings.some((w) => /orchestrator my-model has no price: add it under pricing:/.test(w)), r.warnings.join('; '));
      assert.deepEqual(parseConfig('version: 1\norchestrator: mine\npricing: { mine: { input: 1, output: 2 } }\n', FILE).warnings, []);
    });

    it('refuses globs that leave the repository, a bad author, an unknown merge mode and isolation, with their lines', () => {
      const text = ['version: 1', 'worktree:', '  copy: [../secrets]', '  link: [/abs]', '  author: bot', '  merge: rebase', 'tools:', '  t: { kind: script, taskClass: FAST_SCRIPT, isolation: container }'].join('\n');
      const issues = issuesOf(text);
      const byPath = new Map(issues.map((i) => [i.path, i]));
      assert.match(byPath.get('worktree.copy[0]')!.message, /inside the repository.*"\.\.\/secrets"/);
      assert.equal(byPath.get('worktree.copy[0]')!.line, 3);
      assert.match(byPath.get('worktree.link[0]')!.message, /inside the repository/);
      assert.match(byPath.get('worktree.author')!.message, /Name <email>/);
      assert.match(byPath.get('worktree.merge')!.message, /ff-or-merge, ff-only, merge/);
      assert.match(byPath.get('tools.t.isolation')!.message, /worktree or none/);
      assert.equal(byPath.get('tools.t.isolation')!.line, 8);
    });
  });

  describe('unknown tool kinds', () => {
    it('are accepted with a warning and run as manual', () => {
      const { config, warnings } = parseConfig('tools:\n  robo: { kind: robot, taskClass: LLM_LITE }\n', FILE);
      assert.deepEqual(warnings, ['tool robo has unknown kind robot; it will run as manual']);
      assert.equal(config.tools['robo']!.kind, 'robot');
      assert.equal(config.tools['robo']!.knownKind, 'manual');
    });

    it('warns about a setting the kind never reads', () => {
      const { warnings } = parseConfig('tools:\n  m: { kind: manual, taskClass: LLM_LITE, sandbox: read-only }\n', FILE);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /tool m: sandbox applies only to codex tools/);
    });
  });

  describe('errors say where and what was expected', () => {
    it('an unknown top-level key', () => {
      oneIssue('version: 1\nprojct: x\n', { path: 'projct', line: 2, column: 1 }, /unknown key "projct" \(did you mean "project"\?\); expected one of: version, project/);
    });

    it('a typo in a tool key', () => {
      oneIssue(
        'tools:\n  run-bash:\n    kind: script\n    taskClass: FAST_SCRIPT\n    descripton: hi\n',
        { path: 'tools.run-bash.descripton', line: 5, column: 5 },
        /unknown key "descripton" \(did you mean "description"\?\)/,
      );
    });

    it('a typo in a nested section', () => {
      oneIssue('worker:\n  pollSecs: 3\n', { path: 'worker.pollSecs', line: 2, column: 3 }, /did you mean "pollSeconds"/);
    });

    it('every section lists the keys it accepts, read from the schema', () => {
      oneIssue('retry:\n  backoff: 3\n', { path: 'retry.backoff', line: 2, column: 3 }, /expected one of: backoffSeconds, maxBackoffSeconds, rateLimitPauseSeconds$/);
      oneIssue('store:\n  cap: 300\n', { path: 'store.cap', line: 2, column: 3 }, /expected one of: kind, liveCap, url, schema$/);
    });

    it('a value of the wrong type', () => {
      oneIssue('scriptDirs: scripts\n', { path: 'scriptDirs', line: 1, column: 13 }, /expected a list of folders .*, got the string "scripts"/);
      const args = 'tools:\n  x: { kind: script, taskClass: FAST_SCRIPT, args: [-n, 3] }\n';
      oneIssue(args, { path: 'tools.x.args[1]', ...at(args, '3]') }, /expected a string .*got the number 3/);
      oneIssue('tools:\n  x: 5\n', { path: 'tools.x', line: 2, column: 6 }, /expected a mapping of tool settings.*got the number 5/);
    });

    it('the string "30" where a number is expected', () => {
      oneIssue(
        'taskClasses:\n  FAST_SCRIPT: { timeoutSeconds: "30" }\n',
        { path: 'taskClasses.FAST_SCRIPT.timeoutSeconds', line: 2, column: 34 },
        /expected a whole number of seconds .*, got the string "30"/,
      );
      oneIssue('worker:\n  leaseSeconds: "30"\n', { path: 'worker.leaseSeconds', line: 2, column: 17 }, /expected a positive number of seconds, got the string "30"/);
    });

    it('version 1.10, "1" and 1.0 are not the integer 1', () => {
      oneIssue('version: 1.10\n', { path: 'version', line: 1, column: 10 }, /expected the integer 1 .*got the number 1\.1/);
      oneIssue('version: "1"\n', { path: 'version', line: 1, column: 10 }, /expected the integer 1 .*got the string "1"/);
      oneIssue('version: 1.0\n', { path: 'version', line: 1, column: 10 }, /expected an integer, got the float 1\.0/);
      oneIssue('version: 2\n', { path: 'version', line: 1, column: 10 }, /expected the integer 1/);
      assert.equal(parseConfig('version: 1\n', FILE).config.version, 1);
    });

    it('an integer setting written as a float', () => {
      oneIssue('store:\n  liveCap: 1e3\n', { path: 'store.liveCap', line: 2, column: 12 }, /expected an integer, got the float 1e3/);
      const text = 'tools:\n  x: { kind: manual, taskClass: LLM_LITE, maxAttempts: 2.5 }\n';
      oneIssue(text, { path: 'tools.x.maxAttempts', ...at(text, '2.5') }, /from 1 to 100, got the number 2\.5/);
    });

    it('a task class that is not defined', () => {
      oneIssue(
        'tools:\n  x:\n    kind: script\n    taskClass: SLOW_SCRIPT\n',
        { path: 'tools.x.taskClass', line: 4, column: 16 },
        /unknown task class "SLOW_SCRIPT"; expected one of FAST_SCRIPT, MEDIUM_SCRIPT, LLM_LITE, LLM_HEAVY/,
      );
      // Defined in the same file: fine.
      parseConfig('taskClasses:\n  SLOW_SCRIPT: { timeoutSeconds: 3000 }\ntools:\n  x: { kind: script, taskClass: SLOW_SCRIPT }\n', FILE);
    });

    it('a missing required tool key', () => {
      oneIssue('tools:\n  x:\n    kind: script\n', { path: 'tools.x.taskClass', line: 3, column: 5 }, /missing; expected the name of a task class/);
      oneIssue('tools:\n  x:\n', { path: 'tools.x', line: 2, column: 3 }, /expected a mapping of tool settings.*got an empty value/);
    });

    it('a bad tool name and a bad task class name', () => {
      oneIssue('tools:\n  "-bad name":\n    kind: manual\n    taskClass: LLM_LITE\n', { path: 'tools["-bad name"]', line: 2, column: 3 }, /a tool name must start with a letter or digit/);
      oneIssue(`tools:\n  ${'a'.repeat(65)}: { kind: manual, taskClass: LLM_LITE }\n`, { path: `tools.${'a'.repeat(65)}`, line: 2, column: 3 }, /at most 64 characters/);
      oneIssue('taskClasses:\n  slow: { timeoutSeconds: 3 }\n', { path: 'taskClasses.slow', line: 2, column: 3 }, /UPPER_CASE/);
    });

    it('refuses danger-full-access and bypassPermissions from the workspace file', () => {
      oneIssue(
        'tools:\n  llm-codex:\n    kind: codex\n    taskClass: LLM_HEAVY\n    sandbox: danger-full-access\n',
        { path: 'tools.llm-codex.sandbox', line: 5, column: 14 },
        /^sandbox danger-full-access is only honoured from a user-level setting or a CLI flag, never from the workspace's sparkq.yml$/,
      );
      const claude = 'tools:\n  llm-claude: { kind: claude, taskClass: LLM_HEAVY, permissionMode: bypassPermissions }\n';
      oneIssue(
        claude,
        { path: 'tools.llm-claude.permissionMode', ...at(claude, 'bypassPermissions') },
        /^permissionMode bypassPermissions is only honoured from a user-level setting or a CLI flag, never from the workspace's sparkq.yml$/,
      );
      // Nor through the back door of extra arguments.
      const issues = issuesOf(
        'tools:\n  cx: { kind: codex, taskClass: LLM_HEAVY, args: [--dangerously-bypass-approvals-and-sandbox] }\n' +
          '  cl: { kind: claude, taskClass: LLM_HEAVY, args: [--permission-mode=bypassPermissions] }\n',
      );
      assert.deepEqual(
        issues.map((i) => [i.path, i.line]),
        [
          ['tools.cx.args[0]', 2],
          ['tools.cl.args[0]', 3],
        ],
      );
      for (const i of issues) assert.match(i.message, /only honoured from a user-level setting or a CLI flag/);
      // Script arguments are the script's business.
      parseConfig('tools:\n  s: { kind: script, taskClass: FAST_SCRIPT, args: [--bypass-cache] }\n', FILE);
    });

    it('a YAML syntax error', () => {
      const [i, ...rest] = issuesOf('tools:\n  a: [1, 2\nb: 3\n');
      assert.equal(rest.length, 0);
      assert.equal(i!.line, 3);
      assert.equal(i!.column, 1);
      assert.match(i!.message, /^YAML syntax error: /);
      const [j] = issuesOf('project: "unterminated\n');
      assert.equal(j!.path, 'project');
      assert.equal(j!.line, 2, 'where the parser ran out of text looking for the quote');
      assert.match(j!.message, /^YAML syntax error: /);
    });

    it('a duplicate key', () => {
      oneIssue('version: 1\nproject: a\nproject: b\n', { path: 'project', line: 3, column: 1 }, /duplicate key/);
      oneIssue('tools:\n  x:\n    kind: manual\n    kind: script\n    taskClass: LLM_LITE\n', { path: 'tools.x.kind', line: 4, column: 5 }, /duplicate key/);
    });

    it('a duplicate key after a mapping that ends in a comment is named itself, not the key before it', () => {
      // The generated file ends with retry's mapping and a trailing comment; its range runs up to the next key.
      const generated = defaultConfigYaml('demo');
      const text = `${generated}tools:\n  x: { kind: manual, taskClass: LLM_LITE }\n`;
      oneIssue(text, { path: 'tools', line: generated.split('\n').length, column: 1 }, /^duplicate key: /);
      // The same one level down: a second key after a sibling's nested mapping with a comment.
      const nested = 'tools:\n  x:\n    kind: manual\n    env:\n      A: "1"  # a comment\n    kind: script\n';
      oneIssue(nested, { path: 'tools.x.kind', ...at(nested, 'kind: script') }, /^duplicate key: /);
    });

    it('a top level that is not a mapping', () => {
      oneIssue('- version: 1\n', { path: '', line: 1, column: 1 }, /expected a mapping of settings at the top level .*got a list/);
      oneIssue('just text\n', { path: '', line: 1, column: 1 }, /got a single value/);
      oneIssue('---\n# c\n42\n', { path: '', line: 3, column: 1 }, /got a single value/);
    });

    it('a negative or zero timeout', () => {
      oneIssue('taskClasses:\n  LLM_LITE:\n    timeoutSeconds: -5\n', { path: 'taskClasses.LLM_LITE.timeoutSeconds', line: 3, column: 21 }, /expected a whole number of seconds from 1 to \d+, got the number -5/);
      const zero = 'tools:\n  x: { kind: manual, taskClass: LLM_LITE, timeoutSeconds: 0 }\n';
      oneIssue(zero, { path: 'tools.x.timeoutSeconds', ...at(zero, '0 }') }, /got the number 0/);
    });

    it('other out-of-range values', () => {
      oneIssue('store: { liveCap: 99 }\n', { path: 'store.liveCap', line: 1, column: 19 }, /at least 100, got the number 99/);
      oneIssue('purgeAfterDays: 0\n', { path: 'purgeAfterDays', line: 1, column: 17 }, /or null to never purge/);
      oneIssue('worker: { pollSeconds: .inf }\n', { path: 'worker.pollSeconds', line: 1, column: 24 }, /positive number/);
      oneIssue('scriptDirs: [ok, ../outside]\n', { path: 'scriptDirs[1]', line: 1, column: 18 }, /relative to the workspace root and inside it/);
      oneIssue('scriptDirs: [/etc]\n', { path: 'scriptDirs[0]', line: 1, column: 14 }, /relative to the workspace root/);
      const env = 'tools:\n  x: { kind: manual, taskClass: LLM_LITE, env: { "A=B": x } }\n';
      oneIssue(env, { path: 'tools.x.env["A=B"]', ...at(env, '"A=B"') }, /environment variable name/);
    });

    it('more than one document', () => {
      oneIssue('version: 1\n---\nversion: 1\n', { path: '', line: 2, column: 1 }, /a single YAML document/);
    });

    it('reports every issue at once, in file order', () => {
      const issues = issuesOf('projct: x\nversion: "1"\ntools:\n  x: { kind: codex, taskClass: NOPE, sandbox: danger-full-access }\n');
      assert.deepEqual(
        issues.map((i) => i.path),
        ['projct', 'version', 'tools.x.taskClass', 'tools.x.sandbox'],
      );
    });

    it('formats the message as file:line:column: path: message', () => {
      try {
        parseConfig('version: 1\nprojct: x\n', FILE);
        assert.fail('expected an error');
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /^\/ws\/sparkq\.yml:2:1: projct: unknown key "projct"/);
      }
    });
  });

  describe('loadConfigFile', () => {
    let t: ReturnType<typeof tempDir>;
    beforeEach(() => (t = tempDir()));
    afterEach(() => t.cleanup());

    it('reads a file', () => {
      const file = path.join(t.dir, 'sparkq.yml');
      fs.writeFileSync(file, defaultConfigYaml('x'));
      assert.deepEqual(loadConfigFile(file).config, defaultConfig('x'));
    });

    it('says to run sparkq init when the file is missing', () => {
      const file = path.join(t.dir, 'sparkq.yml');
      assert.throws(
        () => loadConfigFile(file),
        (e) => e instanceof ConfigError && e.file === file && e.issues[0]!.line === null && /run `sparkq init`/.test(e.message),
      );
    });

    it('refuses a directory', () => {
      assert.throws(() => loadConfigFile(t.dir), (e) => e instanceof ConfigError && /expected a file/.test(e.message));
    });
  });

  describe('JSON Schema', () => {
    const schema = configJsonSchema() as Record<string, unknown>;

    it('is a draft 2020-12 object schema with titles that refuses unknown keys', () => {
      assert.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema');
      assert.equal(schema['type'], 'object');
      assert.equal(schema['additionalProperties'], false);
      assert.equal(typeof schema['title'], 'string');
      assert.equal(typeof schema['description'], 'string');
      const props = schema['properties'] as Record<string, unknown>;
      assert.deepEqual(Object.keys(props).sort(), ['orchestrator', 'patterns', 'pricing', 'project', 'purgeAfterDays', 'retry', 'scriptDirs', 'store', 'taskClasses', 'tools', 'version', 'worker', 'worktree']);
      assert.ok(!('required' in schema) || (schema['required'] as unknown[]).length === 0, 'no top-level key is required');
    });

    it('accepts the files that parseConfig accepts', () => {
      const valid = [
        defaultConfigYaml('p'),
        '',
        'tools:\n  Run-Bash.2: { kind: robot, taskClass: X_1 }\ntaskClasses:\n  X_1: { timeoutSeconds: 5 }\n',
        'tools:\n  c: { kind: codex, taskClass: LLM_HEAVY, sandbox: read-only, args: [a], env: { A_1: b }, maxAttempts: 100, timeoutSeconds: 1 }\n',
        'worker: { pollSeconds: 0.25, leaseSeconds: 10 }\nstore: { liveCap: 100 }\npurgeAfterDays: 7\n',
        'tools:\ntaskClasses:\nworker:\nstore:\n',
      ];
      for (const text of valid) {
        parseConfig(text, FILE);
        const errors = validate(schema, parseYaml(text) ?? {}, '');
        assert.deepEqual(errors, [], text);
      }
    });

    it('rejects a misspelt key and a wrong type, like parseConfig', () => {
      assert.notDeepEqual(validate(schema, { tools: { x: { kind: 'manual', taskClass: 'A', descripton: 'x' } } }, ''), []);
      assert.notDeepEqual(validate(schema, { taskClasses: { A: { timeoutSeconds: '30' } } }, ''), []);
      assert.notDeepEqual(validate(schema, { tools: { x: { kind: 'codex', taskClass: 'A', sandbox: 'danger-full-access' } } }, ''), []);
    });
  });
});

/**
 * Just enough of a JSON Schema validator for the keywords z.toJSONSchema emits for this schema, so that the test can
 * show the schema accepts real files without pulling in a validator dependency. An unknown keyword fails the test.
 */
function validate(schema: unknown, value: unknown, at: string): string[] {
  if (schema === true) return [];
  const s = schema as Record<string, unknown>;
  const errs: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  for (const [k, v] of Object.entries(s)) {
    switch (k) {
      case '$schema':
      case 'title':
      case 'description':
      case 'examples':
      case 'default':
        break;
      case 'type': {
        const ok =
          v === 'object' ? isObj(value)
          : v === 'array' ? Array.isArray(value)
          : v === 'string' ? typeof value === 'string'
          : v === 'number' ? typeof value === 'number'
          : v === 'integer' ? Number.isInteger(value)
          : v === 'boolean' ? typeof value === 'boolean'
          : v === 'null' ? value === null
          : assert.fail(`type ${String(v)}`);
        if (!ok) errs.push(`${at}: not ${String(v)}`);
        break;
      }
      case 'const':
        if (value !== v) errs.push(`${at}: not ${String(v)}`);
        break;
      case 'enum':
        if (!(v as unknown[]).includes(value)) errs.push(`${at}: not in enum`);
        break;
      case 'anyOf':
        if (!(v as unknown[]).some((sub) => validate(sub, value, at).length === 0)) errs.push(`${at}: matches no anyOf branch`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < (v as number)) errs.push(`${at}: < minimum`);
        break;
      case 'maximum':
        if (typeof value === 'number' && value > (v as number)) errs.push(`${at}: > maximum`);
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && value <= (v as number)) errs.push(`${at}: <= exclusiveMinimum`);
        break;
      case 'minLength':
        if (typeof value === 'string' && value.length < (v as number)) errs.push(`${at}: too short`);
        break;
      case 'maxLength':
        if (typeof value === 'string' && value.length > (v as number)) errs.push(`${at}: too long`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(v as string, 'u').test(value)) errs.push(`${at}: does not match ${String(v)}`);
        break;
      case 'items':
        if (Array.isArray(value)) value.forEach((it, i) => errs.push(...validate(v, it, `${at}[${i}]`)));
        break;
      case 'required':
        if (isObj(value)) for (const r of v as string[]) if (!(r in value)) errs.push(`${at}.${r}: required`);
        break;
      case 'propertyNames':
        if (isObj(value)) for (const key of Object.keys(value)) errs.push(...validate(v, key, `${at}{${key}}`));
        break;
      case 'properties':
        if (isObj(value))
          for (const [key, sub] of Object.entries(v as Record<string, unknown>)) if (key in value) errs.push(...validate(sub, value[key], `${at}.${key}`));
        break;
      case 'additionalProperties':
        if (isObj(value)) {
          const known = Object.keys((s['properties'] as Record<string, unknown> | undefined) ?? {});
          for (const [key, sub] of Object.entries(value)) {
            if (known.includes(key)) continue;
            if (v === false) errs.push(`${at}.${key}: additional property`);
            else errs.push(...validate(v, sub, `${at}.${key}`));
          }
        }
        break;
      default:
        assert.fail(`the test validator does not know the keyword ${k}`);
    }
  }
  return errs;
}
