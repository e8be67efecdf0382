import { createTestDatabases } from '../sql/test-databases.js';

/**
 * Throw-away PostgreSQL databases for tests (on TEST_POSTGRES_URL's server, else the local one):
 * the machine's server is shared with other runs, so each test creates databases with random
 * names and drops them afterwards.
 */
export async function createTempDatabases(prefix: string, count = 1): Promise<{ urls: string[]; names: string[]; drop: () => Promise<void> }> {
  const { urls, names, drop } = await createTestDatabases(count, { prefix });
  return { urls, names, drop };
}
