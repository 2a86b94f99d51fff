import http from 'node:http';
import { randomBytes } from 'node:crypto';

/**
 * An OAuth2 authorization server for the tests, on 127.0.0.1: the refresh-token grant at
 * /token, the device authorization of RFC 8628 at /device (polled at /token), and token
 * introspection (RFC 7662) at /introspect for Dovecot's oauth2 passdb.
 */
export interface TokenEndpoint {
  url: string;
  tokenUrl: string;
  deviceUrl: string;
  introspectionUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** every access token handed out, in order */
  issued: string[];
  /** refresh-token grants asked for */
  grants: number;
  /** access tokens the mail servers take */
  valid: Set<string>;
  /** refresh tokens that no longer work (invalid_grant) */
  revoked: Set<string>;
  /** the next n access tokens handed out are already dead at the servers (expired early) */
  issueDead: number;
  /** expires_in of each access token */
  expiresIn: number;
  /** the next n refresh-token grants are answered 503, as a busy endpoint does */
  busy: number;
  /** the device flow: what the polls answer before the sign-in succeeds */
  devicePolls: string[];
  /** the refresh token the device flow hands out */
  deviceRefreshToken: string;
  close(): Promise<void>;
}

const secret = (prefix: string) => `${prefix}-${randomBytes(12).toString('base64url')}`;

export async function startTokenEndpoint(): Promise<TokenEndpoint> {
  const state: Omit<TokenEndpoint, 'url' | 'tokenUrl' | 'deviceUrl' | 'introspectionUrl' | 'close'> = {
    clientId: 'mailer-test-client', clientSecret: secret('cs'), refreshToken: secret('rt'),
    issued: [], grants: 0, valid: new Set(), revoked: new Set(), issueDead: 0, expiresIn: 3600, busy: 0,
    devicePolls: [], deviceRefreshToken: secret('rt-device'),
  };
  const answer = (res: http.ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (req.method !== 'POST') return answer(res, 405, { error: 'invalid_request' });
      if (req.url === '/introspect') {
        const token = form.get('token') ?? '';
        return answer(res, 200, state.valid.has(token) ? { active: true, username: 'bounces' } : { active: false });
      }
      if (req.url === '/device') {
        if (form.get('client_id') !== state.clientId) return answer(res, 400, { error: 'invalid_client' });
        return answer(res, 200, { device_code: 'dev-code-1', user_code: 'WDJB-MJHT', verification_uri: 'http://127.0.0.1/verify', expires_in: 600, interval: 0 });
      }
      if (req.url !== '/token') return answer(res, 404, { error: 'not found' });
      if (form.get('client_id') !== state.clientId) return answer(res, 401, { error: 'invalid_client' });
      const grant = form.get('grant_type');
      if (grant === 'urn:ietf:params:oauth:grant-type:device_code') {
        const next = state.devicePolls.shift();
        if (next) return answer(res, 400, { error: next });
        return answer(res, 200, { access_token: issue(), refresh_token: state.deviceRefreshToken, expires_in: state.expiresIn, token_type: 'Bearer' });
      }
      if (grant !== 'refresh_token') return answer(res, 400, { error: 'unsupported_grant_type' });
      state.grants++;
      if (state.busy > 0) {
        state.busy--;
        return answer(res, 503, { error: 'temporarily_unavailable' });
      }
      if (form.get('client_secret') !== state.clientSecret) return answer(res, 401, { error: 'invalid_client' });
      const rt = form.get('refresh_token') ?? '';
      if (state.revoked.has(rt) || (rt !== state.refreshToken && rt !== state.deviceRefreshToken)) {
        return answer(res, 400, { error: 'invalid_grant', error_description: 'AADSTS70000: The provided grant has expired or was revoked.' });
      }
      return answer(res, 200, { access_token: issue(), expires_in: state.expiresIn, token_type: 'Bearer' });
    });
  });
  const issue = () => {
    const token = secret('at');
    state.issued.push(token);
    if (state.issueDead > 0) state.issueDead--;
    else state.valid.add(token);
    return token;
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const endpoint = Object.assign(state, {
    url, tokenUrl: `${url}/token`, deviceUrl: `${url}/device`, introspectionUrl: `${url}/introspect`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  });
  return endpoint as TokenEndpoint;
}
