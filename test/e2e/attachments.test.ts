import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { simpleParser } from 'mailparser';
import { mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer, type ReceivedMessage } from '../support/smtp.js';

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const TEMPLATE = `Subject: Ihr Befund, {{name}}
From: Praxis Dr. Roth <praxis@roth.example>
Attachment: befunde/{{id}}.pdf

Guten Tag {{name}},
anbei Ihr Befund.
`;

/** A practice folder: members, the template, and a "PDF" of its own for each member listed. */
async function practice(members: [string, string, string][], pdfs: string[], template = TEMPLATE): Promise<{ dir: string; files: Record<string, Buffer> }> {
  const dir = tempDir();
  writeFile(dir, 'patienten.csv', membersCsv(['id', 'name', 'email'], members));
  const r = await mailer(dir, ['import', 'patienten.csv']);
  assert.ok(r.code <= 1, r.stderr);
  fs.mkdirSync(path.join(dir, 'befunde'));
  const files: Record<string, Buffer> = {};
  for (const id of pdfs) {
    // Random bytes of differing lengths: a mix-up or a line of base64 lost would show.
    files[id] = Buffer.concat([Buffer.from(`%PDF-1.4 Befund ${id}\n`), crypto.randomBytes(20_000 + Number(id) * 1_337)]);
    writeFile(path.join(dir, 'befunde'), `${id}.pdf`, files[id]);
  }
  writeFile(dir, 'befund.txt', template);
  return { dir, files };
}

async function attachmentsOf(m: ReceivedMessage) {
  return (await simpleParser(m.raw)).attachments;
}

