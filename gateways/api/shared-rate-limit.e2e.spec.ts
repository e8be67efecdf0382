import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateServer } from '../../infra/testing/private-servers.js';
import { until } from '../testing/sdk-clients.js';
import { createApiStack, type ApiStack, type Registered } from './testing/api-stack.js';

/**
 * Two API processes on one Redis count requests against one budget per user and per address (the
 * request rate limit and the failure budget), so adding API processes does not multiply what one
 * client may do. While that Redis is down the limits let requests through uncounted (and answer at
 * once), and they count again once it is back.
 */
describe('rate limits shared by API processes through Redis', () => {
  let redis: PrivateServer;
  let first: ApiStack;
  let second: ApiStack;
  let alice: Registered;
  let bob: Registered;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `rl_${randomBytes(3).toString('hex')}:`, RATE_LIMIT_MAX: '12', AUTH_FAILURE_LIMIT_MAX: '3' };
    first = await createApiStack('pglite', { env });
    second = await createApiStack('pglite', { env });
    // Two registrations: 2 of the address's 12 requests (every test client is 127.0.0.1 to inject()).
    alice = await first.client.register('rl_alice');
    bob = await first.client.register('rl_bob');
  }, 180_000);
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await redis?.close();
  }, 60_000);

  it('one budget per address across both processes, for failures and for requests alike', async () => {
    // Failed logins, alternating between the processes: 3 in all, then 429 before any password is checked.
    const login = (stack: ApiStack, i: number) => stack.client.anonymous.post('/api/v1/auth/login', { username: alice.username, password: `wrong guess number ${i}` });
    const failures = [(await login(first, 1)).status, (await login(second, 2)).status, (await login(first, 3)).status, (await login(second, 4)).status, (await login(first, 5)).status];
    expect(failures).toEqual([401, 401, 401, 429, 429]);

    // Requests without a valid token count against the address: 2 + 5 of its 12 so far, 5 left.
    const anonymous = (stack: ApiStack) => stack.client.anonymous.get('/api/v1/conversations');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await anonymous(first)).status, (await anonymous(second)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const refused = await anonymous(first);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lets requests through uncounted while Redis is down, and counts again once it is back', async () => {
    // Bob's own budget (12 per user; his token is known to the first process's database).
    const inbox = () => first.client.as(bob).get('/api/v1/conversations');
    await redis.stop();
    for (let i = 0; i < 16; i++) expect((await inbox()).status).toBe(200);
    await redis.start();
    await until(async () => (await inbox()).status === 429, 'the limit to count again', 30_000, 50);
  });
});
