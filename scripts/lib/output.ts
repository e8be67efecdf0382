import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { CliError } from './cli.js';

/** Where a CLI writes its data: stdout or a file, with backpressure; a closed pipe (`| head`) ends quietly. */
export type Output = { write(text: string): Promise<void>; readonly closed: boolean; end(): Promise<void> };

export async function openOutput(path: string | undefined): Promise<Output> {
  let stream: Writable;
  if (path === undefined) stream = process.stdout;
  else {
    const file = createWriteStream(path, { flags: 'w' });
    try {
      await once(file, 'open');
    } catch (error) {
      throw new CliError(`cannot write --out ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    stream = file;
  }
  let closed = false;
  let failure: Error | null = null;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') closed = true;
    else failure = error;
  });
  const check = () => {
    if (failure) throw new CliError(`write failed: ${failure.message}`);
  };
  return {
    get closed() {
      return closed;
    },
    async write(text: string) {
      check();
      if (closed) return;
      if (!stream.write(text)) await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
      check();
    },
    async end() {
      check();
      if (path === undefined || closed) return;
      stream.end();
      await once(stream, 'finish');
      check();
    },
  };
}
