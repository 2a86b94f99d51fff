import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectDelimiter, detectEncoding, lastCharBoundary, parseDelimiter, parseEncoding } from '../../src/core/csv-dialect.js';

const bytes = (s: string, enc: BufferEncoding = 'utf8') => new Uint8Array(Buffer.from(s, enc));

test('delimiter: the one that splits the header line most, quotes respected', () => {
  const rows: [string, string][] = [
    ['id;name;email\n1;a;b', ';'],
    ['id,name,email\n1,a,b', ','],
    ['id\tname\temail\n', '\t'],
    ['"Name, Vorname";email;ort\n', ';'],
    ['"a;b;c",x,y\n', ','],
    ['email\n', ';'],
    ['"multi\nline";x;y\n', ';'],
  ];
  for (const [text, expected] of rows) assert.equal(detectDelimiter(text), expected, JSON.stringify(text));
});

test('encoding: UTF-8 when it decodes, else Windows-1252; BOM wins; a cut-off sequence at the sample end is forgiven', () => {
  assert.equal(detectEncoding(bytes('id;name\n1;Müller\n'), true), 'utf-8');
  assert.equal(detectEncoding(bytes('id;name\n1;Müller\n', 'latin1'), true), 'windows-1252');
  assert.equal(detectEncoding(bytes('plain ascii'), true), 'utf-8');
  assert.equal(detectEncoding(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), true), 'utf-8');
  const cut = bytes('abc ü').subarray(0, 5); // 'abc ' + first byte of ü
  assert.equal(detectEncoding(cut, false), 'utf-8');
  assert.equal(detectEncoding(cut, true), 'windows-1252', 'at the real end of the file it is not forgiven');
});

test('override values', () => {
  assert.equal(parseDelimiter('tab'), '\t');
  assert.equal(parseDelimiter('\\t'), '\t');
  assert.equal(parseDelimiter(';'), ';');
  assert.equal(parseDelimiter('|'), null);
  assert.equal(parseEncoding('UTF8'), 'utf-8');
  assert.equal(parseEncoding('cp1252'), 'windows-1252');
  assert.equal(parseEncoding('latin1'), 'windows-1252');
  assert.equal(parseEncoding('ebcdic'), null);
});

test('the last complete UTF-8 character: a sequence cut off at the end is left out', () => {
  const u = bytes('aü€');                           // 1 + 2 + 3 bytes
  assert.equal(lastCharBoundary(u), 6);
  assert.equal(lastCharBoundary(u.subarray(0, 5)), 3, 'cut inside €');
  assert.equal(lastCharBoundary(u.subarray(0, 2)), 1, 'cut inside ü');
  assert.equal(lastCharBoundary(bytes('abc')), 3);
  assert.equal(lastCharBoundary(new Uint8Array(0)), 0);
});
