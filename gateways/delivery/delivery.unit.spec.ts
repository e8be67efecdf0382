import { describe, expect, it } from 'vitest';
import { decodeDeliveries, encodeDeliveries, EnvelopeError } from '../envelope/envelope.js';
import { emptyTracked, routeAndFold } from '../../domain/conversation/recipients.js';

const at = '2026-01-01T00:00:00.000Z';

describe('delivery envelope', () => {
  it('round-trips a batch', () => {
    const items = [
      { conversationId: 'c1', version: 7, userIds: ['u1', 'ü2'], frame: new Uint8Array([1, 2, 3]) },
      { conversationId: 'c2', version: 2 ** 40, userIds: [], frame: new Uint8Array(0) },
    ];
    expect(decodeDeliveries(encodeDeliveries(items))).toEqual(items);
  });

  it('refuses truncated, foreign and trailing bytes', () => {
    const bytes = encodeDeliveries([{ conversationId: 'c1', version: 1, userIds: ['u'], frame: new Uint8Array([9]) }]);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeDeliveries(bytes.slice(0, n))).toThrow(EnvelopeError);
    expect(() => decodeDeliveries(new Uint8Array([...bytes, 0]))).toThrow(EnvelopeError);
    expect(() => decodeDeliveries(new Uint8Array([0, ...bytes.slice(1)]))).toThrow(EnvelopeError);
  });
});

describe('recipients', () => {
  const t = emptyTracked('c');
  let v = 0;
  const route = (type: string, data: unknown) => routeAndFold(t, { type, data, version: ++v });
  const msg = (sender: string) =>
    route('MessageSent', { message_id: `m${v + 1}`, sender_id: sender, content: 'x', content_type: 'text', media: null, client_message_id: null, created_at: at });
  const mark = (type: 'Delivered' | 'Read', user: string, upTo: number) => route(type, { user_id: user, device_id: 'd', up_to_version: upTo, at });

  it('sends everything to members, receipts to the reader and the senders they newly cover', () => {
    const created = route('ConversationCreated', {
      conversation_id: 'c',
      kind: 'group',
      created_by: 'a',
      members: ['a', 'b', 'c'],
      name: 'g',
      description: null,
      created_at: at,
    });
    expect(created?.recipients.sort()).toEqual(['a', 'b', 'c']);
    expect(msg('a')?.recipients.sort()).toEqual(['a', 'b', 'c']); // v2
    expect(msg('b')?.previousVersion).toBe(2); // v3
    const read = mark('Read', 'c', 3); // v4: covers a's v2 and b's v3
    expect(read?.recipients.sort()).toEqual(['a', 'b', 'c']);
    expect(read?.previousVersion).toBe(3);
    expect(msg('a')?.previousVersion).toBe(3); // v5: receipts do not count
    expect(mark('Read', 'c', 5)?.recipients.sort()).toEqual(['a', 'c']); // only a's v5 is new
    expect(mark('Delivered', 'c', 5)?.recipients.sort()).toEqual(['c']); // delivered already implied by read
    const removed = route('MemberRemoved', { user_id: 'b', removed_by: 'a', removed_at: at });
    expect(removed?.recipients.sort()).toEqual(['a', 'b', 'c']);
    expect(msg('a')?.recipients.sort()).toEqual(['a', 'c']);
    const added = route('MembersAdded', { user_ids: ['d'], added_by: 'a', added_at: at });
    expect(added?.recipients.sort()).toEqual(['a', 'c', 'd']);
  });
});
