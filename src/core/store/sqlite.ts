/*
 * SQLite for the store: sql.js (SQLite compiled to WebAssembly) behind a small synchronous wrapper with cached
 * statements, transactions and a fast export. About 600 lines, on purpose: it is the one place that knows sql.js's
 * internals (its module and memory, its statement API, how export copies the image), and split those details would
 * leak into several files.
 */
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

/**
 * The module's WebAssembly memory. sql.js does not export it; we instantiate the module ourselves (Emscripten's
 * `instantiateWasm` hook) to keep it, for the few places that must read a value SQLite wrote (an out-parameter).
 */
let wasmMemory: WebAssembly.Memory | null = null;

/** Loads the SQLite WebAssembly module once per process. */
export function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= (async () => {
    const wasmBinary = fs.readFileSync(findWasm());
    const bytes = wasmBinary.buffer.slice(wasmBinary.byteOffset, wasmBinary.byteOffset + wasmBinary.byteLength);
    sqlJsLoaded = await initSqlJs({
      wasmBinary: bytes,
      instantiateWasm: (imports, done) => {
        void WebAssembly.instantiate(bytes, imports).then((r) => {
          for (const v of Object.values(r.instance.exports)) if (v instanceof WebAssembly.Memory) wasmMemory = v;
          done(r.instance);
        });
        return {};
      },
    });
    return sqlJsLoaded;
  })();
  return sqlJs;
}

/** The C functions that open an in-memory database and copy a database into it (SQLite's backup API). */
interface MemoryDb {
  _sqlite3_open(filename: number, out: number): number;
  _sqlite3_close_v2(db: number): number;
  _sqlite3_backup_init(dest: number, destName: number, src: number, srcName: number): number;
  _sqlite3_backup_step(backup: number, pages: number): number;
  _sqlite3_backup_finish(backup: number): number;
  _sqlite3_errmsg(db: number): number;
  _malloc(n: number): number;
  _free(ptr: number): void;
  UTF8ToString(ptr: number, maxBytes?: number): string;
  stringToNewUTF8(text: string): number;
  _RegisterExtensionFunctions?: (db: number) => number;
}

function memoryDbOf(module: SqlJsStatic): MemoryDb | null {
  const m = module as unknown as Record<string, unknown>;
  const needed = ['_sqlite3_open', '_sqlite3_close_v2', '_sqlite3_backup_init', '_sqlite3_backup_step', '_sqlite3_backup_finish', '_sqlite3_errmsg'];
  return wasmMemory && needed.every((f) => typeof m[f] === 'function') ? (module as unknown as MemoryDb) : null;
}

/**
 * Opens a sql.js Database whose SQLite handle is a `:memory:` database, holding a copy of `image` when given.
 *
 * sql.js opens every database as a file in Emscripten's in-memory file system: the whole database is kept twice
 * (the file, as a JavaScript ArrayBuffer, and SQLite's page cache in the module's memory), every commit copies its
 * pages into the file (growing it by copy-and-grow), and a page the cache dropped is read back from it. An in-memory
 * database keeps its pages once, in the page cache, and commits write nothing. The image is loaded with the backup
 * API (from a temporary file database that is closed and removed right after), the same way sql.js's export()
 * writes one out. Null when this build of sql.js lacks the functions (the caller then opens the usual way).
 */
function openInMemory(SQL: SqlJsStatic, image: Uint8Array | undefined): Database | null {
  const m = memoryDbOf(SQL);
  if (!m || !wasmMemory) return null;
  const raw = new SQL.Database();
  const fileHandle = (raw as unknown as { db?: unknown }).db;
  if (typeof fileHandle !== 'number' || fileHandle === 0) {
    raw.close();
    return null;
  }
  const name = m.stringToNewUTF8(':memory:');
  const out = m._malloc(4);
  let handle: number;
  try {
    const rc = m._sqlite3_open(name, out);
    handle = new Int32Array(wasmMemory.buffer, out, 1)[0]!;
    if (rc !== 0) {
      if (handle !== 0) m._sqlite3_close_v2(handle);
      raw.close();
      return null;
    }
  } finally {
    m._free(out);
    m._free(name);
  }
  // The Database object now speaks to the in-memory handle; its (empty) file stays until close() removes it.
  m._sqlite3_close_v2(fileHandle);
  (raw as unknown as { db: number }).db = handle;
  m._RegisterExtensionFunctions?.(handle);
  if (image && image.length > 0) {
    try {
      copyInto(SQL, m, raw, handle, image);
    } catch (e) {
      raw.close();
      throw e;
    }
  }
  return raw;
}

