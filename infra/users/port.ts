import type { UserDirectory } from '../../commands/ports.js';

/**
 * Accounts. Users live in a plain table, not in event streams: an account is read far more than it
 * changes, its uniqueness rules (username, email) are what a unique index does best, and nothing
 * replays its history (see ARCHITECTURE.md).
 *
 * Guarantees: usernames and emails are unique ignoring case (a second one fails with a 409
 * DomainError `username_taken` / `email_taken`, even under concurrent registrations); passwords are
 * stored only as salted scrypt hashes; `existing` answers for canonical (lower-case) UUIDs only,
 * anything else simply does not exist.
 */

export type User = {
  user_id: string;
  username: string;
  email: string;
  phone_number: string | null;
  created_at: string;
};

export type UserRecord = User & { password_hash: string };

export type NewUser = { username: string; email: string; password: string; phone_number: string | null };

export interface UserRepository extends UserDirectory {
  /** Creates the table and its indexes (idempotent). */
  ensureSchema(): Promise<void>;
  create(input: NewUser): Promise<User>;
  /** By username or email, ignoring case. */
  findByLogin(login: string): Promise<UserRecord | null>;
  findById(userId: string): Promise<User | null>;
  /** The user whose username or email is `login` and whose password is `password`; null otherwise. */
  authenticate(login: string, password: string): Promise<User | null>;
}
