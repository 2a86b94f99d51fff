import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { badInput } from '../errors.js';
import { parseDuration, parseRetention } from './when.js';
import { parseRate } from './rate.js';
import { parseSmtpUrl } from './smtp-url.js';
import { parseImapUrl } from './imap-url.js';
import { wholeNumber } from './numbers.js';

/**
 * Settings: flags beat environment variables beat the file (`--config`, else ./mailer.json).
 * The SMTP password is only ever read from $MAILER_SMTP_PASSWORD or the URL, and never shown.
 */
export interface Settings {
  db: string;
  smtp: string[];
  smtpPassword?: string;
  outbox: string;
  from?: string;
  replyTo?: string;
  testTo?: string;
  footer?: string;
  /** the footer file's text, read once */
  footerText: string | null;
  rate?: string;
  concurrency?: number;
  reportTo?: string;
  bounceAddress?: string;
  publicUrl?: string;
  /** waits before each retry of a deferred send (default 15m, 1h, 4h, 12h, 24h) */
  retryBackoff?: number[];
  /** provider quotas, counted in the database across runs */
  maxPerHour?: number;
  maxPerDay?: number;
  /** open pixel and List-Unsubscribe in every mail when publicUrl is set (default true) */
  track: boolean;
  /** envelope sender bounces+<send id>@domain, so each bounce names its send */
  verp: boolean;
  /** a mail whose encoded message is larger is not sent (skip reason too-large) */
  maxMessageBytes: number;
  /** month names of plans ({{month}}), and the recipient pages' language for a member who has no language field (default de) */
  language: Language;
  /** the sender the recipient pages name (else the mail's From name) */
  organisation?: string;
  /** refuse a server that offers no TLS (health data, invoices): exit 3 before anything is sent */
  requireTls: boolean;
  /** where `serve --api` finds a template by its name (default ./templates beside the settings file) */
  templateDir: string;
  /** the DNS servers the deliverability check asks ("127.0.0.1:5353"): tests and split DNS; else the system's */
  dnsServers?: string[];
  /** where bounces land: imaps://user@imap.example.org/INBOX; password from $MAILER_IMAP_PASSWORD */
  bounceMailbox?: string;
  imapPassword?: string;
  /** XOAUTH2 for SMTP and the bounce mailbox (Microsoft 365, Google Workspace) */
  oauth2?: OAuth2Settings;
  /** how long stored messages (and system-mail data) and the send log are kept; unset: for ever */
  retention: { messages?: number; log?: number };
  configFile: string | null;
}

/** The oauth2 setting, with its secrets from the environment (or the file `mailer auth login` wrote). */
export interface OAuth2Settings {
  tokenUrl: string;
  clientId: string;
  user: string;
  /** the device authorization endpoint of RFC 8628, for `mailer auth login` */
  deviceUrl?: string;
  /** the scope asked for by `mailer auth login` */
  scope?: string;
  clientSecret?: string;
  /** from $MAILER_OAUTH2_REFRESH_TOKEN, else from tokenFile */
  refreshToken?: string;
  /** the refresh token came from tokenFile (a rotated one is written back there) */
  refreshTokenFromFile: boolean;
  /** where `mailer auth login` keeps the refresh token: beside the database, readable by its owner only */
  tokenFile: string;
}

export interface SettingsFlags {
  db?: string;
  config?: string;
  smtp?: string[];
  outbox?: string;
  from?: string;
  replyTo?: string;
  testTo?: string;
  rate?: string;
  concurrency?: string;
  reportTo?: string;
}

const FILE_KEYS = ['smtp', 'from', 'replyTo', 'testTo', 'footer', 'rate', 'concurrency', 'reportTo', 'bounceAddress', 'publicUrl', 'outbox', 'db', 'retryBackoff', 'maxPerHour', 'maxPerDay', 'track', 'verp', 'maxMessageBytes', 'language', 'organisation', 'requireTls', 'templateDir', 'dnsServers', 'bounceMailbox', 'oauth2', 'retention'];

