import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSparkqError } from '../../../src/core/errors';
import { git, runGit } from '../../../src/git/git';
import { compileGlob, matchPlaced, matchesGlob } from '../../../src/git/placed';
import { currentCommit, findRepo, resolveBase } from '../../../src/git/repo';
import { branchFor, isValidBranchName, worktreeDirFor } from '../../../src/git/worktrees';
import { tempDir } from '../../support/tmp';

/* The repository a queue works in and the base of its branches, against real git in temp dirs. */

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).trim();
}

/** A repository with an identity of its own (CI runs as root with none) and one commit on main. */
function makeRepo(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  sh(dir, 'init', '-q', '-b', 'main');
  sh(dir, 'config', 'user.name', 'Test');
  sh(dir, 'config', 'user.email', 'test@example.com');
  fs.writeFileSync(path.join(dir, 'a.txt'), 'one\n');
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', 'first');
  return dir;
}

describe('git: repository and base', function () {
  this.timeout(60_000);
  const tmp = tempDir('sparkq-git-repo-');
  let n = 0;
  const fresh = () => path.join(tmp.dir, `r${++n}`);
  after(() => tmp.cleanup());

  it('runGit reports the exit code and stderr; git() throws naming the command and git’s words', async () => {
    const dir = makeRepo(fresh());
    const r = await runGit(['rev-parse', '--verify', 'nope'], { cwd: dir });
    assert.notEqual(r.code, 0);
    await assert.rejects(git(['rev-parse', '--verify', 'nope'], { cwd: dir }), (e: unknown) => {
      assert.ok(isSparkqError(e, 'conflict'));
      assert.match(e.message, /git rev-parse --verify nope failed \(exit \d+\)/);
      assert.match(e.message, /fatal: Needed a single revision/);
      return true;
    });
    await assert.rejects(git(['status'], { cwd: path.join(dir, 'missing') }), (e: unknown) => isSparkqError(e, 'invalid-input') && /does not exist/.test(e.message));
  });

  it('a missing git binary is a clear "unavailable" error', async () => {
    const dir = makeRepo(fresh());
    const saved = process.env['PATH'];
    process.env['PATH'] = path.join(tmp.dir, 'no-bin-here');
    try {
      await assert.rejects(runGit(['--version'], { cwd: dir }), (e: unknown) => isSparkqError(e, 'unavailable') && /git was not found on the PATH/.test(e.message));
    } finally {
      process.env['PATH'] = saved;
    }
  });

  it('findRepo: the top and common dir from a subdirectory; not a repository says to run git init', async () => {
    const dir = makeRepo(fresh());
    fs.mkdirSync(path.join(dir, 'sub', 'deep'), { recursive: true });
    const repo = await findRepo(path.join(dir, 'sub', 'deep'));
    assert.equal(fs.realpathSync(repo.top), fs.realpathSync(dir));
    assert.equal(fs.realpathSync(repo.commonDir), fs.realpathSync(path.join(dir, '.git')));
    const plain = fresh();
    fs.mkdirSync(plain);
    // A ceiling keeps git from finding a repository above the temp dir (the machine's /tmp could be inside one).
    process.env['GIT_CEILING_DIRECTORIES'] = tmp.dir;
    try {
      await assert.rejects(findRepo(plain), (e: unknown) => {
        assert.ok(isSparkqError(e, 'invalid-input'));
        assert.equal(e.message, `${plain} is not inside a git repository: run \`git init\` there, or give the queue a working directory inside a repository`);
        return true;
      });
    } finally {
      delete process.env['GIT_CEILING_DIRECTORIES'];
    }
  });

  it('resolveBase: HEAD on a branch, detached HEAD, a branch, a tag, a sha, an unknown ref, an unborn HEAD', async () => {
    const dir = makeRepo(fresh());
    const head = sh(dir, 'rev-parse', 'HEAD');
    assert.deepEqual(await resolveBase(dir), { baseRef: 'main', baseCommit: head });
    sh(dir, 'branch', 'feature/x');
    sh(dir, 'tag', 'v1');
    sh(dir, 'tag', '-a', 'v2', '-m', 'annotated');
    assert.deepEqual(await resolveBase(dir, 'feature/x'), { baseRef: 'feature/x', baseCommit: head });
    assert.deepEqual(await resolveBase(dir, 'refs/heads/feature/x'), { baseRef: 'feature/x', baseCommit: head });
    assert.deepEqual(await resolveBase(dir, 'v1'), { baseRef: null, baseCommit: head });
    // An annotated tag resolves to its commit, not the tag object.
    assert.deepEqual(await resolveBase(dir, 'v2'), { baseRef: null, baseCommit: head });
    assert.deepEqual(await resolveBase(dir, head.slice(0, 10)), { baseRef: null, baseCommit: head });
    await assert.rejects(resolveBase(dir, 'no-such-branch'), (e: unknown) => isSparkqError(e, 'invalid-input') && /--base no-such-branch: git knows no branch, tag or commit/.test(e.message));
    await assert.rejects(resolveBase(dir, '--exec=evil'), (e: unknown) => isSparkqError(e, 'invalid-input') && /not a usable git ref/.test(e.message));
    sh(dir, 'checkout', '-q', '--detach', 'HEAD');
    assert.deepEqual(await resolveBase(dir), { baseRef: null, baseCommit: head });
    assert.equal(await currentCommit(dir, 'main'), head);

    const unborn = fresh();
    fs.mkdirSync(unborn);
    sh(unborn, 'init', '-q', '-b', 'main');
    await assert.rejects(resolveBase(unborn), (e: unknown) => isSparkqError(e, 'invalid-input') && /has no commit yet .*make a first commit/.test(e.message));
  });

  it('branchFor makes a valid ref from any queue name; worktreeDirFor a short path', () => {
    const names = ['Back End', '  ÜBER wichtig!! ', '---', '', 'a'.repeat(100), 'x..y/z.lock', '日本語', 'feat/@{x}'];
    for (const q of names) {
      const b = branchFor(q, 'tsk_01HXYZabc');
      assert.match(b, /^sparkq\/[a-z0-9]+(-[a-z0-9]+)*\/tsk_01HXYZabc$/, b);
      assert.ok(b.split('/')[1]!.length <= 40);
      sh(tmp.dir, 'check-ref-format', '--branch', b);
    }
    assert.equal(branchFor('Back End', 'tsk_1'), 'sparkq/back-end/tsk_1');
    // The in-process check agrees with git's own.
    for (const name of ['sparkq/a/tsk_1', 'a..b', 'a/.x', 'x.lock', 'a b', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[b', 'a\\b', '-x', 'a@{b', 'a//b', 'a/', 'a.', 'ok-name/x_y', 'a\u0001b', 'über']) {
      const gitSays = spawnSync('git', ['check-ref-format', '--branch', name], { cwd: tmp.dir }).status === 0;
      assert.equal(isValidBranchName(name), gitSays, name);
    }
    assert.equal(branchFor('  ÜBER wichtig!! ', 'tsk_1'), 'sparkq/uber-wichtig/tsk_1');
    assert.equal(branchFor('日本語', 'tsk_1'), 'sparkq/queue/tsk_1');
    assert.equal(worktreeDirFor(path.join('w', '.sparkq'), 'tsk_01ABC'), path.join('w', '.sparkq', 'worktrees', '01ABC'));
  });

  it('globs: *, **, braces; the walk skips .git, .sparkq and matched directories, and node_modules unless named', () => {
    const g = compileGlob('**/.env*');
    assert.ok(matchesGlob(g, ['.env']));
    assert.ok(matchesGlob(g, ['a', 'b', '.env.local']));
    assert.ok(!matchesGlob(g, ['a', 'env']));
    assert.ok(matchesGlob(compileGlob('packages/*/node_modules'), ['packages', 'api', 'node_modules']));
    assert.ok(matchesGlob(compileGlob('config/{dev,test}.json'), ['config', 'test.json']));
    assert.throws(() => compileGlob('../x'), (e: unknown) => isSparkqError(e, 'config'));
    assert.throws(() => compileGlob('/etc/passwd'), (e: unknown) => isSparkqError(e, 'config'));

    const top = fresh();
    for (const f of ['.env', 'node_modules/lib/.env', 'node_modules/lib/index.js', 'packages/api/node_modules/x/i.js', 'packages/api/.env', '.git/.env', '.sparkq/.env', 'src/a.ts']) {
      fs.mkdirSync(path.dirname(path.join(top, f)), { recursive: true });
      fs.writeFileSync(path.join(top, f), 'x');
    }
    const placed = matchPlaced(top, { copy: ['**/.env'], link: ['node_modules', 'packages/*/node_modules'] });
    assert.deepEqual(
      placed.map((p) => `${p.how}:${p.path}:${p.dir ? 'dir' : 'file'}`).sort(),
      ['copy:.env:file', 'copy:packages/api/.env:file', 'link:node_modules:dir', 'link:packages/api/node_modules:dir'],
    );
  });
});
