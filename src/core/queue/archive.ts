import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError } from '../errors';
import { fsyncDir } from '../store/fileio';
import { readSnapshot, writeSnapshot } from '../store/snapshot';
import { type Row, SqlDatabase } from '../store/sqlite';
import type { ChunkMeta } from './effects';
import { ATTEMPTS_TABLE, TASKS_TABLE, completeTaskColumns } from './schema';

/*
 * Finished tasks beyond the live cap move to archive chunks: small SQLite files of their own, written atomically and
 * checksummed like snapshots, so the live database (and with it memory and snapshot time) stays flat as history grows.
 * The live database keeps one row per chunk with a Bloom filter of its task ids, so a lookup by id opens only the
 * chunk that holds it. Listing and detail read chunks on demand through a small cache.
 */

const BLOOM_BITS_PER_ID = 10;
const BLOOM_HASHES = 7;

function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Bloom {
  private constructor(readonly bits: Uint8Array) {}
  static forCount(n: number): Bloom {
    return new Bloom(new Uint8Array(Math.max(8, Math.ceil((n * BLOOM_BITS_PER_ID) / 8))));
  }
  static from(bytes: Uint8Array): Bloom {
    return new Bloom(bytes);
  }
  private *positions(id: string): Generator<number> {
    const m = this.bits.length * 8;
    const h1 = fnv1a(id, 0);
    const h2 = fnv1a(id, 0x9e3779b9) | 1;
    for (let i = 0; i < BLOOM_HASHES; i++) yield ((h1 + Math.imul(i, h2)) >>> 0) % m;
  }
  add(id: string): void {
    for (const p of this.positions(id)) this.bits[p >>> 3]! |= 1 << (p & 7);
  }
  has(id: string): boolean {
    for (const p of this.positions(id)) if ((this.bits[p >>> 3]! & (1 << (p & 7))) === 0) return false;
    return true;
  }
}

export interface ChunkRow {
  id: number;
  file: string;
  count: number;
  min_seq: number;
  max_seq: number;
  min_finished_at: number;
  max_finished_at: number;
  bytes: number;
  crc: number;
  bloom: Uint8Array;
}

export const ARCHIVE_DIR = 'archive';

export function chunkFileName(id: number): string {
  return `chunk-${String(id).padStart(8, '0')}.sqlite`;
}

export class Archive {
  private readonly cache = new Map<number, SqlDatabase>();
  private static readonly CACHE_SIZE = 2;

  constructor(
    private readonly live: SqlDatabase,
    readonly dir: string,
    private readonly durable: boolean,
  ) {}

  chunks(): ChunkRow[] {
    return this.live.all<ChunkRow>('SELECT * FROM archive_chunks ORDER BY max_seq DESC');
  }

  get totalCount(): number {
    return Number(this.live.value('SELECT COALESCE(SUM(count), 0) FROM archive_chunks') ?? 0);
  }

  nextChunkId(): number {
    return Number(this.live.value("SELECT COALESCE((SELECT value FROM meta WHERE key = 'chunk_id_high'), 0) + 1") ?? 1);
  }

