import { randomUUID } from 'node:crypto';
import { validation } from '../../domain/errors.js';
import type { Logger } from 'pino';
import type { ConversationCommands, Screening } from '../../commands/conversations.js';
import type { EventStore } from '../../domain/ports/event-store.js';
import { DependencyUnavailableError, isOutage } from '../../domain/ports/health.js';
import type { PresenceStore } from '../ports/presence.js';
import { hasFieldAtPath } from '../../infra/telemetry/frame-time.js';
import { noopMetrics, noopTracing } from '../../infra/telemetry/noop.js';
import type { FrameKind, Metrics, Tracing } from '../ports/telemetry.js';
import { MAX_CONTACTS, type ConversationQueries } from '../../projections/conversations/views.js';
import type { AccessVerifier, AuthUser } from '../auth/access.js';
import { AuthError } from '../auth/errors.js';
import type { SessionRef } from '../ports/sessions.js';
import type { MediaService } from '../media/service.js';
import type { ContentType as DomainContentType, MediaRef } from '../../domain/conversation/events.js';
import type { CapRefusal } from './connection-caps.js';
import { RefusalWindow } from './refusal-window.js';
import type { SyncBudget } from './sync-budget.js';
import {
  CloseCode,
  HEARTBEAT_INTERVAL_MS,
  MAX_FRAME_BYTES,
  MAX_QUEUED_SYNC_CURSORS,
  RATE_BURST,
  RATE_FLOOD_FRAMES,
  RATE_FLOOD_WINDOW_MS,
  RATE_PER_S,
  SYNC_EVENTS_PER_CURSOR,
  decodeClientFrame,
  encodeServerFrame,
  errorFrame,
  goodbyeFrame,
  contentTypeFromProto,
  isoToMs,
  mapError,
  negotiateProtocolVersion,
  unavailableError,
  UNAVAILABLE_RETRY_AFTER_MS,
  presenceFrame,
  presenceStatusFromProto,
  syncRequiredFrame,
  type ClientFrame,
  type ClientRequest,
  type ServerBody,
  type ServerFrame,
  type SyncRequiredReason,
} from '../protocol/index.js';
import { replayConversation } from './sync.js';

/** What a connection needs from its gateway node. */
export type ConnectionDeps = {
  nodeId: string;
  /** Checks Hello's token (gateways/auth/access.ts): signature, expiry, account, token version, session. */
  tokens: AccessVerifier;
  commands: Pick<ConversationCommands, 'sendMessage' | 'markWatermark' | 'access' | 'otherMembers' | 'screen'>;
  store: Pick<EventStore, 'readStream'>;
  queries: Pick<ConversationQueries, 'contacts'>;
  presence: PresenceStore;
  logger: Logger;
  /** Most bytes queued on a socket before the server drops it as a slow consumer. */
  maxBufferedBytes: number;
  /** Most live events held for one conversation during its sync before the connection is dropped. */
  maxHeldEvents: number;
  hub: Hub;
  clock: () => number;
  /** Frame counts and delivery latency (default: none). */
  metrics?: Metrics;
  /** Spans around command handling (default: none). */
  tracing?: Tracing;
  /** Request frames per connection (default: RATE_PER_S, RATE_BURST, RATE_FLOOD_FRAMES, RATE_FLOOD_WINDOW_MS of limits.ts). */
  rateLimit?: RateLimit;
  /** Sync cursors per user on this node (the gateway's one budget, shared by the user's connections). */
  syncBudget: SyncBudget;
  /** Accepted Hellos per user on this node (a reconnect loop would repeat each Welcome's queries); absent or null: no limit. */
  helloBudget?: SyncBudget | null;
  /** Checks the media a media message names (gateways/media); absent: media messages are refused. */
  media?: Pick<MediaService, 'attachable'>;
};

/** `floodFrames` refused frames within `floodWindowMs` (default RATE_FLOOD_WINDOW_MS) close the connection (4006). */
export type RateLimit = { perSecond: number; burst: number; floodFrames: number; floodWindowMs?: number };

/** The node's indexes over its authenticated connections (gateway.ts keeps them). */
export type Hub = {
  register(c: Connection): void;
  unregister(c: Connection): void;
  /** Indexes `c` under these users: it gets their presence changes. */
  addContacts(c: Connection, userIds: Iterable<string>): void;
  /** `c`'s token names `userId`: null when the user may have one more connection on this node, else the refusal. */
  authenticate(c: Connection, userId: string): CapRefusal | null;
  /**
   * `c` appended a message at `version` of a conversation: its user is a recipient, so a delivery
   * envelope for it is due here (the gateway watches its delivery feed with these).
   */
  sent?(c: Connection, conversationId: string, version: number): void;
};

/** The transport under a connection (a uWS socket in gateway.ts, anything in tests). */
export type Socket = {
  send(bytes: Uint8Array): 'ok' | 'backpressure' | 'dropped';
  bufferedAmount(): number;
  end(code: number, reason: string): void;
  /** Runs `sends` with this socket's writes held and sent together at its end (uWS cork); optional. */
  cork?(sends: () => void): void;
};

/** createdAtMs: the MessageSent's created_at, for the delivery latency metric (undefined: not measured). */
type Held = { version: number; frame: Uint8Array; createdAtMs: number | undefined }[];
type WatermarkQueue = { max: number; replies: number[]; running: boolean };

