import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { ContentType, HEARTBEAT_INTERVAL_MS, PROTOCOL_VERSION, decodeServerFrame, encodeClientFrame, type ClientBody, type ServerFrame } from '../gateways/protocol/index.js';
import { hasFieldAtPath, readStringAtPath, readVarintAtPath } from '../infra/telemetry/frame-time.js';
import { processCpuMs } from './lib/proc.js';

/**
 * WebSocket load generator:
 *
 *   npm run bench:ws -- [--url http://HOST:PORT] --clients N --duration S --rate R --group-size G
 *   npm run bench:ws -- --typing ...        typing latency instead of messages
 *   npm run bench:ws -- --idle N [--idle-conversations K]   N idle connections: server RSS per
 *                                           connection (users in 2K direct conversations each)
 *   npm run bench:ws -- --idle N --idle-users U ...   spread over U users (default 50)
 *   npm run bench:ws -- --idle N --settle S ...   RSS read again after S idle seconds (default 60; 0: no)
 *   npm run bench:ws -- --url ... --server-pid PID   a local server started elsewhere: RSS and CPU from /proc
 *   npm run bench:ws -- --url API --ws-url ws://HOST:PORT/ws --server-pid GATEWAY_PID   split roles
 *   npm run bench:ws -- --url API --ws-url ws://A/ws,ws://B/ws ...   clients spread over gateways in turn
 *
 * Without --url it starts the server (embedded default: PGlite in a temporary data dir) as a child
 * process, which also gives the server's RSS (/proc/<pid>/status). It registers users over REST,
 * opens 1:1 conversations (group size 2) or groups, connects every client over the binary protocol
 * with a lean client on the codec (no SDK bookkeeping, so the bench's own cost stays small), sends
 * at an aggregate rate for a bounded time, and measures send-to-receive latency at each recipient
 * (the send time travels in the content). The last line of output is one JSON object.
 */

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    /** The WebSocket endpoint, when the REST server (--url) is not the gateway (a split deployment). */
    'ws-url': { type: 'string' },
    clients: { type: 'string', default: '50' },
    duration: { type: 'string', default: '5' },
    rate: { type: 'string', default: '500' },
    'group-size': { type: 'string', default: '2' },
    typing: { type: 'boolean', default: false },
    idle: { type: 'string' },
    /** With --idle: each user opens direct conversations with the next N users (so each user is in 2N). */
    'idle-conversations': { type: 'string', default: '0' },
    'idle-users': { type: 'string' },
    /** With --idle: seconds to stay idle (heartbeating) before each settled RSS reading. */
    settle: { type: 'string', default: '60' },
    'drain-ms': { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '8' },
    /** With --url: the server's pid on this machine, to read its RSS and CPU from /proc. */
    'server-pid': { type: 'string' },
  },
  strict: true,
});

