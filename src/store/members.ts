import fs from 'node:fs';
import { databaseBusy, isDatabaseBusy } from '../errors.js';
import type { AddressRecord, FieldCondition, Member, MemberSelection } from '../domain/types.js';
import type { Statements, Store } from './store.js';
import { MAILING_TOPIC, SKIP_CATEGORY, SKIP_JOINS, SKIP_REASON, selectionWhere, type Row } from './queries.js';

const UPSERT_BATCH = 100;
/**
 * A first import flushes the pages it has written every this many statements (100,000 members,
 * ~20 MB). 1M members: 1.66-1.70 s without, 1.58-1.61 s with; every 500 or 2,000 the same.
 */
const FLUSH_EVERY_BATCHES = 1000;

/** The file's address for this member is one that was revoked for them. */
const REVOKED = `EXISTS (SELECT 1 FROM addresses a WHERE a.member_id = members.id AND a.email = excluded.email AND a.revoked_at IS NOT NULL)`;

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  /* The import's upsert. Fields are merged (a file with fewer columns does not wipe the
     others); an unchanged row is not written. Address history follows by trigger. The import
     runs it for 100 rows at a time (memberWriter repeats the VALUES tuple): positional, batched
     parameters take a third off the per-row cost, and the import id and time, the same for
     every row, are bound once per statement. Values: key, email, name, fields, email_problem.
     An address the member's file still carries but that was revoked (re-target) does not come
     back: the member keeps the address they gave later. */
  upsertMember: `
    INSERT INTO members (key, email, name, fields, email_problem, import_id, email_since, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, @importId, @now, @now, @now)
    ON CONFLICT (key) DO UPDATE SET
      email_since = CASE WHEN members.email IS excluded.email OR ${REVOKED} THEN members.email_since ELSE excluded.updated_at END,
      email_problem = CASE WHEN ${REVOKED} THEN members.email_problem ELSE excluded.email_problem END,
      email = CASE WHEN ${REVOKED} THEN members.email ELSE excluded.email END,
      name = excluded.name,
      fields = json_patch(members.fields, excluded.fields),
      updated_at = excluded.updated_at
    WHERE (members.email IS NOT excluded.email AND NOT ${REVOKED})
       OR members.name IS NOT excluded.name
       OR json_patch(members.fields, excluded.fields) IS NOT members.fields`,
  addFieldName: `INSERT OR IGNORE INTO member_fields (name) VALUES (?)`,
  /* An index as the schema defines it: a first import drops the e-mail index and builds it
     again from this at the end (beginMemberLoad). */
  indexDefinition: `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`,
  fieldNames: `SELECT name FROM member_fields ORDER BY name`,
  memberById: `SELECT * FROM members WHERE id = ?`,
  memberByKey: `SELECT * FROM members WHERE key = ?`,
  membersByEmail: `SELECT * FROM members WHERE email = ? ORDER BY id`,
  /* a member found by an address they had before */
  membersByPastEmail: `
    SELECT m.* FROM addresses a JOIN members m ON m.id = a.member_id
    WHERE a.email = ? GROUP BY m.id ORDER BY m.id`,
  /* the addresses before, oldest first, then the current one */
  addressHistory: `
    SELECT email, added_at, replaced_at, revoked_at, revoke_reason FROM (
      SELECT id AS n, email, added_at, replaced_at, revoked_at, revoke_reason FROM addresses WHERE member_id = @id
      UNION ALL
      SELECT 9e18, email, coalesce(email_since, created_at), NULL, NULL, NULL FROM members WHERE id = @id AND email IS NOT NULL
    ) ORDER BY n`,
  memberCount: `SELECT count(*) AS n FROM members`,
  /* Whether a member can be mailed at their address now, by the queue's rule (retry's leave-outs). */
  memberSkip: `
    SELECT ${SKIP_CATEGORY} AS skip_category, ${SKIP_REASON} AS skip_reason
    FROM mailings g, members m ${SKIP_JOINS} WHERE m.id = @member AND g.id = @mailing`,
  saveSegment: `
    INSERT INTO segments (name, conditions, created_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET conditions = excluded.conditions, created_at = excluded.created_at`,
  segmentByName: `SELECT name, conditions, created_at FROM segments WHERE name = ?`,
  segments: `SELECT name, conditions, created_at FROM segments ORDER BY name`,
  /* Whose fields a system mail to this address sees: an imported member's before a row made
     for an earlier system mail, and of several, the first. */
  recipientByEmail: `SELECT * FROM members WHERE email = ? ORDER BY listed DESC, id LIMIT 1`,
  /* An address no member has: a row of its own, keyed by the address, that no selection takes. */
  insertUnlisted: `
    INSERT INTO members (key, email, fields, listed, email_since, created_at, updated_at)
    VALUES (@key, @email, '{}', 0, @now, @now, @now)
    ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING *`,
} as const;

