import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseScriptHeader, ScriptIndex } from '../../../src/core/scriptIndex';
import { tempDir } from '../../support/tmp';

function write(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Moves a file's mtime on, as an editor's save would, without waiting for the clock. */
function touch(file: string, secondsLater = 10): void {
  const st = fs.statSync(file);
  const t = new Date(st.mtimeMs + secondsLater * 1000);
  fs.utimesSync(file, t, t);
}

describe('script index', () => {
  let t: ReturnType<typeof tempDir>;
  let scripts: string;
  beforeEach(() => {
    t = tempDir();
    scripts = path.join(t.dir, 'scripts');
    fs.mkdirSync(scripts);
  });
  afterEach(() => t.cleanup());

  describe('headers', () => {
    it('reads # and // comment blocks after a shebang', () => {
      write(
        path.join(scripts, 'backup.sh'),
        '#!/usr/bin/env bash\n# name: backup-db\n# Description: Dump the database\n#   to backups/ every night\n#\n# INPUTS: database url\n# outputs: a .sql.gz file\n# tags: db, ops , ,Ops\n# other: ignored\nset -e\n# name: not-this\n',
      );
      write(path.join(scripts, 'report.ts'), '// name: weekly-report\n// description: Summarise the week\n\n// tags: reports\nconsole.log(1);\n');
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      const b = idx.get('backup-db')!;
      assert.equal(b.description, 'Dump the database to backups/ every night');
      assert.equal(b.inputs, 'database url');
      assert.equal(b.outputs, 'a .sql.gz file');
      assert.deepEqual(b.tags, ['db', 'ops']);
      assert.equal(b.path, path.join(scripts, 'backup.sh'));
      assert.equal(b.relativePath, 'backup.sh');
      assert.equal(b.dir, scripts);
      assert.equal(b.size, fs.statSync(b.path).size);
      const r = idx.get('weekly-report')!;
      assert.equal(r.description, 'Summarise the week');
      assert.deepEqual(r.tags, ['reports'], 'blank lines do not end the header');
    });

    it('stops at the first line of code', () => {
      const { fields } = parseScriptHeader('import os\n# name: late\n');
      assert.deepEqual(fields, {});
      assert.deepEqual(parseScriptHeader('\r\n# name: crlf\r\n').fields, { name: 'crlf' });
    });

    it('names a script without a name after its file', () => {
      write(path.join(scripts, 'deploy.py'), 'print(1)\n');
      write(path.join(scripts, 'nested', 'clean.tar.sh'), '# description: no name here\n');
      write(path.join(scripts, 'runme'), '#!/bin/sh\necho hi\n');
      write(path.join(scripts, 'empty-name.rb'), '# name:\n');
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(
        idx.list().map((e) => [e.name, e.relativePath]),
        [
          ['clean.tar', 'nested/clean.tar.sh'],
          ['deploy', 'deploy.py'],
          ['empty-name', 'empty-name.rb'],
          ['runme', 'runme'],
        ],
      );
    });

    it('indexes known extensions and shebang files, nothing else', () => {
      for (const ext of ['.sh', '.bash', '.py', '.js', '.mjs', '.ts', '.rb', '.pl', '.zsh']) write(path.join(scripts, `s${ext}`), 'x\n');
      write(path.join(scripts, 'tool'), '#!/usr/bin/env node\n');
      write(path.join(scripts, 'README.md'), '# name: readme\n');
      write(path.join(scripts, 'data.json'), '{}\n');
      write(path.join(scripts, 'notes'), 'no shebang\n');
      write(path.join(scripts, 'empty'), '');
      const idx = new ScriptIndex([scripts]);
      assert.deepEqual(idx.rebuild(), { added: 10, updated: 0, removed: 0, unchanged: 0 });
      assert.deepEqual(idx.list().map((e) => e.relativePath).sort(), ['s.bash', 's.js', 's.mjs', 's.pl', 's.py', 's.rb', 's.sh', 's.ts', 's.zsh', 'tool']);
    });

    it('reads only the first 8 KiB', () => {
      const pad = `# ${'x'.repeat(100)}\n`.repeat(90); // ~9 KiB of comment before the tags line
      write(path.join(scripts, 'big.sh'), `# name: big\n${pad}# tags: too-late\necho\n`);
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(idx.get('big')!.tags, []);
    });
  });

  describe('walking', () => {
    it('skips dot-dirs and node_modules, and is fine with a missing dir', () => {
      write(path.join(scripts, 'a.sh'), '');
      write(path.join(scripts, '.git', 'hooks', 'pre-commit.sh'), '');
      write(path.join(scripts, 'node_modules', 'x', 'y.js'), '');
      write(path.join(scripts, 'sub', 'b.sh'), '');
      const idx = new ScriptIndex([scripts, path.join(t.dir, 'missing')]);
      idx.rebuild();
      assert.deepEqual(idx.list().map((e) => e.relativePath), ['a.sh', 'sub/b.sh']);
    });

    it('does not follow a symlinked dir out of the script dir, but does follow one inside it', function () {
      const outside = path.join(t.dir, 'outside');
      write(path.join(outside, 'secret.sh'), '# name: secret\n');
      write(path.join(scripts, 'real', 'inner.sh'), '# name: inner\n');
      try {
        fs.symlinkSync(outside, path.join(scripts, 'escape'), 'dir');
        fs.symlinkSync(path.join(outside, 'secret.sh'), path.join(scripts, 'secret-link.sh'), 'file');
        fs.symlinkSync(path.join(scripts, 'real'), path.join(scripts, 'alias'), 'dir');
        fs.symlinkSync(scripts, path.join(scripts, 'real', 'loop'), 'dir');
      } catch {
        this.skip(); // no symlinks for this user (Windows without developer mode)
      }
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.equal(idx.get('secret'), undefined);
      assert.deepEqual(idx.list().map((e) => e.relativePath), ['alias/inner.sh', 'real/inner.sh']);
    });

    it('caps the depth and the number of files', () => {
      let deep = scripts;
      for (let i = 1; i <= 10; i++) {
        deep = path.join(deep, `d${i}`);
        write(path.join(deep, `at${i}.sh`), '');
      }
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(idx.list().map((e) => e.name).sort(), ['at1', 'at2', 'at3', 'at4', 'at5', 'at6', 'at7', 'at8']);
      assert.equal(idx.truncated, false);

      const small = new ScriptIndex([scripts], { maxFiles: 3 });
      small.rebuild();
      assert.equal(small.list().length, 3);
      assert.equal(small.truncated, true);
    });

    it('lists a file inside two configured dirs once', () => {
      write(path.join(scripts, 'sub', 'x.sh'), '');
      const idx = new ScriptIndex([scripts, path.join(scripts, 'sub')]);
      idx.rebuild();
      assert.deepEqual(idx.list().map((e) => [e.relativePath, e.dir]), [['sub/x.sh', scripts]]);
    });
  });

  describe('rebuild', () => {
    it('re-reads only changed files and counts what happened', () => {
      const a = write(path.join(scripts, 'a.sh'), '# description: one\n');
      const b = write(path.join(scripts, 'b.py'), '');
      write(path.join(scripts, 'c.sh'), '');
      const notScript = write(path.join(scripts, 'notes.txt'), 'x');
      const idx = new ScriptIndex([scripts]);
      assert.deepEqual(idx.rebuild(), { added: 3, updated: 0, removed: 0, unchanged: 0 });
      assert.deepEqual(idx.rebuild(), { added: 0, updated: 0, removed: 0, unchanged: 3 });

      // Same size, new mtime: re-read.
      fs.writeFileSync(a, '# description: two\n');
      touch(a);
      assert.deepEqual(idx.rebuild(), { added: 0, updated: 1, removed: 0, unchanged: 2 });
      assert.equal(idx.get('a')!.description, 'two');

      // Touched only: re-read, counted as updated; a non-script stays out of the counts.
      touch(b);
      touch(notScript);
      assert.deepEqual(idx.rebuild(), { added: 0, updated: 1, removed: 0, unchanged: 2 });

      fs.rmSync(b);
      write(path.join(scripts, 'd.sh'), '');
      assert.deepEqual(idx.rebuild(), { added: 1, updated: 0, removed: 1, unchanged: 2 });
      assert.deepEqual(idx.list().map((e) => e.name), ['a', 'c', 'd']);
      assert.equal(idx.get('b'), undefined);

      // A file that stops being a script (no extension and its shebang gone) is removed.
      const tool = write(path.join(scripts, 'tool'), '#!/bin/sh\n');
      assert.deepEqual(idx.rebuild(), { added: 1, updated: 0, removed: 0, unchanged: 3 });
      fs.writeFileSync(tool, 'plain text\n');
      touch(tool);
      assert.deepEqual(idx.rebuild(), { added: 0, updated: 0, removed: 1, unchanged: 3 });
    });

    it('does not read an unchanged file again', () => {
      const a = write(path.join(scripts, 'a.sh'), '# description: one\n');
      const when = 1_700_000_000; // whole seconds, which every file system stores exactly
      fs.utimesSync(a, when, when);
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      // Same size and mtime, different content: only a re-read would notice, and there must not be one.
      fs.writeFileSync(a, '# description: two\n');
      fs.utimesSync(a, when, when);
      assert.deepEqual(idx.rebuild(), { added: 0, updated: 0, removed: 0, unchanged: 1 });
      assert.equal(idx.get('a')!.description, 'one');
    });

    it('moves to new dirs with setDirs', () => {
      const other = path.join(t.dir, 'other');
      write(path.join(scripts, 'a.sh'), '');
      write(path.join(other, 'b.sh'), '');
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      idx.setDirs([other]);
      assert.deepEqual(idx.rebuild(), { added: 1, updated: 0, removed: 1, unchanged: 0 });
      assert.deepEqual(idx.list().map((e) => e.name), ['b']);
    });
  });

  describe('lookup', () => {
    beforeEach(() => {
      write(path.join(scripts, 'deploy.sh'), '# description: Ship the build\n# tags: release\n');
      write(path.join(scripts, 'deploy-docs.sh'), '# description: Publish documentation\n# tags: docs, release\n');
      write(path.join(scripts, 'redeploy.sh'), '# description: Again\n');
      write(path.join(scripts, 'notify.py'), '# description: Tell people about a deploy\n# tags: chat\n');
      write(path.join(scripts, 'audit.rb'), '# description: Security checks\n# tags: deployment-gate\n');
      write(path.join(scripts, 'ops', 'backup.sh'), '# name: backup\n# description: nightly dump\n');
      write(path.join(scripts, 'db', 'backup.sh'), '# name: backup\n# description: database dump\n');
    });

    it('ranks exact name, name prefix, name contains, tag, description', () => {
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(
        idx.search('DEPLOY').map((e) => e.name),
        ['deploy', 'deploy-docs', 'redeploy', 'audit', 'notify'],
      );
    });

    it('needs every term to match somewhere', () => {
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(idx.search('deploy docs').map((e) => e.name), ['deploy-docs']);
      assert.deepEqual(idx.search('release ship').map((e) => e.name), ['deploy']);
      assert.deepEqual(idx.search('deploy nothing-matches'), []);
      assert.equal(idx.search('   ').length, idx.list().length, 'an empty query lists everything');
    });

    it('lists and finds scripts that share a name', () => {
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(
        idx.search('backup').map((e) => e.relativePath),
        ['db/backup.sh', 'ops/backup.sh'],
      );
      assert.equal(idx.get('backup')!.relativePath, 'db/backup.sh', 'the first by relativePath');
      assert.equal(idx.get('ops/backup.sh')!.description, 'nightly dump');
      assert.equal(idx.get('./ops/backup.sh')!.description, 'nightly dump');
      assert.equal(idx.get('nope'), undefined);
    });

    it('lists sorted by name', () => {
      const idx = new ScriptIndex([scripts]);
      idx.rebuild();
      assert.deepEqual(
        idx.list().map((e) => e.name),
        ['audit', 'backup', 'backup', 'deploy', 'deploy-docs', 'notify', 'redeploy'],
      );
    });
  });
});
