import type { SearchIndex } from '../../domain/ports/search.js';
import type { Logger, Projector } from '../runtime/runtime.js';
import { SEARCH_PROJECTION } from './projection.js';

/**
 * An external index (Elasticsearch) can lose what the projection's SQL checkpoint says it holds:
 * an index deleted or restored from an older snapshot. When its own checkpoint of a shard is
 * behind the projection's, the projection is rebuilt from position 0 (documents are keyed by
 * message id, so replaying over what is left is safe). Call before the projector starts.
 * Returns true when it reset the projection.
 */
export async function rebuildSearchIfIndexBehind(projector: Pick<Projector, 'status' | 'reset'>, index: SearchIndex, logger?: Logger): Promise<boolean> {
  for (const s of await projector.status()) {
    if (s.projection !== SEARCH_PROJECTION || s.position === 0) continue;
    const held = await index.checkpoint(s.shard);
    if (held < s.position) {
      logger?.warn({ shard: s.shard, projection_position: s.position, index_position: held, index: index.kind }, 'search index is behind its projection: rebuilding it from position 0');
      await projector.reset(SEARCH_PROJECTION);
      return true;
    }
  }
  return false;
}
