import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { INVITATION, mailer, membersCsv, openDb, startServe, tempDir, writeFile } from '../support/cli.js';

/** `mailer serve` as a service: one line per request on stderr, and a clean stop on SIGTERM. */

const PUBLIC = 'https://mail.verein.example';
const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) "([A-Z]+) ([^" ]*)" (\d{3}|-) (\d+(?:\.\d)?)ms$/;

/** A folder whose two members got the invitation through the outbox, with publicUrl set; their unsubscribe values. */
async function invited() {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: PUBLIC, from: 'Verein <noreply@verein.example>' }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  const sent = await mailer(dir, ['send', 'invitation.txt']);
  assert.equal(sent.code, 0, sent.stderr);
  const values = fs.readdirSync(path.join(dir, 'outbox')).sort().map((f) => {
    const eml = fs.readFileSync(path.join(dir, 'outbox', f), 'utf8');
    return new RegExp(`^List-Unsubscribe: <${PUBLIC}/u/([A-Za-z0-9_-]+)>`, 'm').exec(eml)![1];
  });
  return { dir, values };
}

/** Opens a raw connection; `answer` resolves with all it got once the server closes it. */
function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  socket.on('data', (c) => got.push(c));
  const answer = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
    socket.on('error', () => undefined);
  });
  return { socket, answer, ready: new Promise<void>((resolve) => socket.once('connect', () => resolve())) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serve logs one line per request: time, client, method, the path with link values cut to 6 characters, status, ms; no key, no whole value, hostile paths escaped', async () => {
  const { dir, values } = await invited();
  const created = await mailer(dir, ['api-key', 'create', 'shop']);
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  const proc = await startServe(dir, ['--api']);
  const lines = () => proc.stderr.split('\n').filter((l) => LINE.test(l));
  try {
    assert.equal((await fetch(`${proc.base}/health`)).status, 200);
    assert.equal((await fetch(`${proc.base}/u/${values[0]}`)).status, 200);
    const oneClick = await fetch(`${proc.base}/u/${values[1]}?utm_source=${values[1]}`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(oneClick.status, 200);
    assert.equal((await fetch(`${proc.base}/api/send/1`, { headers: { Authorization: `Bearer ${key}` } })).status, 404);
    assert.equal((await fetch(`${proc.base}/api/send/1`, { headers: { Authorization: `Bearer ${key}x` } })).status, 401);
    // Behind the reverse proxy (a loopback peer), the client is the proxy's last X-Forwarded-For entry.
    assert.equal((await fetch(`${proc.base}/health`, { headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.7' } })).status, 200);
    assert.equal((await fetch(`${proc.base}/health`, { headers: { 'X-Forwarded-For': 'not-an-address' } })).status, 200);
    // A registration token where it does not belong is cut too; hostile and very long paths.
    assert.equal((await fetch(`${proc.base}/register/${values[0]}`)).status, 404);
    assert.equal((await fetch(`${proc.base}/%1B%5B31m%22quoted%22%0Afake`)).status, 404);
    const long = connect(proc.port);
    await long.ready;
    long.socket.end(`GET /${'a/'.repeat(4000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(await long.answer, /^HTTP\/1\.1 404/);
    const latin = connect(proc.port);
    await latin.ready;
    latin.socket.end(Buffer.concat([Buffer.from('GET /caf'), Buffer.from([0xe9, 0x80, 0x9b]), Buffer.from('"x\\y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
    // Bytes beyond ASCII in the target: refused by node's parser before any handler (one warning line).
    assert.match(await latin.answer, /^HTTP\/1\.1 400/);
    await sleep(100);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
  const logged = lines();
  assert.equal(logged.length, 10, proc.stderr);
  assert.match(proc.stderr, /^warning: bad request from 127\.0\.0\.1: 400 HPE_INVALID_URL$/m);
  const parsed = logged.map((l) => LINE.exec(l)!);
  const [health, page, post, apiFound, apiRefused, forwarded, notForwarded, misplaced, hostile, longPath] = parsed;
  assert.deepEqual([health[2], health[3], health[4], health[5]], ['127.0.0.1', 'GET', '/health', '200']);
  assert.ok(Math.abs(Date.parse(health[1]) - Date.now()) < 60_000, 'the time is now, in UTC');
  assert.deepEqual([page[3], page[4], page[5]], ['GET', `/u/${values[0].slice(0, 6)}…`, '200']);
  assert.deepEqual([post[3], post[4], post[5]], ['POST', `/u/${values[1].slice(0, 6)}…?…`, '200'], 'the query is left out');
  assert.deepEqual([apiFound[3], apiFound[4], apiFound[5]], ['GET', '/api/send/1', '404']);
  assert.equal(apiRefused[5], '401');
  assert.equal(forwarded[2], '203.0.113.7', 'the address the proxy added');
  assert.equal(notForwarded[2], '127.0.0.1', 'a header that names no address is not believed');
  assert.equal(misplaced[4], `/register/${values[0].slice(0, 6)}…`);
  assert.equal(hostile[4], '/%1B%5B31m%22quoted%22%0Afake', 'escapes stay escapes');
  assert.ok(longPath[4].length <= 202 && longPath[4].endsWith('…'), `a long path is cut: ${longPath[4].length}`);
  assert.ok(logged.every((l) => l.length < 300), 'every line is short');
  // Nothing that opens something: neither value whole, nor its random part, nor the API key.
  for (const secret of [...values, ...values.map((v) => v.slice(7)), key]) assert.ok(!proc.stderr.includes(secret), `${secret} in ${proc.stderr}`);
  // Whatever a client sends, every line of stderr is printable ASCII (the cut mark aside), and one line.
  for (const line of proc.stderr.split('\n')) assert.match(line, /^[\x20-\x7e…]*$/, JSON.stringify(line));
});

test('SIGTERM: serve takes no new connection, answers the request in hand (a body still coming in), closes the database and exits 0', async () => {
  const { dir, values } = await invited();
  const proc = await startServe(dir);
  const started = Date.now();
  // An idle kept-alive connection must not hold the stop up until its timeout.
  const idle = connect(proc.port);
  await idle.ready;
  idle.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  // The request in hand: a one-click unsubscribe whose body trickles in.
  const body = 'List-Unsubscribe=One-Click';
  const slow = connect(proc.port);
  await slow.ready;
  slow.socket.write(`POST /u/${values[0]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
  await sleep(300);
  proc.child.kill('SIGTERM');
  await sleep(500);
  assert.equal(proc.exited, false, `serve waits for the request in hand: ${proc.stderr}`);
  const refused = await fetch(`${proc.base}/health`).then(() => 'answered', (err) => String(err.cause?.code ?? err));
  assert.equal(refused, 'ECONNREFUSED', 'no new connection after SIGTERM');
  for (const c of body.slice(5)) {
    slow.socket.write(c);
    await sleep(20);
  }
  const answer = await slow.answer;
  assert.match(answer, /^HTTP\/1\.1 200/, answer.slice(0, 200));
  assert.match(answer, /Connection: close/i, 'the connection closes after the answer');
  const result = await Promise.race([proc.done, sleep(5_000).then(() => null)]);
  assert.ok(result, `serve exits soon after its last answer: ${proc.stderr}`);
  assert.equal(result!.code, 0, result!.stderr);
  assert.ok(Date.now() - started < 10_000, 'well within a service manager\'s stop timeout');
  assert.match(await idle.answer, /^HTTP\/1\.1 200/, 'the idle connection got its answer and was closed');
  assert.match(proc.stderr, new RegExp(`"POST /u/${values[0].slice(0, 6)}…" 200 `), 'the request is logged');
  assert.ok(!fs.existsSync(path.join(dir, 'mailer.db-wal')), 'the database was closed (its write-ahead log checkpointed and removed)');
  const db = openDb(dir);
  try {
    assert.deepEqual(db.prepare(`SELECT email FROM optouts`).all(), [{ email: 'anna@example.org' }], 'the unsubscribe answered during the stop is recorded');
  } finally {
    db.close();
  }
});
