import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { INVITATION, mailer, membersCsv, openDb, tempDir, writeFile, type CliResult } from '../support/cli.js';
import { closedPort, startSmtpServer, type TestServer } from '../support/smtp.js';
import { startTokenEndpoint, type TokenEndpoint } from '../support/oauth2.js';

const USER = 'verein@verein.example';
const members = [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org']];

async function clubFolder(endpoint: TokenEndpoint, server: TestServer, oauth2: object = {}) {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ smtp: server.url, oauth2: { tokenUrl: endpoint.tokenUrl, clientId: endpoint.clientId, user: USER, deviceUrl: endpoint.deviceUrl, ...oauth2 } }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  return dir;
}

const secrets = (e: TokenEndpoint, refreshToken = e.refreshToken) => ({ MAILER_OAUTH2_CLIENT_SECRET: e.clientSecret, MAILER_OAUTH2_REFRESH_TOKEN: refreshToken });

/** Every byte a command printed and every byte of the database (and its WAL): no token in any of them. */
function assertNoToken(e: TokenEndpoint, dir: string, outputs: CliResult[]): void {
  assert.ok(e.issued.length > 0, 'tokens were handed out');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('mailer.db') && !f.endsWith('.oauth2.json')).map((f) => fs.readFileSync(path.join(dir, f)));
  const texts = [...outputs.flatMap((r) => [r.stdout, r.stderr]).map((t) => Buffer.from(t)), ...files];
  for (const token of [...e.issued, e.refreshToken, e.clientSecret]) {
    for (const form of [token, Buffer.from(token).toString('base64'), Buffer.from(`user=${USER}\x01auth=Bearer ${token}\x01\x01`).toString('base64')]) {
      assert.ok(texts.every((t) => !t.includes(form)), `a secret (${token.slice(0, 3)}…) was printed or stored`);
    }
  }
}

test('XOAUTH2: a send logs in with a fetched access token; one refused as expired is renewed once and the send goes on; no token in any output or database byte', async () => {
  const endpoint = await startTokenEndpoint();
  const server = await startSmtpServer({ xoauth2: { valid: endpoint.valid, user: USER } });
  try {
    const dir = await clubFolder(endpoint, server);
    const sent = await mailer(dir, ['send', 'invitation.txt', '--json'], secrets(endpoint));
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(JSON.parse(sent.stdout).sent, 3);
    assert.equal(server.messages.length, 3);
    assert.equal(endpoint.grants, 1, 'the connections of one run share one access token');

    // The next token handed out is dead at the server before its time: 334, a new token, the send goes on.
    endpoint.issueDead = 1;
    const again = await mailer(dir, ['send', 'invitation.txt', '--member', '1', '--json'], secrets(endpoint));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).sent, 1);
    assert.equal(endpoint.grants, 3, 'one token at the start, one more after the refusal');
    assert.equal(server.messages.length, 4);

    // A server that refuses a dead token outright (535, no 334 challenge): one new token, one more try.
    const refusing = await startSmtpServer({ xoauth2: { valid: endpoint.valid, user: USER, refuseWith535: true } });
    endpoint.issueDead = 1;
    const third = await mailer(dir, ['send', 'invitation.txt', '--member', '2', '--smtp', refusing.url, '--json'], secrets(endpoint));
    await refusing.close();
    assert.equal(third.code, 0, third.stderr);
    assert.equal(refusing.messages.length, 1);
    assert.equal(endpoint.grants, 5);

    const log = await mailer(dir, ['log', '--json']);
    const show = await mailer(dir, ['show', '1']);
    assertNoToken(endpoint, dir, [sent, again, third, log, show]);
  } finally {
    await server.close();
    await endpoint.close();
  }
});

