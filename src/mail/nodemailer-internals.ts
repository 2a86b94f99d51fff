import { createRequire } from 'node:module';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import PoolResource from 'nodemailer/lib/smtp-pool/pool-resource.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';

/**
 * Every member of nodemailer's inside that mailer reads, wraps or calls is named here, and
 * looked for when mailer starts. They are what makes sending fast (the envelope in one write,
 * the finished message handed straight to the pool, header names encoded once) and what
 * makes a broken connection say where it broke. None of them is promised by nodemailer: a
 * release may rename or reshape any of them. Where one is not there as expected, mailer uses
 * nodemailer's public behaviour for that feature instead: the same mails, sent more slowly (or,
 * for the steps, reported in nodemailer's own words). MAILER_DEBUG=1 says so on stderr.
 *
 * What mailer also relies on and is public in nodemailer's own type declarations (10 and
 * later), so it is not looked for: the pool's `getSocket` option, Mail's `transporter`,
 * SMTPPool's `send(mail, callback)`, and MimeNode's `buildHeaders()`, `getTransferEncoding()`,
 * `content`, `multipart`, `boundary` and `childNodes` (compose.ts's synchronous build; its
 * byte-for-byte test holds it to nodemailer's own build). coalesceWrites (smtp.ts) uses none:
 * it wraps the socket mailer opens itself and hands to the pool through `getSocket`.
 */

/** A method by its arity, or a field set by the constructor by what it holds. */
type Member = { method: number } | { field: 'array' | 'present' };

/** SMTPConnection: the envelope pipelining (pipelining.ts). */
export const PIPELINING_MEMBERS: Record<string, Member> = {
  _setEnvelope: { method: 2 },
  _sendCommand: { method: 2 },
  _formatError: { method: 4 },
  _getDsnRcptToArgs: { method: 0 },
  _responseActions: { field: 'array' },
  _supportedExtensions: { field: 'array' },
  _envelope: { field: 'present' },
  _socket: { field: 'present' },
  // also `_ehloLines`, which nodemailer sets only after EHLO: read where it is there, passed on
  // in the info of a sent mail as nodemailer does, and read by nobody in mailer
};

/**
 * The pool, its connections (PoolResource) and SMTPConnection: the next mail's envelope behind
 * the last message (pipelining.ts's pipelineAcrossMails), on top of the envelope pipelining.
 */
export const LOOKAHEAD_POOL_MEMBERS: Record<string, Member> = {
  _processMessages: { method: 0 },
  _queue: { field: 'array' },
  _connections: { field: 'array' },
  _closed: { field: 'present' },
  options: { field: 'present' },
};
export const LOOKAHEAD_RESOURCE_MEMBERS: Record<string, Member> = {
  send: { method: 2 },
  close: { method: 0 },
  pool: { field: 'present' },
  available: { field: 'present' },
  messages: { field: 'present' },
  _closed: { field: 'present' },
};
export const LOOKAHEAD_CONNECTION_MEMBERS: Record<string, Member> = {
  _createSendStream: { method: 1 },
  reset: { method: 1 },
  _onClose: { method: 0 },
  _processResponse: { method: 0 },
  _responseQueue: { field: 'array' },
  _destroyed: { field: 'present' },
  _responseActions: { field: 'array' },
  _supportedExtensions: { field: 'array' },
};

/** SMTPConnection: the step a broken connection broke at, the SMTPUTF8 refusal (smtp.ts). */
export const STEP_MEMBERS: Record<string, Member> = {
  _sendCommand: { method: 2 },
  _createSendStream: { method: 1 },
  _setEnvelope: { method: 2 },
  _onError: { method: 4 },
  _onConnect: { method: 0 },
  _formatError: { method: 4 },
  _supportedExtensions: { field: 'array' },
};

/** SMTPConnection: what `mailer check` tells of the server (check.ts); an empty list without them. */
export const DIAGNOSIS_MEMBERS: Record<string, Member> = {
  _supportedExtensions: { field: 'array' },
  _supportedAuth: { field: 'array' },
};

/**
 * MimeNode: header names and sender headers encoded once per mailing (compose.ts). Both are
 * wrapped, so both must also be what buildHeaders calls (looked for on a header block built at
 * start-up): nodemailer 10 left `_encodeHeaderValue` as an alias buildHeaders no longer calls.
 */
export const HEADER_MEMO_MEMBERS: Record<string, Member> = {
  _normalizeHeaderKey: { method: 1 },
  encodeHeaderValue: { method: 2 },
};

/**
 * SMTPPool: the finished message handed to the pool past nodemailer's Mailer (smtp.ts). The
 * object handed over is what the pool reads of a mail, `{ data, message: { getEnvelope,
 * messageId, getHeader, createReadStream } }`; the e2e tests send through it.
 */
export const POOL_MEMBERS: Record<string, Member> = {
  send: { method: 2 },
};

export interface Internals {
  /** MAIL FROM, RCPT TO and DATA in one write (pipelining.ts) */
  pipelining: boolean;
  /** the next mail's envelope behind the last message, one round trip a mail (pipelining.ts) */
  lookahead: boolean;
  /** the step a connection broke at (smtp.ts) */
  steps: boolean;
  /** extensions and login methods the server offered (check.ts) */
  diagnosis: boolean;
  /** header names and sender headers remembered (compose.ts) */
  headerMemo: boolean;
  /** the raw message straight to the pool, else through Mailer.sendMail (smtp.ts) */
  pool: boolean;
  /** "SMTPConnection._setEnvelope (a method of 2 arguments)", for each one not found */
  missing: string[];
}

