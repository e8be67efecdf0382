/**
 * Where the SDK keeps the last version seen per conversation. Keep it durable (localStorage, a
 * file, IndexedDB) so a restarted client syncs from where it was; `save` is called on every
 * applied event, so a durable store should batch its writes.
 */
export type CursorStore = {
  load(): Record<string, number> | Promise<Record<string, number>>;
  save(conversationId: string, version: number): void | Promise<void>;
};

export function memoryCursorStore(initial: Record<string, number> = {}): CursorStore & { snapshot(): Record<string, number> } {
  const cursors = new Map(Object.entries(initial));
  return {
    load: () => Object.fromEntries(cursors),
    save(conversationId, version) {
      cursors.set(conversationId, version);
    },
    snapshot: () => Object.fromEntries(cursors),
  };
}
