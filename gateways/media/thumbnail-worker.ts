import { isOutage } from '../../domain/ports/health.js';
import type { MediaRegistry, ThumbnailOutcome, Thumbnailer } from '../ports/media.js';
import type { ObjectStore } from '../ports/object-store.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import type { Logger, Projector } from '../../projections/runtime/runtime.js';
import { mediaObjectKey, thumbnailKey } from '../../projections/media/keys.js';
import { MEDIA_THUMBNAILS_PROJECTION, type ThumbnailQueued } from '../../projections/media/projection.js';

/**
 * The thumbnail worker: takes `pending` rows of `media_thumbnails` (queued by the projection),
 * reads the original from the object store (the sealed copy its message names), makes the
 * thumbnail, stores it, and records the outcome. Runs beside the projector (the `projector` role).
 *
 * - Restart-safe: a job is claimed by pushing its `next_attempt_at` one lease ahead (row lock,
 *   SKIP LOCKED), so a worker that dies mid-job leaves it to be taken again when the lease runs
 *   out; several workers never take the same job at once.
 * - Woken by the projection when it queues work (after the projector committed it: waitFor), and
 *   polls every `pollIntervalMs` for retries and for work queued elsewhere.
 * - Failures worth retrying back off exponentially per job; after `maxAttempts` the media gets
 *   `none`. An undecodable image is not a failure: it is `none` with the reason.
 * - An outage (the object store or the database cannot be reached: DependencyUnavailableError) is
 *   not the job's fault: its attempt is given back, and the whole worker backs off (1 s doubling
 *   up to 30 s) instead of failing one job after another, so no media loses its thumbnail to an
 *   outage however long it lasts.
 */
export type ThumbnailWorkerDeps = {
  db: SqlDatabase;
  objects: ObjectStore;
  /** Where each original is: its sealed copy (the bytes its message names), else the upload (media sent before sealing existed). */
  registry: Pick<MediaRegistry, 'find'>;
  thumbnailer: Thumbnailer;
  projector: Pick<Projector, 'waitFor'>;
  logger?: Logger;
  pollIntervalMs?: number;
  leaseMs?: number;
  maxAttempts?: number;
  /** Back-off of the whole worker after an outage (default 1 s doubling up to 30 s). */
  outageBackoff?: { initialMs: number; maxMs: number };
};

type Job = { media_id: string; conversation_id: string; source_mime: string; attempts: number };

export interface ThumbnailWorker {
  start(): void;
  stop(): Promise<void>;
  /** The projection queued work at this log position: run it once the projector has committed it. */
  notify(at: ThumbnailQueued): void;
  /** Runs every job due now (tests and tools; no background loop needed). */
  runDue(): Promise<number>;
}

