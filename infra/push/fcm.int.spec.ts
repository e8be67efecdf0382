import { describe, expect, it } from 'vitest';
import { pushProviderContract } from './contract.js';
import { classifyFcmError, createFcmPushProvider } from './fcm.js';
import { startFcmStandIn, throwAwayServiceAccount } from './testing/fcm-stand-in.js';

/**
 * The real FCM adapter (firebase-admin 13.10, HTTP v1 over its legacy HTTP/1.1 transport) against
 * the local FCM stand-in: every HTTPS call, the OAuth token fetch included, goes through the
 * stand-in's agent.
 */
pushProviderContract('fcm (firebase-admin against the FCM stand-in)', async () => {
  const standIn = await startFcmStandIn();
  return {
    provider: createFcmPushProvider({ serviceAccount: throwAwayServiceAccount(), httpAgent: standIn.agent }),
    unregister: (token: string) => standIn.unregister(token),
    teardown: () => standIn.close(),
  };
}, { reportsUnregistered: true });

describe('FCM push provider', () => {
  async function setup(projectId?: string) {
    const standIn = await startFcmStandIn();
    const provider = createFcmPushProvider({ serviceAccount: throwAwayServiceAccount('sa-project'), projectId, httpAgent: standIn.agent });
    return { standIn, provider, [Symbol.asyncDispose]: async () => { await provider.close(); await standIn.close(); } };
  }
  const n = { title: 'Alice', body: '3 new messages from Alice', data: { conversation_id: 'c1', count: '3' }, collapseKey: 'c1', badge: 3 };

  it('sends an HTTP v1 message per device, shaped per platform, with an OAuth token fetched once', async () => {
    await using t = await setup();
    const results = await t.provider.send(
      [
        { token: 'tok-android', platform: 'android' },
        { token: 'tok-ios', platform: 'ios' },
        { token: 'tok-web', platform: 'web' },
      ],
      n,
    );
    expect(results.every((r) => r.outcome === 'sent')).toBe(true);
    await t.provider.send([{ token: 'tok-android', platform: 'android' }], n);
    expect(t.standIn.tokenRequests).toBe(1); // cached
    const [android, ios, web] = t.standIn.sends;
    for (const s of t.standIn.sends) {
      expect(s.projectId).toBe('sa-project');
      expect(s.authorization).toBe(`Bearer ${t.standIn.accessToken}`);
      expect(s.message.notification).toEqual({ title: 'Alice', body: '3 new messages from Alice' });
      expect(s.message.data).toEqual({ conversation_id: 'c1', count: '3' });
    }
    expect(android!.message).toMatchObject({ token: 'tok-android', android: { priority: 'high', collapse_key: 'c1', notification: { tag: 'c1' } } });
    expect(ios!.message).toMatchObject({
      token: 'tok-ios',
      apns: { headers: { 'apns-priority': '10', 'apns-collapse-id': 'c1' }, payload: { aps: { sound: 'default', badge: 3, 'thread-id': 'c1' } } },
    });
    expect(web!.message).toMatchObject({ token: 'tok-web', webpush: { headers: { Urgency: 'high' }, notification: { tag: 'c1' } } });
  });

  it('uses FCM_PROJECT_ID over the service account project', async () => {
    await using t = await setup('other-project');
    await t.provider.send([{ token: 't', platform: 'android' }], n);
    expect(t.standIn.sends[0]!.projectId).toBe('other-project');
  });

  it('maps UNREGISTERED and a malformed token to unregistered, 500 and 429 to transient', async () => {
    await using t = await setup();
    t.standIn.unregister('gone');
    t.standIn.malformed('bad');
    const results = await t.provider.send(
      [
        { token: 'gone', platform: 'android' },
        { token: 'bad', platform: 'android' },
      ],
      n,
    );
    expect(results.map((r) => r.outcome)).toEqual(['unregistered', 'unregistered']);
    expect(results[0]!.error).toMatch(/registration-token-not-registered/);
    expect(results[1]!.error).toMatch(/invalid-argument/);
    t.standIn.failNext(1, 500);
    expect((await t.provider.send([{ token: 'ok', platform: 'android' }], n))[0]!.outcome).toBe('transient');
    t.standIn.failNext(1, 429);
    expect((await t.provider.send([{ token: 'ok', platform: 'android' }], n))[0]!.outcome).toBe('transient');
    expect((await t.provider.send([{ token: 'ok', platform: 'android' }], n))[0]!.outcome).toBe('sent');
  });

  it('a 503 is retried by firebase-admin itself within one send', async () => {
    await using t = await setup();
    t.standIn.failNext(1, 503);
    expect((await t.provider.send([{ token: 'ok', platform: 'android' }], n))[0]!.outcome).toBe('sent');
    expect(t.standIn.sends.map((s) => s.status)).toEqual([503, 200]);
  });

  it('an unreachable OAuth token endpoint is a transient failure (retried later, devices kept)', async () => {
    const broken = createFcmPushProvider({ serviceAccount: { ...throwAwayServiceAccount(), token_uri: 'https://127.0.0.1:1/token' } });
    const [result] = await broken.send([{ token: 'x', platform: 'android' }], n);
    await broken.close();
    expect(result).toMatchObject({ token: 'x', outcome: 'transient' });
    expect(result!.error).toMatch(/ECONNREFUSED/);
  });

  it('refuses a service account without its key fields', () => {
    expect(() => createFcmPushProvider({ serviceAccount: { project_id: 'p' } })).toThrow(/client_email/);
  });

  it('classifies errors', () => {
    const err = (code: string, message = '') => Object.assign(new Error(message), { code });
    expect(classifyFcmError(err('messaging/registration-token-not-registered'))).toBe('unregistered');
    expect(classifyFcmError(err('messaging/invalid-argument', 'The registration token is not a valid FCM registration token'))).toBe('unregistered');
    expect(classifyFcmError(err('messaging/invalid-argument', 'Invalid JSON payload received'))).toBe('failed');
    expect(classifyFcmError(err('messaging/server-unavailable'))).toBe('transient');
    expect(classifyFcmError(err('messaging/mismatched-credential'))).toBe('failed');
    expect(classifyFcmError(new Error('socket hang up'))).toBe('transient');
  });
});
