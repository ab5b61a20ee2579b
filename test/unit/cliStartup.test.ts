import { strict as assert } from 'node:assert';
import { Command } from 'commander';
import { COMMAND_GROUPS } from '../../src/cli/commands';
import type { CliIo } from '../../src/cli/io';
import { groupsFor, runCli } from '../../src/cli/program';

/*
 * What a CLI call loads before it runs (issue 14 §4): only the command group it names, and for --version and help
 * nothing but the entry file. The timings are in bench/cli.ts; these tests hold the mechanisms to the same answers
 * as loading everything.
 */

function captureIo(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s), isTTY: false },
      stderr: { write: (s: string) => (err += s) },
      env: {},
      cwd: '/',
      readStdin: () => '',
      onStopSignal: () => () => undefined,
    },
    out: () => out,
    err: () => err,
  };
}

describe('cli start-up: lazy command groups', () => {
  it("each group's names are exactly the top-level commands it adds, and no two groups share one", () => {
    const seen = new Set<string>();
    for (const g of COMMAND_GROUPS) {
      const program = new Command('sparkq');
      g.load().register(program, captureIo().io);
      assert.deepEqual(
        program.commands.map((c) => c.name()),
        [...g.names],
        `the group listed as ${g.names.join(', ')}`,
      );
      for (const n of g.names) {
        assert.ok(!seen.has(n), `${n} is in two groups`);
        seen.add(n);
      }
    }
  });

  it('a command line loads the group of the command it names; help, typos and odd options load them all', () => {
    const one = (argv: string[]) => groupsFor(argv).map((g) => g.names[0]);
    assert.deepEqual(one(['peek', '--queue', 'Q']), ['enqueue']);
    assert.deepEqual(one(['--json', 'complete', 'tsk_x', 'done']), ['claim']);
    assert.deepEqual(one(['--workspace', 'dir', 'queue', 'list']), ['queue']);
    assert.deepEqual(one(['--workspace=dir', 'serve']), ['serve']);
    assert.deepEqual(one(['help', 'guide']), ['run']);
    const all = COMMAND_GROUPS.map((g) => g.names[0]);
    for (const argv of [[], ['--help'], ['-v'], ['help'], ['pek'], ['--bogus', 'peek'], ['--workspace'], ['--workspace', 'peek'], ['help', 'nope']]) {
      assert.deepEqual(one(argv), all, JSON.stringify(argv));
    }
  });

  it('gives the same answer as a program with every group, for usage errors and help alike', async () => {
    const lines = [
      ['peek'],
      ['peek', '--bogus'],
      ['peek', '--help'],
      ['help', 'complete'],
      ['complete'],
      ['queue', 'frobnicate'],
      ['session', '--help'],
      ['tasks', '--limit', 'x'],
      ['enqueue', 'run-bash', '--queue', 'Q', '--timeout', 'abc'],
      ['--json', 'claim', '--help'],
    ];
    for (const argv of lines) {
      const lazy = captureIo();
      const lazyCode = await runCli(argv, lazy.io);
      const eager = captureIo();
      const eagerCode = await runCli(argv, eager.io, { loadAll: true });
      assert.equal(lazyCode, eagerCode, `exit code of ${argv.join(' ')}`);
      assert.equal(lazy.out(), eager.out(), `stdout of ${argv.join(' ')}`);
      assert.equal(lazy.err(), eager.err(), `stderr of ${argv.join(' ')}`);
    }
  });
});
