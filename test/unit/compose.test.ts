import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { boundaryFor, composeParts, composeTree, composerOptions, newMessageId, MEMO, type ComposeInput, type MimeNode as Tree } from '../../src/mail/compose.js';
import { LinkSigner } from '../../src/domain/token.js';

const DATE = new Date('2026-03-14T09:26:53Z');

/**
 * nodemailer's own streamed build of the same options (same Date, same boundary), in a worker
 * that loads no mailer module: the prototypes there are nodemailer's, unpatched.
 */
function unpatched(options: Record<string, unknown>[]): Promise<string[]> {
  const worker = new Worker(new URL('../support/reference-compose.js', import.meta.url), { workerData: options });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', ({ patched, built }: { patched: string[]; built: string[] }) => {
      if (patched.length) reject(new Error(`the reference build runs on mailer's ${patched.join(', ')}`));
      else resolve(built.map((raw) => raw.replace(/\r?\n/g, '\r\n')));
    });
  });
}

const long = 'eine sehr lange Zeile ohne Umbruch, die länger als sechsundsiebzig Zeichen ist, damit umbrochen werden muss';
const texts = [
  'Hallo Anna,\nkurz und ASCII.\n',
  `ASCII but long: ${'x'.repeat(120)}\n`,
  `Hallo Jörg,\n${long}\nÄrger? Nein.`,
  'Привет! Это письмо почти целиком на кириллице, чтобы выбрать base64.',
  '日本語のテキスト',
  'ab',
  '',
  'O\'Brien & Co <b>not html</b>\r\nWindows line\r\n',
];
const htmls = [null, '<p>Hallo <b>Jörg</b></p>', `<html><body><p>${long}</p></body></html>`];

test('compose() gives the very bytes of an unpatched nodemailer\'s streamed build, for every kind of part', { timeout: 30_000 }, async () => {
  // the fast path runs on mailer's wrapped MimeNode, the reference on nodemailer's own
  assert.ok(MEMO in (MimeNode.prototype as unknown as Record<string, object>)._normalizeHeaderKey);
  const options: Record<string, unknown>[] = [];
  const ours: string[] = [];
  const labels: string[] = [];
  let n = 0;
  for (const text of texts) {
    for (const html of htmls) {
      for (const tracked of [false, true]) {
        const input: ComposeInput = {
          message: {
            subject: `Einladung für ${text.slice(0, 30)}`, from: null, replyTo: null,
            extraHeaders: [['X-Kampagne', 'Frühjahr 2026'], ['X-Plain', 'ascii']],
            text, html,
          },
          from: 'Verein Grün e.V. <info@verein.example>',
          replyTo: n % 2 ? '"Vorstand, Verein" <vorstand@verein.example>' : null,
          to: { name: n % 3 ? 'Müller-Lüdenscheidt, Dr. Jörg' : null, address: n % 4 ? 'joerg@example.org' : 'ob@exämple.org' },
          messageId: `<${n}.abc@verein.example>`,
          sendId: n,
          test: n % 5 === 0,
          tracking: tracked ? { baseUrl: 'https://verein.example/m', unsubscribe: `u${n}`, pixel: `o${n}` } : undefined,
        };
        // as mimeTree(input), with the Date fixed so both builds write the same one
        const given = { ...composerOptions(input), date: DATE };
        options.push(given);
        ours.push(composeTree(new MailComposer(given).compile() as unknown as Tree).toString('latin1'));
        labels.push(JSON.stringify({ text, html, tracked }));
        n++;
      }
    }
  }
  assert.equal(n, texts.length * htmls.length * 2);
  const reference = await unpatched(options);
  for (let i = 0; i < n; i++) assert.equal(ours[i], reference[i], labels[i]);
});

