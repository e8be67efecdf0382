import {
  ContentType,
  ErrorCode,
  PROTOCOL_VERSION,
  MAX_CURSORS,
  HEARTBEAT_INTERVAL_MS,
  HANDSHAKE_TIMEOUT_MS,
  TYPING_THROTTLE_MS,
  CloseCode,
  closeCodeKind,
  decodeServerFrame,
  encodeClientFrame,
  errorNameOf,
  fromEventFrame,
  fromPresenceEvent,
  presenceStatusToProto,
  type ClientBody,
  type EventFrame,
  type PresenceStatusName,
  type ReceivedEvent,
  type ServerFrame,
  type ServerMessage,
} from '../protocol/index.js';
import { backoffDelay } from './backoff.js';
import { memoryCursorStore, type CursorStore } from './cursor-store.js';
import { Emitter } from './emitter.js';
import { ConversationCursors } from './ordering.js';
import { createTokenKeeper, LoginRefused, type SessionTokens } from './credentials.js';
import { ChatHttpError, restClient, type FetchLike } from './rest.js';

/**
 * The chat client SDK (PROTOCOL.md from the client's side), for browsers and Node.js.
 *
 * - finds the WebSocket endpoint with `GET /api/v1/realtime`, connects, sends Hello with its cursors;
 * - keeps its access token fresh (credentials.ts): while connected, renews it in band before it
 *   expires (a refresh over REST, then Reauthenticate on the open connection: no reconnect);
 *   refreshes it before a connection when it is about to expire and after a close 4004, logging in
 *   again with username and password when it has them and the refresh token is refused;
 * - reconnects with exponential back-off and jitter after reconnect-range closes, stops on terminal ones;
 * - `send()` retries under the same client_message_id (across reconnects) until a SendAck comes;
 * - emits each conversation's events in version order, once: duplicates are dropped and real gaps
 *   (Event.previous_version above the cursor) are filled with a Sync from the cursor;
 * - sends its Syncs one at a time, merging what waits into one frame (at most MAX_CURSORS), and
 *   paces them as the server asks: a Sync answered with a retryable error (RATE_LIMITED, a
 *   dependency down) is sent again after retry_after_ms (or a back-off), and Hello cursors the
 *   server deferred (`sync_deferred`) follow in a Sync;
 * - coalesces delivery / read acks, throttles typing, sends heartbeats;
 * - notices a quiet feed (PROTOCOL.md, "Noticing a quiet feed"): a Ping answered by no frame in
 *   time drops the connection; an acknowledged send whose Event does not come, and the server's
 *   SyncRequired, sync in place.
 */

/** The part of the WebSocket API the client uses (the browser's WebSocket and the `ws` package both fit). */
export type WebSocketLike = {
  binaryType: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string | { toString(): string } }> | null;
  onerror: Handler<unknown> | null;
};
// Method syntax makes the parameter bivariant, so handlers typed for richer event objects fit.
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * `{token}`: an access token (it cannot be renewed: after it expires the client stops);
 * `{token, refreshToken}`: also the session's refresh token (from register / login), renewed as needed;
 * `{username, password}`: the client logs in itself, and again when its session ends.
 */
export type Credentials = { token: string; refreshToken?: string } | { username: string; password: string };

export type ChatClientOptions = Credentials & {
  /** The REST base URL, as `npm start` prints it (http://127.0.0.1:3000). */
  baseUrl: string;
  /** Stable per installation (1..64 characters): delivery and read watermarks are per device. */
  deviceId: string;
  /** Default: globalThis.WebSocket (browsers, Node.js 22+); pass `ws`'s WebSocket on Node.js 20. */
  WebSocket?: WebSocketConstructor;
  /** Default: globalThis.fetch. */
  fetch?: FetchLike;
  /** Where the last version seen per conversation is kept (default: in memory). */
  cursorStore?: CursorStore;
  reconnect?: { minMs?: number; maxMs?: number };
  /** How long a request waits for its reply (default 10 s). */
  requestTimeoutMs?: number;
  /** Ping interval (default: Welcome.heartbeat_interval_ms, i.e. 30 s). */
  heartbeatIntervalMs?: number;
  /**
   * How long after a Ping the connection may stay silent (no Pong, and no other frame either)
   * before it counts as dead: the socket is closed and the client reconnects with its cursors
   * (default 10 s; PROTOCOL.md, "Noticing a quiet feed").
   */
  heartbeatTimeoutMs?: number;
  /**
   * How long the Event of a message this client sent may take to arrive after its SendAck: past
   * it, the live feed of that conversation went quiet, and the client syncs it in place (default
   * 10 s; PROTOCOL.md, "Noticing a quiet feed").
   */
  feedDeadlineMs?: number;
  /** Acks are sent at most this often per conversation (default 100 ms). */
  ackDelayMs?: number;
  /** Ack delivery of other people's messages automatically once emitted (default false). */
  autoAckDelivered?: boolean;
  typingThrottleMs?: number;
  random?: () => number;
  clock?: () => number;
  /** Called with each new access token (and refresh token) the client obtained: keep them to resume the session later. */
  onTokens?: (tokens: SessionTokens) => void;
  /**
   * Renew the token of an open connection in band (a refresh, then Reauthenticate) before it
   * expires (default true; needs a refresh token). false: connections end at the token's expiry
   * (close 4004) and the client refreshes and reconnects, as with a server without Reauthenticate.
   */
  renewInBand?: boolean;
  /** Test hook: sees every decoded server frame first; returning false drops it. */
  inspectFrame?: (frame: ServerFrame) => boolean;
};

