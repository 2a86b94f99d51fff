import fs from 'node:fs';
import path from 'node:path';
import type { OAuth2Settings } from '../config/settings.js';
import { secretMask } from '../config/smtp-url.js';

/**
 * OAuth2 for XOAUTH2 logins (Microsoft 365, Google Workspace): access tokens from the
 * refresh-token grant (RFC 6749, 6), renewed before they expire and once more when a server
 * refuses one; and the device-code flow of RFC 8628 that gets the refresh token in the first
 * place. No token is ever written anywhere but the refresh-token file of `mailer auth login`,
 * and every text that leaves here is masked.
 */

/** Why no access token came: the step `mailer check` and a stopped run name. */
export type TokenProblem = 'invalid_grant' | 'unreachable' | 'refused' | 'no-refresh-token';

export class TokenError extends Error {
  constructor(readonly problem: TokenProblem, message: string, readonly hint: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** How long a token request may take: a hung endpoint must not hold a cron run. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Renew this long before expiry (at most half the token's life), so no login meets an expired token. */
const RENEW_BEFORE_MS = 5 * 60_000;

interface Cached { token: string; expiresAt: number; lifetime: number }

export class AccessTokens {
  readonly user: string;
  private cached: Cached | null = null;
  private pending: Promise<string> | null = null;
  /**
   * The endpoint's last word on this refresh token (revoked, a wrong client): asked again in the
   * same run, it would only say so again, once for the mailbox and once more for each server.
   */
  private refusal: TokenError | null = null;
  /** every secret this process has seen: the refresh token, the client secret, each access token */
  private readonly secrets = new Set<string>();
  private masker: (text: string) => string = (t) => t;

  constructor(private readonly settings: OAuth2Settings, private readonly now: () => number = Date.now) {
    this.user = settings.user;
    this.remember(settings.refreshToken, settings.clientSecret);
  }

  /** where tokens come from, for messages: the token URL without query */
  get endpoint(): string {
    return endpointOf(this.settings.tokenUrl);
  }

  /** An access token valid for a while yet; `renew` fetches a new one (the server refused the last). */
  token(renew = false): Promise<string> {
    const c = this.cached;
    if (!renew && c && this.now() < c.expiresAt - Math.min(RENEW_BEFORE_MS, c.lifetime / 2)) return Promise.resolve(c.token);
    if (this.refusal) return Promise.reject(this.refusal);
    // Several connections logging in at once share one request.
    this.pending ??= this.refresh().catch((err: unknown) => {
      // A revoked grant or no refresh token at all: a busy endpoint (429, 5xx) is asked again.
      if (err instanceof TokenError && (err.problem === 'invalid_grant' || err.problem === 'no-refresh-token')) this.refusal = err;
      throw err;
    }).finally(() => { this.pending = null; });
    return this.pending;
  }

  /** The expiry of the current token (ms since the epoch), for nodemailer's own cache. */
  get expiresAt(): number {
    return this.cached ? this.cached.expiresAt - Math.min(RENEW_BEFORE_MS, this.cached.lifetime / 2) : 0;
  }

  /** Every token and secret out of sight, in its plain and base64 forms and inside an XOAUTH2 string. */
  mask(text: string): string {
    return this.masker(text);
  }

  private remember(...values: (string | undefined)[]): void {
    for (const v of values) if (v) this.secrets.add(v);
    const forms = [...this.secrets].flatMap((s) => [s, xoauth2String(this.user, s)]);
    this.masker = secretMask(this.user, forms);
  }

  private async refresh(): Promise<string> {
    const { refreshToken, clientId, clientSecret, scope } = this.settings;
    if (!refreshToken) {
      throw new TokenError('no-refresh-token', `no OAuth2 refresh token for ${this.user}`,
        'run `mailer auth login`, or set MAILER_OAUTH2_REFRESH_TOKEN');
    }
    const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId };
    if (clientSecret) form.client_secret = clientSecret;
    if (scope) form.scope = scope;
    const started = this.now();
    const body = await postForm(this.settings.tokenUrl, form, this.mask.bind(this));
    if (body.status !== 200 || typeof body.json.access_token !== 'string' || !body.json.access_token) {
      const error = typeof body.json.error === 'string' ? body.json.error : `HTTP ${body.status}`;
      const description = typeof body.json.error_description === 'string' ? `: ${this.mask(body.json.error_description).split(/\r?\n/)[0]}` : '';
      if (error === 'invalid_grant') {
        throw new TokenError('invalid_grant', `the OAuth2 token endpoint ${this.endpoint} refused the refresh token of ${this.user} (invalid_grant${description})`,
          'the refresh token was revoked or has expired (a changed password, an admin, months unused): run `mailer auth login` again');
      }
      throw new TokenError('refused', `the OAuth2 token endpoint ${this.endpoint} gave no access token (${error}${description})`,
        error === 'invalid_client' ? 'check oauth2.clientId and MAILER_OAUTH2_CLIENT_SECRET' : 'check the oauth2 settings (tokenUrl, clientId) and MAILER_OAUTH2_CLIENT_SECRET');
    }
    const token = body.json.access_token as string;
    const lifetime = Math.max(0, Number(body.json.expires_in) || 3600) * 1000;
    this.remember(token);
    if (typeof body.json.refresh_token === 'string' && body.json.refresh_token && body.json.refresh_token !== refreshToken) {
      // A provider that rotates refresh tokens (Microsoft may) hands a new one with each grant.
      this.remember(body.json.refresh_token);
      this.settings.refreshToken = body.json.refresh_token;
      if (this.settings.refreshTokenFromFile) writeTokenFile(this.settings.tokenFile, body.json.refresh_token);
    }
    this.cached = { token, expiresAt: started + lifetime, lifetime };
    return token;
  }
}

/** The SASL XOAUTH2 initial response (base64), as SMTP and IMAP send it. */
export function xoauth2String(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

function endpointOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the OAuth2 token endpoint';
  }
}

interface FormReply { status: number; json: Record<string, unknown> }

/** POSTs a form and reads a JSON answer, within REQUEST_TIMEOUT_MS. */
async function postForm(url: string, form: Record<string, string>, mask: (t: string) => string): Promise<FormReply> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : e.cause?.code ?? e.cause?.message ?? e.message;
    throw new TokenError('unreachable', `the OAuth2 token endpoint ${endpointOf(url)} cannot be reached (${mask(String(why))})`,
      'check oauth2.tokenUrl and the network (a proxy or firewall in the way?)');
  }
  let json: Record<string, unknown> = {};
  try {
    const parsed = await res.json() as unknown;
    if (parsed && typeof parsed === 'object') json = parsed as Record<string, unknown>;
  } catch {
    // not JSON: the status says enough
  }
  return { status: res.status, json };
}

