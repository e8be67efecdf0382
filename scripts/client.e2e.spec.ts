import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createApiStack, type ApiStack } from '../gateways/api/testing/api-stack.js';

/** `npm run client`: two terminal clients (child processes, stdin piped) chat through an in-process server. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('terminal client (scripts/client.ts)', () => {
  let stack: ApiStack;
  let baseUrl: string;
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    stack = await createApiStack('pglite');
    baseUrl = await stack.listenAll();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await stack?.close();
  });

  function start(user: string) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/client.ts', '--user', user, '--url', baseUrl], { cwd: root });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(out);
        if (m !== null) return m;
        if (Date.now() > deadline) throw new Error(`${user}: no ${pattern} in:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    return { waitFor, type: (line: string) => child.stdin.write(`${line}\n`) };
  }

  it('alice and bob register, open a conversation and chat; read receipts come back', async () => {
    const suffix = `${process.pid}`;
    const alice = start(`tc_alice_${suffix}`);
    const bob = start(`tc_bob_${suffix}`);
    const bobId = (await bob.waitFor(/user id (\S+)\)/))[1]!;
    await Promise.all([alice.waitFor(/no conversations yet/), bob.waitFor(/no conversations yet/)]);
    alice.type(`/open ${bobId}`);
    await alice.waitFor(/now talking to/);
    alice.type('hello bob');
    await bob.waitFor(/\[[^\]]+\] \S+: hello bob/);
    await bob.waitFor(/new conversation: /);
    bob.type('/to 1');
    await bob.waitFor(/now in /);
    bob.type('hi alice');
    await alice.waitFor(/\S+: hi alice/);
    bob.type('/read');
    await alice.waitFor(/read by \S+ up to #\d+/);
  }, 60_000);
});