export type ChatClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
export type Welcome = ServerMessage<'welcome'>;

export type SendOptions = { clientMessageId?: string; contentType?: 'text' | 'image' | 'video' | 'file'; mediaId?: string };
export type SendResult = { conversationId: string; messageId: string; sequenceNumber: number; createdAtMs: number; duplicate: boolean; clientMessageId: string };

export type ChatClientEvents = {
  state: ChatClientState;
  open: Welcome;
  disconnected: { code: number; reason: string; reconnectInMs: number | null };
  /** One event of a conversation, in version order, once. */
  event: ReceivedEvent;
  syncDone: { conversationId: string; version: number; accessEnded: boolean };
  typing: { conversationId: string; userId: string; isTyping: boolean; expiresInMs: number };
  presence: { userId: string; status: PresenceStatusName; lastSeen: string | null };
  /** Non-fatal problems (a refused ack, an undecodable frame, a failed discovery before a retry). */
  error: Error;
  /** The client stopped for good: close() or a terminal close code. */
  closed: { code: number; reason: string; terminal: boolean };
};

export type ChatClientStats = {
  reconnects: number;
  syncRequests: number;
  /** Syncs (and Hello cursors) the server asked to send again later (RATE_LIMITED). */
  syncsDeferred: number;
  gaps: number;
  duplicates: number;
  events: number;
  lastRttMs: number | null;
  /** Connections given up because neither a Pong nor any other frame came after a Ping. */
  heartbeatTimeouts: number;
  /** Conversations synced because the Event of an acknowledged message of this client did not come in time. */
  quietFeedSyncs: number;
  /** SyncRequired frames received. */
  syncRequired: number;
  /** Tokens renewed on an open connection (Reauthenticate answered Ok). */
  renewals: number;
};

/** An Error frame answering a request. */
export class ChatRequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly retryable: boolean,
    readonly reason: string | undefined,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = 'ChatRequestError';
  }
  get codeName(): string | undefined {
    return errorNameOf(this.code);
  }
}

/** The request did not get a reply: the connection closed, or the reply did not come in time. */
export class ChatConnectionError extends Error {
  constructor(
    message: string,
    readonly kind: 'not_connected' | 'closed' | 'timeout' | 'client_closed',
  ) {
    super(message);
    this.name = 'ChatConnectionError';
  }
}

export type ChatClient = {
  readonly state: ChatClientState;
  /** The user id (known after the first Welcome). */
  readonly userId: string | null;
  /** Starts connecting (idempotent); resolves at the next Welcome, rejects when the client stops. */
  connect(): Promise<Welcome>;
  on<K extends keyof ChatClientEvents>(type: K, handler: (value: ChatClientEvents[K]) => void): () => void;
  send(conversationId: string, content: string, options?: SendOptions): Promise<SendResult>;
  ackDelivered(conversationId: string, upToVersion: number): void;
  markRead(conversationId: string, upToVersion: number): void;
  typing(conversationId: string, isTyping: boolean): Promise<void>;
  setPresence(status: PresenceStatusName): Promise<void>;
  /** Follow a conversation from `lastVersion` (0: from the start): Sync now and on every reconnect. */
  track(conversationId: string, lastVersion?: number): void;
  cursor(conversationId: string): number | undefined;
  ping(): Promise<number>;
  stats(): ChatClientStats;
  /** Closes for good (1000); pending sends reject. */
  close(): Promise<void>;
};

type Pending = { resolve(frame: ServerFrame): void; reject(error: Error): void; timer: ReturnType<typeof setTimeout> };
type Outgoing = {
  conversationId: string;
  clientMessageId: string;
  body: ClientBody;
  inFlight: boolean;
  promise: Promise<SendResult>;
  resolve(result: SendResult): void;
  reject(error: Error): void;
};

const CONTENT_TYPES = { text: ContentType.TEXT, image: ContentType.IMAGE, video: ContentType.VIDEO, file: ContentType.FILE } as const;
const MAX_REQUEST_ID = 2 ** 32 - 1;

