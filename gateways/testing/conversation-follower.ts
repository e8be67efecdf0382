import type { ServerMessage } from '../protocol/index.js';
import type { TestClient } from '../gateway/testing/client.js';

/**
 * A client's view of one conversation, kept by PROTOCOL.md's rule ("Events, ordering and gap
 * detection"): an event at or below `lastSeen` is dropped as a duplicate; an event whose
 * previous_version is above `lastSeen` is a gap: it is dropped and a Sync from `lastSeen` is sent
 * (one at a time); SyncDone raises `lastSeen`. `applied` is what the user would see.
 *
 * It reads the client's recorded frames from the first one on, so frames that arrived before it
 * was attached (replay right after Welcome) are not missed.
 */
export function followConversation(
  client: TestClient,
  conversationId: string,
  options: { lastSeen?: number; onApplied?: (event: ServerMessage<'event'>) => void } = {},
) {
  const applied: ServerMessage<'event'>[] = [];
  const stats = { received: 0, duplicates: 0, gaps: 0, syncs: 0 };
  let lastSeen = options.lastSeen ?? 0;
  let syncPending = false;
  let index = 0;
  const waiters = new Set<() => void>();

  const pump = () => {
    while (index < client.frames.length) {
      const frame = client.frames[index++]!;
      if (frame.body.case === 'syncDone' && frame.body.value.conversationId === conversationId) {
        lastSeen = Math.max(lastSeen, frame.body.value.version);
        syncPending = false;
        continue;
      }
      if (frame.body.case !== 'event' || frame.body.value.conversationId !== conversationId) continue;
      const event = frame.body.value;
      stats.received++;
      if (event.version <= lastSeen) {
        stats.duplicates++;
      } else if (event.previousVersion > lastSeen) {
        stats.gaps++;
        if (!syncPending) {
          syncPending = true;
          stats.syncs++;
          client.request({ case: 'sync', value: { cursors: [{ conversationId, lastVersion: lastSeen }] } }, 30_000).catch(() => {});
        }
      } else {
        applied.push(event);
        lastSeen = event.version;
        options.onApplied?.(event);
      }
    }
    for (const check of [...waiters]) check();
  };
  client.ws.on('message', pump);
  pump();

  return {
    applied,
    stats,
    get lastSeen() {
      return lastSeen;
    },
    /** Resolves once `lastSeen` reaches `version`. */
    reach(version: number, timeoutMs = 15_000): Promise<void> {
      if (lastSeen >= version) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (lastSeen < version) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${conversationId} at version ${version} (at ${lastSeen}; ${JSON.stringify(stats)})`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    detach() {
      client.ws.off('message', pump);
    },
  };
}

export type ConversationFollower = ReturnType<typeof followConversation>;
