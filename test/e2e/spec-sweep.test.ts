// Every flag and every operator of import, send, log, retry (and retarget, run, mailings,
// cancel) run once through the built CLI against a real SMTP server and a real database,
// asserting what came out: who got mail, which rows the log returns, which keys the JSON has.
// One folder and one server per block keeps the file fast.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { parse as parseCsv } from 'csv-parse/sync';
import { mailer, membersCsv, openDb, startMailer, tempDir, writeFile, type CliResult } from '../support/cli.js';
import { closedPort, startSmtpServer, type TestServer } from '../support/smtp.js';

const UTC = { TZ: 'UTC' };

function parsed(r: CliResult, what: string): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`${what}: no JSON on stdout (exit ${r.code}): ${r.stderr}`);
  }
}

/** Runs with --json and expects the given exit code. */
async function json(dir: string, args: string[], env: Record<string, string> = {}, code = 0): Promise<any> {
  const r = await mailer(dir, [...args, '--json'], { ...UTC, ...env });
  assert.equal(r.code, code, `mailer ${args.join(' ')} → exit ${r.code}: ${r.stderr}`);
  return parsed(r, `mailer ${args.join(' ')}`);
}

/** The recipients of the messages the server took since `from`, sorted. */
const rcpts = (server: TestServer, from: number) => server.messages.slice(from).flatMap((m) => m.to).sort();

/** Starts a command and notes when each new message reaches the server, for throttle checks. */
async function arrivals(server: TestServer, dir: string, args: string[], env: Record<string, string>) {
  const from = server.messages.length;
  const times: number[] = [];
  const timer = setInterval(() => {
    while (from + times.length < server.messages.length) times.push(Date.now());
  }, 5);
  const r = await startMailer(dir, args, { ...UTC, ...env }).done;
  clearInterval(timer);
  while (from + times.length < server.messages.length) times.push(Date.now());
  return { r, times, to: rcpts(server, from) };
}

async function serve(dir: string, port: number) {
  const proc = startMailer(dir, ['serve', '--port', String(port)], UTC);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start')), 10_000);
    proc.child.stderr!.on('data', (c: Buffer) => { if (c.toString().includes('listening on')) { clearTimeout(timer); resolve(); } });
  });
  return proc;
}

