/** A minimal typed event emitter (browser-safe): `on(type, handler)` returns the unsubscribe function. */
export class Emitter<Events extends Record<string, unknown>> {
  readonly #handlers = new Map<keyof Events, Set<(value: never) => void>>();

  on<K extends keyof Events>(type: K, handler: (value: Events[K]) => void): () => void {
    let set = this.#handlers.get(type);
    if (set === undefined) this.#handlers.set(type, (set = new Set()));
    set.add(handler as (value: never) => void);
    return () => set.delete(handler as (value: never) => void);
  }

  emit<K extends keyof Events>(type: K, value: Events[K]): void {
    const set = this.#handlers.get(type);
    if (set === undefined) return;
    for (const handler of [...set]) (handler as (value: Events[K]) => void)(value);
  }
}
