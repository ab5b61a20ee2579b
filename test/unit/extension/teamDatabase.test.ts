import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type SecretStore,
  TeamDatabaseSecrets,
  checkDatabaseUrl,
  describeDatabase,
  hasPassword,
  openEnv,
  redactUrl,
  resolveTeamDatabase,
  scrubSecrets,
  teamConfigOf,
  terminalDatabaseEnv,
  userOf,
  withPassword,
  withoutPasswords,
} from '../../../src/extension/teamDatabase';
import { workerTerminalEnv } from '../../../src/extension/workerCommand';
import { tempDir } from '../../support/tmp';

/** SecretStorage as VS Code keeps it: a map per extension, with every call recorded. */
class FakeSecrets implements SecretStore {
  readonly values = new Map<string, string>();
  readonly calls: string[] = [];
  failGet = false;
  get(key: string): Promise<string | undefined> {
    this.calls.push(`get ${key}`);
    if (this.failGet) return Promise.reject(new Error('keychain locked'));
    return Promise.resolve(this.values.get(key));
  }
  store(key: string, value: string): Promise<void> {
    this.calls.push(`store ${key}`);
    this.values.set(key, value);
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.calls.push(`delete ${key}`);
    this.values.delete(key);
    return Promise.resolve();
  }
}

const SECRET_URL = 'postgres://alice:p%40ss%3Aw0rd@db.example.com:5433/team?sslmode=require';

