import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from '../../infra/config/config.js';
import { createSqlEventStore, type SqlEventStore } from '../../infra/event-store/sql-event-store.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { DataDirLockedError, lockDataDir, openDatabases } from '../../gateways/compose/data-dir.js';
import { CliError } from './cli.js';

export type OpenedStore = {
  config: Config;
  store: SqlEventStore;
  /** One per shard; the first also holds the read models. */
  databases: SqlDatabase[];
  /** 'embedded' (PGlite under CHAT_DATA_DIR/db) or 'postgres' (DATABASE_URL). */
  mode: 'embedded' | 'postgres';
  close(): Promise<void>;
};

/**
 * Opens the event store the way the server does (loadConfig + openDatabases): PostgreSQL shards
 * from DATABASE_URL, else the embedded PGlite database under CHAT_DATA_DIR. The embedded database
 * belongs to one process: this refuses while a server (or another tool) holds CHAT_DATA_DIR, and
 * holds it itself until close().
 */
export async function openStoreLikeTheServer(tool: string): Promise<OpenedStore> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration error:\n${error.message}`);
    throw error;
  }
  const embedded = config.databaseUrls.length === 0;
  let unlock: (() => Promise<void>) | null = null;
  if (embedded) {
    if (!existsSync(join(config.dataDir, 'db'))) {
      throw new CliError(`no embedded database in ${config.dataDir} (set CHAT_DATA_DIR to the server's data directory, or DATABASE_URL for PostgreSQL)`);
    }
    try {
      unlock = await lockDataDir(config.dataDir);
    } catch (error) {
      if (error instanceof DataDirLockedError) {
        throw new CliError(
          `the embedded database in ${error.dataDir} is in use by process ${error.owner}: PGlite allows one process at a time. ` +
            `Stop the server first (or run ${tool} against PostgreSQL with DATABASE_URL).`,
        );
      }
      throw error;
    }
  }
  let databases: SqlDatabase[] = [];
  try {
    databases = await openDatabases(config);
    await assertEventStore(databases);
    const store = await createSqlEventStore({ shards: databases, ownsDatabases: false, migrate: false });
    let closing: Promise<void> | undefined;
    return {
      config,
      store,
      databases,
      mode: embedded ? 'embedded' : 'postgres',
      close() {
        closing ??= (async () => {
          await store.close();
          await Promise.allSettled(databases.map((db) => db.close()));
          await unlock?.();
        })();
        return closing;
      },
    };
  } catch (error) {
    await Promise.allSettled(databases.map((db) => db.close()));
    await unlock?.();
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot open the event store: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A tool reads; it never creates an event store in a database that has none (a wrong URL). */
async function assertEventStore(databases: SqlDatabase[]): Promise<void> {
  for (const [shard, db] of databases.entries()) {
    const { rows } = await db.query<{ found: string | null }>(`select to_regclass('events')::text as found`);
    if (rows[0]?.found == null) throw new CliError(`shard ${shard} has no event store (no "events" table): is DATABASE_URL / CHAT_DATA_DIR right?`);
  }
}
