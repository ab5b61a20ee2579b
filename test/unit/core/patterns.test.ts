import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSparkqError } from '../../../src/core/errors';
import { listPatterns, parsePattern, type Pattern, PatternError, type PatternLoader, patternLoader, renderPattern, variableProblems } from '../../../src/core/patterns';
import { type PlanChecks, PlanError, type PlanIssue, parsePlan } from '../../../src/core/plan';
import { tempDir } from '../../support/tmp';

const DIR = '/ws/sparkq/patterns';

const API = [
  '---',
  'name: api-endpoint',
  'description: Add a REST endpoint with its tests',
  'tool: llm-codex',
  'variables:',
  '  resource:',
  '    description: the resource, plural',
  '  verb: { description: the HTTP method, default: GET }',
  '  retries: { description: how often to retry, default: 3 }',
  'validate: { tool: llm-haiku, maxRounds: 2 }',
  '---',
  '',
  'Add `{{verb}} /{{ resource }}`.',
  'Retry {{retries}} times. Keep {{{{braces}} and }} as they are.',
  '',
].join('\n');

function issuesOf(text: string, file = `${DIR}/api-endpoint.md`): PatternError {
  try {
    parsePattern(text, file);
  } catch (e) {
    assert.ok(e instanceof PatternError, `expected a PatternError, got ${String(e)}`);
    assert.ok(isSparkqError(e, 'invalid-input'));
    return e;
  }
  assert.fail('expected the pattern to be refused');
}

/** A front matter with `extra` lines and a body. */
const withBody = (body: string, vars = ['  resource: { description: r }']) => ['---', 'name: api-endpoint', 'description: d', 'variables:', ...vars, '---', body].join('\n');

