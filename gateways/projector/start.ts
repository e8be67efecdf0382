import type { SearchIndex } from '../../domain/ports/search.js';
import type { Logger, Projector } from '../../projections/runtime/runtime.js';
import { rebuildSearchIfIndexBehind } from '../../projections/search/recover.js';
import { stopOn, type Running } from '../lib/role.js';

export type ProjectorRoleDeps = {
  /** The runtime over the server's projections (registry.ts), as the composition root built it. */
  projector: Projector;
  /** The message search index, rebuilt from the log first when it is behind its checkpoint (recover.ts). */
  searchIndex: SearchIndex;
  logger: Logger;
  /** Runs a schema set-up, retrying while the database is unreachable. */
  ensureSchema(what: string, ensure: () => Promise<void>): Promise<void>;
};

/**
 * The projector role: applies the event log of every shard to the read models (conversations,
 * search, media thumbnails), each from its checkpoint, kept in the same transaction as its
 * writes. Reads the store's log; writes the read models and their checkpoints.
 */
export async function start(deps: ProjectorRoleDeps, signal: AbortSignal): Promise<Projector & Running> {
  const { projector } = deps;
  await deps.ensureSchema('read models', () => projector.ensureSchema());
  await rebuildSearchIfIndexBehind(projector, deps.searchIndex, deps.logger);
  await projector.start();
  return Object.assign(projector, { stopped: stopOn(signal, () => projector.stop()) });
}