// The five blocks run side by side (each has its own folder, database and server); inside a
// block the steps run in order, as they build on each other.
describe('the flags of import, send, log, retry, retarget, run, mailings, cancel', { concurrency: true }, () => {

// The key column stays a member field too (`{{mitgliedsnr}}` in a template, `--where nr=5`).
describe('import: every flag', { concurrency: true }, () => {
  const dir = tempDir();
  const members = (db: string) => {
    const d = new Database(path.join(dir, db), { readonly: true });
    try {
      return (d.prepare('SELECT key, name, email, fields FROM members ORDER BY id').all() as any[])
        .map((m) => ({ key: m.key, name: m.name, email: m.email, ...JSON.parse(m.fields) }));
    } finally {
      d.close();
    }
  };
  const latin1 = (s: string) => Buffer.from(s, 'latin1');

  const rows: [string, string | Buffer, string[], object[]][] = [
    ['comma, detected', 'id,name,email\n1,Anna,anna@example.org\n', [], [{ key: '1', name: 'Anna', email: 'anna@example.org', id: '1' }]],
    ['semicolon, detected', 'id;name;email;ort\n1;Anna;anna@example.org;Köln\n', [], [{ key: '1', name: 'Anna', email: 'anna@example.org', ort: 'Köln', id: '1' }]],
    ['tab, detected', 'id\tname\temail\tort\n1\tAnna\tanna@example.org\tKöln\n', [], [{ key: '1', name: 'Anna', email: 'anna@example.org', ort: 'Köln', id: '1' }]],
    ['--delimiter ";" with commas in every value', 'id;name;email;note\n1;Meier, Anna;anna@example.org;a,b,c\n', ['--delimiter', ';'],
      [{ key: '1', name: 'Meier, Anna', email: 'anna@example.org', note: 'a,b,c', id: '1' }]],
    ['--delimiter ","', 'id,name,email,note\n1,Anna;Ben,anna@example.org,x;y\n', ['--delimiter', ','],
      [{ key: '1', name: 'Anna;Ben', email: 'anna@example.org', note: 'x;y', id: '1' }]],
    ['--delimiter tab', 'id\tname\temail\tnote\n1\tMeier; Anna\tanna@example.org\ta,b;c\n', ['--delimiter', 'tab'],
      [{ key: '1', name: 'Meier; Anna', email: 'anna@example.org', note: 'a,b;c', id: '1' }]],
    ['--delimiter "|"', 'id|name|email|note\n1|Meier, Anna|anna@example.org|a;b\n', ['--delimiter', '|'],
      [{ key: '1', name: 'Meier, Anna', email: 'anna@example.org', note: 'a;b', id: '1' }]],
    ['Windows-1252, detected', latin1('id;name;email\n1;J\xfcrgen Stra\xdfer;j@example.org\n'), [], [{ key: '1', name: 'Jürgen Straßer', email: 'j@example.org', id: '1' }]],
    ['--encoding windows-1252 (€ is 0x80 there)', Buffer.concat([latin1('id;name;email;preis\n1;J\xfcrgen;j@example.org;5 '), Buffer.from([0x80]), latin1('\n')]),
      ['--encoding', 'windows-1252'], [{ key: '1', name: 'Jürgen', email: 'j@example.org', preis: '5 €', id: '1' }]],
    ['--encoding utf-8', 'id;name;email\n1;Jürgen;j@example.org\n', ['--encoding', 'utf-8'], [{ key: '1', name: 'Jürgen', email: 'j@example.org', id: '1' }]],
    ['--encoding windows-1252 beats the detection of UTF-8', 'id;name;email\n1;Jürgen;j@example.org\n', ['--encoding', 'windows-1252'],
      [{ key: '1', name: 'JÃ¼rgen', email: 'j@example.org', id: '1' }]],
    ['UTF-8 BOM before the id header', '\uFEFFid;name;email\n7;Anna;anna@example.org\n', [], [{ key: '7', name: 'Anna', email: 'anna@example.org', id: '7' }]],
    ['no id column: the address is the key', 'name;email\nAnna;Anna@Example.org\n', [], [{ key: 'anna@example.org', name: 'Anna', email: 'anna@example.org' }]],
    ['--key', 'mitgliedsnr;name;email\nM-17;Anna;anna@example.org\n', ['--key', 'mitgliedsnr'], [{ key: 'M-17', name: 'Anna', email: 'anna@example.org', mitgliedsnr: 'M-17' }]],
    ['--email-column and --name-column', 'nr;Vollname;Adresse;email2\n5;Anna Meier;anna@example.org;x@example.org\n',
      ['--key', 'nr', '--email-column', 'Adresse', '--name-column', 'Vollname'],
      [{ key: '5', name: 'Anna Meier', email: 'anna@example.org', nr: '5', email2: 'x@example.org' }]],
    ['default header e-mail', 'id;name;e-mail\n1;Anna;anna@example.org\n', [], [{ key: '1', name: 'Anna', email: 'anna@example.org', id: '1' }]],
    ['default header mail', 'id;name;mail\n1;Anna;anna@example.org\n', [], [{ key: '1', name: 'Anna', email: 'anna@example.org', id: '1' }]],
  ];
  rows.forEach(([what, content, args, expected], i) => {
    test(`import ${what}`, async () => {
      writeFile(dir, `f${i}.csv`, content);
      const r = await json(dir, ['import', `f${i}.csv`, '--db', `f${i}.db`, ...args]);
      assert.equal(r.inserted, 1, JSON.stringify(r));
      assert.deepEqual(members(`f${i}.db`), expected);
    });
  });

  test('import --json: read, inserted, updated, unchanged, withoutEmail, rejected with line and reason', async () => {
    writeFile(dir, 'j1.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']]));
    const first = await json(dir, ['import', 'j1.csv', '--db', 'j.db']);
    assert.deepEqual(Object.keys(first).filter((k) => k !== 'invalidEmail'), ['read', 'inserted', 'updated', 'unchanged', 'withoutEmail', 'rejected', 'warned', 'warnings']);
    assert.deepEqual(first, { read: 2, inserted: 2, updated: 0, unchanged: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], warned: 0, warnings: [] });
    // line 4: Cem has no address; line 5 has a column too many, line 6 no key, line 7 a quote
    // never closed; Ben changed, Anna did not.
    writeFile(dir, 'j2.csv', 'id;name;email\n1;Anna;anna@example.org\n2;Ben;ben.neu@example.org\n3;Cem;\n4;Dora;dora@example.org;zu viel\n;Fritz;f@example.org\n7;"Gina;g@example.org\n');
    const second = await json(dir, ['import', 'j2.csv', '--db', 'j.db'], {}, 1);
    assert.deepEqual({ ...second, rejected: second.rejected.map((x: any) => x.line) },
      { read: 6, inserted: 1, updated: 1, unchanged: 1, withoutEmail: 1, invalidEmail: 0, rejected: [5, 6, 7], warned: 0, warnings: [] }, JSON.stringify(second));
    assert.deepEqual(second.rejected.map((x: any) => /header has 3|no member id|quote/.test(x.reason)), [true, true, true], JSON.stringify(second.rejected));
    assert.deepEqual(members('j.db').map((m) => [m.key, m.email]), [['1', 'anna@example.org'], ['2', 'ben.neu@example.org'], ['3', null]]);
    const d = new Database(path.join(dir, 'j.db'), { readonly: true });
    const history = d.prepare(`SELECT a.email, a.replaced_at IS NOT NULL AS replaced FROM addresses a JOIN members m ON m.id = a.member_id WHERE m.key = '2' ORDER BY a.id`).all();
    d.close();
    assert.deepEqual(history.map((h: any) => [h.email, h.replaced]), [['ben@example.org', 1]], 'the old address stays in the history');
  });
});

// ---------------------------------------------------------------------------------------------

