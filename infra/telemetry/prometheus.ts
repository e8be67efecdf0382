import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * A MeterProvider whose one reader is a Prometheus exporter that never starts its own server:
 * the text is served by `serveMetrics` (METRICS_PORT) or by any route that calls `render()`.
 *
 * Prometheus names of the instruments in otel.ts (every series also carries
 * `otel_scope_name`; `target_info` holds service.name and service.instance.id):
 *   chat_ws_connections                     gauge      open WebSocket connections
 *   chat_ws_messages_in_total{frame}        counter    frames received, by type
 *   chat_ws_messages_out_total{frame}       counter    frames written, by type
 *   chat_delivery_latency_ms_{bucket,sum,count}  histogram  buckets DELIVERY_LATENCY_BUCKETS_MS
 *   process_resident_memory_bytes           gauge      RSS
 */
export type PrometheusMeter = {
  meterProvider: MeterProvider;
  /** The exposition text of every metric now. */
  render(): Promise<string>;
  /** A node:http handler that answers with `render()` (any method and path). */
  handle(request: IncomingMessage, response: ServerResponse): void;
  shutdown(): Promise<void>;
};

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function createPrometheusMeter(options: { resource?: Resource } = {}): PrometheusMeter {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const meterProvider = new MeterProvider({ readers: [exporter], ...(options.resource === undefined ? {} : { resource: options.resource }) });
  const render = async () => serializer.serialize((await exporter.collect()).resourceMetrics);
  return {
    meterProvider,
    render,
    handle(_request, response) {
      render().then(
        (text) => {
          response.statusCode = 200;
          response.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
          response.end(text);
        },
        (error: unknown) => {
          response.statusCode = 500;
          response.setHeader('content-type', 'text/plain; charset=utf-8');
          response.end(`# metrics collection failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

export type MetricsServer = { port: number; close(): Promise<void> };

/** Serves `GET /metrics` (and HEAD) on host:port; other paths 404. Resolves once listening. */
export function serveMetrics(meter: Pick<PrometheusMeter, 'handle'>, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.statusCode = 404;
      response.end('not found: the metrics are at GET /metrics\n');
      return;
    }
    meter.handle(request, response);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
