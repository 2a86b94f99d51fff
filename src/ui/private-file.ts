import fs from 'node:fs';
import { MailerError } from '../errors.js';

/**
 * A file with personal data (an export): made 0600 whatever the umask, and made anew, so that
 * a file that was there keeps neither its mode nor another owner's hard link.
 */
export function writePrivate(file: string, text: string): void {
  try {
    fs.rmSync(file, { force: true });
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new MailerError(`cannot write ${file}: ${(err as Error).message}`, { hint: 'give --out a path in a folder you can write to' });
  }
}
