import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { TelemetryConfig } from './config.js';
import { noopTracing } from './noop.js';
import { createOtelMetrics, createOtelTracing } from './otel.js';
import type { Telemetry } from '../../gateways/ports/telemetry.js';
import { createPrometheusMeter, serveMetrics, type MetricsServer } from './prometheus.js';

export type TelemetryRuntime = Telemetry & {
  /** The Prometheus exposition text (for a route of your own, or tests). */
  renderMetrics(): Promise<string>;
  /** The bound port of the /metrics endpoint; null when METRICS_PORT is unset. */
  metricsPort: number | null;
  /** Stops the endpoint, flushes pending spans, shuts the providers down. Never throws. */
  shutdown(): Promise<void>;
};

export type StartTelemetryDeps = {
  config: TelemetryConfig;
  logger: Logger;
  /** The interface of the metrics endpoint when METRICS_HOST is unset (normally the server's HOST). */
  host: string;
  /** service.instance.id (the gateway node id). */
  nodeId?: string;
  /** Overrides the exporter the config names (tests). */
  spanExporter?: SpanExporter;
};

/**
 * Starts OpenTelemetry for this process: a MeterProvider read by a Prometheus exporter (served
 * on METRICS_PORT when set) and, when a traces exporter is configured, a tracer provider with a
 * batch span processor. Nothing is registered globally: components get `metrics` and `tracing`
 * through their deps.
 */
export async function startTelemetry(deps: StartTelemetryDeps): Promise<TelemetryRuntime> {
  const { config, logger } = deps;
  const resource = resourceFromAttributes({
    'service.name': config.serviceName,
    ...(deps.nodeId === undefined ? {} : { 'service.instance.id': deps.nodeId }),
  });
  const prometheus = createPrometheusMeter({ resource });
  const metrics = createOtelMetrics({ meter: prometheus.meterProvider.getMeter('chat-backend') });

  const exporter = deps.spanExporter ?? spanExporterFor(config);
  let tracerProvider: BasicTracerProvider | null = null;
  if (exporter !== null) {
    const processors: SpanProcessor[] = [new BatchSpanProcessor(exporter)];
    tracerProvider = new BasicTracerProvider({ resource, spanProcessors: processors });
  }
  const tracing = tracerProvider === null ? noopTracing : createOtelTracing({ tracer: tracerProvider.getTracer('chat-backend') });

  let server: MetricsServer | null = null;
  try {
    if (config.metricsPort !== null) server = await serveMetrics(prometheus, config.metricsHost ?? deps.host, config.metricsPort);
  } catch (error) {
    await prometheus.shutdown().catch(() => {});
    await tracerProvider?.shutdown().catch(() => {});
    throw error;
  }
  logger.info(
    { metrics_port: server?.port ?? null, traces_exporter: deps.spanExporter === undefined ? config.tracesExporter : 'custom', ...(config.tracesExporter === 'otlp' ? { otlp_url: config.otlpTracesUrl } : {}) },
    'telemetry started',
  );

  return {
    metrics,
    tracing,
    renderMetrics: prometheus.render,
    metricsPort: server?.port ?? null,
    async shutdown() {
      const steps: [string, () => Promise<unknown>][] = [
        ['metrics endpoint', () => server?.close() ?? Promise.resolve()],
        ['tracer provider', () => tracerProvider?.shutdown() ?? Promise.resolve()],
        ['meter provider', () => prometheus.shutdown()],
      ];
      for (const [what, step] of steps) {
        try {
          await step();
        } catch (error) {
          logger.warn({ err: error }, `telemetry: closing the ${what} failed`);
        }
      }
    },
  };
}

function spanExporterFor(config: TelemetryConfig): SpanExporter | null {
  switch (config.tracesExporter) {
    case 'none':
      return null;
    case 'console':
      return new ConsoleSpanExporter();
    case 'otlp':
      return new OTLPTraceExporter({ url: config.otlpTracesUrl });
    default: {
      const unreachable: never = config.tracesExporter;
      return unreachable;
    }
  }
}
