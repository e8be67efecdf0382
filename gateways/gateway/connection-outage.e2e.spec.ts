import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConversationCommands, type ConversationCommands } from '../../commands/conversations.js';
import { conversationStreamId } from '../../commands/ids.js';
import type { EventStore } from '../../domain/ports/event-store.js';
import { createSqlEventStore, type SqlEventStore } from '../../infra/event-store/sql-event-store.js';
import { DependencyUnavailableError } from '../../domain/ports/health.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { Connection, type ConnectionDeps, type Socket } from './connection.js';
import { createSyncBudget } from './sync-budget.js';
import { CloseCode, ErrorCode, PROTOCOL_VERSION, decodeServerFrame, encodeClientFrame, type ClientFrame, type ServerFrame } from '../protocol/index.js';

/**
 * One connection while a dependency is down (the store behind its replays, the store behind its
 * token check): the connection is never wedged and never closed for good by an outage. A Hello
 * whose replay of one conversation fails still replays the others and goes live for all of them,
 * then asks the client (SyncRequired) to sync the one that failed; a Sync that fails is answered
 * with a retryable Error; a token that cannot be checked closes in the reconnect range.
 */
describe('a connection while a dependency is down', () => {
  let db: SqlDatabase;
  let store: SqlEventStore;
  let commands: ConversationCommands;
  const alice = randomUUID();
  const bob = randomUUID();
  const carol = randomUUID();
  let withBob: string;
  let withCarol: string;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    store = await createSqlEventStore({ shards: [db], ownsDatabases: false });
    commands = createConversationCommands({ store, users: { existing: async (ids) => new Set(ids) }, clock: () => new Date() });
    withBob = (await commands.openDirect(alice, bob)).conversation.conversation_id;
    withCarol = (await commands.openDirect(alice, carol)).conversation.conversation_id;
    for (const [id, content] of [[withBob, 'to bob'], [withCarol, 'to carol']] as const) {
      await commands.sendMessage(alice, id, { content, content_type: 'text', media: null, client_message_id: null });
    }
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await db?.close();
  });

  /** A connection over a recording socket, its replays read through `reads`. */
  function open(
    reads: Pick<EventStore, 'readStream'>,
    verify: (token: string) => Promise<{ userId: string; username: string }> = async (token) => ({ userId: token, username: token }),
    contacts: () => Promise<string[]> = async () => [],
  ) {
    const added: string[] = [];
    const frames: ServerFrame[] = [];
    const raw: Uint8Array[] = [];
    const ended: number[] = [];
    const socket: Socket = {
      send(bytes) {
        raw.push(bytes);
        const decoded = decodeServerFrame(bytes);
        if (decoded.ok) frames.push(decoded.frame);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end: (code) => void ended.push(code),
    };
    const deps: ConnectionDeps = {
      nodeId: 'node-o',
      tokens: { verify },
      commands,
      store: reads,
      queries: { contacts },
      presence: createMemoryPresenceStore(),
      logger: pino({ level: 'silent' }),
      hub: { register() {}, unregister() {}, addContacts: (_c, ids) => void added.push(...ids), authenticate: () => null },
      clock: Date.now,
      maxBufferedBytes: 1 << 20,
      maxHeldEvents: 100,
      syncBudget: createSyncBudget({ perSecond: 1e9, burst: 1e9 }, Date.now),
    };
    const c = new Connection(deps, socket, '');
    const send = (frame: ClientFrame) => c.onMessage(encodeClientFrame(frame).slice().buffer, true);
    return { c, frames, raw, ended, send, added };
  }

  async function until(probe: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  const bodies = (frames: ServerFrame[]) => frames.map((f) => f.body);

  it("a Hello whose replay of one conversation fails replays the others, goes live for all, and asks for a Sync of the failed one", async () => {
    let down = true;
    const failing: Pick<EventStore, 'readStream'> = {
      readStream: (streamId, options) =>
        down && streamId === conversationStreamId(withBob) ? Promise.reject(new DependencyUnavailableError('postgresql')) : store.readStream(streamId, options),
    };
    const { c, frames, raw, send } = open(failing);
    send({
      requestId: 1,
      body: { case: 'hello', value: { token: alice, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [{ conversationId: withBob, lastVersion: 0 }, { conversationId: withCarol, lastVersion: 0 }] } },
    });
    await until(() => frames.some((f) => f.body.case === 'syncRequired'), 'SyncRequired');
    // The conversation after the failed one was replayed all the same.
    expect(bodies(frames)).toContainEqual({ case: 'syncDone', value: { conversationId: withCarol, version: 2, accessEnded: false } });
    expect(bodies(frames).some((b) => b.case === 'syncDone' && b.value.conversationId === withBob)).toBe(false);
    expect(bodies(frames)).toContainEqual({ case: 'syncRequired', value: { conversationIds: [withBob], withinMs: 1_000, reason: 'sync_failed' } });
    // Both conversations are live: nothing is held for a replay that will not come.
    const live = [new Uint8Array([1]), new Uint8Array([2])];
    c.deliver(withBob, 9, live[0]!);
    c.deliver(withCarol, 9, live[1]!);
    expect(raw.slice(-2)).toEqual(live);
    expect(c.state).toBe('open');

    // The client's Sync while the store is still down: a retryable refusal, the connection stays.
    send({ requestId: 2, body: { case: 'sync', value: { cursors: [{ conversationId: withBob, lastVersion: 0 }] } } });
    await until(() => frames.some((f) => f.requestId === 2), 'the answer to the Sync');
    expect(frames.find((f) => f.requestId === 2)!.body).toMatchObject({ case: 'error', value: { code: ErrorCode.INTERNAL, retryable: true, reason: 'dependency_unavailable' } });
    // Once the store is back, the same Sync replays it.
    down = false;
    send({ requestId: 3, body: { case: 'sync', value: { cursors: [{ conversationId: withBob, lastVersion: 0 }] } } });
    await until(() => frames.some((f) => f.requestId === 3), 'the answer to the second Sync');
    expect(frames.find((f) => f.requestId === 3)!.body).toEqual({ case: 'ok', value: {} });
    expect(bodies(frames)).toContainEqual({ case: 'syncDone', value: { conversationId: withBob, version: 2, accessEnded: false } });
    c.onClose();
  });

  it("contacts that cannot be read at Hello (the database is down) do not keep the cursors from being replayed, and are read again later", async () => {
    let contactReads = 0;
    const { c, frames, added, send } = open(store, undefined, async () => {
      if (++contactReads === 1) throw new DependencyUnavailableError('postgresql');
      return [bob, carol];
    });
    send({ requestId: 1, body: { case: 'hello', value: { token: alice, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [{ conversationId: withCarol, lastVersion: 0 }] } } });
    await until(() => frames.some((f) => f.body.case === 'syncDone'), 'the replay');
    expect(bodies(frames)).toContainEqual({ case: 'syncDone', value: { conversationId: withCarol, version: 2, accessEnded: false } });
    await until(() => added.length > 0, 'the contacts, read again');
    expect(added.sort()).toEqual([bob, carol].sort());
    c.onClose();
  });

  it('a token that cannot be checked because its store is down closes in the reconnect range, not as unauthenticated', async () => {
    const { frames, ended, send } = open({ readStream: store.readStream }, async () => {
      throw new DependencyUnavailableError('postgresql');
    });
    send({ requestId: 1, body: { case: 'hello', value: { token: alice, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } } });
    await until(() => ended.length > 0, 'the close');
    expect(ended).toEqual([CloseCode.INTERNAL]);
    expect(bodies(frames)).toEqual([
      { case: 'error', value: expect.objectContaining({ code: ErrorCode.INTERNAL, retryable: true, reason: 'dependency_unavailable' }) },
      { case: 'goodbye', value: { closeCode: CloseCode.INTERNAL, reason: 'dependency_unavailable', reconnectAfterMs: 1_000 } },
    ]);
  });
});
