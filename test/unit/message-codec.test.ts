import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { DEFLATE, DEFLATE_WITH_DICTIONARY, isPlain, packMessage, unpackMessage } from '../../src/store/message-codec.js';
import { Packer } from '../../src/send/packer.js';

const DICTIONARY = Buffer.from('Subject: Neues aus der Region region\r\nFrom: Verein <v@verein.example>\r\n\r\nHallo Erika Mustermann,\r\ndas war los.\r\n');
const message = (i: number) => Buffer.from(`Subject: Neues aus der Region Nord\r\nFrom: Verein <v@verein.example>\r\nMessage-ID: <${i}.${crypto.randomBytes(6).toString('hex')}@verein.example>\r\n\r\nHallo Zoë ${i},\r\ndas war los.\r\n`);

test('a stored message reads back byte for byte, with or without its mailing\'s dictionary; a plain row is read as it is', () => {
  for (let i = 0; i < 50; i++) {
    const raw = i % 10 === 0 ? crypto.randomBytes(3000) : message(i);
    const withDict = packMessage(raw, DICTIONARY);
    assert.equal(withDict[0], DEFLATE_WITH_DICTIONARY);
    assert.deepEqual(unpackMessage(withDict, () => DICTIONARY), raw);
    const without = packMessage(raw, null);
    assert.equal(without[0], DEFLATE);
    assert.deepEqual(unpackMessage(without, () => { throw new Error('no dictionary needed'); }), raw);
  }
  const plain = message(7);
  assert.ok(isPlain(plain));
  assert.equal(unpackMessage(plain, () => null), plain);
  assert.ok(packMessage(message(1), DICTIONARY).length < packMessage(message(1), null).length, 'the dictionary helps');
  assert.throws(() => unpackMessage(packMessage(message(1), DICTIONARY), () => null), /the mailing has none/);
  assert.throws(() => unpackMessage(Buffer.from([0x05, 1, 2]), () => null), /unknown format/);
});

test('the send run\'s packing thread gives the store\'s own bytes, and nothing once closed', async () => {
  const packer = new Packer();
  packer.dictionary(1, DICTIONARY);
  packer.dictionary(2, null);
  const raws = Array.from({ length: 40 }, (_, i) => message(i));
  const packed = await Promise.all(raws.map((raw, i) => packer.pack(i % 2 ? 1 : 2, raw)));
  packed.forEach((p, i) => {
    assert.ok(p, `message ${i} packed`);
    assert.equal(p[0], i % 2 ? DEFLATE_WITH_DICTIONARY : DEFLATE);
    assert.deepEqual(unpackMessage(p, () => DICTIONARY), raws[i]);
  });
  packer.close();
  assert.equal(await packer.pack(1, raws[0]), null, 'closed: the store compresses it itself');
});

test('messages of more mailings than the kept streams, in turn: each reads back, streams given up and made again', () => {
  const dictionaries = Array.from({ length: 7 }, (_, k) => Buffer.from(`Subject: Mailing ${k}\r\nFrom: Verein <v@verein.example>\r\n\r\nHallo Erika Mustermann, Ausgabe ${k}.\r\n`));
  for (let i = 0; i < 300; i++) {
    const k = (i * 5) % dictionaries.length;
    const raw = message(i);
    const packed = packMessage(raw, dictionaries[k]);
    assert.equal(packed[0], DEFLATE_WITH_DICTIONARY, `message ${i}`);
    assert.deepEqual(unpackMessage(packed, () => dictionaries[k]), raw, `message ${i}, mailing ${k}`);
    // and one damaged row between: it is refused, and the next still reads
    if (i % 50 === 7) assert.throws(() => unpackMessage(Buffer.concat([packed.subarray(0, 6)]), () => dictionaries[k]));
  }
});

test('bytes that cannot be kept as they are still read back (no message mailer composes starts below 0x20)', () => {
  const raw = Buffer.concat([Buffer.from([0x01, 0x02]), message(3)]);
  const packed = packMessage(raw, DICTIONARY);
  assert.ok(!isPlain(raw));
  assert.deepEqual(unpackMessage(packed, () => DICTIONARY), raw);
});
