import { generateKeyPairSync } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A local stand-in for Google's OAuth token endpoint and FCM's HTTP v1 API, for tests of the real
 * firebase-admin adapter (fcm.ts). firebase-admin has no emulator variable, but it sends every
 * request through the `httpAgent` it is given: `agent` (an http.Agent that says it is an https
 * one) dials this server instead of oauth2.googleapis.com / fcm.googleapis.com, in plain HTTP.
 *
 * It answers:
 * - POST to any path but the send path: an OAuth access token (what the service-account
 *   credential fetches before it calls FCM);
 * - POST /v1/projects/<id>/messages:send: 200 {name}, or what the test scripted: an unregistered
 *   token (404 UNREGISTERED), a malformed token (400 INVALID_ARGUMENT), or the next N sends
 *   failing with a given status (503 UNAVAILABLE, 500 INTERNAL, 429 RESOURCE_EXHAUSTED).
 * Every send is recorded (accepted or not), with its bearer token and project id.
 */
export type RecordedSend = {
  projectId: string;
  authorization: string | undefined;
  /** The FCM v1 `message` object as sent. */
  message: { token?: string; notification?: { title?: string; body?: string }; data?: Record<string, string>; [key: string]: unknown };
  /** The status this stand-in answered. */
  status: number;
  at: number;
};

export type FcmStandIn = {
  /** Routes firebase-admin's HTTPS calls to this server (give it to initializeApp and cert). */
  agent: Agent;
  /** The access token this server hands out (FCM calls must carry it). */
  accessToken: string;
  sends: RecordedSend[];
  /** Sends that were answered 200. */
  delivered(): RecordedSend[];
  tokenRequests: number;
  /** FCM answers 404 UNREGISTERED for these tokens. */
  unregister(...tokens: string[]): void;
  /** FCM answers 400 INVALID_ARGUMENT ("not a valid FCM registration token") for these tokens. */
  malformed(...tokens: string[]): void;
  /** The next `count` sends (any token) fail with `status` (503, 500 or 429). */
  failNext(count: number, status: 503 | 500 | 429): void;
  close(): Promise<void>;
};

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

function fcmError(status: number, canonical: string, message: string, errorCode?: string) {
  return {
    error: {
      code: status,
      message,
      status: canonical,
      ...(errorCode ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] } : {}),
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFcmStandIn(): Promise<FcmStandIn> {
  const accessToken = `stand-in-access-token-${Math.random().toString(36).slice(2)}`;
  const unregistered = new Set<string>();
  const malformed = new Set<string>();
  const failures: number[] = [];
  const sends: RecordedSend[] = [];
  let tokenRequests = 0;
  let sequence = 0;

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const path = (req.url ?? '').split('?')[0] ?? '';
      const send = SEND_PATH.exec(path);
      if (req.method !== 'POST') return json(res, 405, { error: 'method not allowed' });
      if (send === null) {
        // The JWT-bearer grant: an RS256 assertion (three base64url parts) signed with the account's key.
        const form = new URLSearchParams(raw);
        const assertion = form.get('assertion') ?? '';
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || assertion.split('.').length !== 3) {
          return json(res, 400, { error: 'invalid_grant', error_description: 'expected a JWT-bearer grant' });
        }
        tokenRequests++;
        return json(res, 200, { access_token: accessToken, expires_in: 3600, token_type: 'Bearer' });
      }
      let message: RecordedSend['message'] = {};
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'object' && parsed.message !== null) {
          message = parsed.message as RecordedSend['message'];
        }
      } catch {
        // recorded with an empty message; answered 400 below
      }
      const record = (status: number) => sends.push({ projectId: decodeURIComponent(send[1]!), authorization: req.headers.authorization, message, status, at: Date.now() });
      if (req.headers.authorization !== `Bearer ${accessToken}`) {
        record(401);
        return json(res, 401, fcmError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'));
      }
      const failure = failures.shift();
      if (failure !== undefined) {
        record(failure);
        if (failure === 503) return json(res, 503, fcmError(503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'));
        if (failure === 429) return json(res, 429, fcmError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded.', 'QUOTA_EXCEEDED'));
        return json(res, 500, fcmError(500, 'INTERNAL', 'Internal error encountered.', 'INTERNAL'));
      }
      const token = typeof message.token === 'string' ? message.token : '';
      if (token === '' || malformed.has(token)) {
        record(400);
        return json(res, 400, fcmError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token', 'INVALID_ARGUMENT'));
      }
      if (unregistered.has(token)) {
        record(404);
        return json(res, 404, fcmError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'));
      }
      record(200);
      return json(res, 200, { name: `projects/${send[1]}/messages/${++sequence}` });
    })().catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  class StandInAgent extends Agent {
    // https.request refuses an agent whose protocol is not https:
    protocol = 'https:';
    // Returned synchronously: the agent then uses it as the request's socket (plain HTTP to us).
    override createConnection(): Socket {
      return connect(port, '127.0.0.1');
    }
  }
  const agent = new StandInAgent({ keepAlive: false });

  return {
    agent,
    accessToken,
    sends,
    delivered: () => sends.filter((s) => s.status === 200),
    get tokenRequests() {
      return tokenRequests;
    },
    unregister: (...tokens) => {
      for (const t of tokens) unregistered.add(t);
    },
    malformed: (...tokens) => {
      for (const t of tokens) malformed.add(t);
    },
    failNext: (count, status) => failures.push(...Array.from({ length: count }, () => status)),
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A throw-away service account (fresh RSA key) that the stand-in accepts; never valid at Google. */
export function throwAwayServiceAccount(projectId = 'stand-in-project') {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return {
    type: 'service_account',
    project_id: projectId,
    private_key_id: 'stand-in-key',
    private_key: privateKey,
    client_email: `push@${projectId}.iam.gserviceaccount.com`,
    client_id: '1',
    token_uri: 'https://oauth2.googleapis.com/token',
  };
}
