import fs from 'node:fs';
import path from 'node:path';
import type { AttachmentFile } from '../mail/compose.js';

/** The skip reasons of a mail whose files cannot be attached; with too-large, a run with any exits 1. */
export const ATTACHMENT_CATEGORIES = ['attachment-path', 'attachment-missing'] as const;
export type AttachmentCategory = (typeof ATTACHMENT_CATEGORIES)[number];

export type AttachmentCheck =
  | { ok: true; files: AttachmentFile[] }
  | { ok: false; category: AttachmentCategory; reason: string };

/**
 * The path as written, relative to the template's folder and normalised, or null when it
 * leaves that folder by its words alone: absolute (also a Windows drive or UNC path, which a
 * template written there may hold) or climbing out with `..`. Symlinks are the file system's
 * to answer (attachmentFiles).
 */
export function confinedPath(given: string): string | null {
  if (given === '' || path.isAbsolute(given) || /^[A-Za-z]:/.test(given) || given.startsWith('\\')) return null;
  const normalized = path.normalize(given);
  if (normalized === '..' || normalized.startsWith(`..${path.sep}`) || normalized === '.') return null;
  return normalized;
}

function outside(given: string, folder: string): AttachmentCheck {
  return {
    ok: false, category: 'attachment-path',
    reason: `the attachment "${given}" leads outside the template's folder ${folder} (an absolute path, .. or a symlink out); put the file inside that folder and name it relative to it`,
  };
}

function missing(given: string, full: string, what = 'no such file'): AttachmentCheck {
  return {
    ok: false, category: 'attachment-missing',
    reason: `the attachment ${given} is missing (${what}: ${full}); put the file there, or send the others now and this member later`,
  };
}

/**
 * Finds one member's files (the rendered Attachment: paths) inside the template's folder. A
 * symlink is followed only as far as it stays inside: the real path must lie in the real folder.
 * The size is the file's now; the mail reads it again while it is handed over.
 */
export function attachmentFiles(folder: string, given: string[]): AttachmentCheck {
  const files: AttachmentFile[] = [];
  let realFolder: string | undefined;
  for (const name of given) {
    const relative = confinedPath(name);
    if (relative === null) return outside(name, folder);
    const full = path.join(folder, relative);
    realFolder ??= fs.realpathSync(folder);
    let real: string;
    try {
      real = fs.realpathSync(full);
    } catch (err) {
      return missing(name, full, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
    }
    const within = path.relative(realFolder, real);
    if (within === '' || within.startsWith(`..${path.sep}`) || within === '..' || path.isAbsolute(within)) return outside(name, folder);
    const stat = fs.statSync(real);
    if (!stat.isFile()) return missing(name, full, 'not a file');
    files.push({ path: real, name: path.basename(full), size: stat.size });
  }
  return { ok: true, files };
}
