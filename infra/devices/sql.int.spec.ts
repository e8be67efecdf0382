import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../sql/port.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { createSqlDeviceRegistry } from './sql.js';

/** One suite for the device table on both SQL adapters. */
describe.each(['pglite', 'postgres'] as const)('SQL device registry on %s', (adapter) => {
  let db: SqlDatabase;
  let drop = async () => {};
  let devices: ReturnType<typeof createSqlDeviceRegistry>;

  beforeAll(async () => {
    if (adapter === 'pglite') {
      db = await createPgliteDatabase();
    } else {
      const temp = await createTempDatabases('devices_test', 1);
      drop = temp.drop;
      db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    }
    devices = createSqlDeviceRegistry(db);
    await devices.ensureSchema();
    await devices.ensureSchema(); // idempotent
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  it('registers a token once per user: again is not a new device, only the platform and updated_at change', async () => {
    const alice = randomUUID();
    const first = await devices.register(alice, 'android', 'tok-a1');
    expect(first.created).toBe(true);
    expect(first.device).toMatchObject({ user_id: alice, platform: 'android', token: 'tok-a1', device_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const again = await devices.register(alice, 'web', 'tok-a1');
    expect(again.created).toBe(false);
    expect(again.device.device_id).toBe(first.device.device_id);
    expect(again.device.platform).toBe('web');
    expect(await devices.list(alice)).toEqual([again.device]);
  });

  it('moves a token to the latest user who registers it', async () => {
    const carol = randomUUID();
    const dave = randomUUID();
    const mine = await devices.register(carol, 'ios', 'tok-shared');
    const moved = await devices.register(dave, 'ios', 'tok-shared');
    expect(moved.created).toBe(true);
    expect(moved.device.user_id).toBe(dave);
    expect(moved.device.device_id).toBe(mine.device.device_id);
    expect(await devices.list(carol)).toEqual([]);
    expect((await devices.listForUsers([carol, dave])).map((d) => d.user_id)).toEqual([dave]);
  });

  it('removes only one of the user own devices, by id or by token', async () => {
    const erin = randomUUID();
    const frank = randomUUID();
    const a = await devices.register(erin, 'android', 'tok-e1');
    await devices.register(erin, 'web', 'tok-e2');
    const f = await devices.register(frank, 'android', 'tok-f1');
    expect(await devices.remove(erin, f.device.device_id)).toBe(false); // not hers
    expect(await devices.remove(erin, 'tok-f1')).toBe(false);
    expect(await devices.remove(erin, a.device.device_id.toUpperCase())).toBe(true);
    expect(await devices.remove(erin, a.device.device_id)).toBe(false); // gone
    expect(await devices.remove(erin, 'tok-e2')).toBe(true);
    expect(await devices.list(erin)).toEqual([]);
    expect(await devices.list(frank)).toHaveLength(1);
  });

  it('drops dead tokens whoever holds them', async () => {
    const gina = randomUUID();
    await devices.register(gina, 'android', 'tok-g1');
    await devices.register(gina, 'android', 'tok-g2');
    expect(await devices.removeTokens(['tok-g1', 'tok-g1', 'tok-unknown'])).toBe(1);
    expect((await devices.list(gina)).map((d) => d.token)).toEqual(['tok-g2']);
    expect(await devices.removeTokens([])).toBe(0);
  });
});
