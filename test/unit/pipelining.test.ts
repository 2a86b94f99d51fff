import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { SmtpTransport } from '../../src/mail/smtp.js';
import { DeliveryError } from '../../src/domain/ports.js';

/**
 * A scripted SMTP server on 127.0.0.1, raw enough to see how the client writes: which
 * commands arrive in one chunk, and whether one comes before the last was answered.
 */
interface Scripted {
  port: number;
  /** each connection's envelopes: the commands of one MAIL FROM .. DATA, and how many chunks they came in */
  envelopes: { commands: string[]; chunks: number; aheadOfReply?: boolean }[];
  /** a command that arrived while an earlier one was still unanswered (only where PIPELINING is not offered) */
  early: string[];
  delivered: string[];
  /** data phases ended with a lone "." and nothing in them */
  emptyMessages: number;
  /** RSET commands received */
  rsets: number;
  close(): Promise<void>;
}

interface ScriptOptions {
  pipelining: boolean;
  /** reply to MAIL FROM / RCPT TO / DATA of the nth envelope (from 1); default 250 / 250 / 354 */
  reply?(command: string, envelope: number): string | undefined;
  /** answer nothing of an envelope until DATA has arrived: a client that waits for MAIL FROM's answer never gets it */
  holdUntilData?: boolean;
  /** answer DATA with 354 even when no recipient was accepted (a server that breaks RFC 2920) */
  openDataAnyway?: boolean;
  /** milliseconds before the answer to each message's final dot; the answers after it wait behind it */
  messageReplyDelayMs?: number;
  /** the answer to the nth message (from 1, over all connections) instead of 250; one starting 421 ends the session */
  messageReply?(n: number): string | undefined;
  /** cut the connection once the nth message (from 1) has arrived, without answering it */
  cutAfterMessage?: number;
}

async function scriptedServer(options: ScriptOptions): Promise<Scripted> {
  const result: Scripted = { port: 0, envelopes: [], early: [], delivered: [], emptyMessages: 0, rsets: 0, close: async () => {} };
  let messages = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    let inData = false;
    let body = '';
    let unanswered = 0;
    let held: string[] = [];
    let envelope: Scripted["envelopes"][number] | null = null;
    let chunk = 0;
    let envelopeChunk = -1;
    let closed = false;
    // Answers to messages not yet written (messageReplyDelayMs), and the answers queued behind them.
    let repliesDue = 0;
    let later = Promise.resolve();
    const reply = (line: string, delayMs = 0) => {
      if (options.messageReplyDelayMs === undefined) return answer(line);
      later = later.then(() => (delayMs ? new Promise((r) => setTimeout(r, delayMs)) : undefined)).then(() => {
        if (delayMs) repliesDue--;
        answer(line);
      });
    };
    const answer = (line: string) => {
      if (closed) return;
      unanswered--;
      socket.write(`${line}\r\n`);
      // As Postfix and the providers do: a 421 ends the session at once, nothing more is read.
      if (line.startsWith('421')) {
        closed = true;
        socket.end();
      }
    };
    // As RFC 2920 has it: after a refused MAIL FROM, or with no recipient accepted, the
    // commands that follow are refused too, unless the script says otherwise.
    let senderAccepted = false;
    let recipientsAccepted = 0;
    const replyTo = (command: string): string => {
      const verb = command.slice(0, 4).toUpperCase();
      const scripted = options.reply?.(command, result.envelopes.length);
      if (verb === 'MAIL') {
        const reply = scripted ?? '250 2.1.0 ok';
        senderAccepted = reply.startsWith('2');
        recipientsAccepted = 0;
        return reply;
      }
      if (!senderAccepted) return '503 5.5.1 need MAIL command';
      if (verb === 'RCPT') {
        const reply = scripted ?? '250 2.1.5 ok';
        if (reply.startsWith('2')) recipientsAccepted++;
        return reply;
      }
      if (recipientsAccepted === 0 && !options.openDataAnyway) return '554 5.5.1 no valid recipients';
      return scripted ?? '354 go ahead';
    };
    socket.write('220 scripted ESMTP\r\n');
    socket.on('data', (data: Buffer) => {
      if (closed) return;
      chunk++;
      buffer += data.toString('latin1');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (inData) {
          if (line !== '.') {
            body += `${line}\n`;
            continue;
          }
          inData = false;
          const n = ++messages;
          if (options.cutAfterMessage === n) {
            closed = true;
            socket.destroy();
            return;
          }
          const delay = options.messageReplyDelayMs ?? 0;
          if (delay) repliesDue++;
          const scripted = options.messageReply?.(n);
          if (body === '') {
            result.emptyMessages++;
            reply('554 5.6.0 empty message', delay);
          } else if (scripted) {
            reply(scripted, delay);
          } else {
            result.delivered.push(body);
            reply(`250 2.0.0 queued as ${result.delivered.length}`, delay);
          }
          body = '';
          continue;
        }
        if (!options.pipelining && unanswered > 0) result.early.push(line);
        unanswered++;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          reply(`250-scripted\r\n${options.pipelining ? '250-PIPELINING\r\n' : ''}250 8BITMIME`);
        } else if (verb === 'QUIT') {
          reply('221 bye');
          later = later.then(() => { socket.end(); });
        } else if (verb === 'RSET' || verb === 'NOOP') {
          if (verb === 'RSET') result.rsets++;
          reply('250 ok');
        } else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'DATA') {
          if (verb === 'MAIL') {
            envelope = { commands: [], chunks: 0, aheadOfReply: repliesDue > 0};
            result.envelopes.push(envelope);
            envelopeChunk = -1;
          }
          if (envelope) {
            envelope.commands.push(line);
            if (chunk !== envelopeChunk) envelope.chunks++;
            envelopeChunk = chunk;
          }
          const answered = replyTo(line);
          if (verb === 'DATA' && answered.startsWith('354')) inData = true;
          if (options.holdUntilData) {
            held.push(answered);
            if (verb === 'DATA') {
              for (const r of held) answer(r);
              held = [];
            }
          } else {
            reply(answered);
          }
        } else {
          reply('502 5.5.1 not implemented');
        }
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  result.port = (server.address() as net.AddressInfo).port;
  result.close = () => new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });
  return result;
}

