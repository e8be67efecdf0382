import { describe, expect, it } from 'vitest';
import { EmptyQueryError, type MembershipInterval, type SearchDocument, type SearchIndex, type SearchQuery } from '../../domain/ports/search.js';

/**
 * The feature suite every SearchIndex adapter must pass (see the guarantees in port.ts).
 *
 *   searchIndexContract('postgres', { create: async () => index });
 *
 * `create` returns a set-up, EMPTY index; the suite closes it. Each test writes its own
 * conversations (ids unique per test), so a suite may share one index across tests.
 */
export type SearchIndexContractOptions = {
  create: () => Promise<SearchIndex>;
};

let counter = 0;
const unique = (name: string) => `${name}-${Date.now().toString(36)}-${++counter}`;

type Fixture = { conv: string; doc(seq: number, sender: string, content: string, at: string): SearchDocument };
function fixture(): Fixture {
  const conv = unique('conv');
  return {
    conv,
    doc: (seq, sender, content, at) => ({ message_id: `${conv}-m${seq}`, conversation_id: conv, sequence_number: seq, sender_id: sender, created_at: at, content }),
  };
}

const all = (conv: string, from = 1, to: number | null = null): MembershipInterval => ({ conversation_id: conv, from_version: from, to_version: to });
const ids = (page: { hits: { message_id: string }[] }) => page.hits.map((h) => h.message_id);

