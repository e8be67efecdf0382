import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONVERSATIONS_PROJECTION } from './conversations/projection.js';
import { createTestStack, dumpReadModel } from './testing/stack.js';

/**
 * A projector process killed with SIGKILL while a batch transaction is open, then restarted, ends
 * with read models equal to a rebuild from position 0: the checkpoint moves in the same
 * transaction as the writes, so the half-done batch vanishes and is applied again, once.
 */
const child = fileURLToPath(new URL('./runtime/testing/projector-process.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('projector crash recovery (PostgreSQL, SIGKILL)', () => {
  let stack: Awaited<ReturnType<typeof createTestStack>>;
  let probe: pg.Client;
  let running: ChildProcess | undefined;
  const users = Array.from({ length: 20 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

  beforeAll(async () => {
    // This stack only appends and later rebuilds: the projector under test runs in a child process.
    stack = await createTestStack('postgres', { shards: 2, startProjector: false });
    stack.users.register(...users);
    probe = new pg.Client({ connectionString: stack.urls[0] });
    await probe.connect();
    const conversations = await Promise.all(
      Array.from({ length: 10 }, (_, i) => stack.commands.openDirect(users[i]!, users[i + 10]!).then((r) => r.conversation.conversation_id)),
    );
    // 10 conversations x 200 messages, with read receipts and reactions among them.
    await Promise.all(
      conversations.map(async (id, c) => {
        for (let i = 0; i < 200; i++) {
          const sent = await stack.commands.sendMessage(users[c]!, id, { content: `message ${i} of ${c}`, content_type: 'text', media: null, client_message_id: null });
          if (i % 10 === 9) {
            await stack.commands.markWatermark(users[c + 10]!, id, { device_id: 'phone', up_to_version: sent.message.sequence_number, kind: 'read' });
            await stack.commands.react(users[c + 10]!, id, sent.message, '👍', 'add');
          }
        }
      }),
    );
  }, 120_000);

  afterAll(async () => {
    running?.kill('SIGKILL');
    await probe?.end();
    await stack?.close();
  });

  function startProjector(): ChildProcess {
    // `node --import tsx`, not the tsx binary: the tsx CLI runs the script in a child process of its
    // own, and a SIGKILL to the CLI would leave that child projecting.
    running = spawn(process.execPath, ['--import', 'tsx', child, stack.urls.join(','), '300'], { stdio: ['ignore', 'ignore', 'inherit'] });
    return running;
  }

  /** Waits until the child has a batch transaction open on the read-model database. */
  async function waitForOpenBatch(): Promise<void> {
    for (let i = 0; i < 4000; i++) {
      const { rows } = await probe.query(
        `SELECT 1 FROM pg_stat_activity
         WHERE application_name = 'projector-under-test' AND datname = current_database()
           AND (state = 'idle in transaction' OR (state = 'active' AND query LIKE '%rm\\_%'))`,
      );
      if (rows.length > 0) return;
      await sleep(2);
    }
    throw new Error('the projector never opened a batch transaction');
  }

  async function checkpoints(): Promise<number[]> {
    const { rows } = await probe.query<{ position: string }>(
      'SELECT position FROM projection_checkpoints WHERE projection = $1 ORDER BY shard',
      [CONVERSATIONS_PROJECTION],
    );
    return rows.map((r) => Number(r.position));
  }

  it('ends equal to a rebuild from position 0', async () => {
    const heads = await Promise.all([0, 1].map((s) => stack.store.headPosition(s)));
    expect(heads.every((h) => h > 0)).toBe(true); // streams landed on both shards
    expect(heads[0]! + heads[1]!).toBe(10 * (1 + 200 + 20 + 20));

    // Kill it three times, each time inside an open batch transaction.
    for (let kill = 0; kill < 3; kill++) {
      const proc = startProjector();
      await waitForOpenBatch();
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      // What the killed transaction wrote is gone: the read model holds exactly the messages at or
      // below the checkpoints.
      const cps = await checkpoints();
      let expected = 0;
      for (let shard = 0; shard < cps.length; shard++) {
        const events = await stack.store.readLog(shard, { after: 0, maxCount: cps[shard]! || 0 });
        expected += events.filter((e) => e.type === 'MessageSent').length;
      }
      const { rows } = await probe.query<{ n: string }>('SELECT count(*) AS n FROM rm_messages');
      expect(Number(rows[0]!.n)).toBe(expected);
    }
    const beforeFinish = await checkpoints();
    expect(beforeFinish.some((cp, shard) => cp < heads[shard]!), 'the kills must land before the end of the log').toBe(true);

    // Restart and let it finish.
    startProjector();
    for (let i = 0; i < 600; i++) {
      const cps = await checkpoints();
      if (cps.every((cp, shard) => cp === heads[shard])) break;
      await sleep(50);
    }
    expect(await checkpoints()).toEqual(heads);
    running?.kill('SIGKILL');
    await new Promise((r) => running!.once('exit', r));
    const recovered = await dumpReadModel(stack.readModels);

    // Rebuild from position 0 in this process and compare.
    await stack.projector.reset(CONVERSATIONS_PROJECTION);
    await stack.projector.catchUp();
    const rebuilt = await dumpReadModel(stack.readModels);
    expect(rebuilt.rm_messages!.length).toBe(2000);
    expect(recovered).toEqual(rebuilt);
  }, 120_000);
});
