import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, parseConfig } from './config.js';

function errorOf(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe('parseConfig', () => {
  it('gives the documented defaults for an empty environment, frozen', () => {
    const config = parseConfig({});
    expect(config).toEqual({
      port: 3000,
      host: '127.0.0.1',
      dataDir: resolve('./data'),
      databaseUrls: [],
      jwtSecret: null,
      jwtTtlSeconds: 86_400,
      maxMessageBytes: 65_536,
      rateLimitMax: 600,
      rateLimitWindowMs: 60_000,
      logLevel: 'info',
      readYourWritesTimeoutMs: 2_000,
      wsPort: 3001,
      nodeId: expect.stringMatching(/^node-[0-9a-f-]{36}$/),
    });
    expect(Object.isFrozen(config)).toBe(true);
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
      maxMessageBytes: 1024,
      rateLimitMax: 10,
      rateLimitWindowMs: 1000,
      logLevel: 'debug',
      readYourWritesTimeoutMs: 0,
    });
    expect(CONFIG_VARIABLES).toHaveLength(13);
  });

  it('reads WS_PORT and NODE_ID, and refuses a node id that is not a NATS token', () => {
    expect(parseConfig({ WS_PORT: '0', NODE_ID: 'gw-a_1' })).toMatchObject({ wsPort: 0, nodeId: 'gw-a_1' });
    expect(errorOf({ NODE_ID: 'a.b' }).variables).toEqual(['NODE_ID']);
    expect(errorOf({ WS_PORT: '70000' }).variables).toEqual(['WS_PORT']);
  });

  it('treats an empty variable as unset', () => {
    expect(parseConfig({ PORT: '', DATABASE_URL: ' ', LOG_LEVEL: '' })).toMatchObject({ port: 3000, databaseUrls: [], logLevel: 'info' });
  });

  it('names the variable and the value it refused', () => {
    expect(errorOf({ PORT: 'abc' }).message).toBe('PORT: expected an integer from 0 to 65535, got "abc"');
    expect(errorOf({ PORT: '65536' }).message).toBe('PORT: expected an integer from 0 to 65535, got "65536"');
    expect(errorOf({ PORT: '3.5' }).variables).toEqual(['PORT']);
    expect(errorOf({ MAX_MESSAGE_BYTES: '0' }).message).toMatch(/^MAX_MESSAGE_BYTES: expected an integer from 1 to/);
    expect(errorOf({ RATE_LIMIT_MAX: '-1' }).variables).toEqual(['RATE_LIMIT_MAX']);
    expect(errorOf({ LOG_LEVEL: 'verbose' }).message).toBe('LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"');
  });

  it('reports every bad variable at once', () => {
    const error = errorOf({ PORT: 'x', JWT_TTL_SECONDS: 'forever', RATE_LIMIT_WINDOW_MS: '' });
    expect(error.variables).toEqual(['PORT', 'JWT_TTL_SECONDS']);
    expect(error.message.split('\n')).toHaveLength(2);
  });

  it('never echoes secrets: a short JWT_SECRET or a bad DATABASE_URL is described, not printed', () => {
    const secret = errorOf({ JWT_SECRET: 'hunter2' });
    expect(secret.message).toBe('JWT_SECRET: expected at least 32 characters, got 7');
    const url = errorOf({ DATABASE_URL: 'postgres://db1/chat,mysql://root:hunter2@db2/chat' });
    expect(url.message).toMatch(/^DATABASE_URL: .*entry 2 of 2/);
    expect(url.message).not.toContain('hunter2');
  });
});
