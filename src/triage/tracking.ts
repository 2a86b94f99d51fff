import http, { type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { readBody } from '../http/body.js';
import { clientAddress, loggedPath } from '../http/access-log.js';
import type { Store } from '../store/store.js';
import { ALL_TOPICS, type LinkedSend } from '../domain/types.js';
import { LinkSigner, type LinkPurpose } from '../domain/token.js';
import { PAGE_HEADERS, plainPage, unsubscribePage, unsubscribedPage, type Page, type PageSettings, type PlainPage } from './pages.js';

/**
 * The HTTP side of a mailing: the open pixel, one-click unsubscribe (RFC 8058) and a health
 * route. Only links of mailer's own sends count; an unknown one gets a 404 page and changes
 * nothing (the pixel still answers with its image, so a mail never shows an error).
 *
 * It faces the open internet, so every request is bounded (time, header and body size), every
 * failure is answered and logged in one line rather than thrown, and nothing but a deliberate
 * POST changes anything: link scanners and image proxies fetch every URL of a mail.
 */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const VALUE = '([A-Za-z0-9_-]{16,64})';
const PIXEL_ROUTE = new RegExp(`^/o/${VALUE}\\.gif$`);
/** Any value: a malformed one is looked up too, so its 404 takes as long as an unknown one's. */
const UNSUBSCRIBE_ROUTE = /^\/u\/([^/]{0,200})$/;
const METHODS = 'GET, HEAD, POST';

/** A one-click POST is a few dozen bytes; a page's form not much more. */
export const MAX_BODY_BYTES = 16 * 1024;

export interface ServeLimits {
  /** the request line and headers must be in by then */
  headersTimeoutMs: number;
  /** the whole request, body included */
  requestTimeoutMs: number;
  /** an idle kept-alive connection is closed after this */
  keepAliveTimeoutMs: number;
  /** how often the two request timeouts are checked */
  checkEveryMs: number;
}

/** A request target as a log line shows it: link values cut to 6 characters, escaped, bounded. */
export const loggedTarget = (target: string | undefined): string => `"${loggedPath(target)}"`;

export const SERVE_LIMITS: ServeLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, checkEveryMs: 1_000 };

/**
 * The HTTP server of `mailer serve`, not yet listening. `log` gets one line per refused request.
 * `api` takes the requests under /api/ (serve --api), under the same limits.
 */
