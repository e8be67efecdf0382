import type { Platform } from '../push/port.js';

/**
 * Devices that receive push notifications: one row per registration token.
 *
 * Guarantees (sql.int.spec.ts checks them on PGlite and PostgreSQL):
 * - A token belongs to at most one user: registering a token another user holds moves it to the
 *   registering user (the phone changed hands, or a user logged out and another logged in), keeping
 *   its device id; registering one's own token again changes nothing but the platform and
 *   `updated_at` (`created: false`).
 * - `remove` deletes one device of the given user only, named by device id or by token.
 * - `removeTokens` deletes tokens whoever holds them (the provider said they are dead).
 */
export type Device = {
  device_id: string;
  user_id: string;
  platform: Platform;
  token: string;
  created_at: string;
  updated_at: string;
};

export type Registration = {
  device: Device;
  /** false when this user already held this token. */
  created: boolean;
};

export interface DeviceRegistry {
  ensureSchema(): Promise<void>;
  register(userId: string, platform: Platform, token: string): Promise<Registration>;
  /** Deletes the user's device whose device_id or token is `idOrToken`; false when the user has none such. */
  remove(userId: string, idOrToken: string): Promise<boolean>;
  /** The devices of one user, oldest first. */
  list(userId: string): Promise<Device[]>;
  /** The devices of several users (for sending). */
  listForUsers(userIds: string[]): Promise<Device[]>;
  /** Deletes these tokens (reported unregistered); returns how many rows went. */
  removeTokens(tokens: string[]): Promise<number>;
}