const int = (name: string, value: string | undefined, min: number, max: number): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer in ${min}..${max}, got ${value}`);
  return n;
};

const log = (line: string) => process.stderr.write(`${line}\n`);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- server ----

type Server = { baseUrl: string; pid: number | null; stop(): Promise<void> };

async function startServer(): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-ws-'));
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'gateways/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      WS_PORT: '0',
      CHAT_DATA_DIR: dataDir,
      JWT_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '1000000000',
      AUTH_RATE_LIMIT_MAX: '1000000000',
      // The load generator is one address, and --idle puts many devices on each user: no caps.
      WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
      WS_MAX_UNAUTHENTICATED_PER_ADDRESS: '0',
      WS_MAX_CONNECTIONS_PER_USER: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(12_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^REST API:\s+(http:\/\/\S+)/.exec(line);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { baseUrl, pid: child.pid ?? null, stop };
}

/** CPU time (user + system, ms) of the server process so far, from /proc/<pid>/stat. */
function serverCpuMs(server: Server): number | null {
  return server.pid === null ? null : processCpuMs(server.pid);
}

function serverRss(server: Server): number | null {
  if (server.pid === null) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

// ---- REST ----

type User = { user_id: string; token: string };

async function http(baseUrl: string, method: string, path: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  // Every route called here answers with a JSON object.
  if (text.length === 0) throw new Error(`${method} ${path}: ${res.status} with no body`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

async function registerUsers(baseUrl: string, count: number, concurrency: number): Promise<User[]> {
  const run = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const started = now();
  const users = await pool(count, concurrency, async (i) => {
    const username = `b${run}_${i}`;
    const r = await http(baseUrl, 'POST', '/api/v1/auth/register', { username, email: `${username}@bench.test`, password: 'bench-password-1' });
    return { user_id: String(r.user_id), token: String(r.token) };
  });
  log(`registered ${count} users in ${Math.round(now() - started)} ms`);
  return users;
}

// ---- lean protocol client ----

type Lean = { ws: WebSocket; userId: string; send(body: ClientBody): number; close(): void };

/**
 * What the bench needs of a server frame. The three kinds that come at the message rate (SendAck
 * and Ok replies, MessageSent events) are read straight from the bytes by field path
 * (ServerFrame: request_id 1, send_ack 5, ok 6, event 8; Event.message_sent 13; MessageSent:
 * sender_id 2, content 3), so the load generator spends its share of the machine's two cores on
 * sending and receiving rather than on decoding; every other frame is decoded in full.
 */
type BenchFrame =
  | { kind: 'reply'; requestId: number }
  | { kind: 'message'; senderId: string; content: string }
  | { kind: 'frame'; frame: ServerFrame };

function readBenchFrame(data: Uint8Array): BenchFrame | null {
  const requestId = readVarintAtPath(data, [1]) ?? 0;
  if (requestId !== 0 && (hasFieldAtPath(data, [5]) || hasFieldAtPath(data, [6]))) return { kind: 'reply', requestId };
  if (requestId === 0 && hasFieldAtPath(data, [8, 13])) {
    const senderId = readStringAtPath(data, [8, 13, 2]);
    // proto3 leaves an empty content out (a media message)
    const content = readStringAtPath(data, [8, 13, 3]) ?? '';
    if (senderId !== undefined) return { kind: 'message', senderId, content };
  }
  const decoded = decodeServerFrame(data);
  return decoded.ok ? { kind: 'frame', frame: decoded.frame } : null;
}

async function connect(wsUrl: string, user: User, deviceId: string, onFrame: (frame: BenchFrame) => void): Promise<Lean> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  let requestId = 1;
  let welcome = true;
  const welcomed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      if (welcome) {
        const decoded = decodeServerFrame(data);
        if (!decoded.ok || decoded.frame.requestId !== 1) return;
        welcome = false;
        if (decoded.frame.body.case === 'welcome') resolve();
        else reject(new Error(`Hello refused: ${JSON.stringify(decoded.frame.body.value)}`));
        return;
      }
      const frame = readBenchFrame(data);
      if (frame !== null) onFrame(frame);
    });
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed ${code} before Welcome`)));
    ws.once('open', () =>
      ws.send(encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: user.token, protocolVersion: PROTOCOL_VERSION, deviceId, cursors: [] } } })),
    );
  });
  await welcomed;
  ws.removeAllListeners('error');
  ws.on('error', () => {});
  return {
    ws,
    userId: user.user_id,
    send(body) {
      requestId = requestId >= 2 ** 32 - 1 ? 2 : requestId + 1;
      ws.send(encodeClientFrame({ requestId, body }));
      return requestId;
    },
    close: () => ws.close(1000),
  };
}

