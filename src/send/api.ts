import type { IncomingMessage, ServerResponse } from 'node:http';
import { MailerError, badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Settings } from '../config/settings.js';
import { API_KEY_NAME, bearerKey, hashApiKey, matchingKey, newApiKey } from '../domain/api-key.js';
import { deliverSystemMails, queueSystemMail, resultOf, templateByName, type FieldLabel } from './system.js';
import type { OpenTransports } from './session.js';
import { readBody } from '../http/body.js';
import { clientAddress, loggedPath } from '../http/access-log.js';

/**
 * `serve --api`: system mails asked for over HTTP by a shop or a registration page.
 *   POST /api/send      {"template","to","data","key"}  -> 202 {"send","status"}, a repeated key 200
 *   GET  /api/send/<id>                                  -> 200 {"send","status","key"}
 * Every request carries `Authorization: Bearer <key>` (mailer api-key create). A missing and a
 * wrong key get the same 401, so an answer never says which keys exist. Templates are found by
 * name in the template folder only; a name that is a path is not found (404).
 */
export const MAX_API_BODY_BYTES = 1024 * 1024;
/** With no run holding the database, a mail queued by another process is sent within this. */
const SWEEP_MS = 5_000;
const SEND_ROUTE = /^\/api\/send\/(\d{1,15})$/;

const apiLabel: FieldLabel = (field) => `"${field}"`;

export interface ApiOptions {
  store: Store;
  settings: Settings;
  now: () => number;
  openTransports: OpenTransports;
  /** one line per refused request or failure; never a key */
  log: (line: string) => void;
}

export interface Api {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** stops the sweep; the delivery in hand finishes */
  close(): Promise<void>;
}

export function apiHandler(opts: ApiOptions): Api {
  const { store, settings, now, log } = opts;
  // One delivery at a time in this process: the send lock is per process, so two would both hold it.
  let deliveries: Promise<unknown> = Promise.resolve();
  const deliver = (): Promise<unknown> => {
    deliveries = deliveries.then(() => deliverSystemMails(store, opts.openTransports, settings, now)).catch((err) => {
      log(`api: delivery failed: ${(err as Error)?.message ?? err}`);
    });
    return deliveries;
  };
  // A mail queued while a run held the database and left when it ended: sent from here.
  const sweep = setInterval(() => {
    if (store.sends.queuedSystemSends(1).length > 0) void deliver();
  }, SWEEP_MS);
  sweep.unref();

  const route = async (req: IncomingMessage, res: ServerResponse, refuse: (status: number, why: string) => void): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://mailer.invalid').pathname;
    if (!matchingKey(bearerKey(req.headers.authorization), store.apiKeys.hashes())) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      req.resume();
      return refuse(401, 'missing or unknown API key');
    }
    const status = SEND_ROUTE.exec(path);
    if (status) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
      const send = store.sends.send(Number(status[1]));
      // Only system mails are the API's to tell about.
      if (!send || !send.data) return json(res, 404, { error: `no system mail ${status[1]}` });
      return json(res, 200, { ...resultOf(send, false), repeated: undefined, reason: send.reason, sentAt: send.sentAt === null ? null : new Date(send.sentAt).toISOString() });
    }
    if (path !== '/api/send') return json(res, 404, { error: 'no such route; POST /api/send, GET /api/send/<id>' });
    if (req.method !== 'POST') return notAllowed(res, 'POST');
    const body = await readBody(req, MAX_API_BODY_BYTES);
    if (body === 'too-large') return refuse(413, `a body over ${MAX_API_BODY_BYTES} bytes`);
    let request: unknown;
    try {
      request = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return refuse(400, `the body is not JSON: ${(err as Error).message}`);
    }
    if (!request || typeof request !== 'object' || Array.isArray(request)) return refuse(400, 'the body must be a JSON object {"template","to","data","key"}');
    const r = request as Record<string, unknown>;
    if (r.key !== undefined && typeof r.key !== 'string') return refuse(400, '"key" must be text');
    let queued;
    try {
      // A repeated key needs no template: it answers with the first send whatever this one asks.
      const first = typeof r.key === 'string' ? store.sends.sendByKey(r.key) : undefined;
      if (first) return json(res, 200, resultOf(first, true));
      const template = templateByName(settings.templateDir, r.template, settings.footerText);
      if (!template) return json(res, 404, { error: `no template ${JSON.stringify(typeof r.template === 'string' ? r.template.slice(0, 100) : r.template ?? null)} in the template folder` });
      queued = queueSystemMail(store, { template, to: r.to as string, data: r.data, key: r.key as string | undefined, settings, now }, apiLabel);
    } catch (err) {
      if (err instanceof MailerError) return refuse(400, err.message);
      throw err;
    }
    if (queued.repeated) return json(res, 200, resultOf(queued.send, true));
    await deliver();
    const send = store.sends.send(queued.send.id)!;
    return json(res, 202, { send: send.id, status: send.status });
  };

  return {
    handle(req, res) {
      const refuse = (status: number, why: string) => {
        log(`api: refused ${req.method} ${loggedPath(req.url)} from ${clientAddress(req)}: ${status} ${why}`);
        if (status === 413 || status === 400) res.shouldKeepAlive = false;
        json(res, status, { error: status === 401 ? 'unauthorized' : why });
      };
      route(req, res, refuse).catch((err) => {
        log(`api: error on ${req.method} ${loggedPath(req.url)}: ${(err as Error)?.message ?? err}`);
        if (res.headersSent) return void res.destroy();
        json(res, 500, { error: 'internal error; see the log of mailer serve' });
      });
    },
    async close() {
      clearInterval(sweep);
      await deliveries;
    },
  };
}

function notAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow);
  json(res, 405, { error: `method not allowed; use ${allow}` });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}


/** A new key for `name`: returned once, only its hash is stored. */
export function createApiKey(store: Store, name: string, now: number): string {
  if (!API_KEY_NAME.test(name)) throw badInput(`"${name}" is not a key name`, 'name it after the program that uses it: letters, digits, . _ - (at most 64)');
  const key = newApiKey();
  if (!store.apiKeys.add(name, hashApiKey(key), now)) throw badInput(`there is already a key "${name}"`, `revoke it first (mailer api-key revoke ${name}), or choose another name`);
  return key;
}

export function revokeApiKey(store: Store, name: string): void {
  if (!store.apiKeys.remove(name)) throw badInput(`no key "${name}"`, 'see the names with `mailer api-key list`');
}