test('each member receives exactly their own file; a member whose file is missing is skipped with its path, the others sent, exit 1; show --raw is the received bytes until the file changes', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer();
  try {
    const { dir, files } = await practice([
      ['1', 'Anna Berg', 'anna@example.org'], ['2', 'Jörg Müller', 'joerg@example.org'], ['3', 'Cem Kaya', 'cem@example.org'], ['4', 'Dana Ost', 'dana@example.org'],
    ], ['1', '2', '3']);

    const dry = await mailer(dir, ['send', 'befund.txt', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.equal(planned.wouldSend, 3);
    assert.deepEqual(planned.skippedMembers.map((s: any) => [s.member, s.category]), [['4', 'attachment-missing']]);
    assert.match(planned.skippedMembers[0].reason, /befunde\/4\.pdf/);

    const r = await mailer(dir, ['send', 'befund.txt', '--smtp', server.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.sent, 3);
    assert.deepEqual(summary.byReason, { 'attachment-missing': 1 });
    assert.equal(server.messages.length, 3);

    for (const [id, address] of [['1', 'anna@example.org'], ['2', 'joerg@example.org'], ['3', 'cem@example.org']]) {
      const received = server.messages.find((m) => m.to[0] === address)!;
      const attached = await attachmentsOf(received);
      assert.equal(attached.length, 1, address);
      assert.equal(attached[0].filename, `${id}.pdf`);
      assert.equal(attached[0].contentType, 'application/pdf');
      assert.equal(sha(attached[0].content), sha(files[id]), `${address} got their own file, byte for byte`);
      // An instruction to mailer, not a header: the folder is nobody's business.
      assert.doesNotMatch(received.raw.toString('latin1'), /^Attachment:|befunde\//im);
    }

    const log = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
    const skipped = log.find((s) => s.member === '4');
    assert.equal(skipped.status, 'skipped');
    assert.match(skipped.reason, /befunde\/4\.pdf/);

    // The log keeps name, size and SHA-256, not the file.
    const send2 = log.find((s) => s.member === '2').id;
    const shown = JSON.parse((await mailer(dir, ['show', String(send2), '--json'])).stdout);
    assert.deepEqual(shown.attachments, [{ name: '2.pdf', size: files['2'].length, sha256: sha(files['2']) }]);
    assert.match((await mailer(dir, ['show', String(send2)])).stdout, new RegExp(`attachment 2\\.pdf, ${files['2'].length} bytes, SHA-256 ${sha(files['2'])}`));
    const db = openDb(dir);
    const stored = (db.prepare('SELECT raw FROM messages WHERE send_id = ?').get(send2) as { raw: Buffer }).raw;
    db.close();
    assert.ok(stored.length < 2_000, `the stored message holds no file (${stored.length} bytes)`);

    const received2 = server.messages.find((m) => m.to[0] === 'joerg@example.org')!;
    const raw = await mailer(dir, ['show', String(send2), '--raw']);
    assert.equal(raw.code, 0, raw.stderr);
    assert.ok(raw.stdoutBytes.equals(received2.raw), 'show --raw gives the bytes the server received');

    const changed = Buffer.from(files['2']);
    changed[100] ^= 1;
    writeFile(path.join(dir, 'befunde'), '2.pdf', changed);
    const after = await mailer(dir, ['show', String(send2), '--raw']);
    assert.equal(after.code, 1);
    assert.equal(after.stdout, '');
    assert.match(after.stderr, /2\.pdf .*changed since it was sent/);

    // A re-target attaches the file as it is now, and says it changed.
    const moved = await mailer(dir, ['retarget', String(send2), '--to', 'joerg.neu@example.org', '--smtp', server.url]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stderr, /2\.pdf changed since the mail was first sent/);
    const again = await attachmentsOf(server.messages.find((m) => m.to[0] === 'joerg.neu@example.org')!);
    assert.equal(sha(again[0].content), sha(changed));
  } finally {
    await server.close();
  }
});

test('an Attachment: path that leaves the folder (.., absolute, a symlink out) is refused for that member; a non-ASCII name goes as RFC 2231', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer();
  try {
    const { dir } = await practice([
      ['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org'], ['4', 'Jörg Müller', 'joerg@example.org'],
    ], [], `Subject: Befund
From: Praxis <praxis@roth.example>
Attachment: {{datei}}

Guten Tag {{name}}
`);
    writeFile(dir, 'patienten.csv', membersCsv(['id', 'name', 'email', 'datei'], [
      ['1', 'Anna', 'anna@example.org', '../../etc/passwd'],
      ['2', 'Ben', 'ben@example.org', 'befunde/link.pdf'],
      ['3', 'Cem', 'cem@example.org', '/etc/passwd'],
      ['4', 'Jörg Müller', 'joerg@example.org', 'befunde/Befund_Müller.pdf'],
    ]));
    assert.ok((await mailer(dir, ['import', 'patienten.csv'])).code <= 1);
    writeFile(path.dirname(dir), `${path.basename(dir)}-geheim.txt`, 'not for patients');
    fs.symlinkSync(path.join(path.dirname(dir), `${path.basename(dir)}-geheim.txt`), path.join(dir, 'befunde', 'link.pdf'));
    const pdf = crypto.randomBytes(5_000);
    writeFile(path.join(dir, 'befunde'), 'Befund_Müller.pdf', pdf);

    const r = await mailer(dir, ['send', 'befund.txt', '--smtp', server.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).byReason, { 'attachment-path': 3 });
    assert.equal(server.messages.length, 1);
    assert.equal(server.messages[0].to[0], 'joerg@example.org');
    const text = server.messages[0].raw.toString('latin1');
    assert.match(text, /filename\*0\*=utf-8''Befund_M%C3%BCller\.pdf/);
    const [attached] = await attachmentsOf(server.messages[0]);
    assert.equal(attached.filename, 'Befund_Müller.pdf');
    assert.equal(sha(attached.content), sha(pdf));
    const log = JSON.parse((await mailer(dir, ['log', '--status', 'skipped', '--json'])).stdout) as any[];
    assert.deepEqual(log.map((s) => s.member).sort(), ['1', '2', '3']);
    for (const s of log) assert.match(s.reason, /leads outside the template's folder/);
  } finally {
    await server.close();
  }
});

test('a 12 MB file makes the mail too-large (default maxMessageBytes): listed by the dry run and the test send, nothing of it sent, exit 1', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer();
  try {
    const { dir } = await practice([['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']], ['1']);
    writeFile(path.join(dir, 'befunde'), '2.pdf', Buffer.alloc(12_000_000, 7));
    const dry = JSON.parse((await mailer(dir, ['send', 'befund.txt', '--dry-run', '--json'])).stdout);
    assert.deepEqual(dry.skippedMembers.map((s: any) => [s.member, s.category]), [['2', 'too-large']]);
    assert.match(dry.skippedMembers[0].reason, /over maxMessageBytes 10000000/);

    const tested = await mailer(dir, ['send', 'befund.txt', '--test', '--test-to', 'office@roth.example', '--smtp', server.url, '--json']);
    assert.equal(tested.code, 1, tested.stderr);
    assert.deepEqual(JSON.parse(tested.stdout).byReason, { 'too-large': 1 });
    assert.equal(server.messages.length, 1);

    const r = await mailer(dir, ['send', 'befund.txt', '--smtp', server.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).byReason, { 'too-large': 1 });
    assert.deepEqual(server.messages.slice(1).map((m) => m.to[0]), ['anna@example.org']);
  } finally {
    await server.close();
  }
});

/** A self-signed certificate for 127.0.0.1, made now (openssl), trusted by the mailer process through NODE_EXTRA_CA_CERTS. */
function testCertificate(dir: string): { key: Buffer; cert: Buffer; certFile: string } {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), certFile };
}

