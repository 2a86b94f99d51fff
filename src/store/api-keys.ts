import type { Statements, Store } from './store.js';
import type { Row } from './queries.js';

/** This group's fixed statements by name; prepared when the store opens. */
const SQL = {
  insertKey: `INSERT INTO api_keys (name, hash, created_at) VALUES (@name, @hash, @now) ON CONFLICT (name) DO NOTHING`,
  /* Every key's hash: the caller compares each, so the time taken says nothing about which matched. */
  keyHashes: `SELECT name, hash FROM api_keys ORDER BY name`,
  keys: `SELECT name, created_at FROM api_keys ORDER BY name`,
  deleteKey: `DELETE FROM api_keys WHERE name = ?`,
} as const;

/** The keys `serve --api` takes, each stored as its hash only. */
export class ApiKeys {
  private readonly stmt: Statements<typeof SQL>;

  constructor(store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  /** False when a key of that name exists (it is left as it is). */
  add(name: string, hash: Buffer, now: number): boolean {
    return this.stmt.insertKey.run({ name, hash, now }).changes > 0;
  }

  hashes(): { name: string; hash: Buffer }[] {
    return this.stmt.keyHashes.all() as { name: string; hash: Buffer }[];
  }

  list(): { name: string; createdAt: number }[] {
    return (this.stmt.keys.all() as Row[]).map((r) => ({ name: r.name, createdAt: r.created_at }));
  }

  remove(name: string): boolean {
    return this.stmt.deleteKey.run(name).changes > 0;
  }
}
