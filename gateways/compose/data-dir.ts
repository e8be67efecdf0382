import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../infra/config/config.js';
import type { DependencyRegistry } from '../../domain/ports/health.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';

/**
 * Opening the configured databases and owning the embedded data directory: used by the server
 * (gateways/main.ts) and by the operator tools (scripts/), which import this small module rather
 * than the whole server.
 */

/**
 * The databases the configuration names: the embedded one on disk, or one PostgreSQL pool per
 * shard. With `health`, each PostgreSQL database registers as a dependency ("postgresql", or
 * "postgresql shard N" when there are several).
 */
export async function openDatabases(config: Pick<Config, 'dataDir' | 'databaseUrls'>, health?: DependencyRegistry): Promise<SqlDatabase[]> {
  if (config.databaseUrls.length === 0) {
    const dataDir = join(config.dataDir, 'db');
    await mkdir(dataDir, { recursive: true });
    return [await createPgliteDatabase({ dataDir })];
  }
  return config.databaseUrls.map((connectionString, shard) =>
    createPostgresDatabase({
      connectionString,
      max: 10,
      applicationName: `chat-backend-shard-${shard}`,
      dependencyName: config.databaseUrls.length === 1 ? 'postgresql' : `postgresql shard ${shard}`,
      ...(health !== undefined ? { health } : {}),
    }),
  );
}

/** The embedded data directory is held by another live process (a server, or an operator tool). */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly owner: number,
  ) {
    super(`${dataDir} is in use by process ${owner} (a server or an operator tool on the same CHAT_DATA_DIR)`);
  }
}

/**
 * One server per embedded data directory: two processes writing one PGlite directory would
 * corrupt it. The lock file holds the owner's pid; a lock left by a dead process is taken over.
 * Operator tools (scripts/replay.ts, scripts/projections.ts) take the same lock.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, 'server.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new DataDirLockedError(dataDir, owner);
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}
