import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings, type SettingsFlags } from '../../src/config/settings.js';

/** A folder with a mailer.json, as a user's working folder. */
function folderWithConfig(config: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  fs.writeFileSync(path.join(dir, 'mailer.json'), JSON.stringify(config));
  return dir;
}

const FILE = {
  smtp: 'smtp://file.example:25', from: 'file@example.org', replyTo: 'file-reply@example.org', testTo: 'file-test@example.org',
  rate: '10/s', concurrency: 2, reportTo: 'file-report@example.org', outbox: 'file-outbox', db: 'file.db',
};
const ENV = {
  MAILER_SMTP_URL: 'smtp://env.example:25', MAILER_FROM: 'env@example.org', MAILER_REPLY_TO: 'env-reply@example.org', MAILER_TEST_TO: 'env-test@example.org',
  MAILER_RATE: '20/s', MAILER_CONCURRENCY: '3', MAILER_REPORT_TO: 'env-report@example.org', MAILER_OUTBOX: 'env-outbox', MAILER_DB: 'env.db',
};
const FLAGS: SettingsFlags = {
  smtp: ['smtp://flag.example:25'], from: 'flag@example.org', replyTo: 'flag-reply@example.org', testTo: 'flag-test@example.org',
  rate: '30/s', concurrency: '4', reportTo: 'flag-report@example.org', outbox: 'flag-outbox', db: 'flag.db',
};

/** The settings a user can give three ways, as resolved, with paths made relative to `dir`. */
function chosen(dir: string, flags: SettingsFlags, env: NodeJS.ProcessEnv) {
  const s = resolveSettings(flags, env, dir);
  return {
    smtp: s.smtp, from: s.from, replyTo: s.replyTo, testTo: s.testTo, rate: s.rate, concurrency: s.concurrency,
    reportTo: s.reportTo, outbox: path.relative(dir, s.outbox), db: path.relative(dir, s.db),
  };
}

test('flags beat environment variables beat the settings file, key by key', () => {
  const dir = folderWithConfig(FILE);
  assert.deepEqual(chosen(dir, {}, {}), {
    smtp: ['smtp://file.example:25'], from: 'file@example.org', replyTo: 'file-reply@example.org', testTo: 'file-test@example.org',
    rate: '10/s', concurrency: 2, reportTo: 'file-report@example.org', outbox: 'file-outbox', db: 'file.db',
  });
  assert.deepEqual(chosen(dir, {}, ENV), {
    smtp: ['smtp://env.example:25'], from: 'env@example.org', replyTo: 'env-reply@example.org', testTo: 'env-test@example.org',
    rate: '20/s', concurrency: 3, reportTo: 'env-report@example.org', outbox: 'env-outbox', db: 'env.db',
  });
  assert.deepEqual(chosen(dir, FLAGS, ENV), {
    smtp: ['smtp://flag.example:25'], from: 'flag@example.org', replyTo: 'flag-reply@example.org', testTo: 'flag-test@example.org',
    rate: '30/s', concurrency: 4, reportTo: 'flag-report@example.org', outbox: 'flag-outbox', db: 'flag.db',
  });
  // One flag wins over its own key only.
  const mixed = chosen(dir, { from: 'flag@example.org' }, { MAILER_TEST_TO: 'env-test@example.org' });
  assert.deepEqual([mixed.from, mixed.testTo, mixed.replyTo], ['flag@example.org', 'env-test@example.org', 'file-reply@example.org']);
});

test('without a settings file: the defaults, ./mailer.db and ./outbox, and no server (the outbox)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  const s = resolveSettings({}, {}, dir);
  assert.deepEqual([s.configFile, s.smtp, path.relative(dir, s.db), path.relative(dir, s.outbox), s.concurrency], [null, [], 'mailer.db', 'outbox', undefined]);
});

test('paths in a settings file named by --config are relative to that file, not to the working folder', () => {
  const dir = folderWithConfig({});
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  fs.writeFileSync(path.join(elsewhere, 'footer.txt'), 'Verein e.V.\n');
  fs.writeFileSync(path.join(elsewhere, 'other.json'), JSON.stringify({ db: 'state.db', outbox: 'out', footer: 'footer.txt' }));
  const s = resolveSettings({ config: path.join(elsewhere, 'other.json') }, {}, dir);
  assert.deepEqual([s.db, s.outbox, s.footerText], [path.join(elsewhere, 'state.db'), path.join(elsewhere, 'out'), 'Verein e.V.']);
});

test('several servers: repeated --smtp, a list in the file, or a space-separated $MAILER_SMTP_URL', () => {
  const dir = folderWithConfig({ smtp: ['smtp://a.example:25', 'smtp://b.example:25'] });
  assert.deepEqual(resolveSettings({}, {}, dir).smtp, ['smtp://a.example:25', 'smtp://b.example:25']);
  assert.deepEqual(resolveSettings({}, { MAILER_SMTP_URL: 'smtp://c.example:25 smtp://d.example:25' }, dir).smtp, ['smtp://c.example:25', 'smtp://d.example:25']);
  assert.deepEqual(resolveSettings({ smtp: ['smtp://e.example:25', 'smtp://f.example:25'] }, {}, dir).smtp, ['smtp://e.example:25', 'smtp://f.example:25']);
});