const SQLITE_DONE_BACKUP = 101;

function copyInto(SQL: SqlJsStatic, m: MemoryDb, raw: Database, dest: number, image: Uint8Array): void {
  // An in-memory destination must have the source's page size before the copy (SQLite refuses it otherwise).
  const pageSize = image.length >= 18 ? ((image[16]! << 8) | image[17]!) : 0;
  if (pageSize !== 0) raw.exec(`PRAGMA page_size=${pageSize === 1 ? 65536 : pageSize}`);
  const src = new SQL.Database(image);
  try {
    const srcHandle = (src as unknown as { db: number }).db;
    const main = m.stringToNewUTF8('main');
    try {
      const b = m._sqlite3_backup_init(dest, main, srcHandle, main);
      if (b === 0) throw new Error(m.UTF8ToString(m._sqlite3_errmsg(dest)));
      const rc = m._sqlite3_backup_step(b, -1);
      const fin = m._sqlite3_backup_finish(b);
      if (rc !== SQLITE_DONE_BACKUP || fin !== 0) throw new Error(`loading the database image failed: ${m.UTF8ToString(m._sqlite3_errmsg(dest))} (${rc}/${fin})`);
    } finally {
      m._free(main);
    }
  } finally {
    src.close();
  }
}

/**
 * Runs sql.js's export() with `target` as the buffer it writes the image into. sql.js's export() backs the database up
 * into a private file whose contents are a `new Uint8Array(page_count * page_size)` it makes after the backup's first
 * step, writes every page into it, and returns a view of it. A fresh array of the image's size (16 MB at the live cap)
 * costs a page fault per 4 KiB page as the backup first touches it: npm run bench:snapshot with a fresh array per
 * export gave a p50 of 111-123 ms (export alone 31-38 ms) against 58-87 ms (export alone 16-28 ms) with the kept
 * buffer, three alternating runs each on a loaded 2-core machine (2026-12-07; unloaded, with the kept buffer, 29 ms
 * and 9 ms).
 *
 * There is no way to hand sql.js the bytes without touching a global: export() takes no buffer; this build exports
 * neither sqlite3_serialize nor its file system, and has no sqlite_dbpage table (checked: the module's exports and
 * PRAGMA compile_options); a Database made from bytes copies them into a fresh array of its own. So for the duration
 * of this one synchronous call the global Uint8Array constructor is a proxy that answers the first construction of
 * exactly `size` bytes with `target`; any other construction, and everything else, go to Uint8Array itself, and the
 * original is back before any other JavaScript can run (finally, also when export() throws). The backup writes every
 * page of the image in full (SQLite copies whole pages), so stale bytes in a reused target never reach the image: the
 * unit tests compare the result with a fresh export byte for byte, over a target filled with junk first. When sql.js
 * makes no array of that size (another version), the result is simply its own fresh buffer.
 */
function exportInto(raw: Database, size: number, target: Uint8Array): Uint8Array {
  const g = globalThis as { Uint8Array: Uint8ArrayConstructor };
  const original = g.Uint8Array;
  let given = false;
  g.Uint8Array = new Proxy(original, {
    construct(t, args: unknown[]) {
      if (!given && args.length === 1 && args[0] === size) {
        given = true;
        return target;
      }
      return Reflect.construct(t, args, t) as object;
    },
  });
  try {
    return raw.export();
  } finally {
    g.Uint8Array = original;
  }
}

/**
 * A thin layer over a sql.js database: cached prepared statements, rows as objects, and transactions that roll back
 * when the function throws. Everything is synchronous, which is what makes each queue operation atomic: no other
 * code can run between a read and the write that depends on it.
 */
interface Cached {
  stmt: Statement;
  /** Column names, read once per statement: sql.js's getAsObject asks SQLite for them (as JS strings) on every row. */
  cols: string[] | null;
  /** The sqlite3_stmt pointer, for the direct path (0: use sql.js's Statement methods). */
  ptr: number;
}

