import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { CSV_PROBLEMS, CsvLimitError, CsvScanner, MAX_RECORD_CHARS } from '../../src/members/csv-scan.js';

interface Scanned { records: [number, string[]][]; errors: [number, string][] }

/** Feeds `text` in chunks of the given sizes (cycled), as the import does with file chunks. */
function scan(text: string, delimiter = ';', chunkSizes: number[] = [text.length || 1]): Scanned {
  const out: Scanned = { records: [], errors: [] };
  const scanner = new CsvScanner(delimiter, (fields, line) => out.records.push([line, fields]), (line, reason) => out.errors.push([line, reason]));
  for (let at = 0, k = 0; at < text.length; k++) {
    const size = chunkSizes[k % chunkSizes.length];
    scanner.write(text.slice(at, at + size));
    at += size;
  }
  scanner.end();
  return out;
}

/** The same result whatever the chunking: every cut point, and 1- to 3-character chunks. */
function scanEveryWay(text: string, delimiter = ';'): Scanned {
  const whole = scan(text, delimiter);
  for (let cut = 1; cut < text.length; cut++) {
    assert.deepEqual(scan(text, delimiter, [cut, text.length]), whole, `cut at ${cut} of ${JSON.stringify(text)}`);
  }
  for (const sizes of [[1], [2], [3, 1]]) assert.deepEqual(scan(text, delimiter, sizes), whole, `chunks ${sizes} of ${JSON.stringify(text)}`);
  return whole;
}

test('plain lines, with LF, CRLF or old-Mac CR line breaks, a BOM, empty lines and no final break', () => {
  for (const br of ['\n', '\r\n', '\r']) {
    const text = `\uFEFFid;name${br}1;Anna${br}${br}2;Ben Müller${br}3;${br}4;last`;
    assert.deepEqual(scanEveryWay(text).records, [
      [1, ['id', 'name']], [2, ['1', 'Anna']], [4, ['2', 'Ben Müller']], [5, ['3', '']], [6, ['4', 'last']],
    ], JSON.stringify(br));
  }
});

