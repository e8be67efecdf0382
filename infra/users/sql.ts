import { randomUUID } from 'node:crypto';
import { conflict } from '../../domain/errors.js';
import type { SqlClient, SqlDatabase } from '../sql/port.js';
import { DEFAULT_SCRYPT_COST, hashPassword, verifyPassword, type ScryptCost } from './password.js';
import type { NewUser, User, UserRecord, UserRepository } from './port.js';

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
`;

const UNIQUE_VIOLATION = '23505';
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type SqlUserRepositoryOptions = {
  /** scrypt cost for new hashes (tests lower it; stored hashes keep their own). */
  scryptCost?: ScryptCost;
};

type UserRow = {
  user_id: string;
  username: string;
  email: string;
  password_hash: string;
  phone_number: string | null;
  created_at: Date | string;
};

const COLUMNS = 'user_id::text AS user_id, username, email, password_hash, phone_number, created_at';

function toRecord(row: UserRow): UserRecord {
  return {
    user_id: row.user_id,
    username: row.username,
    email: row.email,
    password_hash: row.password_hash,
    phone_number: row.phone_number,
    created_at: row.created_at instanceof Date ? row.created_at.toISOString() : new Date(row.created_at).toISOString(),
  };
}

function publicUser({ password_hash: _hash, ...user }: UserRecord): User {
  return user;
}

function uniqueViolation(error: unknown): string | null {
  if (typeof error !== 'object' || error === null || !('code' in error) || error.code !== UNIQUE_VIOLATION) return null;
  return 'constraint' in error && typeof error.constraint === 'string' ? error.constraint : '';
}

export function createSqlUserRepository(db: SqlClient & Pick<SqlDatabase, 'exec'>, options: SqlUserRepositoryOptions = {}) {
  const cost = options.scryptCost ?? DEFAULT_SCRYPT_COST;
  /** Verified against when the login is unknown, so both paths cost one scrypt. */
  let decoy: Promise<string> | undefined;

  async function findByLogin(login: string): Promise<UserRecord | null> {
    const { rows } = await db.query<UserRow>(
      `SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1`,
      [login],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  return {
    async ensureSchema() {
      await db.exec(USERS_SCHEMA);
    },

    async create(input: NewUser): Promise<User> {
      const passwordHash = await hashPassword(input.password, cost);
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

    async findById(userId: string): Promise<User | null> {
      if (!CANONICAL_UUID.test(userId)) return null;
      const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE user_id = $1::uuid`, [userId]);
      return rows[0] ? publicUser(toRecord(rows[0])) : null;
    },

    async authenticate(login: string, password: string): Promise<User | null> {
      const record = await findByLogin(login);
      if (!record) {
        decoy ??= hashPassword('decoy password', cost);
        await verifyPassword(password, await decoy);
        return null;
      }
      return (await verifyPassword(password, record.password_hash)) ? publicUser(record) : null;
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
