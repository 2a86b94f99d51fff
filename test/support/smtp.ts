import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
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
    disabledCommands: opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
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
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
          });
          cb(null, opts.acceptReply);
          if (opts.dieAfter !== undefined && messages.length >= opts.dieAfter) kill();
        };
        if (opts.delayMs) setTimeout(accept, opts.delayMs);
        else accept();
      });
    },
  };
  let dead = false;
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
