import { describe, expect, it } from 'vitest';
import { conflict, DomainError, forbidden, validation } from '../../domain/errors.js';
import { decodeServerFrame, encodeServerFrame } from './codec.js';
import { CloseCode, closeCodeKind, ERRORS, errorFrame, errorNameOf, goodbyeFrame, mapError, type ErrorName } from './errors.js';
import { ErrorCode, ErrorCodeSchema } from './gen/chat/v1/common_pb.js';

const DOMAIN_KINDS = ['validation', 'unauthenticated', 'forbidden', 'not_found', 'conflict', 'illegal_state'] as const;
const PROTOCOL_ERRORS = ['malformed_frame', 'unknown_frame', 'frame_too_large', 'not_authenticated', 'unsupported_version', 'rate_limited', 'internal'] as const;

describe('error catalogue', () => {
  it('covers every domain error kind and protocol error, each with its own wire code', () => {
    expect(Object.keys(ERRORS).sort()).toEqual([...DOMAIN_KINDS, ...PROTOCOL_ERRORS].sort());
    const codes = Object.values(ERRORS).map((spec) => spec.code);
    expect(new Set(codes).size).toBe(codes.length);
    // Every non-zero ErrorCode of the .proto is in the catalogue, under its own name.
    const protoCodes = ErrorCodeSchema.values.filter((v) => v.number !== 0);
    expect(protoCodes.map((v) => v.number).sort()).toEqual([...codes].sort());
    for (const [name, spec] of Object.entries(ERRORS)) {
      expect(ErrorCodeSchema.value[spec.code]?.name).toBe(`ERROR_CODE_${name.toUpperCase()}`);
      expect(errorNameOf(spec.code)).toBe(name);
    }
    expect(errorNameOf(ErrorCode.UNSPECIFIED)).toBeUndefined();
    expect(errorNameOf(4242)).toBeUndefined();
  });

  it('closes only on errors after which the connection cannot go on, with codes in the right range', () => {
    const closing = Object.entries(ERRORS).filter(([, spec]) => spec.close !== null);
    expect(closing.map(([name]) => name).sort()).toEqual(['malformed_frame', 'not_authenticated', 'unauthenticated', 'unsupported_version']);
    for (const [, spec] of closing) expect(closeCodeKind(spec.close!)).toBe('terminal');
    expect(ERRORS.rate_limited.retryable && ERRORS.internal.retryable).toBe(true);
    expect(Object.entries(ERRORS).filter(([, s]) => s.retryable).map(([n]) => n).sort()).toEqual(['internal', 'rate_limited']);
  });

  it('splits close codes into reconnect (4000-4099) and terminal (4100-4199)', () => {
    for (const [name, code] of Object.entries(CloseCode)) {
      if (code >= 4000 && code < 4100) expect({ name, kind: closeCodeKind(code) }).toEqual({ name, kind: 'reconnect' });
      if (code >= 4100 && code < 4200) expect({ name, kind: closeCodeKind(code) }).toEqual({ name, kind: 'terminal' });
    }
    expect(new Set(Object.values(CloseCode)).size).toBe(Object.values(CloseCode).length);
    expect(closeCodeKind(1000)).toBe('normal');
    expect(closeCodeKind(1006)).toBe('reconnect'); // network drop
    expect(closeCodeKind(1001)).toBe('reconnect');
    expect(closeCodeKind(1009)).toBe('terminal');
    expect(closeCodeKind(4199)).toBe('terminal');
    expect(closeCodeKind(4099)).toBe('reconnect');
  });

  it('builds Error frames that survive the wire', () => {
    const frame = errorFrame(12, 'rate_limited', 'slow down', { retryAfterMs: 800 });
    expect(decodeServerFrame(encodeServerFrame(frame))).toEqual({
      ok: true,
      frame: {
        requestId: 12,
        body: { case: 'error', value: { code: ErrorCode.RATE_LIMITED, message: 'slow down', retryable: true, reason: 'rate_limited', retryAfterMs: 800 } },
      },
    });
    expect(decodeServerFrame(encodeServerFrame(goodbyeFrame(CloseCode.SHUTDOWN, 'draining', 100)))).toMatchObject({
      ok: true,
      frame: { requestId: 0, body: { case: 'goodbye', value: { closeCode: 4000, reason: 'draining', reconnectAfterMs: 100 } } },
    });
  });

  it('maps domain errors by kind, keeping their stable code as the reason', () => {
    const cases: [DomainError, ErrorName][] = [
      [forbidden('not_a_member', 'you are not a member'), 'forbidden'],
      [conflict('conversation_exists', 'exists'), 'conflict'],
      [validation('version_ahead', 'up_to_version: past the last version', { field: 'up_to_version' }), 'validation'],
      [new DomainError('unauthenticated', 'invalid_token', 'bad token'), 'unauthenticated'],
    ];
    for (const [error, name] of cases) {
      const mapped = mapError(4, error);
      expect(mapped.internal).toBe(false);
      expect(mapped.close).toBe(ERRORS[name].close);
      expect(mapped.frame).toMatchObject({ requestId: 4, body: { case: 'error', value: { code: ERRORS[name].code, message: error.message, reason: error.code } } });
    }
    expect(mapError(4, cases[2]![0]).frame.body).toMatchObject({ value: { field: 'up_to_version' } });
  });

  it('hides anything else behind internal (retryable, connection kept)', () => {
    const mapped = mapError(5, new Error('connection refused to 10.0.0.3'));
    expect(mapped).toMatchObject({ internal: true, close: null, frame: { requestId: 5, body: { value: { code: ErrorCode.INTERNAL, retryable: true, message: 'internal server error' } } } });
  });
});