export function createThumbnailWorker(deps: ThumbnailWorkerDeps): ThumbnailWorker {
  const pollIntervalMs = deps.pollIntervalMs ?? 1_000;
  const leaseMs = deps.leaseMs ?? 120_000;
  const maxAttempts = deps.maxAttempts ?? 5;
  const outageBackoff = deps.outageBackoff ?? { initialMs: 1_000, maxMs: 30_000 };
  /** Outages in a row (0: the last job or poll went through). */
  let outages = 0;
  let running = false;
  let loop: Promise<void> | null = null;
  let wakeUp: (() => void) | null = null;
  let woken = false;

  function wake() {
    woken = true;
    if (outages === 0) wakeUp?.(); // during an outage the back-off decides when to look again
  }

  async function claim(): Promise<Job | null> {
    const { rows } = await deps.db.query<Job>(
      `UPDATE media_thumbnails SET attempts = attempts + 1, next_attempt_at = now() + ($1::int * interval '1 millisecond'), updated_at = now()
       WHERE media_id = (
         SELECT media_id FROM media_thumbnails WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING media_id, conversation_id, source_mime, attempts`,
      [leaseMs],
    );
    const job = rows[0];
    return job ? { ...job, attempts: Number(job.attempts) } : null;
  }

  async function finish(mediaId: string, outcome: ThumbnailOutcome, key: string | null) {
    if (outcome.status === 'ready') {
      const t = outcome.thumbnail;
      await deps.db.query(
        `UPDATE media_thumbnails SET status = 'ready', thumbnail_key = $2, thumbnail_mime = $3, width = $4, height = $5, reason = NULL, updated_at = now()
         WHERE media_id = $1 AND status = 'pending'`,
        [mediaId, key, t.mimeType, t.width, t.height],
      );
    } else {
      await deps.db.query(`UPDATE media_thumbnails SET status = 'none', reason = $2, updated_at = now() WHERE media_id = $1 AND status = 'pending'`, [
        mediaId,
        outcome.reason,
      ]);
    }
  }

  /** Runs one job; false when it met an outage (the job is given back, its attempt not counted). */
  async function runJob(job: Job): Promise<boolean> {
    if (job.attempts > maxAttempts) {
      await finish(job.media_id, { status: 'none', reason: `no thumbnail after ${maxAttempts} attempts` }, null);
      return true;
    }
    try {
      const record = await deps.registry.find(job.media_id);
      const source = await deps.objects.get(record?.sealed_key ?? mediaObjectKey(job.conversation_id, job.media_id));
      if (source === null) {
        await finish(job.media_id, { status: 'none', reason: 'the upload is missing from the object store' }, null);
        return true;
      }
      const outcome = await deps.thumbnailer.make({ mimeType: job.source_mime, body: source.body });
      if (outcome.status === 'ready') {
        const key = thumbnailKey(job.media_id);
        await deps.objects.put(key, outcome.thumbnail.data, { contentType: outcome.thumbnail.mimeType });
        await finish(job.media_id, outcome, key);
      } else {
        await finish(job.media_id, outcome, null);
      }
      return true;
    } catch (error) {
      if (isOutage(error)) {
        // Not this media's fault: give the attempt back and let the whole worker wait.
        await deps.db.query(
          `UPDATE media_thumbnails SET attempts = greatest(attempts - 1, 0), next_attempt_at = now() WHERE media_id = $1 AND status = 'pending'`,
          [job.media_id],
        );
        return false;
      }
      const retryInMs = Math.min(60_000, 500 * 2 ** job.attempts);
      deps.logger?.warn({ err: error, media_id: job.media_id, attempt: job.attempts, retry_in_ms: retryInMs }, 'thumbnail failed; retrying later');
      await deps.db.query(`UPDATE media_thumbnails SET next_attempt_at = now() + ($2::int * interval '1 millisecond') WHERE media_id = $1 AND status = 'pending'`, [
        job.media_id,
        retryInMs,
      ]);
      return true;
    }
  }

  /** Runs every due job; returns how many. Stops at an outage (the run loop then backs off). */
  async function drain(): Promise<number> {
    let n = 0;
    for (let job = await claim(); job !== null && running; job = await claim()) {
      if (!(await runJob(job))) {
        outages++;
        return n;
      }
      outages = 0;
      n++;
    }
    return n;
  }

  /** How long to wait before the next look: a poll, or the outage back-off. */
  const nextWaitMs = () => (outages === 0 ? pollIntervalMs : Math.min(outageBackoff.maxMs, outageBackoff.initialMs * 2 ** Math.min(outages - 1, 10)));

  async function run() {
    while (running) {
      woken = false;
      try {
        await drain();
      } catch (error) {
        if (isOutage(error)) {
          outages++;
          deps.logger?.debug?.({ err: error }, 'thumbnail worker: a dependency is down; waiting');
        } else {
          deps.logger?.error({ err: error }, 'thumbnail worker failed; retrying');
        }
      }
      if (!running || (woken && outages === 0)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, nextWaitMs());
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        }
        wakeUp = done;
      });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },

    async stop() {
      running = false;
      wakeUp?.();
      await loop;
      loop = null;
    },

    /** The projection queued work at this log position: run it once the projector has committed it. */
    notify(at: ThumbnailQueued) {
      void deps.projector.waitFor(MEDIA_THUMBNAILS_PROJECTION, at, 10_000).then(wake, wake);
    },

    /** Runs every job due now (tests and tools; no background loop needed). */
    async runDue(): Promise<number> {
      const was = running;
      running = true;
      try {
        return await drain();
      } finally {
        running = was;
      }
    },
  };
}