export function searchIndexContract(name: string, options: SearchIndexContractOptions): void {
  // Generous: the first test of an embedded adapter also starts PGlite, slow on a busy machine.
  describe(`SearchIndex contract: ${name}`, { timeout: 120_000 }, () => {
    let position = 0;
    async function given(index: SearchIndex, docs: SearchDocument[]) {
      await index.write({ upserts: docs, removals: [], checkpoint: { shard: 0, position: ++position } });
      await index.refresh();
    }
    async function withIndex(fn: (index: SearchIndex) => Promise<void>) {
      const index = await options.create();
      try {
        await fn(index);
      } finally {
        await index.close();
      }
    }
    const search = (index: SearchIndex, q: Partial<SearchQuery> & Pick<SearchQuery, 'text' | 'scope'>) => index.search({ limit: 20, ...q });

    it('finds messages by word, case- and accent-insensitively, every word required', () =>
      withIndex(async (index) => {
        const f = fixture();
        await given(index, [
          f.doc(2, 'alice', 'Lunch at the Café tomorrow?', '2026-01-01T10:00:00.000Z'),
          f.doc(3, 'bob', 'Sure, the cafe near the office', '2026-01-01T10:01:00.000Z'),
          f.doc(4, 'alice', 'Office party on friday', '2026-01-01T10:02:00.000Z'),
        ]);
        expect(ids(await search(index, { text: 'CAFE', scope: [all(f.conv)] })).sort()).toEqual([`${f.conv}-m2`, `${f.conv}-m3`]);
        expect(ids(await search(index, { text: 'café office', scope: [all(f.conv)] }))).toEqual([`${f.conv}-m3`]);
        expect(ids(await search(index, { text: 'nowhere', scope: [all(f.conv)] }))).toEqual([]);
        const hit = (await search(index, { text: 'party', scope: [all(f.conv)] })).hits[0]!;
        expect(hit).toMatchObject({ message_id: `${f.conv}-m4`, conversation_id: f.conv, sequence_number: 4, sender_id: 'alice', created_at: '2026-01-01T10:02:00.000Z', content: 'Office party on friday' });
        expect(hit.score).toBeGreaterThan(0);
      }));

    it('rejects a query without a searchable word', () =>
      withIndex(async (index) => {
        await expect(index.search({ text: ' ?! ', scope: [all(unique('c'))], limit: 5 })).rejects.toBeInstanceOf(EmptyQueryError);
      }));

    it('filters by sender and by date range (from inclusive, until exclusive)', () =>
      withIndex(async (index) => {
        const f = fixture();
        await given(index, [
          f.doc(2, 'alice', 'deploy the release', '2026-02-01T09:00:00.000Z'),
          f.doc(3, 'bob', 'deploy went fine', '2026-02-02T09:00:00.000Z'),
          f.doc(4, 'alice', 'deploy again', '2026-02-03T09:00:00.000Z'),
        ]);
        const scope = [all(f.conv)];
        expect(ids(await search(index, { text: 'deploy', scope, sender_id: 'alice' })).sort()).toEqual([`${f.conv}-m2`, `${f.conv}-m4`]);
        expect(ids(await search(index, { text: 'deploy', scope, from: '2026-02-02T09:00:00.000Z', until: '2026-02-03T09:00:00.000Z' }))).toEqual([`${f.conv}-m3`]);
        expect(ids(await search(index, { text: 'deploy', scope, sender_id: 'alice', from: '2026-02-02T00:00:00.000Z' }))).toEqual([`${f.conv}-m4`]);
      }));

    it('searches across the conversations of the scope only, within their intervals', () =>
      withIndex(async (index) => {
        const a = fixture();
        const b = fixture();
        const c = fixture();
        await given(index, [
          a.doc(2, 'u1', 'quarterly budget', '2026-03-01T00:00:00.000Z'),
          a.doc(9, 'u1', 'budget after I left', '2026-03-05T00:00:00.000Z'),
          b.doc(2, 'u2', 'budget before I joined', '2026-03-01T00:00:00.000Z'),
          b.doc(6, 'u2', 'budget approved', '2026-03-02T00:00:00.000Z'),
          c.doc(2, 'u3', 'budget secret', '2026-03-03T00:00:00.000Z'),
        ]);
        const scope = [all(a.conv, 1, 5), all(b.conv, 4)];
        expect(ids(await search(index, { text: 'budget', scope })).sort()).toEqual([`${a.conv}-m2`, `${b.conv}-m6`].sort());
        expect(ids(await search(index, { text: 'budget', scope: [] }))).toEqual([]);
        // Two intervals in one conversation (removed, then added again).
        expect(ids(await search(index, { text: 'budget', scope: [all(a.conv, 1, 3), all(a.conv, 8)] })).sort()).toEqual([`${a.conv}-m2`, `${a.conv}-m9`]);
      }));

    it('ranks by relevance, then recency', () =>
      withIndex(async (index) => {
        const f = fixture();
        await given(index, [
          f.doc(2, 'u', 'incident report: the incident was an incident', '2026-04-01T00:00:00.000Z'),
          f.doc(3, 'u', 'I wrote something about a lot of unrelated topics and also the incident, then kept talking about lunch and the weather today', '2026-04-02T00:00:00.000Z'),
          f.doc(4, 'u', 'incident', '2026-04-03T00:00:00.000Z'),
          f.doc(5, 'u', 'incident', '2026-04-04T00:00:00.000Z'),
        ]);
        const hits = (await search(index, { text: 'incident', scope: [all(f.conv)] })).hits;
        const order = hits.map((h) => h.message_id);
        // The long message mentioning it once ranks last; equal scores come newest first.
        expect(order[order.length - 1]).toBe(`${f.conv}-m3`);
        expect(order.indexOf(`${f.conv}-m5`)).toBe(order.indexOf(`${f.conv}-m4`) - 1);
        for (let i = 1; i < hits.length; i++) expect(hits[i]!.score).toBeLessThanOrEqual(hits[i - 1]!.score);
      }));

    it('pages with `after`: every hit once, in order, ties broken stably', () =>
      withIndex(async (index) => {
        const f = fixture();
        const docs = Array.from({ length: 23 }, (_, i) =>
          // Three share each timestamp: the message id breaks the tie.
          f.doc(i + 2, 'u', i % 4 === 0 ? 'standup standup notes' : 'standup notes', new Date(Date.UTC(2026, 4, 1, 0, Math.floor(i / 3))).toISOString()),
        );
        await given(index, docs);
        const whole = ids(await search(index, { text: 'standup', scope: [all(f.conv)], limit: 100 }));
        expect(whole).toHaveLength(23);
        const paged: string[] = [];
        let page = await search(index, { text: 'standup', scope: [all(f.conv)], limit: 5 });
        for (let n = 0; n < 10; n++) {
          paged.push(...ids(page));
          if (page.next === null) break;
          page = await search(index, { text: 'standup', scope: [all(f.conv)], limit: 5, after: page.next });
        }
        expect(page.next).toBeNull();
        expect(paged).toEqual(whole);
      }));

    it('is idempotent by message id, removes documents, and keeps a checkpoint per shard', () =>
      withIndex(async (index) => {
        const f = fixture();
        const docs = [f.doc(2, 'u', 'retry me', '2026-05-01T00:00:00.000Z'), f.doc(3, 'u', 'retry me too', '2026-05-01T00:00:01.000Z')];
        await index.write({ upserts: docs, removals: [], checkpoint: { shard: 1, position: 40 } });
        await index.write({ upserts: docs, removals: [], checkpoint: { shard: 1, position: 40 } });
        await index.write({ upserts: [{ ...docs[1]!, content: 'edited words' }], removals: [], checkpoint: { shard: 0, position: 7 } });
        await index.refresh();
        expect(ids(await search(index, { text: 'retry', scope: [all(f.conv)] }))).toEqual([`${f.conv}-m2`]);
        expect(ids(await search(index, { text: 'edited', scope: [all(f.conv)] }))).toEqual([`${f.conv}-m3`]);
        expect(await index.checkpoint(1)).toBe(40);
        expect(await index.checkpoint(0)).toBeGreaterThanOrEqual(7);
        expect(await index.checkpoint(5)).toBe(0);
        await index.write({ upserts: [], removals: [`${f.conv}-m2`], checkpoint: { shard: 1, position: 41 } });
        await index.refresh();
        expect(ids(await search(index, { text: 'retry', scope: [all(f.conv)] }))).toEqual([]);
        expect(await index.checkpoint(1)).toBe(41);
      }));

    it('stores any text as sent: quotes, backslashes, commas, braces, control characters, emoji', () =>
      withIndex(async (index) => {
        const f = fixture();
        const odd = [
          'record\u001eseparator and "quotes", {braces}, back\\slash, NULL',
          "it's a 'quoted' \"tab\"\there, {NULL} back\\slash 🎉 naïve",
          'plain words only',
        ];
        const docs = odd.map((content, i) => f.doc(i + 2, 'u', content, '2026-05-02T00:00:00.000Z'));
        // Written apart: an adapter may send a batch differently when a text holds a separator it uses.
        await given(index, docs.slice(0, 1));
        await given(index, docs.slice(1));
        const found = await search(index, { text: 'separator', scope: [all(f.conv)] });
        expect(found.hits.map((h) => h.content)).toEqual([odd[0]]);
        expect((await search(index, { text: 'naive', scope: [all(f.conv)] })).hits.map((h) => h.content)).toEqual([odd[1]]);
        expect((await search(index, { text: 'plain', scope: [all(f.conv)] })).hits.map((h) => h.content)).toEqual([odd[2]]);
      }));

    it('matches CJK text by character pairs', () =>
      withIndex(async (index) => {
        const f = fixture();
        await given(index, [f.doc(2, 'u', '明日東京都庁で会いましょう', '2026-06-01T00:00:00.000Z'), f.doc(3, 'u', '京東の話', '2026-06-01T00:00:01.000Z')]);
        expect(ids(await search(index, { text: '東京', scope: [all(f.conv)] }))).toEqual([`${f.conv}-m2`]);
      }));

    it('clear empties the index and its checkpoints', () =>
      withIndex(async (index) => {
        const f = fixture();
        await given(index, [f.doc(2, 'u', 'ephemeral', '2026-07-01T00:00:00.000Z')]);
        await index.clear();
        await index.refresh();
        expect(ids(await search(index, { text: 'ephemeral', scope: [all(f.conv)] }))).toEqual([]);
        expect(await index.checkpoint(0)).toBe(0);
      }));
  });
}
