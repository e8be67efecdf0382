import { conversationsProjection } from '../conversations/projection.js';
import type { Projection } from './runtime.js';
import type { SearchIndex } from '../../domain/ports/search.js';
import { createSearchProjection } from '../search/projection.js';
import { createMediaThumbnailsProjection, type ThumbnailQueued } from '../media/projection.js';

/**
 * The one list of projections, shared by the server (gateways/compose/process.ts) and the operator CLI
 * (`npm run projections`), so both agree on what exists. Adding a projection is one line in the
 * list below (and a field in ProjectionsDeps when it needs a port beyond its SQL database).
 */
export interface ProjectionsDeps {
  /** The message search index (gateways/compose/search.ts); without it there is no `search` projection. */
  searchIndex?: SearchIndex;
  /** Wakes the thumbnail worker (gateways/media/thumbnail-worker.ts) when media were queued; without it the worker polls. */
  onThumbnailQueued?: (at: ThumbnailQueued) => void;
}

export function createProjections(_deps: ProjectionsDeps = {}): Projection[] {
  return [
    conversationsProjection,
    ...(_deps.searchIndex !== undefined ? [createSearchProjection({ index: _deps.searchIndex })] : []),
    createMediaThumbnailsProjection({ onQueued: (at) => _deps.onThumbnailQueued?.(at) }),
  ];
}

/** The names of the registered projections, in the order they run. */
export const projectionNames = (deps: ProjectionsDeps = {}): string[] => createProjections(deps).map((p) => p.name);
