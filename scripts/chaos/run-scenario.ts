import pg from 'pg';
import { checkScenario, type ConversationObservation, type MessageCopy } from './check.js';
import { copies, restGet, startLoad, type ChaosConversation, type Load } from './load.js';
import type { Scenario } from './scenarios.js';
import { startTopology, type PrivateServices, type Topology } from './topology.js';
import { conversationIdOf } from '../../domain/conversation/stream.js';

/**
 * One scenario from start to verdict: a fresh topology, the clients, sending for BEFORE_MS, the
 * fault, sending for AFTER_MS after its end, then quiescence (bounded waits: every send
 * acknowledged, every acknowledged message at every member, in history) and the check.
 *
 * recovery_ms: from the fault's end (the process ready again, the dependency started again, or
 * SIGCONT) to the moment the first message sent at or after it was at every member's client.
 */

export type ScenarioResult = {
  scenario: string;
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  out_of_order: number;
  recovery_ms: number | null;
  processes_alive: boolean;
  sent: number;
  unacked: number;
  mismatched: number;
  lost_in: { store: number; history: number; clients: number };
  reconnects: number;
  forced_reconnects: number;
  fault_ms: number;
  duration_ms: number;
  passed: boolean;
  failures: string[];
  logs?: string;
};

export type RunOptions = {
  services: PrivateServices;
  logDir: string;
  users: number;
  ratePerClient: number;
  beforeMs: number;
  afterMs: number;
  log: (line: string) => void;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** The MessageSent rows of the scenario's conversations, read from every shard's events table. */
async function readStore(databaseUrls: readonly string[], conversationIds: readonly string[]): Promise<Map<string, MessageCopy[]>> {
  const byConversation = new Map<string, MessageCopy[]>(conversationIds.map((id) => [id, []]));
  for (const url of databaseUrls) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ stream_id: string; version: number; cmid: string | null }>(
        `select stream_id, version, data->>'client_message_id' as cmid from events
          where type = 'MessageSent' and stream_id = any($1::text[]) order by stream_id, version`,
        [conversationIds.map((id) => `conversation-${id}`)],
      );
      for (const row of rows) byConversation.get(conversationIdOf(row.stream_id) ?? '')?.push({ clientMessageId: row.cmid, version: row.version });
    } finally {
      await client.end();
    }
  }
  return byConversation;
}

type HistoryPage = { messages: { sequence_number: number; client_message_id: string | null }[]; has_more: boolean };

/** REST history of a conversation, every page (as its first member reads it). */
async function readHistory(restUrl: string, conversation: ChaosConversation): Promise<MessageCopy[]> {
  const token = conversation.members[0]!.token;
  const all: MessageCopy[] = [];
  let before: number | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query: string = before === null ? 'limit=200' : `limit=200&before=${before}`;
    const body: HistoryPage = await restGet<HistoryPage>(restUrl, `/api/v1/conversations/${conversation.conversationId}/messages?${query}`, token);
    for (const m of body.messages) all.push({ clientMessageId: m.client_message_id, version: m.sequence_number });
    if (!body.has_more || body.messages.length === 0) break;
    before = Math.min(...body.messages.map((m) => m.sequence_number));
  }
  return all.sort((a, b) => a.version - b.version);
}

function ackedBy(load: Load, conversationId: string): MessageCopy[] {
  return load.sends().flatMap((s) => (s.conversationId === conversationId && s.ack !== null ? [{ clientMessageId: s.clientMessageId, version: s.ack.sequenceNumber }] : []));
}

function everyAckedDelivered(load: Load): boolean {
  for (const c of load.conversations) {
    const acked = ackedBy(load, c.conversationId);
    for (const member of c.members) {
      const got = new Set(load.received(member.userId, c.conversationId).map((r) => r.clientMessageId));
      if (acked.some((a) => !got.has(a.clientMessageId))) return false;
    }
  }
  return true;
}

function recoveryMs(load: Load, faultEndMs: number): number | null {
  const first = load
    .sends()
    .filter((s) => s.sentAtMs >= faultEndMs && s.ack !== null)
    .sort((a, b) => a.sentAtMs - b.sentAtMs)[0];
  if (first === undefined) return null;
  const conversation = load.conversations.find((c) => c.conversationId === first.conversationId)!;
  let last = 0;
  for (const member of conversation.members) {
    const got = load.received(member.userId, first.conversationId).find((r) => r.clientMessageId === first.clientMessageId);
    if (got === undefined) return null;
    last = Math.max(last, got.atMs);
  }
  return last - faultEndMs;
}

export async function runScenario(scenario: Scenario, o: RunOptions): Promise<ScenarioResult> {
  const startedMs = Date.now();
  const where: { logDir?: string } = {};
  const result = await runScenarioOnce(scenario, o, where);
  return { ...result, duration_ms: Date.now() - startedMs, ...(result.passed || where.logDir === undefined ? {} : { logs: where.logDir }) };
}

