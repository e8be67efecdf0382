import { z } from 'zod';

/**
 * Telemetry settings, parsed once from an environment object (the entry point passes
 * process.env; nothing here reads it). An empty variable counts as unset.
 *
 * - METRICS_PORT: port of the Prometheus endpoint (GET /metrics); unset: no endpoint; 0: any free port.
 * - METRICS_HOST: its interface (default: the HOST the caller passes to startTelemetry).
 * - OTEL_TRACES_EXPORTER: none | console | otlp (default otlp when an OTLP endpoint is set, else none).
 * - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL) or OTEL_EXPORTER_OTLP_ENDPOINT (base URL,
 *   `/v1/traces` appended): where OTLP/HTTP (protobuf) traces go; default http://localhost:4318/v1/traces.
 * - OTEL_SERVICE_NAME: service.name of metrics and traces (default chat-backend).
 */
export type TelemetryConfig = Readonly<{
  metricsPort: number | null;
  metricsHost: string | null;
  tracesExporter: 'none' | 'console' | 'otlp';
  /** The full OTLP/HTTP traces URL (used when tracesExporter is otlp). */
  otlpTracesUrl: string;
  serviceName: string;
}>;

export class TelemetryConfigError extends Error {
  override readonly name = 'TelemetryConfigError';
}

const unset = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalText = z.preprocess(unset, z.string().trim().optional());
const url = z.preprocess(unset, z.url({ protocol: /^https?$/ }).optional());

const Env = z.object({
  METRICS_PORT: z.preprocess(unset, z.string().regex(/^\s*\d+\s*$/, 'expected an integer from 0 to 65535').transform(Number).pipe(z.number().int().min(0).max(65535)).optional()),
  METRICS_HOST: optionalText,
  OTEL_TRACES_EXPORTER: z.preprocess(unset, z.enum(['none', 'console', 'otlp']).optional()),
  OTEL_EXPORTER_OTLP_ENDPOINT: url,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url,
  OTEL_SERVICE_NAME: optionalText,
});

export function parseTelemetryConfig(env: Record<string, string | undefined>): TelemetryConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new TelemetryConfigError(lines.join('\n'));
  }
  const e = parsed.data;
  const endpointSet = e.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined;
  const base = (e.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318').replace(/\/+$/, '');
  return Object.freeze({
    metricsPort: e.METRICS_PORT ?? null,
    metricsHost: e.METRICS_HOST ?? null,
    tracesExporter: e.OTEL_TRACES_EXPORTER ?? (endpointSet ? 'otlp' : 'none'),
    otlpTracesUrl: e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${base}/v1/traces`,
    serviceName: e.OTEL_SERVICE_NAME ?? 'chat-backend',
  });
}
