import { describe, expect, it } from 'vitest';
import { CONVERSATION_EVENT_TYPES } from './events.js';
import { evolve, initialState, type ActiveConversation } from './state.js';
import { CURRENT_SCHEMA_VERSIONS, EventSchemaError, parseConversationEvent, safeParseConversationEvent, schemaVersionOf, upcast } from './upcast.js';

const alice = 'alice';
const bob = 'bob';
const created = {
  type: 'ConversationCreated',
  data: { conversation_id: 'c1', kind: 'direct', created_by: alice, members: [alice, bob], name: null, description: null, created_at: '2026-01-01T00:00:00.000Z' },
  metadata: {},
};
/** A MessageSent as the text-only prototype wrote it: no media, no client message id. */
const v0Message = {
  type: 'MessageSent',
  data: { message_id: 'm1', sender_id: alice, content: 'hello', content_type: 'text', created_at: '2026-01-01T00:00:01.000Z' },
  metadata: { schema: 0 },
};

describe('event schema versions', () => {
  it('every event type has a current version, and an event without one is version 1', () => {
    expect(Object.keys(CURRENT_SCHEMA_VERSIONS).sort()).toEqual([...CONVERSATION_EVENT_TYPES].sort());
    expect(schemaVersionOf(created)).toBe(1);
    expect(schemaVersionOf({ ...created, metadata: null })).toBe(1);
    expect(schemaVersionOf(v0Message)).toBe(0);
  });

  it('leaves an event already at the current version untouched (same data object)', () => {
    const current = { type: 'MessageSent', data: { ...v0Message.data, media: null, client_message_id: 'c-1' }, metadata: {} };
    expect(upcast(current).data).toBe(current.data);
  });

  it('upcasts a v0 MessageSent to the current shape without changing the stored data', () => {
    const before = JSON.stringify(v0Message);
    const event = parseConversationEvent(v0Message);
    expect(event).toEqual({ type: 'MessageSent', data: { ...v0Message.data, media: null, client_message_id: null } });
    expect(JSON.stringify(v0Message)).toBe(before);
    // The same event without its version marker is read as version 1 and refused: the marker matters.
    expect(() => parseConversationEvent({ ...v0Message, metadata: {} })).toThrow();
  });

  it('an upcast old event folds through evolve like a current one', () => {
    let state = evolve(initialState(), parseConversationEvent(created), 1);
    state = evolve(state, parseConversationEvent(v0Message), 2);
    const active = state as ActiveConversation;
    expect(active.version).toBe(2);
    // A version-0 message has no client_message_id (upcast to null): nothing for idempotent sends to keep.
    expect(active.clientMessages.size).toBe(0);
  });

  it('refuses a version newer than this software knows, and a malformed version, with a clear error', () => {
    const future = { ...created, metadata: { schema: 2 } };
    expect(() => upcast(future)).toThrow(EventSchemaError);
    expect(() => upcast(future)).toThrow(/ConversationCreated: schema version 2 is newer than this software knows \(1\)/);
    expect(() => upcast({ ...created, metadata: { schema: 'one' } })).toThrow(/metadata\.schema must be a non-negative integer/);
    expect(() => upcast({ ...created, metadata: { schema: 0 } })).toThrow(/no upcaster from schema version 0 to 1/);
    expect(safeParseConversationEvent(future)).toMatchObject({ success: false });
  });

  it('leaves unknown event types to the schema, which rejects them', () => {
    expect(upcast({ type: 'Nope', data: { a: 1 }, metadata: { schema: 7 } })).toEqual({ type: 'Nope', data: { a: 1 } });
    expect(safeParseConversationEvent({ type: 'Nope', data: {} }).success).toBe(false);
  });
});