/** The languages of the recipient pages. */
export const LANGUAGES = ['de', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

/** Providers refuse mails over 10-25 MB; a mail that large is a mistake in a mailing. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10_000_000;
/** parallel SMTP connections, and workers of the send queue, when not set */
export const DEFAULT_CONCURRENCY = 4;

export function resolveSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const configFile = flags.config ? path.resolve(cwd, flags.config) : fs.existsSync(path.join(cwd, 'mailer.json')) ? path.join(cwd, 'mailer.json') : null;
  const file = configFile ? readConfig(configFile) : {};
  const fileDir = configFile ? path.dirname(configFile) : cwd;
  const pick = <T>(flag: T | undefined, envValue: T | undefined, fileValue: T | undefined) => flag ?? envValue ?? fileValue;

  const smtpFile = file.smtp === undefined ? [] : Array.isArray(file.smtp) ? file.smtp : [file.smtp];
  const smtp = flags.smtp?.length ? flags.smtp : env.MAILER_SMTP_URL ? env.MAILER_SMTP_URL.split(/\s+/).filter(Boolean) : smtpFile;
  const footer = file.footer ? path.resolve(fileDir, String(file.footer)) : undefined;
  let footerText: string | null = null;
  if (footer) {
    try {
      footerText = fs.readFileSync(footer, 'utf8').replace(/\r\n?/g, '\n').replace(/\s+$/, '');
    } catch {
      throw badInput(`${configFile}: footer file ${footer} cannot be read`, 'fix the "footer" path in the settings file (relative to that file)');
    }
  }
  const concurrencyText = pick(flags.concurrency, env.MAILER_CONCURRENCY, file.concurrency === undefined ? undefined : String(file.concurrency));
  let concurrency: number | undefined;
  if (concurrencyText !== undefined) {
    concurrency = wholeNumber(concurrencyText, 'concurrency', 1, 256);
  }
  // Checked now, before any command writes: a typo must not leave a mailing queued behind it.
  const smtpUrls = smtp.map(String);
  smtpUrls.forEach((url) => parseSmtpUrl(url));
  const bounceMailbox = pick(undefined, env.MAILER_BOUNCE_MAILBOX, file.bounceMailbox === undefined ? undefined : String(file.bounceMailbox));
  if (bounceMailbox !== undefined) parseImapUrl(bounceMailbox);
  const db = path.resolve(cwd, pick(flags.db, env.MAILER_DB, file.db ? path.resolve(fileDir, String(file.db)) : undefined) ?? 'mailer.db');
  const rate = pick(flags.rate, env.MAILER_RATE, file.rate === undefined ? undefined : String(file.rate));
  if (rate !== undefined) parseRate(rate);
  return {
    db,
    smtp: smtpUrls,
    smtpPassword: env.MAILER_SMTP_PASSWORD || undefined,
    outbox: path.resolve(cwd, pick(flags.outbox, env.MAILER_OUTBOX, file.outbox ? path.resolve(fileDir, String(file.outbox)) : undefined) ?? 'outbox'),
    from: pick(flags.from, env.MAILER_FROM, file.from),
    replyTo: pick(flags.replyTo, env.MAILER_REPLY_TO, file.replyTo),
    testTo: pick(flags.testTo, env.MAILER_TEST_TO, file.testTo),
    footer,
    footerText,
    rate,
    concurrency,
    reportTo: pick(flags.reportTo, env.MAILER_REPORT_TO, file.reportTo),
    bounceAddress: pick(undefined, env.MAILER_BOUNCE_ADDRESS, file.bounceAddress),
    publicUrl: pick(undefined, env.MAILER_PUBLIC_URL, file.publicUrl),
    retryBackoff: file.retryBackoff === undefined ? undefined : parseBackoff(file.retryBackoff, configFile!),
    maxPerHour: optionalWholeNumber(env.MAILER_MAX_PER_HOUR ?? file.maxPerHour, 'maxPerHour'),
    maxPerDay: optionalWholeNumber(env.MAILER_MAX_PER_DAY ?? file.maxPerDay, 'maxPerDay'),
    track: switchSetting(file, 'track', true, configFile),
    verp: switchSetting(file, 'verp', false, configFile),
    maxMessageBytes: optionalWholeNumber(env.MAILER_MAX_MESSAGE_BYTES ?? file.maxMessageBytes, 'maxMessageBytes') ?? DEFAULT_MAX_MESSAGE_BYTES,
    language: languageSetting(pick(undefined, env.MAILER_LANGUAGE, file.language === undefined ? undefined : String(file.language)), configFile),
    organisation: organisationSetting(file.organisation, configFile),
    requireTls: switchSetting(file, 'requireTls', false, configFile),
    templateDir: path.resolve(fileDir, file.templateDir ? String(file.templateDir) : 'templates'),
    dnsServers: dnsServersSetting(env.MAILER_DNS_SERVERS ? env.MAILER_DNS_SERVERS.split(/[\s,]+/).filter(Boolean) : file.dnsServers, configFile ?? 'MAILER_DNS_SERVERS'),
    bounceMailbox,
    imapPassword: env.MAILER_IMAP_PASSWORD || undefined,
    oauth2: file.oauth2 === undefined ? undefined : oauth2Setting(file.oauth2, configFile!, env, db),
    retention: retentionSetting(file.retention, configFile),
    configFile,
  };
}

