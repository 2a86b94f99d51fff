import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvLine } from '../../src/ui/csv.js';

test('csvLine: a cell a spreadsheet would run as a formula gets a leading quote', () => {
  const rows: [unknown, string][] = [
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-5', "'-5"],
    [-5, "'-5"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', `"'\t=1"`],
    ['\r=1', `"'\r=1"`],
    ["=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"],
    ['=HYPERLINK("http://evil.example","click")', `"'=HYPERLINK(""http://evil.example"",""click"")"`],
    ['250 ok;=1+1', '"250 ok;=1+1"'],
    ['a=b', 'a=b'],
    ['anna@example.org', 'anna@example.org'],
    [5, '5'],
    [false, 'false'],
    [null, ''],
    ['', ''],
  ];
  for (const [value, cell] of rows) assert.equal(csvLine([value]), `${cell}\r\n`, JSON.stringify(value));
  assert.equal(csvLine(['a', '=b', 'c,d']), `a,'=b,"c,d"\r\n`);
});