/**
 * The SQLite C functions the sql.js module exports (its public `_sqlite3_*` exports and string helpers). sql.js's own
 * Statement methods call these through `cwrap`, which converts every argument and result; binding a dozen values and
 * reading a 26-column row that way is a large part of each queue operation. Calling the exports directly does the
 * same work without that layer. Checked at load: if any is missing (another sql.js build), the Statement methods are
 * used instead.
 */
interface Direct {
  _sqlite3_step(stmt: number): number;
  _sqlite3_reset(stmt: number): number;
  _sqlite3_bind_int(stmt: number, i: number, v: number): number;
  _sqlite3_bind_double(stmt: number, i: number, v: number): number;
  _sqlite3_bind_text(stmt: number, i: number, ptr: number, n: number, destructor: number): number;
  _sqlite3_bind_blob(stmt: number, i: number, ptr: number, n: number, destructor: number): number;
  _sqlite3_data_count(stmt: number): number;
  _sqlite3_column_type(stmt: number, i: number): number;
  _sqlite3_column_double(stmt: number, i: number): number;
  _sqlite3_column_text(stmt: number, i: number): number;
  _sqlite3_column_bytes(stmt: number, i: number): number;
  _sqlite3_errmsg(db: number): number;
  _sqlite3_sql(stmt: number): number;
  _sqlite3_changes(db: number): number;
  _malloc(n: number): number;
  _free(ptr: number): void;
  UTF8ToString(ptr: number, maxBytes?: number, ignoreNul?: boolean): string;
  stringToNewUTF8(text: string): number;
  lengthBytesUTF8(text: string): number;
  writeArrayToMemory(bytes: Uint8Array, ptr: number): void;
}

const DIRECT_FUNCTIONS: (keyof Direct)[] = [
  '_sqlite3_step',
  '_sqlite3_reset',
  '_sqlite3_bind_int',
  '_sqlite3_bind_double',
  '_sqlite3_bind_text',
  '_sqlite3_bind_blob',
  '_sqlite3_data_count',
  '_sqlite3_column_type',
  '_sqlite3_column_double',
  '_sqlite3_column_text',
  '_sqlite3_column_bytes',
  '_sqlite3_errmsg',
  '_sqlite3_sql',
  '_sqlite3_changes',
  '_malloc',
  '_free',
  'UTF8ToString',
  'stringToNewUTF8',
  'lengthBytesUTF8',
  'writeArrayToMemory',
];

function directOf(module: SqlJsStatic): Direct | null {
  const m = module as unknown as Record<string, unknown>;
  return DIRECT_FUNCTIONS.every((f) => typeof m[f] === 'function') ? (module as unknown as Direct) : null;
}

/**
 * SQLite's page cache, in KiB, for a database in a sql.js file (the fallback when the in-memory open is unavailable,
 * see openInMemory): the whole database is also in that file, so the cache only needs the hot pages, and a smaller
 * cache keeps the WebAssembly memory (which never shrinks) down. Bulk work that dirties more pages than this in one
 * transaction (start-up replay) raises it for that transaction: see `withCache`. An in-memory database keeps all its
 * pages in the cache whatever this says.
 */
const CACHE_KIB = 16 * 1024;

/** Encoding space for long text values being bound (grown when a longer one comes). */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * A Buffer over the module's memory, made again after the memory grows: growing detaches the old ArrayBuffer, and a
 * view of a detached buffer has length 0 (a cheaper check than reading `memory.buffer` for every value).
 */
let heap: Buffer | null = null;
function heapBytes(memory: WebAssembly.Memory): Buffer {
  if (heap === null || heap.length === 0) heap = Buffer.from(memory.buffer);
  return heap;
}

/**
 * Space in the module's memory where values being bound are encoded (SQLite copies them at bind time, so one place
 * serves every value): no malloc and free per value, and Node's native UTF-8 encoder writes straight into it.
 */
let boundAt = 0;
let boundSize = 0;
function bindSpace(d: Direct, bytes: number): number {
  if (bytes > boundSize) {
    if (boundAt !== 0) d._free(boundAt);
    boundSize = Math.max(bytes, 2 * boundSize, 64 * 1024);
    boundAt = d._malloc(boundSize);
    if (boundAt === 0) {
      boundSize = 0;
      throw new Error(`out of memory binding a value of ${bytes} bytes`);
    }
  }
  return boundAt;
}

