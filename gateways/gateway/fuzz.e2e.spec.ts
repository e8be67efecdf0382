import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { ContentType, ErrorCode, MAX_FRAME_BYTES, decodeClientFrame, encodeClientFrame, type ServerMessage } from '../protocol/index.js';
import { CLIENT_SAMPLES } from '../protocol/testing/samples.js';
import { connectClient, openSocket, type TestClient } from './testing/client.js';
import { random } from '../../domain/testing/random.js';

/**
 * Fuzz against a live gateway: more than 10,000 random, truncated, bit-flipped, unknown-type,
 * oversized, text and pre-auth frames. Every bad frame must get an Error frame or a clean close
 * (a close code the protocol defines), and the gateway must still serve a valid client at the
 * end. Deterministic (seeded).
 */

const VALID = Object.values(CLIENT_SAMPLES)
  .flat()
  .map((f) => encodeClientFrame(f));

type Fuzz = { kind: string; data: Uint8Array | string };

function generate(rng: ReturnType<typeof random>): Fuzz {
  const roll = rng.int(100);
  if (roll < 25) {
    const bytes = new Uint8Array(rng.int(64) + 1);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
    return { kind: 'random', data: bytes };
  }
  if (roll < 50) {
    const v = rng.pick(VALID);
    return { kind: 'truncated', data: v.slice(0, Math.max(1, rng.int(v.length))) };
  }
  if (roll < 75) {
    const v = rng.pick(VALID).slice();
    for (let i = 0, n = rng.int(4) + 1; i < n; i++) {
      const at = rng.int(v.length);
      v[at] = (v[at] ?? 0) ^ (1 << rng.int(8));
    }
    return { kind: 'bitflip', data: v };
  }
  if (roll < 88) {
    // request_id, then a length-delimited field of an unknown number (a frame type from a newer client)
    const field = 16 + rng.int(180);
    const tag = (field << 3) | 2;
    const tagBytes = tag < 128 ? [tag] : [(tag & 0x7f) | 0x80, tag >> 7];
    return { kind: 'unknown', data: new Uint8Array([0x08, 1 + rng.int(100), ...tagBytes, 0]) };
  }
  if (roll < 96) return { kind: 'text', data: 'x'.repeat(rng.int(20)) };
  return { kind: 'empty', data: new Uint8Array(0) };
}

const CLOSE_CODES = new Set([4000, 4001, 4002, 4003, 4005, 4006, 4100, 4101, 4102, 4103, 1000, 1009]);

describe('WebSocket gateway fuzz', () => {
  let stack: ApiStack;
  let url: string;
  let user: Registered;

  beforeAll(async () => {
    // The fuzz reconnects after every close it provokes, hundreds of Hellos a minute from one user: the
    // handshake limit (limits.e2e tests it) would answer them 4007 before any frame under test is read.
    stack = await createApiStack('pglite', { env: { WS_HELLOS_PER_MINUTE: '0' } });
    url = `ws://127.0.0.1:${await stack.listenRealtime('127.0.0.1', 0)}/ws`;
    user = await stack.client.register('fuzz');
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('answers ≥ 10,000 bad frames with an Error frame or a clean close, and keeps serving', async () => {
    const rng = random(0x5eed_f00d);
    const counts: Record<string, number> = {};
    let sent = 0;
    const TOTAL = 10_400;
    const WORKERS = 8;

    async function fresh(authenticated: boolean): Promise<TestClient> {
      return authenticated ? connectClient(url, { token: user.token }) : openSocket(url);
    }

    async function worker(index: number) {
      const authenticated = index % 2 === 1;
      let client = await fresh(authenticated);
      while (sent < TOTAL) {
        const fuzz = generate(rng);
        if (authenticated && typeof fuzz.data !== 'string' && decodeClientFrame(fuzz.data).ok) continue; // a valid frame: not a bad one
        sent++;
        counts[`${authenticated ? 'auth' : 'pre'}:${fuzz.kind}`] = (counts[`${authenticated ? 'auth' : 'pre'}:${fuzz.kind}`] ?? 0) + 1;
        if (client.closed) client = await fresh(authenticated);
        const before = client.frames.length;
        client.sendRaw(fuzz.data);
        await client.waitUntil(() => (client.frames.length > before || client.closed ? true : undefined), 5000, `reply to ${fuzz.kind} frame`);
        const replies = client.frames.slice(before);
        const answered = replies.some((f) => f.body.case === 'error');
        if (!answered) {
          const closed = await client.waitClosed(2000);
          expect(CLOSE_CODES.has(closed.code), `close code ${closed.code} for ${fuzz.kind}`).toBe(true);
        }
        if (client.closed) {
          expect(CLOSE_CODES.has(client.closed.code)).toBe(true);
        }
        if (client.undecodable.length > 0) throw new Error('the server sent a frame the client cannot decode');
      }
      client.close();
    }

    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));

    // oversized frames: FRAME_TOO_LARGE, not decoded, connection kept
    const big = await connectClient(url, { token: user.token });
    for (let i = 0; i < 20; i++) {
      const before = big.frames.length;
      big.sendRaw(new Uint8Array(MAX_FRAME_BYTES + 1 + i * 1000).fill(0x0a));
      const err = await big.waitUntil(() => big.frames.slice(before).find((f) => f.body.case === 'error'));
      expect(err.body.value).toMatchObject({ code: ErrorCode.FRAME_TOO_LARGE });
      sent++;
    }
    expect(big.closed).toBeNull();
    expect(sent).toBeGreaterThanOrEqual(10_000);

    // still serving: a valid client sends and gets its ack
    const other = await stack.client.register('fuzzpeer');
    const conv = await stack.client.as(user).post('/api/v1/conversations', { participant_id: other.user_id });
    const ok = await big.request({
      case: 'sendMessage',
      value: { conversationId: conv.body.conversation_id, clientMessageId: 'after-fuzz', content: 'still here', contentType: ContentType.TEXT },
    });
    expect(ok.body.case).toBe('sendAck');
    expect((ok.body.value as ServerMessage<'sendAck'>).duplicate).toBe(false);
    big.close();
    expect(Object.keys(counts).length).toBeGreaterThan(6);
    expect(stack.gateway.stats().connections).toBeLessThan(WORKERS + 4);
  }, 180_000);
});
