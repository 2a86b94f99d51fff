import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BatchedWriter } from '../../src/core/queue.js';
import { Store } from '../../src/store/store.js';

test('a write that throws takes its whole batch back, and every caller of the batch gets the error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-batch-'));
  const store = Store.open(path.join(dir, 'mailer.db'));
  try {
    const writer = new BatchedWriter(store, 3, 1000);
    const add = (name: string) => () => store.addFieldNames([name]);
    const results = await Promise.allSettled([
      writer.submit(add('a')),
      writer.submit(() => { throw new Error('disk full'); }),
      writer.submit(add('b')),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /disk full/);
    assert.deepEqual(store.fieldNames(), [], 'nothing of the batch was committed');

    const ok = await Promise.all([writer.submit(add('c')), writer.submit(add('d')), writer.submit(() => 42)]);
    assert.equal(ok[2], 42);
    assert.deepEqual(store.fieldNames(), ['c', 'd']);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
