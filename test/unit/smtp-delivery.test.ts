import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { SMTPServer } from 'smtp-server';
import { SmtpTransport } from '../../src/mail/smtp.js';
import { DeliveryError } from '../../src/domain/ports.js';
import { Catalog } from '../../src/domain/catalog.js';
import { serverStopped } from '../../src/send/queue.js';
import { sendMailing } from '../../src/send/send.js';
import { resolveSettings } from '../../src/config/settings.js';
import { Store } from '../../src/store/store.js';
import { ExitCode } from '../../src/errors.js';
import { progressText, IDLE_MS } from '../../src/ui/progress.js';
import { folderWithMembers } from '../support/cli.js';
import { startBreakingServer, type Breaks } from '../support/smtp.js';

const timeouts = { greetingMs: 2000, socketMs: 400 };
const message = Buffer.from('Subject: hello\r\n\r\nbody\r\n');
const catalog = new Catalog();

async function failureOf(breaks: Breaks, user = ''): Promise<{ err: DeliveryError; port: number; dots: number }> {
  const server = await startBreakingServer(breaks);
  const transport = new SmtpTransport({ url: `smtp://${user}127.0.0.1:${server.port}`, password: user ? 'secret' : undefined, maxConnections: 1, timeouts });
  try {
    await transport.deliver({ from: 'noreply@verein.example', to: ['anna@example.org'] }, message);
  } catch (err) {
    assert.ok(err instanceof DeliveryError, String(err));
    return { err, port: server.port, dots: server.dots };
  } finally {
    await transport.close();
    await server.close();
  }
  assert.fail(`${breaks}: the delivery did not fail`);
}

test('a connection cut or silent after the final dot leaves the outcome unknown: maybe-sent, not "nothing is lost"', { timeout: 20_000 }, async () => {
  for (const breaks of ['cut-after-dot', 'silent-after-dot'] as const) {
    const { err, port, dots } = await failureOf(breaks);
    assert.equal(dots, 1, `${breaks}: the whole message reached the server`);
    assert.equal(err.afterMessage, true, breaks);
    const c = catalog.classify(err);
    assert.deepEqual([c.category, c.serverLevel, c.permanent], ['maybe-sent', true, false], `${breaks}: ${err.message}`);
    assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
  }
  // Cut before the message went out: nothing can have arrived, it is an ordinary lost connection.
  const before = await failureOf('cut-at-data');
  assert.equal(before.dots, 0);
  assert.notEqual(before.err.afterMessage, true);
  assert.equal(catalog.classify(before.err).category, 'server-unreachable');
});

test('a server that never answers the login times out naming the step and the server', { timeout: 20_000 }, async () => {
  const { err, port } = await failureOf('silent-at-auth', 'verein@');
  assert.equal(err.message, `login at 127.0.0.1:${port} timed out`);
  const c = catalog.classify(err);
  assert.deepEqual([c.category, c.serverLevel], ['timeout', true]);
});

test('a small mailing whose server hangs at the login stops as unusable (exit 3), naming the step, not "some sends were interrupted"', { timeout: 60_000 }, async () => {
  const dir = await folderWithMembers(3);
  const server = await startBreakingServer('silent-at-auth');
  const url = `smtp://verein@127.0.0.1:${server.port}`;
  const store = Store.open(path.join(dir, 'mailer.db'));
  try {
    const settings = resolveSettings({ smtp: [url] }, {}, dir);
    const result = await sendMailing(store, async (concurrency) => [new SmtpTransport({ url, password: 'secret', maxConnections: concurrency, timeouts })], {
      templatePath: path.join(dir, 'invitation.txt'), where: [], members: [], test: false, dryRun: false, allowEmpty: false, settings, now: Date.now,
    });
    assert.equal(result.kind, 'sent');
    if (result.kind !== 'sent') return;
    assert.deepEqual([result.outcome.sent, result.summary.queued], [0, 3]);
    assert.ok(result.outcome.stopped, 'the run says the server cannot be used');
    assert.match(result.outcome.stopped.message, new RegExp(`login at 127\\.0\\.0\\.1:${server.port} timed out`));
    assert.equal(serverStopped(result.outcome.stopped, '', '').exitCode, ExitCode.serverUnusable);
    assert.match(store.mailings.mailing(result.summary.mailing)!.statusReason ?? '', /server unusable: login at/);
  } finally {
    store.close();
    await server.close();
  }
});

