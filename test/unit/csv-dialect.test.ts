import { test } from 'node:test';
import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import {
  delimiterProblem, detectDelimiter, detectEncoding, firstInvalidUtf8, lastCharBoundary, notCsv, parseDelimiter, parseEncoding, utf8TextAt,
} from '../../src/members/csv-dialect.js';

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
  assert.equal(parseDelimiter('TAB'), '\t');
  assert.equal(parseDelimiter('\t'), '\t');
  assert.equal(parseDelimiter(';'), ';');
  assert.equal(parseEncoding('UTF8'), 'utf-8');
  assert.equal(parseEncoding('utf-16le'), 'utf-16le');
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

test('--delimiter: any one character; more than one, none, a quote or a line break is refused with the reason', () => {
  for (const d of ['|', ':', ' ', '§', '^', 'x', '~']) {
    assert.equal(parseDelimiter(d), d);
    assert.equal(delimiterProblem(d), null);
  }
  for (const [value, why] of [['||', /2 characters/], ['tab,', /4 characters/], ['', /empty/], ['"', /quote/], ['\n', /line break/], ['😀', /cannot split/]] as const) {
    assert.equal(parseDelimiter(value), null, value);
    assert.match(delimiterProblem(value) ?? '', why, value);
  }
});

test('UTF-16: by its byte-order mark, or by the zero byte in every second place', () => {
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id\tname\n1\tJürgen\n', 'utf16le')]);
  assert.equal(detectEncoding(le, true), 'utf-16le');
  assert.equal(detectEncoding(Buffer.from(le).swap16(), true), 'utf-16be');
  assert.equal(detectEncoding(Buffer.from('id;name;email\n1;Anna;a@example.org\n', 'utf16le'), true), 'utf-16le', 'no BOM');
  assert.equal(notCsv(le), null, 'UTF-16 is text');
});

test('not CSV at all: an Excel file renamed, an OpenDocument one, a binary file', () => {
  const zip = (name: string) => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0]), Buffer.alloc(22), Buffer.from(name), Buffer.alloc(200)]);
  assert.match(notCsv(zip('[Content_Types].xml')) ?? '', /^this is an Excel file \(\.xlsx\): save it as CSV \(UTF-8 or Windows\)$/);
  assert.match(notCsv(zip('xl/workbook.xml')) ?? '', /Excel file/);
  assert.match(notCsv(zip('mimetypeapplication/vnd.oasis.opendocument.spreadsheet')) ?? '', /OpenDocument spreadsheet/);
  assert.match(notCsv(zip('photo.jpg')) ?? '', /ZIP archive/);
  assert.match(notCsv(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0])) ?? '', /Excel file \(\.xls\)/);
  assert.match(notCsv(Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(4000)])) ?? '', /not a text file/);
  assert.equal(notCsv(bytes('id;name\n1;Al\0ice\n')), null, 'a stray NUL is a control character to strip, not binary');
  assert.equal(notCsv(bytes('id;name\n1;Müller\n', 'latin1')), null);
});

test('UTF-8 text in bytes read as Windows-1252, and the first byte that is not UTF-8', () => {
  const mixed = Buffer.concat([Buffer.from('1;M\xfcller\n', 'latin1'), Buffer.from('2;Jürgen\n')]);
  assert.equal(firstInvalidUtf8(mixed), 3);
  assert.equal(utf8TextAt(mixed), 12);
  assert.equal(utf8TextAt(iconv.encode('1;Müller;Straße;€ 5;„Zitat“;Ärger;café;Grüße…\n', 'win1252')), -1, 'Windows-1252 umlauts alone are not UTF-8');
  assert.equal(utf8TextAt(Buffer.from('x \u2013 y')), 2, 'a dash in UTF-8');
  assert.equal(utf8TextAt(Buffer.from('Łukasz Müller €')), 0, 'the first of several');
  assert.equal(utf8TextAt(Buffer.concat([iconv.encode('Ärger Ä', 'win1252'), Buffer.from('ñ')])), 7);
  assert.equal(utf8TextAt(Buffer.from([0x41, 0xc3])), -1, 'cut off at the end');
  assert.equal(firstInvalidUtf8(Buffer.from('aü€😀')), -1);
  assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0xaf])), 1, 'overlong');
  assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0xed, 0xa0, 0x80])), 1, 'a surrogate');
});
