import { randomUUID } from 'node:crypto';
import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import type { Platform } from '../../gateways/ports/push-provider.js';
import type { Device, DeviceOwner, DeviceRegistry, Registration } from '../../gateways/ports/devices.js';
import { CANONICAL_UUID } from '../../domain/fields.js';

/** The same SQL on PGlite and PostgreSQL. */
export const DEVICES_SCHEMA = `
CREATE TABLE IF NOT EXISTS push_devices (
  device_id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  platform text NOT NULL,
  token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS push_devices_token_key ON push_devices (token);
CREATE INDEX IF NOT EXISTS push_devices_user_idx ON push_devices (user_id);
ALTER TABLE push_devices ADD COLUMN IF NOT EXISTS session_id uuid;
CREATE INDEX IF NOT EXISTS push_devices_session_idx ON push_devices (session_id);
`;

/** Whether the session of a push_devices row `d` is live (rows from before sessions have none and count as live). */
const SESSION_LIVE = `(d.session_id IS NULL OR EXISTS (
  SELECT 1 FROM auth_sessions s WHERE s.session_id = d.session_id AND s.revoked_at IS NULL AND s.expires_at > now()))`;


type DeviceRow = {
  device_id: string;
  user_id: string;
  platform: string;
  token: string;
  created_at: Date | string;
  updated_at: Date | string;
};

const COLUMNS = 'device_id::text AS device_id, user_id::text AS user_id, platform, token, created_at, updated_at';
const iso = (value: Date | string) => (value instanceof Date ? value : new Date(value)).toISOString();
const PLATFORMS: readonly string[] = ['android', 'ios', 'web'];

function toDevice(row: DeviceRow): Device {
  if (!PLATFORMS.includes(row.platform)) throw new Error(`push_devices: unknown platform ${JSON.stringify(row.platform)}`);
  return { device_id: row.device_id, user_id: row.user_id, platform: row.platform as Platform, token: row.token, created_at: iso(row.created_at), updated_at: iso(row.updated_at) };
}

export function createSqlDeviceRegistry(db: SqlClient & Pick<SqlDatabase, 'exec'>) {
  return {
    async ensureSchema() {
      await db.exec(DEVICES_SCHEMA);
    },

    async register(owner: DeviceOwner, platform: Platform, token: string): Promise<Registration | null> {
      const { userId, sessionId } = owner;
      if (!CANONICAL_UUID.test(userId)) throw new TypeError(`not a user id: ${userId}`);
      if (sessionId !== null && !CANONICAL_UUID.test(sessionId)) throw new TypeError(`not a session id: ${sessionId}`);
      // `previous` reads the row as it was before this statement: who held the token, if anyone.
      // The update happens only for the same user, or when the holder's session has ended.
      const { rows } = await db.query<DeviceRow & { previous_user: string | null }>(
        `WITH previous AS (SELECT user_id FROM push_devices WHERE token = $4)
         INSERT INTO push_devices AS d (device_id, user_id, platform, token, session_id) VALUES ($1::uuid, $2::uuid, $3, $4, $5::uuid)
         ON CONFLICT (token) DO UPDATE SET user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id, platform = EXCLUDED.platform, updated_at = now()
         WHERE d.user_id = EXCLUDED.user_id OR NOT ${SESSION_LIVE}
         RETURNING ${COLUMNS}, (SELECT user_id::text FROM previous) AS previous_user`,
        [randomUUID(), userId, platform, token, sessionId],
      );
      const row = rows[0];
      if (!row) return null;
      // One token per session: the one this session held before (a rotated FCM token) goes.
      if (sessionId !== null) await db.query('DELETE FROM push_devices WHERE session_id = $1::uuid AND token <> $2', [sessionId, token]);
      return { device: toDevice(row), created: row.previous_user !== userId };
    },

    async remove(userId: string, idOrToken: string): Promise<boolean> {
      if (!CANONICAL_UUID.test(userId)) return false;
      const byId = CANONICAL_UUID.test(idOrToken.toLowerCase());
      const { rows } = byId
        ? await db.query('DELETE FROM push_devices WHERE user_id = $1::uuid AND (device_id = $2::uuid OR token = $3) RETURNING device_id', [
            userId,
            idOrToken.toLowerCase(),
            idOrToken,
          ])
        : await db.query('DELETE FROM push_devices WHERE user_id = $1::uuid AND token = $2 RETURNING device_id', [userId, idOrToken]);
      return rows.length > 0;
    },

    async list(userId: string): Promise<Device[]> {
      if (!CANONICAL_UUID.test(userId)) return [];
      const { rows } = await db.query<DeviceRow>(`SELECT ${COLUMNS} FROM push_devices WHERE user_id = $1::uuid ORDER BY created_at, device_id`, [userId]);
      return rows.map(toDevice);
    },

    async listForUsers(userIds: string[]): Promise<Device[]> {
      const ids = [...new Set(userIds)].filter((id) => CANONICAL_UUID.test(id));
      if (ids.length === 0) return [];
      const { rows } = await db.query<DeviceRow>(
        `SELECT ${COLUMNS} FROM push_devices d WHERE user_id = ANY($1::uuid[]) AND ${SESSION_LIVE} ORDER BY created_at, device_id`,
        [ids],
      );
      return rows.map(toDevice);
    },

    async removeTokens(tokens: string[]): Promise<number> {
      if (tokens.length === 0) return 0;
      const { rows } = await db.query('DELETE FROM push_devices WHERE token = ANY($1::text[]) RETURNING device_id', [[...new Set(tokens)]]);
      return rows.length;
    },

    async releaseSession(userId: string, sessionId: string): Promise<number> {
      if (!CANONICAL_UUID.test(userId) || !CANONICAL_UUID.test(sessionId)) return 0;
      const { rows } = await db.query('DELETE FROM push_devices WHERE user_id = $1::uuid AND session_id = $2::uuid RETURNING device_id', [userId, sessionId]);
      return rows.length;
    },

    async releaseAllBut(userId: string, keep: string | null): Promise<number> {
      if (!CANONICAL_UUID.test(userId)) return 0;
      const { rows } = await db.query(
        'DELETE FROM push_devices WHERE user_id = $1::uuid AND ($2::uuid IS NULL OR session_id IS DISTINCT FROM $2::uuid) RETURNING device_id',
        [userId, keep !== null && CANONICAL_UUID.test(keep) ? keep : null],
      );
      return rows.length;
    },
  } satisfies DeviceRegistry;
}
