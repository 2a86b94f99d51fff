import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, render } from '../../src/send/template.js';
import { composeFor, mailingContext, surelyFits } from '../../src/send/mailing.js';

const LINKS = () => ({ unsubscribe: 'u'.repeat(30), open: 'o'.repeat(30) });

/** Rendered and composed as a tracked mail of one member: the message, and its encoded size. */
function composed(subject: string, text: string, html: string | null) {
  const template = parseTemplate(`Subject: ${subject}\nFrom: Verein Grün <info@verein.example>\nReply-To: {{kontakt}}\n\n${text}`, { path: 't.txt', html, footer: null });
  const rendered = render(template, { name: 'Jörg', email: 'j@example.org', id: '1', token: 'T'.repeat(22), kontakt: 'vorstand@verein.example' }, { allowEmpty: false });
  assert.ok(rendered.ok);
  const ctx = mailingContext(template, { from: null, replyTo: null, bounceAddress: null, allowEmpty: false, track: true, publicUrl: 'https://verein.example/m', verp: false } as never, false);
  const mail = composeFor(ctx, rendered.message, { name: 'Jörg Müller', address: 'j@example.org' }, 123456, LINKS, Number.MAX_SAFE_INTEGER);
  assert.ok(mail.ok);
  return { message: rendered.message, bytes: mail.raw.length };
}

// The dry run skips composing a mail that surelyFits; were the bound ever below a mail's real
// size, a mail over maxMessageBytes would be listed as sendable and then refused by the run.
test('a mail "surely fits" only under a limit its encoded size is within, whatever its encoding', () => {
  const rows: [string, string, string, string | null][] = [
    ['plain ASCII', 'Hallo {{name}}', 'Hallo {{name}}, hier ist der Text.\n'.repeat(200), null],
    ['umlauts and equals signs: quoted-printable at its worst', 'Grüße {{name}}', 'äöü=ß€'.repeat(3000), null],
    ['one long line without spaces', 'x', 'ü'.repeat(20_000), null],
    ['text and HTML with the pixel', 'Einladung für {{name}}', 'Text für {{name}}\n'.repeat(500), '<p>Grüße, {{name}} &amp; Co</p>\n'.repeat(500)],
    ['8-bit characters in every header', 'Ärger über Öffnungszeiten '.repeat(40), 'kurz', null],
    ['emoji', '🎉 {{name}}', '🎉🎈 Feier\n'.repeat(2000), '<b>🎉</b>'.repeat(2000)],
  ];
  for (const [what, subject, text, html] of rows) {
    const { message, bytes } = composed(subject, text, html);
    assert.equal(surelyFits(bytes - 1, message), false, `${what}: ${bytes} bytes encoded`);
    assert.equal(surelyFits(10_000_000, message), true, what);
  }
});
