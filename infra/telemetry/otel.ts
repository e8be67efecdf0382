import { SpanStatusCode, type Meter, type Tracer } from '@opentelemetry/api';
import type { Metrics, SpanAttributes, Tracing } from '../../gateways/ports/telemetry.js';

/**
 * Instrument names (OpenTelemetry). The Prometheus exporter turns dots into underscores and adds
 * `_total` to counters (prometheus.ts lists the results); it does not append units, so the names
 * carry them where Prometheus users expect one (`_ms`, `_bytes`).
 */
export const METRIC_NAMES = Object.freeze({
  connections: 'chat.ws.connections',
  messagesIn: 'chat.ws.messages.in',
  messagesOut: 'chat.ws.messages.out',
  deliveryLatency: 'chat.delivery.latency.ms',
  rss: 'process.resident_memory.bytes',
});

/** Bucket bounds (ms) of the delivery latency histogram: fine below the 100 ms target, coarse above. */
export const DELIVERY_LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]);

/** Distinct frame kinds kept per counter; further ones are counted as `other` (bounded label cardinality). */
const MAX_KINDS = 64;

export type OtelMetricsDeps = {
  meter: Meter;
  /** Resident set size in bytes (default process.memoryUsage.rss). */
  rss?: () => number;
};

/**
 * Metrics on an OpenTelemetry Meter. Connection and frame counts are plain numbers on the hot
 * path, read by observable instruments at collection time (no attribute hashing per frame);
 * latency goes straight into a histogram with DELIVERY_LATENCY_BUCKETS_MS.
 */
export function createOtelMetrics(deps: OtelMetricsDeps): Metrics {
  const { meter } = deps;
  const rss = deps.rss ?? (() => process.memoryUsage.rss());
  let connections = 0;
  const framesIn = new Map<string, number>();
  const framesOut = new Map<string, number>();
  const bump = (counts: Map<string, number>, kind: string, n: number) => {
    const key = counts.has(kind) || counts.size < MAX_KINDS ? kind : 'other';
    counts.set(key, (counts.get(key) ?? 0) + n);
  };

  meter
    .createObservableUpDownCounter(METRIC_NAMES.connections, { description: 'Open WebSocket connections on this node', unit: '{connection}' })
    .addCallback((result) => result.observe(connections));
  meter
    .createObservableCounter(METRIC_NAMES.messagesIn, { description: 'WebSocket frames received from clients, by frame type', unit: '{frame}' })
    .addCallback((result) => {
      for (const [frame, n] of framesIn) result.observe(n, { frame });
    });
  meter
    .createObservableCounter(METRIC_NAMES.messagesOut, { description: 'WebSocket frames written to clients, by frame type', unit: '{frame}' })
    .addCallback((result) => {
      for (const [frame, n] of framesOut) result.observe(n, { frame });
    });
  meter
    .createObservableGauge(METRIC_NAMES.rss, { description: 'Resident set size of the process', unit: 'By' })
    .addCallback((result) => result.observe(rss()));
  const latency = meter.createHistogram(METRIC_NAMES.deliveryLatency, {
    description: 'Live delivery latency: Event frame handed to the socket minus the MessageSent created_at',
    unit: 'ms',
    advice: { explicitBucketBoundaries: [...DELIVERY_LATENCY_BUCKETS_MS] },
  });

  return {
    connectionOpened() {
      connections++;
    },
    connectionClosed() {
      if (connections > 0) connections--;
    },
    messageIn(kind) {
      bump(framesIn, kind, 1);
    },
    messageOut(kind, n = 1) {
      if (n > 0) bump(framesOut, kind, n);
    },
    deliveryLatency(ms) {
      // Clocks of different nodes may disagree by a little: never record a negative time.
      if (Number.isFinite(ms)) latency.record(Math.max(ms, 0));
    },
  };
}

/** Tracing on an OpenTelemetry Tracer (spans nest when a context manager is registered). */
export function createOtelTracing(deps: { tracer: Tracer }): Tracing {
  return {
    span<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
      return deps.tracer.startActiveSpan(name, { attributes }, async (span) => {
        try {
          return await fn();
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };
}
