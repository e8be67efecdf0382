import WebSocket from 'ws';
import type { Registered } from '../api/testing/api-stack.js';
import { createChatClient, type ChatClient, type ChatClientOptions, type ReceivedEvent } from '../sdk/index.js';

/** Waits until `probe` holds, checking every `everyMs`; throws naming `what` after `timeoutMs`. */
export async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A client of the tests': the SDK client, what it received, and the contents of the messages among it, in order. */
export type TestClient = {
  c: ChatClient;
  events: ReceivedEvent[];
  /** isTyping of each typing indicator received. */
  typing: boolean[];
  contents(): string[];
};

/**
 * SDK clients (Node's `ws`) of registered users against a server at `baseUrl()`, with fast
 * reconnects; `closeAll()` closes every one made (for afterAll).
 */
export function sdkClients(baseUrl: () => string, defaults: Partial<ChatClientOptions> = {}) {
  const made: ChatClient[] = [];
  return {
    connect(user: Registered, options: Partial<ChatClientOptions> = {}): TestClient {
      const c = createChatClient({
        baseUrl: baseUrl(),
        token: user.token,
        deviceId: `dev-${user.username}`,
        WebSocket,
        reconnect: { minMs: 50, maxMs: 500 },
        ...defaults,
        ...options,
      } as ChatClientOptions);
      made.push(c);
      const events: ReceivedEvent[] = [];
      const typing: boolean[] = [];
      c.on('event', (e) => events.push(e));
      c.on('typing', (t) => typing.push(t.isTyping));
      return { c, events, typing, contents: () => events.flatMap((e) => (e.type === 'MessageSent' ? [e.data.content] : [])) };
    },
    closeAll: () => Promise.all(made.map((c) => c.close())),
  };
}
