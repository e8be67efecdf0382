import type { Logger } from 'pino';
import type { SessionStatus, SessionStore } from '../ports/sessions.js';
import { CloseCode } from '../protocol/index.js';
import type { Connection } from './connection.js';

/**
 * Connections outlive the check of their Hello token: every `intervalMs` (SESSION_CHECK_INTERVAL_MS,
 * 10 s by default) the gateway asks the database, in batches of BATCH, whether the session of each
 * open connection still stands, and closes those whose session ended: revoked (logout, logout-all,
 * password change, refresh-token reuse), expired, or whose account's token version moved on:
 * UNAUTHENTICATED (4100, log in again); disabled or deleted account: FORBIDDEN (4103). So a
 * revocation reaches every gateway within one interval plus the time of the queries. A process
 * that ends sessions itself (ROLES=all) asks for a check at once (`now`). When the database cannot
 * be asked, connections stay open until the next check (each still ends at its token's expiry).
 */

export const SESSION_CHECK_BATCH = 500;

export interface SessionCheck {
  /** Checks every open connection now (concurrent calls share one run). */
  now(): Promise<void>;
  stop(): void;
}

function closeFor(status: SessionStatus): { code: CloseCode; reason: string } | null {
  switch (status) {
    case 'live':
      return null;
    case 'disabled':
      return { code: CloseCode.FORBIDDEN, reason: 'account_disabled' };
    case 'unknown':
    case 'revoked':
    case 'stale':
    case 'expired':
      return { code: CloseCode.UNAUTHENTICATED, reason: 'session_revoked' };
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}

export function startSessionCheck(deps: {
  connections: () => Iterable<Connection>;
  sessions: Pick<SessionStore, 'statuses'>;
  intervalMs: number;
  logger: Logger;
}): SessionCheck {
  let running: Promise<void> | null = null;
  let again = false;

  async function checkAll(): Promise<void> {
    const open = [...deps.connections()].filter((c) => c.state === 'open' && c.session !== undefined);
    for (let i = 0; i < open.length; i += SESSION_CHECK_BATCH) {
      const batch = open.slice(i, i + SESSION_CHECK_BATCH);
      const asked = batch.map((c) => c.session!);
      let statuses: SessionStatus[];
      try {
        statuses = await deps.sessions.statuses(asked);
      } catch (error) {
        deps.logger.warn({ err: error }, 'session check failed; connections stay open until the next one');
        return;
      }
      batch.forEach((c, j) => {
        const close = closeFor(statuses[j] ?? 'live');
        // A Reauthenticate meanwhile moved the connection to a newer token's reference: the answer is about the old one.
        if (close !== null && c.state === 'open' && c.session === asked[j]) c.closeWith(close.code, close.reason);
      });
    }
  }

  function now(): Promise<void> {
    if (running !== null) {
      // A check is under way: one more after it sees what changed meanwhile.
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await checkAll();
      } while (again);
    })().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = setInterval(() => void now(), deps.intervalMs);
  timer.unref();
  return { now, stop: () => clearInterval(timer) };
}
