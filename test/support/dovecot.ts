import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { closedPort } from './smtp.js';

/**
 * A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`; `.ci/run` installs it),
 * started from a configuration of its own in a temp folder — its own base_dir, a passwd-file
 * with one user, a Maildir under the folder, plain IMAP on 127.0.0.1 (ssl = no: the tests use
 * imap://, the TLS path is imapflow's and node's). Run as root (CI), its mail processes run as
 * nobody; otherwise everything runs as the current user (Dovecot's "rootless" set-up).
 */
export interface TestImapServer {
  port: number;
  user: string;
  password: string;
  /** imap://user@127.0.0.1:port/INBOX */
  url: string;
  /** imaps://user@127.0.0.1:tlsPort/INBOX, with `tls` */
  tlsUrl?: string;
  /** a client logged in as the user, for putting mails in and looking at them */
  client(): Promise<ImapFlow>;
  log(): string;
  stop(): Promise<void>;
}

export interface DovecotOptions {
  /** XOAUTH2 logins, each token checked at this introspection URL (RFC 7662, POST token=…) */
  introspectionUrl?: string;
  /** also imaps:// (implicit TLS) with this certificate and key (PEM files) */
  tls?: { certFile: string; keyFile: string };
}

export function dovecotInstalled(): boolean {
  return ['/usr/sbin/dovecot', '/usr/bin/dovecot', '/usr/local/sbin/dovecot'].some((f) => fs.existsSync(f));
}

export async function startDovecot(opts: DovecotOptions = {}): Promise<TestImapServer> {
  if (!dovecotInstalled()) throw new Error('Dovecot is not installed: apt-get install -y dovecot-imapd (.ci/run does this)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-dovecot-'));
  // The mail processes of a root Dovecot run as nobody: they must reach the folder.
  fs.chmodSync(dir, 0o755);
  const root = process.getuid?.() === 0;
  const me = os.userInfo();
  const uid = root ? 65534 : me.uid;
  const gid = root ? 65534 : me.gid;
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  fs.mkdirSync(path.join(dir, 'run'));
  if (root) fs.chownSync(home, uid, gid);
  const user = 'bounces';
  const password = 'imap-geheim-42';
  fs.writeFileSync(path.join(dir, 'passwd'), `${user}:{PLAIN}${password}\n`);
  const port = await closedPort();
  const tlsPort = opts.tls ? await closedPort() : 0;
  const oauth2 = opts.introspectionUrl ? `
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf.ext
}` : '';
  if (opts.introspectionUrl) {
    fs.writeFileSync(path.join(dir, 'oauth2.conf.ext'), `introspection_mode = post\nintrospection_url = ${opts.introspectionUrl}\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n`);
  }
  const conf = `
protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/run/state
instance_name = mailer-test-${port}
log_path = ${dir}/dovecot.log
${opts.tls ? `ssl = yes\nssl_cert = <${opts.tls.certFile}\nssl_key = <${opts.tls.keyFile}` : 'ssl = no'}
disable_plaintext_auth = no
auth_mechanisms = plain login${opts.introspectionUrl ? ' xoauth2 oauthbearer' : ''}
${root ? 'default_internal_user = dovecot\ndefault_login_user = dovenull' : `default_internal_user = ${me.username}\ndefault_login_user = ${me.username}`}
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}${oauth2}
userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${home}/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${tlsPort}
    ssl = yes
  }
${root ? '' : '  chroot =\n'}}
${root ? '' : 'service anvil {\n  chroot =\n}\n'}`;
  const confFile = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(confFile, conf);
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  const log = () => `${output}${fs.existsSync(path.join(dir, 'dovecot.log')) ? fs.readFileSync(path.join(dir, 'dovecot.log'), 'utf8') : ''}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForGreeting(port, log, child);
  const server: TestImapServer = {
    port, user, password,
    url: `imap://${user}@127.0.0.1:${port}/INBOX`,
    tlsUrl: opts.tls ? `imaps://${user}@127.0.0.1:${tlsPort}/INBOX` : undefined,
    async client() {
      const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: password }, logger: false, disableAutoIdle: true });
      await c.connect();
      return c;
    },
    log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  process.once('exit', () => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return server;
}

async function waitForGreeting(port: number, log: () => string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dovecot exited (${child.exitCode}):\n${log()}`);
    const greeting = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let text = '';
      s.setTimeout(1000, () => { s.destroy(); resolve(text); });
      s.on('data', (d) => { text += d.toString(); if (/\* OK .*ready/.test(text)) { s.destroy(); resolve(text); } });
      s.on('error', () => resolve(''));
    });
    if (/ready/.test(greeting)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`dovecot did not greet on 127.0.0.1:${port}:\n${log()}`);
}