/** What node's resolver takes: an address, with a port as 127.0.0.1:5353 or [::1]:5353. */
function dnsServersSetting(value: unknown, source: string): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  const wrong = list.find((v) => {
    if (typeof v !== 'string') return true;
    const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(v) ?? /^([0-9a-f:]+)()$/i.exec(v);
    return !m || net.isIP(m[1]) === 0 || (m[2] !== undefined && m[2] !== '' && (Number(m[2]) < 1 || Number(m[2]) > 65535));
  });
  if (list.length === 0 || wrong !== undefined) {
    throw badInput(`${source}: "dnsServers" must be a list of DNS server addresses such as ["192.0.2.53", "127.0.0.1:5353"], not ${JSON.stringify(wrong ?? value)}`);
  }
  return list as string[];
}

const OAUTH2_KEYS = ['tokenUrl', 'clientId', 'user', 'deviceUrl', 'scope'];

/** The file `mailer auth login` keeps the refresh token in: beside the database it belongs to. */
export function oauth2TokenFile(db: string): string {
  return `${db}.oauth2.json`;
}

/**
 * The oauth2 setting: endpoints and ids in the file; the client secret and refresh token never
 * there (a settings file is shared and copied), but from the environment or the token file.
 */
function oauth2Setting(value: unknown, file: string, env: NodeJS.ProcessEnv, db: string): OAuth2Settings {
  const example = '"oauth2": {"tokenUrl": "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token", "clientId": "…", "user": "verein@verein.example"}';
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badInput(`${file}: "oauth2" must be an object`, `write ${example}`);
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !OAUTH2_KEYS.includes(k));
  if (unknown.length) {
    const secret = unknown.some((k) => /secret|token$/i.test(k) && k !== 'tokenUrl');
    throw badInput(`${file}: "oauth2" has unknown key ${unknown.map((k) => `"${k}"`).join(', ')}`,
      secret ? 'secrets do not go in the settings file: set MAILER_OAUTH2_CLIENT_SECRET and MAILER_OAUTH2_REFRESH_TOKEN (or run `mailer auth login`)' : `keys: ${OAUTH2_KEYS.join(', ')}`);
  }
  for (const key of ['tokenUrl', 'clientId', 'user']) {
    if (typeof o[key] !== 'string' || !(o[key] as string).trim()) throw badInput(`${file}: "oauth2" needs "${key}"`, `write ${example}`);
  }
  for (const key of ['tokenUrl', 'deviceUrl']) {
    if (o[key] === undefined) continue;
    let url: URL | null = null;
    try { url = new URL(String(o[key])); } catch { /* below */ }
    if (!url || !/^https?:$/.test(url.protocol)) throw badInput(`${file}: "oauth2"."${key}" must be a URL such as https://login.example.org/token, not ${JSON.stringify(o[key])}`);
  }
  const tokenFile = oauth2TokenFile(db);
  const fromFile = readTokenFile(tokenFile);
  return {
    tokenUrl: String(o.tokenUrl), clientId: String(o.clientId), user: String(o.user).trim(),
    deviceUrl: o.deviceUrl === undefined ? undefined : String(o.deviceUrl),
    scope: o.scope === undefined ? undefined : String(o.scope),
    clientSecret: env.MAILER_OAUTH2_CLIENT_SECRET || undefined,
    refreshToken: env.MAILER_OAUTH2_REFRESH_TOKEN || fromFile,
    refreshTokenFromFile: !env.MAILER_OAUTH2_REFRESH_TOKEN && !!fromFile,
    tokenFile,
  };
}