async function connectAll(
  wsUrl: string,
  users: User[],
  count: number,
  concurrency: number,
  onFrame: (index: number, frame: BenchFrame) => void,
  devicePrefix = 'bench',
  /** Each client as soon as it is connected (before the others are). */
  onConnected: (client: Lean) => void = () => {},
): Promise<Lean[]> {
  const started = now();
  // Several gateways (a comma-separated --ws-url): client i goes to the (i mod n)-th, so the two
  // ends of a 1:1 conversation (clients 2k and 2k+1) sit on different gateways when n is 2.
  const urls = wsUrl.split(',');
  const clients = await pool(count, concurrency, async (i) => {
    const client = await connect(urls[i % urls.length]!, users[i % users.length]!, `${devicePrefix}-${i}`, (f) => onFrame(i, f));
    onConnected(client);
    return client;
  });
  log(`connected ${count} clients in ${Math.round(now() - started)} ms`);
  return clients;
}

// ---- measurements ----

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 100) / 100;
}

class Latencies {
  #values = new Float64Array(1 << 16);
  #n = 0;
  add(ms: number) {
    if (this.#n === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#n++] = ms;
  }
  get count() {
    return this.#n;
  }
  summary() {
    const sorted = this.#values.slice(0, this.#n).sort();
    return { p50_ms: percentile(sorted, 50), p95_ms: percentile(sorted, 95), p99_ms: percentile(sorted, 99) };
  }
}

const clientsSentAt = (n: number) => Array.from({ length: n }, () => new Map<number, number>());

/** Conversations for N users: 1:1 pairs (group size 2) or groups of G (the last one may be smaller). */
async function createConversations(baseUrl: string, users: User[], groupSize: number, concurrency: number): Promise<{ conversationId: string; members: number[] }[]> {
  const groups: number[][] = [];
  for (let i = 0; i < users.length; i += groupSize) groups.push(Array.from({ length: Math.min(groupSize, users.length - i) }, (_, k) => i + k));
  const usable = groups.filter((g) => g.length >= 2);
  return pool(usable.length, concurrency, async (i) => {
    const members = usable[i]!;
    const owner = users[members[0]!]!;
    const others = members.slice(1).map((m) => users[m]!.user_id);
    const r =
      groupSize === 2
        ? await http(baseUrl, 'POST', '/api/v1/conversations', { participant_id: others[0] }, owner.token)
        : await http(baseUrl, 'POST', '/api/v1/groups', { name: `bench ${i}`, member_ids: others }, owner.token);
    return { conversationId: String(r.conversation_id), members };
  });
}

async function runTraffic(server: Server, wsUrl: string, users: User[]) {
  const clientsN = users.length;
  const durationS = int('duration', args.duration, 1, 120);
  const rate = int('rate', args.rate, 1, 1_000_000);
  const groupSize = int('group-size', args['group-size'], 2, 100_000);
  const concurrency = int('concurrency', args.concurrency, 1, 256);
  const typingMode = args.typing === true;
  const conversations = await createConversations(server.baseUrl, users, groupSize, concurrency);
  const conversationOf = new Map<number, { conversationId: string; size: number }>();
  for (const c of conversations) for (const m of c.members) conversationOf.set(m, { conversationId: c.conversationId, size: c.members.length });
  log(`created ${conversations.length} conversations of ${groupSize}`);

  const latencies = new Latencies();
  /** The same latencies by the second (of the run) in which each was sent: shows a start-up transient or a stall. */
  const bySecond: Latencies[] = [];
  const ackBySecond: Latencies[] = [];
  let start = 0;
  /** The second of the run in which a request sent at `at` went out. */
  const secondOf = (at: number) => Math.max(0, Math.floor((at - start) / 1000));
  const record = (at: number, ms: number) => {
    latencies.add(ms);
    (bySecond[secondOf(at)] ??= new Latencies()).add(ms);
  };
  // where the time goes: send -> SendAck (command path: decide, append, commit) vs send -> recipient
  const ackLatencies = new Latencies();
  const requestSentAt = clientsSentAt(users.length);
  let delivered = 0;
  let acked = 0;
  let errors = 0;
  let lastDelivery = 0;
  const typingSentAt = new Map<string, number>();
  const clients = await connectAll(wsUrl, users, clientsN, concurrency, (index, read) => {
    if (read.kind === 'reply') {
      acked++;
      const at = requestSentAt[index]!.get(read.requestId);
      if (at !== undefined) {
        requestSentAt[index]!.delete(read.requestId);
        const ms = now() - at;
        ackLatencies.add(ms);
        (ackBySecond[secondOf(at)] ??= new Latencies()).add(ms);
      }
      return;
    }
    if (read.kind === 'message') {
      if (typingMode || read.senderId === users[index]!.user_id) return;
      const at = Number(read.content.slice(0, read.content.indexOf(' ')));
      const t = now();
      record(at, t - at);
      delivered++;
      lastDelivery = t;
      return;
    }
    const { frame } = read;
    const body = frame.body;
    if (frame.requestId !== 0) {
      if (body.case === 'error') {
        errors++;
        if (errors <= 5) log(`error reply: ${JSON.stringify(body.value)}`);
      }
      return;
    }
    if (typingMode && body.case === 'typing' && body.value.isTyping) {
      const at = typingSentAt.get(`${body.value.conversationId}/${body.value.userId}`);
      if (at === undefined) return;
      const t = now();
      record(at, t - at);
      delivered++;
      lastDelivery = t;
    }
  });
  const senders = clients.map((_, i) => i).filter((i) => conversationOf.has(i));
  if (senders.length === 0) throw new Error('no conversations: use at least 2 clients');
  // typing: the server forwards one signal per second per user and conversation; stay under it
  const effectiveRate = typingMode ? Math.min(rate, Math.floor(senders.length / 1.1)) : rate;
  if (effectiveRate < rate) log(`typing: rate capped to ${effectiveRate}/s (one signal per sender per 1.1 s)`);
  await sleep(300); // let presence snapshots settle

  let sent = 0;
  let expected = 0;
  let next = 0;
  const lastTyping = new Float64Array(clients.length);
  start = now();
  const end = start + durationS * 1000;
  const benchCpuStart = process.cpuUsage();
  // This process's own event-loop delay: a load generator that falls behind adds to the latencies it reports.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const serverCpuStart = serverCpuMs(server);
  const rssSamples: number[] = [];
  const cpuAtSecond: number[] = [];
  while (now() < end) {
    const due = Math.floor(((now() - start) / 1000) * effectiveRate);
    while (sent < due) {
      const i = senders[next++ % senders.length]!;
      const c = conversationOf.get(i)!;
      if (typingMode) {
        if (now() - lastTyping[i]! < 1100) break;
        lastTyping[i] = now();
        typingSentAt.set(`${c.conversationId}/${clients[i]!.userId}`, now());
        clients[i]!.send({ case: 'typing', value: { conversationId: c.conversationId, isTyping: true } });
      } else {
        const requestId = clients[i]!.send({
          case: 'sendMessage',
          value: { conversationId: c.conversationId, clientMessageId: `m${sent}`, content: `${now()} bench payload`, contentType: ContentType.TEXT },
        });
        requestSentAt[i]!.set(requestId, now());
      }
      sent++;
      expected += c.size - 1;
    }
    if (rssSamples.length < (now() - start) / 1000) rssSamples.push(serverRss(server) ?? 0);
    // this process's CPU at each second boundary: a fresh load generator costs more while its code warms up
    if (cpuAtSecond.length <= (now() - start) / 1000) {
      const used = process.cpuUsage(benchCpuStart);
      cpuAtSecond.push(Math.round((used.user + used.system) / 1000));
    }
    await sleep(5);
  }
  const sendEnd = now();
  loopDelay.disable();
  const drainDeadline = sendEnd + int('drain-ms', args['drain-ms'], 0, 60_000);
  while (delivered < expected && now() < drainDeadline) await sleep(20);
  const rss = Math.max(serverRss(server) ?? 0, ...rssSamples) || null;
  const benchCpu = process.cpuUsage(benchCpuStart);
  const serverCpuEnd = serverCpuMs(server);
  const wall = now() - start;
  log(
    `cpu over ${Math.round(wall)} ms: bench ${Math.round((benchCpu.user + benchCpu.system) / 1000)} ms` +
      (serverCpuStart === null || serverCpuEnd === null ? '' : `, server ${Math.round(serverCpuEnd - serverCpuStart)} ms`),
  );
  for (const c of clients) c.close();
  const window = Math.max(sendEnd, lastDelivery) - start;
  if (!typingMode) log(`send -> SendAck: ${JSON.stringify(ackLatencies.summary())} (${ackLatencies.count} acks)`);
  log(`sent ${sent} in ${Math.round(sendEnd - start)} ms, ${acked} acked, ${errors} errors, delivered ${delivered}/${expected}`);
  bySecond.forEach((second, i) => {
    const acks = ackBySecond[i] === undefined ? '' : `, SendAck ${JSON.stringify(ackBySecond[i].summary())}`;
    const cpu = cpuAtSecond[i + 1] === undefined ? '' : `, load generator CPU ${cpuAtSecond[i + 1]! - cpuAtSecond[i]!} ms`;
    log(`second ${i}: ${second.count} delivered, ${JSON.stringify(second.summary())}${acks}${cpu}`);
  });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  log(`load generator event-loop delay while sending: p50 ${ms(loopDelay.percentile(50))} ms, p99 ${ms(loopDelay.percentile(99))} ms, max ${ms(loopDelay.max)} ms`);
  return {
    bench: typingMode ? 'ws-typing' : 'ws',
    clients: clientsN,
    group_size: groupSize,
    sent,
    delivered,
    expected,
    msgs_per_s: Math.round((delivered / window) * 1000),
    ...latencies.summary(),
    server_rss_bytes: rss,
  };
}

async function runIdle(server: Server, wsUrl: string, users: User[], connections: number) {
  const concurrency = int('concurrency', args.concurrency, 1, 256);
  // Warm up first (allocator arenas, JIT, the users' first queries), so the baseline is not inflated
  // by registration (scrypt) garbage; then the delta of the remaining connections is the cost.
  const perUser = int('idle-conversations', args['idle-conversations'], 0, Math.floor((users.length - 1) / 2));
  if (perUser > 0) {
    const pairs: [User, User][] = [];
    for (let i = 0; i < users.length; i++) for (let k = 1; k <= perUser; k++) pairs.push([users[i]!, users[(i + k) % users.length]!]);
    await pool(pairs.length, concurrency, (i) => http(server.baseUrl, 'POST', '/api/v1/conversations', { participant_id: pairs[i]![1].user_id }, pairs[i]![0].token));
    log(`opened ${pairs.length} direct conversations (${2 * perUser} per user)`);
  }
  const warm = Math.max(1, Math.floor(connections / 10));
  const settleS = int('settle', args.settle, 0, 3600);
  // Right after the connects, RSS also holds their garbage (inbox queries, frames) until the
  // collector runs, or not (it may run between the two readings): the "at connect" reading is
  // noisy by several KB per connection. The settled reading is taken after the connections have
  // been idle for --settle seconds, heartbeating as clients do, once V8 has had the time to
  // collect: the median of the last third of one-per-second samples.
  const sample = async () => {
    const values: number[] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(500);
      values.push(serverRss(server) ?? Number.NaN);
    }
    const sorted = values.sort((a, b) => a - b);
    return Number.isNaN(sorted[1]!) ? null : sorted[1]!;
  };
  const settled = async (): Promise<number | null> => {
    const values: number[] = [];
    for (let i = 0; i < settleS; i++) {
      await sleep(1000);
      values.push(serverRss(server) ?? Number.NaN);
    }
    const tail = values.slice(-Math.max(1, Math.floor(values.length / 3))).sort((a, b) => a - b);
    const median = tail[Math.floor((tail.length - 1) / 2)];
    return median === undefined || Number.isNaN(median) ? null : median;
  };
  // Heartbeats (a Ping per client every HEARTBEAT_INTERVAL_MS, spread over the interval), so no
  // connection is closed for silence while the bench waits. Clients join the round as each one
  // connects: a connect phase longer than the server's silence limit (60 s) must not leave its
  // first clients without a ping until the last one is in.
  const open: Lean[] = [];
  let closedByServer = 0;
  let beatAt = 0;
  const beat = setInterval(() => {
    const n = Math.ceil(open.length / (HEARTBEAT_INTERVAL_MS / 1000));
    for (let k = 0; k < n && open.length > 0; k++) {
      // Walk the list and wrap only at its end: `beatAt % open.length` jumped whenever the list
      // grew, skipping clients for up to a whole round (the server closes after 60 s of silence).
      if (beatAt >= open.length) beatAt = 0;
      const c = open[beatAt++]!;
      if (c.ws.readyState === WebSocket.OPEN) c.send({ case: 'ping', value: { clientTimeMs: Date.now() } });
    }
  }, 1000);
  const track = (clients: Lean[]) => {
    for (const c of clients) {
      open.push(c);
      c.ws.once('close', () => closedByServer++);
    }
  };
  try {
    await connectAll(wsUrl, users, warm, concurrency, () => {}, 'bench', (c) => track([c]));
    const before = await sample();
    const beforeSettled = settleS > 0 ? await settled() : null;
    const rest = connections > warm ? await connectAll(wsUrl, users.slice(warm % users.length).concat(users), connections - warm, concurrency, () => {}, 'idle', (c) => track([c])) : [];
    const after = await sample();
    const afterSettled = settleS > 0 ? await settled() : null;
    const closed = closedByServer;
    for (const c of open) c.close();
    const perConnection = (a: number | null, b: number | null) => (a === null || b === null || rest.length === 0 ? null : Math.round((b - a) / rest.length));
    return {
      bench: 'ws-idle',
      connections,
      users: users.length,
      conversations_per_user: 2 * perUser,
      settle_s: settleS,
      closed_by_server: closed,
      server_rss_before_bytes: settleS > 0 ? beforeSettled : before,
      server_rss_bytes: settleS > 0 ? afterSettled : after,
      rss_per_connection_bytes: settleS > 0 ? perConnection(beforeSettled, afterSettled) : perConnection(before, after),
      rss_per_connection_at_connect_bytes: perConnection(before, after),
    };
  } finally {
    clearInterval(beat);
  }
}

