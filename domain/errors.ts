/**
 * The domain's error set. Each error carries a stable `code` that clients may rely on; gateways
 * map the `kind` to a transport status (HTTP status, WebSocket error frame) in one place each.
 */
export type ErrorKind = 'validation' | 'unauthenticated' | 'forbidden' | 'not_found' | 'conflict' | 'illegal_state';

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const validation = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError('validation', code, message, details);
export const forbidden = (code: string, message: string) => new DomainError('forbidden', code, message);
export const notFound = (code: string, message: string) => new DomainError('not_found', code, message);
export const conflict = (code: string, message: string) => new DomainError('conflict', code, message);
export const illegalState = (code: string, message: string) => new DomainError('illegal_state', code, message);

/** True when `error` is the domain's error of this code. */
export const isDomainError = (error: unknown, code: string): error is DomainError => error instanceof DomainError && error.code === code;
