import { isIP } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * One line per request of `mailer serve`, for the service's journal:
 *
 *   2026-12-02T08:00:00.000Z 203.0.113.7 "POST /u/1k-AbC…" 200 3ms
 *
 * time (ISO, UTC), client, "method path", status ("-" when the client went before the answer was
 * sent), milliseconds. What a path carries that opens something is cut: a link value is as good
 * as the link (it unsubscribes the member; a mail from before links had values of their own
 * carried the registration token there), so the value after /u/ or /o/, and any other run of 16
 * or more token characters, keeps its first 6 characters only. The query is left out (mailer's
 * links have none) and headers are never logged, so no API key reaches the line. The request
 * target is the client's: whatever is not printable ASCII is written as %XX, a quote or a
 * backslash too, and it is cut at 200 characters, so a hostile path can neither break the line
 * nor forge another.
 */
export function logRequests(server: Server, write: (line: string) => void, now: () => number): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.writableFinished ? String(res.statusCode) : '-';
      write(`${new Date(now()).toISOString()} ${clientAddress(req)} "${safe(req.method ?? '-', 16)} ${loggedPath(req.url)}" ${status} ${ms < 10 ? ms.toFixed(1) : Math.round(ms)}ms`);
    });
  });
}

/** A link value in a path: after /u/ or /o/ whatever it is, elsewhere a long run of token characters. */
const LINK_VALUE = /(\/[uo]\/)([^/?#.]{6})[^/?#.]+|([A-Za-z0-9_-]{6})[A-Za-z0-9_-]{10,}/g;
const MAX_PATH = 200;

/** The path of a request target as the log shows it: link values cut, the query left out, escaped, bounded. */
export function loggedPath(target: string | undefined): string {
  const raw = target ?? '';
  const query = raw.search(/[?#]/);
  const path = (query < 0 ? raw : raw.slice(0, query)).slice(0, MAX_PATH * 4);
  const cut = path.replace(LINK_VALUE, (_all, route: string | undefined, kept6: string | undefined, run6: string | undefined) => route ? `${route}${kept6}…` : `${run6}…`);
  const shown = safe(cut, MAX_PATH);
  return query < 0 ? shown : `${shown}?…`;
}

/** Printable ASCII but for quote and backslash; anything else as %XX of its UTF-8 (… stays, it marks a cut). */
function safe(text: string, max: number): string {
  let out = '';
  for (const c of text) {
    const shown = (c > ' ' && c <= '~' && c !== '"' && c !== '\\') || c === '…'
      ? c
      : [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    if (out.length + shown.length > max) return `${out}…`;
    out += shown;
  }
  return out;
}

/**
 * The client of a request. Behind a reverse proxy on the same machine every connection comes
 * from loopback, and the proxy names the client in X-Forwarded-For; its last entry is the one
 * the proxy itself added (an earlier one is whatever the client claimed). That header is
 * believed only from a loopback peer: from anyone else it is the client's own word, and the
 * socket's address is logged.
 */
export function clientAddress(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? '-';
  const forwarded = req.headers['x-forwarded-for'];
  if (!forwarded || !isLoopback(peer)) return peer;
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',').pop()!.trim();
  return isIP(last) ? last : peer;
}

function isLoopback(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/**
 * A stop as a service manager expects it, prepared before the server listens: `stop()` takes
 * no new connection, closes idle kept-alive ones at once, and answers the requests in hand with
 * Connection: close, so each connection ends with its answer. A connection that goes idle
 * otherwise is closed at the next check (every 100 ms: node has no event for it); those still
 * open after `boundMs` (the request timeout has ended them by then: a backstop) are cut.
 */
export function gracefulStop(server: Server, boundMs: number): () => Promise<void> {
  const inHand = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (stopping) res.shouldKeepAlive = false;
    inHand.add(res);
    res.once('close', () => inHand.delete(res));
  });
  return () => new Promise((resolve) => {
    stopping = true;
    for (const res of inHand) if (!res.headersSent) res.shouldKeepAlive = false;
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    const backstop = setTimeout(() => server.closeAllConnections(), boundMs);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(backstop);
      resolve();
    });
  });
}