test('a message with files: the skeleton and the streamed files give the very bytes of nodemailer\'s own build, its size is exact, a name outside ASCII goes as RFC 2231', { timeout: 30_000 }, async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { composeTreeParts, MessageWithFiles } = await import('../../src/mail/compose.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-compose-'));
  try {
    // around the 57-byte line and the 3-byte group, and larger than one read of the stream
    const sizes = [0, 1, 2, 3, 56, 57, 58, 114, 1000, 200_003];
    const names = ['Befund_Müller.pdf', 'leer.pdf', 'Notiz mit Leerzeichen.txt', 'bild.png', 'Ärztebrief – März.pdf', 'x.bin', 'a"b;c.pdf', 'r.pdf', 's.pdf', 'groß.pdf'];
    const files = sizes.map((size, i) => {
      const file = path.join(dir, `${i}-${names[i]}`);
      fs.writeFileSync(file, Buffer.from(Array.from({ length: size }, (_, j) => (j * 7 + i) % 256)));
      return { path: file, name: names[i], size };
    });
    const options: Record<string, unknown>[] = [];
    const ours: { raw: string; size: number }[] = [];
    const groups = [[0], [1, 2], [3, 4, 5], [6, 7, 8, 9]];
    for (const [n, group] of groups.entries()) {
      const input: ComposeInput = {
        message: { subject: 'Ihr Befund', from: null, replyTo: null, extraHeaders: [], text: n % 2 ? 'Hallo Jörg,\nanbei.' : 'Hallo', html: n === 3 ? '<p>anbei</p>' : null },
        from: 'Praxis <info@praxis.example>', replyTo: null, to: { name: 'Jörg', address: 'j@example.org' },
        messageId: `<${n}.f@praxis.example>`, sendId: n, test: false, attachments: group.map((i) => files[i]),
      };
      const given = { ...composerOptions(input), date: DATE };
      options.push(given);
      const parts = composeTreeParts(new MailComposer(given).compile() as unknown as Tree);
      assert.equal(parts.slots.length, group.length);
      const chunks: Buffer[] = [];
      for await (const c of new MessageWithFiles(parts).chunks()) chunks.push(c);
      ours.push({ raw: Buffer.concat(chunks).toString('latin1'), size: parts.size });
    }
    const reference = await unpatched(options);
    for (let i = 0; i < groups.length; i++) {
      assert.equal(ours[i].raw, reference[i], `files ${groups[i]}`);
      assert.equal(ours[i].size, Buffer.byteLength(ours[i].raw, 'latin1'), 'the size told before reading the files');
    }
    // RFC 2231: filename*0*=utf-8''Befund_M%C3%BCller.pdf
    assert.match(ours[0].raw, /filename\*0\*=utf-8''Befund_M%C3%BCller\.pdf/);
    assert.match(ours[0].raw, /Content-Type: application\/pdf/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the multipart boundary is the Message-ID\'s random part (one random value to store, not two); another Message-ID gets a random one', () => {
  const id = newMessageId(42, 'newsletter@verein.example');
  const random = /^<42\.([0-9a-f]{12})@verein\.example>$/.exec(id)?.[1];
  assert.ok(random, id);
  const rows: [string, string | RegExp][] = [
    [id, random],
    ['<7.0123456789ab@x.example>', '0123456789ab'],
    ['<order-17@shop.example>', /^[0-9a-f]{16}$/],
    ['<7.0123@x.example>', /^[0-9a-f]{16}$/],
  ];
  for (const [messageId, want] of rows) {
    const got = boundaryFor(messageId);
    if (typeof want === 'string') assert.equal(got, want, messageId);
    else assert.match(got, want, messageId);
  }
  assert.notEqual(boundaryFor('<a@b>'), boundaryFor('<a@b>'), 'a random boundary is new each time');
});

test('a mailing\'s messages share its boundary, unless a message holds it elsewhere: that one gets its own', () => {
  const shared = new LinkSigner(Buffer.alloc(32, 7)).mailingBoundary(12);
  assert.match(shared, /^[0-9a-f]{12}$/);
  assert.equal(new LinkSigner(Buffer.alloc(32, 7)).mailingBoundary(12), shared, 'the same for the mailing in every run');
  assert.notEqual(new LinkSigner(Buffer.alloc(32, 7)).mailingBoundary(13), shared, 'another mailing, another boundary');
  assert.notEqual(new LinkSigner(Buffer.alloc(32, 8)).mailingBoundary(12), shared, 'another database, another boundary');
  const messageId = '<42.0123456789ab@verein.example>';
  const compose = (text: string, subject = 'Einladung', html: string | null = '<p>Hallo</p>') => composeParts({
    message: { subject, from: null, replyTo: null, extraHeaders: [], text, html },
    from: 'Verein <info@verein.example>', replyTo: null, to: { name: 'Zoë', address: 'zoe@example.org' },
    messageId, sendId: 42, test: false, boundary: shared,
  }).skeleton.toString('latin1');
  const rows: [string, string, string | null, string][] = [
    ['text and html', 'Hallo Zoë,\n', '<p>Hallo</p>', shared],
    ['the boundary in the text', `Hallo ----_NmP-${shared}-Part_1 Zoë,\n`, '<p>Hallo</p>', '0123456789ab'],
    ['in the html', 'Hallo Zoë,\n', `<p>_NmP-${shared}-</p>`, '0123456789ab'],
    ['the value alone is no boundary', `Hallo ${shared},\n`, '<p>Hallo</p>', shared],
  ];
  for (const [name, text, html, want] of rows) {
    const raw = compose(text, 'Einladung', html);
    assert.ok(raw.includes(`boundary="--_NmP-${want}-Part_1"`), `${name}: ${raw.slice(0, 400)}`);
    assert.equal(raw.split(`--_NmP-${want}-Part_1`).length - 1, 4, name);
  }
  assert.ok(compose('Hallo', `Betreff _NmP-${shared}-Part_1`).includes(`boundary="--_NmP-0123456789ab-Part_1"`), 'in a header');
  assert.ok(!compose('Hallo', 'Einladung', null).includes('boundary'), 'a single part has none');
});
