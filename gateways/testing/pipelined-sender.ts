import { ContentType, encodeClientFrame, type ServerMessage } from '../protocol/index.js';
import type { TestClient } from '../gateway/testing/client.js';

/**
 * Sends `count` messages over one socket with at most `maxInFlight` unanswered at a time
 * (pipelined, each with its own client_message_id), and resolves with every SendAck in send
 * order. Replies are matched by request id from the client's recorded frames (ids from
 * `firstRequestId` on, far above the ids `client.request` uses).
 */
export async function sendPipelined(
  client: TestClient,
  options: {
    conversationId: string;
    count: number;
    maxInFlight: number;
    content: (i: number) => string;
    clientMessageId: (i: number) => string;
    firstRequestId?: number;
    onAck?: (acked: number) => void;
    timeoutMs?: number;
  },
): Promise<ServerMessage<'sendAck'>[]> {
  const first = options.firstRequestId ?? 1_000_000;
  const acks: (ServerMessage<'sendAck'> | undefined)[] = new Array(options.count);
  let next = 0;
  let acked = 0;
  let index = client.frames.length;
  let failure: Error | null = null;

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`sent ${next}, acked ${acked} of ${options.count} before the timeout`)), options.timeoutMs ?? 60_000);
    const finish = (error: Error | null) => {
      clearTimeout(timer);
      client.ws.off('message', pump);
      client.ws.off('close', onClose);
      if (error) reject(error);
      else resolve(acks as ServerMessage<'sendAck'>[]);
    };
    const fill = () => {
      while (failure === null && next < options.count && next - acked < options.maxInFlight) {
        const i = next++;
        client.sendRaw(
          encodeClientFrame({
            requestId: first + i,
            body: {
              case: 'sendMessage',
              value: { conversationId: options.conversationId, clientMessageId: options.clientMessageId(i), content: options.content(i), contentType: ContentType.TEXT },
            },
          }),
        );
      }
    };
    function pump() {
      while (index < client.frames.length) {
        const frame = client.frames[index++]!;
        const i = frame.requestId - first;
        if (i < 0 || i >= options.count) continue;
        if (frame.body.case !== 'sendAck') {
          failure = new Error(`message ${i}: ${JSON.stringify(frame.body)}`);
          finish(failure);
          return;
        }
        acks[i] = frame.body.value;
        acked++;
        options.onAck?.(acked);
      }
      if (acked === options.count) finish(null);
      else fill();
    }
    function onClose() {
      finish(new Error(`the socket closed after ${acked} acks`));
    }
    client.ws.on('message', pump);
    client.ws.on('close', onClose);
    fill();
  });
}