const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
/** SQLITE_TRANSIENT: SQLite copies the bound text or blob, so our buffer is freed right after binding. */
const TRANSIENT = -1;

export class SqlDatabase {
  private readonly cache = new Map<string, Cached>();
  private depth = 0;
  private readonly direct: Direct | null;
  /** The sqlite3* handle (sql.js keeps it as `db`), for error messages and change counts on the direct path. */
  private readonly handle: number;

  constructor(readonly raw: Database) {
    const handle = (raw as unknown as { db?: unknown }).db;
    this.handle = typeof handle === 'number' ? handle : 0;
    this.direct = this.handle !== 0 && sqlJsLoaded ? directOf(sqlJsLoaded) : null;
    // The database lives in memory; durability comes from our journal and snapshots, not SQLite's own files.
    raw.exec(
      'PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA locking_mode=EXCLUSIVE; ' +
        `PRAGMA cache_size=-${CACHE_KIB}; PRAGMA foreign_keys=OFF;`,
    );
  }

  /** Opens a database in memory, empty or holding a copy of `bytes` (a database image, as export() gives). */
  static async open(bytes?: Uint8Array): Promise<SqlDatabase> {
    await loadSqlJs();
    return SqlDatabase.openSync(bytes);
  }

  /** Opens another database synchronously; the module must already be loaded (any open store has loaded it). */
  static openSync(bytes?: Uint8Array): SqlDatabase {
    const SQL = sqlJsLoaded;
    if (!SQL) throw new Error('internal: sql.js is not loaded yet');
    const memory = openInMemory(SQL, bytes);
    const db = new SqlDatabase(memory ?? new SQL.Database(bytes));
    db.inMemory = memory !== null;
    return db;
  }

  /**
   * True when the database is a SQLite `:memory:` database (see openInMemory): there is no file to grow or spill to,
   * so the page cache holds every page whatever its size setting.
   */
  inMemory = false;

  private cached(sql: string): Cached {
    let c = this.cache.get(sql);
    if (!c) {
      const stmt = this.raw.prepare(sql);
      c = { stmt, cols: null, ptr: this.pointerOf(stmt, sql) };
      this.cache.set(sql, c);
    }
    return c;
  }

  /**
   * The sqlite3_stmt pointer inside a sql.js Statement. sql.js does not expose it by name, so it is recognised: the
   * numeric property for which sqlite3_sql() gives back this statement's SQL. 0 when none does (direct path off).
   */
  private pointerOf(stmt: Statement, sql: string): number {
    const d = this.direct;
    if (!d) return 0;
    const own = stmt as unknown as Record<string, unknown>;
    for (const key of Object.keys(own)) {
      const v = own[key];
      if (typeof v === 'number' && Number.isInteger(v) && v >= 4096 && d.UTF8ToString(d._sqlite3_sql(v)) === sql) return v;
    }
    return 0;
  }

  private fail(): Error {
    return new Error(this.direct!.UTF8ToString(this.direct!._sqlite3_errmsg(this.handle)));
  }