/** Members and what comes with them: imports, field names, address history, segments, selections. */
export class Members {
  private readonly stmt: Statements<typeof SQL>;
  /** during an import: the connection's settings it changed, and the index it dropped */
  private memberLoad: { settings: Record<string, unknown>; droppedIndex: string | null } | null = null;
  /** during a first import: the journal was switched from WAL to a rollback journal */
  private leftWal = false;
  /** during a first import: the database file's pages written so far are flushed to disk meanwhile */
  private flushAhead: { fd: number; busy: boolean; closeWhenDone: boolean; batches: number } | null = null;

  constructor(private readonly store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  /**
   * Upserts members in groups of UPSERT_BATCH rows per statement. Returns how many rows were
   * written (inserted or changed); the caller tells inserts from updates by the member count.
   */
  memberWriter(importId: number, now: number): { add(key: string, email: string | null, name: string | null, fields: string, emailProblem: string | null): void; finish(): number } {
    const single = this.stmt.upsertMember;
    const tuple = /VALUES (\([^)]*\))/.exec(SQL.upsertMember)![1];
    const batched = this.store.shape(SQL.upsertMember.replace(tuple, Array(UPSERT_BATCH).fill(tuple).join(', ')));
    const params: unknown[] = [];
    const shared = { importId, now };
    let written = 0;
    const members = this;
    return {
      add(key, email, name, fields, emailProblem) {
        params.push(key, email, name, fields, emailProblem);
        if (params.length === UPSERT_BATCH * 5) {
          written += batched.run(params, shared).changes;
          members.flushWrittenPages();
          params.length = 0;
        }
      },
      finish() {
        for (let i = 0; i < params.length; i += 5) written += single.run(params.slice(i, i + 5), shared).changes;
        params.length = 0;
        return written;
      },
    };
  }

  /**
   * Opens an import's transaction. A first import (no members yet) writes the database file
   * directly, under a rollback journal, instead of through the WAL: the WAL would hold every
   * page a second time and copy it into the database at commit (0.45 s of 2.1 s for 1M rows).
   * Other commands wait for it meanwhile, readers too (up to the busy timeout): with no members
   * there is no mail to send or look up yet. The switch needs the database to itself, so with
   * another connection open (`serve`, a second terminal) the import keeps the WAL. Until the
   * journal is back to WAL, commits are synced in full: in rollback mode, NORMAL could leave a
   * database damaged by a power cut, not only short of its last commit.
   */
  beginImport(): void {
    if (this.memberCount() === 0) {
      try {
        this.leftWal = this.store.db.pragma('journal_mode = DELETE', { simple: true }) === 'delete';
      } catch (err) {
        // SQLite answers this at once, without the busy timeout.
        if (!isDatabaseBusy(err)) throw err;
      }
      if (this.leftWal) {
        this.store.db.pragma('synchronous = FULL');
        this.flushAhead = { fd: fs.openSync(this.store.db.name, 'r'), busy: false, closeWhenDone: false, batches: 0 };
      }
    }
    try {
      this.store.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (isDatabaseBusy(err)) throw databaseBusy(`database ${this.store.db.name}`);
      throw err;
    }
  }

  commitImport(): void {
    this.store.db.exec('COMMIT');
  }