/**
 * Whether an encoded Event frame brings members into a conversation (frames.proto, events.proto:
 * ServerFrame.event = 8 → Event.conversation_created = 10 | Event.members_added = 11): then its
 * recipients have new contacts. Read from the bytes: most events are messages and receipts.
 */
const changesMembers = (frame: Uint8Array): boolean => hasFieldAtPath(frame, [8, 11]) || hasFieldAtPath(frame, [8, 10]);

/**
 * How a refused token is answered, at Hello and at Reauthenticate alike: a disabled account is
 * FORBIDDEN `account_disabled`; anything else UNAUTHENTICATED with the reason a client acts on
 * (`token_expired`: refresh it; `session_revoked`: log in again; `unauthenticated`).
 */
function tokenRefusal(field: string, error: unknown): { name: 'forbidden' | 'unauthenticated'; message: string; reason: string } {
  const failure = error === 'missing' ? 'missing' : error instanceof AuthError ? error.failure : 'invalid';
  switch (failure) {
    case 'disabled':
      return { name: 'forbidden', message: `${field}: this account is disabled`, reason: 'account_disabled' };
    case 'missing':
      return { name: 'unauthenticated', message: `${field}: missing`, reason: 'unauthenticated' };
    case 'expired':
      return { name: 'unauthenticated', message: `${field}: expired`, reason: 'token_expired' };
    case 'revoked':
      return { name: 'unauthenticated', message: `${field}: its session has ended`, reason: 'session_revoked' };
    default:
      return { name: 'unauthenticated', message: `${field}: invalid or expired`, reason: 'unauthenticated' };
  }
}

const PRESENCE_BEAT_MS = 15_000;
const PRE_AUTH_QUEUE = 64;

/**
 * One WebSocket connection: handshake, requests and replies, sync, live delivery, backpressure
 * (PROTOCOL.md). Every request with request_id > 0 gets exactly one reply; handlers never throw
 * out of here (errors become Error frames through mapError).
 */
export class Connection {
  readonly id = randomUUID();
  userId = '';
  deviceId = '';
  state: 'new' | 'authenticating' | 'open' | 'closed' = 'new';
  lastFrameAt: number;
  readonly openedAt: number;
  /** When the session's token expires (the gateway closes it then with 4004); a Reauthenticate moves it to the new token's. */
  expiresAt = Number.POSITIVE_INFINITY;
  /** The login session of Hello's token (or of the last accepted Reauthenticate's): the gateway re-checks it and closes the connection when it ends (session-check.ts). */
  session: SessionRef | undefined;
  /** The client address the gateway counted this connection under (connection-caps.ts); null: not counted. */
  countedAddress: string | null = null;
  /**
   * The users this connection's user shares a conversation with (from `queries.contacts` at
   * Welcome, then from live membership events): a plain list kept by the hub, which answers membership from its
   * own index (a Set per connection cost more than the rest of it). Conversations are not indexed
   * on the node: events and typing come addressed to users.
   */
  contacts: string[] = [];
  private lastBeat = 0;
  /** In the hub and connected in the presence store (undone once, on close). */
  private registered = false;
  /** Frames that came while the token was checked (created on first use: most connections never need these). */
  private preAuth: ArrayBuffer[] | undefined;
  /** Conversation → live events held while its replay runs. */
  private holding: Map<string, Held> | undefined;
  /** Conversation → highest version sent on this connection (drops duplicates and stale redeliveries). */
  private lastSent: Map<string, number> | undefined;
  private syncChain: Promise<void> = Promise.resolve();
  private watermarks: Map<string, WatermarkQueue> | undefined;
  /** Bound to this connection's id on first use (a child logger per idle connection costs memory). */
  private childLog: Logger | undefined;
  private readonly metrics: Metrics;
  private readonly tracing: Tracing;
  private readonly rate: RateLimit;
  /** Token bucket of request frames, and the refused ones over the flood window (created on the first refusal). */
  private allowance: number;
  private refilledAt: number;
  private refusals: RefusalWindow | undefined;
  /** Cursors of this connection's Hello and Syncs not replayed yet. */
  private queuedSyncCursors = 0;
  /** Reauthenticate frames taken, and the latest of them whose token the connection adopted. */
  private reauthAttempts = 0;
  private reauthApplied = 0;

  constructor(
    private readonly deps: ConnectionDeps,
    private readonly socket: Socket,
    private readonly queryToken: string,
  ) {
    this.openedAt = deps.clock();
    this.lastFrameAt = this.openedAt;
    this.metrics = deps.metrics ?? noopMetrics;
    this.tracing = deps.tracing ?? noopTracing;
    this.rate = deps.rateLimit ?? { perSecond: RATE_PER_S, burst: RATE_BURST, floodFrames: RATE_FLOOD_FRAMES };
    this.allowance = this.rate.burst;
    this.refilledAt = this.openedAt;
  }

  private get log(): Logger {
    this.childLog ??= this.deps.logger.child({ connection: this.id });
    return this.childLog;
  }

