import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { Store } from '../../src/store/store.js';
import { SERVE_LIMITS, formFields, trackingServer } from '../../src/triage/tracking.js';

function openStore(): Store {
  return Store.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-serve-')), 'mailer.db'));
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

/** Writes `bytes`, keeps the socket open, and tells what came back and how long until the server closed it. */
function stall(port: number, bytes: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const got: Buffer[] = [];
    const guard = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (c) => got.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ answer: Buffer.concat(got).toString('latin1'), ms: Date.now() - started });
    });
  });
}

test('serve bounds every request in time: headers, the whole request, an idle kept-alive connection', async () => {
  const store = openStore();
  const lines: string[] = [];
  const server = trackingServer(store, Date.now, (l) => lines.push(l), { headersTimeoutMs: 400, requestTimeoutMs: 800, keepAliveTimeoutMs: 300, checkEveryMs: 100 });
  const port = await listen(server);
  try {
    const headers = await stall(port, 'GET /health HTTP/1.1\r\nHost: x\r\n');
    assert.match(headers.answer, /^HTTP\/1\.1 408/);
    assert.ok(headers.ms < 3_000, `${headers.ms} ms`);
    const body = await stall(port, 'POST /u/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nList-Uns');
    assert.ok(body.ms < 4_000, `${body.ms} ms`);
    const idle = await stall(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(idle.answer, /^HTTP\/1\.1 200/);
    assert.ok(idle.ms < 3_000, `${idle.ms} ms`);
    assert.ok(lines.some((l) => /408/.test(l)), lines.join('\n'));
  } finally {
    server.close();
    server.closeAllConnections();
    store.close();
  }
});

test('serve\'s own limits are set and finite', () => {
  const store = openStore();
  try {
    const server = trackingServer(store, Date.now, () => {});
    assert.equal(server.headersTimeout, SERVE_LIMITS.headersTimeoutMs);
    assert.equal(server.requestTimeout, SERVE_LIMITS.requestTimeoutMs);
    assert.equal(server.keepAliveTimeout, SERVE_LIMITS.keepAliveTimeoutMs);
    for (const ms of Object.values(SERVE_LIMITS)) assert.ok(ms > 0 && ms <= 60_000, String(ms));
    assert.ok(SERVE_LIMITS.keepAliveTimeoutMs < SERVE_LIMITS.headersTimeoutMs, 'a kept-alive socket is closed before it can count as a slow request');
  } finally {
    store.close();
  }
});

test('form bodies: urlencoded and multipart (RFC 8058 §3.1 allows both), nothing else', () => {
  const mp = (boundary: string, parts: [string, string][]) => Buffer.from(parts.map(([n, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`).join('') + `--${boundary}--\r\n`);
  const rows: [string | undefined, Buffer, Record<string, string> | undefined][] = [
    ['application/x-www-form-urlencoded', Buffer.from('List-Unsubscribe=One-Click'), { 'List-Unsubscribe': 'One-Click' }],
    ['Application/X-WWW-Form-Urlencoded; charset=UTF-8', Buffer.from('a=1&List-Unsubscribe=One-Click'), { a: '1', 'List-Unsubscribe': 'One-Click' }],
    ['application/x-www-form-urlencoded', Buffer.from('confirm=a%2Db'), { confirm: 'a-b' }],
    ['multipart/form-data; boundary=XyZ', mp('XyZ', [['List-Unsubscribe', 'One-Click']]), { 'List-Unsubscribe': 'One-Click' }],
    ['multipart/form-data; boundary="a b"', mp('a b', [['x', 'y'], ['List-Unsubscribe', 'One-Click']]), { x: 'y', 'List-Unsubscribe': 'One-Click' }],
    ['multipart/form-data', mp('XyZ', [['List-Unsubscribe', 'One-Click']]), undefined],
    ['text/plain', Buffer.from('List-Unsubscribe=One-Click'), undefined],
    ['application/json', Buffer.from('{"List-Unsubscribe":"One-Click"}'), undefined],
    [undefined, Buffer.from('List-Unsubscribe=One-Click'), undefined],
    ['', Buffer.from('List-Unsubscribe=One-Click'), undefined],
  ];
  for (const [type, body, expected] of rows) {
    const fields = formFields(type, body);
    assert.deepEqual(fields && Object.fromEntries(fields), expected, String(type));
  }
});