  /**
   * Under a rollback journal the commit's sync writes the whole new database to disk: 130 ms of
   * 1.7 s for 1M members, with nothing else going on. So the pages SQLite has handed to the
   * system so far are flushed meanwhile, one fdatasync at a time in a helper thread, while the
   * import goes on; the commit then syncs what came since. It is only an early write of what the
   * system would write anyway: SQLite's order of journal and database syncs is untouched. Best
   * effort: where a system refuses it (a read-only descriptor on some), nothing changes.
   */
  private flushWrittenPages(): void {
    const ahead = this.flushAhead;
    if (!ahead || ahead.busy || ++ahead.batches % FLUSH_EVERY_BATCHES !== 0) return;
    ahead.busy = true;
    fs.fdatasync(ahead.fd, () => {
      ahead.busy = false;
      if (ahead.closeWhenDone) fs.close(ahead.fd, () => {});
    });
  }

  /** After commit or failure: rolls back what is still open, and puts settings and journal back. */
  endImport(): void {
    if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
    if (this.memberLoad) {
      for (const [name, value] of Object.entries(this.memberLoad.settings)) this.store.db.pragma(`${name} = ${value}`);
      this.memberLoad = null;
    }
    if (this.flushAhead) {
      // A flush still running closes the file itself when it is done.
      if (this.flushAhead.busy) this.flushAhead.closeWhenDone = true;
      else fs.close(this.flushAhead.fd, () => {});
      this.flushAhead = null;
    }
    if (this.leftWal) {
      this.leftWal = false;
      // Best effort: should the switch fail (a reader holding on past the busy timeout, a full
      // disk), the database stays in rollback mode until the next command opens it (Store.open
      // sets WAL). The import is committed or rolled back by now, and its outcome, or its own
      // error, is what the user must be told.
      try {
        this.store.db.pragma('journal_mode = WAL');
        this.store.db.pragma('synchronous = NORMAL');
      } catch {
        // as above
      }
    }
  }

  /**
   * Sets the connection up for an import's writes, inside its transaction. Into an empty table
   * (a first import) the e-mail index is left out while the rows go in and built once at the end
   * from sorted addresses: half the cost of updating it row by row in the random order the
   * addresses arrive in. A crash in between rolls back to the index as it was.
   * The page cache is made small: rows go in by key, so a larger cache does not make the upsert
   * faster (1M rows into 1M: 3.5 s with 2 MB, 16 MB or 64 MB), but the index sort is twice as
   * fast in 2 MB as in the default 16 MB (0.3 s against 0.75 s), and peak RSS 30 MB lower.
   */
  beginMemberLoad(): { membersBefore: number } {
    const membersBefore = this.memberCount();
    const settings = {
      cache_size: this.store.db.pragma('cache_size', { simple: true }),
      temp_store: this.store.db.pragma('temp_store', { simple: true }),
      threads: this.store.db.pragma('threads', { simple: true }),
    };
    this.store.db.pragma('cache_size = -2000');
    // Dropped as the schema defines it, so it comes back the same whatever a migration made it.
    const droppedIndex = membersBefore === 0 ? ((this.stmt.indexDefinition.get('members_email') as Row | undefined)?.sql ?? null) : null;
    if (droppedIndex) this.store.db.exec('DROP INDEX members_email');
    this.memberLoad = { settings, droppedIndex };
    return { membersBefore };
  }

  /** After the last row, still inside the transaction: a bulk load builds the e-mail index. */
  completeMemberLoad(): void {
    const sql = this.memberLoad?.droppedIndex;
    if (!sql) return;
    // The sort spills to a temporary file, not to memory, and may use a helper thread (the
    // import's parse thread is done by now): 0.3 s for 1M rows at no extra RSS, against 1.3 s
    // and 70 MB more with temp_store = MEMORY and no helper.
    this.store.db.pragma('temp_store = FILE');
    this.store.db.pragma('threads = 2');
    this.store.db.exec(sql);
  }

  addFieldNames(names: string[]): void {
    for (const name of names) this.stmt.addFieldName.run(name);
  }

  fieldNames(): string[] {
    return (this.stmt.fieldNames.all() as Row[]).map((r) => r.name);
  }