test('the password comes from $MAILER_SMTP_PASSWORD only, never from the settings file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  fs.writeFileSync(path.join(dir, 'mailer.json'), JSON.stringify({ password: 'secret' }));
  assert.throws(() => resolveSettings({}, {}, dir), /unknown key "password"/);
  assert.equal(resolveSettings({}, { MAILER_SMTP_PASSWORD: 'from-env' }, folderWithConfig({})).smtpPassword, 'from-env');
});

test('maxMessageBytes: 10,000,000 unless the settings file or $MAILER_MAX_MESSAGE_BYTES says otherwise; a bad value is refused', () => {
  const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  assert.equal(resolveSettings({}, {}, plain).maxMessageBytes, 10_000_000);
  const dir = folderWithConfig({ maxMessageBytes: 5_000_000 });
  assert.equal(resolveSettings({}, {}, dir).maxMessageBytes, 5_000_000);
  assert.equal(resolveSettings({}, { MAILER_MAX_MESSAGE_BYTES: '2000000' }, dir).maxMessageBytes, 2_000_000);
  for (const bad of ['10MB', 0, -1, 2.5]) {
    assert.throws(() => resolveSettings({}, {}, folderWithConfig({ maxMessageBytes: bad })), /"maxMessageBytes" must be a whole number/, String(bad));
  }
});

test('track, verp and requireTls take true or false; anything else is refused, not read as off', () => {
  assert.equal(resolveSettings({}, {}, folderWithConfig({ requireTls: true })).requireTls, true);
  assert.equal(resolveSettings({}, {}, folderWithConfig({})).requireTls, false);
  assert.equal(resolveSettings({}, {}, folderWithConfig({})).track, true);
  for (const [key, bad] of [['requireTls', 'yes'], ['requireTls', 1], ['track', 'false'], ['verp', null]] as const) {
    assert.throws(() => resolveSettings({}, {}, folderWithConfig({ [key]: bad })), new RegExp(`"${key}" must be true or false`), `${key}: ${bad}`);
  }
});

test('dnsServers: a list of addresses with or without a port, or $MAILER_DNS_SERVERS; anything else is refused', () => {
  const rows: [unknown, string[] | undefined | RegExp][] = [
    [undefined, undefined],
    [['127.0.0.1:5353'], ['127.0.0.1:5353']],
    [['192.0.2.53', '[2001:db8::53]:53', '2001:db8::1'], ['192.0.2.53', '[2001:db8::53]:53', '2001:db8::1']],
    ['192.0.2.53', ['192.0.2.53']],
    [['dns.example:53'], /"dnsServers" must be a list of DNS server addresses such as \["192\.0\.2\.53", "127\.0\.0\.1:5353"\], not "dns\.example:53"/],
    [['127.0.0.1:70000'], /not "127\.0\.0\.1:70000"/],
    [[53], /not 53/],
    [[], /"dnsServers" must be a list/],
  ];
  for (const [value, want] of rows) {
    const dir = folderWithConfig(value === undefined ? {} : { dnsServers: value });
    if (want instanceof RegExp) assert.throws(() => resolveSettings({}, {}, dir), want, JSON.stringify(value));
    else assert.deepEqual(resolveSettings({}, {}, dir).dnsServers, want, JSON.stringify(value));
  }
  const dir = folderWithConfig({ dnsServers: ['192.0.2.53'] });
  assert.deepEqual(resolveSettings({}, { MAILER_DNS_SERVERS: '127.0.0.1:5353, 127.0.0.1:5354' }, dir).dnsServers, ['127.0.0.1:5353', '127.0.0.1:5354']);
});

test('retention: periods for messages and log, either left out; anything else refused with the key named', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  const withFile = (value: unknown) => {
    fs.writeFileSync(path.join(dir, 'mailer.json'), JSON.stringify({ retention: value }));
    return resolveSettings({}, {}, dir).retention;
  };
  assert.deepEqual(withFile({ messages: '90d', log: '2y' }), { messages: 90 * 86_400_000, log: 730 * 86_400_000 });
  assert.deepEqual(withFile({ log: '6w' }), { log: 42 * 86_400_000 });
  assert.deepEqual(resolveSettings({}, {}, fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'))).retention, {});
  assert.throws(() => withFile({ messages: 90 }), /"retention\.messages" must be a period/);
  assert.throws(() => withFile({ mails: '90d' }), /unknown key "mails"/);
  assert.throws(() => withFile('90d'), /"retention" must be an object/);
});

test('a damaged refresh-token file stops no command: it counts as no token (mailer auth login writes a new one)', () => {
  const oauth2 = { tokenUrl: 'https://login.example.org/token', clientId: 'c', user: 'verein@verein.example' };
  const dir = folderWithConfig({ oauth2 });
  const db = resolveSettings({}, {}, dir).db;
  fs.writeFileSync(`${db}.oauth2.json`, '{"refreshToken": "abc');
  assert.equal(resolveSettings({}, {}, dir).oauth2?.refreshToken, undefined);
  fs.writeFileSync(`${db}.oauth2.json`, JSON.stringify({ refreshToken: 'r-1' }));
  assert.equal(resolveSettings({}, {}, dir).oauth2?.refreshToken, 'r-1');
});
