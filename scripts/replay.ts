/**
 * Replay and export the event log (README, "Replay and export"):
 *
 *   npm run replay -- [--conversation ID] [--type MessageSent,Read] [--from-position P | S:P,...]
 *                     [--since ISO] [--until ISO] [--format ndjson|csv] [--out FILE] [--progress] [--raw]
 *   npm run replay -- --conversation ID --at-version V
 *
 * Order: shard by shard (0, 1, ...), each shard in log (position) order; a conversation lives in
 * one shard, so its events come in version order. The export covers what was committed when it
 * started. Events are upcast to the current schema (domain/conversation/upcast.ts) unless --raw.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { conversationStreamId } from '../commands/ids.js';
import { CONVERSATION_EVENT_TYPES, Id } from '../domain/conversation/events.js';
import { evolve, initialState, type ConversationState } from '../domain/conversation/state.js';
import { parseConversationEvent, upcast } from '../domain/conversation/upcast.js';
import type { EventStore, StoredEvent } from '../domain/ports/event-store.js';
import { CliError, instantOption, integerOption, parseCommandLine, runCli, UsageError } from './lib/cli.js';
import { csvRow } from './lib/csv.js';
import { openStoreLikeTheServer } from './lib/open-store.js';
import { openOutput, type Output } from './lib/output.js';
import { createProgress, type Progress } from './lib/progress.js';
import { stateToJson } from './lib/state-json.js';

const USAGE = `usage:
  npm run replay -- [--conversation ID] [--type T1,T2] [--from-position P | S:P,...] [--since ISO] [--until ISO]
                    [--format ndjson|csv] [--out FILE] [--progress] [--raw]
  npm run replay -- --conversation ID --at-version V
event types: ${CONVERSATION_EVENT_TYPES.join(', ')}
`;

const PAGE = 1000;
const CSV_COLUMNS = ['position', 'shard', 'stream_id', 'version', 'type', 'event_id', 'created_at', 'data'] as const;

export type ReplayOptions = {
  conversation: string | null;
  types: string[] | null;
  /** Per shard: the first position exported (a single P applies to every shard). */
  fromPosition: { all: number } | { perShard: Map<number, number> };
  since: number | null;
  until: number | null;
  format: 'ndjson' | 'csv';
  out: string | undefined;
  progress: boolean;
  raw: boolean;
  atVersion: number | null;
};

