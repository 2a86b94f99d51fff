import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './cli.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'bounces');

/** A delivery status notification (RFC 3464) for one send, as a mail server returns it. */
export function dsnFor(recipient: string, sendId: number): string {
  return `From: MAILER-DAEMON@mx.verein.example
To: bounces@verein.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<${recipient}>: 550 5.1.1 User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.verein.example

Final-Recipient: rfc822; ${recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <${recipient}>: User unknown

--B
Content-Type: text/rfc822-headers

X-Mailer-Send-ID: ${sendId}
To: ${recipient}
Subject: Neuigkeiten

--B--
`;
}


/**
 * A bounce of test/fixtures/bounces for one send, dated a minute ahead (newer than the send).
 * `crlf`: with the line ends an IMAP server keeps.
 */
export function bounceFromFixture(name: string, send: { id: number; email: string; messageId: string }, crlf = false): string {
  const text = fs.readFileSync(path.join(FIXTURES, name), 'utf8')
    .replaceAll('{{sendId}}', String(send.id)).replaceAll('{{recipient}}', send.email).replaceAll('{{messageId}}', send.messageId)
    .replace(/^Date: .*$/m, `Date: ${new Date(Date.now() + 60_000).toUTCString()}`);
  return crlf ? text.replace(/\r?\n/g, '\r\n') : text;
}
