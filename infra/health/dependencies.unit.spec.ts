import { describe, expect, it } from 'vitest';
import { createDependencyHealth } from './dependencies.js';
import { DependencyUnavailableError, isOutage } from '../../domain/ports/health.js';

/** The dependency states of a process: readiness follows every report, the log one line per outage each way. */
function setup(settleMs = 30) {
  const lines: { level: string; msg: string; dependency: unknown }[] = [];
  const logger = {
    info: (obj: object, msg?: string) => void lines.push({ level: 'info', msg: msg ?? '', dependency: (obj as { dependency?: unknown }).dependency }),
    warn: (obj: object, msg?: string) => void lines.push({ level: 'warn', msg: msg ?? '', dependency: (obj as { dependency?: unknown }).dependency }),
  };
  return { lines, health: createDependencyHealth({ logger, settleMs, probeTimeoutMs: 50, checkIntervalMs: 0 }) };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('dependency health', () => {
  it('is ready while every dependency is up, and not while one is down', () => {
    const { health } = setup();
    const db = health.register('postgresql');
    health.register('redis');
    expect(health.ready()).toBe(true);
    db.down(new Error('connect ECONNREFUSED'));
    expect(health.ready()).toBe(false);
    expect(health.states()).toMatchObject([
      { name: 'postgresql', up: false, reason: 'connect ECONNREFUSED' },
      { name: 'redis', up: true, reason: null },
    ]);
    db.up();
    expect(health.ready()).toBe(true);
  });

  it('logs one line when a dependency goes down and one when it is back, however much it flaps meanwhile', async () => {
    const { health, lines } = setup();
    const db = health.register('postgresql');
    db.up();
    expect(lines).toEqual([]); // nothing happened
    db.down(new Error('terminating connection due to administrator command'));
    db.up(); // a query that still got through while the server stopped
    db.down(new Error('connect ECONNREFUSED'));
    db.down(new Error('connect ECONNREFUSED'));
    db.up();
    await sleep(10);
    db.down(new Error('the database system is starting up'));
    db.up();
    expect(health.ready()).toBe(true); // readiness follows at once
    await sleep(80);
    expect(lines).toEqual([
      { level: 'warn', msg: 'dependency down', dependency: 'postgresql' },
      { level: 'info', msg: 'dependency back', dependency: 'postgresql' },
    ]);
    db.down(new Error('again'));
    expect(lines.at(-1)).toEqual({ level: 'warn', msg: 'dependency down', dependency: 'postgresql' });
  });

  it('check() runs the probes: a failing or silent one marks its dependency down, a passing one up', async () => {
    const { health } = setup();
    let redisUp = false;
    health.register('redis', async () => {
      if (!redisUp) throw new Error('Redis connection is reconnecting');
    });
    health.register('nats', () => new Promise<void>(() => {})); // never answers
    health.register('object store'); // no probe: as reported
    expect((await health.check()).map((s) => [s.name, s.up])).toEqual([
      ['redis', false],
      ['nats', false],
      ['object store', true],
    ]);
    redisUp = true;
    expect((await health.check()).find((s) => s.name === 'redis')).toMatchObject({ up: true, reason: null });
  });

  it('a check that shares the last round of probes answers the states as reported since, not its snapshot', async () => {
    let now = 1_000;
    const health = createDependencyHealth({ logger: { info() {}, warn() {} }, settleMs: 0, probeTimeoutMs: 50, checkIntervalMs: 100, clock: () => now });
    let reachable = false;
    const store = health.register('object store', async () => {
      if (!reachable) throw new Error('connect ECONNREFUSED');
    });
    expect(await health.check()).toMatchObject([{ name: 'object store', up: false }]);
    // Back within the interval: a call got through and reported it; no new probe runs yet.
    reachable = true;
    store.up();
    now += 50;
    expect(await health.check()).toMatchObject([{ name: 'object store', up: true }]);
  });

  it('registering a name twice gives the same state', () => {
    const { health } = setup();
    const first = health.register('nats');
    const second = health.register('nats');
    first.down(new Error('disconnected'));
    expect(health.states()).toHaveLength(1);
    second.up();
    expect(health.ready()).toBe(true);
  });

  it('tells an outage (even wrapped as a cause) from any other failure', () => {
    const outage = new DependencyUnavailableError('redis', { cause: new Error('Connection is closed.') });
    expect(outage.message).toBe('redis is unavailable: Connection is closed.');
    expect(isOutage(outage)).toBe(true);
    expect(isOutage(new Error('publish failed', { cause: outage }))).toBe(true);
    expect(isOutage(new Error('duplicate key value violates unique constraint'))).toBe(false);
    expect(isOutage('a string')).toBe(false);
  });
});