export function trackingServer(
  store: Store, now: () => number, log: (line: string) => void, limits: ServeLimits = SERVE_LIMITS, pages: PageSettings = { language: 'de' },
  api?: RequestListener,
): Server {
  const tracking = trackingHandler(store, now, log, pages);
  const server = http.createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: limits.checkEveryMs,
    maxHeaderSize: 16 * 1024,
  }, api ? (req, res) => ((req.url ?? '').startsWith('/api/') ? api(req, res) : tracking(req, res)) : tracking);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // What the parser refuses (a broken request line, an oversized header, a timeout) never
  // reaches the handler; answered here with the status and one line in the log.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    log(`bad request from ${socket.remoteAddress ?? '?'}: ${status} ${err.code ?? err.message}`);
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  // Node hands CONNECT to this event, not the handler, and drops the socket when nobody listens.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    log(`bad request from ${socket.remoteAddress ?? '?'}: 405 CONNECT ${loggedTarget(req.url)}`);
    socket.end(`HTTP/1.1 405 ${http.STATUS_CODES[405]}\r\nAllow: ${METHODS}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}

export function trackingHandler(store: Store, now: () => number, log: (line: string) => void, pages: PageSettings = { language: 'de' }) {
  const links = new LinkSigner(store.triage.linkSecret());
  const plain = (res: ServerResponse, kind: PlainPage) => page(res, plainPage(kind, pages));
  const notAllowed = (res: ServerResponse, allow: string) => {
    res.setHeader('Allow', allow);
    plain(res, 'not-allowed');
  };

  /**
   * The send of a link's value for this purpose. A mail sent before links had values of their
   * own carried the registration token in them; that token still opens its own links.
   */
  const linked = (purpose: LinkPurpose, value: string): LinkedSend | undefined => {
    const id = links.sendId(purpose, value);
    return id !== undefined ? store.triage.linkedSend({ id }) : store.triage.linkedSend({ legacyToken: value });
  };

  const route = async (req: IncomingMessage, res: ServerResponse, refuse: (status: 400 | 413, why: string) => void): Promise<void> => {
    const method = req.method ?? '';
    const path = pathOf(req.url);
    if (path === undefined) return refuse(400, 'not a valid request target');
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
      res.setHeader('Allow', METHODS);
      return plain(res, 'not-allowed');
    }
    if (path === '/health') {
      if (method === 'POST') return notAllowed(res, 'GET, HEAD');
      return send(res, 200, 'application/json', '{"ok":true}');
    }
    const pixel = PIXEL_ROUTE.exec(path);
    if (pixel) {
      if (method === 'POST') return notAllowed(res, 'GET, HEAD');
      // HEAD is a probe, not a mail program showing the image.
      if (method === 'GET') {
        const found = linked('open', pixel[1]);
        // A re-targeted address's mail went to someone else: their opening says nothing. A
        // send whose member was erased (no address left) records nothing about them again.
        if (found && !found.revoked && found.email) store.triage.addEvent(found.id, 'open', now());
      }
      res.setHeader('Cache-Control', 'no-store, private');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      return send(res, 200, 'image/gif', PIXEL);
    }
    const unsubscribe = UNSUBSCRIBE_ROUTE.exec(path);
    if (!unsubscribe) return plain(res, 'unknown');
    // Unsubscribing works for a re-targeted address too: whoever has it wants no more mail there.
    const found = linked('unsubscribe', unsubscribe[1]);
    if (!found || !found.email) {
      if (method === 'POST') req.resume();
      return plain(res, 'unknown');
    }
    // A GET only shows the page: link scanners fetch every URL of a mail.
    if (method !== 'POST') return page(res, unsubscribePage(found, links.value('confirm', found.id), pages));
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === 'too-large') {
      res.shouldKeepAlive = false;
      return refuse(413, `a body over ${MAX_BODY_BYTES} bytes`);
    }
    const fields = formFields(req.headers['content-type'], body);
    if (!fields) return refuse(400, `Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')} is not a form`);
    // RFC 8058 §3.1: the mail program's POST carries List-Unsubscribe=One-Click; the page's own
    // button carries the value only that page shows, so another site's form cannot press it.
    const oneClick = fields.get('List-Unsubscribe') === 'One-Click';
    const confirmed = fields.get('confirm') === links.value('confirm', found.id);
    if (!oneClick && !confirmed) return refuse(400, 'the body is neither List-Unsubscribe=One-Click nor the page\'s form');
    // One click stops the mail's topic; "all topics" only from the page's own button. Neither
    // stops a required mail: the address stays mailable for those.
    const topic = confirmed && fields.get('scope') === 'all' ? ALL_TOPICS : found.topic;
    const email = found.email;
    store.transaction(() => {
      // An opt-out recorded before keeps its date.
      store.triage.optOut(email, topic, 'unsubscribed', now(), true);
      store.triage.addEvent(found.id, 'unsubscribe', now());
    });
    return page(res, unsubscribedPage(found, topic, pages));
  };

  return (req: IncomingMessage, res: ServerResponse): void => {
    const refuse = (status: 400 | 413, why: string) => {
      log(`bad request from ${clientAddress(req)}: ${status} ${req.method} ${loggedTarget(req.url)}: ${why}`);
      res.shouldKeepAlive = false;
      plain(res, status === 413 ? 'too-large' : 'bad-request');
    };
    const failed = (err: unknown) => {
      log(`error on ${req.method} ${loggedTarget(req.url)}: ${(err as Error)?.message ?? err}`);
      if (res.headersSent) return void res.destroy();
      if (PIXEL_ROUTE.test(pathOf(req.url) ?? '')) return send(res, 200, 'image/gif', PIXEL);
      plain(res, 'error');
    };
    try {
      route(req, res, refuse).catch(failed);
    } catch (err) {
      failed(err);
    }
  };
}

/** The path of a request target, origin form or absolute form; undefined if it is no URL. */
function pathOf(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://mailer.invalid').pathname;
  } catch {
    return undefined;
  }
}


/** The fields of a form body (urlencoded or multipart, RFC 8058 allows both); undefined for any other type. */
export function formFields(contentType: string | undefined, body: Buffer): Map<string, string> | undefined {
  const [type, ...params] = (contentType ?? '').split(';').map((p) => p.trim());
  const kind = type.toLowerCase();
  if (kind === 'application/x-www-form-urlencoded') return new Map(new URLSearchParams(body.toString('utf8')));
  if (kind !== 'multipart/form-data') return undefined;
  const boundary = params.map((p) => /^boundary=(?:"([^"]+)"|(\S+))$/i.exec(p)).find(Boolean);
  const delimiter = boundary?.[1] ?? boundary?.[2];
  if (!delimiter) return undefined;
  const fields = new Map<string, string>();
  for (const part of body.toString('utf8').split(`--${delimiter}`).slice(1)) {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) continue;
    const name = /^content-disposition:\s*form-data;.*?\bname="([^"]*)"/im.exec(part.slice(0, headerEnd))?.[1];
    if (name !== undefined && !fields.has(name)) fields.set(name, part.slice(headerEnd + 4).replace(/\r\n$/, ''));
  }
  return fields;
}

/** HEAD gets the same head without the body (node leaves it out for HEAD). */
function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function page(res: ServerResponse, p: Page): void {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) res.setHeader(name, value);
  res.setHeader('Content-Language', p.language);
  send(res, p.status, 'text/html; charset=utf-8', p.html);
}