  /**
   * Takes one frame from the bucket. A frame over the limit is answered RATE_LIMITED and not
   * handled.
   */
  private admit(requestId: number): boolean {
    const now = this.deps.clock();
    this.allowance = Math.min(this.rate.burst, this.allowance + ((now - this.refilledAt) * this.rate.perSecond) / 1000);
    this.refilledAt = now;
    if (this.allowance >= 1) {
      this.allowance -= 1;
      return true;
    }
    const retryAfterMs = Math.ceil(((1 - this.allowance) * 1000) / this.rate.perSecond);
    this.refuse(requestId, `at most ${this.rate.perSecond} frames per second (bursts of ${this.rate.burst}); retry in ${retryAfterMs} ms`, retryAfterMs, 'rate_limited');
    return false;
  }

  /**
   * Answers a request RATE_LIMITED (not handled). Refusals are counted over a sliding window:
   * `floodFrames` of them within `floodWindowMs` close the connection (4006), even when frames in
   * between were admitted (a client that keeps sending over the limit is flooding).
   */
  private refuse(requestId: number, message: string, retryAfterMs: number, reason: string): void {
    const now = this.deps.clock();
    const windowMs = this.rate.floodWindowMs ?? RATE_FLOOD_WINDOW_MS;
    this.refusals ??= new RefusalWindow(windowMs, now);
    if (this.refusals.add(now) >= this.rate.floodFrames) {
      this.send(errorFrame(requestId, 'rate_limited', `${this.rate.floodFrames} requests refused within ${windowMs / 1000} s: flooding`));
      this.closeWith(CloseCode.RATE_LIMITED, 'rate_limited');
      return;
    }
    this.send(errorFrame(requestId, 'rate_limited', message, { retryAfterMs, reason }));
  }

  // ---- output ----

  /** Sends encoded frame bytes (the same bytes may go to many connections); `kind` is the frame's body case, for metrics. */
  sendRaw(bytes: Uint8Array, kind: FrameKind = 'raw'): boolean {
    return this.sendBytes(bytes, kind);
  }

  /** Never throws: a socket that cannot take more is dropped as a slow consumer (4003, reconnect). */
  private sendBytes(bytes: Uint8Array, kind: FrameKind): boolean {
    if (this.state === 'closed') return false;
    try {
      if (this.socket.bufferedAmount() > this.deps.maxBufferedBytes) {
        this.closeWith(CloseCode.SLOW_CONSUMER, 'slow_consumer');
        return false;
      }
      if (this.socket.send(bytes) === 'dropped') {
        this.closeWith(CloseCode.SLOW_CONSUMER, 'slow_consumer');
        return false;
      }
      this.metrics.messageOut(kind);
      return true;
    } catch (error) {
      this.log.warn({ err: error }, 'ws send failed');
      return false;
    }
  }