function transportFor(server: Scripted): SmtpTransport {
  return new SmtpTransport({ url: `smtp://127.0.0.1:${server.port}`, maxConnections: 1 });
}

const message = (n: number) => Buffer.from(`Subject: mail ${n}\r\n\r\nbody ${n}\r\n`);
const envelope = (to: string) => ({ from: 'sender@example.org', to: [to] });

test('where the server offers PIPELINING, MAIL FROM, RCPT TO and DATA go out in one write, mail after mail', { timeout: 10_000 }, async () => {
  // This server answers nothing of an envelope before it has seen DATA: a client that waits
  // for the answer to MAIL FROM would wait for ever (the test's timeout).
  const server = await scriptedServer({ pipelining: true, holdUntilData: true });
  const transport = transportFor(server);
  try {
    for (let n = 1; n <= 3; n++) assert.match(await transport.deliver(envelope(`m${n}@example.org`), message(n)), /^250 2\.0\.0 queued as \d/);
    assert.equal(server.delivered.length, 3);
    assert.deepEqual(server.envelopes.map((e) => e.commands.map((c) => c.split(':')[0])), Array(3).fill(['MAIL FROM', 'RCPT TO', 'DATA']));
    assert.deepEqual(server.envelopes.map((e) => e.chunks), [1, 1, 1], 'each envelope in one chunk');
    assert.match(server.envelopes[1].commands[1], /^RCPT TO:<m2@example\.org>$/);
  } finally {
    await transport.close();
    await server.close();
  }
});

test('a server without PIPELINING gets one command at a time, each after the answer to the last', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: false });
  const transport = transportFor(server);
  try {
    for (let n = 1; n <= 2; n++) await transport.deliver(envelope(`m${n}@example.org`), message(n));
    assert.equal(server.delivered.length, 2);
    assert.deepEqual(server.early, [], 'no command before the answer to the one before');
    assert.deepEqual(server.envelopes.map((e) => e.chunks), [3, 3]);
  } finally {
    await transport.close();
    await server.close();
  }
});

