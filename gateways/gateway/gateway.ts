import uWS from 'uWebSockets.js';
import type { EventBus } from '../ports/bus.js';
import { isOutage } from '../../domain/ports/health.js';
import type { SignalChange } from '../ports/presence.js';
import { readVarintAtPath } from '../../infra/telemetry/frame-time.js';
import { noopMetrics } from '../../infra/telemetry/noop.js';
import { decodeDeliveries, type DeliveryItem } from '../envelope/envelope.js';
import { createClientAddressOf } from './client-address.js';
import { Connection, type ConnectionDeps, type Hub, type Socket } from './connection.js';
import { startSessionCheck } from './session-check.js';
import type { SessionStore } from '../ports/sessions.js';
import { DEFAULT_CONNECTION_CAPS, createConnectionCaps, type ConnectionCapsOptions } from './connection-caps.js';
import { addMember, deleteMember, hasMember, memberCount, type Members } from './members.js';
import {
  CloseCode,
  HANDSHAKE_TIMEOUT_MS,
  HELLOS_PER_MINUTE,
  HEARTBEAT_TIMEOUT_MS,
  TYPING_TTL_MS,
  encodeServerFrame,
  presenceFrame,
  typingFrame,
  type SyncRequiredReason,
} from '../protocol/index.js';
import { DEFAULT_SYNC_RATE, createSyncBudget, type SyncRate } from './sync-budget.js';

/**
 * The WebSocket gateway node on uWebSockets.js (PROTOCOL.md): endpoint /ws, binary protobuf
 * frames. It holds the node's connections and two indexes over them (user → connections, contact
 * → connections); it receives delivery envelopes for its users on the bus (`onNodeMessage(nodeId)`),
 * and pushes presence changes (to the contacts of the user) and typing changes (to the users they
 * name), both published to every node by the presence store, to its own connections. It keeps no
 * index of conversations: what comes from a conversation comes addressed to users.
 */
export type WsGatewayDeps = Omit<ConnectionDeps, 'hub' | 'maxBufferedBytes' | 'maxHeldEvents' | 'clock' | 'syncBudget' | 'helloBudget'> & {
  bus: Pick<EventBus, 'onNodeMessage' | 'flush' | 'onReconnect'>;
  /** Connections per user, per client address, and per address before their handshake (default: limits.ts; 0: no cap). */
  caps?: ConnectionCapsOptions;
  /** Reverse proxies whose X-Forwarded-For names the client (client-address.ts); default none. */
  trustedProxies?: readonly string[];
  /** Sync cursors per user on this node (default: limits.ts SYNC_CURSORS_PER_S, SYNC_CURSOR_BURST). */
  syncRate?: SyncRate;
  /** Accepted Hellos per user on this node per minute (default: limits.ts HELLOS_PER_MINUTE; 0: no limit). */
  hellosPerMinute?: number;
  maxBufferedBytes?: number;
  maxHeldEvents?: number;
  handshakeTimeoutMs?: number;
  heartbeatTimeoutMs?: number;
  /** How often timeouts and presence expiry are checked (default 1 s). */
  sweepIntervalMs?: number;
  /** Re-checks the sessions of open connections (session-check.ts); absent: only Hello checks the token. */
  sessions?: Pick<SessionStore, 'statuses'>;
  /** How often (default 10 s). */
  sessionCheckIntervalMs?: number;
  clock?: () => number;
  /**
   * SyncRequired to every connection (the node may have missed deliveries) asks the clients to
   * spread their Syncs over `perConnectionMs` per connection of the node, at most `maxMs`
   * (default 2 ms and 10 s: 5,000 connections sync within 10 s, about 500 a second).
   */
  syncSpread?: { perConnectionMs: number; maxMs: number };
  /**
   * A message sent through this node whose delivery envelope has not come back to it after this
   * long means the delivery feed stopped (default 10 s): the node tells its connections to sync,
   * again every as long while it stays so.
   */
  feedDeadlineMs?: number;
};

export type WsGateway = {
  listen(host: string, port: number): Promise<number>;
  /** Goodbye 4000 to every connection, then stops listening. */
  close(): Promise<void>;
  stats(): WsGatewayStats;
  /** Re-checks the sessions of every open connection now (after this process ended sessions). */
  recheckSessions(): Promise<void>;
};

export type WsGatewayStats = {
  connections: number;
  authenticated: number;
  /** Client addresses with connections on this node (connection-caps.ts). */
  addresses: number;
  /** SyncRequired frames sent, by reason. */
  syncRequired: Partial<Record<SyncRequiredReason, number>>;
  /** Whether the delivery feed is stalled now (messages sent through this node not delivered back). */
  feedStalled: boolean;
};

