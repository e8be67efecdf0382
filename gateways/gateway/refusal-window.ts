/**
 * Frames refused by a connection's rate limits, counted over a sliding window (`slots` slots of
 * `windowMs / slots` each): the flood close fires when the count in the window reaches its
 * threshold, whether or not frames in between were admitted. Allocated on a connection's first
 * refusal; most connections never get one.
 */
export class RefusalWindow {
  private readonly counts: number[];
  private readonly slotMs: number;
  private slotStart: number;
  private index = 0;
  private total = 0;

  constructor(windowMs: number, now: number, slots = 6) {
    this.counts = new Array<number>(slots).fill(0);
    this.slotMs = Math.max(1, windowMs / slots);
    this.slotStart = now;
  }

  /** Counts one refusal at `now`; returns the refusals within the window, this one included. */
  add(now: number): number {
    const elapsed = Math.floor((now - this.slotStart) / this.slotMs);
    if (elapsed > 0) {
      for (let k = 0; k < Math.min(elapsed, this.counts.length); k++) {
        this.index = (this.index + 1) % this.counts.length;
        this.total -= this.counts[this.index]!;
        this.counts[this.index] = 0;
      }
      this.slotStart += elapsed * this.slotMs;
    }
    this.counts[this.index]!++;
    this.total++;
    return this.total;
  }
}