  /** Never throws. */
  send(frame: ServerFrame): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeServerFrame(frame);
    } catch (error) {
      this.log.error({ err: error, frame: frame.body.case }, 'ws: a server frame did not encode');
      return;
    }
    this.sendBytes(bytes, frame.body.case ?? 'unknown');
  }

  /** A reply to a request: acks are skipped for request_id 0 (errors, Welcome and Pong are not). */
  private reply(requestId: number, body: ServerBody): void {
    if (requestId === 0 && (body.case === 'ok' || body.case === 'sendAck')) return;
    this.send({ requestId, body });
  }

  private ok(requestId: number): void {
    this.reply(requestId, { case: 'ok', value: {} });
  }

  /** Goodbye, then close with `code` (PROTOCOL.md: Goodbye precedes every close the server initiates). */
  closeWith(code: CloseCode, reason: string, reconnectAfterMs = 0): void {
    if (this.state === 'closed') return;
    try {
      if (this.socket.send(encodeServerFrame(goodbyeFrame(code, reason, reconnectAfterMs))) !== 'dropped') this.metrics.messageOut('goodbye');
    } catch {
      // the socket may be gone already
    }
    this.state = 'closed';
    try {
      this.socket.end(code, reason);
    } catch {
      // already closed
    }
  }

  private fail(requestId: number, error: unknown): void {
    const mapped = error instanceof DependencyUnavailableError ? unavailableError(requestId, error.dependency) : mapError(requestId, error);
    if (mapped.internal) this.log.error({ err: error, requestId }, 'ws request failed');
    this.send(mapped.frame);
    if (mapped.close !== null) this.closeWith(mapped.close, mapped.frame.body.case === 'error' ? mapped.frame.body.value.reason : 'error');
  }

  // ---- live delivery (from the node's hub) ----

  /** Runs `sends` (several deliver calls) so that their frames leave in one write where the socket can. */
  together(sends: () => void): void {
    if (this.socket.cork === undefined) sends();
    else this.socket.cork(sends);
  }

  /**
   * An Event frame for this connection's user, from a delivery envelope. `createdAtMs` (a
   * MessageSent's created_at) makes the send count toward the delivery latency metric.
   */
  deliver(conversationId: string, version: number, frame: Uint8Array, createdAtMs?: number): void {
    if (this.state !== 'open') return;
    if (changesMembers(frame)) this.learnContacts(conversationId);
    const held = this.holding?.get(conversationId);
    if (held !== undefined) {
      if (held.length >= this.deps.maxHeldEvents) {
        this.closeWith(CloseCode.SLOW_CONSUMER, 'sync_backlog');
        return;
      }
      held.push({ version, frame, createdAtMs });
      return;
    }
    if (version <= (this.lastSent?.get(conversationId) ?? 0)) return;
    (this.lastSent ??= new Map()).set(conversationId, version);
    this.sendLive(frame, createdAtMs);
  }

  private sendLive(frame: Uint8Array, createdAtMs: number | undefined): void {
    if (this.sendBytes(frame, 'event') && createdAtMs !== undefined) this.metrics.deliveryLatency(this.deps.clock() - createdAtMs);
  }

  /** Members joined a conversation of this user (or the user joined one): learn them as contacts. */
  private learnContacts(conversationId: string): void {
    this.deps.commands
      .otherMembers(this.userId, conversationId)
      .then((others) => this.deps.hub.addContacts(this, others))
      .catch(() => {
        // not a member (any more): nothing to learn
      });
  }

  // ---- input ----

  /** One WebSocket message. Never throws. */
  onMessage(message: ArrayBuffer, isBinary: boolean): void {
    try {
      if (this.state === 'closed') return;
      this.lastFrameAt = this.deps.clock();
      if (!isBinary) {
        this.metrics.messageIn('invalid');
        this.send(errorFrame(0, 'malformed_frame', 'a frame must be a binary message (text messages are not part of the protocol)'));
        this.closeWith(CloseCode.PROTOCOL_ERROR, 'malformed_frame');
        return;
      }
      if (this.state === 'authenticating') {
        this.preAuth ??= [];
        if (this.preAuth.length >= PRE_AUTH_QUEUE) {
          this.send(errorFrame(0, 'rate_limited', 'too many frames before Welcome'));
          this.closeWith(CloseCode.RATE_LIMITED, 'rate_limited');
          return;
        }
        this.preAuth.push(message.slice(0));
        return;
      }
      this.handleBytes(new Uint8Array(message));
    } catch (error) {
      this.fail(0, error);
    }
  }

  private handleBytes(bytes: Uint8Array): void {
    const decoded = decodeClientFrame(bytes);
    this.metrics.messageIn(decoded.ok ? (decoded.frame.body.case ?? 'unknown') : 'invalid');
    if (!decoded.ok) {
      const { code, message, requestId, field } = decoded.error;
      const preAuth = this.state === 'new';
      if (preAuth && code !== 'frame_too_large' && !(code === 'validation' && field?.startsWith('hello'))) {
        // Before Hello, only a Hello (or a too-large frame, not decoded) is answered without closing.
        const name = code === 'malformed_frame' ? 'malformed_frame' : 'not_authenticated';
        this.send(errorFrame(requestId, name, name === 'malformed_frame' ? message : 'the first frame must be Hello'));
        this.closeWith(CloseCode.PROTOCOL_ERROR, name);
        return;
      }
      this.send(errorFrame(requestId, code, message, field === undefined ? {} : { field }));
      if (code === 'malformed_frame') this.closeWith(CloseCode.PROTOCOL_ERROR, 'malformed_frame');
      return;
    }
    this.handleFrame(decoded.frame);
  }

  private handleFrame(frame: ClientFrame): void {
    const { requestId, body } = frame;
    if (this.state === 'new') {
      if (body.case !== 'hello') {
        this.send(errorFrame(requestId, 'not_authenticated', 'the first frame must be Hello'));
        this.closeWith(CloseCode.PROTOCOL_ERROR, 'not_authenticated');
        return;
      }
      this.state = 'authenticating';
      void this.hello(requestId, body.value);
      return;
    }
    if (!this.admit(requestId)) return;
    this.maybeBeat();
    const run = (work: Promise<void>) =>
      work.catch((error: unknown) => {
        try {
          this.fail(requestId, error);
        } catch (failure) {
          this.log.error({ err: failure }, 'ws: could not report a failure');
        }
      });
    switch (body.case) {
      case 'hello':
        this.send(errorFrame(requestId, 'illegal_state', 'already authenticated on this connection', { reason: 'already_authenticated' }));
        return;
      case 'sendMessage':
        void run(this.tracing.span('ws.send_message', { 'chat.conversation_id': body.value.conversationId }, () => this.sendMessage(requestId, body.value)));
        return;
      case 'ackDelivered':
        this.watermark(requestId, 'delivered', body.value.conversationId, body.value.upToVersion);
        return;
      case 'markRead':
        this.watermark(requestId, 'read', body.value.conversationId, body.value.upToVersion);
        return;
      case 'typing':
        void run(this.typing(requestId, body.value));
        return;
      case 'setPresence':
        void run(this.setPresence(requestId, body.value));
        return;
      case 'ping':
        void run(this.ping(requestId, body.value));
        return;
      case 'sync':
        if (!this.admitSync(requestId, body.value.cursors.length)) return;
        void run(this.sync(requestId, body.value.cursors));
        return;
      case 'reauthenticate':
        void run(this.reauthenticate(requestId, body.value.token));
        return;
      default:
        body satisfies never; // every case is handled above
        return;
    }
  }

  // ---- handshake ----

  private async hello(requestId: number, hello: ClientRequest<'hello'>): Promise<void> {
    try {
      const token = hello.token.length > 0 ? hello.token : this.queryToken;
      let user: AuthUser;
      try {
        if (token.length === 0) throw new AuthError('missing', 'no token');
        user = await this.deps.tokens.verify(token);
      } catch (error) {
        if (isOutage(error) || (error instanceof AuthError && error.failure === 'unavailable')) {
          // The token could not be checked (its store is down): not the client's fault, so a
          // close in the reconnect range, never the terminal UNAUTHENTICATED.
          this.send(unavailableError(requestId, error instanceof DependencyUnavailableError ? error.dependency : 'a dependency').frame);
          this.closeWith(CloseCode.INTERNAL, 'dependency_unavailable', UNAVAILABLE_RETRY_AFTER_MS);
          return;
        }
        this.refuseHello(requestId, token.length === 0, error);
        return;
      }
      const version = negotiateProtocolVersion(hello.protocolVersion);
      if (version === null) {
        this.send(errorFrame(requestId, 'unsupported_version', `hello.protocol_version: ${hello.protocolVersion} is not supported`));
        this.closeWith(CloseCode.UNSUPPORTED_VERSION, 'unsupported_version');
        return;
      }
      if (this.state !== 'authenticating') return; // closed meanwhile
      const handshake = this.deps.helloBudget?.take(user.userId, 1);
      if (handshake !== undefined && !handshake.ok) {
        // A reconnect loop: each Welcome would cost a contacts query and a presence snapshot.
        this.closeWith(CloseCode.TOO_MANY_CONNECTIONS, 'too_many_handshakes', handshake.retryAfterMs);
        return;
      }
      const refused = this.deps.hub.authenticate(this, user.userId);
      if (refused !== null) {
        // Refused at the door: no Error (a client that got one would take its Hello for broken), a Goodbye to reconnect later.
        this.closeWith(CloseCode.TOO_MANY_CONNECTIONS, refused.reason, refused.reconnectAfterMs);
        return;
      }
      // Counted under the user from here on: the gateway releases it by userId when the socket closes.
      this.userId = user.userId;
      this.deviceId = hello.deviceId;
      this.expiresAt = user.expiresAtMs ?? Number.POSITIVE_INFINITY;
      this.session = user.session;
      try {
        await this.deps.presence.connect(this.userId, this.id, this.deps.nodeId);
      } catch (error) {
        // The presence store is down: serve the connection anyway. Its first heartbeat finds it
        // unknown and registers it (or the node does, for all its connections, when the store is
        // back), then tells it to sync what was routed elsewhere meanwhile.
        if (!isOutage(error)) throw error;
        this.log.debug({ err: error }, 'presence store down at Hello; registering later');
      }
      this.lastBeat = this.deps.clock();
      if ((this.state as string) === 'closed') {
        await this.deps.presence.disconnect(this.userId, this.id);
        return;
      }
      // The cursors cost Sync budget like a Sync's: while the user's is spent they are deferred
      // (the client sends them in a Sync after retry_after_ms); the session opens either way.
      const admitted = hello.cursors.length === 0 ? ({ ok: true } as const) : this.deps.syncBudget.take(this.userId, hello.cursors.length);
      const cursors = admitted.ok ? hello.cursors : [];
      // Hold the cursors' conversations before going live, so the seam has no gap.
      for (const c of cursors) (this.holding ??= new Map()).set(c.conversationId, []);
      this.state = 'open';
      this.registered = true;
      this.deps.hub.register(this);
      this.send({
        requestId,
        body: {
          case: 'welcome',
          value: {
            userId: this.userId,
            protocolVersion: version,
            sessionId: this.id,
            heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
            serverTimeMs: this.deps.clock(),
            maxFrameBytes: MAX_FRAME_BYTES,
          },
        },
      });
      if (!admitted.ok) {
        this.send(
          errorFrame(0, 'rate_limited', `hello.cursors: not replayed, this user's Sync budget is spent; send them in a Sync in ${admitted.retryAfterMs} ms`, {
            field: 'hello.cursors',
            reason: 'sync_deferred',
            retryAfterMs: admitted.retryAfterMs,
          }),
        );
      }
      if (cursors.length > 0) this.queuedSyncCursors += cursors.length;
      // Frames that arrived while the token was checked, in order.
      const queued = this.preAuth ?? [];
      this.preAuth = undefined;
      for (const frame of queued) this.handleBytes(new Uint8Array(frame));
      // Neither of these may keep the cursors from being replayed (their conversations are held).
      await this.loadContacts().catch((error: unknown) => this.contactsLater(error, 1));
      if (cursors.length > 0) {
        const failed = await this.enqueueSync(cursors, false);
        // No request to answer with an error: ask the client for a Sync of what could not be
        // replayed (the store was down), which it retries until it works.
        if (failed.length > 0) this.send(syncRequiredFrame('sync_failed', UNAVAILABLE_RETRY_AFTER_MS, failed));
      }
      await this.presenceSnapshot();
    } catch (error) {
      if (this.state === 'authenticating') {
        this.log.error({ err: error }, 'hello failed');
        this.send(errorFrame(requestId, 'internal', 'internal server error'));
        this.closeWith(CloseCode.INTERNAL, 'internal');
      } else if (isOutage(error)) {
        this.log.debug({ err: error }, 'post-welcome set-up failed: a dependency is down');
      } else {
        this.log.warn({ err: error }, 'post-welcome set-up failed');
      }
    }
  }

  /**
   * Hello's token was refused: a disabled account is FORBIDDEN (4103), anything else
   * UNAUTHENTICATED (4100; reason `token_expired` for an expired token, which a client refreshes).
   * (A check that could not be made, its database down, is no refusal: hello() closes with 4002.)
   */
  private refuseHello(requestId: number, missing: boolean, error: unknown): void {
    const refusal = tokenRefusal('hello.token', missing ? 'missing' : error);
    this.send(errorFrame(requestId, refusal.name, refusal.message, { reason: refusal.reason }));
    if (refusal.name === 'forbidden') this.closeWith(CloseCode.FORBIDDEN, 'account_disabled');
    else this.closeWith(CloseCode.UNAUTHENTICATED, 'unauthenticated');
  }

  /**
   * Reauthenticate (PROTOCOL.md, "Renewing the token"): a fresh token for this open connection,
   * checked like Hello's, that must name the same user and the same login session. Accepted: the
   * connection lasts until the new token's expiry, and the session check follows the new token's
   * session reference (its token version may have moved on: a password change answers a new token
   * for the current session). Refused: an Error like Hello's (or FORBIDDEN `user_mismatch` /
   * `session_mismatch`), and the connection stays as it was: its old expiry still ends it (4004),
   * and the session check still closes it if its own session has ended. A refusal never closes
   * the connection: the token it was opened with has not become any less valid.
   */
  private async reauthenticate(requestId: number, token: string): Promise<void> {
    const attempt = ++this.reauthAttempts;
    let user: AuthUser;
    try {
      user = await this.deps.tokens.verify(token);
    } catch (error) {
      if (isOutage(error) || (error instanceof AuthError && error.failure === 'unavailable')) {
        this.send(unavailableError(requestId, error instanceof DependencyUnavailableError ? error.dependency : 'a dependency').frame);
        return;
      }
      const refusal = tokenRefusal('reauthenticate.token', error);
      this.send(errorFrame(requestId, refusal.name, refusal.message, { reason: refusal.reason }));
      return;
    }
    if (user.userId !== this.userId) {
      this.send(errorFrame(requestId, 'forbidden', 'reauthenticate.token: a token of another user; a connection keeps its user', { reason: 'user_mismatch' }));
      return;
    }
    if (this.session !== undefined && user.session !== undefined && user.session.sessionId !== this.session.sessionId) {
      this.send(errorFrame(requestId, 'forbidden', 'reauthenticate.token: a token of another login session; a connection keeps its session (reconnect with it instead)', { reason: 'session_mismatch' }));
      return;
    }
    if (this.state !== 'open') return;
    // Two renewals in flight: the one sent last wins, whichever check ends first.
    if (attempt > this.reauthApplied) {
      this.reauthApplied = attempt;
      this.expiresAt = user.expiresAtMs ?? Number.POSITIVE_INFINITY;
      this.session = user.session;
    }
    this.ok(requestId);
  }

  private async loadContacts(): Promise<void> {
    this.deps.hub.addContacts(this, await this.deps.queries.contacts(this.userId, { limit: MAX_CONTACTS }));
  }

  /** The contacts could not be read (the database is down): try again later, backing off (1 s doubling up to 30 s), while the connection lasts. */
  private contactsLater(error: unknown, attempt: number): void {
    if (isOutage(error)) this.log.debug({ err: error, attempt }, 'contacts not loaded: a dependency is down; retrying');
    else this.log.warn({ err: error, attempt }, 'contacts not loaded; retrying');
    const timer = setTimeout(() => {
      if (this.state !== 'open') return;
      this.loadContacts().then(
        () => this.presenceSnapshot().catch(() => {}),
        (again: unknown) => this.contactsLater(again, attempt + 1),
      );
    }, Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5)));
    timer.unref?.();
  }

  private async presenceSnapshot(): Promise<void> {
    if (this.contacts.length === 0 || this.state !== 'open') return;
    const presences = await this.deps.presence.get(this.contacts.slice());
    for (const p of presences) if (p.status !== 'offline') this.send(presenceFrame(p));
  }

  // ---- sync ----

  /**
   * Whether a Sync of `cursors` cursors is taken (then counted as queued): at most
   * MAX_QUEUED_SYNC_CURSORS wait per connection, and the user's Sync budget must not be spent.
   * Refused: RATE_LIMITED with retry_after_ms, nothing replayed.
   */
  private admitSync(requestId: number, cursors: number): boolean {
    const rate = this.deps.syncBudget.rate;
    if (this.queuedSyncCursors + cursors > MAX_QUEUED_SYNC_CURSORS) {
      const retryAfterMs = Math.max(100, Math.ceil((this.queuedSyncCursors * 1000) / rate.perSecond));
      this.refuse(requestId, `sync.cursors: ${this.queuedSyncCursors} cursors of this connection still wait for their replay; retry in ${retryAfterMs} ms`, retryAfterMs, 'sync_backlog');
      return false;
    }
    const admitted = this.deps.syncBudget.take(this.userId, cursors);
    if (!admitted.ok) {
      this.refuse(
        requestId,
        `sync.cursors: at most ${rate.perSecond} cursors per second (bursts of ${rate.burst}); retry in ${admitted.retryAfterMs} ms`,
        admitted.retryAfterMs,
        'sync_rate_limited',
      );
      return false;
    }
    this.queuedSyncCursors += cursors;
    return true;
  }

  /**
   * Replays the cursors in order (after the syncs queued before), after one screening of them
   * all: a conversation the user was never a member of (or that does not exist) is answered
   * SyncDone access_ended at the cursor without reading its stream; the others are replayed from
   * the store. A conversation whose replay fails is given back to live delivery and the others
   * still run; resolves with the ids of those that failed (syncOne logs each failure).
   */
  private enqueueSync(cursors: { conversationId: string; lastVersion: number }[], startHolding: boolean): Promise<string[]> {
    if (startHolding) {
      const holding = (this.holding ??= new Map());
      for (const c of cursors) if (!holding.has(c.conversationId)) holding.set(c.conversationId, []);
    }
    let left = cursors.length;
    const work = this.syncChain
      .then(async () => {
        const failed: string[] = [];
        if (this.state !== 'open') return failed;
        let screened: Map<string, Screening>;
        try {
          screened = await this.deps.commands.screen(
            this.userId,
            cursors.map((c) => c.conversationId),
          );
        } catch (error) {
          if (isOutage(error)) this.log.debug({ err: error }, 'sync screening failed: a dependency is down');
          else this.log.error({ err: error }, 'sync screening failed');
          for (const c of cursors) this.releaseHold(c.conversationId);
          return cursors.map((c) => c.conversationId);
        }
        for (const cursor of cursors) {
          if (this.state !== 'open') break;
          const verdict = screened.get(cursor.conversationId);
          try {
            if (verdict === 'unknown' || verdict === 'stranger') this.syncEnded(cursor.conversationId, cursor.lastVersion);
            else await this.syncOne(cursor.conversationId, cursor.lastVersion);
          } catch {
            failed.push(cursor.conversationId);
          }
          left--;
          this.queuedSyncCursors--;
        }
        // Closed meanwhile: nothing to hold for any more.
        if (this.state !== 'open') for (const c of cursors) this.holding?.delete(c.conversationId);
        return failed;
      })
      .finally(() => {
        this.queuedSyncCursors -= left;
      });
    this.syncChain = work.then(
      () => {},
      () => {},
    );
    return work;
  }

  /** SyncDone access_ended for a conversation the user was never in: what a replay would answer, without one. */
  private syncEnded(conversationId: string, after: number): void {
    this.holding?.delete(conversationId);
    this.send({ requestId: 0, body: { case: 'syncDone', value: { conversationId, version: after, accessEnded: true } } });
    const lastSent = (this.lastSent ??= new Map());
    lastSent.set(conversationId, Math.max(lastSent.get(conversationId) ?? 0, after));
  }

  /** Gives a held conversation back to live delivery (its sync failed); the client's gap check will ask again. */
  private releaseHold(conversationId: string): void {
    const held = this.holding?.get(conversationId) ?? [];
    this.holding?.delete(conversationId);
    for (const h of held.sort((a, b) => a.version - b.version)) this.deliver(conversationId, h.version, h.frame, h.createdAtMs);
  }

  private async syncOne(conversationId: string, after: number): Promise<void> {
    const holding = (this.holding ??= new Map());
    if (!holding.has(conversationId)) holding.set(conversationId, []);
    let sent = this.lastSent?.get(conversationId) ?? 0;
    try {
      const result = await replayConversation(this.deps.store, conversationId, this.userId, after, (version, frame) => {
        sent = Math.max(sent, version);
        this.sendBytes(frame, 'event');
      });
      // A replay reads its conversation from the start: a long one costs more than one cursor.
      this.deps.syncBudget.charge(this.userId, Math.floor(result.eventsRead / SYNC_EVENTS_PER_CURSOR));
      const held = this.holding?.get(conversationId) ?? [];
      this.holding?.delete(conversationId);
      this.send({ requestId: 0, body: { case: 'syncDone', value: { conversationId, version: result.version, accessEnded: result.accessEnded } } });
      sent = Math.max(sent, result.version);
      if (!result.accessEnded) {
        held.sort((a, b) => a.version - b.version);
        for (const h of held) {
          if (h.version <= sent) continue;
          sent = h.version;
          this.sendLive(h.frame, h.createdAtMs);
        }
      }
      (this.lastSent ??= new Map()).set(conversationId, sent);
    } catch (error) {
      // Give the conversation back to live delivery; the client asks again (its Sync got an
      // error; a Hello's replay is followed by SyncRequired for it).
      if (isOutage(error)) this.log.debug({ err: error, conversationId }, 'sync failed: a dependency is down');
      else this.log.error({ err: error, conversationId }, 'sync failed');
      this.releaseHold(conversationId);
      throw error;
    }
  }

  private async sync(requestId: number, cursors: { conversationId: string; lastVersion: number }[]): Promise<void> {
    const failed = await this.enqueueSync(cursors, true);
    if (failed.length > 0) {
      // Retryable (the client sends the Sync again): an outage, or a failure this node logged.
      this.send(unavailableError(requestId, 'the event store').frame);
      return;
    }
    this.ok(requestId);
  }

  // ---- requests ----

  private maybeBeat(): void {
    const now = this.deps.clock();
    if (now - this.lastBeat < PRESENCE_BEAT_MS) return;
    this.lastBeat = now;
    void this.beat();
  }

  private async beat(): Promise<void> {
    try {
      const known = await this.deps.presence.heartbeat(this.userId, this.id);
      if (!known && this.state === 'open') {
        // Unknown to the presence store: never registered (it was down at Hello), or expired
        // (this node stalled past the presence TTL, the store lost it). Deliveries were routed
        // elsewhere meanwhile: register again, then have the client sync.
        await this.deps.presence.connect(this.userId, this.id, this.deps.nodeId);
        this.syncRequired('presence_lost', 0);
      }
    } catch (error) {
      if (isOutage(error)) this.log.debug({ err: error }, 'presence heartbeat failed: the store is down');
      else this.log.warn({ err: error }, 'presence heartbeat failed');
    }
  }

  /** Registers this open connection in the presence store again (after the store lost its entries). */
  async register(): Promise<void> {
    if (this.state !== 'open' || !this.registered) return;
    await this.deps.presence.connect(this.userId, this.id, this.deps.nodeId);
    this.lastBeat = this.deps.clock();
  }

  /** Tells the client that deliveries may have been lost: it syncs from its cursors (spread over `withinMs`). */
  syncRequired(reason: SyncRequiredReason, withinMs: number): void {
    if (this.state !== 'open') return;
    this.send(syncRequiredFrame(reason, withinMs));
  }

  private async ping(requestId: number, ping: ClientRequest<'ping'>): Promise<void> {
    this.lastBeat = this.deps.clock();
    await this.beat();
    this.reply(requestId, { case: 'pong', value: { clientTimeMs: ping.clientTimeMs, serverTimeMs: this.deps.clock() } });
  }

  private async sendMessage(requestId: number, m: ClientRequest<'sendMessage'>): Promise<void> {
    const contentType = contentTypeFromProto(m.contentType);
    if (contentType === undefined) throw validation('invalid_content_type', 'send_message.content_type: unknown content type', { field: 'send_message.content_type' });
    let media: MediaRef | null = null;
    if (contentType === 'text') {
      if (m.mediaId !== undefined) throw validation('unexpected_media', 'send_message.media_id: a text message carries no media; send content_type IMAGE, VIDEO or FILE', { field: 'send_message.media_id' });
    } else {
      if (this.deps.media === undefined) {
        throw validation('media_not_supported', 'send_message.content_type: this server does not take media messages', { field: 'send_message.content_type' });
      }
      if (m.mediaId === undefined) {
        throw validation('media_required', `send_message.media_id: required for a ${contentType} message; announce the upload with POST /api/v1/media`, { field: 'send_message.media_id' });
      }
      // Membership first (not found / forbidden), so a stranger learns nothing about the media.
      await this.deps.commands.access(this.userId, m.conversationId);
      media = await this.deps.media.attachable(this.userId, m.conversationId, contentType, m.mediaId);
    }
    const sent = await this.deps.commands.sendMessage(this.userId, m.conversationId, {
      content: m.content,
      content_type: contentType satisfies DomainContentType,
      media,
      client_message_id: m.clientMessageId,
    });
    if (sent.created) this.deps.hub.sent?.(this, m.conversationId, sent.message.sequence_number);
    this.reply(requestId, {
      case: 'sendAck',
      value: {
        conversationId: m.conversationId,
        messageId: sent.message.message_id,
        sequenceNumber: sent.message.sequence_number,
        createdAtMs: isoToMs(sent.message.created_at),
        duplicate: !sent.created,
      },
    });
  }

  /** At most one watermark command in flight per conversation and kind; later acks coalesce to their max. */
  private watermark(requestId: number, kind: 'delivered' | 'read', conversationId: string, upTo: number): void {
    const key = `${kind}\u0000${conversationId}`;
    const watermarks = (this.watermarks ??= new Map());
    let q = watermarks.get(key);
    if (q === undefined) watermarks.set(key, (q = { max: 0, replies: [], running: false }));
    q.max = Math.max(q.max, upTo);
    q.replies.push(requestId);
    if (q.running) return;
    q.running = true;
    const queue = q;
    void (async () => {
      while (queue.replies.length > 0) {
        const replies = queue.replies.splice(0);
        const max = queue.max;
        queue.max = 0;
        try {
          await this.deps.commands.markWatermark(this.userId, conversationId, { kind, device_id: this.deviceId, up_to_version: max });
          for (const r of replies) this.ok(r);
        } catch (error) {
          for (const r of replies) this.fail(r, error);
        }
      }
      queue.running = false;
      watermarks.delete(key);
    })().catch((error: unknown) => this.log.error({ err: error }, 'ws: watermark loop failed'));
  }

  private async typing(requestId: number, t: ClientRequest<'typing'>): Promise<void> {
    const recipients = await this.deps.commands.otherMembers(this.userId, t.conversationId);
    await this.deps.presence.typing(this.userId, t.conversationId, t.isTyping, recipients);
    this.ok(requestId);
  }

  private async setPresence(requestId: number, p: ClientRequest<'setPresence'>): Promise<void> {
    const status = presenceStatusFromProto(p.status);
    if (status === undefined) throw new Error('unreachable: status validated by the codec');
    await this.deps.presence.setStatus(this.userId, status);
    this.ok(requestId);
  }

  // ---- lifecycle ----

  /** The socket closed (either side). */
  onClose(): void {
    this.state = 'closed';
    this.holding = undefined;
    if (this.registered) {
      this.registered = false;
      this.deps.hub.unregister(this);
      this.deps.presence.disconnect(this.userId, this.id).catch((error: unknown) => {
        if (isOutage(error)) this.log.debug({ err: error }, 'presence disconnect failed: the store is down');
        else this.log.warn({ err: error }, 'presence disconnect failed');
      });
    }
  }
}