test('quoted fields: delimiters, doubled quotes and line breaks inside; the line numbers go on counting', () => {
  const text = 'id;note;x\n1;"a;b";"say ""hi"""\n2;"two\nlines";"and\r\nthree\nlines"\n3;"";z\n';
  const { records, errors } = scanEveryWay(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(records, [
    [1, ['id', 'note', 'x']],
    [2, ['1', 'a;b', 'say "hi"']],
    [3, ['2', 'two\nlines', 'and\r\nthree\nlines']],
    [7, ['3', '', 'z']],
  ]);
  assert.deepEqual(scanEveryWay('a,"b"\r\n"c",d\r\n', ',').records, [[1, ['a', 'b']], [2, ['c', 'd']]]);
});

test('bad quoting is reported at the record\'s line, and reading goes on with the next line', () => {
  const text = 'id;name\n1;An"na\n2;"Ben"x\n3;Cem\n4;"Dora\n5;Eva\n6;"Fritz"\n7;Gül\n';
  const { records, errors } = scanEveryWay(text);
  assert.deepEqual(errors, [[2, CSV_PROBLEMS.opening], [3, CSV_PROBLEMS.closing], [5, CSV_PROBLEMS.unclosed]]);
  assert.deepEqual(records, [[1, ['id', 'name']], [4, ['3', 'Cem']], [6, ['5', 'Eva']], [7, ['6', 'Fritz']], [8, ['7', 'Gül']]],
    'a stray quote costs its own line only, even when a later quote seems to close it');
});

test('an unclosed quote in a long file gives up after MAX_RECORD_CHARS, not at the end of the file', () => {
  const lines = Array.from({ length: 200_000 }, (_, i) => `${i};Name ${i}`);
  lines[10] = '10;"never closed';
  const { records, errors } = scan(lines.join('\n') + '\n', ';', [64 * 1024]);
  assert.deepEqual(errors, [[11, CSV_PROBLEMS.tooLong]]);
  assert.match(CSV_PROBLEMS.tooLong, /not closed within 1 MB/);
  assert.equal(records.length, 200_000 - 1);
  assert.deepEqual(records.at(-1), [200_000, ['199999', 'Name 199999']]);
  assert.ok(lines.join('\n').length > 2 * MAX_RECORD_CHARS, 'the file is longer than the limit');
});

test('a line of more than MAX_RECORD_CHARS without a line break stops the read', () => {
  assert.throws(() => scan('id;x\n1;' + 'a'.repeat(MAX_RECORD_CHARS + 10), ';', [64 * 1024]),
    (err: unknown) => err instanceof CsvLimitError && err.line === 2 && /line 2 is longer than 1 MB/.test(err.message));
});

test('records longer than a chunk, unquoted or quoted, read the same in any chunk size', () => {
  const long = 'x'.repeat(300_000);
  const text = `id;note\n1;${long}\n2;"${long}\n${long}"\n3;"a""${long}";\n4;short\n5;"${long}\n`;
  const whole = scan(text);
  assert.deepEqual(whole.records.map(([line, f]) => [line, f.map((v) => v.length)]), [[1, [2, 4]], [2, [1, 300_000]], [3, [1, 600_001]], [5, [1, 300_002, 0]], [6, [1, 5]]]);
  assert.deepEqual(whole.errors, [[7, CSV_PROBLEMS.unclosed]]);
  for (const sizes of [[64 * 1024], [1000], [7, 65_536], [299_999, 3]]) assert.deepEqual(scan(text, ';', sizes), whole, `chunks ${sizes}`);
});

test('lineAfter: the line of a character not written yet, line breaks in quotes and CRLF counted as the records count them', () => {
  for (const br of ['\n', '\r\n', '\r']) {
    const records: number[] = [];
    const scanner = new CsvScanner(';', (_, line) => records.push(line), () => {});
    scanner.write(`id;note${br}1;"two${br}lines"${br}2;x${br}3;"open`);
    assert.deepEqual(records, [1, 2, 4], JSON.stringify(br));
    assert.equal(scanner.lineAfter(''), 5);
    assert.equal(scanner.lineAfter(`${br}still open${br}and `), 7, JSON.stringify(br));
  }
  assert.equal(new CsvScanner(';', () => {}, () => {}).lineAfter('a\nb\nc'), 3, 'before any text');
});

test('the same records as csv-parse on generated files with every kind of field', () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pieces = ['a', 'Müller', ' ', ';', ',', '"', '\n', '\r\n', 'x y', '€', ''];
  for (let file = 0; file < 200; file++) {
    const delimiter = file % 2 ? ';' : ',';
    const br = ['\n', '\r\n'][file % 2];
    const lines: string[] = [];
    const width = 1 + Math.floor(random() * 4);
    for (let r = 0; r < 1 + random() * 8; r++) {
      const fields = Array.from({ length: width }, () => {
        let v = '';
        for (let k = random() * 4; k > 0; k--) v += pieces[Math.floor(random() * pieces.length)];
        return /[;,"\r\n]/.test(v) || random() < 0.2 ? `"${v.replace(/"/g, '""')}"` : v;
      });
      if (fields.join(delimiter) !== '') lines.push(fields.join(delimiter));
    }
    const text = lines.join(br) + (random() < 0.5 ? br : '');
    const expected = (parse(text, { delimiter, skip_empty_lines: true, relax_column_count: true, record_delimiter: br }) as string[][]);
    const { records, errors } = scan(text, delimiter, [1 + Math.floor(random() * 7)]);
    assert.deepEqual(errors, [], JSON.stringify(text));
    assert.deepEqual(records.map(([, fields]) => fields), expected, JSON.stringify(text));
  }
});
