import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeTree, mimeTree, type ComposeInput } from '../../src/mail/compose.js';

/** Ours, and nodemailer's own streamed build of the same tree (same Date, same boundary). */
async function bothWays(input: ComposeInput): Promise<{ sync: string; stream: string }> {
  const tree = mimeTree(input);
  const sync = composeTree(tree).toString('latin1');
  const stream = (await tree.build()).toString('latin1').replace(/\r?\n/g, '\r\n');
  return { sync, stream };
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

test('compose() gives the very bytes of nodemailer\'s streamed build, for every kind of part', async () => {
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
        const { sync, stream } = await bothWays(input);
        assert.equal(sync, stream, JSON.stringify({ text, html, tracked }));
        n++;
      }
    }
  }
  assert.equal(n, texts.length * htmls.length * 2);
});
