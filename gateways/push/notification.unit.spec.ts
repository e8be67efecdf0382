import { describe, expect, it } from 'vitest';
import { textPreview, type PushJob } from '../ports/push-job.js';
import { composeNotification, listSenders } from './notification.js';
import { testPushJob } from '../../infra/push-queue/testing/jobs.js';

let seq = 1;
const job = (over: Partial<PushJob> = {}): PushJob => testPushJob(++seq, over);
const names = new Map([
  ['alice', 'Alice'],
  ['carol', 'Carol'],
  ['dave', 'Dave'],
  ['erin', 'Erin'],
]);

describe('push notification wording', () => {
  it('one direct message: the sender and the text', () => {
    const j = job({ text: 'Lunch today?' });
    expect(composeNotification([j], names)).toEqual({
      title: 'Alice',
      body: 'Lunch today?',
      data: { type: 'new_messages', count: '1', conversation_id: 'c1', message_id: j.message_id, sequence_number: String(j.sequence_number) },
      collapseKey: 'c1',
    });
  });

  it('a burst in a direct conversation: one count', () => {
    const burst = [1, 2, 3, 4, 5].map(() => job());
    const n = composeNotification(burst, names);
    expect(n.title).toBe('Alice');
    expect(n.body).toBe('5 new messages from Alice');
    expect(n.data.message_id).toBe(burst[4]!.message_id);
  });

  it('media previews', () => {
    expect(composeNotification([job({ content_type: 'image', text: '' })], names).body).toBe('📷 Photo');
    expect(composeNotification([job({ content_type: 'video', text: '' })], names).body).toBe('🎥 Video');
    expect(composeNotification([job({ content_type: 'file', text: '', file_name: 'report.pdf' })], names).body).toBe('📎 report.pdf');
    expect(composeNotification([job({ content_type: 'file', text: '' })], names).body).toBe('📎 File');
  });

  it('groups: the group name as title, the sender in the body', () => {
    const g = { conversation_id: 'g1', conversation_kind: 'group' as const, conversation_name: 'Climbing' };
    expect(composeNotification([job({ ...g, text: 'Saturday?' })], names)).toMatchObject({ title: 'Climbing', body: 'Alice: Saturday?' });
    const many = composeNotification([job(g), job({ ...g, sender_id: 'carol' }), job(g)], names);
    expect(many).toMatchObject({ title: 'Climbing', body: '3 new messages from Alice and Carol', collapseKey: 'g1' });
    expect(composeNotification([job({ ...g, conversation_name: null })], names).title).toBe('Group');
  });

  it('several conversations: a count and the senders', () => {
    const n = composeNotification([job(), job({ conversation_id: 'c2', sender_id: 'carol' }), job({ conversation_id: 'c3', sender_id: 'gone' })], names);
    expect(n).toEqual({ title: '3 new messages', body: 'from Alice, Carol and Someone', data: { type: 'new_messages', count: '3' }, collapseKey: 'new_messages' });
  });

  it('lists senders, and cuts long texts', () => {
    expect(listSenders(['A'])).toBe('A');
    expect(listSenders(['A', 'B', 'C', 'D', 'E'])).toBe('A, B and 3 others');
    expect(textPreview('  two\n\nlines  ')).toBe('two lines');
    const long = textPreview('x'.repeat(300));
    expect([...long]).toHaveLength(100);
    expect(long.endsWith('…')).toBe(true);
    expect(() => composeNotification([], names)).toThrow(RangeError);
  });
});
