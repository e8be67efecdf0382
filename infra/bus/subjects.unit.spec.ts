import { describe, expect, it } from 'vitest';
import { busNames, subjectToken } from './subjects.js';

describe('bus names', () => {
  const names = busNames('chat');

  it('builds every name from the prefix', () => {
    expect(names.stream).toBe('chat_EVENTS');
    expect(names.eventsWildcard).toBe('chat.events.>');
    expect(names.eventSubject({ shard: 3, stream_id: 'conversation-0b1c' })).toBe('chat.events.3.conversation-0b1c');
    expect(names.shardWildcard(3)).toBe('chat.events.3.*');
    expect(names.nodeSubject('gw-1')).toBe('chat.node.gw-1');
    expect(names.durable('delivery')).toBe('delivery');
  });

  it('escapes a stream id into exactly one subject token, injectively', () => {
    expect(subjectToken('a.b*c>d e')).toBe('a~2Eb~2Ac~3Ed~20e');
    expect(subjectToken('~')).toBe('~7E');
    expect(subjectToken('é')).toBe('~C3~A9');
    expect(subjectToken('')).toBe('~');
    expect(subjectToken('a.b')).not.toBe(subjectToken('a~2Eb'));
    const subject = names.eventSubject({ shard: 0, stream_id: 'x.y.z' });
    expect(subject.split('.')).toHaveLength(4);
  });

  it('reads the shard back from an event subject', () => {
    expect(names.shardOfSubject('chat.events.12.conversation-1')).toBe(12);
    expect(names.shardOfSubject('chat.events.x.conversation-1')).toBeUndefined();
    expect(names.shardOfSubject('chat.events.01.c')).toBeUndefined();
    expect(names.shardOfSubject('other.events.1.c')).toBeUndefined();
  });

  it('refuses names that would break a subject, a stream or a consumer name', () => {
    for (const bad of ['', 'a.b', 'a*', 'a>', 'a b', 'a/b', 'x'.repeat(33)]) expect(() => busNames(bad)).toThrow(TypeError);
    expect(() => names.durable('a.b')).toThrow(/consumer group/);
    expect(() => names.nodeSubject('a>')).toThrow(/node id/);
    expect(() => names.eventSubject({ shard: -1, stream_id: 's' })).toThrow(RangeError);
  });
});