export interface Classes {
  SMTPConnection: { prototype: object; new (options: object): object };
  SMTPPool: { prototype: object; new (options: object): object };
  PoolResource: { prototype: object; new (pool: object): object };
  MimeNode: { prototype: object; new (contentType?: string): object };
}

/** Which features nodemailer's inside allows, for these classes (nodemailer's own by default). */
export function detectInternals(classes: Classes = { SMTPConnection, SMTPPool, PoolResource, MimeNode } as unknown as Classes): Internals {
  const missing = new Set<string>();
  const instances = new Map<string, Record<string, unknown> | null>();
  const instance = (name: string, make: () => object): Record<string, unknown> | null => {
    if (!instances.has(name)) {
      try {
        instances.set(name, make() as Record<string, unknown>);
      } catch {
        instances.set(name, null);
      }
    }
    return instances.get(name)!;
  };
  const check = (className: string, proto: object, make: () => object, members: Record<string, Member>): boolean => {
    let ok = true;
    for (const [name, member] of Object.entries(members)) {
      let found: boolean;
      let wanted: string;
      if ('method' in member) {
        const fn = (proto as Record<string, unknown>)[name];
        found = typeof fn === 'function' && fn.length === member.method;
        wanted = `a method of ${member.method} argument${member.method === 1 ? '' : 's'}`;
      } else {
        const obj = instance(className, make);
        found = obj !== null && Object.hasOwn(obj, name) && (member.field !== 'array' || Array.isArray(obj[name]));
        wanted = member.field === 'array' ? 'a list set by the constructor' : 'a field set by the constructor';
      }
      if (!found) {
        ok = false;
        missing.add(`${className}.${name} (${wanted})`);
      }
    }
    return ok;
  };
  const { SMTPConnection: Connection, SMTPPool: Pool, PoolResource: Resource, MimeNode: Node } = classes;
  const connection = () => new Connection({});
  const pool = () => new Pool({});
  const lookahead = [
    check('SMTPPool', Pool.prototype, pool, LOOKAHEAD_POOL_MEMBERS),
    check('PoolResource', Resource.prototype, () => new Resource(pool()), LOOKAHEAD_RESOURCE_MEMBERS),
    check('SMTPConnection', Connection.prototype, connection, LOOKAHEAD_CONNECTION_MEMBERS),
  ].every(Boolean);
  const result = {
    pipelining: check('SMTPConnection', Connection.prototype, connection, PIPELINING_MEMBERS),
    lookahead,
    steps: check('SMTPConnection', Connection.prototype, connection, STEP_MEMBERS),
    diagnosis: check('SMTPConnection', Connection.prototype, connection, DIAGNOSIS_MEMBERS),
    headerMemo: check('MimeNode', Node.prototype, () => new Node('text/plain'), HEADER_MEMO_MEMBERS) && calledByBuildHeaders(Node, missing),
    pool: check('SMTPPool', Pool.prototype, () => ({}), POOL_MEMBERS),
  };
  // It stands on the envelope pipelining, and on mails that reach the pool straight.
  result.lookahead &&= result.pipelining && result.pool;
  return { ...result, missing: [...missing] };
}

/** Whether a header block's build calls the MimeNode methods mailer wraps, on one node. */
function calledByBuildHeaders(Node: Classes['MimeNode'], missing: Set<string>): boolean {
  const called = new Set<string>();
  try {
    const node = new Node('text/plain') as Record<string, unknown> & { setHeader(k: string, v: string): void; buildHeaders(): string };
    node.setHeader('From', 'Probe <probe@example.org>');
    for (const name of Object.keys(HEADER_MEMO_MEMBERS)) {
      const method = node[name] as (...args: unknown[]) => unknown;
      node[name] = function (this: unknown, ...args: unknown[]) {
        called.add(name);
        return method.apply(this, args);
      };
    }
    node.buildHeaders();
  } catch {
    // a node that cannot be built this way calls nothing mailer knows
  }
  const uncalled = Object.keys(HEADER_MEMO_MEMBERS).filter((name) => !called.has(name));
  for (const name of uncalled) missing.add(`MimeNode.${name} (called by buildHeaders)`);
  return uncalled.length === 0;
}

/** The one line MAILER_DEBUG=1 writes when mailer fell back; null when nothing is missing. */
export function fallbackNotice(found: Internals): string | null {
  if (found.missing.length === 0) return null;
  const off = [
    !found.pipelining && 'envelope pipelining',
    !found.lookahead && 'the next envelope behind the last message',
    !found.pool && 'direct hand-over to the pool',
    !found.headerMemo && 'remembered headers',
    !found.steps && 'the step a connection broke at',
    !found.diagnosis && "check's list of extensions",
  ].filter(Boolean).join(', ');
  return `mailer: nodemailer ${nodemailerVersion()} lacks ${found.missing.join(', ')}; without ${off}, it sends as plain nodemailer does (correct, slower)`;
}

function nodemailerVersion(): string {
  try {
    return String(createRequire(import.meta.url)('nodemailer/package.json').version);
  } catch {
    return '(version unknown)';
  }
}

/** What this nodemailer allows, looked at once when mailer starts. */
export const internals: Internals = detectInternals();

if (process.env.MAILER_DEBUG === '1') {
  const notice = fallbackNotice(internals);
  if (notice) process.stderr.write(`${notice}\n`);
}

/** The extensions the server offered at EHLO, for `mailer check`. */
export function offeredExtensions(connection: object): string[] {
  return internals.diagnosis ? [...(connection as { _supportedExtensions: string[] })._supportedExtensions] : [];
}

/** The login methods the server offered, for `mailer check`. */
export function offeredLogins(connection: object): string[] {
  return internals.diagnosis ? [...(connection as { _supportedAuth: string[] })._supportedAuth] : [];
}
