import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compose, type ComposeInput } from '../../src/mail/compose.js';
import { readOwnMessage } from '../../src/mail/message-view.js';
import { readAnyMessage } from '../../src/triage/inspect.js';

const long = 'eine sehr lange Zeile ohne Umbruch, die länger als sechsundsiebzig Zeichen ist, damit umbrochen werden muss';
const texts = [
  'Hallo Anna,\nkurz und ASCII.\n',
  `ASCII but long: ${'x'.repeat(120)}\n`,
  `Hallo Jörg,\n${long}\nÄrger? Nein.   \nTrailing blanks above.`,
  'Привет! Это письмо почти целиком на кириллице, чтобы выбрать base64.',
  '日本語のテキスト 🎉 emoji',
  'a=b =3D literal, 100% sure',
  '',
  'O\'Brien & Co <b>not html</b>\r\nWindows line\r\n',
];
const htmls = [null, '<p>Hallo <b>Jörg</b></p>', `<html><body><p>${long}</p><p>${'ü'.repeat(200)}</p></body></html>`];
const subjects = (text: string) => [`Einladung für ${text.slice(0, 30)}`, `${'Sehr lange Betreffzeile mit Ümlauten '.repeat(4)}`, 'Plain ASCII subject'];

test('a message mailer composed reads as mailparser reads it, without mailparser', async () => {
  let n = 0;
  for (const text of texts) {
    for (const html of htmls) {
      for (const subject of subjects(text)) {
        const input: ComposeInput = {
          message: { subject, from: null, replyTo: null, extraHeaders: [['X-Kampagne', 'Frühjahr 2026'], ['X-Plain', 'ascii']], text, html },
          from: n % 2 ? 'Verein Grün e.V. <info@verein.example>' : '"Verein \\"Grün\\", e.V." <info@verein.example>',
          replyTo: n % 3 ? '"Vorstand, Verein" <vorstand@verein.example>' : null,
          to: { name: n % 3 ? 'Müller-Lüdenscheidt, Dr. Jörg' : null, address: 'joerg@example.org' },
          messageId: `<${n}.abc@verein.example>`,
          sendId: n,
          test: n % 5 === 0,
          tracking: n % 2 ? { baseUrl: 'https://verein.example/m', unsubscribe: `u${n}`, pixel: `p${n}` } : undefined,
        };
        const raw = compose(input);
        const own = readOwnMessage(raw);
        assert.ok(own, `not read: ${raw.toString('latin1').slice(0, 400)}`);
        assert.deepEqual(own, await readAnyMessage(raw), raw.toString('latin1'));
        n++;
      }
    }
  }
  assert.equal(n, texts.length * htmls.length * 3);
});

test('a message of another shape is left to mailparser', () => {
  const rows: [string, string][] = [
    ['another charset', 'Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nhi\r\n'],
    ['an encoded word in latin1', 'Subject: =?ISO-8859-1?Q?J=F6rg?=\r\n\r\nhi\r\n'],
    ['an attachment', 'Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n'],
    ['format=flowed', 'Subject: x\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\nhi\r\n'],
    ['a repeated header', 'Subject: x\r\nX-A: 1\r\nX-A: 2\r\n\r\nhi\r\n'],
    ['no header end', 'Subject: x\r\n'],
  ];
  for (const [what, message] of rows) assert.equal(readOwnMessage(Buffer.from(message, 'latin1')), null, what);
});
