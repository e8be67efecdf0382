import { request as httpsRequest } from 'node:https';
import type { Agent } from 'node:http';
import type { Credential, GoogleOAuthAccessToken } from 'firebase-admin/app';
import { SignJWT, importPKCS8 } from 'jose';
import { z } from 'zod';

/**
 * A firebase-admin Credential for a service account: the OAuth 2.0 JWT-bearer grant Google
 * documents (an RS256 assertion signed with the account's key, exchanged at its token_uri for an
 * access token), cached until shortly before it expires.
 *
 * Why not firebase-admin's `cert(serviceAccount, httpAgent)`: in 13.10 it builds its
 * google-auth-library client with `fromJSON(json)` and drops the agent, so the token fetch always
 * dials oauth2.googleapis.com. This credential honours `httpAgent` for the token fetch too, so one
 * agent routes every call (a proxy, or the test stand-in) and the tested path is the production one.
 */
export const ServiceAccountSchema = z.object({
  project_id: z.string().min(1),
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  token_uri: z.url().optional(),
});
export type ServiceAccount = z.infer<typeof ServiceAccountSchema>;

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';
const TokenReply = z.object({ access_token: z.string().min(1), expires_in: z.number().positive() });

function post(url: string, form: string, agent: Agent | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('token request timed out')));
    req.on('error', reject);
    req.end(form);
  });
}

export function serviceAccountCredential(account: ServiceAccount, httpAgent?: Agent): Credential {
  const tokenUri = account.token_uri ?? DEFAULT_TOKEN_URI;
  let key: ReturnType<typeof importPKCS8> | undefined;
  let cached: { token: GoogleOAuthAccessToken; expiresAt: number } | undefined;

  return {
    async getAccessToken(): Promise<GoogleOAuthAccessToken> {
      if (cached && cached.expiresAt - 5 * 60_000 > Date.now()) return { ...cached.token, expires_in: Math.floor((cached.expiresAt - Date.now()) / 1000) };
      key ??= importPKCS8(account.private_key, 'RS256');
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ scope: SCOPE })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(account.client_email)
        .setAudience(tokenUri)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(await key);
      const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
      const { status, body } = await post(tokenUri, form, httpAgent);
      let parsed: z.ZodSafeParseResult<z.infer<typeof TokenReply>> | undefined;
      try {
        parsed = TokenReply.safeParse(JSON.parse(body));
      } catch {
        parsed = undefined;
      }
      if (status !== 200 || !parsed?.success) throw new Error(`service account token request to ${tokenUri} failed: HTTP ${status}`);
      cached = { token: { access_token: parsed.data.access_token, expires_in: parsed.data.expires_in }, expiresAt: Date.now() + parsed.data.expires_in * 1000 };
      return cached.token;
    },
  };
}