async function main() {
  const server: Server =
    args.url === undefined
      ? await startServer()
      : { baseUrl: args.url.replace(/\/+$/, ''), pid: args['server-pid'] === undefined ? null : int('server-pid', args['server-pid'], 1, 2 ** 22), stop: async () => {} };
  if (server.pid === null) log('server RSS: not measured (the bench did not start the server and no --server-pid was given)');
  try {
    const concurrency = int('concurrency', args.concurrency, 1, 256);
    const idle = args.idle === undefined ? null : int('idle', args.idle, 1, 100_000);
    // Idle connections share a few users (50 by default, each with many devices) unless
    // --idle-users says how many: with as many users as connections, every connection also
    // carries its user's own state (conversations, contacts) on the gateway.
    const userCount =
      idle === null ? int('clients', args.clients, 2, 100_000) : args['idle-users'] === undefined ? Math.min(idle, 50) : int('idle-users', args['idle-users'], 2, idle);
    const users = await registerUsers(server.baseUrl, userCount, concurrency);
    const { websocket_url } = args['ws-url'] !== undefined ? { websocket_url: args['ws-url'] } : await http(server.baseUrl, 'GET', '/api/v1/realtime', undefined, users[0]!.token);
    if (typeof websocket_url !== 'string') throw new Error('the server has no WebSocket endpoint');
    const result = idle === null ? await runTraffic(server, websocket_url, users) : await runIdle(server, websocket_url, users, idle);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench-ws failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
