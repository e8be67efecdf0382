/**
 * A progress line on stderr for long runs. On a terminal it redraws one line (at most 10 times a
 * second); elsewhere (when asked with --progress) it prints a plain line at most once a second.
 * It never writes to stdout, which carries the data.
 */
export type Progress = { add(n: number): void; done(): void };

export type ProgressOptions = {
  label: string;
  /** Expected total (0 or undefined: unknown, no bar). */
  total?: number;
  unit?: string;
  enabled: boolean;
  stream?: NodeJS.WriteStream;
  now?: () => number;
};

const WIDTH = 30;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const unit = options.unit ?? 'events';
  const tty = stream.isTTY === true;
  const started = now();
  let count = 0;
  let lastDraw = -Infinity;
  let drawnCount = -1;
  let finished = false;

  function line(): string {
    const seconds = (now() - started) / 1000;
    const rate = seconds > 0 ? count / seconds : 0;
    const total = options.total ?? 0;
    if (total > 0) {
      const ratio = Math.min(1, count / total);
      const filled = Math.round(ratio * WIDTH);
      return `${options.label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${fmt(count)}/${fmt(total)} ${unit} ${fmt(rate)}/s`;
    }
    return `${options.label} ${fmt(count)} ${unit} ${fmt(rate)}/s`;
  }

  function draw(force: boolean) {
    if (!options.enabled || finished) return;
    const t = now();
    if (!force && t - lastDraw < (tty ? 100 : 1000)) return;
    if (force && !tty && drawnCount === count) return;
    lastDraw = t;
    drawnCount = count;
    stream.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
  }

  return {
    add(n: number) {
      count += n;
      draw(false);
    },
    done() {
      draw(true);
      if (options.enabled && tty && !finished) stream.write('\n');
      finished = true;
    },
  };
}
