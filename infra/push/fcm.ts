import { randomUUID } from 'node:crypto';
import type { Agent } from 'node:http';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getMessaging, type BatchResponse, type Message } from 'firebase-admin/messaging';
import { z } from 'zod';
import { serviceAccountCredential, ServiceAccountSchema } from './service-account-credential.js';
import type { PushNotification, PushOutcome, PushProvider, PushResult, PushTarget } from '../../gateways/ports/push-provider.js';

/**
 * PushProvider over Firebase Cloud Messaging (HTTP v1) with firebase-admin. Android and web
 * devices get FCM notifications; iOS devices get them through FCM's APNs bridge (the app
 * registers its FCM token, not a raw APNs token).
 *
 * One `sendEach` per call: one HTTP v1 request per device, results mapped per device:
 * - `messaging/registration-token-not-registered` (404 UNREGISTERED), `messaging/invalid-registration-token`,
 *   and `messaging/invalid-argument` whose message is about the registration token → unregistered;
 * - server unavailable (503, after firebase-admin's own retries), internal error (500), rate
 *   exceeded (429), network errors → transient;
 * - anything else (credentials refused, payload refused) → failed.
 *
 * The OAuth token comes from service-account-credential.ts (firebase-admin's cert() ignores the
 * agent for it). `httpAgent` routes every HTTPS call (FCM and the token fetch) through an agent: tests give
 * the local stand-in's (testing/fcm-stand-in.ts); a proxy could use it too. The legacy HTTP/1.1
 * transport is used because firebase-admin's HTTP/2 client ignores the agent.
 */


export type FcmPushProviderDeps = {
  /** A service-account key (the JSON file Google issues, parsed). */
  serviceAccount: unknown;
  /** Defaults to the service account's project_id. */
  projectId?: string;
  httpAgent?: Agent;
};

const UNREGISTERED = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
const TRANSIENT = new Set([
  'messaging/server-unavailable',
  'messaging/internal-error',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/unknown-error',
  'app/network-error',
  'app/network-timeout',
]);

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return '';
}

export function classifyFcmError(error: unknown): PushOutcome {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (UNREGISTERED.has(code)) return 'unregistered';
  if (code === 'messaging/invalid-argument' && /registration token/i.test(message)) return 'unregistered';
  if (TRANSIENT.has(code)) return 'transient';
  // Network trouble, also while fetching the OAuth token (firebase-admin reports that as app/invalid-credential).
  if ((code === '' || code === 'app/invalid-credential') && /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|socket hang up|timed out/i.test(message)) return 'transient';
  return 'failed';
}

/** The FCM v1 message for one device. */
export function fcmMessage(target: PushTarget, n: PushNotification): Message {
  const base = { token: target.token, notification: { title: n.title, body: n.body }, data: n.data };
  switch (target.platform) {
    case 'android':
      return { ...base, android: { priority: 'high', ...(n.collapseKey ? { collapseKey: n.collapseKey.slice(0, 64) } : {}), notification: { tag: n.collapseKey } } };
    case 'ios':
      return {
        ...base,
        apns: {
          headers: { 'apns-priority': '10', ...(n.collapseKey ? { 'apns-collapse-id': n.collapseKey.slice(0, 64) } : {}) },
          payload: { aps: { sound: 'default', ...(n.badge !== undefined ? { badge: n.badge } : {}), ...(n.collapseKey ? { threadId: n.collapseKey } : {}) } },
        },
      };
    case 'web':
      return { ...base, webpush: { headers: { Urgency: 'high' }, notification: { tag: n.collapseKey } } };
  }
}

export function createFcmPushProvider(deps: FcmPushProviderDeps) {
  const account = ServiceAccountSchema.safeParse(deps.serviceAccount);
  if (!account.success) throw new TypeError(`FCM service account: ${z.prettifyError(account.error)}`);
  const projectId = deps.projectId ?? account.data.project_id;
  const app: App = initializeApp(
    {
      credential: serviceAccountCredential(account.data, deps.httpAgent),
      projectId,
      ...(deps.httpAgent ? { httpAgent: deps.httpAgent } : {}),
    },
    `push-${randomUUID()}`,
  );
  const messaging = getMessaging(app);
  messaging.enableLegacyHttpTransport();
  let closed: Promise<void> | undefined;

  return {
    name: 'fcm',
    projectId,
    async send(targets: PushTarget[], notification: PushNotification): Promise<PushResult[]> {
      if (closed) throw new Error('the FCM push provider is closed');
      if (targets.length === 0) return [];
      const results: PushResult[] = [];
      // sendEach takes at most 500 messages per call.
      for (let i = 0; i < targets.length; i += 500) {
        const chunk = targets.slice(i, i + 500);
        let batch: BatchResponse;
        try {
          batch = await messaging.sendEach(chunk.map((t) => fcmMessage(t, notification)));
        } catch (error) {
          const outcome = classifyFcmError(error);
          const text = error instanceof Error ? error.message : String(error);
          for (const t of chunk) results.push({ token: t.token, outcome: outcome === 'unregistered' ? 'failed' : outcome, error: text });
          continue;
        }
        batch.responses.forEach((r, j) => {
          const token = chunk[j]!.token;
          if (r.success) results.push({ token, outcome: 'sent' });
          else results.push({ token, outcome: classifyFcmError(r.error), error: `${errorCode(r.error)}: ${r.error?.message ?? ''}` });
        });
      }
      return results;
    },
    close(): Promise<void> {
      closed ??= deleteApp(app);
      return closed;
    },
  } satisfies PushProvider & { projectId: string };
}