export function parseReplayArgs(argv: string[]): ReplayOptions {
  const { values } = parseCommandLine(argv, {
    conversation: { type: 'string' },
    type: { type: 'string' },
    'from-position': { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    progress: { type: 'boolean' },
    raw: { type: 'boolean' },
    'at-version': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) throw new UsageError('help');

  let conversation: string | null = null;
  if (values.conversation !== undefined) {
    if (!Id.safeParse(values.conversation).success) throw new UsageError(`--conversation must be a conversation id (1 to 64 characters), got ${JSON.stringify(values.conversation)}`);
    conversation = values.conversation;
  }
  let types: string[] | null = null;
  if (values.type !== undefined) {
    types = values.type.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const unknown = types.filter((t) => !(CONVERSATION_EVENT_TYPES as string[]).includes(t));
    if (types.length === 0 || unknown.length > 0) {
      throw new UsageError(`--type: unknown event type ${JSON.stringify(unknown[0] ?? values.type)}; expected a comma-separated list of ${CONVERSATION_EVENT_TYPES.join(', ')}`);
    }
  }
  let fromPosition: ReplayOptions['fromPosition'] = { all: 0 };
  const rawFrom = values['from-position'];
  if (rawFrom !== undefined) {
    if (rawFrom.includes(':')) {
      const perShard = new Map<number, number>();
      for (const part of rawFrom.split(',')) {
        const [s = '', p = ''] = part.split(':');
        const shard = integerOption('from-position (shard)', s);
        if (perShard.has(shard)) throw new UsageError(`--from-position names shard ${shard} twice`);
        perShard.set(shard, integerOption('from-position', p));
      }
      fromPosition = { perShard };
    } else fromPosition = { all: integerOption('from-position', rawFrom) };
  }
  const since = values.since === undefined ? null : instantOption('since', values.since);
  const until = values.until === undefined ? null : instantOption('until', values.until);
  if (since !== null && until !== null && until <= since) throw new UsageError('--until must be later than --since');
  const format = values.format ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw new UsageError(`--format must be ndjson or csv, got ${JSON.stringify(format)}`);
  if (values.out !== undefined && values.out.trim() === '') throw new UsageError('--out needs a file name');

  let atVersion: number | null = null;
  if (values['at-version'] !== undefined) {
    atVersion = integerOption('at-version', values['at-version'], 1);
    if (conversation === null) throw new UsageError('--at-version needs --conversation ID');
    const clashing = ['type', 'from-position', 'since', 'until', 'format', 'raw'].filter((k) => values[k as keyof typeof values] !== undefined);
    if (clashing.length > 0) throw new UsageError(`--at-version prints a state, it cannot be combined with --${clashing[0]}`);
  }
  return { conversation, types, fromPosition, since, until, format, out: values.out, progress: values.progress ?? false, raw: values.raw ?? false, atVersion };
}

/** The exported form of one event: the stored fields analysts need, data at the current schema (or raw). */
export function exportRecord(event: StoredEvent, raw: boolean) {
  const data = raw ? event.data : upcast(event).data;
  return {
    position: event.position,
    shard: event.shard,
    stream_id: event.stream_id,
    version: event.version,
    type: event.type,
    event_id: event.event_id,
    created_at: event.created_at,
    data,
  };
}

function firstPosition(options: ReplayOptions, shard: number): number {
  return 'all' in options.fromPosition ? options.fromPosition.all : (options.fromPosition.perShard.get(shard) ?? 0);
}

function matches(event: StoredEvent, options: ReplayOptions, from: number): boolean {
  if (event.position < from) return false;
  if (options.types !== null && !options.types.includes(event.type)) return false;
  if (options.since !== null || options.until !== null) {
    const at = Date.parse(event.created_at);
    if (options.since !== null && at < options.since) return false;
    if (options.until !== null && at >= options.until) return false;
  }
  return true;
}

/** Events to export, page by page, in the documented order, up to what was committed at the start. */
async function* source(store: EventStore, options: ReplayOptions, onTotal: (n: number) => void): AsyncGenerator<{ scanned: number; events: StoredEvent[] }> {
  if (options.conversation !== null) {
    const streamId = conversationStreamId(options.conversation);
    const end = await store.streamVersion(streamId);
    if (end === 0) throw new CliError(`conversation ${options.conversation} does not exist`);
    const from = firstPosition(options, store.shardOf(streamId));
    onTotal(end);
    for (let version = 1; version <= end; ) {
      const page = await store.readStream(streamId, { from: version, maxCount: Math.min(PAGE, end - version + 1) });
      if (page.length === 0) break;
      version = page[page.length - 1]!.version + 1;
      yield { scanned: page.length, events: page.filter((e) => matches(e, options, from)) };
    }
    return;
  }
  if ('perShard' in options.fromPosition) {
    for (const shard of options.fromPosition.perShard.keys()) {
      if (shard >= store.shardCount) throw new CliError(`--from-position names shard ${shard}, but the store has ${store.shardCount} shard(s) (0..${store.shardCount - 1})`);
    }
  }
  const heads = await Promise.all(Array.from({ length: store.shardCount }, (_, shard) => store.headPosition(shard)));
  onTotal(heads.reduce((sum, head, shard) => sum + Math.max(0, head - Math.max(0, firstPosition(options, shard) - 1)), 0));
  for (let shard = 0; shard < store.shardCount; shard++) {
    const from = firstPosition(options, shard);
    const head = heads[shard]!;
    for (let after = Math.max(0, from - 1); after < head; ) {
      const page = await store.readLog(shard, { after, maxCount: Math.min(PAGE, head - after) });
      if (page.length === 0) break;
      after = page[page.length - 1]!.position;
      yield { scanned: page.length, events: page.filter((e) => matches(e, options, from)) };
    }
  }
}

async function exportEvents(store: EventStore, options: ReplayOptions, out: Output): Promise<number> {
  const bar: { progress: Progress | null } = { progress: null };
  const startProgress = (total: number) => (bar.progress = createProgress({ label: 'replay', total, unit: 'events read', enabled: options.progress || process.stderr.isTTY === true }));
  let written = 0;
  if (options.format === 'csv') await out.write(csvRow([...CSV_COLUMNS]));
  for await (const { scanned, events: page } of source(store, options, startProgress)) {
    let chunk = '';
    for (const event of page) {
      const record = exportRecord(event, options.raw);
      chunk +=
        options.format === 'csv'
          ? csvRow(CSV_COLUMNS.map((c) => (c === 'data' ? JSON.stringify(record.data) : record[c])))
          : `${JSON.stringify(record)}\n`;
    }
    written += page.length;
    if (chunk !== '') await out.write(chunk);
    bar.progress?.add(scanned);
    if (out.closed) break;
  }
  bar.progress?.done();
  return written;
}

/** The conversation's state after exactly `version` events: a fold of events 1..version from the initial state. */
export async function stateAtVersion(store: EventStore, conversationId: string, version: number): Promise<ConversationState> {
  const streamId = conversationStreamId(conversationId);
  const end = await store.streamVersion(streamId);
  if (end === 0) throw new CliError(`conversation ${conversationId} does not exist`);
  if (version > end) throw new CliError(`--at-version ${version} is beyond the end of conversation ${conversationId} (its stream has ${end} event${end === 1 ? '' : 's'})`);
  let state = initialState();
  for (let from = 1; from <= version; ) {
    const page = await store.readStream(streamId, { from, maxCount: Math.min(PAGE, version - from + 1) });
    if (page.length === 0) break;
    for (const event of page) state = evolve(state, parseConversationEvent(event), event.version);
    from = page[page.length - 1]!.version + 1;
  }
  if (state.version !== version) throw new CliError(`conversation ${conversationId}: read ${state.version} events, expected ${version}`);
  return state;
}

async function main(): Promise<void> {
  const options = parseReplayArgs(process.argv.slice(2));
  const opened = await openStoreLikeTheServer('replay');
  const stop = () => {
    void opened.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (options.atVersion !== null) {
      const state = await stateAtVersion(opened.store, options.conversation!, options.atVersion);
      const out = await openOutput(options.out);
      await out.write(`${JSON.stringify(stateToJson(state), null, 2)}\n`);
      await out.end();
      return;
    }
    const out = await openOutput(options.out);
    const written = await exportEvents(opened.store, options, out);
    await out.end();
    if (options.progress || process.stderr.isTTY) process.stderr.write(`replay: ${written.toLocaleString('en-US')} events\n`);
  } finally {
    await opened.close();
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) await runCli('replay', USAGE, async () => {
  try {
    await main();
  } catch (error) {
    if (error instanceof UsageError && error.message === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    throw error;
  }
});