describe('team database in the extension (without vscode)', () => {
  const tmp = tempDir('sparkq-ext-team-');
  after(() => tmp.cleanup());

  describe('the URL a person types', () => {
    it('accepts PostgreSQL URLs: TCP, TLS, IPv6, a Unix socket as the host or as ?host=', () => {
      for (const ok of [
        'postgres://alice@db.example.com/team',
        'postgresql://alice:secret@db.example.com:5433/team?sslmode=require',
        'postgres://u@[::1]:5432/team',
        'postgres://sparkq@%2Ftmp%2Fsqpg-abc:5432/team',
        'postgres:///team?host=/var/run/postgresql',
        '  postgres://alice@db/team  ',
      ]) {
        assert.equal(checkDatabaseUrl(ok), undefined, ok);
      }
    });

    it('refuses what is not one, saying what is wrong', () => {
      assert.match(checkDatabaseUrl('') ?? '', /Enter the URL/);
      assert.match(checkDatabaseUrl('http://db.example.com/team') ?? '', /starts with postgres:\/\//);
      assert.match(checkDatabaseUrl('mysql://db/team') ?? '', /PostgreSQL/);
      assert.match(checkDatabaseUrl('postgres://alice@db.example.com') ?? '', /Name the database/);
      assert.match(checkDatabaseUrl('postgres:///team') ?? '', /Name the server/);
      assert.match(checkDatabaseUrl('postgres://a@db/x/y') ?? '', /one name/);
      assert.match(checkDatabaseUrl('postgres://a@db:99999/x') ?? '', /not a valid URL|not a TCP port/);
      assert.match(checkDatabaseUrl('postgres://a b@db/x') ?? '', /no spaces/);
    });

    it('adds a password typed in the hidden box percent-encoded, and finds user and password', () => {
      const url = withPassword('postgres://alice@db.example.com/team', 'p@ss:w/rd');
      assert.equal(url, 'postgres://alice:p%40ss%3Aw%2Frd@db.example.com/team');
      assert.equal(hasPassword(url), true);
      assert.equal(hasPassword('postgres://alice@db/team'), false);
      assert.equal(hasPassword('postgres://alice@db/team?password=x'), true);
      assert.equal(userOf('postgres://al%20ice@db/team'), 'al ice');
      assert.equal(userOf('postgres:///team?host=/tmp'), '');
    });

    it('names the database as host/database, never with user or password', () => {
      assert.equal(describeDatabase(SECRET_URL), 'db.example.com:5433/team');
      assert.equal(describeDatabase('postgres://alice@db.example.com:5432/team'), 'db.example.com/team');
      assert.equal(describeDatabase('postgres://sparkq@%2Ftmp%2Fsqpg-abc:5432/itest_1'), '/tmp/sqpg-abc/itest_1');
      assert.equal(describeDatabase('postgres:///team?host=/var/run/postgresql'), '/var/run/postgresql/team');
      assert.equal(describeDatabase('postgres://alice:pw@db'), 'db/alice');
    });

    it('takes the password out of messages and logged arguments', () => {
      assert.equal(redactUrl(SECRET_URL), 'postgres://alice:***@db.example.com:5433/team?sslmode=require');
      assert.equal(redactUrl('postgres://a@db/x?password=hunter22&sslmode=require'), 'postgres://a@db/x?password=***&sslmode=require');
      const message = `could not connect to ${SECRET_URL}: password "p@ss:w0rd" rejected`;
      const scrubbed = scrubSecrets(message, SECRET_URL);
      assert.ok(!scrubbed.includes('w0rd'), scrubbed);
      assert.match(scrubbed, /alice:\*\*\*@db\.example\.com/);
      const args = withoutPasswords(JSON.stringify({ url: SECRET_URL }));
      assert.equal(args, '{"url":"postgres://alice:***@db.example.com:5433/team?sslmode=require"}');
      assert.equal(withoutPasswords('{"url":"postgres://alice@db/team"}'), '{"url":"postgres://alice@db/team"}');
    });
  });

  describe('which URL is used', () => {
    it('the environment wins, then the URL saved in SecretStorage, then store.url in sparkq.yml', () => {
      const file = 'postgres://team@db.example.com/team';
      const saved = 'postgres://alice:pw@db.example.com/team';
      const env = 'postgres://ci@ci-db/team';
      assert.deepEqual(resolveTeamDatabase({ SPARKQ_DATABASE_URL: env }, saved, file), { url: env, source: 'environment' });
      assert.deepEqual(resolveTeamDatabase({ SPARKQ_DATABASE_URL: '  ' }, saved, file), { url: saved, source: 'saved' });
      assert.deepEqual(resolveTeamDatabase({}, saved, file), { url: saved, source: 'saved' });
      assert.deepEqual(resolveTeamDatabase({}, undefined, file), { url: file, source: 'sparkq.yml' });
      assert.equal(resolveTeamDatabase({}, '', undefined), null);
    });

    it('openQueue gets the saved URL as SPARKQ_DATABASE_URL; the environment and sparkq.yml are left as they are', () => {
      const base = { PATH: '/usr/bin', HOME: '/home/a' };
      assert.deepEqual(openEnv(base, { url: 'postgres://a:pw@db/t', source: 'saved' }), { ...base, SPARKQ_DATABASE_URL: 'postgres://a:pw@db/t' });
      assert.equal(openEnv(base, { url: 'postgres://a@db/t', source: 'sparkq.yml' }), base);
      const withEnv = { ...base, SPARKQ_DATABASE_URL: 'postgres://ci@db/t' };
      assert.equal(openEnv(withEnv, { url: 'postgres://ci@db/t', source: 'environment' }), withEnv);
      assert.equal(openEnv(base, null), base);
    });

    it('reads team mode from sparkq.yml: kind postgres, with or without store.url; the embedded store is not team mode', () => {
      const folder = (name: string, yml: string | null) => {
        const d = path.join(tmp.dir, name);
        fs.mkdirSync(d, { recursive: true });
        if (yml !== null) fs.writeFileSync(path.join(d, 'sparkq.yml'), yml);
        return d;
      };
      assert.deepEqual(teamConfigOf(folder('team-no-url', 'version: 1\nproject: t\nstore:\n  kind: postgres\n')), {});
      assert.deepEqual(teamConfigOf(folder('team-url', 'version: 1\nproject: t\nstore:\n  kind: postgres\n  url: postgres://team@db/t\n')), { url: 'postgres://team@db/t' });
      assert.equal(teamConfigOf(folder('embedded', 'version: 1\nproject: t\n# not postgres yet\n')), null);
      assert.equal(teamConfigOf(folder('none', null)), null);
    });
  });

  describe('SecretStorage, per workspace folder', () => {
    it('keeps each folder’s URL under its own key, and only there', async () => {
      const store = new FakeSecrets();
      const secrets = new TeamDatabaseSecrets(store);
      await secrets.save('/work/laptop', ` ${SECRET_URL} `);
      await secrets.save('/work/other', 'postgres://bob@db/other');
      assert.equal(await secrets.get('/work/laptop'), SECRET_URL);
      assert.equal(await secrets.get('/work/other'), 'postgres://bob@db/other');
      assert.equal(await secrets.get('/work/nowhere'), undefined);
      assert.deepEqual([...store.values.keys()], ['sparkq.teamDatabaseUrl:/work/laptop', 'sparkq.teamDatabaseUrl:/work/other']);
    });

    it('never saves what is not a PostgreSQL URL', async () => {
      const store = new FakeSecrets();
      await assert.rejects(new TeamDatabaseSecrets(store).save('/w', 'http://db/x'), /postgres:\/\//);
      assert.equal(store.values.size, 0);
      assert.ok(!store.calls.some((c) => c.startsWith('store')));
    });

    it('forgets one folder’s URL and says whether there was one', async () => {
      const store = new FakeSecrets();
      const secrets = new TeamDatabaseSecrets(store);
      await secrets.save('/w/a', 'postgres://a@db/a');
      await secrets.save('/w/b', 'postgres://b@db/b');
      assert.equal(await secrets.forget('/w/a'), true);
      assert.equal(await secrets.forget('/w/a'), false);
      assert.equal(await secrets.get('/w/a'), undefined);
      assert.equal(await secrets.get('/w/b'), 'postgres://b@db/b');
    });

    it('a secret storage that cannot be read is an error that names no URL', async () => {
      const store = new FakeSecrets();
      store.values.set('sparkq.teamDatabaseUrl:/w', SECRET_URL);
      store.failGet = true;
      await assert.rejects(new TeamDatabaseSecrets(store).get('/w'), (e: Error) => /secret storage: keychain locked/.test(e.message) && !e.message.includes('w0rd'));
    });
  });

  describe('worker terminals', () => {
    const base = {
      runtimeEnv: { ELECTRON_RUN_AS_NODE: '1' },
      binDir: '/ext/bin',
      path: '/usr/bin:/bin',
      pathDelimiter: ':',
      workspaceDir: '/work/laptop',
      worker: 'vscode-abc123',
    };

    it('team mode: the URL in use as SPARKQ_DATABASE_URL, no owner socket', () => {
      const env = workerTerminalEnv({ ...base, owner: null, database: terminalDatabaseEnv({ url: SECRET_URL, source: 'saved' }) });
      assert.deepEqual(env, {
        ELECTRON_RUN_AS_NODE: '1',
        SPARKQ_DATABASE_URL: SECRET_URL,
        SPARKQ_WORKSPACE: '/work/laptop',
        SPARKQ_WORKER: 'vscode-abc123',
        PATH: '/ext/bin:/usr/bin:/bin',
      });
    });

    it('the URL from the environment is passed on too; the one in sparkq.yml the CLI reads itself', () => {
      assert.deepEqual(terminalDatabaseEnv({ url: 'postgres://ci@db/t', source: 'environment' }), { SPARKQ_DATABASE_URL: 'postgres://ci@db/t' });
      assert.deepEqual(terminalDatabaseEnv({ url: 'postgres://team@db/t', source: 'sparkq.yml' }), {});
      assert.deepEqual(terminalDatabaseEnv(null), {});
    });

    it('embedded store: the owner’s socket and token, and no database URL', () => {
      const env = workerTerminalEnv({ ...base, owner: { socketPath: '/run/sq/s.sock', token: 'tok' }, database: terminalDatabaseEnv(null) });
      assert.equal(env['SPARKQ_SOCKET'], '/run/sq/s.sock');
      assert.equal(env['SPARKQ_TOKEN'], 'tok');
      assert.equal(env['SPARKQ_DATABASE_URL'], undefined);
      assert.equal(env['PATH'], '/ext/bin:/usr/bin:/bin');
    });
  });
});
