import type { FastifyInstance } from 'fastify';
import type { SessionStore } from '../ports/sessions.js';
import { stopOn, type Running } from '../lib/role.js';
import { buildApp } from './app.js';
import type { AppDeps } from './deps.js';
import type { RealtimeRouteDeps } from './routes/realtime.js';

export type ApiRoleDeps = AppDeps & {
  /** The WebSocket routes' view of presence and the public WebSocket URL (/api/v1/realtime). */
  realtime: RealtimeRouteDeps;
  /** Sessions that ended more than a day ago are pruned from it once an hour. */
  sessions: Pick<SessionStore, 'prune'>;
  /** How long a stopping API waits for requests in flight before it cuts their connections (default 5 s). */
  drainMs?: number;
};

const PRUNE_EVERY_MS = 3_600_000;
const PRUNE_AFTER_MS = 86_400_000;

/**
 * The api role: the REST API (fastify): accounts, sessions and tokens, conversations and
 * messages (commands), history, inbox, search and media (read models), devices, health. Reads the
 * read models, users, sessions and the search index; writes commands, accounts and devices. The
 * caller listens (`app.listen`) once every role is up.
 */
export async function start(deps: ApiRoleDeps, signal: AbortSignal): Promise<{ app: FastifyInstance } & Running> {
  const { realtime, sessions, drainMs = 5_000, ...appDeps } = deps;
  const app = await buildApp(appDeps, realtime);
  const pruneTimer = setInterval(() => {
    sessions.prune(new Date(Date.now() - PRUNE_AFTER_MS)).catch((error: unknown) => appDeps.logger.warn({ err: error }, 'pruning ended sessions failed'));
  }, PRUNE_EVERY_MS);
  pruneTimer.unref();
  const stopped = stopOn(signal, async () => {
    clearInterval(pruneTimer);
    await closeHttp(app, drainMs);
  });
  return { app, stopped };
}

/**
 * Stops the REST API: no new connections, idle ones closed, requests in flight get `drainMs` to
 * finish; then their connections are cut (a stalled upload or a client that stopped reading a
 * download would otherwise hold the shutdown forever).
 */
async function closeHttp(app: FastifyInstance, drainMs: number): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), drainMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
