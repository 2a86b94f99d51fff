import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../store/store.js';

/**
 * The HTTP side of a mailing: the open pixel, one-click unsubscribe (RFC 8058) and a health
 * route. Only tokens of mailer's own sends count; an unknown or revoked token gets a 404 page
 * and changes nothing (the pixel still answers with its image, so a mail never shows an error).
 */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const TOKEN = '([A-Za-z0-9_-]{16,64})';

export function trackingHandler(store: Store, now: () => number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://mailer.invalid');
    const pixel = new RegExp(`^/o/${TOKEN}\\.gif$`).exec(url.pathname);
    const unsubscribe = new RegExp(`^/u/${TOKEN}$`).exec(url.pathname);
    try {
      if (url.pathname === '/health') return send(res, 200, 'application/json', '{"ok":true}');
      if (pixel && req.method === 'GET') {
        const found = store.sendByLiveToken(pixel[1]);
        if (found) store.addEvent(found.id, 'open', now());
        res.setHeader('Cache-Control', 'no-store, private');
        return send(res, 200, 'image/gif', PIXEL);
      }
      if (unsubscribe) {
        const found = store.sendByLiveToken(unsubscribe[1]);
        if (!found || !found.email) return page(res, 404, 'Link unknown', 'This link is not (or no longer) valid.');
        if (req.method === 'GET') {
          return page(res, 200, 'Unsubscribe', `Stop mails to ${escape(found.email)}?`,
            `<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`);
        }
        if (req.method === 'POST') {
          // RFC 8058: the POST itself is the consent; its body is "List-Unsubscribe=One-Click".
          req.resume();
          store.transaction(() => {
            store.suppress(found.email!, 'unsubscribed', now());
            store.addEvent(found.id, 'unsubscribe', now());
          });
          return page(res, 200, 'Unsubscribed', `${escape(found.email)} gets no more mails from us.`);
        }
        res.setHeader('Allow', 'GET, POST');
        return page(res, 405, 'Not allowed', 'Use the link in the mail.');
      }
      return page(res, 404, 'Not found', 'There is nothing here.');
    } catch {
      if (pixel) return send(res, 200, 'image/gif', PIXEL);
      return page(res, 500, 'Sorry', 'Something went wrong; please try again later.');
    }
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function page(res: ServerResponse, status: number, title: string, text: string, extra = ''): void {
  send(res, status, 'text/html; charset=utf-8',
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p>${extra}</body></html>\n`);
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
