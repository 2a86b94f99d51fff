import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BATCH_CHARS, parseMemberFile, ROW_WIDTH, type ParseJob, type WorkerMessage } from '../../src/members/csv-rows.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-csv-rows-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

async function parse(name: string, content: string | Buffer, job: Partial<ParseJob> = {}): Promise<WorkerMessage[]> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  const messages: WorkerMessage[] = [];
  await parseMemberFile({ file, encoding: 'utf-8', encodingGiven: false, delimiter: ';', ...job }, {
    post: (m) => messages.push(m),
    drain: () => Promise.resolve(),
  });
  return messages;
}

test('batches are bounded by characters, not only by rows: wide rows come in small batches', async () => {
  const columns = 500;
  const header = ['id', 'email', ...Array.from({ length: columns - 2 }, (_, c) => `c${c}`)].join(';');
  const lines = Array.from({ length: 600 }, (_, r) => [r, `m${r}@example.org`, ...Array.from({ length: columns - 2 }, (_, c) => `value ${r}.${c}`)].join(';'));
  const batches = (await parse('wide.csv', `${header}\n${lines.join('\n')}\n`)).filter((m) => m.kind === 'rows');
  assert.equal(batches.reduce((n, b) => n + b.rows.length / ROW_WIDTH, 0), 600);
  assert.ok(batches.length > 5, `${batches.length} batches`);
  for (const b of batches) {
    const chars = b.rows.reduce((n, v) => n + (v?.length ?? 0), 0);
    assert.ok(chars < BATCH_CHARS + 20_000, `a batch of ${chars} characters`);
    assert.ok(Math.abs(chars - b.chars) < (b.rows.length / ROW_WIDTH) * 16, 'the batch says its size');
  }
});

test('DEL and C1 controls, which JSON does not escape, are removed from every field', async () => {
  const messages = await parse('del.csv', 'id;name;email;note\n1;Anna;anna@example.org;a\x7fb\n2;Ben;ben@example.org;c\u0085d\n3;Cem\u009b;cem@example.org;fine\n');
  const rows = messages.flatMap((m) => (m.kind === 'rows' ? m.rows : []));
  assert.deepEqual(rows.filter((_, i) => i % ROW_WIDTH === 2), ['Anna', 'Ben', 'Cem']);
  assert.deepEqual(rows.filter((_, i) => i % ROW_WIDTH === 3).map((f) => JSON.parse(f!).note), ['ab', 'cd', 'fine']);
  const done = messages.find((m) => m.kind === 'done');
  const warnings = messages.flatMap((m) => (m.kind === 'rows' || m.kind === 'done' ? m.counts.warnings : []));
  assert.ok(done);
  assert.deepEqual(warnings.map((w) => w.line), [2, 3, 4]);
  assert.match(warnings[0].reason, /"note" \(control character U\+007F removed\)/);
});