/**
 * Writes the refresh token readable and writable by its owner only, whatever the umask: a new
 * file is made 0600 and renamed over the old, so the token is never in a file others can read.
 */
export function writeTokenFile(file: string, refreshToken: string): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, `${JSON.stringify({ refreshToken, savedAt: new Date().toISOString() })}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}

export interface DevicePrompt {
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
  expiresInS: number;
}

/**
 * RFC 8628: asks oauth2.deviceUrl for a user code, shows it, and polls tokenUrl until the user
 * has signed in (authorization_pending: wait; slow_down: wait 5 s longer; expired_token or
 * access_denied: stop). Resolves with the refresh token.
 */
export async function deviceLogin(settings: OAuth2Settings, prompt: (p: DevicePrompt) => void, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)), now: () => number = Date.now): Promise<string> {
  const mask = (t: string) => t;
  if (!settings.deviceUrl) {
    throw new TokenError('refused', 'the oauth2 setting has no "deviceUrl" (the device authorization endpoint of RFC 8628)',
      'add "deviceUrl" to "oauth2" in mailer.json, e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/devicecode');
  }
  const ask: Record<string, string> = { client_id: settings.clientId };
  if (settings.scope) ask.scope = settings.scope;
  const start = await postForm(settings.deviceUrl, ask, mask);
  const j = start.json;
  // Google calls it verification_url, RFC 8628 verification_uri.
  const uri = j.verification_uri ?? j.verification_url;
  if (start.status !== 200 || typeof j.device_code !== 'string' || typeof j.user_code !== 'string' || typeof uri !== 'string') {
    const error = typeof j.error === 'string' ? j.error : `HTTP ${start.status}`;
    throw new TokenError('refused', `the device authorization endpoint ${endpointOf(settings.deviceUrl)} gave no user code (${error})`, 'check oauth2.deviceUrl, oauth2.clientId and oauth2.scope');
  }
  const expiresIn = Number(j.expires_in) || 900;
  prompt({ verificationUri: uri, verificationUriComplete: typeof j.verification_uri_complete === 'string' ? j.verification_uri_complete : undefined, userCode: j.user_code, expiresInS: expiresIn });
  let interval = (j.interval === undefined ? 5 : Math.max(0, Number(j.interval) || 0)) * 1000;
  const deadline = now() + expiresIn * 1000;
  const poll: Record<string, string> = { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: j.device_code, client_id: settings.clientId };
  if (settings.clientSecret) poll.client_secret = settings.clientSecret;
  for (;;) {
    await sleep(interval);
    if (now() > deadline) break;
    const r = await postForm(settings.tokenUrl, poll, mask);
    if (r.status === 200 && typeof r.json.refresh_token === 'string' && r.json.refresh_token) return r.json.refresh_token;
    if (r.status === 200) {
      throw new TokenError('refused', 'the sign-in worked, but the token endpoint gave no refresh token', 'ask for offline access in oauth2.scope (Microsoft: add "offline_access")');
    }
    const error = typeof r.json.error === 'string' ? r.json.error : `HTTP ${r.status}`;
    if (error === 'authorization_pending') continue;
    if (error === 'slow_down') {
      interval += 5000;
      continue;
    }
    if (error === 'expired_token') break;
    if (error === 'access_denied') throw new TokenError('refused', 'the sign-in was declined (access_denied)', 'run `mailer auth login` again and accept the request');
    throw new TokenError(error === 'invalid_grant' ? 'invalid_grant' : 'refused', `the token endpoint ${endpointOf(settings.tokenUrl)} refused the sign-in (${error})`, 'check oauth2.tokenUrl and oauth2.clientId');
  }
  throw new TokenError('refused', `the code ${j.user_code} expired before the sign-in was completed`, 'run `mailer auth login` again and sign in within the time shown');
}
