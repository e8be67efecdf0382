import type { PushNotification } from '../ports/push-provider.js';
import type { PushJob } from '../ports/push-job.js';

/**
 * What one notification says, for the messages (jobs) batched for one user. The wording:
 *
 * | batch | title | body |
 * |---|---|---|
 * | 1 message, direct | sender | the message preview |
 * | n messages, direct | sender | `n new messages from <sender>` |
 * | 1 message, group | group name | `<sender>: <preview>` |
 * | n messages, group | group name | `n new messages from <senders>` |
 * | several conversations | `n new messages` | `from <senders>` |
 *
 * A preview is the text (whitespace collapsed, at most 100 characters, then "…"), or
 * "📷 Photo", "🎥 Video", "📎 <file name>" ("📎 File" without one). Senders: "alice",
 * "alice and carol", "alice, carol and dave", "alice, carol and 2 others" (first message first).
 * A sender whose account is gone is "Someone"; a group without a name is "Group".
 * `data` tells the app what to open: type, count, and for one conversation its id and the last
 * message's id and sequence number.
 */
export const UNKNOWN_SENDER = 'Someone';
export const UNNAMED_GROUP = 'Group';

export function preview(job: Pick<PushJob, 'content_type' | 'text' | 'file_name'>): string {
  switch (job.content_type) {
    case 'text':
      return job.text;
    case 'image':
      return '📷 Photo';
    case 'video':
      return '🎥 Video';
    case 'file':
      return `📎 ${job.file_name ?? 'File'}`;
  }
}

export function listSenders(names: string[]): string {
  if (names.length <= 1) return names[0] ?? UNKNOWN_SENDER;
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]}`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others`;
}

const plural = (n: number) => (n === 1 ? '1 new message' : `${n} new messages`);

/** `jobs` must be non-empty, all for one user. */
export function composeNotification(jobs: PushJob[], senderNames: ReadonlyMap<string, string>): PushNotification {
  if (jobs.length === 0) throw new RangeError('composeNotification needs at least one job');
  const ordered = [...jobs].sort((a, b) => a.sent_at.localeCompare(b.sent_at) || a.sequence_number - b.sequence_number);
  const name = (id: string) => senderNames.get(id) ?? UNKNOWN_SENDER;
  const senders = [...new Set(ordered.map((j) => j.sender_id))].map(name);
  const conversations = new Set(ordered.map((j) => j.conversation_id));
  const first = ordered[0]!;
  const last = ordered.at(-1)!;
  const n = ordered.length;

  if (conversations.size > 1) {
    return { title: plural(n), body: `from ${listSenders(senders)}`, data: { type: 'new_messages', count: String(n) }, collapseKey: 'new_messages' };
  }
  const data = {
    type: 'new_messages',
    count: String(n),
    conversation_id: first.conversation_id,
    message_id: last.message_id,
    sequence_number: String(last.sequence_number),
  };
  const base = { data, collapseKey: first.conversation_id };
  if (first.conversation_kind === 'direct') {
    return { ...base, title: name(first.sender_id), body: n === 1 ? preview(first) : `${plural(n)} from ${listSenders(senders)}` };
  }
  const title = first.conversation_name ?? UNNAMED_GROUP;
  return { ...base, title, body: n === 1 ? `${name(first.sender_id)}: ${preview(first)}` : `${plural(n)} from ${listSenders(senders)}` };
}
