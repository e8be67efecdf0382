import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { ConversationCommands, Position } from '../../commands/conversations.js';
import type { Config } from '../../infra/config/config.js';
import type { UserRepository } from '../ports/users.js';
import type { DeviceRegistry } from '../ports/devices.js';
import type { DependencyHealth } from '../../domain/ports/health.js';
import { CONVERSATIONS_PROJECTION } from '../../projections/conversations/projection.js';
import type { ConversationQueries, MessageRef } from '../../projections/conversations/views.js';
import type { SearchQueries } from '../../projections/search/queries.js';
import type { LocalDiskObjectStore } from '../../infra/object-store/local-disk.js';
import type { MediaService } from '../media/service.js';
import type { AccessVerifier } from '../auth/access.js';
import type { AccountService } from './accounts.js';
import { isDomainError } from '../../domain/errors.js';
import { HttpError } from './errors.js';


/**
 * The read models' progress, as the projector role reports it (its checkpoints): resolves true once
 * `projection` has applied the shard's log up to `at.position`, false after `timeoutMs`.
 */
export interface ReadModelProgress {
  waitFor(projection: string, at: { shard: number; position: number }, timeoutMs: number): Promise<boolean>;
}

export type HttpSettings = Pick<
  Config,
  'maxMessageBytes' | 'rateLimitMax' | 'rateLimitWindowMs' | 'readYourWritesTimeoutMs' | 'authFailureLimitMax' | 'authRateLimitMax' | 'passwordMinLength' | 'trustedProxies'
>;

/** Everything the REST API needs, built by the composition root (gateways/compose/process.ts) or a test. */
export type AppDeps = {
  settings: HttpSettings;
  /**
   * Where the request rate limit and the failure budget count, shared by every API process that
   * uses the same Redis and prefix; absent: in this process's memory.
   */
  rateLimitStore?: { redis: Redis; prefix: string };
  logger: FastifyBaseLogger;
  /** Checks bearer tokens (signature, expiry, account, session). */
  access: AccessVerifier;
  /** Register, login, refresh, logout, password change. */
  accounts: AccountService;
  users: UserRepository;
  commands: ConversationCommands;
  queries: ConversationQueries;
  /** How far the read models are: requests that follow a write wait for it (read-your-writes). */
  projector: ReadModelProgress;
  /** Message search (projections/search). */
  search: SearchQueries;
  /** Media uploads and downloads; without it media messages are refused (media_not_supported). */
  media?: MediaService;
  /** The local-disk object store whose signed URLs this server serves (the embedded default); absent with S3. */
  mediaFiles?: LocalDiskObjectStore;
  /** Push devices: with it, /api/v1/devices registers and removes push tokens. */
  devices?: DeviceRegistry;
  /** The process's dependency states: GET /readyz reports them (without it every dependency counts as up). */
  health?: Pick<DependencyHealth, 'check'>;
};

/**
 * Read-your-writes: waits until the conversations read model has applied the caller's write, so
 * the caller's next read (history, inbox, status) shows it. On a timeout the write still stands
 * (it is in the store): reply anyway, and say so in the log.
 */
export type Settle = (position: Position | null, log: FastifyBaseLogger) => Promise<void>;

export function createReadYourWrites(deps: Pick<AppDeps, 'projector' | 'settings'>): Settle {
  return async function settle(position: Position | null, log: FastifyBaseLogger): Promise<void> {
    if (position === null) return;
    const timeoutMs = deps.settings.readYourWritesTimeoutMs;
    let caughtUp: boolean;
    try {
      caughtUp = await deps.projector.waitFor(CONVERSATIONS_PROJECTION, position, timeoutMs);
    } catch (error) {
      // The checkpoint could not be read (the database went down after the write): the write
      // stands all the same, so the caller gets its result, not an error that invites a retry.
      log.warn({ err: error, position }, 'read model not checked; replying before it may show this write');
      return;
    }
    if (!caughtUp) log.warn({ position, timeoutMs }, 'read model did not catch up in time; replying before it shows this write');
  };
}

/**
 * The message a route names by id, when the caller is a member of its conversation; else 404
 * message_not_found, the same answer for a message of someone else's conversation as for an
 * unknown id (nothing tells a stranger that the id exists).
 */
export function createMessageLookup(deps: Pick<AppDeps, 'queries' | 'commands'>) {
  return async function requireMessage(actor: string, messageId: string): Promise<MessageRef> {
    const unknown = () => new HttpError('message_not_found', `message_id: no message ${messageId}`);
    const ref = await deps.queries.messageRef(messageId);
    if (!ref) throw unknown();
    await deps.commands.access(actor, ref.conversation_id).catch((error: unknown) => {
      throw isDomainError(error, 'conversation_not_found') ? unknown() : error;
    });
    return ref;
  };
}

/** What each route plugin is registered with. */
export type RouteDeps = AppDeps & { settle: Settle; requireMessage: ReturnType<typeof createMessageLookup> };
