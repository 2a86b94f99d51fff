import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { coalesceWrites } from '../../src/mail/smtp.js';

test('writes of one event-loop turn leave together, and nothing is held past that turn', async () => {
  const received: string[] = [];
  const server = net.createServer((peer) => peer.on('data', (chunk) => received.push(chunk.toString())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = coalesceWrites(net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, noDelay: true }));
  try {
    await once(socket, 'connect');
    socket.write('message body\r\n');
    socket.write('.\r\n');
    assert.equal(socket.writableCorked, 1, 'held until the turn ends');
    assert.equal(socket.writableLength, 17, 'both writes wait in one buffer');
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(socket.writableCorked, 0, 'released at the end of the turn');
    for (let i = 0; i < 100 && received.join('').length < 17; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(received.join(''), 'message body\r\n.\r\n');
    socket.write('QUIT\r\n');
    for (let i = 0; i < 100 && received.join('').length < 23; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(received.join(''), 'message body\r\n.\r\nQUIT\r\n', 'a later write goes out too');
  } finally {
    socket.destroy();
    server.close();
  }
});
