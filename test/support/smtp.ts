import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  /** it came over TLS */
  secure?: boolean;
}

export interface TestServerOptions {
  /** address → reply, e.g. '550 5.1.1 User unknown' */
  reject?: Record<string, string>;
  /** require AUTH with this user and password */
  auth?: { user: string; pass: string };
  /** a hostile server: a refused login is answered with the password it was sent */
  echoPasswordOnAuthFailure?: boolean;
  /** the text after "250 " when a message is accepted */
  acceptReply?: string;
  /** answer 421 and close the connection when this address is given in RCPT TO */
  closeOn?: string[];
  /** refuse every sender (MAIL FROM) with this reply, e.g. '553 5.7.1 Sender address rejected' */
  rejectSender?: string;
  /** milliseconds before each message is accepted (a slow server, to kill a run mid-way) */
  delayMs?: number;
  /** after this many accepted messages the server dies: no listener, every connection cut */
  dieAfter?: number;
  /** after this many accepted messages the next ones wait, unanswered, until `release()` */
  holdAfter?: number;
  /** address → reply given after the whole message was read (the server refuses the mail, not the address) */
  rejectData?: Record<string, string>;
  /** offer STARTTLS with this key and certificate */
  tls?: { key: Buffer; cert: Buffer };
  /** offer AUTH XOAUTH2 only, and take the access tokens in this set (a refused one gets RFC 7628's 334 error challenge) */
  xoauth2?: { valid: Set<string>; user: string; echoTokenOnFailure?: boolean; refuseWith535?: boolean };
}

export interface TestServer {
  port: number;
  url: string;
  messages: ReceivedMessage[];
  /** replies can change while the server runs (greylisting that lifts) */
  reject: Record<string, string>;
  close(): Promise<void>;
  /** the server dies at once: listener closed, connections cut */
  kill(): void;
  /** messages held by `holdAfter` are answered, and no more are held */
  release(): void;
}

function replyError(reply: string): Error & { responseCode: number } {
  const m = /^(\d{3})\s+(.*)$/.exec(reply)!;
  const err = new Error(m[2]) as Error & { responseCode: number };
  err.responseCode = Number(m[1]);
  return err;
}

/** A real SMTP server on 127.0.0.1, on a free port, with failure injection per recipient. */
export async function startSmtpServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const messages: ReceivedMessage[] = [];
  const reject = { ...(opts.reject ?? {}) };
  const options: SMTPServerOptions = {
    logger: false,
    disabledCommands: [...(opts.tls ? [] : ['STARTTLS']), ...(opts.auth || opts.xoauth2 ? [] : ['AUTH'])],
    ...(opts.xoauth2 ? { authMethods: ['XOAUTH2'] } : {}),
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
    authOptional: !opts.auth && !opts.xoauth2,
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
      if (opts.xoauth2) {
        const x = opts.xoauth2;
        if (auth.method === 'XOAUTH2' && auth.username === x.user && x.valid.has(auth.accessToken ?? '')) return cb(null, { user: auth.username });
        if (x.refuseWith535) return cb(Object.assign(new Error('5.7.3 Authentication unsuccessful'), { responseCode: 535 }));
        if (x.echoTokenOnFailure) return cb(Object.assign(new Error(`5.7.8 token ${auth.accessToken} not accepted`), { responseCode: 535 }));
        return cb(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } } as never);
      }
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) cb(null, { user: auth.username });
      else if (opts.echoPasswordOnAuthFailure) cb(Object.assign(new Error(`5.7.8 Authentication failed for ${auth.password}`), { responseCode: 535 }));
      else cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onMailFrom(_address, _session, cb) {
      if (opts.rejectSender) return cb(replyError(opts.rejectSender));
      cb();
    },
    onRcptTo(address, session, cb) {
      const to = address.address.toLowerCase();
      if (opts.closeOn?.includes(to)) {
        return cb(Object.assign(new Error('4.3.2 Service shutting down, closing connection'), { responseCode: 421 }));
      }
      if (reject[to]) return cb(replyError(reject[to]));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const accept = () => {
          if (dead) return;
          const refused = session.envelope.rcptTo.map((r) => opts.rejectData?.[r.address.toLowerCase()]).find(Boolean);
          if (refused) return cb(replyError(refused));
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            secure: session.secure,
            raw: Buffer.concat(chunks),
          });
          cb(null, opts.acceptReply);
          if (opts.dieAfter !== undefined && messages.length >= opts.dieAfter) kill();
        };
        if (held && opts.holdAfter !== undefined && messages.length >= opts.holdAfter) held.push(accept);
        else if (opts.delayMs) setTimeout(accept, opts.delayMs);
        else accept();
      });
    },
  };
  let dead = false;
  let held: (() => void)[] | null = [];
  const server = new SMTPServer({ ...options, closeTimeout: 1000 } as SMTPServerOptions);
  const kill = () => {
    dead = true;
    server.server.close();
    const internals = server as unknown as { connections: Set<{ _socket: { destroy(): void } }> };
    for (const c of internals.connections) c._socket.destroy();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => {});
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    reject,
    close: () => new Promise((resolve) => (dead ? resolve() : server.close(() => resolve()))),
    kill,
    release() {
      const waiting = held ?? [];
      held = null;
      waiting.forEach((accept) => accept());
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on. */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Where a raw server breaks a session: the connection cut (RST) or silent. */
export type Breaks = 'cut-after-dot' | 'silent-after-dot' | 'cut-at-data' | 'silent-at-auth';

export interface RawServer {
  port: number;
  url: string;
  /** MAIL FROM and RCPT TO lines as they arrived, byte for byte (smtp-server decodes punycode) */
  commands: string[];
  /** messages whose final dot arrived */
  dots: number;
  /** messages accepted with 250 */
  accepted: number;
  close(): Promise<void>;
}

/**
 * A raw SMTP server on 127.0.0.1 that breaks the first `times` sessions at one point — after
 * the message's final dot, at DATA, at the login — and accepts mail normally after that.
 */
export async function startBreakingServer(breaks: Breaks | null, times = Infinity): Promise<RawServer> {
  const net = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const state: RawServer = { port: 0, url: '', commands: [], dots: 0, accepted: 0, close: async () => {} };
  let broken = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = '';
    let inData = false;
    const breaking = () => breaks !== null && broken < times;
    socket.write('220 breaking ESMTP\r\n');
    socket.on('data', (data: Buffer) => {
      buffer += data.toString('utf8');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (inData) {
          if (line !== '.') continue;
          inData = false;
          state.dots++;
          if (breaking() && breaks!.endsWith('after-dot')) {
            broken++;
            // RST: the mail is all there, the reply never comes; or silence until the client gives up.
            if (breaks === 'cut-after-dot') socket.resetAndDestroy();
            continue;
          }
          state.accepted++;
          socket.write(`250 2.0.0 queued as ${state.accepted}\r\n`);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'MAIL' || verb === 'RCPT') state.commands.push(line);
        if (verb === 'EHLO') socket.write('250-breaking\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n');
        else if (verb === 'AUTH') {
          if (breaking() && breaks === 'silent-at-auth') broken++;
          else socket.write('235 2.7.0 ok\r\n');
        } else if (verb === 'DATA') {
          if (breaking() && breaks === 'cut-at-data') {
            broken++;
            socket.resetAndDestroy();
            return;
          }
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as import('node:net').AddressInfo).port;
  state.url = `smtp://127.0.0.1:${state.port}`;
  state.close = () => new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
  return state;
}
