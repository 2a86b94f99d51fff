import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AccessTokens, TokenError } from '../../src/mail/oauth2.js';
import { resolveSettings } from '../../src/config/settings.js';
import { MailerError } from '../../src/errors.js';
import { startTokenEndpoint } from '../support/oauth2.js';

test('access tokens: reused while valid, renewed before they expire, renewed on request (a refused login), one request for many at once', async () => {
  const endpoint = await startTokenEndpoint();
  try {
    endpoint.expiresIn = 3600;
    let now = 1_000_000;
    const tokens = new AccessTokens({ tokenUrl: endpoint.tokenUrl, clientId: endpoint.clientId, user: 'u@example.org', clientSecret: endpoint.clientSecret, refreshToken: endpoint.refreshToken, refreshTokenFromFile: false, tokenFile: '/nonexistent' }, () => now);
    const [a, b, c] = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);
    assert.equal(endpoint.grants, 1);
    assert.ok(a === b && b === c);
    now += 3600_000 - 5 * 60_000 - 1;
    assert.equal(await tokens.token(), a, 'still more than five minutes to go: the same token');
    now += 2;
    const renewed = await tokens.token();
    assert.notEqual(renewed, a, 'five minutes before expiry: a new token');
    assert.equal(endpoint.grants, 2);
    const forced = await tokens.token(true);
    assert.notEqual(forced, renewed);
    assert.equal(endpoint.grants, 3);
    // Every token it saw is masked, alone, in base64 and inside an XOAUTH2 string.
    const xoauth2 = Buffer.from(`user=u@example.org\x01auth=Bearer ${a}\x01\x01`).toString('base64');
    assert.equal(tokens.mask(`x ${a} ${Buffer.from(forced).toString('base64')} ${xoauth2} ${endpoint.refreshToken} ${endpoint.clientSecret}`), 'x *** *** *** *** ***');

    // A short-lived token (60 s) is renewed at half its life.
    endpoint.expiresIn = 60;
    const short = await tokens.token(true);
    now += 29_000;
    assert.equal(await tokens.token(), short);
    now += 2_000;
    assert.notEqual(await tokens.token(), short);

    // A busy endpoint (503) is asked again next time; only a revoked grant is its last word.
    endpoint.busy = 1;
    await assert.rejects(tokens.token(true), (err: unknown) => err instanceof TokenError && err.problem === 'refused');
    assert.ok(await tokens.token(true), 'asked again, it answers');

    endpoint.revoked.add(endpoint.refreshToken);
    await assert.rejects(tokens.token(true), (err: unknown) => err instanceof TokenError && err.problem === 'invalid_grant' && /AADSTS70000/.test(err.message));
    // The refusal holds for the run: the mailbox and each server are told without asking again.
    const grants = endpoint.grants;
    await assert.rejects(tokens.token(true), (err: unknown) => err instanceof TokenError && err.problem === 'invalid_grant');
    assert.equal(endpoint.grants, grants, 'no second request after the refusal');
  } finally {
    await endpoint.close();
  }
});

test('oauth2 settings: secrets come from the environment or the token file, never from mailer.json', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-oauth2-'));
  const config = path.join(dir, 'mailer.json');
  const base = { tokenUrl: 'https://login.example.org/token', clientId: 'c', user: 'u@example.org' };
  fs.writeFileSync(config, JSON.stringify({ oauth2: { ...base, refreshToken: 'x' } }));
  assert.throws(() => resolveSettings({ config }, {}, dir), (err: unknown) => err instanceof MailerError && /unknown key "refreshToken"/.test(err.message) && /MAILER_OAUTH2_REFRESH_TOKEN/.test(err.hint ?? ''));
  fs.writeFileSync(config, JSON.stringify({ oauth2: { tokenUrl: base.tokenUrl, clientId: 'c' } }));
  assert.throws(() => resolveSettings({ config }, {}, dir), /"oauth2" needs "user"/);
  fs.writeFileSync(config, JSON.stringify({ oauth2: base }));
  const fromEnv = resolveSettings({ config }, { MAILER_OAUTH2_REFRESH_TOKEN: 'rt-env', MAILER_OAUTH2_CLIENT_SECRET: 'cs' }, dir).oauth2!;
  assert.deepEqual([fromEnv.refreshToken, fromEnv.refreshTokenFromFile, fromEnv.clientSecret, fromEnv.tokenFile], ['rt-env', false, 'cs', path.join(dir, 'mailer.db.oauth2.json')]);
  fs.writeFileSync(path.join(dir, 'mailer.db.oauth2.json'), JSON.stringify({ refreshToken: 'rt-file' }));
  const fromFile = resolveSettings({ config }, {}, dir).oauth2!;
  assert.deepEqual([fromFile.refreshToken, fromFile.refreshTokenFromFile], ['rt-file', true]);
  fs.writeFileSync(config, JSON.stringify({ bounceMailbox: 'pop3://x@y' }));
  assert.throws(() => resolveSettings({ config }, {}, dir), /bounceMailbox "pop3:\/\/x@y" is not an IMAP URL/);
});
