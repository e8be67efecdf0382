import type { Row, SqlDatabase } from '../../domain/ports/sql.js';

/**
 * Forward stream reads of one shard, coalesced: at most `concurrency` queries are in flight; the
 * reads asked for meanwhile wait, and go out together as ONE statement when a query returns.
 *
 * Every command loads its stream's new events before it decides, and so does every delivery and
 * push worker on a cache miss: under load that is a round trip per message, and on loopback a
 * round trip costs each side a system call that runs the other side's TCP receive path (about as
 * much CPU as a small query). Like group commit for appends, this adds no wait when the shard is
 * quiet (a read goes out at once) and turns N waiting reads into one query when it is busy.
 */
export type StreamRead = { streamId: string; from: number; maxCount: number | null };

type Pending<R> = StreamRead & { resolve: (rows: R[]) => void; reject: (error: unknown) => void };

export class StreamReader<R extends Row & { version: number }> {
  private readonly queue: Pending<R>[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: SqlDatabase,
    /** The selected columns, of the events table aliased `e`. */
    private readonly columns: string,
    private readonly concurrency: number,
    /** Most streams in one statement. */
    private readonly maxBatch: number,
  ) {}

  read(request: StreamRead): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      this.queue.push({ ...request, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(batch: Pending<R>[]): Promise<void> {
    try {
      if (batch.length === 1) {
        const [one] = batch as [Pending<R>];
        const { rows } = await this.db.query<R>(
          `select ${this.columns} from events e where e.stream_id = $1 and e.version >= $2 order by e.version limit $3`,
          [one.streamId, one.from, one.maxCount],
        );
        one.resolve(rows);
        return;
      }
      // One lateral index scan per requested stream; rows come back tagged with the request's index.
      const { rows } = await this.db.query<R & { request: number }>(
        `select r.i::int as request, ${this.columns}
           from unnest($1::text[], $2::int[], $3::int[]) with ordinality as r(stream_id, from_version, max_count, i)
           cross join lateral (
             select * from events x
              where x.stream_id = r.stream_id and x.version >= r.from_version
              order by x.version limit r.max_count) e
          order by r.i, e.version`,
        [batch.map((b) => b.streamId), batch.map((b) => b.from), batch.map((b) => b.maxCount)],
      );
      const results: R[][] = batch.map(() => []);
      for (const row of rows) results[row.request - 1]!.push(row);
      batch.forEach((b, i) => {
        b.resolve(results[i]!);
      });
    } catch (error) {
      for (const b of batch) b.reject(error);
    }
  }
}