test('XOAUTH2: a revoked refresh token stops send and run with exit 3 naming the token step, the mails stay queued; check shows the step', async () => {
  const endpoint = await startTokenEndpoint();
  const server = await startSmtpServer({ xoauth2: { valid: endpoint.valid, user: USER, echoTokenOnFailure: true } });
  try {
    const dir = await clubFolder(endpoint, server);
    const good = await mailer(dir, ['check'], secrets(endpoint));
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /ok {4} {2}OAuth2 token: fetched from http:\/\/127\.0\.0\.1:\d+\/token for verein@verein\.example\n\s+ok {4} {2}login with XOAUTH2: as verein@verein\.example/);

    endpoint.revoked.add(endpoint.refreshToken);
    const send = await mailer(dir, ['send', 'invitation.txt'], secrets(endpoint));
    assert.equal(send.code, 3, send.stderr);
    assert.match(send.stderr, /OAuth2 token step failed: the OAuth2 token endpoint http:\/\/127\.0\.0\.1:\d+\/token refused the refresh token of verein@verein\.example \(invalid_grant/);
    assert.match(send.stderr, /mailer auth login/);
    const run = await mailer(dir, ['run'], secrets(endpoint));
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /OAuth2 token step failed: .*invalid_grant/);
    const db = openDb(dir);
    assert.deepEqual(db.prepare('SELECT status, count(*) AS n FROM sends GROUP BY status').all(), [{ status: 'queued', n: 3 }]);
    db.close();
    assert.equal(server.messages.length, 0);

    const revoked = await mailer(dir, ['check'], secrets(endpoint));
    assert.equal(revoked.code, 3);
    assert.match(revoked.stdout, /FAILED {2}OAuth2 token: invalid_grant: /);
    assert.match(revoked.stdout, /likely cause: the refresh token was revoked or has expired/);
    assert.doesNotMatch(revoked.stdout, /login with XOAUTH2/);

    const port = await closedPort();
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: server.url, oauth2: { tokenUrl: `http://127.0.0.1:${port}/token`, clientId: endpoint.clientId, user: USER } }));
    const unreachable = await mailer(dir, ['check', '--json'], secrets(endpoint));
    assert.equal(unreachable.code, 3);
    const step = JSON.parse(unreachable.stdout)[0].steps.find((s: { step: string }) => s.step === 'OAuth2 token');
    assert.equal(step.ok, false);
    assert.match(step.detail, /^unreachable: the OAuth2 token endpoint http:\/\/127\.0\.0\.1:\d+\/token cannot be reached \(ECONNREFUSED\)/);

    // A server that echoes the token it refused: masked before anything is printed or stored.
    endpoint.revoked.clear();
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: server.url, oauth2: { tokenUrl: endpoint.tokenUrl, clientId: endpoint.clientId, user: USER } }));
    endpoint.issueDead = 2;
    const echoed = await mailer(dir, ['send', '--resume', '1'], secrets(endpoint));
    assert.equal(echoed.code, 3, echoed.stderr);
    assert.match(echoed.stderr, /token \*\*\* not accepted/);
    assertNoToken(endpoint, dir, [good, send, run, revoked, unreachable, echoed, await mailer(dir, ['log', '--json'])]);
  } finally {
    await server.close();
    await endpoint.close();
  }
});

test('auth login: the device-code flow (pending, slow_down) stores the refresh token in a file only its owner can read, and sends use it', async () => {
  const endpoint = await startTokenEndpoint();
  const server = await startSmtpServer({ xoauth2: { valid: endpoint.valid, user: USER } });
  const umask = process.umask(0o022);
  try {
    const dir = await clubFolder(endpoint, server);
    endpoint.devicePolls = ['authorization_pending', 'slow_down', 'authorization_pending'];
    const started = Date.now();
    const login = await mailer(dir, ['auth', 'login'], { MAILER_OAUTH2_CLIENT_SECRET: endpoint.clientSecret });
    assert.equal(login.code, 0, login.stderr);
    assert.ok(Date.now() - started >= 5000, 'slow_down adds 5 s to the polling interval (RFC 8628 3.5)');
    assert.match(login.stderr, /open http:\/\/127\.0\.0\.1\/verify and enter the code WDJB-MJHT/);
    const file = path.join(dir, 'mailer.db.oauth2.json');
    assert.match(login.stdout, /signed in as verein@verein\.example: the refresh token is in .*mailer\.db\.oauth2\.json/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).refreshToken, endpoint.deviceRefreshToken);
    assert.ok(!login.stdout.includes(endpoint.deviceRefreshToken) && !login.stderr.includes(endpoint.deviceRefreshToken));

    const sent = await mailer(dir, ['send', 'invitation.txt', '--json'], { MAILER_OAUTH2_CLIENT_SECRET: endpoint.clientSecret });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(JSON.parse(sent.stdout).sent, 3);

    endpoint.devicePolls = ['authorization_pending', 'expired_token'];
    const expired = await mailer(dir, ['auth', 'login'], { MAILER_OAUTH2_CLIENT_SECRET: endpoint.clientSecret });
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /the code WDJB-MJHT expired before the sign-in was completed/);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).refreshToken, endpoint.deviceRefreshToken, 'the file kept the token it had');
  } finally {
    process.umask(umask);
    await server.close();
    await endpoint.close();
  }
});