  /**
   * Writes a chunk file holding `rows` (task rows with their attempts) and returns its metadata. The file is durable
   * before this returns; the caller then removes the rows from the live database in a journaled effect.
   */
  writeChunk(id: number, taskRows: Row[], attemptRows: Row[], at: number): ChunkMeta {
    if (taskRows.length === 0) throw new Error('internal: an archive chunk needs tasks');
    const chunk = SqlDatabase.openSync();
    try {
      chunk.exec(TASKS_TABLE + ATTEMPTS_TABLE);
      completeTaskColumns(chunk);
      chunk.transaction(() => {
        insertRows(chunk, 'tasks', taskRows);
        insertRows(chunk, 'attempts', attemptRows);
      });
      chunk.exec('CREATE INDEX tasks_queue ON tasks(queue_id, seq)');
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const file = chunkFileName(id);
      const image = chunk.export();
      const { bytes, crc } = writeSnapshot(path.join(this.dir, file), image, id, this.durable);
      const bloom = Bloom.forCount(taskRows.length);
      let minSeq = Infinity;
      let maxSeq = -Infinity;
      let minFin = Infinity;
      let maxFin = -Infinity;
      for (const r of taskRows) {
        bloom.add(r['id'] as string);
        const seq = r['seq'] as number;
        const fin = r['finished_at'] as number;
        minSeq = Math.min(minSeq, seq);
        maxSeq = Math.max(maxSeq, seq);
        minFin = Math.min(minFin, fin);
        maxFin = Math.max(maxFin, fin);
      }
      return {
        id,
        file,
        count: taskRows.length,
        minSeq,
        maxSeq,
        minFinishedAt: minFin,
        maxFinishedAt: maxFin,
        bytes,
        crc,
        bloom: Buffer.from(bloom.bits).toString('base64'),
        at,
      };
    } finally {
      chunk.close();
    }
  }

  /** Opens a chunk (verified against its checksum) through the cache. */
  open(chunk: ChunkRow): SqlDatabase {
    const hit = this.cache.get(chunk.id);
    if (hit) {
      this.cache.delete(chunk.id);
      this.cache.set(chunk.id, hit);
      return hit;
    }
    const { image } = readSnapshot(path.join(this.dir, chunk.file), { seq: chunk.id, crc: chunk.crc, bytes: chunk.bytes });
    const db = SqlDatabase.openSync(image);
    completeTaskColumns(db);
    this.cache.set(chunk.id, db);
    while (this.cache.size > Archive.CACHE_SIZE) {
      const [oldest, odb] = this.cache.entries().next().value as [number, SqlDatabase];
      odb.close();
      this.cache.delete(oldest);
    }
    return db;
  }

  /** Drops a chunk from the cache (before its file is removed or replaced). */
  forget(id: number): void {
    this.cache.get(id)?.close();
    this.cache.delete(id);
  }

  findTask(id: string): { row: Row; attempts: Row[] } | null {
    for (const c of this.chunks()) {
      if (!Bloom.from(c.bloom).has(id)) continue;
      const db = this.open(c);
      const row = db.get('SELECT * FROM tasks WHERE id = ?', [id]);
      if (row) return { row, attempts: db.all('SELECT * FROM attempts WHERE task_id = ? ORDER BY n', [id]) };
    }
    return null;
  }

  /** Checks that every chunk the live database names is on disk with the right size. */
  verifyPresent(): void {
    for (const c of this.chunks()) {
      const file = path.join(this.dir, c.file);
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch {
        throw new SparkqError('corrupt', `archive chunk ${file} (${c.count} finished tasks) is missing`, { file });
      }
      if (size !== c.bytes) throw new SparkqError('corrupt', `archive chunk ${file} has ${size} bytes where ${c.bytes} were written`, { file });
    }
  }

  /** Removes chunk files that no chunk row names: leftovers of a crash between writing a chunk and recording it. */
  sweepOrphans(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    const named = new Set(this.chunks().map((c) => c.file));
    const removed: string[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      if (!named.has(name)) {
        fs.rmSync(path.join(this.dir, name), { force: true });
        removed.push(name);
      }
    }
    if (removed.length > 0) fsyncDir(this.dir);
    return removed;
  }

  removeFiles(files: readonly string[]): void {
    for (const f of files) fs.rmSync(path.join(this.dir, f), { force: true });
    if (files.length > 0 && this.durable) fsyncDir(this.dir);
  }

  close(): void {
    for (const db of this.cache.values()) db.close();
    this.cache.clear();
  }
}

function insertRows(db: SqlDatabase, table: string, rows: Row[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const sql = `INSERT INTO ${table}(${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`;
  for (const r of rows) db.run(sql, cols.map((c) => r[c] ?? null));
}
