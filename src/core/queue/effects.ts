import type { SqlDatabase } from '../store/sqlite';
import type { TaskStatus } from '../model';

/*
 * Effects are what the journal records: the resolved outcome of a mutation (ids chosen, times fixed, the task a claim
 * picked). The live operation and start-up replay both go through `applyEffect`, so replay does exactly what the
 * live path did. Field names are short because every acknowledged mutation writes one of these to disk.
 */

export interface TaskRowInsert {
  /** FIFO position; never reused, even after the task with the highest seq is archived or purged. */
  seq: number;
  id: string;
  sessionId: string;
  queueId: string;
  tool: string;
  taskClass: string;
  prompt: string | null;
  payload: string | null;
  priority: number;
  timeoutS: number;
  at: number;
  retryOf: string | null;
}

export interface ChunkMeta {
  id: number;
  file: string;
  count: number;
  minSeq: number;
  maxSeq: number;
  minFinishedAt: number;
  maxFinishedAt: number;
  bytes: number;
  crc: number;
  /** Bloom filter of the chunk's task ids, base64. */
  bloom: string;
  at: number;
}

export type Effect =
  | { t: 'session.create'; id: string; name: string; description: string; at: number }
  | { t: 'session.end'; id: string; at: number }
  | {
      t: 'queue.create';
      id: string;
      sessionId: string;
      name: string;
      instructions: string;
      workdir: string | null;
      maxWorkers: number;
      at: number;
    }
  | { t: 'queue.end'; id: string; at: number }
  | ({ t: 'task.enqueue' } & TaskRowInsert)
  | { t: 'task.claim'; id: string; queueId: string; lease: string; worker: string | null; attempt: number; at: number }
  | { t: 'task.heartbeat'; id: string; at: number }
  | { t: 'task.stale'; id: string; at: number }
  | {
      t: 'task.finish';
      id: string;
      queueId: string;
      attempt: number;
      status: 'succeeded' | 'failed';
      at: number;
      summary: string | null;
      data: string | null;
      error: string | null;
      stdout: string | null;
      stderr: string | null;
      usage: string | null;
    }
  | { t: 'archive.add'; chunk: ChunkMeta; ids: string[] }
  | {
      t: 'purge';
      /** Live tasks removed. */
      ids: string[];
      /** Archive chunks removed (their files are deleted once this is durable). */
      dropChunks: number[];
      /** Chunks rewritten without their purged tasks: the old chunk id and its replacement. */
      replaceChunks: { old: number; chunk: ChunkMeta }[];
      /** How many tasks left each (queue, status) count, live and archived together. */
      counts: [queueId: string, status: TaskStatus, n: number][];
    };

function bump(db: SqlDatabase, queueId: string, status: string, delta: number): void {
  db.run('INSERT INTO queue_counts(queue_id, status, n) VALUES (?, ?, ?) ON CONFLICT(queue_id, status) DO UPDATE SET n = n + excluded.n', [
    queueId,
    status,
    delta,
  ]);
}

