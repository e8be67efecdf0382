import { describe, expect, it } from 'vitest';
import { TelemetryConfigError, parseTelemetryConfig } from './config.js';

describe('telemetry configuration', () => {
  it('defaults: no metrics endpoint, no traces', () => {
    expect(parseTelemetryConfig({})).toEqual({
      metricsPort: null,
      metricsHost: null,
      tracesExporter: 'none',
      otlpTracesUrl: 'http://localhost:4318/v1/traces',
      serviceName: 'chat-backend',
    });
    expect(parseTelemetryConfig({ METRICS_PORT: ' ', OTEL_TRACES_EXPORTER: '' }).metricsPort).toBeNull();
  });

  it('reads the port, host, exporter and service name', () => {
    const config = parseTelemetryConfig({ METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0', OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: 'gw-a' });
    expect(config).toMatchObject({ metricsPort: 9464, metricsHost: '0.0.0.0', tracesExporter: 'console', serviceName: 'gw-a' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(parseTelemetryConfig({ METRICS_PORT: '0' }).metricsPort).toBe(0);
  });

  it('an OTLP endpoint turns OTLP traces on, with /v1/traces appended to the base URL', () => {
    expect(parseTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toMatchObject({
      tracesExporter: 'otlp',
      otlpTracesUrl: 'http://collector:4318/v1/traces',
    });
    expect(parseTelemetryConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://x.example/traces' }).otlpTracesUrl).toBe('https://x.example/traces');
    expect(parseTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).tracesExporter).toBe('none');
  });

  it('fails fast, naming the variable', () => {
    expect(() => parseTelemetryConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
    expect(() => parseTelemetryConfig({ METRICS_PORT: 'abc' })).toThrow(TelemetryConfigError);
    expect(() => parseTelemetryConfig({ OTEL_TRACES_EXPORTER: 'jaeger' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => parseTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
