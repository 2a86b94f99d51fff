import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { KeptZlib, deflateRaw, inflateRaw, keptStreamsWork } from '../../src/store/zlib-reuse.js';

const DICTIONARY = Buffer.from('Subject: Neues aus der Region region\r\nFrom: Verein <v@verein.example>\r\n\r\nHallo Erika Mustermann,\r\n');

test('node\'s zlib streams have the shape the kept streams use (else every message would take the slower public calls)', () => {
  assert.equal(keptStreamsWork(), true);
});

test('what a kept stream deflates, the public inflate reads back, message after message, whatever the size', () => {
  const rows: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['a line', Buffer.from('Hallo Zoë,\r\n')],
    ['a newsletter', Buffer.from(`Subject: Neues aus der Region Nord\r\n\r\n${'Hallo Anna, das war los. '.repeat(60)}`)],
    ['incompressible, more than an output buffer', crypto.randomBytes(150_000)],
    ['compressible, inflates to more than an output buffer', Buffer.alloc(500_000, 'Sommerfest am 12. Juli ')],
  ];
  for (const dictionary of [DICTIONARY, null]) {
    const options = dictionary ? { level: 6, dictionary } : { level: 6 };
    const deflate = deflateRaw(options);
    const inflate = inflateRaw(dictionary ? { dictionary } : {});
    // twice through: the second time on streams that every message before has used
    for (const [name, input] of [...rows, ...rows]) {
      const packed = deflate.run(input);
      const label = `${name} (${dictionary ? 'with' : 'without'} dictionary)`;
      assert.deepEqual(zlib.inflateRawSync(packed, dictionary ? { dictionary } : {}), input, label);
      assert.deepEqual(inflate.run(packed), input, label);
      // as small as the public call's, give or take zlib's choice between equal matches
      assert.ok(packed.length <= zlib.deflateRawSync(input, options).length + 8, label);
    }
    deflate.close();
    inflate.close();
  }
});

test('damaged input throws as inflateRawSync does, and the next message is read again', () => {
  const inflate = inflateRaw({ dictionary: DICTIONARY });
  const good = zlib.deflateRawSync(Buffer.from('Hallo Erika Mustermann, hallo Zoë'), { dictionary: DICTIONARY });
  const rows: [string, Buffer][] = [
    ['cut short', good.subarray(0, good.length - 3)],
    ['not deflate', Buffer.from([0xff, 0xff, 0xff, 0xff])],
  ];
  for (const [name, bad] of rows) {
    let expected: Error | undefined;
    try { zlib.inflateRawSync(bad, { dictionary: DICTIONARY }); } catch (err) { expected = err as Error; }
    assert.ok(expected, `${name}: the public call refuses it`);
    assert.throws(() => inflate.run(bad), { message: expected.message }, name);
    assert.equal(inflate.run(good).toString(), 'Hallo Erika Mustermann, hallo Zoë', `${name}: read again after it`);
  }
  inflate.close();
});

test('a stream without the private members it uses: the public call, same bytes', () => {
  const input = Buffer.from('Hallo Zoë, das war los in der Region Nord.');
  let made = 0;
  const shapeless = new KeptZlib(() => {
    made++;
    return { destroyed: false, on: () => undefined, close: () => undefined };
  }, (b) => zlib.deflateRawSync(b));
  for (let i = 0; i < 3; i++) assert.deepEqual(shapeless.run(input), zlib.deflateRawSync(input));
  assert.equal(made, 3, 'each try gives the stream up');
});