function insertChunk(db: SqlDatabase, c: ChunkMeta): void {
  db.run(
    'INSERT INTO archive_chunks(id, file, count, min_seq, max_seq, min_finished_at, max_finished_at, bytes, crc, bloom, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    [c.id, c.file, c.count, c.minSeq, c.maxSeq, c.minFinishedAt, c.maxFinishedAt, c.bytes, c.crc, Buffer.from(c.bloom, 'base64'), c.at],
  );
  // Chunk ids (and so file names) are never reused, even after a purge drops the newest chunk.
  db.run("INSERT INTO meta(key, value) VALUES ('chunk_id_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [c.id]);
}

function deleteTasks(db: SqlDatabase, ids: readonly string[]): void {
  for (const id of ids) {
    db.run('DELETE FROM tasks WHERE id = ?', [id]);
    db.run('DELETE FROM attempts WHERE task_id = ?', [id]);
  }
}

/** Applies one effect. Throws when the effect does not fit the database (a bug, or a damaged journal on replay). */
export function applyEffect(db: SqlDatabase, e: Effect): void {
  switch (e.t) {
    case 'session.create':
      db.run("INSERT INTO sessions(id, name, description, status, created_at) VALUES (?, ?, ?, 'active', ?)", [e.id, e.name, e.description, e.at]);
      return;
    case 'session.end':
      db.run("UPDATE sessions SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]);
      return expectChanged(db, e);
    case 'queue.create':
      db.run(
        "INSERT INTO queues(id, session_id, name, instructions, workdir, status, max_workers, created_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
        [e.id, e.sessionId, e.name, e.instructions, e.workdir, e.maxWorkers, e.at],
      );
      return;
    case 'queue.end':
      db.run("UPDATE queues SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]);
      return expectChanged(db, e);
    case 'task.enqueue':
      db.run(
        `INSERT INTO tasks(seq, id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
        [e.seq, e.id, e.sessionId, e.queueId, e.tool, e.taskClass, e.prompt, e.payload, e.priority, e.timeoutS, e.at, e.retryOf],
      );
      bump(db, e.queueId, 'queued', 1);
      db.run("INSERT INTO meta(key, value) VALUES ('task_seq_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [e.seq]);
      if (e.retryOf !== null) db.run('INSERT INTO requeues(original_id, new_id) VALUES (?, ?)', [e.retryOf, e.id]);
      return;
    case 'task.claim':
      db.run(
        "UPDATE tasks SET status = 'running', attempt = ?, worker = ?, lease = ?, started_at = ?, heartbeat_at = ?, stale_at = NULL WHERE id = ? AND status = 'queued'",
        [e.attempt, e.worker, e.lease, e.at, e.at, e.id],
      );
      expectChanged(db, e);
      db.run('INSERT INTO attempts(task_id, n, lease, worker, started_at) VALUES (?, ?, ?, ?, ?)', [e.id, e.attempt, e.lease, e.worker, e.at]);
      bump(db, e.queueId, 'queued', -1);
      bump(db, e.queueId, 'running', 1);
      return;
    case 'task.heartbeat':
      db.run("UPDATE tasks SET heartbeat_at = ? WHERE id = ? AND status = 'running'", [e.at, e.id]);
      return expectChanged(db, e);
    case 'task.stale':
      db.run("UPDATE tasks SET stale_at = ? WHERE id = ? AND status = 'running'", [e.at, e.id]);
      return expectChanged(db, e);
    case 'task.finish':
      db.run(
        `UPDATE tasks SET status = ?, finished_at = ?, lease = NULL, summary = ?, data = ?, error = ?, stdout = ?, stderr = ?, usage = ?
         WHERE id = ? AND status = 'running'`,
        [e.status, e.at, e.summary, e.data, e.error, e.stdout, e.stderr, e.usage, e.id],
      );
      expectChanged(db, e);
      db.run('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?', [e.at, e.status, e.error, e.id, e.attempt]);
      bump(db, e.queueId, 'running', -1);
      bump(db, e.queueId, e.status, 1);
      return;
    case 'archive.add':
      insertChunk(db, e.chunk);
      deleteTasks(db, e.ids);
      return;
    case 'purge':
      deleteTasks(db, e.ids);
      for (const id of e.dropChunks) db.run('DELETE FROM archive_chunks WHERE id = ?', [id]);
      for (const r of e.replaceChunks) {
        db.run('DELETE FROM archive_chunks WHERE id = ?', [r.old]);
        insertChunk(db, r.chunk);
      }
      for (const [queueId, status, n] of e.counts) bump(db, queueId, status, -n);
      return;
  }
}

function expectChanged(db: SqlDatabase, e: Effect): void {
  if (db.changes() !== 1) throw new Error(`effect ${e.t} on ${'id' in e ? e.id : '?'} changed ${db.changes()} rows, expected 1`);
}

export function applyEffects(db: SqlDatabase, effects: readonly Effect[]): void {
  for (const e of effects) applyEffect(db, e);
}
