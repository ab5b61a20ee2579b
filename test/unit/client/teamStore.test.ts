import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { teamStoreOf } from '../../../src/client/teamStore';
import { defaultConfigYaml } from '../../../src/core/config';
import { tempDir } from '../../support/tmp';

/*
 * Which store a workspace names, as every command asks before it opens the queue: the embedded store unless
 * sparkq.yml says postgres. The sparkq.yml `sparkq init` writes explains postgres in a comment, which must not make an
 * embedded workspace's every command parse its config (that cost a client command ~14 ms of its ~110).
 */
describe('teamStoreOf: the store a workspace names', () => {
  const tmp = tempDir('sparkq-team-store-');
  after(() => tmp.cleanup());
  let n = 0;
  const ws = (yml: string) => {
    const dir = path.join(tmp.dir, `ws${++n}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'sparkq.yml'), yml);
    return dir;
  };

  it('the sparkq.yml of sparkq init: embedded, although its comments mention postgres', () => {
    const yml = defaultConfigYaml('p');
    assert.match(yml, /^#.*\bpostgres\b/m, 'the template still explains postgres in a comment');
    assert.equal(teamStoreOf(ws(yml), {}), null);
    // Decided without parsing it: a broken entry is left to whoever needs the config (parsing would throw here).
    assert.equal(teamStoreOf(ws(`${yml}\nworker: 5\n`), {}), null);
  });

  it('a postgres store, in block or flow style, with a trailing comment: the team store', () => {
    const url = 'postgres://sparkq@localhost/q';
    const block = teamStoreOf(ws(`version: 1\nstore:\n  kind: postgres   # team mode\n  url: ${url}\n`), {});
    assert.deepEqual(block && { url: block.url, schema: block.schema }, { url, schema: 'sparkq' });
    const flow = teamStoreOf(ws(`version: 1\nstore: { kind: postgres, schema: team }\n`), { SPARKQ_DATABASE_URL: url });
    assert.deepEqual(flow && { url: flow.url, schema: flow.schema }, { url, schema: 'team' });
  });

  it('a commented-out postgres store stays embedded', () => {
    assert.equal(teamStoreOf(ws('version: 1\n# store:\n#   kind: postgres\n#   url: postgres://x@y/z\n'), {}), null);
  });
});
