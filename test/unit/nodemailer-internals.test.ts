import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import PoolResource from 'nodemailer/lib/smtp-pool/pool-resource.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { detectInternals, fallbackNotice, internals, type Classes } from '../../src/mail/nodemailer-internals.js';
import { startSmtpServer } from '../support/smtp.js';

const ORIGINAL = { SMTPConnection, SMTPPool, PoolResource, MimeNode } as unknown as Classes;

test('on the installed nodemailer every private member mailer uses is there: no fallback', () => {
  assert.deepEqual(internals, { pipelining: true, lookahead: true, steps: true, diagnosis: true, headerMemo: true, pool: true, missing: [] });
  assert.deepEqual(detectInternals(), internals);
  assert.equal(fallbackNotice(internals), null);
});

/** nodemailer's class, but with one member gone, renamed or of another arity. */
function without<T extends { prototype: object }>(base: T, name: string, replacement?: unknown): T {
  const Derived = class extends (base as unknown as new (...args: unknown[]) => object) {};
  Object.defineProperty(Derived.prototype, name, { value: replacement, configurable: true, writable: true });
  return Derived as unknown as T;
}

test('a member removed, renamed or reshaped turns off the feature that uses it, and is named', () => {
  const cases: [Partial<Classes>, Partial<Record<keyof typeof internals, boolean>>, string][] = [
    [{ SMTPConnection: without(ORIGINAL.SMTPConnection, '_getDsnRcptToArgs') }, { pipelining: false, lookahead: false, steps: true }, 'SMTPConnection._getDsnRcptToArgs (a method of 0 arguments)'],
    [{ SMTPConnection: without(ORIGINAL.SMTPConnection, '_setEnvelope', function (this: unknown, envelope: unknown) { return envelope; }) }, { pipelining: false, steps: false }, 'SMTPConnection._setEnvelope (a method of 2 arguments)'],
    [{ SMTPConnection: without(ORIGINAL.SMTPConnection, '_onConnect') }, { pipelining: true, steps: false }, 'SMTPConnection._onConnect (a method of 0 arguments)'],
    [{ MimeNode: without(ORIGINAL.MimeNode, 'encodeHeaderValue') }, { headerMemo: false, pipelining: true }, 'MimeNode.encodeHeaderValue (a method of 2 arguments)'],
    [{ SMTPPool: without(ORIGINAL.SMTPPool, 'send', (...args: unknown[]) => args) }, { pool: false, lookahead: false, headerMemo: true }, 'SMTPPool.send (a method of 2 arguments)'],
    [{ SMTPPool: without(ORIGINAL.SMTPPool, '_processMessages', (entry: unknown) => entry) }, { lookahead: false, pool: true, pipelining: true }, 'SMTPPool._processMessages (a method of 0 arguments)'],
    [{ PoolResource: without(ORIGINAL.PoolResource, 'close', (force: unknown) => force) }, { lookahead: false, pool: true, pipelining: true }, 'PoolResource.close (a method of 0 arguments)'],
  ];
  for (const [replaced, expected, named] of cases) {
    const found = detectInternals({ ...ORIGINAL, ...replaced });
    for (const [feature, on] of Object.entries(expected)) assert.equal(found[feature as keyof typeof expected], on, `${named}: ${feature}`);
    assert.deepEqual(found.missing, [named]);
    assert.match(fallbackNotice(found)!, new RegExp(`^mailer: nodemailer \\d+\\.\\d+\\.\\d+ lacks ${named.replace(/[()]/g, '\\$&')}; .*\\(correct, slower\\)$`));
  }
  // there, but no longer what a header block's build calls (as `_encodeHeaderValue` in nodemailer 10)
  const unused = detectInternals({ ...ORIGINAL, MimeNode: without(ORIGINAL.MimeNode, 'buildHeaders', function () { return 'From: x'; }) });
  assert.deepEqual([unused.headerMemo, unused.missing], [false, ['MimeNode._normalizeHeaderKey (called by buildHeaders)', 'MimeNode.encodeHeaderValue (called by buildHeaders)']]);
  // a field the constructor no longer sets (renamed)
  const Renamed = class extends (SMTPConnection as unknown as new (o: object) => Record<string, unknown>) {
    constructor(options: object) {
      super(options);
      this._replyHandlers = this._responseActions;
      delete this._responseActions;
    }
  };
  const found = detectInternals({ ...ORIGINAL, SMTPConnection: Renamed as never });
  assert.deepEqual([found.pipelining, found.steps, found.missing], [false, true, ['SMTPConnection._responseActions (a list set by the constructor)']]);
});

function runChild(port: number, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/reshaped-nodemailer.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child, String(port)], { env: { ...process.env, MAILER_DEBUG: '', ...env }, timeout: 20_000 }, (err, stdout, stderr) =>
      (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr })));
  });
}

test('another nodemailer inside: mailer sends through its public behaviour, correctly, and says so only under MAILER_DEBUG=1', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer({ reject: { 'gone@verein.example': '550 5.1.1 User unknown' } });
  try {
    const { stdout, stderr } = await runChild(server.port, { MAILER_DEBUG: '1' });
    const out = JSON.parse(stdout);
    assert.equal(out.error, undefined, stdout);
    assert.deepEqual(out.internals, {
      pipelining: false, lookahead: false, steps: false, diagnosis: true, headerMemo: false, pool: false,
      missing: ['SMTPConnection._setEnvelope (a method of 2 arguments)', 'MimeNode._normalizeHeaderKey (a method of 1 argument)', 'SMTPPool.send (a method of 2 arguments)'],
    });
    assert.equal(out.pipelined, false, 'the pipelining patch stays off');
    assert.equal(out.headerMemo, false, 'MimeNode is left as nodemailer has it');
    assert.deepEqual(out.viaSendMail, [true, true], 'each mail went through nodemailer\'s sendMail, not past it');
    // delivered, byte for byte, to the right envelope
    assert.match(out.response, /^250 /);
    assert.equal(server.messages.length, 1);
    assert.equal(server.messages[0].raw.toString('latin1'), Buffer.from(out.raw, 'base64').toString('latin1'));
    assert.deepEqual([server.messages[0].from, server.messages[0].to], ['bounces+1@verein.example', ['joerg@bücher.example']]);
    assert.match(server.messages[0].raw.toString(), /^To: =\?UTF-8\?Q\?J=C3=B6rg\?= <joerg@xn--bcher-kva\.example>$/m);
    // a refusal still becomes mailer's DeliveryError, with nodemailer's code and the reply
    assert.deepEqual(out.refusal, { deliveryError: true, code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550, response: '550 5.1.1 User unknown' });
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], /^mailer: nodemailer 10\.\d+\.\d+ lacks SMTPConnection\._setEnvelope .*MimeNode\._normalizeHeaderKey .*SMTPPool\.send .*\(correct, slower\)$/);

    const quiet = await runChild(server.port, {});
    assert.equal(JSON.parse(quiet.stdout).error, undefined);
    assert.equal(quiet.stderr, '', 'nothing on stderr without MAILER_DEBUG=1');
    assert.equal(server.messages.length, 2);
  } finally {
    await server.close();
  }
});