  memberCount(): number {
    return (this.stmt.memberCount.get() as Row).n;
  }

  /** Why the member cannot be mailed a mail of this mailing at their address now, by the rule of the queue; null when they can. */
  memberSkip(memberId: number, mailingId: number): { category: string; reason: string } | null {
    const r = this.stmt.memberSkip.get({ member: memberId, mailing: mailingId }) as Row | undefined;
    return r && r.skip_category !== null ? { category: r.skip_category, reason: r.skip_reason } : null;
  }

  memberById(id: number): Member | undefined {
    return toMember(this.stmt.memberById.get(id) as Row | undefined);
  }

  /** A member by key, current address, or an address they had before, in that order. */
  findMembers(idOrEmail: string): Member[] {
    const byKey = this.stmt.memberByKey.get(idOrEmail) as Row | undefined;
    if (byKey) return [toMember(byKey)!];
    const lower = idOrEmail.toLowerCase();
    let rows = this.stmt.membersByEmail.all(lower) as Row[];
    if (rows.length === 0) rows = this.stmt.membersByPastEmail.all(lower) as Row[];
    return rows.map((r) => toMember(r)!);
  }

  /** The member a system mail to `email` is for; undefined when no member has that address. */
  recipient(email: string): Member | undefined {
    return toMember(this.stmt.recipientByEmail.get(email) as Row | undefined);
  }

  /** The member a system mail to `email` goes to, made (not from the list) if none has it. */
  recipientOrUnlisted(email: string, now: number): Member {
    const known = this.recipient(email);
    if (known) return known;
    this.store.erasure.restoreIfErased(email);
    return toMember(this.stmt.insertUnlisted.get({ key: unlistedKey(email), email, now }) as Row)!;
  }

  addressHistory(memberId: number): AddressRecord[] {
    return (this.stmt.addressHistory.all({ id: memberId }) as Row[]).map((r) => ({
      email: r.email, addedAt: r.added_at, replacedAt: r.replaced_at,
      revokedAt: r.revoked_at, revokeReason: r.revoke_reason,
    }));
  }

  saveSegment(name: string, conditions: FieldCondition[], now: number): void {
    this.stmt.saveSegment.run(name, JSON.stringify(conditions), now);
  }

  segment(name: string): FieldCondition[] | undefined {
    const row = this.stmt.segmentByName.get(name) as Row | undefined;
    return row ? JSON.parse(row.conditions) : undefined;
  }

  segments(): { name: string; conditions: FieldCondition[]; createdAt: number }[] {
    return (this.stmt.segments.all() as Row[]).map((r) => ({
      name: r.name, conditions: JSON.parse(r.conditions), createdAt: r.created_at,
    }));
  }

  /**
   * The selected members, for a dry run, in the order a send would take them, each with the
   * reason a send of this topic would skip them at their address (null when it would not).
   */
  *selectedMembers(selection: MemberSelection, topic: { topic: string; required: boolean }, limit?: number): Generator<Member & { skip: { category: string; reason: string } | null }> {
    const { where, params } = selectionWhere(selection);
    const sql = `
      SELECT m.*, ${SKIP_CATEGORY} AS skip_category, ${SKIP_REASON} AS skip_reason
      FROM ${MAILING_TOPIC}, members m ${SKIP_JOINS}
      WHERE ${where} ORDER BY m.id ${limit !== undefined ? `LIMIT ${Math.floor(limit)}` : ''}`;
    for (const row of this.store.shape(sql).iterate(topic.topic, topic.required ? 1 : 0, ...params) as Iterable<Row>) {
      yield { ...toMember(row)!, skip: row.skip_category === null ? null : { category: row.skip_category, reason: row.skip_reason } };
    }
  }
}

/** The key of a member row made for a system mail: an import's keys are ids or addresses, never this. */
export function unlistedKey(email: string): string {
  return `system:${email}`;
}

export function toMember(r: Row | undefined): Member | undefined {
  if (!r) return undefined;
  return {
    id: r.id, key: r.key, email: r.email, name: r.name, fields: JSON.parse(r.fields),
    emailProblem: r.email_problem,
  };
}