function readTokenFile(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // A damaged file is as good as none: the token step then says there is no refresh token and
  // to run `mailer auth login`, which must itself start to write a new one (refusing it here
  // would stop every command, that one too).
  try {
    const token = (JSON.parse(text) as { refreshToken?: unknown }).refreshToken;
    return typeof token === 'string' && token ? token : undefined;
  } catch {
    return undefined;
  }
}

/** `retention: {"messages": "90d", "log": "2y"}`, either may be left out. */
function retentionSetting(value: unknown, file: string | null): { messages?: number; log?: number } {
  if (value === undefined) return {};
  const example = 'write e.g. "retention": {"messages": "90d", "log": "2y"}';
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badInput(`${file}: "retention" must be an object, not ${JSON.stringify(value)}`, example);
  const out: { messages?: number; log?: number } = {};
  for (const [key, v] of Object.entries(value)) {
    if (key !== 'messages' && key !== 'log') throw badInput(`${file}: "retention" has an unknown key "${key}"`, `its keys are "messages" and "log"; ${example}`);
    const ms = typeof v === 'string' ? parseRetention(v) : null;
    if (ms === null) throw badInput(`${file}: "retention.${key}" must be a period such as "90d", "6w" or "2y", not ${JSON.stringify(v)}`, example);
    out[key] = ms;
  }
  return out;
}

function languageSetting(value: string | undefined, file: string | null): Language {
  if (value === undefined) return 'de';
  const language = LANGUAGES.find((l) => l === value.trim().toLowerCase());
  if (!language) throw badInput(`${file ?? 'MAILER_LANGUAGE'}: "language" must be one of ${LANGUAGES.map((l) => `"${l}"`).join(', ')}, not ${JSON.stringify(value)}`);
  return language;
}

/** A yes/no setting: a string such as "yes" would otherwise pass as off, and requireTls off sends health data in the clear. */
function switchSetting(file: Record<string, unknown>, key: string, fallback: boolean, source: string | null): boolean {
  const value = file[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw badInput(`${source}: "${key}" must be true or false, not ${JSON.stringify(value)}`, `write "${key}": ${!fallback}`);
  return value;
}

function organisationSetting(value: unknown, file: string | null): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || /[\r\n]/.test(value)) {
    throw badInput(`${file}: "organisation" must be the sender's name on one line, e.g. "Verein e.V."`);
  }
  return value.trim();
}

function parseBackoff(value: unknown, file: string): number[] {
  const list = Array.isArray(value) ? value.map((v) => parseDuration(String(v))) : [null];
  if (list.length === 0 || list.some((v) => v === null)) {
    throw badInput(`${file}: "retryBackoff" must be a list of waits like ["15m", "1h", "4h", "12h", "24h"]`);
  }
  return list as number[];
}

function optionalWholeNumber(value: unknown, key: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return wholeNumber(value, `"${key}"`);
}

function readConfig(file: string): Record<string, any> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw badInput(`settings file ${file} cannot be read`, 'check the --config path');
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw badInput(`settings file ${file} is not valid JSON: ${(err as Error).message}`, 'fix the file; keys: ' + FILE_KEYS.join(', '));
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw badInput(`settings file ${file} must hold one JSON object`, 'keys: ' + FILE_KEYS.join(', '));
  }
  const unknown = Object.keys(data).filter((k) => !FILE_KEYS.includes(k));
  if (unknown.length) {
    throw badInput(`settings file ${file}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')}`, 'keys: ' + FILE_KEYS.join(', '));
  }
  return data as Record<string, any>;
}
