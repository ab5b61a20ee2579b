import * as fs from 'node:fs';
import * as path from 'node:path';

/*
 * How clients find the owner, in a module of its own: every client reads it before it knows whether it will become
 * the owner, so it must not bring the owner's code (the store, sql.js, the config parser) with it.
 */

/** `.sparkq/owner.json`: how clients reach the owner. 0600, because the token in it is the key to the queue. */
export interface OwnerRecord {
  version: 1;
  pid: number;
  generation: number;
  role: string;
  socketPath: string;
  token: string;
  since: string;
}

export const OWNER_RECORD = 'owner.json';

export function readOwnerRecord(sparkqDir: string): OwnerRecord | null {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(sparkqDir, OWNER_RECORD), 'utf8')) as Partial<OwnerRecord>;
    if (r.version !== 1 || typeof r.generation !== 'number' || typeof r.socketPath !== 'string' || typeof r.token !== 'string') return null;
    return r as OwnerRecord;
  } catch {
    return null;
  }
}
