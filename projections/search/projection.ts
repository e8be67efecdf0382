
import type { StoredEvent } from '../../domain/ports/event-store.js';
import type { SearchDocument, SearchIndex } from '../../domain/ports/search.js';
import type { SqlClient } from '../../domain/ports/sql.js';
import type { ProjectedEvent } from '../runtime/decode.js';
import type { Projection } from '../runtime/runtime.js';
import { conversationIdOf } from '../../domain/conversation/stream.js';

/**
 * The `search` projection: feeds the SearchIndex with every MessageSent, and keeps each member's
 * membership intervals (by stream version) in SQL, in the projector's transaction.
 *
 * Who finds what: a user finds a message of a conversation only when it was sent while they were
 * a member — from the version of the event that made them a member (ConversationCreated or
 * MembersAdded) up to, not including, the version of their MemberRemoved. A member added later does
 * not find what was said before they joined; a removed member keeps finding what was said while
 * they were in, and nothing after. Someone removed and added again has two intervals.
 */

export const SEARCH_PROJECTION = 'search';

export const MEMBERSHIP_SCHEMA = `
CREATE TABLE IF NOT EXISTS search_members (
  conversation_id text NOT NULL,
  user_id text NOT NULL,
  from_version int NOT NULL,
  to_version int,
  PRIMARY KEY (conversation_id, user_id, from_version)
);
CREATE INDEX IF NOT EXISTS search_members_by_user ON search_members (user_id, conversation_id);
`;

type MembershipOp =
  | { kind: 'open'; conversation_id: string; user_ids: string[]; version: number }
  | { kind: 'close'; conversation_id: string; user_id: string; version: number };

function conversationOf(stored: StoredEvent): string {
  const id = conversationIdOf(stored.stream_id);
  if (id === null) throw new Error(`stream ${stored.stream_id} is not a conversation stream`);
  return id;
}

/** Opens are batched into one statement per run of opens; a close runs after the opens before it. */
async function applyMembership(tx: SqlClient, ops: MembershipOp[]): Promise<void> {
  let opens: { conversation_id: string; user_id: string; version: number }[] = [];
  const flushOpens = async () => {
    if (opens.length === 0) return;
    await tx.query(
      `INSERT INTO search_members (conversation_id, user_id, from_version)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) ON CONFLICT DO NOTHING`,
      [opens.map((o) => o.conversation_id), opens.map((o) => o.user_id), opens.map((o) => o.version)],
    );
    opens = [];
  };
  for (const op of ops) {
    if (op.kind === 'open') {
      for (const user_id of op.user_ids) opens.push({ conversation_id: op.conversation_id, user_id, version: op.version });
      continue;
    }
    await flushOpens();
    // Idempotent: a replayed close finds its interval already closed at this version.
    await tx.query(
      'UPDATE search_members SET to_version = $3 WHERE conversation_id = $1 AND user_id = $2 AND to_version IS NULL AND from_version < $3',
      [op.conversation_id, op.user_id, op.version],
    );
  }
  await flushOpens();
}

/** Event types that never change what is found: receipts and reactions, most of a busy log, are not even parsed. */
const IGNORED = new Set(['ReactionAdded', 'ReactionRemoved', 'Delivered', 'Read']);

export function createSearchProjection(deps: { index: SearchIndex }): Projection {
  const { index } = deps;
  return {
    name: SEARCH_PROJECTION,
    schema: MEMBERSHIP_SCHEMA + index.schema,
    tables: ['search_members', ...index.sqlTables],
    async apply(tx: SqlClient, events: readonly ProjectedEvent[]) {
      const upserts: SearchDocument[] = [];
      const ops: MembershipOp[] = [];
      for (const { stored, event } of events) {
        if (event === null || IGNORED.has(stored.type)) continue;
        const conversation_id = conversationOf(stored);
        switch (event.type) {
          case 'ConversationCreated':
            ops.push({ kind: 'open', conversation_id, user_ids: event.data.members, version: stored.version });
            break;
          case 'MembersAdded':
            ops.push({ kind: 'open', conversation_id, user_ids: event.data.user_ids, version: stored.version });
            break;
          case 'MemberRemoved':
            ops.push({ kind: 'close', conversation_id, user_id: event.data.user_id, version: stored.version });
            break;
          case 'MessageSent': {
            const d = event.data;
            const content = d.media?.file_name ? `${d.content}\n${d.media.file_name}`.trim() : d.content;
            if (content.trim() === '') break;
            upserts.push({
              message_id: d.message_id,
              conversation_id,
              sequence_number: stored.version,
              sender_id: d.sender_id,
              created_at: d.created_at,
              content,
            });
            break;
          }
          case 'ReactionAdded':
          case 'ReactionRemoved':
          case 'Delivered':
          case 'Read':
            break;
          default: {
            const unreachable: never = event;
            return unreachable;
          }
        }
      }
      await applyMembership(tx, ops);
      const last = events[events.length - 1]?.stored;
      if (last) await index.write({ upserts, removals: [], checkpoint: { shard: last.shard, position: last.position } }, tx);
    },
  };
}
