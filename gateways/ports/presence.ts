/**
 * Presence and typing: ephemeral signals, never events in the store.
 *
 * Guarantees every adapter gives (the contract suite in contract.ts checks them):
 * - A user is online while at least one of their connections is registered and has sent a
 *   heartbeat within `presenceTtlMs` (default 120 s; clients beat every 30 s); registering,
 *   heartbeating and unregistering are idempotent per connection id.
 * - When the last connection goes (unregistered, or expired), the user is offline and `last_seen`
 *   is the time of that connection's last sign of life. An explicit status (away) set by the user
 *   holds while they are online.
 * - Typing: `typing(user, conversation, true)` is accepted at most once per `typingThrottleMs`
 *   (default 1 s) per user and conversation (later calls inside the window return false and
 *   publish nothing); a typing state expires `typingTtlMs` (default 3 s) after the last accepted
 *   signal; `typing(..., false)` clears it at once.
 * - A typing change names its recipients (`recipients`: the other members of the conversation,
 *   resolved by the caller, which has just checked membership); the change that ends a typing
 *   state on expiry names those of the signal that started it. Nodes route it to those users only,
 *   so a gateway node needs no index of its users' conversations.
 * - Changes (online / offline / away, typing started / stopped) are published to every subscriber
 *   of every node (at-most-once: a subscriber that is down misses them; current state can always be
 *   read back).
 * Time comes from the adapter's clock (injectable), so tests need no sleeping past TTLs.
 *
 * Details both adapters share (the contract checks them too):
 * - `last_seen` is null while the user is shown online or away; when offline it is their latest
 *   sign of life over all their connections (connect, heartbeat, setStatus online/away), or the
 *   moment they chose to appear offline (then frozen: later heartbeats do not move it). A user who
 *   appears offline is still routed to (`nodesOf`).
 * - An explicit status is dropped when the user's last registered connection goes, so the next
 *   connect shows them online again (clients re-send their choice after connecting).
 *   `setStatus` on a user with no registered connection changes nothing: presence follows
 *   connections.
 * - A connection whose heartbeat is older than `presenceTtlMs` no longer counts (reads use the
 *   clock), but the offline change is published by the next `sweep()` (gateways run it every
 *   second or so); a heartbeat that comes first revives it.
 * - Only real changes are published (a second connect, a repeated disconnect or status publish
 *   nothing); accepted `typing(..., true)` calls are all published (they refresh the TTL);
 *   `typing(..., false)` publishes only when the user was typing, and does not reset the throttle.
 */
export type PresenceStatus = 'online' | 'away' | 'offline';

export type Presence = { user_id: string; status: PresenceStatus; last_seen: string | null };

export type PresenceChange = { kind: 'presence'; presence: Presence };
export type TypingChange = { kind: 'typing'; conversation_id: string; user_id: string; is_typing: boolean; recipients: string[] };
export type SignalChange = PresenceChange | TypingChange;

export interface PresenceStore {
  /** A connection (device) of `userId` opened, on gateway node `nodeId`. */
  connect(userId: string, connectionId: string, nodeId: string): Promise<void>;
  /**
   * Returns false when the connection is unknown (never connected, disconnected, or expired by a
   * sweep, e.g. after the node was cut off from the store): the caller should `connect` it again.
   */
  heartbeat(userId: string, connectionId: string): Promise<boolean>;
  disconnect(userId: string, connectionId: string): Promise<void>;
  /** Explicit status from the user (REST / client): online, away, or offline (appear offline). */
  setStatus(userId: string, status: PresenceStatus): Promise<void>;
  /** One entry per requested id, in order (a user never seen is offline, last_seen null). */
  get(userIds: string[]): Promise<Presence[]>;
  /**
   * Node ids holding at least one live connection of each user (for routing deliveries): every
   * requested user is a key (an empty array when they have none); node ids are distinct, sorted.
   */
  nodesOf(userIds: string[]): Promise<Map<string, string[]>>;
  /**
   * Returns false when throttled (nothing published). `recipients`: who should see it (the other
   * members of the conversation); a start stores them for the change its expiry publishes.
   */
  typing(userId: string, conversationId: string, isTyping: boolean, recipients: readonly string[]): Promise<boolean>;
  /** Users typing in a conversation now (sorted). */
  typingIn(conversationId: string): Promise<string[]>;
  subscribe(listener: (change: SignalChange) => void): () => void;
  /**
   * Calls `listener` each time the store is reachable again after it lost its connection. What it
   * held may be gone (a Redis restarted without persistence loses every connection entry), and
   * changes published meanwhile were missed: a gateway node registers its live connections again
   * and tells them to sync (deliveries may have been routed away from them meanwhile). While the
   * store cannot be reached, calls fail at once with DependencyUnavailableError (infra/health)
   * rather than waiting for it. The in-memory store never loses anything, so never calls it.
   */
  onReconnect(listener: () => void): () => void;
  /** Finds connections that missed their heartbeats and publishes the resulting offline changes. */
  sweep(): Promise<void>;
  close(): Promise<void>;
}