  /** Binds positional parameters with the C functions (what Statement.bind does for an array, minus cwrap). */
  private bindDirect(ptr: number, params: SqlValue[]): void {
    const d = this.direct!;
    const memory = wasmMemory;
    for (let i = 0; i < params.length; i++) {
      const v = params[i];
      const at = i + 1;
      let rc: number;
      if (v === null || v === undefined) {
        rc = d._sqlite3_bind_blob(ptr, at, 0, 0, 0); // a NULL blob binds NULL, as sql.js does
      } else if (typeof v === 'number') {
        rc = v === (v | 0) ? d._sqlite3_bind_int(ptr, at, v) : d._sqlite3_bind_double(ptr, at, v);
      } else if (memory && typeof v === 'string') {
        // Encoded in place in the module's memory (at most 3 bytes per UTF-16 unit), then copied by SQLite.
        const max = v.length * 3;
        const p = bindSpace(d, max + 1);
        const n = heapBytes(memory).write(v, p, max, 'utf8');
        rc = d._sqlite3_bind_text(ptr, at, p, n, TRANSIENT);
      } else if (memory && v instanceof Uint8Array) {
        const p = bindSpace(d, Math.max(1, v.length));
        heapBytes(memory).set(v, p);
        rc = d._sqlite3_bind_blob(ptr, at, p, v.length, TRANSIENT);
      } else if (typeof v === 'string') {
        if (v.length > 64) {
          // Long text: Node's native UTF-8 encoder into a reused scratch buffer (no allocation per value: a Buffer per
          // bound prompt churned the allocator and RSS grew), then one copy into the module's memory.
          const max = v.length * 3;
          if (scratch.length < max) scratch = Buffer.allocUnsafeSlow(Math.max(max, 2 * scratch.length));
          const n = scratch.write(v, 0, 'utf8');
          const p = d._malloc(n + 1);
          d.writeArrayToMemory(scratch.subarray(0, n), p);
          rc = d._sqlite3_bind_text(ptr, at, p, n, TRANSIENT);
          d._free(p);
        } else {
          const n = d.lengthBytesUTF8(v);
          const p = d.stringToNewUTF8(v);
          rc = d._sqlite3_bind_text(ptr, at, p, n, TRANSIENT);
          d._free(p);
        }
      } else if (v instanceof Uint8Array) {
        const p = d._malloc(Math.max(1, v.length));
        d.writeArrayToMemory(v, p);
        rc = d._sqlite3_bind_blob(ptr, at, p, v.length, TRANSIENT);
        d._free(p);
      } else {
        throw new Error(`cannot bind a value of type ${typeof v}`);
      }
      if (rc !== 0) throw this.fail();
    }
  }

  /** Steps once; true for a row, false when done; throws SQLite's message on an error. */
  private stepDirect(ptr: number): boolean {
    const rc = this.direct!._sqlite3_step(ptr);
    if (rc === SQLITE_ROW) return true;
    if (rc === SQLITE_DONE) return false;
    throw this.fail();
  }

  /** The current row (what Statement.get + getAsObject return), read with the C functions. */
  private rowDirect<T>(c: Cached): T {
    const d = this.direct!;
    const ptr = c.ptr;
    const cols = (c.cols ??= c.stmt.getColumnNames());
    const n = d._sqlite3_data_count(ptr);
    const row: Record<string, SqlValue> = {};
    for (let i = 0; i < n; i++) row[cols[i]!] = this.cellDirect(c, i);
    return row as T;
  }

  /** Column `i` of the current row, as Statement.get gives it. */
  private cellDirect(c: Cached, i: number): SqlValue {
    const d = this.direct!;
    const ptr = c.ptr;
    switch (d._sqlite3_column_type(ptr, i)) {
      case 1: // integer
      case 2: // float
        return d._sqlite3_column_double(ptr, i);
      case 3: {
        const text = d._sqlite3_column_text(ptr, i);
        return d.UTF8ToString(text, d._sqlite3_column_bytes(ptr, i), true);
      }
      case 4: {
        // Bytes need the module's memory, which is not exported; sql.js's getBlob reads the current row's column.
        const blobOf = (c.stmt as unknown as { getBlob?: (col: number) => Uint8Array }).getBlob;
        return typeof blobOf === 'function' ? blobOf.call(c.stmt, i) : (c.stmt.get()[i] ?? null);
      }
      default:
        return null;
    }
  }

  private directFor(c: Cached, params: Params | undefined): boolean {
    return c.ptr !== 0 && (params === undefined || Array.isArray(params));
  }

  /** The current row of `c` as an object (what getAsObject returns), with the column names cached. */
  private static rowOf<T>(c: Cached): T {
    const values = c.stmt.get();
    const cols = (c.cols ??= c.stmt.getColumnNames());
    const row: Record<string, SqlValue> = {};
    for (let i = 0; i < cols.length; i++) row[cols[i]!] = values[i] ?? null;
    return row as T;
  }

  run(sql: string, params?: Params): void {
    const c = this.cached(sql);
    if (this.directFor(c, params)) {
      try {
        if (params) this.bindDirect(c.ptr, params as SqlValue[]);
        this.stepDirect(c.ptr);
      } finally {
        this.direct!._sqlite3_reset(c.ptr);
      }
      return;
    }
    const s = c.stmt;
    try {
      if (params) s.bind(params);
      s.step();
    } finally {
      s.reset();
    }
  }

