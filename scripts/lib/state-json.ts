import { allReactions, type ConversationState } from '../../domain/conversation/state.js';

/** A conversation state as plain JSON (the decider's Maps and Sets as sorted arrays), for printing and comparing. */
export function stateToJson(state: ConversationState): Record<string, unknown> {
  if (state.status !== 'active') return { status: state.status, version: state.version };
  const split = (key: string) => key.split('\u0000');
  const byKey = <T>(rows: T[], key: (row: T) => string) => rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    status: state.status,
    version: state.version,
    conversation_id: state.conversationId,
    kind: state.kind,
    name: state.name,
    description: state.description,
    created_by: state.createdBy,
    created_at: state.createdAt,
    members: byKey(
      [...state.members].map(([user_id, m]) => ({ user_id, role: m.admin ? 'admin' : 'member', joined_version: m.joinedAt })),
      (m) => m.user_id,
    ),
    client_messages: byKey(
      [...state.clientMessages].flatMap(([sender_id, ids]) =>
        [...ids].map(([client_message_id, sequence_number]) => ({ sender_id, client_message_id, sequence_number })),
      ),
      (c) => `${c.sender_id}\u0000${c.client_message_id}`,
    ),
    reactions: byKey(
      [...allReactions(state)],
      (r) => `${r.message_id}\u0000${r.user_id}\u0000${r.emoji}`,
    ),
    watermarks: byKey(
      [...state.userWatermarks].map(([user_id, w]) => ({ user_id, delivered_up_to: w.delivered, read_up_to: w.read })),
      (w) => w.user_id,
    ),
    device_watermarks: byKey(
      [...state.deviceWatermarks].map(([key, w]) => {
        const [user_id, device_id] = split(key);
        return { user_id, device_id, delivered_up_to: w.delivered, read_up_to: w.read };
      }),
      (w) => `${w.user_id}\u0000${w.device_id}`,
    ),
  };
}