/** Delivers one mail and returns what the error catalog would read of its failure. */
async function refusal(server: Scripted, to: string): Promise<Record<string, unknown>> {
  const transport = transportFor(server);
  try {
    await transport.deliver(envelope(to), message(1));
  } catch (err) {
    assert.ok(err instanceof DeliveryError, String(err));
    // After a refusal the transport still delivers: the answers stayed in step with the commands.
    assert.match(await transport.deliver(envelope('fine@example.org'), message(2)), /^250 /);
    return { code: err.code, command: err.command, responseCode: err.responseCode, response: err.response };
  } finally {
    await transport.close();
    await server.close();
  }
  assert.fail(`delivery to ${to} was not refused`);
}

const refusals: [string, ScriptOptions['reply'], string, Record<string, unknown>][] = [
  ['a refused sender', (c) => (c.startsWith('MAIL') ? '553 5.7.1 Sender address rejected' : undefined),
    'x@example.org', { code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 553, response: '553 5.7.1 Sender address rejected' }],
  ['an unknown mailbox', (c) => (c.includes('<gone@') ? '550 5.1.1 User unknown' : undefined),
    'gone@example.org', { code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550, response: '550 5.1.1 User unknown' }],
  ['greylisting', (c) => (c.includes('<grey@') ? '450 4.2.0 Greylisted, try again later' : undefined),
    'grey@example.org', { code: 'EENVELOPE', command: 'RCPT TO', responseCode: 450, response: '450 4.2.0 Greylisted, try again later' }],
  ['a refused DATA', (c) => (c.startsWith('DATA') ? '554 5.7.0 Transaction failed' : undefined),
    'x@example.org', { code: 'EENVELOPE', command: 'DATA', responseCode: 554, response: '554 5.7.0 Transaction failed' }],
  // The server hangs up after a 421: the reply to DATA never comes, and the refusal must still
  // be the server's words, not a lost connection (the catalog reads 4.7.0 as rate-limited).
  ['a 421 to MAIL FROM, then the connection closed', (c) => (c.startsWith('MAIL') ? '421 4.7.0 Too many connections, try later' : undefined),
    'x@example.org', { code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 421, response: '421 4.7.0 Too many connections, try later' }],
  ['a 421 to RCPT TO, then the connection closed', (c) => (c.includes('<busy@') ? '421 4.7.0 Too many messages, slow down' : undefined),
    'busy@example.org', { code: 'EENVELOPE', command: 'RCPT TO', responseCode: 421, response: '421 4.7.0 Too many messages, slow down' }],
];

for (const [what, reply, to, expected] of refusals) {
  test(`${what} is reported as nodemailer reports it, with PIPELINING or without`, { timeout: 10_000 }, async () => {
    // Only the first envelope is refused; the mail after it must go through.
    const refusedOnly: ScriptOptions['reply'] = (c, n) => (n === 1 ? reply!(c, n) : undefined);
    const sequential = await refusal(await scriptedServer({ pipelining: false, reply: refusedOnly }), to);
    const pipelined = await refusal(await scriptedServer({ pipelining: true, reply: refusedOnly }), to);
    assert.deepEqual(sequential, expected);
    assert.deepEqual(pipelined, expected);
  });
}

test('a server that opens the data phase after refusing the only recipient does not get the mail; the next mail goes through', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, openDataAnyway: true, reply: (c) => (c.includes('<gone@') ? '550 5.1.1 User unknown' : undefined) });
  const transport = transportFor(server);
  try {
    await assert.rejects(transport.deliver(envelope('gone@example.org'), message(1)), (err: DeliveryError) => {
      assert.deepEqual([err.command, err.responseCode], ['RCPT TO', 550]);
      return true;
    });
    assert.match(await transport.deliver(envelope('fine@example.org'), message(2)), /^250 2\.0\.0 queued as 1$/);
    assert.equal(server.delivered.length, 1, 'the refused mail was not sent');
    assert.match(server.delivered[0], /body 2/);
  } finally {
    await transport.close();
    await server.close();
  }
});

/** One mail on a connection of our own (the pool closes its connection after a refusal). */
function sendOn(connection: SMTPConnection, to: string, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    connection.send(envelope(to), message(n), (err, info) => (err ? reject(err) : resolve(String(info.response))));
  });
}

