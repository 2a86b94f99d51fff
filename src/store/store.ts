import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  BUSY_TIMEOUT_MS, ExitCode, MailerError, databaseBusy, isDatabaseBusy, notMailerDatabase, noteDatabase, storageProblem,
} from '../errors.js';
import { migrations } from './schema.js';
import { foldCase } from './queries.js';
import { decimalNumber } from '../config/numbers.js';
import { Members } from './members.js';
import { Mailings } from './mailings.js';
import { Sends } from './sends.js';
import { SendLog } from './log.js';
import { Triage } from './triage.js';
import { Plans } from './plans.js';
import { ApiKeys } from './api-keys.js';
import { Erasure } from './erasure.js';

/** A group's fixed statements by name, prepared when the store opens. */
export type Statements<Q> = { readonly [K in keyof Q]: Database.Statement };

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Puts the database in WAL mode (it is, unless a first import is running or was killed). While
 * a first import holds it under its rollback journal, SQLite refuses the switch at once, busy
 * timeout or not, so it is tried again until the timeout has passed, as any other wait is.
 */
function enterWal(db: Database.Database): void {
  const until = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if (!isDatabaseBusy(err) || Date.now() >= until) throw err;
      Atomics.wait(pause, 0, 0, 20);
    }
  }
}

/**
 * The database holds addresses, replies and tokens: a new one is made 0600 before SQLite opens
 * it, whatever the umask, and SQLite gives its -wal, -shm and -journal the database file's mode.
 */
function createPrivate(file: string): void {
  if (file === ':memory:' || file === '' || file.startsWith('file:')) return;
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600));
  } catch {
    // there already (or not ours to make): SQLite opens it and says what it says
  }
}

/**
 * A database an older mailer left readable by others is tightened, with the files beside it,
 * once it has been recognised as mailer's: a file refused as foreign keeps its mode. Where that
 * is not ours to do (another user's file), it stays as it is.
 */
function tightenPrivate(file: string): void {
  if (file === ':memory:' || file === '' || file.startsWith('file:')) return;
  for (const each of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      const mode = fs.statSync(each).mode & 0o777;
      if (mode & 0o077) fs.chmodSync(each, mode & 0o700);
    } catch {
      // absent, or not ours
    }
  }
}

/**
 * The one place mailer talks SQL: the database as a whole (open, migrations, transactions), and
 * one group per set of tables, each with its statements in its own file. Fixed statements are
 * prepared when the store opens, so a mistake in one fails at launch; filter shapes are built by
 * their group and cached here, so each shape is prepared once per process.
 */
export class Store {
  readonly db: Database.Database;
  private readonly shapes = new Map<string, Database.Statement>();
  readonly members: Members;
  readonly mailings: Mailings;
  readonly sends: Sends;
  readonly log: SendLog;
  readonly triage: Triage;
  readonly plans: Plans;
  readonly apiKeys: ApiKeys;
  readonly erasure: Erasure;

  private constructor(db: Database.Database) {
    this.db = db;
    // A member field as a number for `--where beitrag<20`, by the same reading as the value
    // (12,50 too); NULL when it is none, so that the comparison selects nobody.
    db.function('mailer_number', { deterministic: true }, (value: unknown) => decimalNumber(value));
    // SQLite's lower() folds ASCII only: `--where region~süd` must find "SÜD" too.
    db.function('mailer_fold', { deterministic: true }, (value: unknown) => foldCase(value == null ? '' : String(value)));
    // Each group prepares its statements here: Store.open turns a failure into its schema error.
    this.members = new Members(this);
    this.mailings = new Mailings(this);
    this.sends = new Sends(this);
    this.log = new SendLog(this);
    this.triage = new Triage(this);
    this.plans = new Plans(this);
    this.apiKeys = new ApiKeys(this);
    this.erasure = new Erasure(this);
  }

  static open(file: string): Store {
    const dir = path.dirname(path.resolve(file));
    if (!fs.existsSync(dir)) {
      throw new MailerError(`database folder ${dir} does not exist`, {
        hint: 'create the folder, or point --db / MAILER_DB at another path',
      });
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
      throw new MailerError(`database ${file} is a folder`, { hint: 'point --db / MAILER_DB at a file (a new one is created)' });
    }
    noteDatabase(file);
    createPrivate(file);
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      refuseForeign(db, file);
      // Pages freed by deleting sends (forget, prune) are reused by the next sends, and can be
      // handed back to the file system by `PRAGMA incremental_vacuum` without a VACUUM. Only a
      // database without tables takes this; an older one gets it from `mailer migrate` (one
      // VACUUM). Its own block: other pragmas of the same kind belong next to it, not in it.
      if (!hasTables(db)) db.pragma('auto_vacuum = INCREMENTAL');
      enterWal(db);
      // NORMAL is durable across process crashes in WAL mode; only a power loss can drop the
      // last commits, and costs far less per send than FULL.
      db.pragma('synchronous = NORMAL');
      // Statement journals and sorts in memory: on disk they cost an import ~16 writes a row.
      db.pragma('temp_store = MEMORY');
      db.pragma('foreign_keys = ON');
      // --- erasure (data protection) ---------------------------------------------------------
      // Deleted values are overwritten with zeros, in b-tree pages and in pages put on the free
      // list, on every connection from the database's creation (migrations included): only
      // then does a page moved or freed earlier hold no copy of what forget and prune remove.
      // A database made before this was set gets one VACUUM (Store.scrub).
      db.pragma('secure_delete = ON');
      // ----------------------------------------------------------------------------------------
      migrate(db, file);
      tightenPrivate(file);
    } catch (err) {
      db?.close();
      if (err instanceof MailerError) throw err;
      if (isDatabaseBusy(err)) throw databaseBusy(`database ${file}`);
      throw storageProblem(err, file) ?? new MailerError(`cannot open database ${file}: ${(err as Error).message}`, {
        hint: 'is it a mailer database? Point --db / MAILER_DB at another path to start a new one',
      });
    }
    try {
      return new Store(db);
    } catch (err) {
      // Every statement is prepared here: a database whose tables differ from its version's
      // schema (made by a development build) is caught at once, with a way out.
      db.close();
      throw new MailerError(`database ${file} does not match this mailer's schema (version ${migrations.length}): ${(err as Error).message}`, {
        hint: 'it was made by a different build of mailer; point --db / MAILER_DB at a new file, or use that build',
      });
    }
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** All or nothing; inside an open transaction (a batched write) it simply runs, without a savepoint. */
  atomically(fn: () => void): void {
    if (this.db.inTransaction) fn();
    else this.db.transaction(fn)();
  }