async function runScenarioOnce(scenario: Scenario, o: RunOptions, where: { logDir?: string }): Promise<ScenarioResult> {
  const startedMs = Date.now();
  const failures: string[] = [];
  let topology: Topology | null = null;
  let load: Load | null = null;
  let faultMs = 0;
  let recovery: number | null = null;
  try {
    topology = await startTopology({ services: o.services, scenario: scenario.name, logDir: o.logDir });
    where.logDir = topology.logDir;
    o.log(`${scenario.name}: topology ready in ${Date.now() - startedMs} ms (logs: ${topology.logDir})`);
    load = await startLoad({ restUrl: topology.restUrl, wsUrls: [topology.wsUrls['gateway-a'], topology.wsUrls['gateway-b']], users: o.users, ratePerClient: o.ratePerClient, maxPendingPerClient: 50 });
    o.log(`${scenario.name}: ${load.users.length} clients in ${load.conversations.length} conversations`);
    load.startSending();
    await sleep(o.beforeMs);
    const faultStart = Date.now();
    const t = topology;
    const l = load;
    let bound: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        scenario.inject({ topology: t, services: o.services, load: l, log: (line) => o.log(`${scenario.name}: ${line}`) }),
        new Promise<never>((_, fail) => (bound = setTimeout(() => fail(new Error('the fault did not end within 180 s')), 180_000))),
      ]);
    } finally {
      clearTimeout(bound);
    }
    const faultEnd = Date.now();
    faultMs = faultEnd - faultStart;
    o.log(`${scenario.name}: fault over after ${faultMs} ms`);
    await sleep(o.afterMs);
    await load.stopSending();

    // Quiescence, bounded.
    if (!(await until(() => l.pending() === 0, 60_000))) failures.push(`${l.pending()} sends still unacknowledged 60 s after sending stopped`);
    if (!(await until(() => everyAckedDelivered(l), 60_000))) failures.push('not every acknowledged message reached every member within 60 s');
    const historyComplete = async () => {
      for (const c of l.conversations) {
        const listed = new Set((await readHistory(t.restUrl, c).catch(() => [])).map((m) => m.clientMessageId));
        if (ackedBy(l, c.conversationId).some((a) => !listed.has(a.clientMessageId))) return false;
      }
      return true;
    };
    if (!(await until(historyComplete, 30_000, 1_000))) failures.push('REST history did not list every acknowledged message within 30 s');
    recovery = recoveryMs(load, faultEnd);
    if (recovery === null) failures.push('no message sent after the fault reached every member');

    const conversationIds = load.conversations.map((c) => c.conversationId);
    const stored = await readStore(topology.databaseUrls, conversationIds);
    const observations: ConversationObservation[] = [];
    for (const c of load.conversations) {
      observations.push({
        conversationId: c.conversationId,
        members: c.members.map((m) => m.userId),
        acked: ackedBy(load, c.conversationId),
        stored: stored.get(c.conversationId) ?? [],
        history: await readHistory(topology.restUrl, c).catch((error: unknown) => {
          failures.push(`history of ${c.conversationId}: ${error instanceof Error ? error.message : String(error)}`);
          return [];
        }),
        received: Object.fromEntries(c.members.map((m) => [m.userId, copies(l.received(m.userId, c.conversationId))])),
      });
    }
    const verdict = checkScenario(observations);
    failures.push(...verdict.problems);
    const erred = load.sends().filter((s) => s.error !== null);
    if (erred.length > 0) failures.push(`${erred.length} sends failed, e.g. ${erred[0]!.error}`);
    const allowed = new Set(scenario.gateways.map((g) => (g === 'gateway-a' ? t.wsUrls['gateway-a'] : g === 'gateway-b' ? t.wsUrls['gateway-b'] : g)));
    const forced = load.disconnects().filter((d) => !allowed.has(d.gateway) || d.atMs < faultStart);
    if (forced.length > 0) failures.push(`${forced.length} disconnects of clients whose gateway the fault did not hit (codes ${[...new Set(forced.map((d) => d.code))].join(',')})`);
    const notOpen = load.notOpen();
    if (notOpen.length > 0) failures.push(`${notOpen.length} clients not connected at the end`);
    const exits = topology.unexpectedExits();
    for (const e of exits) failures.push(`${e.role} exited by itself (code ${e.code}, signal ${e.signal})`);
    const alive = topology.allAlive() && exits.length === 0;
    if (!alive && exits.length === 0) failures.push('a role process is not running');
    const result: ScenarioResult = {
      scenario: scenario.name,
      acked: verdict.acked,
      stored: verdict.stored,
      lost: verdict.lost,
      duplicated: verdict.duplicated,
      out_of_order: verdict.out_of_order,
      recovery_ms: recovery,
      processes_alive: alive,
      sent: load.sends().length,
      unacked: load.pending(),
      mismatched: verdict.mismatched,
      lost_in: verdict.lost_in,
      reconnects: load.disconnects().length,
      forced_reconnects: forced.length,
      fault_ms: faultMs,
      duration_ms: 0,
      passed: failures.length === 0,
      failures,
    };
    return result;
  } catch (error) {
    failures.push(`scenario aborted: ${error instanceof Error ? error.message : String(error)}`);
    return {
      scenario: scenario.name,
      acked: 0,
      stored: 0,
      lost: 0,
      duplicated: 0,
      out_of_order: 0,
      recovery_ms: recovery,
      processes_alive: topology?.allAlive() ?? false,
      sent: load?.sends().length ?? 0,
      unacked: load?.pending() ?? 0,
      mismatched: 0,
      lost_in: { store: 0, history: 0, clients: 0 },
      reconnects: load?.disconnects().length ?? 0,
      forced_reconnects: 0,
      fault_ms: faultMs,
      duration_ms: 0,
      passed: false,
      failures,
    };
  } finally {
    await load?.close();
    await topology?.close();
  }
}
