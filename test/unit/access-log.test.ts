import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { clientAddress, loggedPath } from '../../src/http/access-log.js';

const request = (peer: string, forwarded?: string) => ({ socket: { remoteAddress: peer }, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } }) as unknown as IncomingMessage;

test('the client: X-Forwarded-For is believed from a loopback peer only, and only its last entry (the one the proxy added)', () => {
  const rows: [string, string | undefined, string][] = [
    ['127.0.0.1', undefined, '127.0.0.1'],
    ['127.0.0.1', '203.0.113.7', '203.0.113.7'],
    ['::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7'],
    ['::1', '2001:db8::1', '2001:db8::1'],
    ['127.0.0.1', '10.0.0.1, 203.0.113.7', '203.0.113.7'],
    ['127.0.0.1', '203.0.113.7, not-an-address', '127.0.0.1'],
    ['127.0.0.1', '', '127.0.0.1'],
    ['198.51.100.5', '203.0.113.7', '198.51.100.5'],
    ['::ffff:198.51.100.5', '127.0.0.1', '::ffff:198.51.100.5'],
  ];
  for (const [peer, forwarded, expected] of rows) assert.equal(clientAddress(request(peer, forwarded)), expected, `${peer} / ${forwarded}`);
});

test('the logged path: link values cut to 6 characters, the query left out, everything but printable ASCII as %XX, at most 200 characters', () => {
  const rows: [string, string][] = [
    ['/health', '/health'],
    ['/u/1k-AbCdEfGhIjKlMnOpQrStUv', '/u/1k-AbC…'],
    ['/o/1k-AbCdEfGhIjKlMnOpQrStUv.gif', '/o/1k-AbC….gif'],
    ['/u/shorter', '/u/shorte…'],
    ['/u/abc', '/u/abc'],
    ['/register/8kr_3dWKcaZ6MZbplOGkLo1A', '/register/8kr_3d…'],
    ['/u/1k-AbCdEfGhIjKlMnOpQrStUv?token=8kr_3dWKcaZ6MZbplOGkLo1A', '/u/1k-AbC…?…'],
    ['/a b"c\\d', '/a%20b%22c%5Cd'],
    ['/\x1b[31m\r\nfake', '/%1B[31m%0D%0Afake'],
    ['/caf\u00e9\u0085', '/caf%C3%A9%C2%85'],
    ['', ''],
  ];
  for (const [target, expected] of rows) assert.equal(loggedPath(target), expected, JSON.stringify(target));
  const long = loggedPath(`/${'a/'.repeat(5000)}`);
  assert.equal(long.length, 201);
  assert.ok(long.endsWith('…'));
  const escaped = loggedPath(`/${'\x01'.repeat(5000)}`);
  assert.ok(escaped.length <= 201 && escaped.endsWith('%01…'), `escaping does not lengthen the line past the bound: ${escaped.length}`);
});