describe('prompt patterns', () => {
  describe('parsing', () => {
    it('reads the front matter, the body after it, and the hash of the file', () => {
      const p = parsePattern(API, `${DIR}/api-endpoint.md`);
      assert.equal(p.name, 'api-endpoint');
      assert.equal(p.tool, 'llm-codex');
      assert.equal(p.description, 'Add a REST endpoint with its tests');
      assert.deepEqual(p.variables, {
        resource: { description: 'the resource, plural', default: null },
        verb: { description: 'the HTTP method', default: 'GET' },
        retries: { description: 'how often to retry', default: '3' },
      });
      assert.deepEqual(p.validate, { tool: 'llm-haiku', maxRounds: 2 });
      assert.equal(p.bodyLine, 13, 'blank lines before the prompt are layout');
      assert.equal(p.body, 'Add `{{verb}} /{{ resource }}`.\nRetry {{retries}} times. Keep {{{{braces}} and }} as they are.');
      assert.equal(p.hash, createHash('sha256').update(API).digest('hex'));
    });

    it('reads a file from its folder; its hash is of the bytes, and changes with them', () => {
      const tmp = tempDir('sparkq-patterns-');
      try {
        const loader = patternLoader(tmp.dir);
        assert.deepEqual(loader.names(), []);
        fs.writeFileSync(path.join(tmp.dir, 'api-endpoint.md'), API);
        fs.writeFileSync(path.join(tmp.dir, 'broken.md'), '---\nname: broken\n---\nx');
        fs.writeFileSync(path.join(tmp.dir, 'notes.txt'), 'not a pattern');
        const fresh = patternLoader(tmp.dir);
        assert.deepEqual(fresh.names(), ['api-endpoint', 'broken']);
        assert.equal(fresh.load('api-endpoint')!.hash, createHash('sha256').update(fs.readFileSync(path.join(tmp.dir, 'api-endpoint.md'))).digest('hex'));
        assert.equal(fresh.load('missing'), null);
        assert.equal(fresh.load('../api-endpoint'), null, 'a name is never a path');
        const { patterns, errors } = listPatterns(fresh);
        assert.deepEqual(patterns.map((p) => p.name), ['api-endpoint']);
        assert.equal(errors.length, 1);
        assert.match(errors[0]!.message, /broken\.md:2:1: .*description: missing/);
        fs.appendFileSync(path.join(tmp.dir, 'api-endpoint.md'), 'one more line\n');
        assert.notEqual(patternLoader(tmp.dir).load('api-endpoint')!.hash, patterns[0]!.hash);
      } finally {
        tmp.cleanup();
      }
    });

    it('refuses a file without front matter, or with it unclosed', () => {
      assert.deepEqual(issuesOf('Just a prompt').issues.map((i) => [i.line, i.message.slice(0, 26)]), [[1, 'expected front matter: the']]);
      assert.match(issuesOf('---\nname: x\ndescription: d\n').issues[0]!.message, /not closed/);
    });

    it('checks the front matter strictly, each issue at its line and column in the file', () => {
      const text = ['---', 'name: other', 'description: 5', 'tools: llm-codex', 'variables:', '  resource: the resource', '  "bad name": { description: x }', 'validate: [x]', '---', 'Do {{resource}}'].join('\n');
      const e = issuesOf(text);
      const got = e.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
      assert.deepEqual(got, [
        '2:7 name: the name the string "other" differs from the file name "api-endpoint.md": they must be the same',
        '3:14 description: expected a string: what the pattern is for, got the number 5',
        '4:1 tools: unknown key "tools" (did you mean "tool"?); expected one of: name, description, tool, variables, validate',
        '6:13 variables.resource: expected a mapping with description (and optionally default), e.g. { description: the resource name, default: users }, got the string "the resource"',
        '7:3 variables["bad name"]: a variable name starts with a letter or "_" and holds only letters, digits, "_" and "-"',
        '8:11 validate: expected a mapping (the validator of tasks made from this pattern), got a list',
      ]);
      assert.match(e.message.split('\n')[0]!, /^\/ws\/sparkq\/patterns\/api-endpoint\.md:2:7: name: /);
    });

    it('refuses YAML syntax errors with their line', () => {
      const e = issuesOf(['---', 'name: api-endpoint', 'description: [unclosed', '---', 'x'].join('\n'));
      assert.equal(e.issues[0]!.line, 3);
      assert.match(e.issues[0]!.message, /YAML syntax error/);
    });
  });

  describe('the template', () => {
    it('renders values and defaults; {{{{ is a literal {{; values are inserted verbatim, never scanned again', () => {
      const p = parsePattern(API, `${DIR}/api-endpoint.md`);
      assert.equal(renderPattern(p, { resource: 'users' }), 'Add `GET /users`.\nRetry 3 times. Keep {{braces}} and }} as they are.');
      assert.equal(renderPattern(p, { resource: '{{verb}}', verb: 'POST', retries: '0' }), 'Add `POST /{{verb}}`.\nRetry 0 times. Keep {{braces}} and }} as they are.');
    });

    it('a placeholder naming an undeclared variable is an error at its line and column', () => {
      const e = issuesOf(withBody('Line one\nDo {{resource}} then {{ thing }}\nand {{other}}'));
      assert.deepEqual(
        e.issues.map((i) => `${i.line}:${i.column} ${i.message}`),
        [
          '8:22 placeholder {{thing}} names the variable "thing", which the front matter does not declare; declare it under variables (declared: resource)',
          '9:5 placeholder {{other}} names the variable "other", which the front matter does not declare; declare it under variables (declared: resource)',
        ],
      );
    });

    it('a malformed placeholder is an error that says how to write a literal {{', () => {
      const e = issuesOf(withBody('ok {{resource}}\n{{ resource\n{{{x}}}\n{{a b}}'));
      assert.deepEqual(
        e.issues.map((i) => `${i.line}:${i.column}`),
        ['8:1', '9:1', '10:1'],
      );
      for (const i of e.issues.slice(0, 2)) assert.match(i.message, /malformed placeholder .*write \{\{\{\{ for a literal \{\{/);
    });

    it('unknown and missing variables are errors that name the variable (and where a missing one is used)', () => {
      const p = parsePattern(API, `${DIR}/api-endpoint.md`);
      assert.deepEqual(variableProblems(p, { resourse: 'users', verb: 'PUT' }), [
        { variable: 'resourse', kind: 'unknown', message: 'pattern api-endpoint has no variable "resourse"; it declares: resource, verb, retries' },
        { variable: 'resource', kind: 'missing', message: `pattern api-endpoint needs the variable "resource" (the resource, plural), which has no default (used at ${DIR}/api-endpoint.md:13); give it a value` },
      ]);
      assert.throws(() => renderPattern(p, {}), (e: unknown) => isSparkqError(e, 'invalid-input') && /needs the variable "resource"/.test(e.message));
    });
  });

  describe('in plans', () => {
    const FILE = '/ws/plans/feature.yml';
    const patterns: Record<string, string> = {
      'api-endpoint': API,
      'no-tool': ['---', 'name: no-tool', 'description: d', '---', 'Fix the flaky test.'].join('\n'),
      broken: ['---', 'name: broken', 'description: d', '---', 'Do {{nothing}}'].join('\n'),
    };
    const loader: PatternLoader = {
      dir: DIR,
      names: () => Object.keys(patterns).sort(),
      load: (n) => (patterns[n] === undefined ? null : parsePattern(patterns[n], `${DIR}/${n}.md`)),
    };
    const checks: PlanChecks = { tools: ['run-bash', 'llm-codex', 'llm-haiku'], queueExists: () => true, patterns: loader };
    const hash = (n: string) => createHash('sha256').update(patterns[n]!).digest('hex');

    function planIssues(text: string, c: PlanChecks = checks): PlanIssue[] {
      try {
        parsePlan(text, FILE, c);
      } catch (e) {
        assert.ok(e instanceof PlanError, String(e));
        return e.issues;
      }
      assert.fail('expected the plan to be refused');
    }
    const show = (issues: PlanIssue[]) => issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);

    it("gives a task its pattern's validator when the task, its batch and the defaults name none", () => {
      const plan = parsePlan(
        [
          'defaults: { queue: backend }',
          'tasks:',
          '  - { name: a, pattern: api-endpoint, with: { resource: users } }',
          '  - { name: b, pattern: api-endpoint, with: { resource: orders }, validate: { tool: run-bash, prompt: check.sh } }',
          '  - { name: c, pattern: no-tool, tool: run-bash }',
        ].join('\n'),
        FILE,
        checks,
      );
      const v = (key: string) => plan.tasks.find((t) => t.key === key)!.validate;
      assert.deepEqual(v('a'), { tool: 'llm-haiku', maxRounds: 2 });
      assert.deepEqual(v('b'), { tool: 'run-bash', prompt: 'check.sh' });
      assert.equal(v('c'), undefined);
    });

    it('renders the prompt, takes the tool from the pattern, and records the pattern and its hash', () => {
      const plan = parsePlan(
        [
          'defaults: { queue: backend }',
          'tasks:',
          '  - name: users',
          '    pattern: api-endpoint',
          '    with: { resource: users, retries: 5 }',
          '  - name: orders',
          '    pattern: api-endpoint',
          '    tool: llm-haiku',
          '    with: { resource: orders, verb: POST }',
          '    prompt: Also update the OpenAPI file.',
          '  - name: plain',
          '    tool: run-bash',
          '    prompt: build.sh',
        ].join('\n'),
        FILE,
        checks,
      );
      const [users, orders, plain] = plan.tasks;
      assert.equal(users!.tool, 'llm-codex');
      assert.equal(users!.prompt, 'Add `GET /users`.\nRetry 5 times. Keep {{braces}} and }} as they are.');
      assert.deepEqual(users!.pattern, { name: 'api-endpoint', hash: hash('api-endpoint') });
      assert.equal(orders!.tool, 'llm-haiku', "the task's own tool wins");
      assert.equal(orders!.prompt, 'Add `POST /orders`.\nRetry 3 times. Keep {{braces}} and }} as they are.\n\nAlso update the OpenAPI file.');
      assert.equal(plain!.pattern, undefined);
    });

    it('a pattern and its values from defaults and batches, the more specific value winning', () => {
      const plan = parsePlan(
        [
          'defaults: { queue: backend, pattern: api-endpoint, with: { verb: PUT } }',
          'batches:',
          '  - name: b',
          '    with: { retries: 1 }',
          '    tasks:',
          '      - { name: a, with: { resource: a } }',
          '      - { name: c, with: { resource: c, retries: 2 } }',
          '  - name: other',
          '    pattern: no-tool',
          '    tasks:',
          '      - { name: d, tool: run-bash }',
        ].join('\n'),
        FILE,
        checks,
      );
      const byKey = Object.fromEntries(plan.tasks.map((t) => [t.key, t]));
      assert.match(byKey['a']!.prompt!, /^Add `PUT \/a`\.\nRetry 1 times/);
      assert.match(byKey['c']!.prompt!, /^Add `PUT \/c`\.\nRetry 2 times/);
      assert.equal(byKey['d']!.prompt, 'Fix the flaky test.');
      assert.deepEqual(byKey['d']!.pattern, { name: 'no-tool', hash: hash('no-tool') });
    });

    it('unknown patterns, unknown and missing variables, and with: without a pattern are errors at their lines', () => {
      const text = [
        'defaults: { queue: backend, with: { x: 1 } }', // 1
        'tasks:', // 2
        '  - name: a', // 3
        '    pattern: api-endpont', // 4
        '  - name: b', // 5
        '    pattern: api-endpoint', // 6
        '    with:', // 7
        '      resourse: users', // 8
        '  - name: c', // 9
        '    pattern: no-tool', // 10
        '  - name: d', // 11
        '    pattern: broken', // 12
        '    tool: run-bash', // 13
        '  - name: e', // 14
        '    tool: run-bash', // 15
        '    with: { resource: users }', // 16
      ].join('\n');
      assert.deepEqual(show(planIssues(text)), [
        '1:29 defaults.with: with: gives values to the variables of a pattern, but no pattern is named here or above; add pattern: NAME',
        '4:14 tasks[0].pattern: unknown pattern "api-endpont" (did you mean "api-endpoint"?); the patterns in /ws/sparkq/patterns are: api-endpoint, broken, no-tool',
        `5:5 tasks[1]: task "b": pattern api-endpoint needs the variable "resource" (the resource, plural), which has no default (used at ${DIR}/api-endpoint.md:13); give it a value under with`,
        '8:7 tasks[1].with.resourse: pattern api-endpoint has no variable "resourse"; it declares: resource, verb, retries',
        '9:5 tasks[2]: task "c" has no tool: set tool on the task, or a default for every task under defaults (defaults: { tool: NAME }); the tools in sparkq.yml are: run-bash, llm-codex, llm-haiku',
        `12:14 tasks[3].pattern: pattern "broken" cannot be used: ${DIR}/broken.md:5:4: placeholder {{nothing}} names the variable "nothing", which the front matter does not declare; declare it under variables`,
        '14:5 tasks[4]: task "e" has nothing to do: set prompt, promptFile, pattern or payload',
        '16:5 tasks[4].with: with: gives values to the variables of a pattern, but no pattern is named here or above; add pattern: NAME',
      ]);
    });

    it("a pattern's tool that sparkq.yml lacks, bad with: values, and plans parsed without patterns", () => {
      const text = ['defaults: { queue: backend }', 'tasks:', '  - name: a', '    pattern: api-endpoint', '    with: { resource: [x] }'].join('\n');
      assert.deepEqual(show(planIssues(text)), ['5:23 tasks[0].with.resource: expected a string, a number or a boolean (the value of a pattern variable), got a list']);
      const noCodex = { ...checks, tools: ['run-bash'] };
      assert.deepEqual(show(planIssues(['defaults: { queue: backend }', 'tasks:', '  - { name: a, pattern: api-endpoint, with: { resource: x } }'].join('\n'), noCodex)), [
        '3:25 tasks[0].pattern: pattern api-endpoint runs with the tool "llm-codex", which sparkq.yml does not define; set tool on the task, or fix the pattern\'s tool (the tools in sparkq.yml are: run-bash)',
      ]);
      const { patterns: _p, ...without } = checks;
      assert.match(show(planIssues(['defaults: { queue: backend }', 'tasks:', '  - { name: a, tool: run-bash, pattern: no-tool }'].join('\n'), without))[0]!, /^3:41 tasks\[0\]\.pattern: .*not available here/);
    });
  });
});

export type { Pattern };
