/**
 * Telemetry ports: what the gateway and the delivery worker call. Two small interfaces, so the
 * hot paths depend on neither OpenTelemetry nor on whether telemetry is on (noop.ts is the
 * default). Every method is synchronous, cheap and never throws.
 */

/** Frame kinds are the `body.case` names of ClientFrame / ServerFrame (`sendMessage`, `event`, ...). */
export type FrameKind = string;

export interface Metrics {
  /** A WebSocket connection was accepted (before the handshake). */
  connectionOpened(): void;
  /** A connection counted by connectionOpened closed (call once per connection). */
  connectionClosed(): void;
  /** One frame received from a client, by kind (`invalid` for a frame that did not decode). */
  messageIn(kind: FrameKind): void;
  /** `n` frames of one kind written to sockets (a fan-out of one frame to n connections is n). */
  messageOut(kind: FrameKind, n?: number): void;
  /**
   * Delivery latency of one live Event frame to one connection: the time the frame was handed to
   * the socket minus the MessageSent's created_at, in ms.
   */
  deliveryLatency(ms: number): void;
}

export type SpanAttributes = Record<string, string | number | boolean>;

export interface Tracing {
  /**
   * Runs `fn` inside a span named `name`; the span ends when the promise settles and records a
   * rejection as an error (the rejection is passed on unchanged).
   */
  span<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T>;
}

export type Telemetry = {
  metrics: Metrics;
  tracing: Tracing;
};
