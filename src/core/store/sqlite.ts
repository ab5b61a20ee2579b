import * as fs from 'node:fs';
import * as path from 'node:path';
import initSqlJs, { type Database, type SqlJsStatic, type Statement, type SqlValue } from 'sql.js';

export type { SqlValue };
export type Row = Record<string, SqlValue>;
export type Params = SqlValue[] | Record<string, SqlValue>;

let sqlJs: Promise<SqlJsStatic> | null = null;
let sqlJsLoaded: SqlJsStatic | null = null;

function findWasm(): string {
  // Bundled: dist/sql-wasm.wasm sits beside dist/*.js. From source (tests, tsx): the sql.js package's own copy.
  const candidates = [path.join(__dirname, 'sql-wasm.wasm')];
  try {
    candidates.push(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'));
  } catch {
    // not resolvable from a bundle; the first candidate is the one that counts there
  }
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`sql-wasm.wasm not found (looked in ${candidates.join(', ')}); rebuild with \`npm run build\``);
}

/** Loads the SQLite WebAssembly module once per process. */
export function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= (async () => {
    const wasmBinary = fs.readFileSync(findWasm());
    sqlJsLoaded = await initSqlJs({
      wasmBinary: wasmBinary.buffer.slice(wasmBinary.byteOffset, wasmBinary.byteOffset + wasmBinary.byteLength),
    });
    return sqlJsLoaded;
  })();
  return sqlJs;
}

/**
 * A thin layer over a sql.js database: cached prepared statements, rows as objects, and transactions that roll back
 * when the function throws. Everything is synchronous, which is what makes each queue operation atomic: no other
 * code can run between a read and the write that depends on it.
 */
export class SqlDatabase {
  private readonly cache = new Map<string, Statement>();
  private depth = 0;

  constructor(readonly raw: Database) {
    // The database lives in memory; durability comes from our journal and snapshots, not SQLite's own files.
    raw.exec(
      'PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA locking_mode=EXCLUSIVE; ' +
        'PRAGMA cache_size=-131072; PRAGMA foreign_keys=OFF;',
    );
  }

  static async open(bytes?: Uint8Array): Promise<SqlDatabase> {
    const SQL = await loadSqlJs();
    return new SqlDatabase(new SQL.Database(bytes));
  }

  /** Opens another database synchronously; the module must already be loaded (any open store has loaded it). */
  static openSync(bytes?: Uint8Array): SqlDatabase {
    if (!sqlJsLoaded) throw new Error('internal: sql.js is not loaded yet');
    return new SqlDatabase(new sqlJsLoaded.Database(bytes));
  }

  private stmt(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.raw.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  run(sql: string, params?: Params): void {
    const s = this.stmt(sql);
    try {
      if (params) s.bind(params);
      s.step();
    } finally {
      s.reset();
    }
  }

  /** Rows changed by the last INSERT/UPDATE/DELETE. */
  changes(): number {
    return this.raw.getRowsModified();
  }

  get<T = Row>(sql: string, params?: Params): T | undefined {
    const s = this.stmt(sql);
    try {
      if (params) s.bind(params);
      return s.step() ? (s.getAsObject() as T) : undefined;
    } finally {
      s.reset();
    }
  }

  all<T = Row>(sql: string, params?: Params): T[] {
    const s = this.stmt(sql);
    const out: T[] = [];
    try {
      if (params) s.bind(params);
      while (s.step()) out.push(s.getAsObject() as T);
    } finally {
      s.reset();
    }
    return out;
  }

  /** First column of the first row. */
  value(sql: string, params?: Params): SqlValue | undefined {
    const s = this.stmt(sql);
    try {
      if (params) s.bind(params);
      return s.step() ? s.get()[0] : undefined;
    } finally {
      s.reset();
    }
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  transaction<T>(fn: () => T): T {
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    this.run('BEGIN');
    this.depth = 1;
    try {
      const result = fn();
      this.run('COMMIT');
      return result;
    } catch (e) {
      this.run('ROLLBACK');
      throw e;
    } finally {
      this.depth = 0;
    }
  }

  export(): Uint8Array {
    if (this.depth > 0) throw new Error('cannot export inside a transaction');
    return this.raw.export();
  }

  close(): void {
    for (const s of this.cache.values()) s.free();
    this.cache.clear();
    this.raw.close();
  }
}
