/**
 * Operate the read models (README, "Replay and export"):
 *
 *   npm run projections -- list [--json]
 *   npm run projections -- status [NAME] [--json]
 *   npm run projections -- rebuild NAME [--batch-size N (default 2000)] [--progress]
 *
 * The projections are the server's own list (projections/runtime/registry.ts); the store is opened as the
 * server opens it (DATABASE_URL, else the embedded database in CHAT_DATA_DIR, which must not be in
 * use by a running server). `rebuild` empties the read model, replays every shard's log from
 * position 0 with a progress bar on stderr, and prints one JSON line on stdout:
 * {"projection":NAME,"events":N,"seconds":S,"events_per_s":R}.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { searchIndexFromConfig } from '../gateways/compose/search.js';
import { createProjections } from '../projections/runtime/registry.js';
import { createProjector } from '../projections/runtime/runtime.js';
import { integerOption, parseCommandLine, runCli, UsageError } from './lib/cli.js';
import { openStoreLikeTheServer } from './lib/open-store.js';
import { createProgress } from './lib/progress.js';
import { conversationEvents } from '../projections/runtime/decode.js';

const USAGE = `usage:
  npm run projections -- list [--json]
  npm run projections -- status [NAME] [--json]
  npm run projections -- rebuild NAME [--batch-size N] [--progress]
`;

const COMMANDS = ['list', 'status', 'rebuild'] as const;
/** Events per batch transaction of a rebuild: larger than the live projector's, as a rebuild is all backlog (BENCHMARKS.md). */
const REBUILD_BATCH_SIZE = 2000;

function parse(argv: string[]) {
  const { values, positionals } = parseCommandLine(
    argv,
    { json: { type: 'boolean' }, 'batch-size': { type: 'string' }, progress: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) return { command: 'help' as const };
  const [command, name, ...rest] = positionals;
  if (command === undefined) throw new UsageError('a command is needed: list, status or rebuild');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}; expected list, status or rebuild`);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (name !== undefined && command === 'list') throw new UsageError(`list takes no projection name (got ${JSON.stringify(name)})`);
  if (command !== 'rebuild' && (values['batch-size'] !== undefined || values.progress)) throw new UsageError('--batch-size and --progress go with rebuild');
  if (command === 'rebuild' && values.json) throw new UsageError('rebuild always prints its JSON line on stdout; --json goes with list and status');
  const batchSize = values['batch-size'] === undefined ? REBUILD_BATCH_SIZE : integerOption('batch-size', values['batch-size'], 1);
  if (batchSize > 100_000) throw new UsageError(`--batch-size must be at most 100000, got ${batchSize}`);
  return { command: command as (typeof COMMANDS)[number], name, json: values.json ?? false, batchSize, progress: values.progress ?? false };
}

const pad = (rows: string[][]) => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
};

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const opened = await openStoreLikeTheServer('projections');
  const stop = () => {
    void opened.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // The server's projections with the server's ports (gateways/compose/process.ts builds them the same way).
  const searchIndex = searchIndexFromConfig(opened.config, opened.databases[0]!);
  try {
    const projections = createProjections({ searchIndex });
    const names = projections.map((p) => p.name);
    if (args.command === 'rebuild' && args.name === undefined) throw new UsageError(`rebuild needs a projection name: ${names.join(', ')}`);
    if (args.name !== undefined && !names.includes(args.name)) throw new UsageError(`unknown projection ${JSON.stringify(args.name)}; known: ${names.join(', ')}`);
    if (args.command === 'list') {
      if (args.json) for (const p of projections) process.stdout.write(`${JSON.stringify({ projection: p.name, tables: p.tables })}\n`);
      else process.stdout.write(pad([['projection', 'tables'], ...projections.map((p) => [p.name, p.tables.join(', ')])]));
      return;
    }
    await searchIndex.setup();
    const projector = createProjector({ decode: conversationEvents, store: opened.store, db: opened.databases[0]!, projections, batchSize: args.batchSize });
    await projector.ensureSchema();

    if (args.command === 'status') {
      const rows = (await projector.status()).filter((s) => args.name === undefined || s.projection === args.name);
      if (args.json) for (const s of rows) process.stdout.write(`${JSON.stringify({ projection: s.projection, shard: s.shard, checkpoint: s.position, head: s.head, lag: s.lag })}\n`);
      else process.stdout.write(pad([['projection', 'shard', 'checkpoint', 'head', 'lag'], ...rows.map((s) => [s.projection, String(s.shard), String(s.position), String(s.head), String(s.lag)])]));
      return;
    }

    const name = args.name!;
    const heads = await Promise.all(Array.from({ length: opened.store.shardCount }, (_, shard) => opened.store.headPosition(shard)));
    const total = heads.reduce((a, b) => a + b, 0);
    const progress = createProgress({ label: `rebuild ${name}`, total, enabled: args.progress || process.stderr.isTTY === true });
    const started = performance.now();
    await projector.reset(name);
    let events = 0;
    await projector.catchUp({
      only: [name],
      onBatch: (batch) => {
        events += batch.events;
        progress.add(batch.events);
      },
    });
    progress.done();
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(events / seconds) : events;
    process.stderr.write(`rebuilt ${name}: ${events.toLocaleString('en-US')} events over ${opened.store.shardCount} shard(s) in ${seconds.toFixed(2)} s (${rate.toLocaleString('en-US')} events/s)\n`);
    process.stdout.write(`${JSON.stringify({ projection: name, events, shards: opened.store.shardCount, seconds: Number(seconds.toFixed(3)), events_per_s: rate })}\n`);
  } finally {
    await searchIndex.close().catch(() => {});
    await opened.close();
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) await runCli('projections', USAGE, main);
