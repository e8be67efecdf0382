/**
 * The client's side of PROTOCOL.md "Events, ordering and gap detection": the last version seen
 * per conversation, and the decision for each incoming event. Pure: no I/O, no clock.
 */
export type EventDecision =
  /** new and in order: hand it to the application; the cursor moved to its version */
  | 'apply'
  /** at or below the cursor: already seen */
  | 'duplicate'
  /** an event meant for every member is missing: Sync from the cursor, drop this one */
  | 'gap';

export class ConversationCursors {
  readonly #last = new Map<string, number>();

  constructor(initial: Iterable<readonly [string, number]> = []) {
    for (const [conversationId, version] of initial) this.#last.set(conversationId, version);
  }

  /** The last version seen of a conversation, or undefined when the client has no cursor for it. */
  get(conversationId: string): number | undefined {
    return this.#last.get(conversationId);
  }

  has(conversationId: string): boolean {
    return this.#last.has(conversationId);
  }

  /** Starts tracking a conversation (no effect when a cursor exists and is not lower). */
  track(conversationId: string, version: number): void {
    const current = this.#last.get(conversationId);
    if (current === undefined || version > current) this.#last.set(conversationId, version);
  }

  forget(conversationId: string): void {
    this.#last.delete(conversationId);
  }

  entries(): [string, number][] {
    return [...this.#last.entries()];
  }

  /**
   * Decides on one event. Without a cursor the first event sets the baseline (history comes from
   * REST). On 'apply' the cursor has moved to `version`.
   */
  onEvent(conversationId: string, version: number, previousVersion: number): EventDecision {
    const last = this.#last.get(conversationId);
    if (last !== undefined) {
      if (version <= last) return 'duplicate';
      if (previousVersion > last) return 'gap';
    }
    this.#last.set(conversationId, version);
    return 'apply';
  }

  /** SyncDone: every event meant for the user up to `version` has been sent. */
  onSyncDone(conversationId: string, version: number): void {
    this.track(conversationId, version);
  }
}
