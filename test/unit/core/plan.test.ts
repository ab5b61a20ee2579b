import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { isSparkqError } from '../../../src/core/errors';
import { loadPlanFile, type Plan, type PlanChecks, PlanError, type PlanIssue, type PlanTask, parsePlan } from '../../../src/core/plan';
import { analyzePlan, formatPlanGraph } from '../../../src/core/planGraph';
import { tempDir } from '../../support/tmp';

const FILE = '/ws/plans/feature.yml';
const TOOLS = ['run-bash', 'run-python', 'llm-codex', 'llm-claude'];
const EXISTING = 'tsk_4k2m9x0q7hzt';
const CHECKS: PlanChecks = {
  tools: TOOLS,
  queueExists: (q) => q === 'backend' || q === 'frontend' || q === 'que_0123456789ab',
  taskExists: (id) => id === EXISTING,
};

/** Parses text that must be invalid and returns its issues. */
function issuesOf(text: string, checks: PlanChecks = CHECKS, opts: { readFile?: (p: string) => string } = {}, file = FILE): PlanIssue[] {
  try {
    parsePlan(text, file, checks, opts);
  } catch (e) {
    assert.ok(e instanceof PlanError, `expected a PlanError, got ${String(e)}`);
    assert.ok(isSparkqError(e, 'invalid-input'));
    assert.equal(e.file, file);
    assert.equal(e.message.split('\n').length, e.issues.length, 'one message line per issue');
    return e.issues;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** The one issue whose message matches `re`. */
function issue(issues: PlanIssue[], re: RegExp): PlanIssue {
  const found = issues.filter((i) => re.test(i.message));
  assert.equal(found.length, 1, `expected one issue matching ${re}, got:\n${issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`).join('\n')}`);
  return found[0]!;
}

/** Line and column (1-based) of the first `needle` in `text`. */
function at(text: string, needle: string): { line: number; column: number } {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} not in the text`);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

function lineOf(text: string, needle: string): number {
  return at(text, needle).line;
}

const keys = (p: Plan) => p.tasks.map((t) => t.key);
const task = (p: Plan, key: string): PlanTask => {
  const t = p.tasks.find((x) => x.key === key);
  assert.ok(t, `no task ${key}`);
  return t;
};

describe('plan files', () => {
  describe('valid plans', () => {
    it('reads a flat plan with defaults, overrides and payloads', () => {
      const text = [
        'id: feature-login',
        'description: Build the login feature',
        'defaults:',
        '  queue: backend',
        '  tool: run-bash',
        '  timeoutSeconds: 300',
        '  priority: 0',
        'tasks:',
        '  - name: schema',
        '    tool: llm-codex',
        '    prompt: Write the schema',
        '    timeoutSeconds: 600',
        '    priority: 5',
        '  - name: migrate',
        '    queue: que_0123456789ab',
        '    payload: { script: migrate.sh, args: [1, true, null] }',
        '    after: [schema]',
        '',
      ].join('\n');
      const plan = parsePlan(text, FILE, CHECKS);
      assert.equal(plan.id, 'feature-login');
      assert.equal(plan.description, 'Build the login feature');
      assert.deepEqual(plan.tasks, [
        { key: 'schema', queue: 'backend', tool: 'llm-codex', prompt: 'Write the schema', timeoutSeconds: 600, priority: 5, after: [], batch: null, line: 9 },
        {
          key: 'migrate',
          queue: 'que_0123456789ab',
          tool: 'run-bash',
          payload: { script: 'migrate.sh', args: [1, true, null] },
          timeoutSeconds: 300,
          priority: 0,
          after: ['schema'],
          batch: null,
          line: 14,
        },
      ]);
    });

    it('takes the id from the file name when none is written, and needs no defaults when tasks say everything', () => {
      const plan = parsePlan('tasks:\n  - { name: a, queue: backend, tool: run-bash, prompt: x }\n', '/ws/release-1.2.yml', CHECKS);
      assert.equal(plan.id, 'release-1.2');
      assert.equal(plan.description, null);
      assert.deepEqual(plan.tasks[0], { key: 'a', queue: 'backend', tool: 'run-bash', prompt: 'x', after: [], batch: null, line: 2 });
    });

    it('expands batch names and batch-level after into the tasks they stand for', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: setup, prompt: s }',
        '  - { name: docs, prompt: d, after: [ui] }',
        'batches:',
        '  - name: api',
        '    after: [setup]',
        '    tasks:',
        '      - { name: schema, prompt: s }',
        '      - { name: routes, prompt: r, after: [schema, setup] }',
        '  - name: ui',
        `    after: [api, ${EXISTING}]`,
        '    tasks:',
        '      - { name: login, prompt: l, queue: frontend }',
        '      - { name: logout, prompt: l, queue: frontend, after: [login] }',
        '',
      ].join('\n');
      const plan = parsePlan(text, FILE, CHECKS);
      assert.deepEqual(task(plan, 'setup').after, []);
      assert.deepEqual(task(plan, 'schema').after, ['setup']);
      assert.deepEqual(task(plan, 'routes').after, ['schema', 'setup'], 'deduplicated');
      assert.deepEqual(task(plan, 'login').after, ['schema', 'routes', EXISTING]);
      assert.deepEqual(task(plan, 'logout').after, ['login', 'schema', 'routes', EXISTING]);
      assert.deepEqual(task(plan, 'docs').after, ['login', 'logout']);
      assert.equal(task(plan, 'login').batch, 'ui');
      assert.equal(task(plan, 'docs').batch, null);
      assert.equal(task(plan, 'login').line, lineOf(text, '{ name: login'));
      assert.deepEqual(keys(plan), ['setup', 'schema', 'routes', 'login', 'logout', 'docs']);
    });

    it('accepts tsk_ ids without checking them when no taskExists is given', () => {
      const plan = parsePlan('tasks:\n  - { name: a, queue: q, tool: run-bash, prompt: x, after: [tsk_000000000000] }\n', FILE, { tools: TOOLS });
      assert.deepEqual(plan.tasks[0]!.after, ['tsk_000000000000']);
    });

    it('reads promptFile relative to the plan file folder', () => {
      const read: string[] = [];
      const plan = parsePlan('defaults: { queue: backend, tool: llm-codex }\ntasks:\n  - { name: a, promptFile: prompts/a.md }\n  - { name: b, promptFile: ../shared/b.md }\n', FILE, CHECKS, {
        readFile: (p) => {
          read.push(p);
          return `content of ${path.basename(p)}`;
        },
      });
      assert.deepEqual(read, [path.resolve('/ws/plans/prompts/a.md'), path.resolve('/ws/shared/b.md')]);
      assert.equal(task(plan, 'a').prompt, 'content of a.md');
      assert.equal(task(plan, 'b').prompt, 'content of b.md');
    });

    it('loads a plan file and its prompt files from disk', () => {
      const { dir, cleanup } = tempDir();
      try {
        fs.mkdirSync(path.join(dir, 'prompts'));
        fs.writeFileSync(path.join(dir, 'prompts', 'a.md'), 'Do A\n');
        const file = path.join(dir, 'build.yml');
        fs.writeFileSync(file, 'defaults: { queue: backend, tool: llm-codex }\ntasks:\n  - { name: a, promptFile: prompts/a.md }\n');
        const plan = loadPlanFile(file, CHECKS);
        assert.equal(plan.id, 'build');
        assert.equal(plan.tasks[0]!.prompt, 'Do A\n');

        fs.writeFileSync(file, 'defaults: { queue: backend, tool: llm-codex }\ntasks:\n  - { name: a, promptFile: prompts/missing.md }\n');
        assert.throws(
          () => loadPlanFile(file, CHECKS),
          (e: unknown) => e instanceof PlanError && e.issues[0]!.line === 3 && /cannot read prompt file .*missing\.md: no such file/.test(e.message),
        );
      } finally {
        cleanup();
      }
    });

    it('orders tasks topologically, otherwise in file order', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'batches:',
        '  - name: late',
        '    tasks:',
        '      - { name: c, prompt: x, after: [b] }',
        '      - { name: x, prompt: x }',
        'tasks:',
        '  - { name: b, prompt: x, after: [a] }',
        '  - { name: y, prompt: x }',
        '  - { name: a, prompt: x }',
        '',
      ].join('\n');
      const plan = parsePlan(text, FILE, CHECKS);
      // File order is c x b y a; c waits on b, b on a.
      assert.deepEqual(keys(plan), ['x', 'y', 'a', 'b', 'c']);
    });
  });

  describe('merge: auto on a batch', () => {
    it('puts the batch\'s tasks in one merge group (plan id / batch name); other tasks have none', () => {
      const text = 'id: rel\nbatches:\n  - name: parts\n    merge: auto\n    tasks:\n      - { name: a, queue: backend, tool: run-bash, prompt: x }\n  - name: rest\n    tasks:\n      - { name: b, queue: backend, tool: run-bash, prompt: y }\n';
      const plan = parsePlan(text, FILE, CHECKS);
      assert.equal(task(plan, 'a').mergeGroup, 'rel/parts');
      assert.equal(task(plan, 'b').mergeGroup, undefined);
    });

    it('refuses another value, with its line', () => {
      const text = 'batches:\n  - name: parts\n    merge: yes\n    tasks:\n      - { name: a, queue: backend, tool: run-bash, prompt: x }\n';
      const i = issue(issuesOf(text), /auto or none/);
      assert.equal(i.line, 3);
    });
  });

  describe('validate: on defaults, a batch and a task', () => {
    it('gives each task its validator: the task\'s own, else its batch\'s, else the defaults\'', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash, validate: { tool: llm-claude, prompt: Check it } }',
        'tasks:',
        '  - { name: a, prompt: x }',
        '  - { name: b, prompt: y, validate: { tool: run-python, prompt: check.py, maxRounds: 3, queue: backend } }',
        'batches:',
        '  - name: parts',
        '    validate: { tool: llm-codex }',
        '    tasks:',
        '      - { name: c, prompt: z }',
        '      - { name: d, prompt: w, validate: { tool: run-bash, prompt: check.sh, maxRounds: 1 } }',
      ].join('\n') + '\n';
      const plan = parsePlan(text, FILE, CHECKS);
      assert.deepEqual(task(plan, 'a').validate, { tool: 'llm-claude', prompt: 'Check it' });
      assert.deepEqual(task(plan, 'b').validate, { tool: 'run-python', prompt: 'check.py', maxRounds: 3, queue: 'backend' });
      assert.deepEqual(task(plan, 'c').validate, { tool: 'llm-codex' });
      assert.deepEqual(task(plan, 'd').validate, { tool: 'run-bash', prompt: 'check.sh', maxRounds: 1 });
    });

    it('the dry run shows each validator and counts the validations on the critical path', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: a, prompt: x, validate: { tool: llm-claude, maxRounds: 3 } }',
        '  - { name: b, prompt: y, after: [a] }',
      ].join('\n') + '\n';
      const plan = parsePlan(text, FILE, CHECKS);
      const out = formatPlanGraph(plan, analyzePlan(plan));
      assert.match(out, /^ {2}a {2}queue backend {2}tool run-bash {2}validated by llm-claude \(up to 3 rounds\)$/m);
      assert.match(out, /^Critical path: 2 tasks and 1 validation: a → a's validation → b$/m);
    });

    it('checks a validator strictly, with its line: unknown keys, unknown tools and queues, rounds out of range', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash, validate: { tool: nope } }',
        'tasks:',
        '  - { name: a, prompt: x, validate: { tool: run-bash, rounds: 2 } }',
        '  - { name: b, prompt: y, validate: { tool: run-bash, maxRounds: 11 } }',
        '  - { name: c, prompt: z, validate: { tool: run-bash, queue: elsewhere } }',
        '  - { name: d, prompt: w, validate: run-bash }',
      ].join('\n') + '\n';
      const issues = issuesOf(text);
      assert.equal(issue(issues, /unknown tool "nope"/).line, 1);
      assert.equal(issue(issues, /rounds/).line, 3);
      assert.equal(issue(issues, /a whole number from 1 to 10/).line, 4);
      assert.equal(issue(issues, /unknown queue "elsewhere"/).line, 5);
      assert.equal(issue(issues, /a validator: a mapping with tool/).line, 6);
    });
  });

  describe('errors, each with its line', () => {
    it('reports YAML syntax errors', () => {
      const text = 'tasks:\n  - name: a\n    prompt: [unclosed\n';
      const [i, ...rest] = issuesOf(text);
      assert.equal(rest.length, 0);
      assert.match(i!.message, /^YAML syntax error: /);
      assert.ok(i!.line! >= 3, `line ${i!.line}`);
    });

    it('reports duplicate keys as YAML errors', () => {
      const text = 'tasks:\n  - name: a\n    name: b\n';
      assert.equal(issue(issuesOf(text), /duplicate key/).line, 3);
      // After a mapping whose last line has a comment, the duplicate is named itself, not the last key before it.
      const again = 'defaults:\n  queue: backend\n  tool: run-bash  # every task\ntasks:\n  - { name: a, prompt: x }\ndefaults:\n  queue: other\n';
      const dup = issue(issuesOf(again), /duplicate key/);
      assert.deepEqual({ path: dup.path, line: dup.line, column: dup.column }, { path: 'defaults', line: 6, column: 1 });
    });

    it('reports unknown keys with the allowed keys and a near miss', () => {
      const text = 'defaults: { queue: backend, tool: run-bash }\ntaks: []\ntasks:\n  - name: a\n    prompt: x\n    afterr: [b]\nbatches:\n  - { name: g, tasks: [], wait: [a] }\n';
      const issues = issuesOf(text);
      const top = issue(issues, /unknown key "taks"/);
      assert.deepEqual([top.line, top.column], [2, 1]);
      assert.match(top.message, /did you mean "tasks"\?.*expected one of: id, description, defaults, tasks, batches/);
      const t = issue(issues, /unknown key "afterr"/);
      assert.equal(t.line, 6);
      assert.equal(t.path, 'tasks[0].afterr');
      assert.match(t.message, /did you mean "after"\?.*expected one of: name, queue, tool, prompt, promptFile, payload, timeoutSeconds, priority, after/);
      const b = issue(issues, /unknown key "wait"/);
      assert.equal(b.line, 8);
      assert.match(b.message, /expected one of: name, after, tasks/);
    });

    it('reports wrong types without coercing anything', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - name: a',
        '    prompt: x',
        '    timeoutSeconds: "30"',
        '  - name: b',
        '    prompt: x',
        '    priority: 1.0',
        '  - name: c',
        '    prompt: 42',
        '    after: a',
        '  - name: d',
        '    prompt: x',
        '    timeoutSeconds: 604801',
        '  - 17',
        '',
      ].join('\n');
      const issues = issuesOf(text);
      const ts = issue(issues, /got the string "30"/);
      assert.deepEqual([ts.line, ts.column, ts.path], [5, 21, 'tasks[0].timeoutSeconds']);
      assert.match(ts.message, /expected a whole number of seconds from 1 to 604800/);
      assert.equal(issue(issues, /expected an integer, got the float 1\.0/).line, 8);
      assert.equal(issue(issues, /expected a string \(the prompt\), got the number 42/).line, 10);
      assert.equal(issue(issues, /expected a list of task or batch names/).line, 11);
      assert.equal(issue(issues, /got the number 604801/).line, 14);
      assert.equal(issue(issues, /expected a task: a mapping/).line, 15);
    });

    it('points a missing key at its mapping, and checks tasks inside batches the same way', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'batches:',
        '  - name: g',
        '    tasks:',
        '      - prompt: x',
        '      - { name: b, prompt: x, payload: .inf, tool: run-bash, queu: backend }',
        '  - name: h',
        '',
      ].join('\n');
      const issues = issuesOf(text);
      const name = issue(issues, /missing; expected a task name/);
      assert.deepEqual([name.line, name.path], [5, 'batches[0].tasks[0].name']);
      const key = issue(issues, /unknown key "queu"/);
      assert.deepEqual([key.line, key.path], [6, 'batches[0].tasks[1].queu']);
      assert.match(key.message, /did you mean "queue"\?/);
      assert.equal(issue(issues, /got the number Infinity/).line, 6);
      assert.deepEqual(issue(issues, /missing; expected a list of tasks/).line, 7);
    });

    it('reports a task without queue or tool when there is no default', () => {
      const text = 'tasks:\n  - name: a\n    prompt: x\n  - name: b\n    queue: backend\n    prompt: x\n';
      const issues = issuesOf(text);
      const q = issue(issues, /task "a" has no queue/);
      assert.equal(q.line, 2);
      assert.match(q.message, /set queue on the task, or a default for every task under defaults/);
      assert.equal(issue(issues, /task "a" has no tool/).line, 2);
      const t = issue(issues, /task "b" has no tool/);
      assert.equal(t.line, 4);
      assert.match(t.message, /the tools in sparkq\.yml are: run-bash, run-python, llm-codex, llm-claude/);
    });

    it('reports an unknown tool with the tools of sparkq.yml, also in defaults', () => {
      const text = 'defaults: { queue: backend, tool: run-bsh }\ntasks:\n  - { name: a, prompt: x, tool: codex }\n  - { name: b, prompt: x }\n';
      const issues = issuesOf(text);
      const d = issue(issues, /unknown tool "run-bsh"/);
      assert.deepEqual([d.line, d.path], [1, 'defaults.tool']);
      assert.match(d.message, /did you mean "run-bash"\?\); the tools in sparkq\.yml are: run-bash, run-python, llm-codex, llm-claude/);
      assert.equal(issue(issues, /unknown tool "codex"/).line, 3);
    });

    it('reports an unknown queue with the command that creates it, only when queueExists is given', () => {
      const text = 'defaults: { tool: run-bash }\ntasks:\n  - { name: a, prompt: x, queue: nope }\n';
      const i = issue(issuesOf(text), /unknown queue "nope"/);
      assert.equal(i.line, 3);
      assert.match(i.message, /sparkq queue create nope/);
      assert.equal(parsePlan(text, FILE, { tools: TOOLS }).tasks[0]!.queue, 'nope');
    });

    it('reports duplicate names across tasks and batches', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: a, prompt: x }',
        '  - { name: a, prompt: y }',
        'batches:',
        '  - name: a',
        '    tasks: [{ name: b, prompt: z }]',
        '',
      ].join('\n');
      const issues = issuesOf(text).filter((i) => /duplicate name/.test(i.message));
      assert.deepEqual(
        issues.map((i) => i.line),
        [4, 6],
      );
      assert.match(issues[0]!.message, /already used by the task at line 3/);
    });

    it('reports after naming an unknown name with near names, and tsk_ ids that do not exist', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: schema, prompt: x }',
        '  - name: api',
        '    prompt: x',
        '    after:',
        '      - shcema',
        '      - tsk_000000000000',
        '      - tsk_short',
        '      - zzz',
        '',
      ].join('\n');
      const issues = issuesOf(text);
      const u = issue(issues, /unknown name "shcema"/);
      assert.deepEqual([u.line, u.column, u.path], [7, 9, 'tasks[1].after[0]']);
      assert.match(u.message, /did you mean "schema"\?/);
      const id = issue(issues, /no task has the id tsk_000000000000/);
      assert.equal(id.line, 8);
      assert.equal(issue(issues, /"tsk_short" is not a task id/).line, 9);
      const z = issue(issues, /unknown name "zzz"/);
      assert.equal(z.line, 10);
      assert.doesNotMatch(z.message, /did you mean/);
    });

    it('reports a task waiting on itself or on its own batch, and a batch waiting on itself or its own task', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: a, prompt: x, after: [a] }',
        'batches:',
        '  - name: g',
        '    after: [g, c]',
        '    tasks:',
        '      - { name: b, prompt: x, after: [g] }',
        '      - { name: c, prompt: x }',
        '',
      ].join('\n');
      const issues = issuesOf(text);
      assert.equal(issue(issues, /task "a" waits on itself/).line, 3);
      assert.equal(issue(issues, /task "b" waits on its own batch "g"/).line, 8);
      assert.equal(issue(issues, /batch "g" waits on itself/).line, 6);
      assert.equal(issue(issues, /batch "g" waits on its own task "c"/).line, 6);
      assert.equal(issues.filter((i) => /^cycle/.test(i.message)).length, 0, 'self waits are not reported again as cycles');
    });

    it('names a cycle with the line of each task', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: a, prompt: x, after: [c] }',
        '  - { name: free, prompt: x }',
        '  - { name: b, prompt: x, after: [a] }',
        '  - { name: c, prompt: x, after: [b] }',
        '',
      ].join('\n');
      const [i, ...rest] = issuesOf(text);
      assert.equal(rest.length, 0);
      assert.equal(i!.line, 3);
      assert.equal(i!.message, 'cycle: a → c → b → a (→ reads "waits on"; a at line 3, c at line 6, b at line 5); no task of a cycle can ever start: remove one of these waits');
    });

    it('finds cycles through batch names', () => {
      const text = [
        'defaults: { queue: backend, tool: run-bash }',
        'batches:',
        '  - name: one',
        '    after: [two]',
        '    tasks: [{ name: a, prompt: x }]',
        '  - name: two',
        '    tasks: [{ name: b, prompt: x, after: [one] }]',
        '',
      ].join('\n');
      assert.match(issue(issuesOf(text), /^cycle/).message, /^cycle: a → b → a /);
    });

    it('reports a plan without tasks', () => {
      for (const text of ['', '# nothing\n', 'id: x\n', 'tasks: []\n', 'tasks:\nbatches:\n']) {
        const i = issue(issuesOf(text), /the plan has no tasks/);
        assert.equal(i.line, 1, JSON.stringify(text));
      }
      assert.match(issue(issuesOf('batches:\n  - { name: g, tasks: [] }\n'), /batch "g" has no tasks/).message, /add tasks to it or remove the batch/);
    });

    it('reports a task with nothing to do, and prompt together with promptFile', () => {
      const text = 'defaults: { queue: backend, tool: run-bash }\ntasks:\n  - { name: a }\n  - { name: b, prompt: x, promptFile: b.md }\n';
      const issues = issuesOf(text, CHECKS, { readFile: () => 'x' });
      assert.equal(issue(issues, /task "a" has nothing to do: set prompt, promptFile, pattern or payload/).line, 3);
      assert.equal(issue(issues, /either prompt or promptFile, not both/).line, 4);
    });

    it('reports invalid names and a file name that cannot be an id', () => {
      const text = 'defaults: { queue: backend, tool: run-bash }\ntasks:\n  - { name: "bad name", prompt: x }\n  - { name: tsk_mine, prompt: x }\n  - { name: "", prompt: x }\n';
      const issues = issuesOf(text, CHECKS, {}, '/ws/my plan.yml');
      assert.equal(issue(issues, /a task name must start with a letter or digit/).line, 3);
      assert.equal(issue(issues, /must not start with an id prefix/).line, 4);
      assert.equal(issue(issues, /expected a task name, got an empty string/).line, 5);
      assert.match(issue(issues, /the plan has no id and its file name "my plan"/).message, /set id: at the top/);
    });

    it('enforces the size limits', () => {
      const big = 'x'.repeat(256 * 1024 + 1);
      const text = `defaults: { queue: backend, tool: run-bash }\ntasks:\n  - { name: a, prompt: ${big} }\n  - { name: b, payload: { s: ${big} } }\n  - { name: c, promptFile: c.md }\n  - { name: d, prompt: x, priority: 1000001 }\n`;
      const issues = issuesOf(text, CHECKS, { readFile: () => big });
      assert.equal(issue(issues, /the prompt is 262145 bytes; at most 262144 bytes/).line, 3);
      assert.equal(issue(issues, /the payload is \d+ bytes as JSON; at most 262144 bytes/).line, 4);
      assert.equal(issue(issues, /prompt file .*c\.md is 262145 bytes/).line, 5);
      assert.equal(issue(issues, /expected an integer from -1000000 to 1000000, got the number 1000001/).line, 6);
    });

    it('refuses more than 10,000 tasks', () => {
      const lines = ['defaults: { queue: backend, tool: run-bash }', 'tasks:'];
      for (let i = 0; i <= 10_000; i++) lines.push(`  - { name: t${i}, prompt: x }`);
      assert.match(issue(issuesOf(lines.join('\n')), /10001 tasks; at most 10000/).message, /split it into several plans/);
    });

    it('reports every issue at once and never returns a partial plan', () => {
      const text = 'idd: x\ntasks:\n  - { name: a, prompt: x, tool: nope, queue: nope }\n  - { name: b, prompt: x, after: [c], queue: backend, tool: run-bash }\n';
      const issues = issuesOf(text);
      assert.deepEqual(
        issues.map((i) => i.line),
        [1, 3, 3, 4],
      );
    });

    it('says clearly when the file is missing or too large', () => {
      const { dir, cleanup } = tempDir();
      try {
        const missing = path.join(dir, 'nope.yml');
        assert.throws(
          () => loadPlanFile(missing, CHECKS),
          (e: unknown) => e instanceof PlanError && e.message === `${missing}: no such file; check the path (it is relative to the current folder)`,
        );
        const big = path.join(dir, 'big.yml');
        fs.writeFileSync(big, Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
        assert.throws(() => loadPlanFile(big, CHECKS), /a plan file is at most 4194304 bytes/);
      } finally {
        cleanup();
      }
    });
  });

  describe('analysis', () => {
    const mk = (spec: Record<string, string[]>): Plan => ({
      id: 'p',
      description: null,
      tasks: Object.entries(spec).map(([key, after], i) => ({ key, queue: 'q', tool: 'run-bash', after, batch: null, line: i + 1 })),
    });

    it('a chain', () => {
      const a = analyzePlan(mk({ a: [], b: ['a'], c: ['b', EXISTING] }));
      assert.deepEqual(a, { levels: [['a'], ['b'], ['c']], widths: [1, 1, 1], parallelShare: 0, criticalPath: ['a', 'b', 'c'] });
    });

    it('a diamond', () => {
      const a = analyzePlan(mk({ top: [], left: ['top'], right: ['top'], bottom: ['left', 'right'] }));
      assert.deepEqual(a, { levels: [['top'], ['left', 'right'], ['bottom']], widths: [1, 2, 1], parallelShare: 0.5, criticalPath: ['top', 'left', 'bottom'] });
    });

    it('a wide fan-out', () => {
      const spec: Record<string, string[]> = { root: [] };
      for (let i = 0; i < 8; i++) spec[`w${i}`] = ['root'];
      spec['join'] = Object.keys(spec).filter((k) => k !== 'root');
      spec['solo'] = [];
      const a = analyzePlan(mk(spec));
      assert.deepEqual(a.levels, [['root', 'solo'], ['w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7'], ['join']]);
      assert.deepEqual(a.widths, [2, 8, 1]);
      assert.equal(a.parallelShare, 10 / 11);
      assert.deepEqual(a.criticalPath, ['root', 'w0', 'join']);
    });

    it('an empty plan', () => {
      assert.deepEqual(analyzePlan(mk({})), { levels: [], widths: [], parallelShare: 0, criticalPath: [] });
    });

    it('formats the graph with levels, parallel tasks, the share and the critical path', () => {
      const text = [
        'id: site',
        'description: Ship the site',
        'defaults: { queue: backend, tool: run-bash }',
        'tasks:',
        '  - { name: top, prompt: x }',
        `  - { name: left, prompt: x, after: [top, ${EXISTING}], tool: llm-codex }`,
        '  - { name: right, prompt: x, after: [top], queue: frontend }',
        '  - { name: bottom, prompt: x, after: [left, right] }',
        '',
      ].join('\n');
      const plan = parsePlan(text, FILE, CHECKS);
      const out = formatPlanGraph(plan, analyzePlan(plan));
      assert.match(out, /^Plan site: 4 tasks in 3 levels\nShip the site\n/);
      assert.match(out, /Level 0: 1 task: top\n {2}top {2}queue backend {2}tool run-bash\n/);
      assert.match(out, /Level 1: 2 tasks can run in parallel: left, right\n/);
      assert.match(out, /left {3}queue backend {2}tool llm-codex {2}waits on top, tsk_4k2m9x0q7hzt \(existing task\)/);
      assert.match(out, /right {2}queue frontend {2}tool run-bash {2}waits on top/);
      assert.match(out, /Parallel: 2 of 4 tasks \(50%\)/);
      assert.match(out, /Critical path: 3 tasks: top → left → bottom$/);
    });
  });

  describe('properties', () => {
    /** A random DAG over n tasks (edges only from later to earlier in creation order), written in a shuffled order. */
    const dagArb = fc.integer({ min: 1, max: 25 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        deps: fc.array(fc.array(fc.nat({ max: n - 1 }), { maxLength: 4 }), { minLength: n, maxLength: n }),
        order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
        batched: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      }),
    );
    /** Edges i → d (i waits on d) with d < i. */
    const edgesOf = (deps: number[][]) => deps.map((ds, i) => [...new Set(ds.filter((d) => d < i))]);
    const yamlOf = (n: number, order: number[], after: number[][], batched: boolean[]) => {
      const entry = (i: number) => `  - ${JSON.stringify({ name: `t${i}`, prompt: 'x', after: after[i]!.map((d) => `t${d}`) })}`;
      const flat = order.filter((i) => !batched[i]);
      const inBatch = order.filter((i) => batched[i]);
      const lines = ['defaults: { queue: backend, tool: run-bash }', 'tasks:', ...flat.map(entry)];
      if (inBatch.length) lines.push('batches:', '  - name: grp', '    tasks:', ...inBatch.map((i) => `  ${entry(i)}`));
      assert.ok(n >= 1);
      return lines.join('\n');
    };

    it('random DAGs give a topological order and levels consistent with the edges', () => {
      fc.assert(
        fc.property(dagArb, ({ n, deps, order, batched }) => {
          const after = edgesOf(deps);
          const plan = parsePlan(yamlOf(n, order, after, batched), FILE, CHECKS);
          const pos = new Map(plan.tasks.map((t, i) => [t.key, i]));
          assert.equal(plan.tasks.length, n);
          for (let i = 0; i < n; i++) for (const d of after[i]!) assert.ok(pos.get(`t${d}`)! < pos.get(`t${i}`)!, `t${i} after t${d}`);
          const a = analyzePlan(plan);
          const level = new Map<string, number>();
          a.levels.forEach((ks, l) => ks.forEach((k) => level.set(k, l)));
          assert.equal(level.size, n);
          assert.deepEqual(a.widths, a.levels.map((l) => l.length));
          for (const t of plan.tasks) {
            const ds = t.after.map((d) => level.get(d)!);
            for (const dl of ds) assert.ok(dl < level.get(t.key)!);
            assert.equal(level.get(t.key), ds.length ? Math.max(...ds) + 1 : 0);
          }
          assert.equal(a.criticalPath.length, a.levels.length);
          for (let i = 1; i < a.criticalPath.length; i++) assert.ok(task(plan, a.criticalPath[i]!).after.includes(a.criticalPath[i - 1]!));
          const parallel = a.widths.filter((w) => w >= 2).reduce((x, y) => x + y, 0);
          assert.equal(a.parallelShare, parallel / n);
        }),
        { numRuns: 150 },
      );
    });

    it('adding a back edge is always reported as a cycle', () => {
      fc.assert(
        fc.property(dagArb, fc.nat(), fc.nat(), ({ n, deps, order }, pickFrom, pickTo) => {
          const after = edgesOf(deps);
          // Some task u and a task v that u reaches through its waits (u itself excluded).
          const withDeps = after.map((ds, i) => (ds.length ? i : -1)).filter((i) => i >= 0);
          fc.pre(withDeps.length > 0);
          const u = withDeps[pickFrom % withDeps.length]!;
          const reach = new Set<number>();
          const stack = [...after[u]!];
          while (stack.length) {
            const x = stack.pop()!;
            if (reach.has(x)) continue;
            reach.add(x);
            stack.push(...after[x]!);
          }
          const targets = [...reach];
          const v = targets[pickTo % targets.length]!;
          const cyclic = after.map((ds) => [...ds]);
          cyclic[v]!.push(u); // v now waits on u, which (indirectly) waits on v
          const issues = issuesOf(yamlOf(n, order, cyclic, Array<boolean>(n).fill(false)));
          const cycles = issues.filter((i) => i.message.startsWith('cycle: '));
          assert.equal(cycles.length, 1, issues.map((i) => i.message).join('\n'));
          assert.equal(issues.length, 1);
          // The named cycle follows real edges and closes on itself.
          const names = /^cycle: (.*?) \(/.exec(cycles[0]!.message)![1]!.split(' → ');
          assert.equal(names[0], names[names.length - 1]);
          for (let i = 1; i < names.length; i++) {
            const from = Number(names[i - 1]!.slice(1));
            const to = Number(names[i]!.slice(1));
            assert.ok(cyclic[from]!.includes(to), `${names[i - 1]} waits on ${names[i]}`);
          }
        }),
        { numRuns: 150 },
      );
    });
  });
});