/** Most conversations whose delivery back to this node is watched at once (a dead feed must not grow it without end). */
const MAX_WATCHED_ECHOES = 10_000;
/** How long a settled watch (its send came back) is kept for the conversation's next send. */
const SETTLED_WATCH_MS = 1_000;

/**
 * uWS sends the FIN of an end() only when the socket is not corked, and with no idle timeout a
 * socket ended inside a cork would wait for its peer to close it: an end() during UwsSocket.cork
 * is held here and made once the cork is over (one socket is corked at a time).
 */
let corking = false;
let endAfterCork: (() => void) | undefined;

/** Every field is there from the upgrade on (one shape, no property added later). */
type UserData = { queryToken: string; address: string; closed: boolean; connection: Connection | undefined };

/** A connection's transport: one small object per socket, its methods on the prototype. */
class UwsSocket implements Socket {
  constructor(
    private readonly ws: uWS.WebSocket<UserData>,
    private readonly data: UserData,
  ) {}

  send(bytes: Uint8Array): 'ok' | 'backpressure' | 'dropped' {
    if (this.data.closed) return 'dropped';
    let status = 1;
    this.ws.cork(() => {
      status = this.ws.send(bytes, true);
    });
    return status === 1 ? 'ok' : status === 0 ? 'backpressure' : 'dropped';
  }

