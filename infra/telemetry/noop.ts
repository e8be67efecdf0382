import type { Metrics, Telemetry, Tracing } from '../../gateways/ports/telemetry.js';

/** Metrics that go nowhere: the default of every component, and what tests use. */
export const noopMetrics: Metrics = Object.freeze({
  connectionOpened() {},
  connectionClosed() {},
  messageIn() {},
  messageOut() {},
  deliveryLatency() {},
});

/** Tracing that only runs the function. */
export const noopTracing: Tracing = Object.freeze({
  span: <T>(_name: string, _attributes: unknown, fn: () => Promise<T>) => fn(),
});

export const noopTelemetry: Telemetry = Object.freeze({ metrics: noopMetrics, tracing: noopTracing });
