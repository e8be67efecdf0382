import { Writable } from 'node:stream';
import { decodeJwt, SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationStreamId, directConversationId } from '../../commands/ids.js';
import { createApiStack, TEST_JWT_SECRET, uniqueName, type Adapter, type ApiStack, type Registered } from './testing/api-stack.js';

/** The REST API over the whole real stack, on the embedded store and on PostgreSQL (two shards). */
describe.each<Adapter>(['pglite', 'postgres'])('REST API on %s', (adapter) => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack(adapter);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const api = () => stack.client;
  const as = (user: Registered | null) => stack.client.as(user);

  async function directConversation(a: Registered, b: Registered): Promise<string> {
    const res = await as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    expect([200, 201]).toContain(res.status);
    return res.body.conversation_id;
  }

  async function send(user: Registered, conversationId: string, content: string, clientMessageId?: string) {
    const body = clientMessageId === undefined ? { content, content_type: 'text' } : { content, content_type: 'text', client_message_id: clientMessageId };
    return as(user).post(`/api/v1/conversations/${conversationId}/messages`, body);
  }

  it('walkthrough: register, open, send 3, read history, mark read, sender sees read', async () => {
    const alice = await api().register('alice');
    const bob = await api().register('bob');
    expect(alice.user_id).not.toBe(bob.user_id);

    const opened = await as(alice).post('/api/v1/conversations', { participant_id: bob.user_id });
    expect(opened.status).toBe(201);
    expect(opened.body).toMatchObject({ type: 'one_on_one' });
    expect(opened.body.participants.map((p: { user_id: string }) => p.user_id).sort()).toEqual([alice.user_id, bob.user_id].sort());
    const conversationId: string = opened.body.conversation_id;

    const sent = [];
    for (const content of ['hello bob', 'how are you?', 'lunch at noon?']) {
      const res = await send(alice, conversationId, content);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ conversation_id: conversationId, sender_id: alice.user_id, content, content_type: 'text', client_message_id: null });
      sent.push(res.body);
    }

    const history = await as(bob).get(`/api/v1/conversations/${conversationId}/messages?limit=50`);
    expect(history.status).toBe(200);
    expect(history.body.has_more).toBe(false);
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(['hello bob', 'how are you?', 'lunch at noon?']);
    const seqs: number[] = history.body.messages.map((m: { sequence_number: number }) => m.sequence_number);
    expect(seqs).toEqual(sent.map((m) => m.sequence_number));
    expect(seqs[1]! - seqs[0]!).toBe(1);
    expect(seqs[2]! - seqs[1]!).toBe(1);

    const last = sent[2]!;
    const inboxBefore = await as(bob).get('/api/v1/conversations');
    expect(inboxBefore.body.conversations.find((c: { conversation_id: string }) => c.conversation_id === conversationId)).toMatchObject({
      unread_count: 3,
      last_message: { message_id: last.message_id, content: 'lunch at noon?' },
    });

    const marked = await as(bob).put(`/api/v1/messages/${last.message_id}/status`, { status: 'read' });
    expect(marked.status).toBe(200);
    expect(marked.body).toMatchObject({ message_id: last.message_id, status: 'read', read_up_to: last.sequence_number, delivered_up_to: last.sequence_number });

    const status = await as(alice).get(`/api/v1/messages/${last.message_id}/status`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ status: 'read', recipient_count: 1, read_count: 1, delivered_count: 1 });
    expect(status.body.recipients).toEqual([expect.objectContaining({ user_id: bob.user_id, status: 'read' })]);

    const inboxAfter = await as(bob).get('/api/v1/conversations');
    expect(inboxAfter.body.conversations.find((c: { conversation_id: string }) => c.conversation_id === conversationId).unread_count).toBe(0);

    // Only the sender sees per-recipient status.
    const notSender = await as(bob).get(`/api/v1/messages/${last.message_id}/status`);
    expect(notSender.status).toBe(403);
    expect(notSender.body.error.code).toBe('not_message_sender');
  });

  it('opening the same pair again returns 200 with the same conversation, from either side', async () => {
    const a = await api().register('pair_a');
    const b = await api().register('pair_b');
    const first = await as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    const again = await as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    const reverse = await as(b).post('/api/v1/conversations', { participant_id: a.user_id });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(reverse.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(reverse.body.conversation_id).toBe(first.body.conversation_id);
  });

  it('a retried send with the same client_message_id returns the original message and appends nothing', async () => {
    const a = await api().register('retry_a');
    const b = await api().register('retry_b');
    const id = await directConversation(a, b);
    const first = await send(a, id, 'only once', 'client-1');
    expect(first.status).toBe(201);
    const versionAfterFirst = await stack.store.streamVersion(conversationStreamId(id));
    const retry = await send(a, id, 'only once', 'client-1');
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(retry.body.client_message_id).toBe('client-1');
    expect(await stack.store.streamVersion(conversationStreamId(id))).toBe(versionAfterFirst);
    const history = await as(b).get(`/api/v1/conversations/${id}/messages`);
    expect(history.body.messages).toHaveLength(1);
  });

  it('50 concurrent sends to one conversation get contiguous sequence numbers, no duplicate, no loss', async () => {
    const a = await api().register('burst_a');
    const b = await api().register('burst_b');
    const id = await directConversation(a, b);
    await send(b, id, 'before the burst');
    const base = await stack.store.streamVersion(conversationStreamId(id));

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => send(i % 2 === 0 ? a : b, id, `burst ${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(201));
    const seqs = results.map((r) => r.body.sequence_number as number).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => base + 1 + i));

    const history = await as(a).get(`/api/v1/conversations/${id}/messages?limit=100`);
    const burst = history.body.messages.filter((m: { content: string }) => m.content.startsWith('burst '));
    expect(burst.map((m: { sequence_number: number }) => m.sequence_number)).toEqual(seqs);
    expect(new Set(burst.map((m: { content: string }) => m.content)).size).toBe(50);

    const events = await stack.store.readStream(conversationStreamId(id));
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
    expect(events.filter((e) => e.type === 'MessageSent')).toHaveLength(51);
  });

  it('answers a stranger as it answers an unknown id (history, send, status, reactions): nothing tells him what exists', async () => {
    const a = await api().register('member_a');
    const b = await api().register('member_b');
    const eve = await api().register('eve');
    const id = await directConversation(a, b);
    const msg = (await send(a, id, 'private')).body;

    const byConversation = [await as(eve).get(`/api/v1/conversations/${id}/messages`), await send(eve, id, 'let me in')];
    for (const res of byConversation) {
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ code: 'conversation_not_found', message: 'conversation not found' });
    }
    const byMessage = [
      await as(eve).put(`/api/v1/messages/${msg.message_id}/status`, { status: 'read' }),
      await as(eve).get(`/api/v1/messages/${msg.message_id}/status`),
      await as(eve).post(`/api/v1/messages/${msg.message_id}/reactions`, { emoji: '👀' }),
    ];
    for (const res of byMessage) {
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ code: 'message_not_found', message: `message_id: no message ${msg.message_id}` });
    }
  });

  it('does not tell a stranger whether two users talk: the derived id of their direct conversation answers as one never opened', async () => {
    const a = await api().register('talk_a');
    const b = await api().register('talk_b');
    const c = await api().register('quiet_c');
    const d = await api().register('quiet_d');
    const eve = await api().register('prober');
    await send(a, await directConversation(a, b), 'between us');
    // Anyone who knows two user ids can compute the id of their direct conversation.
    const talking = directConversationId(a.user_id, b.user_id);
    const never = directConversationId(c.user_id, d.user_id);
    for (const probe of [
      (id: string) => as(eve).get(`/api/v1/conversations/${id}/messages`),
      (id: string) => as(eve).get(`/api/v1/conversations/${id}/search?query=between`),
      (id: string) => send(eve, id, 'hello?'),
    ]) {
      const [seen, unseen] = [await probe(talking), await probe(never)];
      expect({ status: seen.status, body: seen.body }).toEqual({ status: unseen.status, body: unseen.body });
      expect(seen.status).toBe(404);
    }
  });

  it('answers 404 for unknown conversations and messages', async () => {
    const a = await api().register('lost');
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await as(a).get(`/api/v1/conversations/${unknown}/messages`)).body.error.code).toBe('conversation_not_found');
    const sendRes = await send(a, unknown, 'hello?');
    expect(sendRes.status).toBe(404);
    const status = await as(a).get(`/api/v1/messages/${unknown}/status`);
    expect(status.status).toBe(404);
    expect(status.body.error.code).toBe('message_not_found');
    const opened = await as(a).post('/api/v1/conversations', { participant_id: unknown });
    expect(opened.status).toBe(404);
    expect(opened.body.error.code).toBe('user_not_found');
  });

  it('answers 400 naming the missing or invalid field', async () => {
    const a = await api().register('fields_a');
    const b = await api().register('fields_b');
    const id = await directConversation(a, b);

    const missing = await as(a).post(`/api/v1/conversations/${id}/messages`, { content_type: 'text' });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toEqual({ code: 'validation_error', message: 'content: Required' });

    const noParticipant = await as(a).post('/api/v1/conversations', {});
    expect(noParticipant.body.error.message).toBe('participant_id: Required');

    const badStatus = await as(b).put(`/api/v1/messages/${id}/status`, { status: 'seen' });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.message).toMatch(/^status: /);

    const badLimit = await as(a).get(`/api/v1/conversations/${id}/messages?limit=0`);
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.message).toMatch(/^limit: /);

    const badJson = await as(a).post(`/api/v1/conversations/${id}/messages`, '{"content": ');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('invalid_json');

    const text = await stack.client.call('POST', `/api/v1/conversations/${id}/messages`, {
      token: a.token,
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');

    const noBody = await stack.client.call('POST', `/api/v1/conversations/${id}/messages`, { token: a.token });
    expect(noBody.status).toBe(400);
    expect(noBody.body.error.message).toBe('body: Required');

    const media = await as(a).post(`/api/v1/conversations/${id}/messages`, { content: 'cat.png', content_type: 'image' });
    expect(media.status).toBe(400);
    expect(media.body.error).toMatchObject({ code: 'media_required', message: expect.stringMatching(/^media_id: /) });

    const empty = await send(a, id, '   ');
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/^content: /);

    const badRegister = await api().anonymous.post('/api/v1/auth/register', { username: 'x', email: 'not-an-email', password: 'short' });
    expect(badRegister.status).toBe(400);
    expect(badRegister.body.error.message).toMatch(/username: .*; email: .*; password: /);
  });

  it('answers 413 for content over MAX_MESSAGE_BYTES and for bodies over the body limit', async () => {
    const a = await api().register('big_a');
    const b = await api().register('big_b');
    const id = await directConversation(a, b);
    const max = stack.config.maxMessageBytes;

    expect((await send(a, id, 'x'.repeat(max))).status).toBe(201);
    // é is two bytes in UTF-8: max/2 + 1 of them is over the limit in bytes, not in characters.
    const tooBig = await send(a, id, 'é'.repeat(max / 2 + 1));
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('payload_too_large');
    expect(tooBig.body.error.message).toContain(String(max));

    const huge = await send(a, id, 'x'.repeat(max * 5));
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
  });

  it('answers 401 for a missing, malformed, forged or expired token', async () => {
    const a = await api().register('token_a');
    const missing = await api().anonymous.get('/api/v1/conversations');
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('unauthorized');

    const malformed = await stack.client.call('GET', '/api/v1/conversations', { headers: { authorization: `Token ${a.token}` } });
    expect(malformed.status).toBe(401);

    const garbage = await as({ ...a, token: 'not.a.jwt' }).get('/api/v1/conversations');
    expect(garbage.status).toBe(401);

    // Forged and expired tokens carry every claim a real one has: they fail on signature and expiry alone.
    const { sid, ver } = decodeJwt(a.token);
    const forged = await new SignJWT({ username: a.username, sid, ver })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(a.user_id)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
    expect((await as({ ...a, token: forged }).get('/api/v1/conversations')).status).toBe(401);

    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ username: a.username, sid, ver })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(a.user_id)
      .setIssuedAt(now - 7200)
      .setExpirationTime(now - 3600)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const expiredRes = await as({ ...a, token: expired }).get('/api/v1/conversations');
    expect(expiredRes.status).toBe(401);
    expect(expiredRes.body.error).toEqual({ code: 'unauthorized', message: 'the access token has expired; refresh it (POST /api/v1/auth/refresh) or log in again' });

    expect((await as(a).get('/api/v1/conversations')).status).toBe(200);
  });

  it('logs in by username or email, case-insensitively; refuses wrong passwords and taken names', async () => {
    const u = await api().register('login', 'my long password 1');
    const byName = await api().anonymous.post('/api/v1/auth/login', { username: u.username.toUpperCase(), password: 'my long password 1' });
    expect(byName.status).toBe(200);
    expect(byName.body.user_id).toBe(u.user_id);
    expect((await as({ ...u, token: byName.body.token }).get('/api/v1/conversations')).status).toBe(200);

    const byEmail = await api().anonymous.post('/api/v1/auth/login', { email: `${u.username}@example.test`, password: 'my long password 1' });
    expect(byEmail.body.user_id).toBe(u.user_id);
    const byLogin = await api().anonymous.post('/api/v1/auth/login', { login: u.username, password: 'my long password 1' });
    expect(byLogin.body.user_id).toBe(u.user_id);

    const wrong = await api().anonymous.post('/api/v1/auth/login', { username: u.username, password: 'not my password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_credentials');
    const nobody = await api().anonymous.post('/api/v1/auth/login', { username: uniqueName('nobody'), password: 'whatever1' });
    expect(nobody.status).toBe(401);

    const taken = await api().anonymous.post('/api/v1/auth/register', {
      username: u.username.toUpperCase(),
      email: `other-${u.username}@example.test`,
      password: 'another long password 123',
    });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('username_taken');
    const emailTaken = await api().anonymous.post('/api/v1/auth/register', {
      username: uniqueName('other'),
      email: `${u.username}@EXAMPLE.test`,
      password: 'another long password 123',
    });
    expect(emailTaken.status).toBe(409);
    expect(emailTaken.body.error.code).toBe('email_taken');
    // The response schema lets nothing else out.
    expect(Object.keys(byName.body).sort()).toEqual(['expires_in', 'refresh_token', 'token', 'user_id', 'username']);
  });

  it('groups: admins add and remove, members leave, removed members lose access', async () => {
    const owner = await api().register('g_owner');
    const bob = await api().register('g_bob');
    const carol = await api().register('g_carol');
    const dave = await api().register('g_dave');

    const created = await as(owner).post('/api/v1/groups', { name: 'Team', description: 'our team', member_ids: [bob.user_id, carol.user_id] });
    expect(created.status).toBe(201);
    const g = created.body;
    expect(g).toMatchObject({ type: 'group', name: 'Team', description: 'our team', created_by: owner.user_id });
    expect(g.group_id).toBe(g.conversation_id);
    expect(g.participants).toEqual(
      expect.arrayContaining([
        { user_id: owner.user_id, role: 'admin' },
        { user_id: bob.user_id, role: 'member' },
      ]),
    );

    const nonAdminAdd = await as(bob).post(`/api/v1/groups/${g.group_id}/members`, { user_ids: [dave.user_id] });
    expect(nonAdminAdd.status).toBe(403);
    expect(nonAdminAdd.body.error.code).toBe('not_an_admin');
    const nonAdminRemove = await stack.client.as(bob).delete(`/api/v1/groups/${g.group_id}/members/${carol.user_id}`);
    expect(nonAdminRemove.status).toBe(403);

    const added = await as(owner).post(`/api/v1/groups/${g.group_id}/members`, { user_ids: [dave.user_id] });
    expect(added.status).toBe(200);
    expect(added.body.participants.map((p: { user_id: string }) => p.user_id)).toContain(dave.user_id);

    const removed = await stack.client.as(owner).delete(`/api/v1/groups/${g.group_id}/members/${carol.user_id}`);
    expect(removed.status).toBe(200);
    expect(removed.body.participants.map((p: { user_id: string }) => p.user_id)).not.toContain(carol.user_id);
    expect((await send(carol, g.group_id, 'am I still here?')).status).toBe(404);
    expect((await as(carol).get(`/api/v1/conversations/${g.group_id}/messages`)).status).toBe(404);

    const left = await stack.client.as(dave).delete(`/api/v1/groups/${g.group_id}/members/${dave.user_id}`);
    expect(left.status).toBe(200);
    expect((await send(dave, g.group_id, 'bye')).status).toBe(404);

    const msg = await send(bob, g.group_id, 'hello team');
    expect(msg.status).toBe(201);
    const inbox = await as(owner).get('/api/v1/conversations');
    expect(inbox.body.conversations.find((c: { conversation_id: string }) => c.conversation_id === g.group_id)).toMatchObject({
      type: 'group',
      name: 'Team',
      unread_count: 1,
      last_message: { content: 'hello team', sender_id: bob.user_id },
    });

    // Members of a direct conversation cannot be changed.
    const direct = await directConversation(owner, bob);
    const notGroup = await as(owner).post(`/api/v1/groups/${direct}/members`, { user_ids: [dave.user_id] });
    expect(notGroup.status).toBe(409);
    expect(notGroup.body.error.code).toBe('not_a_group');
  });

  it('groups hold at most 256 members: the 257th is refused with 400', async () => {
    const owner = await api().register('big_group');
    const prefix = uniqueName('bulk');
    const { rows } = await stack.databases[0]!.query<{ user_id: string }>(
      `INSERT INTO users (user_id, username, email, password_hash)
       SELECT gen_random_uuid(), $1 || '_' || i, $1 || '_' || i || '@example.test', 'x' FROM generate_series(1, 256) AS i
       RETURNING user_id::text AS user_id`,
      [prefix],
    );
    const ids = rows.map((r) => r.user_id);
    const created = await as(owner).post('/api/v1/groups', { name: 'Everyone', member_ids: ids.slice(0, 255) });
    expect(created.status).toBe(201);
    expect(created.body.participants).toHaveLength(256);
    const full = await as(owner).post(`/api/v1/groups/${created.body.group_id}/members`, { user_ids: [ids[255]] });
    expect(full.status).toBe(400);
    expect(full.body.error.code).toBe('group_full');
    expect(full.body.error.message).toMatch(/^user_ids: /);
    const tooMany = await as(owner).post('/api/v1/groups', { name: 'Too many', member_ids: ids });
    expect(tooMany.status).toBe(400);
  });

  it('reactions: add (201, then 200), shown in history, remove (204, then 404)', async () => {
    const a = await api().register('react_a');
    const b = await api().register('react_b');
    const id = await directConversation(a, b);
    const msg = (await send(a, id, 'react to me')).body;

    const url = `/api/v1/messages/${msg.message_id}/reactions`;
    const added = await as(b).post(url, { emoji: '👍' });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ message_id: msg.message_id, conversation_id: id, user_id: b.user_id, emoji: '👍' });
    expect((await as(b).post(url, { emoji: '👍' })).status).toBe(200);
    expect((await as(a).post(url, { emoji: '👍' })).status).toBe(201);

    const history = await as(a).get(`/api/v1/conversations/${id}/messages`);
    expect(history.body.messages[0].reactions).toEqual([{ emoji: '👍', count: 2, user_ids: [b.user_id, a.user_id] }]);

    const removed = await stack.client.as(b).delete(`${url}/${encodeURIComponent('👍')}`);
    expect(removed.status).toBe(204);
    const again = await stack.client.as(b).delete(`${url}/${encodeURIComponent('👍')}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('reaction_not_found');
    const after = await as(a).get(`/api/v1/conversations/${id}/messages`);
    expect(after.body.messages[0].reactions).toEqual([{ emoji: '👍', count: 1, user_ids: [a.user_id] }]);
  });

  it('reactions are one emoji each, at most 20 distinct per user and message, even when sent all at once', async () => {
    const a = await api().register('cap_a');
    const b = await api().register('cap_b');
    const id = await directConversation(a, b);
    const msg = (await send(a, id, 'so many feelings')).body;
    const url = `/api/v1/messages/${msg.message_id}/reactions`;
    const emoji = Array.from({ length: 25 }, (_, i) => String.fromCodePoint(0x1f600 + i)); // 😀 ... 😘

    const replies = await Promise.all(emoji.map((e) => as(b).post(url, { emoji: e })));
    expect(replies.filter((r) => r.status === 201)).toHaveLength(20);
    const refused = replies.filter((r) => r.status !== 201);
    expect(refused.map((r) => [r.status, r.body.error.code])).toEqual(Array(5).fill([400, 'too_many_reactions']));
    expect(refused[0]!.body.error.message).toMatch(/^emoji: /);
    const history = async () => (await as(a).get(`/api/v1/conversations/${id}/messages`)).body.messages[0].reactions as { user_ids: string[] }[];
    expect((await history()).filter((r) => r.user_ids.includes(b.user_id))).toHaveLength(20);

    // Another member is not affected; a removal makes room again.
    expect((await as(a).post(url, { emoji: '😀' })).status).toBe(201);
    const kept = replies.findIndex((r) => r.status === 201);
    expect((await as(b).delete(`${url}/${encodeURIComponent(emoji[kept]!)}`)).status).toBe(204);
    const late = emoji[replies.findIndex((r) => r.status !== 201)]!;
    expect((await as(b).post(url, { emoji: late })).status).toBe(201);
    expect((await history()).filter((r) => r.user_ids.includes(b.user_id))).toHaveLength(20);

    const markup = await as(b).post(url, { emoji: '<svg/onload=alert(1)>' });
    expect(markup.status).toBe(400);
    expect(markup.body.error.message).toMatch(/^emoji: /);
  });

  it('pages history backwards with before (a sequence number or a message id)', async () => {
    const a = await api().register('page_a');
    const b = await api().register('page_b');
    const id = await directConversation(a, b);
    const sent = [];
    for (let i = 1; i <= 5; i++) sent.push((await send(a, id, `m${i}`)).body);

    const latest = await as(b).get(`/api/v1/conversations/${id}/messages?limit=2`);
    expect(latest.body.messages.map((m: { content: string }) => m.content)).toEqual(['m4', 'm5']);
    expect(latest.body.has_more).toBe(true);
    const older = await as(b).get(`/api/v1/conversations/${id}/messages?limit=2&before=${latest.body.messages[0].message_id}`);
    expect(older.body.messages.map((m: { content: string }) => m.content)).toEqual(['m2', 'm3']);
    const bySeq = await as(b).get(`/api/v1/conversations/${id}/messages?limit=10&before=${sent[1]!.sequence_number}`);
    expect(bySeq.body).toMatchObject({ has_more: false, messages: [expect.objectContaining({ content: 'm1' })] });

    const other = await directConversation(a, await api().register('page_c'));
    const foreign = (await send(a, other, 'elsewhere')).body;
    const wrongCursor = await as(b).get(`/api/v1/conversations/${id}/messages?before=${foreign.message_id}`);
    expect(wrongCursor.status).toBe(400);
    expect(wrongCursor.body.error.message).toMatch(/^before: /);
  });

  it('delivered watermarks move forward only and show in the sender status', async () => {
    const a = await api().register('recv_a');
    const b = await api().register('recv_b');
    const id = await directConversation(a, b);
    const first = (await send(a, id, 'one')).body;
    const second = (await send(a, id, 'two')).body;

    const delivered = await as(b).put(`/api/v1/messages/${second.message_id}/status`, { status: 'delivered' }, { 'x-device-id': 'phone' });
    expect(delivered.body).toMatchObject({ status: 'delivered', delivered_up_to: second.sequence_number, read_up_to: 0 });
    const back = await as(b).put(`/api/v1/messages/${first.message_id}/status`, { status: 'delivered' }, { 'x-device-id': 'phone' });
    expect(back.body.delivered_up_to).toBe(second.sequence_number);

    const status = await as(a).get(`/api/v1/messages/${first.message_id}/status`);
    expect(status.body).toMatchObject({ status: 'delivered', delivered_count: 1, read_count: 0 });
  });

  it('serves /healthz and answers unknown routes in the error format', async () => {
    expect((await api().anonymous.get('/healthz')).body).toEqual({ status: 'ok' });
    const missing = await api().anonymous.get('/api/v1/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('route_not_found');
  });
});

describe('rate limiting', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('limits each user separately and answers 429 with Retry-After', async () => {
    const a = await stack.client.register('rl_a');
    const b = await stack.client.register('rl_b');
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await stack.client.as(a).get('/api/v1/conversations')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await stack.client.as(a).get('/api/v1/conversations');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another user on the same address has their own budget.
    expect((await stack.client.as(b).get('/api/v1/conversations')).status).toBe(200);
  });
});

describe('failures inside the server', () => {
  it('answers 500 with a generic message, logs the cause, and never logs the bearer token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const stack = await createApiStack('pglite', { logger: pino({ level: 'info' }, sink) });
    try {
      const a = await stack.client.register('outage');
      // A read model goes away under the server (the token check, which reads other tables, still works).
      await stack.databases[0]!.query('ALTER TABLE rm_members RENAME TO rm_members_gone');
      const res = await stack.client.as(a).get('/api/v1/conversations');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: { code: 'internal_error', message: 'internal server error' } });
      const logged = lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } });
      expect(logged.find((l) => l.level === 50 && l.msg === 'request failed')?.err?.message).toBeTruthy();
      expect(lines.join('\n')).not.toContain(a.token);
    } finally {
      await stack.close();
    }
  });

  it('answers 503 service_unavailable with Retry-After, never 401, when the token cannot be checked (database down)', async () => {
    const stack = await createApiStack('pglite');
    try {
      const a = await stack.client.register('auth_outage');
      await stack.databases[0]!.close(); // the database goes away under the server
      const res = await stack.client.as(a).get('/api/v1/conversations');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('service_unavailable');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await stack.close();
    }
  }, 60_000);
});