  bufferedAmount(): number {
    return this.data.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** A send inside corks nothing more (uWS runs a nested cork of the same socket as a plain call). */
  cork(sends: () => void): void {
    if (this.data.closed) {
      sends();
      return;
    }
    corking = true;
    try {
      this.ws.cork(sends);
    } finally {
      corking = false;
      const end = endAfterCork;
      endAfterCork = undefined;
      try {
        end?.();
      } catch {
        // closed meanwhile
      }
    }
  }

  end(code: number, reason: string): void {
    if (this.data.closed) return;
    this.data.closed = true;
    if (corking) endAfterCork = () => this.ws.end(code, reason);
    else this.ws.end(code, reason);
  }
}

/**
 * Where a MessageSent's created_at_ms sits in an encoded Event frame (frames.proto, events.proto):
 * ServerFrame.event = 8 → Event.message_sent = 13 → MessageSent.created_at_ms = 7.
 */
const MESSAGE_SENT_CREATED_AT_MS = [8, 13, 7] as const;

/** Transport frames above this are closed by uWS (1009); frames up to it are answered FRAME_TOO_LARGE. */
const TRANSPORT_MAX_PAYLOAD = 1024 * 1024;

export function createWsGateway(deps: WsGatewayDeps): WsGateway {
  if (typeof (uWS as unknown as { getParts?: unknown }).getParts !== 'function') {
    throw new Error('uWebSockets.js: the native binary did not load (the slow fallback is not supported)');
  }
  const clock = deps.clock ?? Date.now;
  const handshakeTimeoutMs = deps.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const heartbeatTimeoutMs = deps.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS;
  const log = deps.logger;
  const metrics = deps.metrics ?? noopMetrics;
  // Delivery latency needs the MessageSent's time, read from the frame bytes once per item.
  const measureLatency = deps.metrics !== undefined;

  const all = new Set<Connection>();
  const caps = createConnectionCaps(deps.caps ?? DEFAULT_CONNECTION_CAPS);
  const clientAddressOf = createClientAddressOf(deps.trustedProxies ?? []);
  const syncBudget = createSyncBudget(deps.syncRate ?? DEFAULT_SYNC_RATE, clock);
  const hellosPerMinute = deps.hellosPerMinute ?? HELLOS_PER_MINUTE;
  const helloBudget = hellosPerMinute > 0 ? createSyncBudget({ perSecond: hellosPerMinute / 60, burst: hellosPerMinute }, clock) : null;
  // Each index entry keeps the one copy of its id this node holds: a connection's own lists store
  // that copy (add returns it), not the strings its queries returned, so a conversation shared by
  // many connections, or a contact of many users, costs its id once. Its connections are a small
  // array until there are many (members.ts). See BENCHMARKS.md, idle connections.
  type Entry = { id: string; conns: Members<Connection> };
  const byUser = new Map<string, Entry>();
  const byContact = new Map<string, Entry>();
  /** Adds `c` under `key`; returns the node's copy of the key, or undefined when `c` was there already. */
  const add = (index: Map<string, Entry>, key: string, c: Connection): string | undefined => {
    const entry = index.get(key);
    if (entry === undefined) {
      index.set(key, { id: key, conns: [c] });
      return key;
    }
    if (hasMember(entry.conns, c)) return undefined;
    entry.conns = addMember(entry.conns, c);
    return entry.id;
  };
  const remove = (index: Map<string, Entry>, key: string, c: Connection) => {
    const entry = index.get(key);
    if (entry === undefined) return;
    entry.conns = deleteMember(entry.conns, c);
    if (memberCount(entry.conns) === 0) index.delete(key);
  };

  const syncSpread = deps.syncSpread ?? { perConnectionMs: 2, maxMs: 10_000 };
  const feedDeadlineMs = deps.feedDeadlineMs ?? 10_000;
  const syncRequiredSent: Partial<Record<SyncRequiredReason, number>> = {};
  /** Tells every open connection to sync: deliveries to this node may have been lost. */
  const tellAllToSync = (reason: SyncRequiredReason) => {
    const withinMs = Math.min(syncSpread.maxMs, all.size * syncSpread.perConnectionMs);
    let told = 0;
    for (const c of all) {
      if (c.state !== 'open') continue;
      c.syncRequired(reason, withinMs);
      told++;
    }
    syncRequiredSent[reason] = (syncRequiredSent[reason] ?? 0) + told;
    log.info({ reason, connections: told, within_ms: withinMs }, 'ws: told the connections to sync');
  };

  /**
   * The delivery feed, watched through this node's own sends: a MessageSent goes to every member,
   * its sender too, so the envelope of a message sent here comes back here. Per conversation, the
   * highest version sent here and since when it is awaited; an envelope item of the conversation
   * at or past it settles it (version 0), and a settled entry is used again by the conversation's
   * next send (no allocation per message) or dropped by the sweep after SETTLED_WATCH_MS. Costs a
   * map entry per conversation with a send in the last second, and a lookup per delivered item;
   * nothing per connection.
   */
  const awaitingEcho = new Map<string, { version: number; since: number; connection: Connection }>();
  let feedStalled = false;
  let stalledSyncAt = 0;
  const checkFeed = (now: number) => {
    let overdue = 0;
    for (const [conversationId, watch] of awaitingEcho) {
      if (watch.connection.state !== 'open') awaitingEcho.delete(conversationId); // no one left here to deliver it to
      else if (watch.version === 0) {
        if (now - watch.since >= SETTLED_WATCH_MS) awaitingEcho.delete(conversationId); // settled, not used again since
      } else if (now - watch.since >= feedDeadlineMs) overdue++;
    }
    if (overdue === 0) return;
    if (!feedStalled) {
      feedStalled = true;
      log.warn({ overdue, deadline_ms: feedDeadlineMs }, 'ws: delivery feed stalled: messages sent through this node were not delivered back');
    }
    if (now - stalledSyncAt >= feedDeadlineMs) {
      stalledSyncAt = now;
      // The store has what the feed did not bring: the clients sync from it.
      tellAllToSync('delivery_stalled');
    }
  };
  const fedBack = (conversationId: string, version: number, now: number) => {
    const watch = awaitingEcho.get(conversationId);
    if (watch === undefined || watch.version === 0) return;
    if (version >= watch.version) watch.version = 0; // settled
    watch.since = now; // settled at, or: the feed moves for it, only behind
    if (feedStalled) {
      feedStalled = false;
      log.info('ws: delivery feed flowing again');
    }
  };

  const hub: Hub = {
    register(c) {
      add(byUser, c.userId, c);
    },
    unregister(c) {
      remove(byUser, c.userId, c);
      for (const id of c.contacts) remove(byContact, id, c);
    },
    sent(c, conversationId, version) {
      const watch = awaitingEcho.get(conversationId);
      if (watch !== undefined) {
        if (watch.version === 0) {
          watch.since = clock();
          watch.connection = c;
        }
        watch.version = Math.max(watch.version, version);
        return;
      }
      if (awaitingEcho.size < MAX_WATCHED_ECHOES) awaitingEcho.set(conversationId, { version, since: clock(), connection: c });
    },
    addContacts(c, userIds) {
      if (c.state !== 'open') return;
      const added: string[] = [];
      for (const id of userIds) {
        if (id === c.userId) continue;
        const own = add(byContact, id, c);
        if (own !== undefined) added.push(own);
      }
      // concat: one allocation of the exact size (an array grown by push keeps up to half of it empty).
      if (added.length > 0) c.contacts = c.contacts.concat(added);
    },
    authenticate(c, userId) {
      return c.countedAddress === null ? null : caps.authenticate(c.countedAddress, userId);
    },
  };

  const connectionDeps: ConnectionDeps = {
    ...deps,
    hub,
    clock,
    maxBufferedBytes: deps.maxBufferedBytes ?? 4 * 1024 * 1024,
    maxHeldEvents: deps.maxHeldEvents ?? 10_000,
    syncBudget,
    helloBudget,
  };

  // Delivery envelopes for this node's users.
  const offNode = deps.bus.onNodeMessage(deps.nodeId, (payload) => {
    let items: DeliveryItem[];
    try {
      items = decodeDeliveries(payload);
    } catch (error) {
      log.warn({ err: error }, 'ws: undecodable delivery envelope dropped');
      return;
    }
    // Each connection's frames of the envelope, in envelope order, leave in one socket write:
    // under load an envelope carries several events for the same connection.
    const perConnection = new Map<Connection, { item: DeliveryItem; createdAtMs: number | undefined }[]>();
    const receivedAt = awaitingEcho.size > 0 ? clock() : 0;
    for (const item of items) {
      if (receivedAt !== 0) fedBack(item.conversationId, item.version, receivedAt);
      const createdAtMs = measureLatency ? readVarintAtPath(item.frame, MESSAGE_SENT_CREATED_AT_MS) : undefined;
      for (const userId of item.userIds) {
        const conns = byUser.get(userId)?.conns;
        if (conns === undefined) continue;
        for (const c of conns) {
          let list = perConnection.get(c);
          if (list === undefined) perConnection.set(c, (list = []));
          list.push({ item, createdAtMs });
        }
      }
    }
    for (const [c, list] of perConnection) {
      c.together(() => {
        for (const { item, createdAtMs } of list) {
          try {
            c.deliver(item.conversationId, item.version, item.frame, createdAtMs);
          } catch (error) {
            log.error({ err: error }, 'ws: delivery to a connection failed');
          }
        }
      });
    }
  });

  // Presence and typing: every node hears every change; it pushes to its own connections.
  const offSignals = deps.presence.subscribe((change: SignalChange) => {
    try {
      if (change.kind === 'presence') {
        const conns = byContact.get(change.presence.user_id)?.conns;
        if (conns === undefined) return;
        const bytes = encodeServerFrame(presenceFrame(change.presence));
        for (const c of conns) c.sendRaw(bytes, 'presence');
      } else {
        // Addressed: the change names the other members (resolved where it was published).
        let bytes: Uint8Array | undefined;
        for (const userId of change.recipients) {
          if (userId === change.user_id) continue;
          const conns = byUser.get(userId)?.conns;
          if (conns === undefined) continue;
          bytes ??= encodeServerFrame(typingFrame(change, change.is_typing ? TYPING_TTL_MS : 0));
          for (const c of conns) c.sendRaw(bytes, 'typing');
        }
      }
    } catch (error) {
      log.error({ err: error }, 'ws: signal fan-out failed');
    }
  });

  // The bus reconnected: node messages sent to this node meanwhile are lost (at-most-once).
  const offBusReconnect = deps.bus.onReconnect(() => tellAllToSync('bus_reconnected'));
  // The presence store reconnected: it may have lost every entry (a Redis restart), so deliveries
  // found no node for these users meanwhile. Register them again, then have them sync.
  // A flag set before the work starts: with no open connection the work finishes synchronously.
  let reRegistering = false;
  const offPresenceReconnect = deps.presence.onReconnect(() => {
    if (reRegistering) return;
    reRegistering = true;
    void (async () => {
      try {
        const open = [...all].filter((c) => c.state === 'open');
        for (let i = 0; i < open.length; i += 100) await Promise.all(open.slice(i, i + 100).map((c) => c.register()));
        tellAllToSync('presence_reconnected');
      } catch (error) {
        // Down again: its next reconnection runs this again.
        if (isOutage(error)) log.debug({ err: error }, 'ws: registering the connections again failed: the presence store is down');
        else log.error({ err: error }, 'ws: registering the connections again failed');
      } finally {
        reRegistering = false;
      }
    })();
  });

  const sweepIntervalMs = deps.sweepIntervalMs ?? 1000;
  let sweptAt = clock();
  const sweep = setInterval(() => {
    const now = clock();
    // A sweep far behind its interval means this process did not run meanwhile (SIGSTOP, a long
    // pause): frames that came in the meantime are still unread, so no timeout is judged now.
    const resumed = now - sweptAt > 5 * sweepIntervalMs;
    sweptAt = now;
    if (!resumed) {
      for (const c of all) {
        if (c.state === 'closed') continue;
        if (c.state === 'new' && now - c.openedAt > handshakeTimeoutMs) c.closeWith(CloseCode.HANDSHAKE_TIMEOUT, 'handshake_timeout');
        else if (now - c.lastFrameAt > heartbeatTimeoutMs) c.closeWith(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat_timeout');
        else if (c.state === 'open' && Date.now() >= c.expiresAt) c.closeWith(CloseCode.TOKEN_EXPIRED, 'token_expired');
      }
      if (awaitingEcho.size > 0) checkFeed(now);
    }
    syncBudget.sweep();
    helloBudget?.sweep();
    deps.presence.sweep().catch((error: unknown) => {
      if (isOutage(error)) log.debug({ err: error }, 'presence sweep failed: the store is down');
      else log.warn({ err: error }, 'presence sweep failed');
    });
  }, sweepIntervalMs);
  sweep.unref();

  const sessionCheck =
    deps.sessions === undefined
      ? null
      : startSessionCheck({ connections: () => all, sessions: deps.sessions, intervalMs: deps.sessionCheckIntervalMs ?? 10_000, logger: log });

  const app = uWS.App();
  app.ws<UserData>('/ws', {
    maxPayloadLength: TRANSPORT_MAX_PAYLOAD,
    idleTimeout: 0,
    maxBackpressure: 64 * 1024 * 1024,
    sendPingsAutomatically: false,
    upgrade(res, req, context) {
      const query = new URLSearchParams(req.getQuery() ?? '');
      const queryToken = query.get('token') ?? '';
      const address = clientAddressOf(Buffer.from(res.getRemoteAddressAsText()).toString(), req.getHeader('x-forwarded-for'));
      res.upgrade<UserData>(
        { queryToken, address, closed: false, connection: undefined },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open(ws) {
      const data = ws.getUserData();
      const socket = new UwsSocket(ws, data);
      const connection = new Connection(connectionDeps, socket, data.queryToken);
      data.connection = connection;
      all.add(connection);
      metrics.connectionOpened();
      const refused = caps.open(data.address);
      if (refused !== null) connection.closeWith(CloseCode.TOO_MANY_CONNECTIONS, refused.reason, refused.reconnectAfterMs);
      else connection.countedAddress = data.address;
    },
    message(ws, message, isBinary) {
      const c = ws.getUserData().connection;
      if (c === undefined) return;
      c.onMessage(message, isBinary);
    },
    close(ws) {
      const data = ws.getUserData();
      data.closed = true;
      const c = data.connection;
      if (c === undefined) return;
      metrics.connectionClosed();
      all.delete(c);
      if (c.countedAddress !== null) {
        // userId is set exactly when the caps admitted the Hello (connection.ts hello()).
        caps.close(c.countedAddress, c.userId === '' ? null : c.userId);
        c.countedAddress = null;
      }
      try {
        c.onClose();
      } catch (error) {
        log.error({ err: error }, 'ws: close handler failed');
      }
    },
  });

  let listenSocket: uWS.us_listen_socket | null = null;

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (token) => {
          if (!token) {
            reject(new Error(`ws gateway: cannot listen on ${host}:${port}`));
            return;
          }
          listenSocket = token;
          // Deliveries may be routed here once the node subscription reached the transport.
          deps.bus.flush().then(
            () => resolve(uWS.us_socket_local_port(token)),
            (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
          );
        });
      });
    },
    async close() {
      clearInterval(sweep);
      sessionCheck?.stop();
      offNode();
      offSignals();
      offBusReconnect();
      offPresenceReconnect();
      if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
      listenSocket = null;
      for (const c of [...all]) c.closeWith(CloseCode.SHUTDOWN, 'shutdown', 1000);
      // Let the close callbacks run (presence disconnects).
      await new Promise((resolve) => setTimeout(resolve, 20));
    },
    recheckSessions: () => sessionCheck?.now() ?? Promise.resolve(),
    stats: () => ({
      connections: all.size,
      authenticated: [...byUser.values()].reduce((n, entry) => n + memberCount(entry.conns), 0),
      addresses: caps.stats().addresses,
      syncRequired: { ...syncRequiredSent },
      feedStalled,
    }),
  };
}
