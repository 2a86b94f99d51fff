import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/cli.js';

const SRC = path.join(ROOT, 'src');

/**
 * Each folder's layer: a module imports only from lower layers and from its own folder. Folders
 * on one layer do not import each other (send/ does not reach into triage/, mail/ not into store/).
 */
const LAYERS: Record<string, number> = {
  'errors.ts': 0, domain: 0,
  config: 1,
  store: 2, mail: 2, ui: 2, http: 2, dns: 2,
  members: 3, send: 3, triage: 3,
  commands: 4,
  'cli.ts': 5,
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : [];
  });
}

/** The folder (or top-level file) a source file belongs to. */
function unitOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0];
}

/** Every relative module a file imports, statically or lazily, types included. */
function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts'));
}

function layerViolations(files: string[], read = (f: string) => fs.readFileSync(f, 'utf8')): string[] {
  const found: string[] = [];
  for (const file of files) {
    const from = unitOf(file);
    for (const target of importsOf(file, read(file))) {
      const to = unitOf(target);
      if (to === from) continue;
      if (!(from in LAYERS) || !(to in LAYERS)) {
        found.push(`${path.relative(SRC, file)}: ${!(from in LAYERS) ? from : to} has no layer`);
      } else if (LAYERS[to] >= LAYERS[from]) {
        found.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)} (${to} is not below ${from})`);
      }
    }
  }
  return found;
}

test('dependencies point one way: every import goes to a lower layer or the same folder', () => {
  assert.deepEqual(layerViolations(sourceFiles(SRC)), []);
});

test('nodemailer is imported only in mail/', () => {
  const outside = sourceFiles(SRC).filter((f) => unitOf(f) !== 'mail' && /(?:from|import\()\s*'nodemailer[/']/.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(outside.map((f) => path.relative(SRC, f)), []);
});

test('the layer check sees an import upwards, sideways and lazy', () => {
  const probe = (folder: string, text: string) => layerViolations([path.join(SRC, folder, 'probe.ts')], () => text);
  assert.deepEqual(probe('send', "import { x } from '../commands/send.js';"), ['send/probe.ts imports commands/send.ts (commands is not below send)']);
  assert.deepEqual(probe('mail', "import type { Store } from '../store/store.js';"), ['mail/probe.ts imports store/store.ts (store is not below mail)']);
  assert.deepEqual(probe('triage', "const { y } = await import('../send/queue.js');"), ['triage/probe.ts imports send/queue.ts (send is not below triage)']);
  assert.deepEqual(probe('send', "import { z } from './queue.js';\nimport { w } from '../domain/types.js';"), []);
});