test('requireTls: a server without STARTTLS is refused before anything is sent (exit 3, naming it and the setting); one with STARTTLS sends', { timeout: 60_000 }, async () => {
  const { dir } = await practice([['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']], ['1', '2']);
  writeFile(dir, 'mailer.json', JSON.stringify({ requireTls: true }));
  const plain = await startSmtpServer();
  try {
    const r = await mailer(dir, ['send', 'befund.txt', '--smtp', plain.url]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`requireTls.*${plain.url.replace(/[/.]/g, '\\$&')}.*offers no TLS`));
    assert.equal(plain.messages.length, 0);
  } finally {
    await plain.close();
  }
  const certDir = tempDir();
  const { key, cert, certFile } = testCertificate(certDir);
  const tls = await startSmtpServer({ tls: { key, cert } });
  try {
    // the mailing of the refused run is still queued: it goes now, over TLS
    const r = await mailer(dir, ['send', '--resume', '1', '--smtp', tls.url], { NODE_EXTRA_CA_CERTS: certFile });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(tls.messages.length, 2);
    assert.ok(tls.messages.every((m) => m.secure), 'every mail came over TLS');
  } finally {
    await tls.close();
  }
});

test('retry attaches the file as it is now and says it changed since the mail was refused; show --raw then gives the retried mail', { timeout: 60_000 }, async () => {
  const rejectData: Record<string, string> = { 'ben@example.org': '451 4.7.1 try again later' };
  const server = await startSmtpServer({ rejectData });
  try {
    const { dir, files } = await practice([['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']], ['1', '2']);
    const first = await mailer(dir, ['send', 'befund.txt', '--smtp', server.url, '--json']);
    assert.equal(first.code, 1, first.stderr);
    assert.equal(JSON.parse(first.stdout).deferred, 1);
    const corrected = Buffer.concat([files['2'], Buffer.from('korrigiert')]);
    writeFile(path.join(dir, 'befunde'), '2.pdf', corrected);
    delete rejectData['ben@example.org'];
    const r = await mailer(dir, ['retry', '--deferred', '--smtp', server.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /2\.pdf changed since the mail was first sent; the current file was attached/);
    const received = server.messages.find((m) => m.to[0] === 'ben@example.org')!;
    assert.equal(sha((await attachmentsOf(received))[0].content), sha(corrected));
    const log = JSON.parse((await mailer(dir, ['log', '--member', '2', '--json'])).stdout) as any[];
    const raw = await mailer(dir, ['show', String(log[0].id), '--raw']);
    assert.equal(raw.code, 0, raw.stderr);
    assert.ok(raw.stdoutBytes.equals(received.raw));
  } finally {
    await server.close();
  }
});

test('a mailing sent with --at has every file looked at when its first run starts: the members whose files are missing are skipped at once, though the run may hand over only one mail', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer();
  try {
    const { dir } = await practice([['1', 'Anna Berg', 'anna@example.org'], ['2', 'Ben Roth', 'ben@example.org'], ['3', 'Cem Kaya', 'cem@example.org']], ['2']);
    const scheduled = await mailer(dir, ['send', 'befund.txt', '--at', '2026-12-01T09:00', '--json'], { MAILER_NOW: '2026-12-01T08:00:00Z' });
    assert.equal(scheduled.code, 0, scheduled.stderr);
    const r = await mailer(dir, ['run', '--smtp', server.url, '--max', '1'], { MAILER_NOW: '2026-12-01T09:30:00Z' });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(server.messages.map((m) => m.to), [['ben@example.org']]);
    const skipped = JSON.parse((await mailer(dir, ['log', '--status', 'skipped', '--json'])).stdout) as { member: string; category: string }[];
    assert.deepEqual(skipped.map((s) => [s.member, s.category]).sort(), [['1', 'attachment-missing'], ['3', 'attachment-missing']]);
  } finally {
    await server.close();
  }
});
