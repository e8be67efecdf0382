import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, ROLES, type Config } from '../infra/config/config.js';
import { createDependencyHealth } from '../infra/health/dependencies.js';
import { TelemetryConfigError, parseTelemetryConfig, startTelemetry, type TelemetryRuntime } from '../infra/telemetry/index.js';
import { lockDataDir, openDatabases } from './compose/data-dir.js';
import { composeProcess, createRootLogger, type ProcessStack } from './compose/process.js';

/**
 * The server process: `npm start` (every role, the embedded default) or one or more roles of a
 * split deployment (ROLES). Reads the configuration, composes the process (compose/process.ts,
 * the composition root: it alone chooses adapters), listens, and stops on SIGINT / SIGTERM.
 */

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error:\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createRootLogger(config);
  const embedded = config.databaseUrls.length === 0;
  let unlock: (() => Promise<void>) | null = null;
  let stack: ProcessStack;
  let telemetry: TelemetryRuntime | null = null;
  try {
    if (embedded) unlock = await lockDataDir(config.dataDir);
    telemetry = await startTelemetry({ config: parseTelemetryConfig(process.env), logger: logger.child({ component: 'telemetry' }), host: config.host, nodeId: config.nodeId });
    const health = createDependencyHealth({ logger: logger.child({ component: 'health' }) });
    stack = await composeProcess({ config, logger, databases: await openDatabases(config, health), telemetry, health });
    const lines: string[] = [];
    if (stack.gateway !== null) {
      const wsPort = await stack.listenRealtime(config.host, config.wsPort);
      lines.push(`WebSocket: ws://${config.host}:${wsPort}/ws`);
    }
    if (stack.app !== null) {
      await stack.app.listen({ port: config.port, host: config.host, listenTextResolver: (address) => `listening on ${address}` });
      const restAddress = stack.app.server.address();
      const restPort = restAddress !== null && typeof restAddress === 'object' ? restAddress.port : config.port;
      lines.unshift(`REST API:  http://${config.host}:${restPort}`);
    }
    if (telemetry.metricsPort !== null) lines.push(`Metrics:   http://${config.host}:${telemetry.metricsPort}/metrics`);
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof TelemetryConfigError) process.stderr.write(`configuration error:\n${error.message}\n`);
    else logger.fatal({ err: error }, 'start-up failed');
    await telemetry?.shutdown();
    await unlock?.();
    process.exit(1);
  }
  logger.info(
    {
      mode: embedded ? 'embedded' : 'postgres',
      shards: stack.databases.length,
      data_dir: embedded ? config.dataDir : undefined,
      node_id: config.nodeId,
      roles: config.roles.length === ROLES.length ? 'all' : config.roles.join(','),
      bus: config.natsUrl === null ? 'memory' : 'jetstream',
      presence: config.redisUrl === null ? 'memory' : 'redis',
      push: stack.push === null ? undefined : `${stack.push.provider.name} (queue: ${stack.push.queue.kind})`,
    },
    'chat backend ready',
  );

  let stoppingSince: number | undefined;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // One stop often arrives several times at once: npm and tsx relay the signal that a
      // terminal's Ctrl-C or a service manager (systemd's control-group kill) also sends this
      // process directly. Only a signal sent again later means "stop now".
      if (Date.now() - stoppingSince < REPEATED_SIGNAL_MS) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stoppingSince = Date.now();
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took longer than 10 s: exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    void stack
      .close()
      .then(() => telemetry?.shutdown())
      .then(() => unlock?.())
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

/** A stop signal repeated within this long is the same request, relayed by a wrapper process. */
const REPEATED_SIGNAL_MS = 1_000;

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await main();
}
