import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type Adapter, type ApiStack, type Registered } from '../testing/api-stack.js';

/** Message search over the whole real stack (store → search projection → REST), on PGlite and PostgreSQL. */
describe.each<Adapter>(['pglite', 'postgres'])('search API on %s', (adapter) => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack(adapter);
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  const as = (user: Registered) => stack.client.as(user);
  const register = (name: string) => stack.client.register(name);
  /** A word no other test uses, so each test sees only its own messages. */
  let words = 0;
  const word = (base: string) => `${base}${(++words).toString(36)}x${process.pid.toString(36)}`;

  async function send(user: Registered, conversationId: string, content: string) {
    const res = await as(user).post(`/api/v1/conversations/${conversationId}/messages`, { content });
    expect(res.status).toBe(201);
    return res.body as { message_id: string; sequence_number: number; created_at: string };
  }

  async function group(admin: Registered, members: Registered[]): Promise<string> {
    const res = await as(admin).post('/api/v1/groups', { name: 'team', member_ids: members.map((m) => m.user_id) });
    expect(res.status).toBe(201);
    return res.body.conversation_id;
  }

  async function direct(a: Registered, b: Registered): Promise<string> {
    const res = await as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    expect([200, 201]).toContain(res.status);
    return res.body.conversation_id;
  }

  const search = (user: Registered, params: Record<string, string | number>) =>
    as(user).get(`/api/v1/search?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString()}`);

  /** Polls until the search returns `count` hits (bounded), then returns the last response. */
  async function eventually(user: Registered, params: Record<string, string | number>, count: number, boundMs = 3_000) {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const res = await search(user, params);
      expect(res.status).toBe(200);
      if (res.body.hits.length >= count || Date.now() > deadline) return res;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const messageIds = (res: { body: { hits: { message_id: string }[] } }) => res.body.hits.map((h) => h.message_id);

  it('a sent message is searchable within 1 s, with its fields and a highlighted, escaped snippet', async () => {
    const alice = await register('alice');
    const bob = await register('bob');
    const conv = await direct(alice, bob);
    const w = word('kiwi');
    const sent = await send(alice, conv, `<b>Buy</b> ${w} & "milk"`);
    const res = await eventually(bob, { query: w }, 1, 1_000);
    expect(res.body.hits).toEqual([
      {
        message_id: sent.message_id,
        conversation_id: conv,
        sender_id: alice.user_id,
        sequence_number: sent.sequence_number,
        created_at: sent.created_at,
        snippet: `&lt;b&gt;Buy&lt;/b&gt; <mark>${w}</mark> &amp; &quot;milk&quot;`,
      },
    ]);
    expect(res.body.next_cursor).toBeNull();
  });

  it('finds by word across conversations and by sender; a non-member finds nothing and gets 404 on the conversation route', async () => {
    const alice = await register('alice');
    const bob = await register('bob');
    const carol = await register('carol');
    const eve = await register('eve');
    const w = word('roadmap');
    const team = await group(alice, [bob, carol]);
    const dm = await direct(alice, bob);
    const other = await direct(carol, eve);
    const m1 = await send(alice, team, `the ${w} is ready`);
    const m2 = await send(bob, dm, `${w} looks good`);
    await send(eve, other, `secret ${w}`);

    const mine = await eventually(alice, { query: w }, 2);
    expect(messageIds(mine).sort()).toEqual([m1.message_id, m2.message_id].sort());
    expect(messageIds(await search(alice, { query: w, sender: bob.user_id }))).toEqual([m2.message_id]);
    expect(messageIds(await search(alice, { query: w, conversation_id: team }))).toEqual([m1.message_id]);
    expect(messageIds(await search(alice, { query: `${w} ready` }))).toEqual([m1.message_id]);

    // Carol is in the group and in the direct chat with eve, not in alice's direct chat with bob.
    expect(messageIds(await eventually(carol, { query: w }, 2)).length).toBe(2);
    const outsider = await register('mallory');
    expect((await search(outsider, { query: w })).body.hits).toEqual([]);
    const forbidden = await as(outsider).get(`/api/v1/conversations/${team}/search?query=${w}`);
    expect(forbidden.status).toBe(404);
    expect(forbidden.body.error.code).toBe('conversation_not_found');

    const inConversation = await as(bob).get(`/api/v1/conversations/${team}/search?query=${w}`);
    expect(inConversation.status).toBe(200);
    expect(messageIds(inConversation)).toEqual([m1.message_id]);
  });

  it('a removed member does not find what was sent after the removal; a late joiner not what came before', async () => {
    const admin = await register('admin');
    const leaver = await register('leaver');
    const joiner = await register('joiner');
    const w = word('budget');
    const team = await group(admin, [leaver]);
    const before = await send(admin, team, `${w} draft one`);
    const removed = await as(admin).delete(`/api/v1/groups/${team}/members/${leaver.user_id}`);
    expect(removed.status).toBe(200);
    const added = await as(admin).post(`/api/v1/groups/${team}/members`, { user_ids: [joiner.user_id] });
    expect(added.status).toBe(200);
    const after = await send(admin, team, `${w} draft two`);

    expect(messageIds(await eventually(admin, { query: w }, 2)).sort()).toEqual([before.message_id, after.message_id].sort());
    expect(messageIds(await search(leaver, { query: w }))).toEqual([before.message_id]);
    expect(messageIds(await search(joiner, { query: w }))).toEqual([after.message_id]);
    // Even naming the conversation: the filter narrows, it never widens.
    expect(messageIds(await search(leaver, { query: w, conversation_id: team }))).toEqual([before.message_id]);
  });

  it('filters by date range: from and to inclusive', async () => {
    const alice = await register('alice');
    const bob = await register('bob');
    const conv = await direct(alice, bob);
    const w = word('invoice');
    const sent = [];
    for (let i = 0; i < 3; i++) {
      sent.push(await send(alice, conv, `${w} number ${i}`));
      await new Promise((r) => setTimeout(r, 5));
    }
    await eventually(alice, { query: w }, 3);
    expect(messageIds(await search(alice, { query: w, from: sent[1]!.created_at })).sort()).toEqual([sent[1]!.message_id, sent[2]!.message_id].sort());
    expect(messageIds(await search(alice, { query: w, to: sent[0]!.created_at }))).toEqual([sent[0]!.message_id]);
    expect(messageIds(await search(alice, { query: w, from: sent[1]!.created_at, to: sent[1]!.created_at }))).toEqual([sent[1]!.message_id]);
    const day = sent[0]!.created_at.slice(0, 10);
    expect(messageIds(await search(alice, { query: w, from: day, to: day })).length).toBeGreaterThanOrEqual(1);
    expect((await search(alice, { query: w, from: '2000-01-01', to: '2000-01-02' })).body.hits).toEqual([]);
  });

  it('ranks by relevance, then recency, and pages with an opaque cursor without repeats or gaps', async () => {
    const alice = await register('alice');
    const bob = await register('bob');
    const conv = await direct(alice, bob);
    const w = word('deploy');
    const best = await send(bob, conv, `${w} ${w} ${w}`);
    for (let i = 0; i < 11; i++) await send(alice, conv, `${w} step ${i} of the rollout with a few more words in it`);
    const all = await eventually(alice, { query: w, limit: 100 }, 12);
    const ids = messageIds(all);
    expect(ids).toHaveLength(12);
    expect(ids[0]).toBe(best.message_id);
    // Equal scores: newest first.
    const seqs: number[] = all.body.hits.slice(1).map((h: { sequence_number: number }) => h.sequence_number);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    const paged: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res = await search(alice, cursor === null ? { query: w, limit: 5 } : { query: w, limit: 5, cursor });
      expect(res.status).toBe(200);
      paged.push(...messageIds(res));
      cursor = res.body.next_cursor;
      if (cursor === null) break;
    }
    expect(paged).toEqual(ids);

    const first = await search(alice, { query: w, limit: 5 });
    const reused = await search(alice, { query: `${w} step`, limit: 5, cursor: first.body.next_cursor });
    expect(reused.status).toBe(400);
    expect(reused.body.error).toMatchObject({ code: 'invalid_cursor' });
    expect(reused.body.error.message).toMatch(/^cursor:/);
    const stolen = await search(bob, { query: w, limit: 5, cursor: first.body.next_cursor });
    expect(stolen.status).toBe(400);
  });

  it('refuses a cursor the client edited (score, date, message id) with 400 invalid_cursor, and takes the real one', async () => {
    const alice = await register('alice');
    const bob = await register('bob');
    const conv = await direct(alice, bob);
    const w = word('ledger');
    for (let i = 0; i < 3; i++) await send(alice, conv, `${w} entry ${i}`);
    await eventually(alice, { query: w }, 3);
    const first = await search(alice, { query: w, limit: 1 });
    const cursor: string = first.body.next_cursor;
    // What an attacker does: decode the payload (base64url JSON), keep its query fingerprint,
    // change what the index is asked to continue after, encode it again, signature (if any) kept.
    const edited = (change: Record<string, unknown>) => {
      const [payload = '', ...signature] = cursor.split('.');
      const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      return [Buffer.from(JSON.stringify({ ...body, ...change })).toString('base64url'), ...signature].join('.');
    };
    for (const change of [{ s: 1e308 }, { s: -1e308 }, { c: '0000-01-01T00:00:00.000Z' }, { c: '+275760-09-13T00:00:00.000Z' }, { m: '\u0000' }, { m: 'x'.repeat(100) }, { s: 0 }]) {
      const res = await search(alice, { query: w, limit: 1, cursor: edited(change) });
      expect({ change, status: res.status, code: res.body.error?.code }).toEqual({ change, status: 400, code: 'invalid_cursor' });
      expect(res.body.error.message).toMatch(/^cursor: /);
    }
    const next = await search(alice, { query: w, limit: 1, cursor });
    expect(next.status).toBe(200);
    expect(next.body.hits).toHaveLength(1);
    expect(next.body.hits[0].message_id).not.toBe(first.body.hits[0].message_id);
  });

  it('answers 400 naming the parameter for bad input', async () => {
    const alice = await register('alice');
    const cases: [Record<string, string | number>, RegExp, string?][] = [
      [{}, /^query: /],
      [{ query: '' }, /^query: /],
      [{ query: '   ' }, /^query: /],
      [{ query: '?!… 🎉' }, /^query: /],
      [{ query: 'x'.repeat(501) }, /^query: /],
      [{ query: 'a', limit: 0 }, /^limit: /],
      [{ query: 'a', limit: 101 }, /^limit: /],
      [{ query: 'a', limit: 'ten' }, /^limit: /],
      [{ query: 'a', from: 'yesterday' }, /^from: /],
      [{ query: 'a', to: '2026-02-30T25:00:00Z' }, /^to: /],
      [{ query: 'a', from: '2026-03-02', to: '2026-03-01' }, /^from: /],
      [{ query: 'a', cursor: 'not-a-cursor' }, /^cursor: /, 'invalid_cursor'],
      [{ query: 'a', cursor: Buffer.from('{"v":1}').toString('base64url') }, /^cursor: /, 'invalid_cursor'],
      [{ query: 'a', sender: 'x'.repeat(65) }, /^sender: /],
    ];
    for (const [params, message, code] of cases) {
      const res = await search(alice, params);
      expect({ params, status: res.status }).toEqual({ params, status: 400 });
      expect(res.body.error.code).toBe(code ?? 'validation_error');
      expect(res.body.error.message).toMatch(message);
    }
    const conv = await as(alice).get('/api/v1/conversations/nope/search');
    expect(conv.status).toBe(400);
    expect(conv.body.error.message).toMatch(/^query: /);
    const unauthenticated = await stack.client.anonymous.get('/api/v1/search?query=a');
    expect(unauthenticated.status).toBe(401);
  });
});