describe('send: every selection, every operator, every flag', { concurrency: false }, () => {
  const dir = tempDir();
  let server: TestServer;
  let env: Record<string, string>;
  const who: Record<string, string> = {
    Anna: 'anna@example.org', Ben: 'ben@example.org', Cem: 'cem@other.example', Dora: 'dora@example.org', Eva: 'eva@other.example', Fritz: 'fritz@example.org',
  };
  const to = (...names: string[]) => names.map((n) => who[n]).sort();
  let trackingPort: number;

  before(async () => {
    server = await startSmtpServer();
    trackingPort = await closedPort();
    env = { MAILER_SMTP_URL: server.url };
    writeFile(dir, 'mailer.json', JSON.stringify({ testTo: 'test@example.org', publicUrl: `http://127.0.0.1:${trackingPort}` }));
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email', 'region', 'alter', 'plz'], [
      ['1', 'Anna', who.Anna, 'Nord', '34', '80331'],
      ['2', 'Ben', who.Ben, 'Süd', '9', '10115'],
      ['3', 'Cem', who.Cem, 'Nord', '52', '80469'],
      ['4', 'Dora', who.Dora, 'West', '45', '20095'],
      ['5', 'Eva', who.Eva, 'Süd', '27', '80999'],
      ['6', 'Fritz', who.Fritz, '', '61', '50667'],
    ]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 't.txt', 'Subject: Hallo {{name}}\nFrom: Verein <noreply@verein.example>\nType: info\n\nHallo {{name}}\n');
    writeFile(dir, 'r.txt', 'Subject: Region {{region}}\nFrom: Verein <noreply@verein.example>\nType: region\n\nHallo {{name}} aus {{region}}\n');
  });
  after(() => server.close());

  const where: [string[], string[]][] = [
    [['name=Anna'], to('Anna')],
    [['name!=Anna'], to('Ben', 'Cem', 'Dora', 'Eva', 'Fritz')],
    [['name~OR'], to('Dora')],
    [['name<C'], to('Anna', 'Ben')],
    [['name>D'], to('Dora', 'Eva', 'Fritz')],
    [['email=ben@example.org'], to('Ben')],
    [['email~other.example'], to('Cem', 'Eva')],
    [['email<c'], to('Anna', 'Ben')],
    [['region=Nord'], to('Anna', 'Cem')],
    [['region!=Nord'], to('Ben', 'Dora', 'Eva', 'Fritz')],
    [['region~ü'], to('Ben', 'Eva')],
    [['region>S'], to('Ben', 'Dora', 'Eva')],
    // a number on both sides compares as a number: 9 < 30 although "9" > "30"
    [['alter<30'], to('Ben', 'Eva')],
    [['alter>40'], to('Cem', 'Dora', 'Fritz')],
    [['region=Nord', 'alter>40'], to('Cem')],
    [['region=Süd', 'email~other'], to('Eva')],
  ];
  for (const [conds, expected] of where) {
    test(`send --where ${conds.join(' --where ')}`, async () => {
      const from = server.messages.length;
      const s = await json(dir, ['send', 't.txt', '--no-track', ...conds.flatMap((c) => ['--where', c])], env);
      assert.deepEqual(rcpts(server, from), expected);
      assert.deepEqual([s.selected, s.sent], [expected.length, expected.length]);
    });
  }

  test('send --member (id and address, repeatable) and --segment', async () => {
    let from = server.messages.length;
    await json(dir, ['send', 't.txt', '--member', '1', '--member', 'EVA@other.example'], env);
    assert.deepEqual(rcpts(server, from), to('Anna', 'Eva'));
    assert.equal((await mailer(dir, ['segment', 'save', 'nord', '--where', 'region=Nord', '--where', 'name!=Anna'])).code, 0);
    from = server.messages.length;
    await json(dir, ['send', 't.txt', '--segment', 'nord'], env);
    assert.deepEqual(rcpts(server, from), to('Cem'));
  });

  test('send --where refuses an unknown field and a condition without an operator; suppressed addresses are left out', async () => {
    const from = server.messages.length;
    for (const bad of ['farbe=rot', 'region']) {
      const r = await mailer(dir, ['send', 't.txt', '--where', bad], { ...UTC, ...env });
      assert.equal(r.code, 2, `--where ${bad}: ${r.stderr}`);
      assert.match(r.stderr, bad === 'region' ? /not a condition/ : /farbe/);
    }
    assert.equal((await mailer(dir, ['suppress', 'add', who.Cem, '--reason', 'Beschwerde'])).code, 0);
    const s = await json(dir, ['send', 't.txt', '--where', 'region=Nord'], env);
    assert.deepEqual([s.sent, s.skipped, s.byReason], [1, 1, { suppressed: 1 }]);
    assert.deepEqual(rcpts(server, from), to('Anna'));
    assert.equal((await mailer(dir, ['suppress', 'remove', who.Cem])).code, 0);
  });

  test('send summary --json has exactly the summary keys', async () => {
    const s = await json(dir, ['send', 't.txt', '--where', 'name=Ben'], env);
    assert.deepEqual(Object.keys(s), ['mailing', 'selected', 'sent', 'failed', 'deferred', 'skipped', 'queued', 'byReason']);
    assert.deepEqual({ ...s, mailing: 0 }, { mailing: 0, selected: 1, sent: 1, failed: 0, deferred: 0, skipped: 0, queued: 0, byReason: {} });
  });

  test('send --dry-run lists recipients and skips, sends nothing, changes nothing', async () => {
    const count = () => {
      const db = openDb(dir);
      try {
        return ['mailings', 'sends', 'members', 'events'].map((t) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as any).n);
      } finally {
        db.close();
      }
    };
    const before = count();
    const from = server.messages.length;
    const d = await json(dir, ['send', 'r.txt', '--dry-run'], env);
    assert.equal(d.dryRun, true);
    assert.deepEqual([d.selected, d.wouldSend, d.skipped], [6, 5, 1]);
    assert.deepEqual(d.recipients.map((x: any) => x.email).sort(), to('Anna', 'Ben', 'Cem', 'Dora', 'Eva'));
    assert.deepEqual(d.skippedMembers.map((x: any) => x.member), ['6']);
    assert.match(JSON.stringify(d.skippedMembers[0]), /region/);
    assert.equal(server.messages.length, from, 'nothing sent');
    assert.deepEqual(count(), before, 'nothing recorded');
  });

  test('send --allow-empty sends to the member whose used field is empty', async () => {
    let from = server.messages.length;
    const skipped = await json(dir, ['send', 'r.txt', '--where', 'name=Fritz'], env);
    assert.deepEqual([skipped.sent, skipped.skipped, Object.keys(skipped.byReason)], [0, 1, ['empty-field']]);
    assert.equal(server.messages.length, from);
    from = server.messages.length;
    const sent = await json(dir, ['send', 'r.txt', '--where', 'name=Fritz', '--allow-empty'], env);
    assert.deepEqual([sent.sent, sent.skipped], [1, 0]);
    assert.deepEqual(rcpts(server, from), to('Fritz'));
  });

  test('send --test --test-to --limit: [TEST] mails to the test address, logged as test, not counted as sent', async () => {
    let from = server.messages.length;
    const t = await json(dir, ['send', 't.txt', '--test', '--test-to', 'ops@example.org', '--limit', '2'], env);
    assert.deepEqual(rcpts(server, from), ['ops@example.org', 'ops@example.org']);
    const subjects = await Promise.all(server.messages.slice(from).map(async (m) => (await simpleParser(m.raw)).subject));
    assert.deepEqual(subjects.sort(), ['[TEST] Hallo Anna', '[TEST] Hallo Ben']);
    const log = await json(dir, ['log', '--mailing', String(t.mailing)]);
    assert.deepEqual(log.map((s: any) => [s.member, s.email, s.test]).sort(), [['1', 'ops@example.org', true], ['2', 'ops@example.org', true]]);
    // default --limit 5, default address from the settings (testTo)
    from = server.messages.length;
    const t5 = await json(dir, ['send', 't.txt', '--test'], env);
    assert.deepEqual(rcpts(server, from), Array(5).fill('test@example.org'));
    // not sent to the members: no follow-up of it, no counts in stats
    const follow = await mailer(dir, ['send', 't.txt', '--not-opened', String(t5.mailing)], { ...UTC, ...env });
    assert.equal(follow.code, 2, follow.stderr);
    const stats = await json(dir, ['stats']);
    assert.ok(!stats.some((m: any) => m.mailing === t.mailing || m.mailing === t5.mailing), JSON.stringify(stats));
  });

  test('send --limit leaves the rest queued; --resume finishes it, nobody twice', async () => {
    let from = server.messages.length;
    const part = await json(dir, ['send', 't.txt', '--where', 'region!=Nord', '--limit', '2'], env);
    assert.deepEqual([part.selected, part.sent, part.queued], [4, 2, 2]);
    const first = rcpts(server, from);
    assert.equal(first.length, 2);
    from = server.messages.length;
    const rest = await json(dir, ['send', '--resume', String(part.mailing)], env);
    assert.deepEqual([rest.mailing, rest.sent, rest.queued], [part.mailing, 4, 0]);
    assert.deepEqual([...first, ...rcpts(server, from)].sort(), to('Ben', 'Dora', 'Eva', 'Fritz'));
  });

  test('send --rate spaces the mails', async () => {
    // One connection, and counted from the second mail: the first one's connection set-up
    // would blur the spacing.
    const { r, times, to: got } = await arrivals(server, dir, ['send', 't.txt', '--where', 'region!=Nord', '--rate', '2/s', '--concurrency', '1', '--no-track'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(got, to('Ben', 'Dora', 'Eva', 'Fritz'));
    assert.ok(times[3] - times[1] >= 700, `mails 2 to 4 at 2/s came ${times[3] - times[1]} ms apart`);
  });

  test('send --concurrency: one connection delivers one after another, three at once', async () => {
    const slow = await startSmtpServer({ delayMs: 1000 });
    try {
      const senv = { MAILER_SMTP_URL: slow.url };
      const one = await arrivals(slow, dir, ['send', 't.txt', '--where', 'region=Süd', '--concurrency', '1'], senv);
      assert.equal(one.r.code, 0, one.r.stderr);
      assert.deepEqual(one.to, to('Ben', 'Eva'));
      assert.ok(one.times[1] - one.times[0] >= 900, `concurrency 1: ${one.times[1] - one.times[0]} ms apart`);
      const three = await arrivals(slow, dir, ['send', 't.txt', '--member', '3', '--member', '4', '--member', '6', '--concurrency', '3'], senv);
      assert.equal(three.r.code, 0, three.r.stderr);
      assert.deepEqual(three.to, to('Cem', 'Dora', 'Fritz'));
      assert.ok(three.times[2] - three.times[0] < 700, `concurrency 3: ${three.times[2] - three.times[0]} ms from first to last`);
    } finally {
      await slow.close();
    }
  });

  test('send --at schedules; run sends it when due', async () => {
    const from = server.messages.length;
    const s = await json(dir, ['send', 't.txt', '--where', 'name=Anna', '--at', '2026-12-01T09:00'], { ...env, MAILER_NOW: '2026-12-01T08:00:00Z' });
    assert.deepEqual([s.scheduled, s.queued], ['2026-12-01T09:00:00.000Z', 1]);
    await json(dir, ['run'], { ...env, MAILER_NOW: '2026-12-01T08:30:00Z' });
    assert.equal(server.messages.length, from, 'not due yet');
    assert.equal((await json(dir, ['mailings'])).find((m: any) => m.mailing === s.mailing).status, 'scheduled');
    const run = await json(dir, ['run'], { ...env, MAILER_NOW: '2026-12-01T09:01:00Z' });
    assert.deepEqual(run.mailings.map((m: any) => [m.mailing, m.sent]), [[s.mailing, 1]]);
    assert.deepEqual(rcpts(server, from), to('Anna'));
    assert.equal((await json(dir, ['mailings'])).find((m: any) => m.mailing === s.mailing).status, 'done');
  });

  test('send --report-to mails a summary to the operator', async () => {
    const from = server.messages.length;
    const s = await json(dir, ['send', 't.txt', '--where', 'name=Ben', '--report-to', 'chef@example.org'], env);
    assert.deepEqual(rcpts(server, from), ['ben@example.org', 'chef@example.org']);
    assert.deepEqual([s.report.to, s.report.sent], ['chef@example.org', true]);
    const report = await simpleParser(server.messages.slice(from).find((m) => m.to[0] === 'chef@example.org')!.raw);
    assert.match(`${report.subject}\n${report.text}`, new RegExp(`${s.mailing}`));
  });

  test('send --not-opened follows up on those who did not open', async () => {
    const from0 = server.messages.length;
    // The open pixel is in the HTML part, with a value of its own.
    writeFile(dir, 'o.txt', 'Subject: Hallo {{name}}\nFrom: Verein <noreply@verein.example>\nType: info\n\nHallo {{name}}\n');
    writeFile(dir, 'o.html', '<p>Hallo {{name}}</p>\n');
    const first = await json(dir, ['send', 'o.txt'], env);
    const raws = server.messages.slice(from0).map((m) => ({ to: m.to[0], raw: m.raw.toString() }));
    const pixelOf = (addr: string) => /\/o\/([A-Za-z0-9_-]+)\.gif/.exec(raws.find((m) => m.to === addr)!.raw.replace(/=\r?\n/g, ''))![1];
    const proc = await serve(dir, trackingPort);
    try {
      for (const a of [who.Anna, who.Dora]) assert.equal((await fetch(`http://127.0.0.1:${trackingPort}/o/${pixelOf(a)}.gif`)).status, 200);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.done;
    }
    const from = server.messages.length;
    await json(dir, ['send', 't.txt', '--not-opened', String(first.mailing)], env);
    assert.deepEqual(rcpts(server, from), to('Ben', 'Cem', 'Eva', 'Fritz'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('log: every filter, the order, the limit, the JSON and CSV fields', { concurrency: false }, () => {
  const dir = tempDir();
  let server: TestServer;
  const NOW = '2026-12-01T12:00:00Z';
  // mailing 1 (invitation, 1 Nov 08:00): Anna sent, Ben failed, Cem deferred
  // mailing 2 (newsletter, 26 Nov 12:00): Cem · mailing 3 (reminder, 30 Nov 06:00): Ben
  // mailing 4 (reminder, 1 Dec 11:00): Anna · now: 1 Dec 12:00
  const ids: Record<string, number> = {};

  before(async () => {
    server = await startSmtpServer({ reject: { 'ben@example.org': '550 5.1.1 User unknown', 'cem@example.org': '451 4.7.1 Greylisted, try again later' } });
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org']]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    for (const t of ['invitation', 'newsletter', 'reminder']) writeFile(dir, `${t}.txt`, `Subject: ${t}\nFrom: V <v@verein.example>\nType: ${t}\n\nHallo {{name}}\n`);
    const env = { MAILER_SMTP_URL: server.url };
    await json(dir, ['send', 'invitation.txt'], { ...env, MAILER_NOW: '2026-11-01T08:00:00Z' }, 1);
    delete server.reject['ben@example.org'];
    delete server.reject['cem@example.org'];
    await json(dir, ['send', 'newsletter.txt', '--member', '3'], { ...env, MAILER_NOW: '2026-11-26T12:00:00Z' });
    await json(dir, ['send', 'reminder.txt', '--member', '2'], { ...env, MAILER_NOW: '2026-11-30T06:00:00Z' });
    await json(dir, ['send', 'reminder.txt', '--member', '1'], { ...env, MAILER_NOW: '2026-12-01T11:00:00Z' });
    for (const s of await json(dir, ['log'], { MAILER_NOW: NOW })) ids[`${s.type}:${s.member}`] = s.id;
  });
  after(() => server.close());

  const A1 = 'invitation:1', A2 = 'invitation:2', A3 = 'invitation:3', B = 'newsletter:3', C = 'reminder:2', D = 'reminder:1';
  const rows: [string[], string[]][] = [
    [[], [D, C, B, A3, A2, A1]],
    [['--member', '2'], [C, A2]],
    [['--member', 'ben@example.org'], [C, A2]],
    [['--member', 'BEN@Example.org'], [C, A2]],
    [['--email', 'cem@example.org'], [B, A3]],
    [['--type', 'reminder'], [D, C]],
    [['--type', 'invitation', '--type', 'newsletter'], [B, A3, A2, A1]],
    [['--mailing', '1'], [A3, A2, A1]],
    [['--status', 'failed'], [A2]],
    [['--status', 'failed', '--status', 'deferred'], [A3, A2]],
    [['--since', '90m'], [D]],
    [['--since', '36h'], [D, C]],
    [['--since', '7d'], [D, C, B]],
    [['--until', '7d'], [A3, A2, A1]],
    [['--since', '2026-11-26T13:00'], [D, C]],
    [['--until', '2026-11-26'], [B, A3, A2, A1]],
    [['--until', '2026-11-26T11:00'], [A3, A2, A1]],
    [['--since', '2026-11-01', '--until', '2026-11-01'], [A3, A2, A1]],
    [['--type', 'reminder', '--member', '1'], [D]],
    [['--type', 'invitation', '--status', 'sent', '--since', '2026-11-01T07:00', '--until', '2026-11-01T09:00'], [A1]],
    [['--limit', '2'], [D, C]],
  ];
  test('log filters, each alone and combined, newest first', async () => {
    await Promise.all(rows.map(async ([args, expected]) => {
      const got = await json(dir, ['log', ...args], { MAILER_NOW: NOW });
      assert.deepEqual(got.map((s: any) => s.id), expected.map((k) => ids[k]), `log ${args.join(' ')}`);
    }));
  });

  test('log --json has exactly the fields of a send', async () => {
    const [d] = await json(dir, ['log', '--limit', '1'], { MAILER_NOW: NOW });
    // `test` is the one addition: a test send must not look like a real one
    assert.deepEqual(Object.keys(d), ['id', 'mailing', 'member', 'email', 'type', 'status', 'reason', 'category', 'attempts', 'createdAt', 'sentAt', 'messageId', 'test']);
    assert.deepEqual({ ...d, messageId: typeof d.messageId, sentAt: d.sentAt.slice(0, 16) }, {
      id: ids[D], mailing: 4, member: '1', email: 'anna@example.org', type: 'reminder', status: 'sent', reason: d.reason, category: null,
      attempts: 1, createdAt: d.createdAt, sentAt: '2026-12-01T11:00', messageId: 'string', test: false,
    });
    assert.match(d.createdAt, /^2026-12-01T11:00:\d\d\.\d{3}Z$/);
    assert.match(d.reason, /^250\b/, 'a sent mail keeps the server\'s reply');
    const [failed] = await json(dir, ['log', '--status', 'failed'], { MAILER_NOW: NOW });
    assert.deepEqual([failed.category, failed.sentAt], ['unknown-mailbox', null]);
    assert.match(failed.reason, /5\.1\.1/);
  });

  test('log --csv has the same columns and values as --json', async () => {
    const [r, asJson] = await Promise.all([
      mailer(dir, ['log', '--csv', '--member', '2', '--member', '3'], { ...UTC, MAILER_NOW: NOW }),
      json(dir, ['log', '--member', '2', '--member', '3'], { MAILER_NOW: NOW }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = parseCsv(r.stdout) as string[][];
    assert.deepEqual(header, ['id', 'mailing', 'member', 'email', 'type', 'status', 'reason', 'category', 'attempts', 'createdAt', 'sentAt', 'messageId', 'test']);
    assert.deepEqual(rows, asJson.map((s: any) => header.map((k) => (s[k] === null ? '' : String(s[k])))));
    assert.ok(rows.some((row) => row[6].includes('Greylisted, try again')), 'a reason with a comma stays one column');
  });

  test('log table names the columns', async () => {
    const r = await mailer(dir, ['log', '--status', 'failed'], { ...UTC, MAILER_NOW: NOW });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /id\s+time\s+member\s+address\s+type\s+mailing\s+status\s+reason/);
    assert.match(r.stdout, /ben@example\.org\s+invitation\s+1\s+failed\s+unknown-mailbox/);
  });

  test('log --limit defaults to 50, newest first; --limit 0 shows all', async () => {
    writeFile(dir, 'many.csv', membersCsv(['id', 'name', 'email'], Array.from({ length: 55 }, (_, i) => [`x${i}`, `X ${i}`, `x${i}@example.org`])));
    assert.equal((await mailer(dir, ['import', 'many.csv'])).code, 0);
    await json(dir, ['send', 'newsletter.txt', '--where', 'name~X'], { MAILER_SMTP_URL: server.url, MAILER_NOW: '2026-12-01T11:30:00Z' });
    const dflt = await json(dir, ['log'], { MAILER_NOW: NOW });
    assert.equal(dflt.length, 50);
    const all = await json(dir, ['log', '--limit', '0'], { MAILER_NOW: NOW });
    assert.equal(all.length, 61);
    assert.deepEqual(dflt.map((s: any) => s.id), all.slice(0, 50).map((s: any) => s.id));
    assert.ok(all.slice(0, 55).every((s: any) => s.type === 'newsletter' && s.mailing === 5), 'the newest mailing comes first');
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].createdAt >= all[i].createdAt, `row ${i} out of order`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('retry: --failed, --deferred, the log filters, --reason, --include-permanent, --dry-run', { concurrency: false }, () => {
  const dir = tempDir();
  let server: TestServer;
  let env: Record<string, string>;
  const T0 = '2026-11-10T10:00:00Z';
  const NOW = '2026-11-12T12:00:00Z';

  before(async () => {
    server = await startSmtpServer({ reject: {
      'anna@example.org': '550 5.1.1 User unknown',
      'ben@example.org': '554 5.7.1 Message rejected as spam',
      'cem@example.org': '451 4.7.1 Greylisted, try again later',
      'dora@example.org': '452 4.2.2 Mailbox full',
    } });
    env = { MAILER_SMTP_URL: server.url };
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [
      ['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org'], ['4', 'Dora', 'dora@example.org'], ['5', 'Eva', 'eva@example.org'],
    ]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'invitation.txt', 'Subject: Einladung\nFrom: V <v@verein.example>\nType: invitation\n\nHallo {{name}}\n');
    writeFile(dir, 'notice.txt', 'Subject: Hinweis\nFrom: V <v@verein.example>\nType: notice\n\nHallo {{name}}\n');
    await json(dir, ['send', 'invitation.txt'], { ...env, MAILER_NOW: T0 }, 1);
    await json(dir, ['send', 'notice.txt', '--member', '3'], { ...env, MAILER_NOW: '2026-11-12T11:00:00Z' }, 1);
  });
  after(() => server.close());

  const dry = async (args: string[]) => {
    const from = server.messages.length;
    const r = await json(dir, ['retry', '--dry-run', ...args], { ...env, MAILER_NOW: NOW });
    assert.equal(server.messages.length, from, 'a dry run sends nothing');
    return r;
  };
  const pairs = (r: any) => r.sends.map((s: any) => `${s.member}:${s.category}`).sort();

  test('retry needs --failed or --deferred', async () => {
    const r = await mailer(dir, ['retry'], { ...UTC, ...env, MAILER_NOW: NOW });
    assert.equal(r.code, 2, r.stderr);
    const sent = await mailer(dir, ['retry', '--status', 'sent'], { ...UTC, ...env, MAILER_NOW: NOW });
    assert.equal(sent.code, 2, sent.stderr);
  });

  const rows: [string[], string[], Record<string, number>][] = [
    [['--failed'], ['2:rejected-as-spam'], { 'unknown-mailbox': 1 }],
    [['--failed', '--include-permanent'], ['1:unknown-mailbox', '2:rejected-as-spam'], {}],
    [['--deferred'], ['3:greylisted', '3:greylisted', '4:mailbox-full'], {}],
    [['--failed', '--deferred'], ['2:rejected-as-spam', '3:greylisted', '3:greylisted', '4:mailbox-full'], { 'unknown-mailbox': 1 }],
    [['--deferred', '--reason', 'mailbox-full'], ['4:mailbox-full'], {}],
    [['--failed', '--deferred', '--reason', 'unknown-mailbox', '--include-permanent'], ['1:unknown-mailbox'], {}],
    [['--deferred', '--member', 'dora@example.org'], ['4:mailbox-full'], {}],
    [['--deferred', '--member', '3'], ['3:greylisted', '3:greylisted'], {}],
    [['--deferred', '--member', '3', '--limit', '1'], ['3:greylisted'], {}],
    [['--failed', '--deferred', '--email', 'ben@example.org'], ['2:rejected-as-spam'], {}],
    [['--deferred', '--type', 'notice'], ['3:greylisted'], {}],
    [['--deferred', '--mailing', '1'], ['3:greylisted', '4:mailbox-full'], {}],
    [['--deferred', '--since', '36h'], ['3:greylisted'], {}],
    [['--deferred', '--until', '2026-11-11'], ['3:greylisted', '4:mailbox-full'], {}],
    // the log's words: --status failed|deferred mean --failed|--deferred
    [['--status', 'deferred'], ['3:greylisted', '3:greylisted', '4:mailbox-full'], {}],
  ];
  test('retry --dry-run: each selection', async () => {
    await Promise.all(rows.map(async ([args, expected, leftOut]) => {
      const r = await dry(args);
      assert.equal(r.dryRun, true);
      assert.deepEqual(pairs(r), expected, `retry ${args.join(' ')}`);
      assert.deepEqual([r.retried, r.leftOutByReason, r.leftOut], [expected.length, leftOut, Object.values(leftOut).reduce((a, b) => a + b, 0)], `retry ${args.join(' ')}`);
    }));
    const text = await mailer(dir, ['retry', '--failed', '--dry-run'], { ...UTC, ...env, MAILER_NOW: NOW });
    assert.match(text.stdout, /left out 1: unknown-mailbox 1/);
  });

  test('retry re-sends to the current address and records a new attempt', async () => {
    delete server.reject['cem@example.org'];
    let from = server.messages.length;
    const r = await json(dir, ['retry', '--deferred', '--reason', 'greylisted', '--mailing', '1'], { ...env, MAILER_NOW: NOW });
    assert.deepEqual([r.retried, r.sent], [1, 1]);
    assert.deepEqual(rcpts(server, from), ['cem@example.org']);
    const [cem] = await json(dir, ['log', '--mailing', '1', '--member', '3']);
    assert.deepEqual([cem.status, cem.attempts], ['sent', 2]);
    // Ben has a new address now: the retry goes there.
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['2', 'Ben', 'ben.neu@example.org']]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    from = server.messages.length;
    const b = await json(dir, ['retry', '--failed'], { ...env, MAILER_NOW: NOW });
    assert.deepEqual([b.retried, b.sent, b.leftOut], [1, 1, 1]);
    assert.deepEqual(rcpts(server, from), ['ben.neu@example.org']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('retarget, run --max, mailings, cancel', { concurrency: false }, () => {
  const dir = tempDir();
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    server = await startSmtpServer({ reject: { 'anna@example.org': '550 5.1.1 User unknown' } });
    env = { MAILER_SMTP_URL: server.url };
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org']]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'invitation.txt', 'Subject: Einladung\nFrom: V <v@verein.example>\nType: invitation\n\nLink: https://vote.example/{{token}}\n');
  });
  after(() => server.close());

  test('retarget --to --reason: new address, old one revoked with its tokens, original points to the new send', async () => {
    await json(dir, ['send', 'invitation.txt', '--member', '1'], env, 1);
    const [orig] = await json(dir, ['log', '--member', '1']);
    const from = server.messages.length;
    const r = await json(dir, ['retarget', String(orig.id), '--to', 'anna.neu@example.org', '--reason', 'Tippfehler'], env);
    assert.deepEqual([r.original, r.email, r.status, r.revoked], [orig.id, 'anna.neu@example.org', 'sent', ['anna@example.org']]);
    assert.deepEqual(rcpts(server, from), ['anna.neu@example.org']);
    const token = /vote\.example\/([A-Za-z0-9_-]+)/.exec(server.messages.at(-1)!.raw.toString())![1];
    assert.equal((await mailer(dir, ['token', 'verify', token])).code, 0);
    const log = await json(dir, ['log', '--member', '1']);
    assert.deepEqual(log.map((s: any) => [s.id, s.status]), [[r.send, 'sent'], [orig.id, 'retargeted']]);
    const db = openDb(dir);
    const revoked = db.prepare(`SELECT revoke_reason FROM addresses WHERE email = 'anna@example.org'`).get() as any;
    db.close();
    assert.equal(revoked.revoke_reason, 'Tippfehler');
  });

  test('mailings lists scheduled ones; cancel --member takes one member out, run --max caps the run', async () => {
    const at = await json(dir, ['send', 'invitation.txt', '--at', '2026-12-05T08:00'], { ...env, MAILER_NOW: '2026-12-04T08:00:00Z' });
    assert.equal(at.queued, 3);
    const listed = (await json(dir, ['mailings'])).find((m: any) => m.mailing === at.mailing);
    assert.deepEqual([listed.status, listed.queued, listed.scheduledAt], ['scheduled', 3, '2026-12-05T08:00:00.000Z']);
    const c = await json(dir, ['cancel', String(at.mailing), '--member', 'ben@example.org']);
    assert.equal(c.cancelled, 1);
    const from = server.messages.length;
    const run1 = await json(dir, ['run', '--max', '1'], { ...env, MAILER_NOW: '2026-12-05T08:01:00Z' });
    assert.equal(rcpts(server, from).length, 1, JSON.stringify(run1));
    await json(dir, ['run'], { ...env, MAILER_NOW: '2026-12-05T08:02:00Z' });
    assert.deepEqual(rcpts(server, from), ['anna.neu@example.org', 'cem@example.org']);
    const done = (await json(dir, ['mailings'])).find((m: any) => m.mailing === at.mailing);
    assert.deepEqual([done.status, done.sent, done.cancelled, done.queued], ['done', 2, 1, 0]);
  });

  test('a queued send goes to the address the member has when it is sent', async () => {
    const at = await json(dir, ['send', 'invitation.txt', '--member', '3', '--at', '2026-12-09T08:00'], { ...env, MAILER_NOW: '2026-12-08T08:00:00Z' });
    writeFile(dir, 'cem.csv', membersCsv(['id', 'name', 'email'], [['3', 'Cem', 'cem.neu@example.org']]));
    assert.equal((await mailer(dir, ['import', 'cem.csv'])).code, 0);
    const from = server.messages.length;
    await json(dir, ['run'], { ...env, MAILER_NOW: '2026-12-09T08:01:00Z' });
    assert.deepEqual(rcpts(server, from), ['cem.neu@example.org']);
    const [s] = await json(dir, ['log', '--mailing', String(at.mailing)]);
    assert.deepEqual([s.email, s.status], ['cem.neu@example.org', 'sent']);
  });

  test('cancel <mailing>: nothing of it goes out', async () => {
    const at = await json(dir, ['send', 'invitation.txt', '--at', '2026-12-07T08:00'], { ...env, MAILER_NOW: '2026-12-06T08:00:00Z' });
    const c = await json(dir, ['cancel', String(at.mailing)]);
    assert.equal(c.cancelled, 3);
    const from = server.messages.length;
    await json(dir, ['run'], { ...env, MAILER_NOW: '2026-12-07T09:00:00Z' });
    assert.equal(server.messages.length, from);
    assert.equal((await json(dir, ['mailings'])).find((m: any) => m.mailing === at.mailing).status, 'cancelled');
  });
});
});
