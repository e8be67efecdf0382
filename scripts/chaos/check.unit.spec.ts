import { describe, expect, it } from 'vitest';
import { checkScenario, type ConversationObservation, type MessageCopy } from './check.js';

const m = (version: number, clientMessageId = `c${version}`): MessageCopy => ({ clientMessageId, version });
const three = [m(1), m(2), m(3)];

/** Given a conversation of alice and bob where every place holds `three`, with `change` applied. */
function conversation(change: Partial<ConversationObservation> = {}): ConversationObservation {
  return {
    conversationId: 'conv-1',
    members: ['alice', 'bob'],
    acked: three,
    stored: three,
    history: three,
    received: { alice: three, bob: three },
    ...change,
  };
}

describe('the chaos checker', () => {
  it('passes a conversation where every acknowledged message is stored, listed and delivered once, in order', () => {
    const result = checkScenario([conversation()]);
    expect(result).toMatchObject({ acked: 3, stored: 3, lost: 0, duplicated: 0, out_of_order: 0, mismatched: 0, problems: [] });
  });

  it('detects a message lost from the store, from history or at one member', () => {
    expect(checkScenario([conversation({ stored: [m(1), m(3)] })])).toMatchObject({ stored: 2, lost: 1, lost_in: { store: 1, history: 0, clients: 0 } });
    expect(checkScenario([conversation({ history: [m(1), m(2)] })])).toMatchObject({ stored: 3, lost: 1, lost_in: { store: 0, history: 1, clients: 0 } });
    const atBob = checkScenario([conversation({ received: { alice: three, bob: [m(1), m(3)] } })]);
    expect(atBob).toMatchObject({ lost: 1, lost_in: { clients: 1 }, out_of_order: 0 });
    expect(atBob.problems).toEqual(['conv-1 v2 (c2): never reached member bob']);
    // A member whose client got nothing at all.
    expect(checkScenario([conversation({ received: { alice: three } })])).toMatchObject({ lost: 3, lost_in: { clients: 3 } });
  });

  it('counts a message missing in several places once', () => {
    const result = checkScenario([conversation({ stored: [m(1)], history: [m(1)], received: { alice: [m(1)], bob: [m(1)] } })]);
    expect(result).toMatchObject({ lost: 2, lost_in: { store: 2, history: 2, clients: 2 } });
  });

  it('detects duplicates in the store, in history and at a client', () => {
    expect(checkScenario([conversation({ stored: [m(1), m(2), m(2), m(3)] })]).duplicated).toBe(1);
    expect(checkScenario([conversation({ history: [m(1), m(1), m(2), m(3)] })]).duplicated).toBe(1);
    const atAlice = checkScenario([conversation({ received: { alice: [m(1), m(2), m(3), m(3)], bob: three } })]);
    expect(atAlice).toMatchObject({ duplicated: 1, out_of_order: 0, lost: 0 });
    expect(atAlice.problems).toEqual(['conv-1 v3 (c3): reached member alice 2 times']);
  });

  it('detects deliveries out of order, and an acknowledged message stored at another version', () => {
    const swapped = checkScenario([conversation({ received: { alice: three, bob: [m(1), m(3), m(2)] } })]);
    expect(swapped).toMatchObject({ out_of_order: 1, lost: 0, duplicated: 0 });
    expect(swapped.problems).toEqual(['conv-1 v2 (c2): reached member bob after v3']);
    // Behind a message that was not acknowledged (another client's, or one still unacknowledged) counts too.
    expect(checkScenario([conversation({ received: { alice: three, bob: [m(1), m(9, 'other'), m(2), m(3)] } })]).out_of_order).toBe(2);
    expect(checkScenario([conversation({ stored: [m(1), m(2), { clientMessageId: 'c3', version: 4 }] })]).mismatched).toBe(1);
  });

  it('adds up several conversations and ignores a retried acknowledgement of the same send', () => {
    const other = conversation({ conversationId: 'conv-2', acked: [m(1), m(1)], stored: [m(1)], history: [m(1)], received: { alice: [m(1)], bob: [] } });
    const result = checkScenario([conversation(), other]);
    expect(result).toMatchObject({ acked: 4, stored: 4, lost: 1, duplicated: 0 });
  });
});
