/** Telemetry: ports, the no-op default, the OpenTelemetry adapters and the process start-up. */
export type { FrameKind, Metrics, SpanAttributes, Telemetry, Tracing } from '../../gateways/ports/telemetry.js';
export { noopMetrics, noopTelemetry, noopTracing } from './noop.js';
export { DELIVERY_LATENCY_BUCKETS_MS, METRIC_NAMES, createOtelMetrics, createOtelTracing } from './otel.js';
export { PROMETHEUS_CONTENT_TYPE, createPrometheusMeter, serveMetrics, type MetricsServer, type PrometheusMeter } from './prometheus.js';
export { TelemetryConfigError, parseTelemetryConfig, type TelemetryConfig } from './config.js';
export { startTelemetry, type StartTelemetryDeps, type TelemetryRuntime } from './start.js';
export { readVarintAtPath } from './frame-time.js';
