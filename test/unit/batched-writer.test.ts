import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BatchedWriter } from '../../src/send/batched-writer.js';
import { Store } from '../../src/store/store.js';
import Database from 'better-sqlite3';

test('a write that throws takes its whole batch back, and every caller of the batch gets the error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-batch-'));
  const store = Store.open(path.join(dir, 'mailer.db'));
  try {
    const writer = new BatchedWriter(store, 3);
    const add = (name: string) => () => store.members.addFieldNames([name]);
    const results = await Promise.allSettled([
      writer.submit(add('a')),
      writer.submit(() => { throw new Error('disk full'); }),
      writer.submit(add('b')),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /disk full/);
    assert.deepEqual(store.members.fieldNames(), [], 'nothing of the batch was committed');

    const ok = await Promise.all([writer.submit(add('c')), writer.submit(add('d')), writer.submit(() => 42)]);
    assert.equal(ok[2], 42);
    assert.deepEqual(store.members.fieldNames(), ['c', 'd']);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A store on a fresh database, with a second connection of the test's own to hold its write lock. */
function storeWithHolder(busyTimeoutMs: number): { store: Store; holder: Database.Database; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-batch-'));
  const store = Store.open(path.join(dir, 'mailer.db'));
  // Each try waits this long inside SQLite; the writer's own wait goes on between tries.
  store.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  return { store, holder: new Database(path.join(dir, 'mailer.db')), dir };
}

test('while another command holds the write lock, a batch waits for it without stopping the event loop, then commits', async () => {
  const { store, holder, dir } = storeWithHolder(100);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 50);
  try {
    const writer = new BatchedWriter(store, 2, 10_000);
    holder.exec('BEGIN IMMEDIATE');
    const written = Promise.all([writer.submit(() => store.members.addFieldNames(['a'])), writer.submit(() => 7)]);
    // A write that comes in while the batch waits goes with it.
    const late = writer.submit(() => store.members.addFieldNames(['b']));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Each try blocks for the 100 ms busy timeout, so about 7 to 13 ticks come through on a quiet
    // machine and fewer on a loaded one; a wait in one block lets none through at all.
    assert.ok(ticks >= 4, `the event loop ran while the batch waited (${ticks} ticks of 50 ms in 1 s)`);
    assert.deepEqual(store.members.fieldNames(), [], 'nothing written yet');
    holder.exec('ROLLBACK');
    assert.deepEqual((await written)[1], 7);
    await late;
    assert.deepEqual(store.members.fieldNames().sort(), ['a', 'b']);
  } finally {
    clearInterval(ticker);
    holder.close();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a write lock held past the wait fails the batch with the busy error, and nothing of it is written', async () => {
  const { store, holder, dir } = storeWithHolder(50);
  try {
    const writer = new BatchedWriter(store, 1, 400);
    holder.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    await assert.rejects(writer.submit(() => store.members.addFieldNames(['a'])), (err: { code?: string }) => err.code === 'SQLITE_BUSY');
    assert.ok(Date.now() - started >= 400, 'it waited first');
    holder.exec('ROLLBACK');
    assert.deepEqual(store.members.fieldNames(), []);
    assert.equal(await writer.submit(() => 1), 1, 'the writer works again once the lock is free');
  } finally {
    holder.close();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
