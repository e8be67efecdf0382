import type { UserDirectory } from '../../domain/ports/directory.js';

/**
 * Accounts. Users live in a plain table, not in event streams: an account is read far more than it
 * changes, its uniqueness rules (username, email) are what a unique index does best, and nothing
 * replays its history (see ARCHITECTURE.md).
 *
 * Guarantees: usernames and emails are unique ignoring case (a second one fails with a 409
 * DomainError `username_taken` / `email_taken`, even under concurrent registrations); passwords are
 * stored only as salted Argon2id hashes (older scrypt hashes still verify and are replaced on the
 * next successful check); `existing` answers for canonical (lower-case) UUIDs only, anything else
 * simply does not exist.
 *
 * Every account has a `token_version`: access tokens carry the version they were issued under and
 * stop being accepted once it moves (logout everywhere, password change, disabling). A disabled
 * account (`disabled_at` set) cannot log in and its tokens are refused; its data stays.
 */

export type User = {
  user_id: string;
  username: string;
  email: string;
  phone_number: string | null;
  created_at: string;
};

export type UserRecord = User & { password_hash: string; token_version: number; disabled_at: string | null };

export type NewUser = { username: string; email: string; password: string; phone_number: string | null };

export interface UserRepository extends UserDirectory {
  /** Creates the table and its indexes, and adds columns of later versions (idempotent). */
  ensureSchema(): Promise<void>;
  create(input: NewUser): Promise<User>;
  /** By username or email, ignoring case. */
  findByLogin(login: string): Promise<UserRecord | null>;
  findById(userId: string): Promise<User | null>;
  /** With the password hash, token version and disabled state. */
  findRecordById(userId: string): Promise<UserRecord | null>;
  /**
   * Whether `password` is the record's password. On a match with an outdated hash (scrypt, or
   * Argon2id with other parameters) the hash is replaced, unless the password changed meanwhile.
   */
  checkPassword(record: UserRecord, password: string): Promise<boolean>;
  /** Costs what checkPassword costs, for logins of unknown accounts (answers take the same time). */
  checkDecoy(password: string): Promise<void>;
  /** The user whose username or email is `login` and whose password is `password`; null otherwise (disabled accounts too). */
  authenticate(login: string, password: string): Promise<User | null>;
  /** Stores a new password and moves the token version on (every token issued before stops working); the new version. */
  changePassword(userId: string, password: string): Promise<number>;
  /** Moves the token version on; the new version (null: no such user). */
  bumpTokenVersion(userId: string): Promise<number | null>;
  /** Disables (and moves the token version on) or enables an account; false when there is no such user. */
  setDisabled(userId: string, disabled: boolean): Promise<boolean>;
}
