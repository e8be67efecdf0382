import type { EventStore } from '../../domain/ports/event-store.js';
import { conversationStreamId } from '../../commands/ids.js';
import { emptyTracked, routeAndFold } from '../../domain/conversation/recipients.js';
import { encodeServerFrame, eventFrame, toEventFrame } from '../protocol/index.js';

export type ReplayResult = {
  /** SyncDone.version: every event meant for the user up to it has been handed to `send`. */
  version: number;
  accessEnded: boolean;
  /** Events read from the store (the replay folds the stream from version 1): what the replay cost. */
  eventsRead: number;
};

const PAGE = 1000;

/**
 * Replays one conversation for one user from the store: every event above `after` that the
 * delivery rule (delivery/recipients.ts) sends to `userId`, in version order, with the same
 * previous_version as live delivery. The rule depends on the state before each event (members,
 * message senders, watermarks), so the stream is folded from version 1; events at or below the
 * cursor are folded, not sent.
 *
 * accessEnded: the user is not a member at the end of what was read (never was, removed, or no
 * such conversation); then `version` is the last version the user was sent (or the cursor), so
 * nothing about the conversation past the user's removal leaks.
 */
export async function replayConversation(
  store: Pick<EventStore, 'readStream'>,
  conversationId: string,
  userId: string,
  after: number,
  send: (version: number, frame: Uint8Array) => void,
): Promise<ReplayResult> {
  const streamId = conversationStreamId(conversationId);
  const t = emptyTracked(conversationId);
  let lastForUser = 0;
  let eventsRead = 0;
  for (;;) {
    const events = await store.readStream(streamId, { from: t.version + 1, maxCount: PAGE });
    eventsRead += events.length;
    for (const event of events) {
      if (event.version !== t.version + 1) throw new Error(`stream ${streamId}: expected version ${t.version + 1}, read ${event.version}`);
      const routed = routeAndFold(t, event);
      if (routed === null || !routed.recipients.includes(userId)) continue;
      lastForUser = event.version;
      if (event.version <= after) continue;
      send(event.version, encodeServerFrame(eventFrame(toEventFrame(event, { previousVersion: routed.previousVersion }))));
    }
    if (events.length < PAGE) break;
  }
  const member = t.active && t.members.has(userId);
  if (member) return { version: Math.max(t.version, after), accessEnded: false, eventsRead };
  return { version: Math.max(after, lastForUser), accessEnded: true, eventsRead };
}