export function createChatClient(options: ChatClientOptions): ChatClient {
  const maybeWebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (maybeWebSocket === undefined) throw new TypeError('createChatClient: no WebSocket implementation (pass options.WebSocket, e.g. the `ws` package)');
  if (fetchImpl === undefined) throw new TypeError('createChatClient: no fetch implementation (pass options.fetch)');
  const WebSocketImpl: WebSocketConstructor = maybeWebSocket;
  const rest = restClient(options.baseUrl, fetchImpl);
  const backoff = { minMs: options.reconnect?.minMs ?? 500, maxMs: options.reconnect?.maxMs ?? 30_000 };
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 10_000;
  const feedDeadlineMs = options.feedDeadlineMs ?? 10_000;
  const ackDelayMs = options.ackDelayMs ?? 100;
  const typingThrottleMs = options.typingThrottleMs ?? TYPING_THROTTLE_MS;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? Date.now;
  const cursorStore = options.cursorStore ?? memoryCursorStore();
  const credentials = 'username' in options ? { username: options.username, password: options.password } : null;
  const keeper = createTokenKeeper({
    rest,
    token: 'token' in options ? options.token : null,
    refreshToken: 'token' in options ? (options.refreshToken ?? null) : null,
    credentials,
    clock,
    onTokens: options.onTokens,
  });

  const emitter = new Emitter<ChatClientEvents>();
  const cursors = new ConversationCursors();
  let cursorsLoaded: Promise<void> | null = null;
  let state: ChatClientState = 'idle';
  let userId: string | null = null;
  let welcome: Welcome | null = null;
  let socket: WebSocketLike | null = null;
  let generation = 0;
  let attempt = 0;
  let stopped = false;
  let goodbye: ServerMessage<'goodbye'> | null = null;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  let ackTimer: ReturnType<typeof setTimeout> | null = null;
  let nextRequestId = 0;
  const requests = new Map<number, Pending>();
  const outbox = new Map<string, Outgoing>();
  /** Conversations with a Sync asked for and not done (queued or in flight): one at a time each. */
  const pendingSync = new Set<string>();
  /** Conversations waiting for the next Sync frame, in the order they were asked for. */
  let syncQueue = new Set<string>();
  let syncInFlight = false;
  let syncTimer: ReturnType<typeof setTimeout> | null = null;
  /** The cursors this connection's Hello carried (the server may defer them). */
  let helloCursors: string[] = [];
  const pendingAcks = { delivered: new Map<string, number>(), read: new Map<string, number>() };
  const typingSent = new Map<string, { at: number; isTyping: boolean }>();
  const openWaiters: { resolve(w: Welcome): void; reject(e: Error): void }[] = [];
  const counters: ChatClientStats = { reconnects: 0, syncRequests: 0, syncsDeferred: 0, gaps: 0, duplicates: 0, events: 0, lastRttMs: null, heartbeatTimeouts: 0, quietFeedSyncs: 0, syncRequired: 0, renewals: 0 };
  /** Frames received so far (a Ping's deadline is met by any frame after it). */
  let framesReceived = 0;
  /** Per conversation: the highest version this client's sends were acknowledged at whose Event has not come yet, and since when. */
  const awaitingEcho = new Map<string, { version: number; since: number }>();
  let feedTimer: ReturnType<typeof setTimeout> | null = null;
  /** Syncs waiting out a SyncRequired's spread or a retry delay. */
  const syncTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Syncs refused in a row with no retry_after_ms: the back-off's attempt. */
  let syncRefusals = 0;
  const renewInBand = options.renewInBand ?? true;
  /** The token the open connection is authenticated with (Hello's, then each accepted Reauthenticate's). */
  let connectionToken: string | null = null;
  /** Server clock minus local clock, from the last Welcome (reads a JWT's exp on the local clock). */
  let serverOffsetMs = 0;
  let renewTimer: ReturnType<typeof setTimeout> | null = null;
  /** Transient failures of this renewal so far: the back-off's attempt. */
  let renewFailures = 0;

  const setState = (next: ChatClientState) => {
    if (state === next) return;
    state = next;
    emitter.emit('state', next);
  };
  const report = (error: unknown) => emitter.emit('error', error instanceof Error ? error : new Error(String(error)));
  const saveCursor = (conversationId: string, version: number) => {
    try {
      void Promise.resolve(cursorStore.save(conversationId, version)).catch(report);
    } catch (error) {
      report(error);
    }
  };

  // ---- requests ----

  function request(body: ClientBody, timeoutMs = requestTimeoutMs, allowBeforeWelcome = false): Promise<ServerFrame> {
    const ws = socket;
    if (ws === null || (state !== 'open' && !allowBeforeWelcome)) {
      return Promise.reject(new ChatConnectionError(`cannot send ${body.case}: not connected`, 'not_connected'));
    }
    nextRequestId = nextRequestId >= MAX_REQUEST_ID ? 1 : nextRequestId + 1;
    const requestId = nextRequestId;
    return new Promise<ServerFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        requests.delete(requestId);
        reject(new ChatConnectionError(`no reply to ${body.case} within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      requests.set(requestId, { resolve, reject, timer });
      try {
        ws.send(encodeClientFrame({ requestId, body }));
      } catch (error) {
        clearTimeout(timer);
        requests.delete(requestId);
        reject(new ChatConnectionError(`send failed: ${error instanceof Error ? error.message : String(error)}`, 'closed'));
      }
    });
  }

  /** The reply's value when it is of the expected case; an Error frame becomes a ChatRequestError. */
  function expect<C extends ServerFrame['body']['case']>(frame: ServerFrame, kind: C): ServerMessage<C> {
    if (frame.body.case === kind) return frame.body.value as ServerMessage<C>;
    if (frame.body.case === 'error') {
      const e = frame.body.value;
      throw new ChatRequestError(e.code, e.message, e.retryable, e.reason, e.retryAfterMs);
    }
    throw new ChatRequestError(0, `expected ${kind}, got ${frame.body.case}`, false, undefined, undefined);
  }

  // ---- connection lifecycle ----

  async function openSocket(): Promise<void> {
    if (stopped) return;
    setState(welcome === null && attempt === 0 ? 'connecting' : 'reconnecting');
    let url: string;
    let currentToken: string;
    try {
      cursorsLoaded ??= loadCursors();
      await cursorsLoaded;
      currentToken = await keeper.current();
      userId ??= keeper.userId();
      url = await rest.websocketUrl(currentToken);
    } catch (error) {
      if (stopped) return;
      if (error instanceof LoginRefused) return stop(CloseCode.UNAUTHENTICATED, error.message, true);
      if (error instanceof ChatHttpError && (error.status === 401 || error.status === 403) && (error.status === 403 || !keeper.canRenew())) {
        return stop(error.status === 403 ? CloseCode.FORBIDDEN : CloseCode.UNAUTHENTICATED, error.message, true);
      }
      if (error instanceof ChatHttpError && error.status === 401) keeper.expired();
      report(error);
      return scheduleReconnect();
    }
    if (stopped) return;
    const gen = ++generation;
    let ws: WebSocketLike;
    try {
      ws = new WebSocketImpl(url);
    } catch (error) {
      report(error);
      return scheduleReconnect();
    }
    ws.binaryType = 'arraybuffer';
    socket = ws;
    goodbye = null;
    ws.onopen = () => {
      if (gen !== generation) return;
      void hello(currentToken, gen);
    };
    ws.onmessage = (event) => {
      if (gen === generation) onData(event.data);
    };
    ws.onclose = (event) => {
      if (gen === generation) onClosed(event.code, String(event.reason ?? ''));
    };
    ws.onerror = () => {
      // a close follows
    };
  }

  async function loadCursors(): Promise<void> {
    const stored = await cursorStore.load();
    for (const [conversationId, version] of Object.entries(stored)) cursors.track(conversationId, version);
  }

  async function hello(currentToken: string, gen: number): Promise<void> {
    const all = cursors.entries().map(([conversationId, lastVersion]) => ({ conversationId, lastVersion }));
    helloCursors = all.slice(0, MAX_CURSORS).map((c) => c.conversationId);
    const body: ClientBody = {
      case: 'hello',
      value: { token: currentToken, protocolVersion: PROTOCOL_VERSION, deviceId: options.deviceId, cursors: all.slice(0, MAX_CURSORS) },
    };
    let reply: ServerFrame;
    try {
      reply = await request(body, HANDSHAKE_TIMEOUT_MS, true);
    } catch (error) {
      if (gen === generation && error instanceof ChatConnectionError && error.kind === 'timeout') abandon(CloseCode.HANDSHAKE_TIMEOUT, 'no Welcome');
      return;
    }
    if (gen !== generation) return;
    if (reply.body.case !== 'welcome') {
      // UNAUTHENTICATED / UNSUPPORTED_VERSION are followed by a terminal close from the server;
      // anything else (a validation error of our Hello) is a bug: stop.
      const e = reply.body.case === 'error' ? reply.body.value : null;
      if (e?.reason === 'token_expired' && keeper.canRenew()) {
        // Expired between the check and Hello: renew it and reconnect (the server's 4100 close is ignored).
        connectionToken = currentToken;
        abandon(CloseCode.TOKEN_EXPIRED, 'token expired at Hello');
        return;
      }
      report(new ChatRequestError(e?.code ?? 0, `Hello refused: ${e?.message ?? reply.body.case}`, false, e?.reason, undefined));
      // UNAUTHENTICATED, UNSUPPORTED_VERSION, FORBIDDEN (disabled account) and INTERNAL (a retryable
      // failure, close 4002) come with the server's close; anything else is a bug: stop.
      if (e === null || (e.code !== 101 && e.code !== 5 && e.code !== 102 && e.code !== 7)) abandon(CloseCode.PROTOCOL_ERROR, 'Hello refused');
      return;
    }
    const w = reply.body.value;
    if (w.protocolVersion > PROTOCOL_VERSION) {
      socket?.close(1000, 'unsupported protocol version');
      return stop(CloseCode.UNSUPPORTED_VERSION, `server chose protocol ${w.protocolVersion}`, true);
    }
    if (welcome !== null) counters.reconnects++;
    welcome = w;
    userId = w.userId;
    attempt = 0;
    connectionToken = currentToken;
    serverOffsetMs = w.serverTimeMs > 0 ? w.serverTimeMs - clock() : 0;
    setState('open');
    scheduleRenewal(gen);
    startHeartbeat(options.heartbeatIntervalMs ?? (w.heartbeatIntervalMs > 0 ? w.heartbeatIntervalMs : HEARTBEAT_INTERVAL_MS));
    // The cursors Hello could not carry follow in Syncs, paced by the server.
    for (const c of all.slice(MAX_CURSORS)) queueSync(c.conversationId);
    for (const waiter of openWaiters.splice(0)) waiter.resolve(w);
    emitter.emit('open', w);
    for (const entry of outbox.values()) dispatch(entry);
    scheduleAckFlush(0);
  }

  function onData(data: unknown): void {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
    if (bytes === null) {
      report(new Error('a server frame was not binary'));
      return;
    }
    const decoded = decodeServerFrame(bytes);
    if (!decoded.ok) {
      if (decoded.error.code !== 'unknown_frame') report(new Error(`undecodable server frame: ${decoded.error.message}`));
      return;
    }
    const frame = decoded.frame;
    if (options.inspectFrame !== undefined && !options.inspectFrame(frame)) return;
    framesReceived++;
    if (frame.requestId !== 0) {
      const pending = requests.get(frame.requestId);
      if (pending !== undefined) {
        requests.delete(frame.requestId);
        clearTimeout(pending.timer);
        pending.resolve(frame);
        return;
      }
    }
    const body = frame.body;
    switch (body.case) {
      case 'event':
        onEvent(body.value);
        return;
      case 'syncDone': {
        const s = body.value;
        pendingSync.delete(s.conversationId);
        if (s.accessEnded) {
          cursors.forget(s.conversationId);
          awaitingEcho.delete(s.conversationId);
        } else {
          cursors.onSyncDone(s.conversationId, s.version);
          saveCursor(s.conversationId, cursors.get(s.conversationId) ?? s.version);
          echoed(s.conversationId);
        }
        emitter.emit('syncDone', { conversationId: s.conversationId, version: s.version, accessEnded: s.accessEnded });
        return;
      }
      case 'typing':
        emitter.emit('typing', { ...body.value });
        return;
      case 'presence': {
        const p = fromPresenceEvent(body.value);
        if (p !== undefined) emitter.emit('presence', { userId: p.user_id, status: p.status, lastSeen: p.last_seen });
        return;
      }
      case 'goodbye':
        goodbye = body.value;
        return;
      case 'syncRequired':
        onSyncRequired(body.value);
        return;
      case 'error':
        if (body.value.reason === 'sync_deferred') {
          // The server took the session but not Hello's cursors yet: Sync them once it says so.
          counters.syncsDeferred++;
          for (const id of helloCursors) queueSync(id);
          holdSyncs(body.value.retryAfterMs);
          return;
        }
        report(new ChatRequestError(body.value.code, body.value.message, body.value.retryable, body.value.reason, body.value.retryAfterMs));
        return;
      default:
        return; // a late reply to a request that timed out
    }
  }

  function onEvent(frame: EventFrame): void {
    const decision = cursors.onEvent(frame.conversationId, frame.version, frame.previousVersion);
    if (decision === 'duplicate') {
      counters.duplicates++;
      return;
    }
    if (decision === 'gap') {
      counters.gaps++;
      requestSync(frame.conversationId);
      return;
    }
    saveCursor(frame.conversationId, frame.version);
    echoed(frame.conversationId);
    const mapped = fromEventFrame(frame);
    if (!mapped.ok) {
      // An unknown payload (newer server) still counts as seen; an invalid one is reported.
      if (mapped.error.code === 'invalid_event') report(new Error(mapped.error.message));
      return;
    }
    counters.events++;
    emitter.emit('event', mapped.event);
    if (options.autoAckDelivered && mapped.event.type === 'MessageSent' && mapped.event.data.sender_id !== userId) {
      ackDelivered(frame.conversationId, frame.version);
    }
  }

  function requestSync(conversationId: string): void {
    if (pendingSync.has(conversationId) || state !== 'open') return;
    queueSync(conversationId);
  }

  function queueSync(conversationId: string): void {
    pendingSync.add(conversationId);
    syncQueue.add(conversationId);
    pumpSyncs();
  }

  /** No Sync leaves before `delayMs` (the server's retry_after_ms). */
  function holdSyncs(delayMs: number): void {
    if (syncTimer !== null) clearTimeout(syncTimer);
    syncTimer = setTimeout(
      () => {
        syncTimer = null;
        pumpSyncs();
      },
      Math.max(1, delayMs),
    );
  }

  /** One Sync at a time, of everything waiting (up to MAX_CURSORS), from the cursors as they are when it leaves. */
  function pumpSyncs(): void {
    if (syncInFlight || syncTimer !== null || state !== 'open' || syncQueue.size === 0) return;
    const batch = [...syncQueue].slice(0, MAX_CURSORS);
    for (const id of batch) syncQueue.delete(id);
    syncInFlight = true;
    const gen = generation;
    void syncRequest(batch.map((conversationId) => ({ conversationId, lastVersion: cursors.get(conversationId) ?? 0 }))).then((retryAfterMs) => {
      if (gen !== generation) return; // the connection went: the next Hello carries the cursors
      syncInFlight = false;
      if (retryAfterMs !== null) {
        // Refused for now (too much, or the server's store is down): first in line again, after
        // the wait the server named (or the back-off).
        counters.syncsDeferred++;
        syncQueue = new Set([...batch, ...syncQueue]);
        holdSyncs(retryAfterMs);
        return;
      }
      syncRefusals = 0;
      for (const id of batch) pendingSync.delete(id);
      pumpSyncs();
    });
  }

  /**
   * Sends one Sync; resolves with how long to wait before sending it again when the server refused
   * it with a retryable error (RATE_LIMITED, its store down: its retry_after_ms, or the back-off),
   * else null. A new connection's Hello syncs everything anyway.
   */
  async function syncRequest(list: { conversationId: string; lastVersion: number }[]): Promise<number | null> {
    counters.syncRequests++;
    const gen = generation;
    try {
      expect(await request({ case: 'sync', value: { cursors: list } }, Math.max(requestTimeoutMs, 30_000)), 'ok');
    } catch (error) {
      // A retryable refusal (too many cursors for now, too many waiting, a dependency down): the server says when, or back off.
      if (error instanceof ChatRequestError && error.retryable && gen === generation && !stopped) {
        return error.retryAfterMs !== undefined && error.retryAfterMs > 0 ? error.retryAfterMs : backoffDelay(++syncRefusals, backoff, random);
      }
      // A connection that went is not worth reporting: the next Hello carries the cursors.
      if (!(error instanceof ChatConnectionError && error.kind !== 'timeout')) report(error);
    }
    return null;
  }

  function resetSyncs(): void {
    pendingSync.clear();
    syncQueue.clear();
    syncInFlight = false;
    if (syncTimer !== null) clearTimeout(syncTimer);
    syncTimer = null;
  }

  /** Runs `fn` after `ms` unless the client stops first. */
  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      syncTimers.delete(timer);
      fn();
    }, ms);
    syncTimers.add(timer);
  }

  /** Syncs these conversations in place (each from its cursor when its Sync leaves), skipping those with a Sync waiting or in flight. */
  function syncInPlace(conversationIds: string[]): void {
    for (const id of conversationIds) if (!pendingSync.has(id)) queueSync(id);
  }

  /**
   * SyncRequired: the server may have missed deliveries to this connection. After a random wait
   * within the frame's spread, the named conversations it follows (every one when none is named)
   * are synced in place; a reconnect meanwhile makes it moot (Hello syncs them all).
   */
  function onSyncRequired(frame: ServerMessage<'syncRequired'>): void {
    counters.syncRequired++;
    const gen = generation;
    later(frame.withinMs > 0 ? Math.floor(random() * frame.withinMs) : 0, () => {
      if (gen !== generation || state !== 'open') return;
      const all = cursors.entries().map(([conversationId]) => conversationId);
      syncInPlace(frame.conversationIds.length === 0 ? all : frame.conversationIds.filter((id) => cursors.has(id)));
    });
  }

  // ---- a quiet feed ----

  /**
   * A SendAck at `version`: the message's Event is due on this connection (every member gets
   * every message, its sender too). Watched until the cursor reaches it.
   */
  function watchEcho(conversationId: string, version: number): void {
    if ((cursors.get(conversationId) ?? 0) >= version) return;
    const watch = awaitingEcho.get(conversationId);
    if (watch !== undefined) watch.version = Math.max(watch.version, version);
    else awaitingEcho.set(conversationId, { version, since: clock() });
    scheduleFeedCheck();
  }

  /** The cursor of `conversationId` moved: an acknowledged message it reached has arrived. */
  function echoed(conversationId: string): void {
    const watch = awaitingEcho.get(conversationId);
    if (watch !== undefined && (cursors.get(conversationId) ?? 0) >= watch.version) awaitingEcho.delete(conversationId);
  }

  function scheduleFeedCheck(): void {
    if (feedTimer !== null || stopped || awaitingEcho.size === 0) return;
    let due = Number.POSITIVE_INFINITY;
    for (const watch of awaitingEcho.values()) due = Math.min(due, watch.since + feedDeadlineMs);
    feedTimer = setTimeout(checkFeed, Math.max(0, due - clock()));
  }

  /** Conversations whose acknowledged messages did not arrive in time: their feed went quiet, sync them in place. */
  function checkFeed(): void {
    feedTimer = null;
    const now = clock();
    const quiet: string[] = [];
    for (const [conversationId, watch] of awaitingEcho) {
      if ((cursors.get(conversationId) ?? 0) >= watch.version) {
        awaitingEcho.delete(conversationId);
        continue;
      }
      if (now - watch.since < feedDeadlineMs) continue;
      watch.since = now; // watched again from now: one Sync per deadline at most
      if (state !== 'open') continue; // the next Welcome syncs it
      // Not followed yet: its own message would have been its first event, so start there.
      if (!cursors.has(conversationId)) cursors.track(conversationId, watch.version - 1);
      counters.quietFeedSyncs++;
      quiet.push(conversationId);
    }
    if (quiet.length > 0) syncInPlace(quiet);
    scheduleFeedCheck();
  }

  /**
   * A Ping every `intervalMs`; when neither its Pong nor any other frame has come within
   * heartbeatTimeoutMs, the connection is dead (a half-open TCP connection, a stalled server):
   * close it and reconnect with the cursors. A busy connection whose Pong is only late is kept.
   */
  function startHeartbeat(intervalMs: number): void {
    stopHeartbeat();
    heartbeatTimer = setInterval(() => {
      const gen = generation;
      const framesBefore = framesReceived;
      ping(heartbeatTimeoutMs).catch((error: unknown) => {
        if (gen !== generation || !(error instanceof ChatConnectionError) || error.kind !== 'timeout') return;
        if (framesReceived > framesBefore) return; // frames kept coming: alive, only the Pong is late
        counters.heartbeatTimeouts++;
        abandon(CloseCode.HEARTBEAT_TIMEOUT, 'no Pong');
      });
    }, intervalMs);
  }

  function stopHeartbeat(): void {
    if (heartbeatTimer !== null) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
  }

  async function ping(timeoutMs = requestTimeoutMs): Promise<number> {
    const sentAt = clock();
    expect(await request({ case: 'ping', value: { clientTimeMs: sentAt } }, timeoutMs), 'pong');
    counters.lastRttMs = clock() - sentAt;
    return counters.lastRttMs;
  }

  /** Gives up on the current socket (its callbacks are ignored from now on) and handles it as closed with `code`. */
  function abandon(code: number, reason: string): void {
    const ws = socket;
    generation++;
    if (ws !== null) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, reason);
      } catch {
        // already closing
      }
    }
    onClosed(code, reason);
  }

  function onClosed(code: number, reason: string): void {
    socket = null;
    stopHeartbeat();
    clearRenewal();
    for (const [id, pending] of requests) {
      clearTimeout(pending.timer);
      pending.reject(new ChatConnectionError(`connection closed (${code}) before the reply`, 'closed'));
      requests.delete(id);
    }
    resetSyncs();
    if (stopped) return;
    const kind = closeCodeKind(code);
    if (kind === 'terminal') {
      emitter.emit('disconnected', { code, reason, reconnectInMs: null });
      stop(code, reason, true);
      return;
    }
    // The connection's token expired: renew it before reconnecting (unless an in-band renewal already did).
    if (code === CloseCode.TOKEN_EXPIRED) keeper.expired(connectionToken ?? undefined);
    if (code === CloseCode.RATE_LIMITED) attempt += 3;
    // Refused at the door (too many connections): come back later, not all at the same moment.
    const asked = goodbye?.reconnectAfterMs ?? 0;
    const after = code === CloseCode.TOO_MANY_CONNECTIONS ? asked * (1 + random() / 2) : asked;
    const delay = Math.max(backoffDelay(attempt, backoff, random), Math.round(after));
    emitter.emit('disconnected', { code, reason, reconnectInMs: delay });
    scheduleReconnect(delay);
  }

  function scheduleReconnect(delay = backoffDelay(attempt, backoff, random)): void {
    if (stopped) return;
    attempt++;
    setState('reconnecting');
    if (reconnectTimer !== null) clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      void openSocket();
    }, delay);
  }

  function stop(code: number, reason: string, terminal: boolean): void {
    if (stopped) return;
    stopped = true;
    if (reconnectTimer !== null) clearTimeout(reconnectTimer);
    if (ackTimer !== null) clearTimeout(ackTimer);
    if (feedTimer !== null) clearTimeout(feedTimer);
    reconnectTimer = ackTimer = feedTimer = null;
    clearRenewal();
    for (const timer of syncTimers) clearTimeout(timer);
    syncTimers.clear();
    awaitingEcho.clear();
    stopHeartbeat();
    resetSyncs();
    const error = new ChatConnectionError(`client stopped: ${code} ${reason}`, 'client_closed');
    for (const entry of outbox.values()) entry.reject(error);
    outbox.clear();
    for (const waiter of openWaiters.splice(0)) waiter.reject(error);
    setState('closed');
    emitter.emit('closed', { code, reason, terminal });
  }

  // ---- renewing the token in band ----

  function clearRenewal(): void {
    if (renewTimer !== null) clearTimeout(renewTimer);
    renewTimer = null;
  }

  function armRenewal(gen: number, delayMs: number, fresh: string | null): void {
    clearRenewal();
    // setTimeout fires at once beyond 2^31-1 ms: a far renewal is re-armed when that timer fires.
    const capped = Math.min(2 ** 31 - 1, Math.max(0, delayMs));
    renewTimer = setTimeout(() => {
      renewTimer = null;
      if (capped < delayMs) armRenewal(gen, delayMs - capped, fresh);
      else void renewNow(gen, fresh);
    }, capped);
  }

  /**
   * Arms the renewal of the open connection's token (PROTOCOL.md, "Renewing the token") at the
   * later of 60 s before its expiry and 80 % of its lifetime (credentials.ts). Needs a refresh
   * token: with only `{token}` the connection ends at its expiry, as the application chose.
   */
  function scheduleRenewal(gen: number): void {
    clearRenewal();
    renewFailures = 0;
    if (!renewInBand || connectionToken === null || !keeper.canRefresh()) return;
    const times = keeper.timesOf(connectionToken, serverOffsetMs);
    if (times !== null) armRenewal(gen, times.renewAtMs - clock(), null);
  }

  /**
   * A transient failure (the refresh's network or server, a retryable Error, no reply in time):
   * again after retry_after_ms or a back-off, while the connection's token lasts; past it the
   * server closes with 4004 and the reconnect renews the token.
   */
  function retryRenewal(gen: number, fresh: string | null, retryAfterMs?: number): void {
    if (gen !== generation || stopped || state !== 'open' || connectionToken === null) return;
    const delay = retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : backoffDelay(renewFailures++, backoff, random);
    const times = keeper.timesOf(connectionToken, serverOffsetMs);
    if (times !== null && clock() + delay >= times.expiresAtMs) return;
    armRenewal(gen, delay, fresh);
  }

  /** Refreshes the token (unless `fresh` is one already) and sends it in a Reauthenticate; on Ok the connection goes on with it. */
  async function renewNow(gen: number, fresh: string | null): Promise<void> {
    if (gen !== generation || stopped || state !== 'open') return;
    let token = fresh;
    if (token === null) {
      try {
        token = await keeper.refresh();
      } catch (error) {
        // Refused for good (LoginRefused): the close 4004 at the expiry decides, as before (log in again, or stop).
        if (error instanceof LoginRefused) return;
        if (gen === generation) report(error);
        return retryRenewal(gen, null);
      }
    }
    if (gen !== generation || state !== 'open') return; // the connection went: the next Hello carries the new token
    let reply: ServerFrame;
    try {
      reply = await request({ case: 'reauthenticate', value: { token } });
    } catch (error) {
      if (error instanceof ChatConnectionError && error.kind === 'timeout') retryRenewal(gen, token);
      return;
    }
    if (gen !== generation) return;
    try {
      expect(reply, 'ok');
    } catch (error) {
      if (error instanceof ChatRequestError && error.retryable) return retryRenewal(gen, token, error.retryAfterMs);
      // A server without Reauthenticate (UNKNOWN_FRAME), or a refusal (the session ended, the
      // account was disabled: the server closes the connection for that anyway): this connection
      // ends at its token's expiry and the reconnect renews.
      if (!(error instanceof ChatRequestError && error.code === ErrorCode.UNKNOWN_FRAME)) report(error);
      return;
    }
    connectionToken = token;
    counters.renewals++;
    scheduleRenewal(gen);
  }

  // ---- sending ----

  function dispatch(entry: Outgoing): void {
    if (entry.inFlight || state !== 'open' || !outbox.has(entry.clientMessageId)) return;
    entry.inFlight = true;
    request(entry.body).then(
      (frame) => {
        entry.inFlight = false;
        try {
          const ack = expect(frame, 'sendAck');
          outbox.delete(entry.clientMessageId);
          watchEcho(ack.conversationId, ack.sequenceNumber);
          entry.resolve({ ...ack, clientMessageId: entry.clientMessageId });
        } catch (error) {
          if (error instanceof ChatRequestError && error.retryable) {
            // retry_after_ms is 0 when the server gave none: back off rather than retry at once.
            setTimeout(() => dispatch(entry), error.retryAfterMs || backoffDelay(1, backoff, random));
            return;
          }
          outbox.delete(entry.clientMessageId);
          entry.reject(error instanceof Error ? error : new Error(String(error)));
        }
      },
      (error: unknown) => {
        entry.inFlight = false;
        // timeout: resend now under the same client_message_id; closed: the next Welcome resends
        if (error instanceof ChatConnectionError && error.kind === 'timeout') dispatch(entry);
      },
    );
  }

  function send(conversationId: string, content: string, sendOptions: SendOptions = {}): Promise<SendResult> {
    if (stopped) return Promise.reject(new ChatConnectionError('client closed', 'client_closed'));
    const clientMessageId = sendOptions.clientMessageId ?? globalThis.crypto.randomUUID();
    const existing = outbox.get(clientMessageId);
    if (existing !== undefined) return existing.promise;
    let resolve!: (r: SendResult) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<SendResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const body: ClientBody = {
      case: 'sendMessage',
      value: {
        conversationId,
        clientMessageId,
        content,
        contentType: CONTENT_TYPES[sendOptions.contentType ?? 'text'],
        ...(sendOptions.mediaId === undefined ? {} : { mediaId: sendOptions.mediaId }),
      },
    };
    const entry: Outgoing = { conversationId, clientMessageId, body, inFlight: false, promise, resolve, reject };
    outbox.set(clientMessageId, entry);
    dispatch(entry);
    if (sendOptions.contentType === undefined || sendOptions.contentType === 'text') {
      if (typingSent.get(conversationId)?.isTyping) typingSent.delete(conversationId); // sending ends typing on the server's side too
    }
    return promise;
  }

  // ---- acks ----

  function queueAck(kind: 'delivered' | 'read', conversationId: string, upToVersion: number): void {
    const map = pendingAcks[kind];
    if ((map.get(conversationId) ?? 0) < upToVersion) map.set(conversationId, upToVersion);
    scheduleAckFlush(ackDelayMs);
  }

  function scheduleAckFlush(delay: number): void {
    if (ackTimer !== null || stopped) return;
    ackTimer = setTimeout(flushAcks, delay);
  }

  function flushAcks(): void {
    ackTimer = null;
    if (state !== 'open') return; // flushed after the next Welcome
    for (const kind of ['read', 'delivered'] as const) {
      const map = pendingAcks[kind];
      for (const [conversationId, upToVersion] of [...map]) {
        map.delete(conversationId);
        if (kind === 'delivered' && (pendingAcks.read.get(conversationId) ?? 0) >= upToVersion) continue;
        const body: ClientBody =
          kind === 'read' ? { case: 'markRead', value: { conversationId, upToVersion } } : { case: 'ackDelivered', value: { conversationId, upToVersion } };
        request(body).then(
          (frame) => {
            try {
              expect(frame, 'ok');
            } catch (error) {
              report(error);
            }
          },
          (error: unknown) => {
            // not acked before the connection went: put it back unless a later ack superseded it
            if (error instanceof ChatConnectionError && (map.get(conversationId) ?? 0) < upToVersion) queueAck(kind, conversationId, upToVersion);
          },
        );
      }
    }
  }

  function ackDelivered(conversationId: string, upToVersion: number): void {
    queueAck('delivered', conversationId, upToVersion);
  }

  function markRead(conversationId: string, upToVersion: number): void {
    queueAck('read', conversationId, upToVersion);
  }

  // ---- typing, presence ----

  async function typing(conversationId: string, isTyping: boolean): Promise<void> {
    const now = clock();
    const last = typingSent.get(conversationId);
    if (isTyping && last?.isTyping && now - last.at < typingThrottleMs) return;
    if (!isTyping && !last?.isTyping) return;
    if (state !== 'open') return; // ephemeral: not queued
    typingSent.set(conversationId, { at: now, isTyping });
    expect(await request({ case: 'typing', value: { conversationId, isTyping } }), 'ok');
  }

  async function setPresence(status: PresenceStatusName): Promise<void> {
    expect(await request({ case: 'setPresence', value: { status: presenceStatusToProto(status) } }), 'ok');
  }

  return {
    get state() {
      return state;
    },
    get userId() {
      return userId;
    },
    connect(): Promise<Welcome> {
      if (stopped) return Promise.reject(new ChatConnectionError('client closed', 'client_closed'));
      if (state === 'open' && welcome !== null) return Promise.resolve(welcome);
      const opened = new Promise<Welcome>((resolve, reject) => openWaiters.push({ resolve, reject }));
      if (state === 'idle') void openSocket();
      return opened;
    },
    on: (type, handler) => emitter.on(type, handler),
    send,
    ackDelivered,
    markRead,
    typing,
    setPresence,
    track(conversationId: string, lastVersion = 0) {
      if (cursors.has(conversationId)) return;
      cursors.track(conversationId, lastVersion);
      saveCursor(conversationId, lastVersion);
      requestSync(conversationId);
    },
    cursor: (conversationId) => cursors.get(conversationId),
    ping: () => ping(),
    stats: () => ({ ...counters }),
    async close() {
      if (stopped) return;
      const ws = socket;
      generation++;
      socket = null;
      if (ws !== null) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close(1000, 'client closed');
        } catch {
          // already closing
        }
      }
      stop(1000, 'client closed', false);
      onClosed(1000, 'client closed'); // rejects in-flight requests
    },
  };
}
