/**
 * npm run bench:state [-- --messages N]
 *
 * Memory per message of history in the two folds that processes cache per conversation: the
 * command side's ConversationState (the stream worker keeps up to 10,000) and the delivery
 * worker's fold (recipients.ts, up to 10,000). Folds N MessageSent events parsed from JSON, as
 * they come from the store, into one conversation, and prints the live heap they added per message
 * (after a full collection) as one JSON line per fold: with a client_message_id on every message
 * (what the SDK sends) and without; then the command-side state's memory per reaction (two users
 * reacting once, then twice, to every message).
 *
 * Runs with --expose-gc (package.json); a heap figure needs the collector to have run.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { evolve, initialState, type ConversationState } from '../domain/conversation/state.js';
import { parseConversationEvent } from '../domain/conversation/upcast.js';
import { emptyTracked, routeAndFold } from '../domain/conversation/recipients.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '100000' } } });
const messages = Number(values.messages);
if (!Number.isSafeInteger(messages) || messages < 1) {
  process.stderr.write(`bench:state: --messages must be a positive integer, got ${values.messages}\n`);
  process.exit(2);
}
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) {
  process.stderr.write('bench:state: run with node --expose-gc (npm run bench:state does)\n');
  process.exit(2);
}

const alice = randomUUID();
const bob = randomUUID();
const created = { conversation_id: randomUUID(), kind: 'direct', created_by: alice, members: [alice, bob], name: null, description: null, created_at: new Date().toISOString() };

/** An event as a process gets it from the store or the bus: JSON text, parsed. */
function stored(version: number, type: string, data: unknown) {
  return JSON.parse(JSON.stringify({ event_id: randomUUID(), type, data, metadata: {}, stream_id: 'conversation-x', version, shard: 0, position: version, created_at: new Date().toISOString() })) as {
    type: string;
    data: unknown;
    version: number;
  };
}

function sent(version: number, withClientId: boolean) {
  const data = { message_id: randomUUID(), sender_id: version % 2 ? alice : bob, content: 'hello', content_type: 'text', media: null, client_message_id: withClientId ? randomUUID() : null, created_at: new Date().toISOString() };
  return stored(version, 'MessageSent', data);
}

function heapAfter(build: () => unknown): { bytes: number; kept: unknown } {
  collect!();
  const before = process.memoryUsage().heapUsed;
  const kept = build();
  collect!();
  return { bytes: process.memoryUsage().heapUsed - before, kept };
}

const results: unknown[] = [];
for (const withClientId of [true, false]) {
  const state = heapAfter(() => {
    let s: ConversationState = evolve(initialState(), parseConversationEvent(stored(1, 'ConversationCreated', created)), 1);
    for (let v = 2; v <= messages + 1; v++) s = evolve(s, parseConversationEvent(sent(v, withClientId)), v);
    return s;
  });
  const fold = heapAfter(() => {
    const t = emptyTracked('x');
    routeAndFold(t, stored(1, 'ConversationCreated', created));
    for (let v = 2; v <= messages + 1; v++) routeAndFold(t, sent(v, withClientId));
    return t;
  });
  results.push(state.kept, fold.kept);
  for (const [fold_, r] of [['conversation-state', state], ['delivery-fold', fold]] as const) {
    process.stdout.write(`${JSON.stringify({ bench: 'state', fold: fold_, client_message_ids: withClientId, messages, bytes_per_message: Math.round(r.bytes / messages) })}\n`);
  }
}
// Reactions: alice and bob each put 1 (then 2) emoji on every message of a conversation; the
// command-side state keeps each user's emojis per message (the decider's cap needs the count).
for (const perUser of [1, 2]) {
  let s: ConversationState = evolve(initialState(), parseConversationEvent(stored(1, 'ConversationCreated', created)), 1);
  const sends = Array.from({ length: messages }, (_, i) => sent(i + 2, false));
  for (const e of sends) s = evolve(s, parseConversationEvent(e), e.version);
  let version = messages + 1;
  const reactions = heapAfter(() => {
    for (const e of sends) {
      const messageId = (e.data as { message_id: string }).message_id;
      for (const user of [alice, bob]) {
        for (const emoji of ['👍', '❤️'].slice(0, perUser)) {
          version++;
          s = evolve(s, parseConversationEvent(stored(version, 'ReactionAdded', { message_id: messageId, message_version: e.version, user_id: user, emoji, at: new Date().toISOString() })), version);
        }
      }
    }
    return s;
  });
  results.push(reactions.kept);
  const count = messages * 2 * perUser;
  process.stdout.write(`${JSON.stringify({ bench: 'state', fold: 'conversation-state', reactions: count, reactions_per_user_and_message: perUser, bytes_per_reaction: Math.round(reactions.bytes / count) })}\n`);
}
// Keep every fold reachable until the end, so no measurement is collected under another.
if (results.length === 0) process.exit(1);