test('on a connection kept open, a data phase opened after a refusal is ended with a lone ".", and the replies stay in step', { timeout: 10_000 }, async () => {
  // RFC 2920 3.1: the server should refuse DATA when no recipient was accepted; if it opens
  // the data phase anyway, the client ends it with an empty message instead of sending the mail.
  const server = await scriptedServer({ pipelining: true, openDataAnyway: true, reply: (c) => (c.includes('<gone@') ? '550 5.1.1 User unknown' : undefined) });
  const connection = new SMTPConnection({ host: '127.0.0.1', port: server.port, ignoreTLS: true });
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect(() => resolve());
    });
    await assert.rejects(sendOn(connection, 'gone@example.org', 1), (err: { command?: string; responseCode?: number }) => {
      assert.deepEqual([err.command, err.responseCode], ['RCPT TO', 550]);
      return true;
    });
    for (let i = 0; i < 200 && server.emptyMessages === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.emptyMessages, 1, 'the data phase was ended, not left open');
    assert.match(await sendOn(connection, 'fine@example.org', 2), /^250 2\.0\.0 queued as 1$/, 'the answer to "." was not taken for the next mail\'s');
    assert.deepEqual(server.delivered.map((b) => b.trim()), ['Subject: mail 2\n\nbody 2']);
  } finally {
    connection.close();
    await server.close();
  }
});

/** Hands `count` mails to one connection at once; each settles with its reply or its refusal. */
async function handedAtOnce(server: Scripted, recipients: string[]): Promise<{ reply?: string; err?: DeliveryError }[]> {
  const transport = transportFor(server);
  try {
    const settled = await Promise.allSettled(recipients.map((to, i) => transport.deliver(envelope(to), message(i + 1))));
    return settled.map((s) => (s.status === 'fulfilled' ? { reply: s.value } : { err: s.reason as DeliveryError }));
  } finally {
    await transport.close();
    await server.close();
  }
}

const bodies = (server: Scripted) => server.delivered.map((b) => b.trim().split('\n').pop());

/** What each write of a socket handed the system at once (several corked writes are one writev). */
async function watchingWrites<T>(fn: () => Promise<T>): Promise<{ result: T; writes: string[] }> {
  const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const { _write: write, _writev: writev } = proto;
  const writes: string[] = [];
  proto._write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
    writes.push(Buffer.from(chunk as Buffer).toString('latin1'));
    return write.call(this, chunk, ...rest);
  };
  proto._writev = function (this: unknown, chunks: unknown, ...rest: unknown[]) {
    writes.push((chunks as { chunk: Buffer | string }[]).map((c) => Buffer.from(c.chunk).toString('latin1')).join(''));
    return writev.call(this, chunks, ...rest);
  };
  try {
    return { result: await fn(), writes };
  } finally {
    proto._write = write;
    proto._writev = writev;
  }
}

test('the next mail\'s envelope goes out behind the last message, before its answer: one round trip a mail', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 30 });
  const { result: results, writes } = await watchingWrites(() => handedAtOnce(server, ['m1@example.org', 'm2@example.org', 'm3@example.org', 'm4@example.org']));
  // In one write with the dot: a server that reads the dot alone answers it alone, and its
  // answers to the envelope then wait for our ACK of that one (Nagle's algorithm on its side,
  // delayed ACK on ours).
  assert.deepEqual(writes.filter((w) => /\r\n\.\r\nMAIL FROM:<[^>]*> *\r\nRCPT TO:<m\d@example\.org>\r\nDATA\r\n$/.test(w)).length, 3, 'body, dot and the next envelope in one write');
  assert.deepEqual(results.map((r) => r.reply), [1, 2, 3, 4].map((n) => `250 2.0.0 queued as ${n}`), 'each mail has its own answer');
  assert.deepEqual(bodies(server), ['body 1', 'body 2', 'body 3', 'body 4']);
  assert.deepEqual(server.envelopes.map((e) => e.commands[1]), [1, 2, 3, 4].map((n) => `RCPT TO:<m${n}@example.org>`));
  assert.deepEqual(server.envelopes.map((e) => e.aheadOfReply), [false, true, true, true], 'written while the message before waited for its answer');
});

test('a message refused at its end, with the next envelope behind it: no RSET into the next transaction, every other mail delivered', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 20, messageReply: (n) => (n === 1 ? '550 5.7.1 Message content rejected' : undefined) });
  const results = await handedAtOnce(server, ['m1@example.org', 'm2@example.org', 'm3@example.org']);
  assert.deepEqual([results[0].err?.responseCode, results[0].err?.response], [550, '550 5.7.1 Message content rejected']);
  assert.deepEqual(results.slice(1).map((r) => r.reply), ['250 2.0.0 queued as 1', '250 2.0.0 queued as 2']);
  assert.deepEqual(bodies(server), ['body 2', 'body 3'], 'the messages as they were sent, no RSET in them');
  assert.equal(server.rsets, 0);
});