  /** Runs `fn` in a write transaction taken at once, so two processes cannot both pass a check. */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * After an erasure has committed: no copy of the removed values may be left in the files. The
   * WAL still holds earlier frames of the pages (with the values, from before), so it is
   * checkpointed into the database, whose deleted cells and free pages secure_delete has
   * zeroed, and truncated to nothing. A reader in the middle of a read (serve answering a
   * request) holds frames back: the checkpoint is tried again until the busy timeout. A
   * database made before secure_delete was on is vacuumed once first (free pages of then).
   * Returns whether the WAL could be emptied, and how long the one VACUUM took (null: none).
   */
  scrub(): { walEmptied: boolean; vacuumMs: number | null } {
    let vacuumMs: number | null = null;
    const needed = this.db.prepare('SELECT scrub_needed FROM erasure_secret WHERE id = 1').pluck().get() as number | undefined;
    if (needed) {
      const started = Date.now();
      // The same copy gives an older file the page reuse a new one has from its creation.
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.exec('VACUUM');
      this.db.prepare('UPDATE erasure_secret SET scrub_needed = 0 WHERE id = 1').run();
      vacuumMs = Date.now() - started;
    }
    const until = Date.now() + BUSY_TIMEOUT_MS;
    for (;;) {
      const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      if (r.busy === 0) return { walEmptied: true, vacuumMs };
      if (Date.now() >= until) return { walEmptied: false, vacuumMs };
      Atomics.wait(pause, 0, 0, 20);
    }
  }

  /**
   * Runs `fn` with a page cache of `mb` MB: a bulk delete (prune) updates every index of sends
   * at scattered places, and with the default 2 MB reads the same pages again and again.
   */
  withCache<T>(mb: number, fn: () => T): T {
    const before = this.db.pragma('cache_size', { simple: true });
    this.db.pragma(`cache_size = ${-mb * 1024}`);
    try {
      return fn();
    } finally {
      this.db.pragma(`cache_size = ${before}`);
    }
  }

  /** How freed pages are handled: 'none' (reused only), 'incremental' (can be handed back), 'full'. */
  autoVacuum(): 'none' | 'full' | 'incremental' {
    return (['none', 'full', 'incremental'] as const)[this.db.pragma('auto_vacuum', { simple: true }) as number] ?? 'none';
  }

  /** The one VACUUM an older database needs to take auto_vacuum=INCREMENTAL (holds the file while it copies it). */
  vacuumIntoIncremental(): void {
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.exec('VACUUM');
  }


  /** A statement whose shape depends on a filter: prepared once per shape and process. */
  shape(sql: string): Database.Statement {
    let statement = this.shapes.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.shapes.set(sql, statement);
    }
    return statement;
  }

  /** A group's fixed statements, each prepared now. */
  prepareAll<Q extends Record<string, string>>(sql: Q): Statements<Q> {
    return Object.fromEntries(Object.entries(sql).map(([name, text]) => [name, this.db.prepare(text)])) as Statements<Q>;
  }
}

/**
 * A file mailer did not make is never migrated into: its schema version (user_version) is 0
 * while it already has tables. An empty file, or a new one, is ours to set up.
 */
function refuseForeign(db: Database.Database, file: string): void {
  if ((db.pragma('user_version', { simple: true }) as number) > 0) return;
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 4").all() as { name: string }[]).map((t) => t.name);
  if (tables.length) throw notMailerDatabase(file, `it has tables of another program (${tables.slice(0, 3).join(', ')}${tables.length > 3 ? ', …' : ''}) and no mailer schema version`);
}

function hasTables(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get() !== undefined;
}

function migrate(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > migrations.length) {
    throw new MailerError(
      `database ${file} has schema version ${version}, newer than this mailer knows (${migrations.length})`,
      { exitCode: ExitCode.badInput, hint: 'update mailer, or use another --db' },
    );
  }
  for (let v = version; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

