import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Task } from '../../src/core/model';
import { activateSparkq, exec, rowsOf, waitFor, workspaceDir } from './helpers';

/**
 * Two windows on the same folder, run at the same time by scripts/run-integration.mjs: host A becomes the owner, host
 * B must become its client (not a second owner), and both see each other's tasks. They meet through marker files.
 */
const markers = (dir: string) => path.join(dir, '.itest');

function writeMarker(dir: string, name: string, value: unknown): void {
  fs.mkdirSync(markers(dir), { recursive: true });
  fs.writeFileSync(path.join(markers(dir), `${name}.json.tmp`), JSON.stringify(value));
  fs.renameSync(path.join(markers(dir), `${name}.json.tmp`), path.join(markers(dir), `${name}.json`));
}

function readMarker<T>(dir: string, name: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(markers(dir), `${name}.json`), 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function registerHostASuite(): void {
  describe('two windows on one folder: host A (owner)', function () {
    this.timeout(240_000);
    it('owns the queue, serves host B, and sees what B enqueues live', async () => {
      const dir = workspaceDir();
      const sparkq = await activateSparkq();
      assert.equal(sparkq.testHooks.connection.state.kind, 'owner');
      const seen = new Set<string>();
      sparkq.onDidChange((events) => events.forEach((e) => e.kind === 'task' && seen.add(e.id)));
      const mine = await exec<Task>('sparkq.enqueue', { queue: 'Shared', tool: 'llm-codex', prompt: 'from host A' });
      writeMarker(dir, 'a-ready', { pid: process.pid, task: mine.id });
      const b = await waitFor('host B to finish', () => readMarker<{ task: string; pid: number }>(dir, 'b-done'), 200_000);
      assert.notEqual(b.pid, process.pid, 'host B is another extension host process');
      await waitFor('B’s change event', () => seen.has(b.task));
      const rows = await waitFor('both tasks in the view', async () => {
        const r = await rowsOf(sparkq.testHooks.views.tasks);
        return r.some((x) => x.id === b.task) && r.some((x) => x.id === mine.id) ? r : undefined;
      });
      assert.equal(rows.length, 2);
      assert.equal(sparkq.testHooks.connection.state.kind, 'owner', 'still the only owner');
      const d = await sparkq.getTask(b.task);
      assert.equal(d.prompt, 'from host B');
      writeMarker(dir, 'a-done', { ok: true });
    });
  });
}

export function registerHostBSuite(): void {
  describe('two windows on one folder: host B (client)', function () {
    this.timeout(240_000);
    it('becomes a client of host A and shares its queue', async () => {
      const dir = workspaceDir();
      const a = await waitFor('host A to be ready', () => readMarker<{ pid: number; task: string }>(dir, 'a-ready'), 200_000);
      const sparkq = await activateSparkq();
      assert.equal(sparkq.testHooks.connection.state.kind, 'client');
      assert.equal(sparkq.testHooks.connection.queueHandle?.ownerInfo.pid, a.pid);
      assert.equal(sparkq.testHooks.connection.queueHandle?.ownerInfo.role, 'extension');
      const rows = await rowsOf(sparkq.testHooks.views.tasks);
      assert.ok(rows.some((r) => r.id === a.task), 'B sees A’s task');
      const mine = await exec<Task>('sparkq.enqueue', { queue: 'Shared', tool: 'llm-claude', prompt: 'from host B' });
      assert.ok(mine, sparkq.testHooks.lastFailure()?.message);
      await waitFor('B’s own task in its view', async () => (await rowsOf(sparkq.testHooks.views.tasks)).some((r) => r.id === mine.id));
      writeMarker(dir, 'b-done', { task: mine.id, pid: process.pid });
      // Stay connected until A has checked, so A never sees its client vanish mid-test.
      await waitFor('host A to finish', () => readMarker(dir, 'a-done'), 120_000);
    });
  });
}