  /** Rows changed by the last INSERT/UPDATE/DELETE. */
  changes(): number {
    return this.direct ? this.direct._sqlite3_changes(this.handle) : this.raw.getRowsModified();
  }

  get<T = Row>(sql: string, params?: Params): T | undefined {
    const c = this.cached(sql);
    if (this.directFor(c, params)) {
      try {
        if (params) this.bindDirect(c.ptr, params as SqlValue[]);
        return this.stepDirect(c.ptr) ? this.rowDirect<T>(c) : undefined;
      } finally {
        this.direct!._sqlite3_reset(c.ptr);
      }
    }
    const s = c.stmt;
    try {
      if (params) s.bind(params);
      return s.step() ? SqlDatabase.rowOf<T>(c) : undefined;
    } finally {
      s.reset();
    }
  }

  all<T = Row>(sql: string, params?: Params): T[] {
    const c = this.cached(sql);
    const out: T[] = [];
    if (this.directFor(c, params)) {
      try {
        if (params) this.bindDirect(c.ptr, params as SqlValue[]);
        while (this.stepDirect(c.ptr)) out.push(this.rowDirect<T>(c));
      } finally {
        this.direct!._sqlite3_reset(c.ptr);
      }
      return out;
    }
    const s = c.stmt;
    try {
      if (params) s.bind(params);
      while (s.step()) out.push(SqlDatabase.rowOf<T>(c));
    } finally {
      s.reset();
    }
    return out;
  }

  /** First column of the first row. */
  value(sql: string, params?: Params): SqlValue | undefined {
    const c = this.cached(sql);
    if (this.directFor(c, params)) {
      try {
        if (params) this.bindDirect(c.ptr, params as SqlValue[]);
        if (!this.stepDirect(c.ptr)) return undefined;
        return this.direct!._sqlite3_data_count(c.ptr) > 0 ? this.cellDirect(c, 0) : undefined;
      } finally {
        this.direct!._sqlite3_reset(c.ptr);
      }
    }
    const s = c.stmt;
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

  /**
   * Runs `fn` with a page cache of `kib` KiB, then returns to the normal size. For one big transaction: with a cache
   * smaller than the pages it dirties, SQLite spills and re-reads pages mid-transaction, several times slower.
   */
  withCache<T>(kib: number, fn: () => T): T {
    this.raw.exec(`PRAGMA cache_size=-${Math.max(CACHE_KIB, Math.round(kib))}`);
    try {
      return fn();
    } finally {
      this.raw.exec(`PRAGMA cache_size=-${CACHE_KIB}`);
    }
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

  /**
   * The database image (what sql.js's export() gives). With `reuse`, the image is written into a buffer this object
   * keeps from one such export to the next, and the result is a view of it: valid only until the next export with
   * `reuse`, so the caller must be done with it by then (the store writes it to a file and drops it). A fresh buffer
   * of the image's size (tens of megabytes) costs a page fault per 4 KiB page as the export first touches it, a large
   * part of the export's time; a kept buffer has its pages already. The bytes are the same either way.
   */
  export(options: { reuse?: boolean } = {}): Uint8Array {
    if (this.depth > 0) throw new Error('cannot export inside a transaction');
    if (!options.reuse) return this.raw.export();
    const size = Number(this.value('PRAGMA page_count') ?? 0) * Number(this.value('PRAGMA page_size') ?? 0);
    // Dropped when the database has shrunk to under half of it (so that a once-large database does not keep it).
    if (this.exportBuffer && (this.exportBuffer.length < size || size < this.exportBuffer.length / 2)) this.exportBuffer = null;
    if (size === 0) return this.raw.export();
    // Room to grow by an eighth before the next export needs a new buffer.
    this.exportBuffer ??= new Uint8Array(size + (size >>> 3));
    const target = this.exportBuffer.subarray(0, size);
    const image = exportInto(this.raw, size, target);
    // Not our buffer (the export did not ask for one of the expected size: another sql.js): it is the caller's anyway.
    if (image.buffer !== target.buffer) this.exportBuffer = null;
    return image;
  }

  /** See export({ reuse }). */
  private exportBuffer: Uint8Array | null = null;

  close(): void {
    this.exportBuffer = null;
    for (const c of this.cache.values()) c.stmt.free();
    this.cache.clear();
    this.raw.close();
  }
}
