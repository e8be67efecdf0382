import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, parseConfig } from './config.js';
import { configErrorOf } from './testing.js';


describe('parseConfig', () => {
  it('gives the documented defaults for an empty environment, frozen', () => {
    const config = parseConfig({});
    expect(config).toEqual({
      port: 3000,
      host: '127.0.0.1',
      dataDir: resolve('./data'),
      databaseUrls: [],
      jwtSecret: null,
      jwtTtlSeconds: 900,
      refreshTokenTtlSeconds: 2_592_000,
      maxSessionsPerUser: 50,
      passwordMinLength: 15,
      loginThrottle: { freeAttempts: 5, baseMs: 30_000, maxMs: 900_000 },
      authFailureLimitMax: 20,
      authRateLimitMax: 30,
      trustedProxies: [],
      sessionCheckIntervalMs: 10_000,
      maxMessageBytes: 65_536,
      rateLimitMax: 600,
      rateLimitWindowMs: 60_000,
      logLevel: 'info',
      readYourWritesTimeoutMs: 2_000,
      wsPort: 3001,
      nodeId: expect.stringMatching(/^node-[0-9a-f-]{36}$/),
      natsUrl: null,
      natsPrefix: 'chat',
      redisUrl: null,
      redisPrefix: 'chat:',
      roles: ['api', 'gateway', 'projector', 'relay', 'delivery', 'push'],
      pollIntervalMs: 20,
      wsRateLimit: 200,
      wsLimits: { maxConnectionsPerUser: 16, maxConnectionsPerAddress: 256, maxUnauthenticatedPerAddress: 32, syncCursorsPerSecond: 200, hellosPerMinute: 30 },
      deliveryFeedDeadlineMs: 10_000,
      publicUrl: null,
      publicWsUrl: null,
      media: {
        maxBytes: 100_000_000,
        allowedTypes: expect.arrayContaining(['image/jpeg', 'image/png', 'video/mp4', 'application/pdf']),
        uploadUrlTtlSeconds: 900,
        downloadUrlTtlSeconds: 300,
        s3: null,
      },
      push: { provider: 'log', fcmCredentialsFile: null, fcmProjectId: null, batchQuietMs: 1_000, batchMaxDelayMs: 3_000, minIntervalMs: 3_000 },
      elasticsearchUrls: [],
      elasticsearchIndex: 'chat-messages',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.roles)).toBe(true);
    expect(Object.isFrozen(config.databaseUrls)).toBe(true);
  });

  it('reads every variable', () => {
    const config = parseConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      CHAT_DATA_DIR: '/var/lib/chat',
      DATABASE_URL: 'postgres://u:p@db1:5432/chat, postgresql://db2/chat',
      JWT_SECRET: 's'.repeat(32),
      JWT_TTL_SECONDS: '3600',
      REFRESH_TOKEN_TTL_SECONDS: '86400',
      MAX_SESSIONS_PER_USER: '5',
      PASSWORD_MIN_LENGTH: '12',
      LOGIN_THROTTLE_FREE_ATTEMPTS: '3',
      LOGIN_THROTTLE_BASE_SECONDS: '10',
      LOGIN_THROTTLE_MAX_SECONDS: '600',
      AUTH_FAILURE_LIMIT_MAX: '50',
      AUTH_RATE_LIMIT_MAX: '7',
      SESSION_CHECK_INTERVAL_MS: '5000',
      MAX_MESSAGE_BYTES: '1024',
      RATE_LIMIT_MAX: '10',
      RATE_LIMIT_WINDOW_MS: '1000',
      LOG_LEVEL: 'debug',
      READ_YOUR_WRITES_TIMEOUT_MS: '0',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      dataDir: '/var/lib/chat',
      databaseUrls: ['postgres://u:p@db1:5432/chat', 'postgresql://db2/chat'],
      jwtSecret: 's'.repeat(32),
      jwtTtlSeconds: 3600,
      refreshTokenTtlSeconds: 86_400,
      maxSessionsPerUser: 5,
      passwordMinLength: 12,
      loginThrottle: { freeAttempts: 3, baseMs: 10_000, maxMs: 600_000 },
      authFailureLimitMax: 50,
      authRateLimitMax: 7,
      sessionCheckIntervalMs: 5000,
      maxMessageBytes: 1024,
      rateLimitMax: 10,
      rateLimitWindowMs: 1000,
      logLevel: 'debug',
      readYourWritesTimeoutMs: 0,
    });
  });

  it('is documented: the README configuration table lists every variable the server reads', () => {
    const readme = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'));
    const documented = new Set([...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
    expect(CONFIG_VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
  });

  it('reads ELASTICSEARCH_URL and ELASTICSEARCH_INDEX, naming the variable when wrong', () => {
    expect(parseConfig({ ELASTICSEARCH_URL: 'http://es1:9200, https://es2:9200', ELASTICSEARCH_INDEX: 'chat-v2' })).toMatchObject({
      elasticsearchUrls: ['http://es1:9200', 'https://es2:9200'],
      elasticsearchIndex: 'chat-v2',
    });
    expect(() => parseConfig({ ELASTICSEARCH_URL: 'es1:9200' })).toThrow(/^ELASTICSEARCH_URL: /);
    expect(() => parseConfig({ ELASTICSEARCH_INDEX: 'Chat' })).toThrow(/^ELASTICSEARCH_INDEX: /);
    expect(() => parseConfig({ ELASTICSEARCH_INDEX: '_chat' })).toThrow(/^ELASTICSEARCH_INDEX: /);
  });

  it('reads the WebSocket caps, the trusted proxies, the Sync cursor rate and the handshake rate, naming the variable when wrong', () => {
    expect(
      parseConfig({
        WS_MAX_CONNECTIONS_PER_USER: '4',
        WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
        WS_MAX_UNAUTHENTICATED_PER_ADDRESS: '8',
        WS_SYNC_CURSOR_RATE: '50',
        WS_HELLOS_PER_MINUTE: '0',
      }).wsLimits,
    ).toEqual({
      maxConnectionsPerUser: 4,
      maxConnectionsPerAddress: 0,
      maxUnauthenticatedPerAddress: 8,
      syncCursorsPerSecond: 50,
      hellosPerMinute: 0,
    });
    expect(parseConfig({ TRUSTED_PROXIES: '10.0.0.5, 192.168.0.0/16,fd00::/8 ,::1' }).trustedProxies).toEqual(['10.0.0.5', '192.168.0.0/16', 'fd00::/8', '::1']);
    expect(parseConfig({}).trustedProxies).toEqual([]);
    for (const bad of ['proxy.local', '10.0.0.0/33', '10.0.0.1/8/2', 'fd00::/129', '10.0.0.0/x', ',']) {
      expect(configErrorOf({ TRUSTED_PROXIES: bad }).variables).toEqual(['TRUSTED_PROXIES']);
    }
    expect(configErrorOf({ TRUSTED_PROXIES: 'proxy.local' }).message).toMatch(/^TRUSTED_PROXIES: expected comma-separated IP addresses or CIDR ranges/);
    expect(configErrorOf({ WS_MAX_CONNECTIONS_PER_USER: '-1' }).variables).toEqual(['WS_MAX_CONNECTIONS_PER_USER']);
    expect(configErrorOf({ WS_SYNC_CURSOR_RATE: '0' }).variables).toEqual(['WS_SYNC_CURSOR_RATE']);
    expect(configErrorOf({ WS_HELLOS_PER_MINUTE: '-1' }).variables).toEqual(['WS_HELLOS_PER_MINUTE']);
  });

  it('reads WS_PORT and NODE_ID, and refuses a node id that is not a NATS token', () => {
    expect(parseConfig({ WS_PORT: '0', NODE_ID: 'gw-a_1' })).toMatchObject({ wsPort: 0, nodeId: 'gw-a_1' });
    expect(configErrorOf({ NODE_ID: 'a.b' }).variables).toEqual(['NODE_ID']);
    expect(configErrorOf({ WS_PORT: '70000' }).variables).toEqual(['WS_PORT']);
  });

  it('reads the shared services: NATS_URL / NATS_PREFIX, REDIS_URL / REDIS_PREFIX, POLL_INTERVAL_MS', () => {
    expect(
      parseConfig({ NATS_URL: 'nats://127.0.0.1:4222, nats://10.0.0.2:4222', NATS_PREFIX: 'prod_1', REDIS_URL: 'redis://127.0.0.1:6379/2', REDIS_PREFIX: 'c1:', POLL_INTERVAL_MS: '5' }),
    ).toMatchObject({ natsUrl: 'nats://127.0.0.1:4222,nats://10.0.0.2:4222', natsPrefix: 'prod_1', redisUrl: 'redis://127.0.0.1:6379/2', redisPrefix: 'c1:', pollIntervalMs: 5 });
    expect(configErrorOf({ NATS_PREFIX: 'a.b' }).variables).toEqual(['NATS_PREFIX']);
    const nats = configErrorOf({ NATS_URL: 'nats://ok:4222,http://user:hunter2@x' });
    expect(nats.message).toMatch(/^NATS_URL: .*entry 2 of 2/);
    expect(nats.message).not.toContain('hunter2');
    expect(configErrorOf({ REDIS_URL: 'redis://a,redis://b' }).message).toBe('REDIS_URL: expected one Redis URL, not a list');
    expect(configErrorOf({ REDIS_URL: 'localhost:6379' }).variables).toEqual(['REDIS_URL']);
  });

  it('reads ROLES as all or a list, and refuses unknown roles', () => {
    const shared = { DATABASE_URL: 'postgres://db/chat', NATS_URL: 'nats://127.0.0.1:4222', REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(parseConfig({ ROLES: 'all' }).roles).toEqual(['api', 'gateway', 'projector', 'relay', 'delivery', 'push']);
    expect(parseConfig({ ...shared, ROLES: 'delivery, relay,API' }).roles).toEqual(['api', 'relay', 'delivery']);
    expect(parseConfig({ ...shared, ROLES: 'gateway' }).roles).toEqual(['gateway']);
    expect(configErrorOf({ ROLES: 'api,worker' }).message).toBe(
      'ROLES: expected "all" or a comma-separated list of api, gateway, projector, relay, delivery, push; got "api,worker"',
    );
    expect(configErrorOf({ ROLES: 'all,api' }).variables).toEqual(['ROLES']);
  });

  it('refuses split roles without the services they share, naming each variable', () => {
    const embedded = configErrorOf({ ROLES: 'projector' });
    expect(embedded.variables).toEqual(['DATABASE_URL']);
    expect(embedded.message).toMatch(/^DATABASE_URL is required when ROLES splits the server into processes \(ROLES=projector\)/);
    const gateway = configErrorOf({ ROLES: 'gateway', DATABASE_URL: 'postgres://db/chat' });
    expect(gateway.variables).toEqual(['NATS_URL', 'REDIS_URL']);
    expect(gateway.message).toMatch(/^NATS_URL is required when ROLES splits the server into processes \(ROLES=gateway\)/m);
    // The projector needs neither the bus nor presence; the API needs presence but not the bus.
    expect(parseConfig({ ROLES: 'projector', DATABASE_URL: 'postgres://db/chat' }).roles).toEqual(['projector']);
    expect(configErrorOf({ ROLES: 'api', DATABASE_URL: 'postgres://db/chat' }).variables).toEqual(['REDIS_URL']);
    // One process with every role needs nothing shared, however it is spelled.
    expect(parseConfig({ ROLES: 'api,gateway,projector,relay,delivery,push' }).roles).toHaveLength(6);
    // The push role reads its work queue on NATS and checks presence before sending.
    expect(configErrorOf({ ROLES: 'push', DATABASE_URL: 'postgres://db/chat' }).variables).toEqual(['NATS_URL', 'REDIS_URL']);
  });

  it('reads the push settings; fcm needs its credentials file', () => {
    expect(parseConfig({ PUSH_PROVIDER: 'fcm', FCM_CREDENTIALS_FILE: 'secrets/fcm.json', FCM_PROJECT_ID: 'chat-prod', PUSH_BATCH_QUIET_MS: '500', PUSH_BATCH_MAX_DELAY_MS: '2000', PUSH_MIN_INTERVAL_MS: '10000' }).push).toEqual({
      provider: 'fcm',
      fcmCredentialsFile: resolve('secrets/fcm.json'),
      fcmProjectId: 'chat-prod',
      batchQuietMs: 500,
      batchMaxDelayMs: 2_000,
      minIntervalMs: 10_000,
    });
    const missing = configErrorOf({ PUSH_PROVIDER: 'fcm' });
    expect(missing.variables).toEqual(['FCM_CREDENTIALS_FILE']);
    expect(missing.message).toMatch(/^FCM_CREDENTIALS_FILE is required with PUSH_PROVIDER=fcm/);
    expect(configErrorOf({ PUSH_PROVIDER: 'apns' }).message).toBe('PUSH_PROVIDER: expected one of log, fcm, got "apns"');
    expect(configErrorOf({ FCM_PROJECT_ID: 'Bad Project' }).variables).toEqual(['FCM_PROJECT_ID']);
    expect(configErrorOf({ PUSH_MIN_INTERVAL_MS: '-5' }).variables).toEqual(['PUSH_MIN_INTERVAL_MS']);
  });

  it('reads PUBLIC_WS_URL as a ws:// or wss:// URL, naming the variable when it is anything else', () => {
    expect(parseConfig({ PUBLIC_WS_URL: 'wss://chat.example.com/ws' }).publicWsUrl).toBe('wss://chat.example.com/ws');
    expect(parseConfig({ PUBLIC_WS_URL: 'ws://10.0.0.5:3001/ws' }).publicWsUrl).toBe('ws://10.0.0.5:3001/ws');
    for (const bad of ['https://chat.example.com/ws', 'chat.example.com', 'wss://chat.example.com/ws?x=1', 'wss://user:pw@chat.example.com/ws']) {
      expect(configErrorOf({ PUBLIC_WS_URL: bad }).variables).toEqual(['PUBLIC_WS_URL']);
    }
  });

  it('treats an empty variable as unset', () => {
    expect(parseConfig({ PORT: '', DATABASE_URL: ' ', LOG_LEVEL: '' })).toMatchObject({ port: 3000, databaseUrls: [], logLevel: 'info' });
  });

  it('names the variable and the value it refused', () => {
    expect(configErrorOf({ PORT: 'abc' }).message).toBe('PORT: expected an integer from 0 to 65535, got "abc"');
    expect(configErrorOf({ PORT: '65536' }).message).toBe('PORT: expected an integer from 0 to 65535, got "65536"');
    expect(configErrorOf({ PORT: '3.5' }).variables).toEqual(['PORT']);
    expect(configErrorOf({ MAX_MESSAGE_BYTES: '0' }).message).toMatch(/^MAX_MESSAGE_BYTES: expected an integer from 1 to/);
    expect(configErrorOf({ PASSWORD_MIN_LENGTH: '6' }).message).toBe('PASSWORD_MIN_LENGTH: expected an integer from 8 to 128, got "6"');
    expect(configErrorOf({ RATE_LIMIT_MAX: '-1' }).variables).toEqual(['RATE_LIMIT_MAX']);
    expect(configErrorOf({ LOG_LEVEL: 'verbose' }).message).toBe('LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"');
  });

  it('reports every bad variable at once', () => {
    const error = configErrorOf({ PORT: 'x', JWT_TTL_SECONDS: 'forever', RATE_LIMIT_WINDOW_MS: '' });
    expect(error.variables).toEqual(['PORT', 'JWT_TTL_SECONDS']);
    expect(error.message.split('\n')).toHaveLength(2);
  });

  it('never echoes secrets: a short JWT_SECRET or a bad DATABASE_URL is described, not printed', () => {
    const secret = configErrorOf({ JWT_SECRET: 'hunter2' });
    expect(secret.message).toBe('JWT_SECRET: expected at least 32 characters, got 7');
    const url = configErrorOf({ DATABASE_URL: 'postgres://db1/chat,mysql://root:hunter2@db2/chat' });
    expect(url.message).toMatch(/^DATABASE_URL: .*entry 2 of 2/);
    expect(url.message).not.toContain('hunter2');
  });
});
