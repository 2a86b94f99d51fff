/**
 * A worker thread: nodemailer's own streamed build, in a module graph of its own that loads no
 * mailer module, so none of mailer's changes to nodemailer's prototypes reach it. Takes a list
 * of MailComposer options, answers each message as nodemailer builds it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';

const proto = MimeNode.prototype as unknown as Record<string, object>;
// mailer marks its wrappers so; none may be here
const patched = ['_normalizeHeaderKey', 'encodeHeaderValue'].filter((name) => 'mailerMemo' in proto[name]);
const built: string[] = [];
for (const options of workerData as ConstructorParameters<typeof MailComposer>[0][]) {
  const buf = await new MailComposer(options).compile().build();
  built.push(buf.toString('latin1'));
}
parentPort!.postMessage({ patched, built });