test('the envelope carries an IDN domain as punycode; a non-ASCII local part goes out with SMTPUTF8, or is refused in words', { timeout: 20_000 }, async () => {
  for (const smtpUtf8 of [true, false]) {
    const received: { rcpt: string[]; utf8: boolean }[] = [];
    const server = new SMTPServer({
      logger: false, disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true, hideSMTPUTF8: !smtpUtf8,
      onData(stream, session, cb) {
        stream.resume();
        stream.on('end', () => {
          received.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), utf8: !!(session.envelope as { smtpUtf8?: boolean }).smtpUtf8 });
          cb(null);
        });
      },
    });
    // smtp-server shows a punycode domain decoded again: the raw commands are read off the socket.
    const commands: string[] = [];
    server.server.on('connection', (socket: net.Socket) => {
      socket.on('data', (d: Buffer) => commands.push(...d.toString('utf8').split('\r\n').filter((l) => /^(MAIL|RCPT)/.test(l))));
    });
    server.listen(0, '127.0.0.1');
    await once(server.server, 'listening');
    const port = (server.server.address() as net.AddressInfo).port;
    const transport = new SmtpTransport({ url: `smtp://127.0.0.1:${port}`, maxConnections: 1 });
    try {
      await transport.deliver({ from: 'noreply@verein.example', to: ['info@bücher.de'] }, message);
      assert.equal(received.length, 1);
      assert.deepEqual(commands.splice(0), ['MAIL FROM:<noreply@verein.example>', 'RCPT TO:<info@xn--bcher-kva.de>'], `SMTPUTF8 offered: ${smtpUtf8}`);
      const local = transport.deliver({ from: 'noreply@verein.example', to: ['jürgen@bücher.de'] }, message);
      if (smtpUtf8) {
        await local;
        assert.deepEqual(commands.splice(0), ['MAIL FROM:<noreply@verein.example> SMTPUTF8', 'RCPT TO:<jürgen@xn--bcher-kva.de>']);
        assert.equal(received.at(-1)!.utf8, true);
      } else {
        await assert.rejects(local, (err: DeliveryError) => {
          const c = catalog.classify(err);
          assert.deepEqual([c.category, c.permanent, c.serverLevel], ['needs-smtputf8', true, false], err.message);
          assert.match(err.message, /jürgen@xn--bcher-kva\.de.*SMTPUTF8/);
          return true;
        });
        assert.equal(received.length, 1, 'the refused mail was not sent');
        assert.deepEqual(commands, [], 'not even its envelope');
      }
    } finally {
      await transport.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
});

test('the progress line names the server it waits for while nothing goes out, an ETA otherwise', () => {
  const counts = { done: 2, sent: 2, failed: 0, deferred: 0, skipped: 0 };
  assert.equal(progressText(counts, 10, 2000, 100, 'smtp://mail.example.org:587'), '2/10  sent 2  failed 0  deferred 0  skipped 0  1/s  ETA 8s');
  assert.equal(progressText(counts, 10, 60_000, IDLE_MS + 7000, 'smtp://mail.example.org:587'), '2/10  sent 2  failed 0  deferred 0  skipped 0  waiting for smtp://mail.example.org:587 (12s)');
  const none = { done: 0, sent: 0, failed: 0, deferred: 0, skipped: 0 };
  assert.match(progressText(none, 3, 30_000, 30_000, 'smtp://127.0.0.1:2525'), /waiting for smtp:\/\/127\.0\.0\.1:2525 \(30s\)$/);
  assert.equal(progressText(none, 3, 1000, 1000, 'smtp://127.0.0.1:2525'), '0/3  sent 0  failed 0  deferred 0  skipped 0', 'no ETA made up before the first send');
});
