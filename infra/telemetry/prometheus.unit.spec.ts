import { afterEach, describe, expect, it } from 'vitest';
import { DELIVERY_LATENCY_BUCKETS_MS, createOtelMetrics } from './otel.js';
import { createPrometheusMeter, type PrometheusMeter } from './prometheus.js';

/** Parses `# TYPE name type` lines and samples (`name{labels} value`) of the exposition text. */
function parse(text: string) {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample && !line.startsWith('#')) {
      const labels: Record<string, string> = {};
      for (const m of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
      samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
    }
  }
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  return { types, samples, value };
}

describe('Prometheus exposition of the telemetry metrics', () => {
  let meter: PrometheusMeter;
  afterEach(async () => {
    await meter?.shutdown();
  });

  function given(rss = () => 123_456_789) {
    meter = createPrometheusMeter();
    return createOtelMetrics({ meter: meter.meterProvider.getMeter('test'), rss });
  }

  it('exposes connections, frames in / out by type, and RSS with their Prometheus types', async () => {
    const metrics = given();
    metrics.connectionOpened();
    metrics.connectionOpened();
    metrics.connectionOpened();
    metrics.connectionClosed();
    metrics.messageIn('hello');
    metrics.messageIn('sendMessage');
    metrics.messageIn('sendMessage');
    metrics.messageIn('invalid');
    metrics.messageOut('event', 256);
    metrics.messageOut('event');
    metrics.messageOut('sendAck');
    metrics.messageOut('typing', 0);

    const { types, value } = parse(await meter.render());
    expect(types.get('chat_ws_connections')).toBe('gauge');
    expect(types.get('chat_ws_messages_in_total')).toBe('counter');
    expect(types.get('chat_ws_messages_out_total')).toBe('counter');
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    expect(value('chat_ws_connections')).toBe(2);
    expect(value('chat_ws_messages_in_total', { frame: 'sendMessage' })).toBe(2);
    expect(value('chat_ws_messages_in_total', { frame: 'hello' })).toBe(1);
    expect(value('chat_ws_messages_in_total', { frame: 'invalid' })).toBe(1);
    expect(value('chat_ws_messages_out_total', { frame: 'event' })).toBe(257);
    expect(value('chat_ws_messages_out_total', { frame: 'sendAck' })).toBe(1);
    expect(value('chat_ws_messages_out_total', { frame: 'typing' })).toBeUndefined();
    expect(value('process_resident_memory_bytes')).toBe(123_456_789);
  });

  it('counters are cumulative across scrapes; the connection gauge never goes below 0', async () => {
    const metrics = given();
    metrics.messageIn('ping');
    expect(parse(await meter.render()).value('chat_ws_messages_in_total', { frame: 'ping' })).toBe(1);
    metrics.messageIn('ping');
    metrics.connectionClosed();
    const { value } = parse(await meter.render());
    expect(value('chat_ws_messages_in_total', { frame: 'ping' })).toBe(2);
    expect(value('chat_ws_connections')).toBe(0);
  });

  it('delivery latency is a histogram in ms with buckets for a < 100 ms target', async () => {
    const metrics = given();
    for (const ms of [0.4, 3, 7, 7, 45, 99, 150, 12_000]) metrics.deliveryLatency(ms);
    metrics.deliveryLatency(-5); // a clock a little ahead on another node: counted as 0
    metrics.deliveryLatency(Number.NaN); // ignored

    const { types, samples, value } = parse(await meter.render());
    expect(types.get('chat_delivery_latency_ms')).toBe('histogram');
    const bounds = samples.filter((s) => s.name === 'chat_delivery_latency_ms_bucket').map((s) => s.labels.le);
    expect(bounds).toEqual([...DELIVERY_LATENCY_BUCKETS_MS.map(String), '+Inf']);
    expect(DELIVERY_LATENCY_BUCKETS_MS.slice(0, 9)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500]);
    const le = (bound: string) => value('chat_delivery_latency_ms_bucket', { le: bound });
    expect(le('1')).toBe(2);
    expect(le('5')).toBe(3);
    expect(le('10')).toBe(5);
    expect(le('50')).toBe(6);
    expect(le('100')).toBe(7);
    expect(le('200')).toBe(8);
    expect(le('10000')).toBe(8);
    expect(le('+Inf')).toBe(9);
    expect(value('chat_delivery_latency_ms_count')).toBe(9);
    expect(value('chat_delivery_latency_ms_sum')).toBeCloseTo(0.4 + 3 + 7 + 7 + 45 + 99 + 150 + 12_000, 6);
  });

  it('bounds the frame label: kinds past the 64th are counted as other', async () => {
    const metrics = given();
    for (let i = 0; i < 70; i++) metrics.messageIn(`kind${i}`);
    const { samples, value } = parse(await meter.render());
    expect(samples.filter((s) => s.name === 'chat_ws_messages_in_total')).toHaveLength(65);
    expect(value('chat_ws_messages_in_total', { frame: 'other' })).toBe(6);
  });
});
