/**
 * The chaos suite's verdict on one scenario (pure: no I/O). For every conversation it is given
 * what the driver saw acknowledged (SendAck), what the event store holds, what REST history
 * answers and what each member's client emitted, in arrival order; it says, per acknowledged
 * message, whether it is stored exactly once, listed exactly once in history and reached every
 * member exactly once and in order.
 *
 * - lost: acknowledged messages missing from the store, from history or from at least one
 *   member's client (each message counted once, wherever it is missing; `lost_in` says where);
 * - duplicated: acknowledged messages found more than once in the store, in history or at a
 *   member's client;
 * - out_of_order: deliveries of an acknowledged message to a member that came after a delivery
 *   of a later version of the same conversation (first deliveries only: a repeat is a duplicate);
 * - mismatched: acknowledged messages stored at another version than their SendAck said.
 */

/** One message as a place holds it: its client_message_id and its version (sequence number). */
export type MessageCopy = { readonly clientMessageId: string | null; readonly version: number };

export type ConversationObservation = {
  readonly conversationId: string;
  /** User ids of every member (the sender included: every member gets every message). */
  readonly members: readonly string[];
  /** What the SendAcks said: client_message_id and sequence number. */
  readonly acked: readonly MessageCopy[];
  /** The MessageSent rows of the conversation's stream in the event store. */
  readonly stored: readonly MessageCopy[];
  /** The messages REST history lists. */
  readonly history: readonly MessageCopy[];
  /** Per member (user id): the MessageSent events its client emitted, in the order they came. */
  readonly received: Readonly<Record<string, readonly MessageCopy[]>>;
};

export type CheckResult = {
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  out_of_order: number;
  mismatched: number;
  /** Where the lost messages were missing (a message may be missing in several places). */
  lost_in: { store: number; history: number; clients: number };
  /** Short reasons, the first few of each kind (ids only, never message text). */
  problems: string[];
};

const MAX_PROBLEMS = 20;

function countBy(copies: readonly MessageCopy[]): Map<string, MessageCopy[]> {
  const byId = new Map<string, MessageCopy[]>();
  for (const copy of copies) {
    if (copy.clientMessageId === null) continue;
    const list = byId.get(copy.clientMessageId);
    if (list === undefined) byId.set(copy.clientMessageId, [copy]);
    else list.push(copy);
  }
  return byId;
}

export function checkScenario(conversations: readonly ConversationObservation[]): CheckResult {
  const result: CheckResult = {
    acked: 0,
    stored: 0,
    lost: 0,
    duplicated: 0,
    out_of_order: 0,
    mismatched: 0,
    lost_in: { store: 0, history: 0, clients: 0 },
    problems: [],
  };
  const problem = (text: string) => {
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(text);
  };

  for (const c of conversations) {
    const stored = countBy(c.stored);
    const history = countBy(c.history);
    const received = new Map(c.members.map((m) => [m, countBy(c.received[m] ?? [])] as const));
    const ackedIds = new Set<string>();

    for (const ack of c.acked) {
      if (ack.clientMessageId === null) continue;
      const id = ack.clientMessageId;
      if (ackedIds.has(id)) continue; // the same send acknowledged twice (a retry): one message
      ackedIds.add(id);
      result.acked++;
      let lost = false;
      let duplicated = false;

      const inStore = stored.get(id) ?? [];
      if (inStore.length > 0) result.stored++;
      if (inStore.length === 0) {
        lost = true;
        result.lost_in.store++;
        problem(`${c.conversationId} v${ack.version} (${id}): acknowledged, not in the store`);
      } else if (inStore.length > 1) {
        duplicated = true;
        problem(`${c.conversationId} (${id}): stored ${inStore.length} times`);
      }
      if (inStore.length > 0 && inStore.some((s) => s.version !== ack.version)) {
        result.mismatched++;
        problem(`${c.conversationId} (${id}): acknowledged at v${ack.version}, stored at v${inStore.map((s) => s.version).join(',')}`);
      }

      const inHistory = history.get(id) ?? [];
      if (inHistory.length === 0) {
        lost = true;
        result.lost_in.history++;
        problem(`${c.conversationId} v${ack.version} (${id}): not in REST history`);
      } else if (inHistory.length > 1) {
        duplicated = true;
        problem(`${c.conversationId} (${id}): ${inHistory.length} times in REST history`);
      }

      let missingAtClients = 0;
      for (const member of c.members) {
        const copies = received.get(member)?.get(id) ?? [];
        if (copies.length === 0) {
          missingAtClients++;
          problem(`${c.conversationId} v${ack.version} (${id}): never reached member ${member}`);
        } else if (copies.length > 1) {
          duplicated = true;
          problem(`${c.conversationId} v${ack.version} (${id}): reached member ${member} ${copies.length} times`);
        }
      }
      if (missingAtClients > 0) {
        lost = true;
        result.lost_in.clients++;
      }
      if (lost) result.lost++;
      if (duplicated) result.duplicated++;
    }

    // Order: per member, the first delivery of each acknowledged message must come after every
    // earlier version it already got.
    for (const member of c.members) {
      const seen = new Set<string>();
      let highest = 0;
      for (const copy of c.received[member] ?? []) {
        if (copy.clientMessageId === null || !ackedIds.has(copy.clientMessageId)) {
          highest = Math.max(highest, copy.version);
          continue;
        }
        if (seen.has(copy.clientMessageId)) continue;
        seen.add(copy.clientMessageId);
        if (copy.version < highest) {
          result.out_of_order++;
          problem(`${c.conversationId} v${copy.version} (${copy.clientMessageId}): reached member ${member} after v${highest}`);
        }
        highest = Math.max(highest, copy.version);
      }
    }
  }
  return result;
}
