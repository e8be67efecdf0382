import { randomUUID } from 'node:crypto';
import { conflict } from '../../domain/errors.js';
import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import { createPasswordHasher, OWASP_ARGON2ID, type Argon2Params } from './password.js';
import type { NewUser, User, UserRecord, UserRepository } from '../../gateways/ports/users.js';
import { CANONICAL_UUID } from '../../domain/fields.js';

/** The same SQL on PGlite and PostgreSQL. Case-insensitive uniqueness through expression indexes. */
export const USERS_SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  user_id uuid PRIMARY KEY,
  username text NOT NULL,
  email text NOT NULL,
  password_hash text NOT NULL,
  phone_number text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));
ALTER TABLE users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled_at timestamptz;
`;

const UNIQUE_VIOLATION = '23505';

export type SqlUserRepositoryOptions = {
  /** Argon2id parameters for new hashes (default OWASP_ARGON2ID; tests lower them). Stored hashes keep their own. */
  argon2?: Argon2Params;
};

type UserRow = {
  user_id: string;
  username: string;
  email: string;
  password_hash: string;
  phone_number: string | null;
  created_at: Date | string;
  token_version: number;
  disabled_at: Date | string | null;
};

const COLUMNS = 'user_id::text AS user_id, username, email, password_hash, phone_number, created_at, token_version, disabled_at';
const iso = (value: Date | string) => (value instanceof Date ? value : new Date(value)).toISOString();

function toRecord(row: UserRow): UserRecord {
  return {
    user_id: row.user_id,
    username: row.username,
    email: row.email,
    password_hash: row.password_hash,
    phone_number: row.phone_number,
    created_at: iso(row.created_at),
    token_version: Number(row.token_version),
    disabled_at: row.disabled_at === null ? null : iso(row.disabled_at),
  };
}

export function publicUser({ password_hash: _hash, token_version: _version, disabled_at: _disabled, ...user }: UserRecord): User {
  return user;
}

function uniqueViolation(error: unknown): string | null {
  if (typeof error !== 'object' || error === null || !('code' in error) || error.code !== UNIQUE_VIOLATION) return null;
  return 'constraint' in error && typeof error.constraint === 'string' ? error.constraint : '';
}

export function createSqlUserRepository(db: SqlClient & Pick<SqlDatabase, 'exec'>, options: SqlUserRepositoryOptions = {}) {
  const hasher = createPasswordHasher(options.argon2 ?? OWASP_ARGON2ID);
  /** Verified against when the login is unknown, so both paths cost one hash. */
  let decoy: Promise<string> | undefined;

  async function findByLogin(login: string): Promise<UserRecord | null> {
    const { rows } = await db.query<UserRow>(
      `SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1`,
      [login],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async function findRecordById(userId: string): Promise<UserRecord | null> {
    if (!CANONICAL_UUID.test(userId)) return null;
    const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE user_id = $1::uuid`, [userId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async function checkPassword(record: UserRecord, password: string): Promise<boolean> {
    const { ok, needsRehash } = await hasher.verify(password, record.password_hash);
    if (ok && needsRehash) {
      // Compare-and-set: a password changed meanwhile is not overwritten with the old one.
      await db.query('UPDATE users SET password_hash = $3 WHERE user_id = $1::uuid AND password_hash = $2', [record.user_id, record.password_hash, await hasher.hash(password)]);
    }
    return ok;
  }

  async function checkDecoy(password: string): Promise<void> {
    decoy ??= hasher.hash('decoy password for unknown logins');
    await hasher.verify(password, await decoy);
  }

  return {
    async ensureSchema() {
      await db.exec(USERS_SCHEMA);
    },

    async create(input: NewUser): Promise<User> {
      const passwordHash = await hasher.hash(input.password);
      try {
        const { rows } = await db.query<UserRow>(
          `INSERT INTO users (user_id, username, email, password_hash, phone_number) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
          [randomUUID(), input.username, input.email, passwordHash, input.phone_number],
        );
        return publicUser(toRecord(rows[0]!));
      } catch (error) {
        const constraint = uniqueViolation(error);
        if (constraint === 'users_username_lower_key') throw conflict('username_taken', 'username: this username is already taken');
        if (constraint === 'users_email_lower_key') throw conflict('email_taken', 'email: an account with this email already exists');
        if (constraint !== null) throw conflict('user_exists', 'this account already exists');
        throw error;
      }
    },

    findByLogin,
    findRecordById,

    async findById(userId: string): Promise<User | null> {
      const record = await findRecordById(userId);
      return record === null ? null : publicUser(record);
    },

    checkPassword,
    checkDecoy,

    async authenticate(login: string, password: string): Promise<User | null> {
      const record = await findByLogin(login);
      if (!record) {
        await checkDecoy(password);
        return null;
      }
      const ok = await checkPassword(record, password);
      return ok && record.disabled_at === null ? publicUser(record) : null;
    },

    async changePassword(userId: string, password: string): Promise<number> {
      const hash = await hasher.hash(password);
      const { rows } = await db.query<{ token_version: number }>(
        'UPDATE users SET password_hash = $2, token_version = token_version + 1 WHERE user_id = $1::uuid RETURNING token_version',
        [userId, hash],
      );
      if (!rows[0]) throw new Error(`no user ${userId}`);
      return Number(rows[0].token_version);
    },

    async bumpTokenVersion(userId: string): Promise<number | null> {
      if (!CANONICAL_UUID.test(userId)) return null;
      const { rows } = await db.query<{ token_version: number }>('UPDATE users SET token_version = token_version + 1 WHERE user_id = $1::uuid RETURNING token_version', [userId]);
      return rows[0] ? Number(rows[0].token_version) : null;
    },

    async setDisabled(userId: string, disabled: boolean): Promise<boolean> {
      if (!CANONICAL_UUID.test(userId)) return false;
      const { rows } = await db.query(
        disabled
          ? 'UPDATE users SET disabled_at = coalesce(disabled_at, now()), token_version = token_version + 1 WHERE user_id = $1::uuid RETURNING user_id'
          : 'UPDATE users SET disabled_at = NULL WHERE user_id = $1::uuid RETURNING user_id',
        [userId],
      );
      return rows.length > 0;
    },

    async existing(ids: string[]): Promise<Set<string>> {
      const candidates = [...new Set(ids)].filter((id) => CANONICAL_UUID.test(id));
      if (candidates.length === 0) return new Set();
      const { rows } = await db.query<{ user_id: string }>('SELECT user_id::text AS user_id FROM users WHERE user_id = ANY($1::uuid[])', [
        candidates,
      ]);
      return new Set(rows.map((r) => r.user_id));
    },
  } satisfies UserRepository;
}
