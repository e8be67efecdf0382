import type { StoredEvent } from '../../domain/ports/event-store.js';

/**
 * The event bus: fan-out of stored events from the relay to consumers (delivery, push,
 * projectors), and node-addressed messages to gateway nodes.
 *
 * Guarantees (the contract suite in contract.ts checks them for every adapter):
 * - `publish` resolves once the bus holds every event of the call (JetStream: every PubAck came
 *   back), stored in the order given. If it rejects, some events may be stored and some not:
 *   publishing the same events again is the recovery, and is safe because publishing is
 *   idempotent by event_id within the dedupe window (JetStream's Nats-Msg-Id window, 2 min by
 *   default; the memory bus remembers the last N ids). The relay never moves its checkpoint past
 *   a call that did not resolve.
 * - A consumer group (`consume(group, ...)`) is durable: events published while no member of the
 *   group runs are delivered when one starts; a group that never existed before starts at the
 *   oldest event the bus still retains (retention is bounded: JetStream max age / bytes, the
 *   memory bus's last N events).
 * - Each event goes to one member of the group, at-least-once. The handler gets a batch of at most
 *   `batchSize` events in publish order; the batch is acknowledged when the handler resolves.
 *   A batch whose handler throws is redelivered after a capped exponential back-off, while the
 *   group goes on with later events: redeliveries arrive out of order, and when several members
 *   run, their batches interleave. Log order is per batch, not across the group.
 * - When `signal` aborts, `consume` resolves after the running handler call has settled (its batch
 *   is acknowledged or handed back); events fetched but not yet handed to the handler are handed
 *   back at once for the other members.
 * - The bus is NOT the source of truth (ARCHITECTURE.md): consumers that must not miss anything
 *   check versions or positions against the store and fill gaps from it; consumers must tolerate
 *   duplicates (dedupe by event_id, or by stream version).
 * - Node messages (`sendToNode` / `onNodeMessage`) are at-most-once, in order per sender and node.
 *   A subscription is live on the transport once a later `flush()` has resolved (a node should
 *   flush before it tells anyone it can be reached).
 */
export type ConsumeOptions = {
  /** Most events per handler call (default 100). */
  batchSize?: number;
  signal?: AbortSignal;
};

export interface EventBus {
  publish(events: StoredEvent[]): Promise<void>;
  /**
   * Runs until `signal` aborts or the bus closes. Rejects only when it cannot start (invalid group
   * name, closed bus); transport failures while running are retried.
   */
  consume(group: string, handler: (events: StoredEvent[]) => Promise<void>, options?: ConsumeOptions): Promise<void>;
  sendToNode(nodeId: string, payload: Uint8Array): void;
  onNodeMessage(nodeId: string, handler: (payload: Uint8Array) => void): () => void;
  /** Resolves when every earlier send and subscription has reached the transport. */
  flush(): Promise<void>;
  /**
   * Calls `listener` each time the transport is back after a disconnection, once this process's
   * node subscriptions are live on it again. Node messages sent to this process while it was
   * disconnected are lost (at-most-once): a gateway node then tells its connections to sync.
   * The in-process bus never disconnects, so never calls it.
   */
  onReconnect(listener: () => void): () => void;
  /** Stops every consumer (as if their signals aborted), drops node subscriptions, releases the transport. */
  close(): Promise<void>;
}