test('a recipient refused in the envelope written ahead is that mail\'s refusal; the mails around it are delivered', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 20, reply: (c) => (c.includes('<gone@') ? '550 5.1.1 User unknown' : undefined) });
  const results = await handedAtOnce(server, ['m1@example.org', 'gone@example.org', 'm3@example.org']);
  assert.equal(results[0].reply, '250 2.0.0 queued as 1');
  assert.deepEqual([results[1].err?.command, results[1].err?.responseCode], ['RCPT TO', 550]);
  assert.equal(results[2].reply, '250 2.0.0 queued as 2');
  assert.deepEqual(bodies(server), ['body 1', 'body 3']);
  assert.equal(server.envelopes[1].aheadOfReply, true);
});

test('a server that answers a message with 421 and hangs up: the mail written ahead goes out on the next connection, once', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 20, messageReply: (n) => (n === 1 ? '421 4.3.2 Shutting down' : undefined) });
  const results = await handedAtOnce(server, ['m1@example.org', 'm2@example.org', 'm3@example.org']);
  assert.equal(results[0].err?.responseCode, 421);
  assert.deepEqual(results.slice(1).map((r) => r.reply), ['250 2.0.0 queued as 1', '250 2.0.0 queued as 2']);
  assert.deepEqual(bodies(server), ['body 2', 'body 3']);
});

test('a connection cut after a message, before its answer: that mail may have gone out, the one written ahead had not and is delivered', { timeout: 10_000 }, async () => {
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 20, cutAfterMessage: 1 });
  const results = await handedAtOnce(server, ['m1@example.org', 'm2@example.org', 'm3@example.org']);
  assert.equal(results[0].err?.afterMessage, true, String(results[0].err?.message));
  assert.match(String(results[0].err?.message), /after the whole message was sent/);
  assert.deepEqual(results.slice(1).map((r) => r.reply), ['250 2.0.0 queued as 1', '250 2.0.0 queued as 2']);
  assert.deepEqual(bodies(server), ['body 2', 'body 3']);
});

test('large messages handed at once to one connection arrive whole and in order, each under its own envelope (the dot\'s cork never holds a full socket)', { timeout: 30_000 }, async () => {
  const { startSmtpServer } = await import('../support/smtp.js');
  const server = await startSmtpServer();
  const transport = new SmtpTransport({ url: server.url, maxConnections: 1 });
  // Two megabytes each, far past a socket's buffer: the pipe waits for it to drain mid-message.
  const big = (n: number) => Buffer.from(`Subject: mail ${n}\r\n\r\n${`line ${n} ${'x'.repeat(90)}\r\n`.repeat(20_000)}`);
  try {
    const sent = [1, 2, 3, 4].map(big);
    await Promise.all(sent.map((raw, i) => transport.deliver(envelope(`m${i + 1}@example.org`), raw)));
    assert.deepEqual(server.messages.map((m) => m.to), [1, 2, 3, 4].map((n) => [`m${n}@example.org`]));
    server.messages.forEach((m, i) => assert.ok(m.raw.equals(sent[i]), `message ${i + 1} byte for byte`));
  } finally {
    await transport.close();
    await server.close();
  }
});

test('a 421 to the DATA written ahead is that mail\'s refusal in the server\'s words, not a lost connection', { timeout: 10_000 }, async () => {
  // The server's answers to the message and to the envelope behind it come in one chunk, and
  // it hangs up after the 421: the replies already read are handled before the close.
  const server = await scriptedServer({ pipelining: true, messageReplyDelayMs: 5, reply: (c, n) => (n === 2 && c.startsWith('DATA') ? '421 4.7.0 Too many messages, closing' : undefined) });
  const results = await handedAtOnce(server, ['m1@example.org', 'm2@example.org']);
  assert.equal(results[0].reply, '250 2.0.0 queued as 1');
  assert.deepEqual([results[1].err?.command, results[1].err?.responseCode, results[1].err?.response], ['DATA', 421, '421 4.7.0 Too many messages, closing'], String(results[1].err?.message));
});
