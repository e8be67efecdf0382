import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack } from '../testing/api-stack.js';

/** POST / GET / DELETE /api/v1/devices through the whole stack (embedded). */
describe('push devices API', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite');
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('registers a device: 201, then 200 for the same token again; the platform follows the latest call', async () => {
    const bob = await stack.client.register('bob');
    const first = await stack.client.as(bob).post('/api/v1/devices', { platform: 'android', token: 'bob-token-1' });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ device_id: expect.stringMatching(/^[0-9a-f-]{36}$/), platform: 'android', token: 'bob-token-1', created_at: expect.any(String), updated_at: expect.any(String) });
    const again = await stack.client.as(bob).post('/api/v1/devices', { platform: 'ios', token: 'bob-token-1' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ device_id: first.body.device_id, platform: 'ios' });
    expect((await stack.client.as(bob).get('/api/v1/devices')).body.devices).toHaveLength(1);
  });

  it('refuses a token another user holds (409 device_token_taken): it never moves silently', async () => {
    const carol = await stack.client.register('carol');
    const dave = await stack.client.register('dave');
    expect((await stack.client.as(carol).post('/api/v1/devices', { platform: 'web', token: 'shared-phone' })).status).toBe(201);
    const taken = await stack.client.as(dave).post('/api/v1/devices', { platform: 'web', token: 'shared-phone' });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toEqual({ code: 'device_token_taken', message: expect.stringMatching(/^token: /) });
    expect((await stack.client.as(carol).get('/api/v1/devices')).body.devices.map((d: { token: string }) => d.token)).toEqual(['shared-phone']);
    expect((await stack.client.as(dave).get('/api/v1/devices')).body.devices).toEqual([]);
  });

  it('deletes a device by a real-length token (FCM tokens are about 160 characters, more URL-encoded)', async () => {
    const jo = await stack.client.register('jo');
    const token = `${'fcm-token:APA91b'}${'x_y-z'.repeat(40)}/${'q'.repeat(60)}`;
    expect((await stack.client.as(jo).post('/api/v1/devices', { platform: 'android', token })).status).toBe(201);
    expect((await stack.client.as(jo).delete(`/api/v1/devices/${encodeURIComponent(token)}`)).status).toBe(204);
    expect((await stack.client.as(jo).get('/api/v1/devices')).body.devices).toEqual([]);
  });

  it('deletes one of your own devices by id or by token (204); anything else is 404', async () => {
    const erin = await stack.client.register('erin');
    const frank = await stack.client.register('frank');
    const byId = (await stack.client.as(erin).post('/api/v1/devices', { platform: 'android', token: 'erin:token/1' })).body;
    // Her second device logs in apart (a session holds one push token).
    const login = await stack.client.anonymous.post('/api/v1/auth/login', { username: erin.username, password: 'correct horse battery' });
    expect(login.status).toBe(200);
    await stack.client.as({ ...erin, token: login.body.token }).post('/api/v1/devices', { platform: 'ios', token: 'erin-token-2' });
    const franks = (await stack.client.as(frank).post('/api/v1/devices', { platform: 'android', token: 'frank-token' })).body;

    const notMine = await stack.client.as(erin).delete(`/api/v1/devices/${franks.device_id}`);
    expect(notMine.status).toBe(404);
    expect(notMine.body.error.code).toBe('device_not_found');
    expect((await stack.client.as(erin).delete('/api/v1/devices/frank-token')).status).toBe(404);
    expect((await stack.client.as(erin).delete(`/api/v1/devices/${byId.device_id}`)).status).toBe(204);
    expect((await stack.client.as(erin).delete(`/api/v1/devices/${byId.device_id}`)).status).toBe(404);
    expect((await stack.client.as(erin).delete('/api/v1/devices/erin-token-2')).status).toBe(204);
    expect((await stack.client.as(erin).get('/api/v1/devices')).body.devices).toEqual([]);
    expect((await stack.client.as(frank).get('/api/v1/devices')).body.devices).toHaveLength(1);
  });

  it('a token with reserved characters is deleted URL-encoded', async () => {
    const gina = await stack.client.register('gina');
    await stack.client.as(gina).post('/api/v1/devices', { platform: 'android', token: 'gi/na:token?x' });
    expect((await stack.client.as(gina).delete(`/api/v1/devices/${encodeURIComponent('gi/na:token?x')}`)).status).toBe(204);
  });

  it('refuses bad bodies with 400 naming the field, and anonymous callers with 401', async () => {
    const hank = await stack.client.register('hank');
    const post = (body: unknown) => stack.client.as(hank).post('/api/v1/devices', body);
    const cases: [unknown, RegExp][] = [
      [{ token: 'x' }, /^platform: /],
      [{ platform: 'windows', token: 'x' }, /^platform: /],
      [{ platform: 'android' }, /^token: /],
      [{ platform: 'android', token: '' }, /^token: /],
      [{ platform: 'android', token: 'has space' }, /^token: expected printable ASCII/],
      [{ platform: 'android', token: 'x'.repeat(4097) }, /^token: /],
      [{ platform: 'android', token: 42 }, /^token: /],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
      expect(res.body.error.message).toMatch(message);
    }
    expect((await stack.client.anonymous.post('/api/v1/devices', { platform: 'android', token: 'x' })).status).toBe(401);
    expect((await stack.client.anonymous.delete('/api/v1/devices/x')).status).toBe(401);
  });
});
