import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTelemetryConfig } from './config.js';
import { startTelemetry, type TelemetryRuntime } from './start.js';

const logger = pino({ level: 'silent' });

describe('startTelemetry', () => {
  let runtime: TelemetryRuntime | undefined;
  afterEach(async () => {
    await runtime?.shutdown();
    runtime = undefined;
  });

  it('serves GET /metrics on METRICS_PORT with the service in target_info', async () => {
    runtime = await startTelemetry({ config: parseTelemetryConfig({ METRICS_PORT: '0', OTEL_SERVICE_NAME: 'chat-test' }), logger, host: '127.0.0.1', nodeId: 'node-a' });
    expect(runtime.metricsPort).toBeGreaterThan(0);
    runtime.metrics.connectionOpened();
    runtime.metrics.messageOut('event', 2);
    runtime.metrics.deliveryLatency(3);

    const res = await fetch(`http://127.0.0.1:${runtime.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^chat_ws_connections\{[^}]*\} 1$/m);
    expect(text).toMatch(/^chat_ws_messages_out_total\{frame="event"[^}]*\} 2$/m);
    expect(text).toMatch(/^chat_delivery_latency_ms_bucket\{[^}]*le="5"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes\{[^}]*\} [1-9]\d*$/m);
    expect(text).toMatch(/^target_info\{[^}]*service_instance_id="node-a"/m);
    expect(text).toMatch(/^target_info\{[^}]*service_name="chat-test"/m);
    expect(await runtime.renderMetrics()).toContain('# TYPE chat_delivery_latency_ms histogram');

    expect((await fetch(`http://127.0.0.1:${runtime.metricsPort}/other`)).status).toBe(404);
    const port = runtime.metricsPort;
    await runtime.shutdown();
    runtime = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it('no METRICS_PORT: no endpoint, metrics still render; no exporter: tracing only runs the function', async () => {
    runtime = await startTelemetry({ config: parseTelemetryConfig({}), logger, host: '127.0.0.1' });
    expect(runtime.metricsPort).toBeNull();
    runtime.metrics.messageIn('hello');
    expect(await runtime.renderMetrics()).toMatch(/chat_ws_messages_in_total\{frame="hello"/);
    expect(await runtime.tracing.span('x', {}, async () => 42)).toBe(42);
  });

  it('spans: one per call with its attributes; a rejection is recorded as an error and passed on', async () => {
    const finished: ReadableSpan[] = [];
    const spans: SpanExporter = {
      export(batch, done) {
        finished.push(...batch);
        done({ code: 0 }); // ExportResultCode.SUCCESS (@opentelemetry/core is not a direct dependency)
      },
      shutdown: async () => {},
    };
    runtime = await startTelemetry({ config: parseTelemetryConfig({}), logger, host: '127.0.0.1', spanExporter: spans });
    expect(await runtime.tracing.span('ws.send_message', { 'chat.conversation_id': 'c1' }, async () => 'ok')).toBe('ok');
    const boom = new Error('boom');
    await expect(runtime.tracing.span('delivery.batch', { 'messaging.batch.message_count': 3 }, () => Promise.reject(boom))).rejects.toBe(boom);
    await runtime.shutdown(); // flushes the batch processor
    runtime = undefined;

    expect(finished.map((s) => s.name)).toEqual(['ws.send_message', 'delivery.batch']);
    expect(finished[0]!.attributes).toEqual({ 'chat.conversation_id': 'c1' });
    expect(finished[0]!.status.code).toBe(SpanStatusCode.UNSET);
    expect(finished[1]!.attributes).toEqual({ 'messaging.batch.message_count': 3 });
    expect(finished[1]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'boom' });
    expect(finished[1]!.events.map((e) => e.name)).toEqual(['exception']);
    expect(finished[0]!.resource.attributes['service.name']).toBe('chat-backend');
  });
});
