import { afterAll, beforeAll } from 'vitest';
import { createApiStack, type ApiStack } from '../../api/testing/api-stack.js';
import { connectClient, type TestClient } from './client.js';

/**
 * The embedded stack (PGlite, every role in the test process) with its WebSocket gateway on a
 * loopback port, for a `describe` block: started before its tests, closed after them with every
 * client `connect` opened. Call it in the describe body.
 */
export function embeddedGateway(env: Record<string, string> = {}) {
  let stack: ApiStack | undefined;
  let url = '';
  const open: TestClient[] = [];
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env });
    url = `ws://127.0.0.1:${await stack.listenRealtime('127.0.0.1', 0)}/ws`;
  }, 60_000);
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.close();
  });
  return {
    get stack(): ApiStack {
      if (stack === undefined) throw new Error('embeddedGateway: the stack starts in beforeAll');
      return stack;
    },
    get url(): string {
      return url;
    },
    /** A client that said Hello with the user's token (closed after the tests). */
    async connect(user: { token: string }): ReturnType<typeof connectClient> {
      const client = await connectClient(url, { token: user.token });
      open.push(client);
      return client;
    },
  };
}
