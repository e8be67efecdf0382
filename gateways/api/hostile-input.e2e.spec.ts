import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationStreamId } from '../../commands/ids.js';
import { createApiStack, type Adapter, type ApiStack, type Registered } from './testing/api-stack.js';

/**
 * Hostile input on every REST route and field: NUL, lone surrogates, noncharacters, control
 * characters, numbers out of range or not numbers at all, impossible dates, forged cursors. Each
 * must be answered 400 with the field named first in the message (never a 500), and must change
 * nothing: the conversation's stream keeps its version and a good request still works after.
 * On the embedded store and on PostgreSQL (two shards), whose refusals differ.
 */

const NUL = 'a\u0000b';
const HIGH = 'a\ud800b';
const LOW = '\udc00b';
const NONCHAR = 'a\uffffb';
/** Percent-encoded for paths and query strings. */
const NUL_URL = 'a%00b';

type Ctx = { alice: Registered; bob: Registered; conversationId: string; groupId: string; messageId: string; mediaId: string };

type Row = {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: (c: Ctx) => string;
  body?: (c: Ctx) => unknown;
  headers?: Record<string, string>;
  /** The field the message must name first. */
  field: string;
  /** Default validation_error. */
  code?: string;
  /** Without a token (register, login). */
  anonymous?: boolean;
};

const text = (field: string, value: string) => () => ({ content: 'hi', content_type: 'text', [field]: value, ...(field === 'content' ? { content: value } : {}) }) as unknown;
const searchCursor = (payload: object) => Buffer.from(JSON.stringify(payload)).toString('base64url');

const ROWS: Row[] = [
  // accounts
  { name: 'login with NUL', method: 'POST', url: () => '/api/v1/auth/login', body: () => ({ username: NUL, password: 'whatever-123' }), field: 'username', anonymous: true },
  { name: 'login by e-mail with a lone surrogate', method: 'POST', url: () => '/api/v1/auth/login', body: () => ({ email: HIGH, password: 'whatever-123' }), field: 'email', anonymous: true },
  { name: 'login with a noncharacter', method: 'POST', url: () => '/api/v1/auth/login', body: () => ({ login: NONCHAR, password: 'whatever-123' }), field: 'login', anonymous: true },
  { name: 'register with a NUL e-mail', method: 'POST', url: () => '/api/v1/auth/register', body: () => ({ username: 'nul_mail', email: `x${NUL}@example.com`, password: 'long-enough-passphrase-1' }), field: 'email', anonymous: true },
  { name: 'register with a NUL phone number', method: 'POST', url: () => '/api/v1/auth/register', body: () => ({ username: 'nul_phone', email: 'nul_phone@example.com', password: 'long-enough-passphrase-1', phone_number: `+33${NUL}` }), field: 'phone_number', anonymous: true },

  // conversations and groups
  { name: 'open a conversation with a NUL participant', method: 'POST', url: () => '/api/v1/conversations', body: () => ({ participant_id: NUL }), field: 'participant_id' },
  { name: 'inbox limit 1e400', method: 'GET', url: () => '/api/v1/conversations?limit=1e400', field: 'limit' },
  { name: 'inbox limit NaN', method: 'GET', url: () => '/api/v1/conversations?limit=NaN', field: 'limit' },
  { name: 'inbox limit -1', method: 'GET', url: () => '/api/v1/conversations?limit=-1', field: 'limit' },
  { name: 'inbox limit past 2^64', method: 'GET', url: () => '/api/v1/conversations?limit=99999999999999999999', field: 'limit' },
  { name: 'group name with NUL', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: NUL, member_ids: [c.bob.user_id] }), field: 'name' },
  { name: 'group name with a lone surrogate', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: HIGH, member_ids: [c.bob.user_id] }), field: 'name' },
  { name: 'group name with U+FFFF', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: NONCHAR, member_ids: [c.bob.user_id] }), field: 'name' },
  { name: 'group name over two lines', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: 'a\nb', member_ids: [c.bob.user_id] }), field: 'name' },
  { name: 'group description with NUL', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: 'g', description: NUL, member_ids: [c.bob.user_id] }), field: 'description' },
  { name: 'group description with a lone low surrogate', method: 'POST', url: () => '/api/v1/groups', body: (c) => ({ name: 'g', description: LOW, member_ids: [c.bob.user_id] }), field: 'description' },
  { name: 'group member id with NUL', method: 'POST', url: () => '/api/v1/groups', body: () => ({ name: 'g', member_ids: [NUL] }), field: 'member_ids.0' },
  { name: 'group id with NUL', method: 'POST', url: () => `/api/v1/groups/${NUL_URL}/members`, body: (c) => ({ user_ids: [c.bob.user_id] }), field: 'id' },
  { name: 'added member id with a lone surrogate', method: 'POST', url: (c) => `/api/v1/groups/${c.groupId}/members`, body: () => ({ user_ids: [HIGH] }), field: 'user_ids.0' },
  { name: 'removed member id with NUL', method: 'DELETE', url: (c) => `/api/v1/groups/${c.groupId}/members/${NUL_URL}`, field: 'user_id' },

  // messages
  { name: 'content with NUL', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('content', NUL), field: 'content' },
  { name: 'content with a lone high surrogate', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('content', HIGH), field: 'content' },
  { name: 'content with a lone low surrogate', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('content', LOW), field: 'content' },
  { name: 'content with U+FFFF', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('content', NONCHAR), field: 'content' },
  { name: 'client_message_id with NUL', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('client_message_id', NUL), field: 'client_message_id' },
  { name: 'client_message_id with a lone surrogate', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: text('client_message_id', HIGH), field: 'client_message_id' },
  { name: 'media_id with NUL', method: 'POST', url: (c) => `/api/v1/conversations/${c.conversationId}/messages`, body: () => ({ content_type: 'file', media_id: NUL }), field: 'media_id' },
  { name: 'conversation id with NUL (send)', method: 'POST', url: () => `/api/v1/conversations/${NUL_URL}/messages`, body: text('content', 'hi'), field: 'id' },
  { name: 'conversation id with NUL (history)', method: 'GET', url: () => `/api/v1/conversations/${NUL_URL}/messages`, field: 'id' },
  { name: 'conversation id as a UTF-8 lone surrogate (%ED%A0%80)', method: 'GET', url: () => '/api/v1/conversations/%ED%A0%80/messages', field: 'path', code: 'bad_request' },
  { name: 'message id with a byte that is no UTF-8 (%FF)', method: 'GET', url: () => '/api/v1/messages/%FF/status', field: 'path', code: 'bad_request' },
  { name: 'history before past 2^31-1', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?before=99999999999`, field: 'before' },
  { name: 'history before 2^31', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?before=2147483648`, field: 'before' },
  { name: 'history before 10^60', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?before=${'9'.repeat(60)}`, field: 'before' },
  { name: 'history before 0', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?before=0`, field: 'before' },
  { name: 'history before with NUL', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?before=${NUL_URL}`, field: 'before' },
  { name: 'history limit 1e400', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?limit=1e400`, field: 'limit' },
  { name: 'history limit 1.5', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/messages?limit=1.5`, field: 'limit' },

  // receipts
  { name: 'status of a NUL message id', method: 'GET', url: () => `/api/v1/messages/${NUL_URL}/status`, field: 'message_id' },
  { name: 'mark a NUL message id read', method: 'PUT', url: () => `/api/v1/messages/${NUL_URL}/status`, body: () => ({ status: 'read' }), field: 'message_id' },
  { name: 'X-Device-Id with a control character', method: 'PUT', url: (c) => `/api/v1/messages/${c.messageId}/status`, body: () => ({ status: 'read' }), headers: { 'x-device-id': 'phone\u0007' }, field: 'x-device-id' },

  // reactions
  { name: 'emoji with NUL', method: 'POST', url: (c) => `/api/v1/messages/${c.messageId}/reactions`, body: () => ({ emoji: NUL }), field: 'emoji' },
  { name: 'emoji as a lone surrogate', method: 'POST', url: (c) => `/api/v1/messages/${c.messageId}/reactions`, body: () => ({ emoji: '\ud83d' }), field: 'emoji' },
  { name: 'emoji as markup', method: 'POST', url: (c) => `/api/v1/messages/${c.messageId}/reactions`, body: () => ({ emoji: '<svg/onload=alert(1)>' }), field: 'emoji' },
  { name: 'reaction on a NUL message id', method: 'POST', url: () => `/api/v1/messages/${NUL_URL}/reactions`, body: () => ({ emoji: '👍' }), field: 'message_id' },
  { name: 'remove a NUL reaction', method: 'DELETE', url: (c) => `/api/v1/messages/${c.messageId}/reactions/${NUL_URL}`, field: 'emoji' },

  // media
  { name: 'media file name with NUL', method: 'POST', url: () => '/api/v1/media', body: (c) => ({ content_type: 'text/plain', size_bytes: 5, file_name: `${NUL}.txt`, conversation_id: c.conversationId }), field: 'file_name' },
  { name: 'media file name with a lone surrogate', method: 'POST', url: () => '/api/v1/media', body: (c) => ({ content_type: 'text/plain', size_bytes: 5, file_name: `${HIGH}.txt`, conversation_id: c.conversationId }), field: 'file_name' },
  { name: 'media content type with NUL', method: 'POST', url: () => '/api/v1/media', body: (c) => ({ content_type: `text/plain${NUL}`, size_bytes: 5, file_name: 'a.txt', conversation_id: c.conversationId }), field: 'content_type' },
  { name: 'media size 1e400', method: 'POST', url: () => '/api/v1/media', body: (c) => `{"content_type":"text/plain","size_bytes":1e400,"file_name":"a.txt","conversation_id":"${c.conversationId}"}`, field: 'size_bytes' },
  { name: 'media size -1', method: 'POST', url: () => '/api/v1/media', body: (c) => ({ content_type: 'text/plain', size_bytes: -1, file_name: 'a.txt', conversation_id: c.conversationId }), field: 'size_bytes' },
  { name: 'media conversation id with NUL', method: 'POST', url: () => '/api/v1/media', body: () => ({ content_type: 'text/plain', size_bytes: 5, file_name: 'a.txt', conversation_id: NUL }), field: 'conversation_id' },
  { name: 'download a NUL media id', method: 'GET', url: () => `/api/v1/media/${NUL_URL}`, field: 'media_id' },

  // search
  { name: 'search query with NUL', method: 'GET', url: () => `/api/v1/search?query=${NUL_URL}`, field: 'query' },
  { name: 'search in a conversation with a noncharacter', method: 'GET', url: (c) => `/api/v1/conversations/${c.conversationId}/search?query=a%EF%BF%BF`, field: 'query' },
  { name: 'search from year 0', method: 'GET', url: () => '/api/v1/search?query=hello&from=0000-01-01', field: 'from' },
  { name: 'search to year 10000', method: 'GET', url: () => '/api/v1/search?query=hello&to=10000-01-01', field: 'to' },
  { name: 'search from February 30', method: 'GET', url: () => '/api/v1/search?query=hello&from=2026-02-30', field: 'from' },
  { name: 'search from before year 1 by its offset', method: 'GET', url: () => '/api/v1/search?query=hello&from=0001-01-01T00:00:00%2B01:00', field: 'from' },
  { name: 'search sender with NUL', method: 'GET', url: () => `/api/v1/search?query=hello&sender=${NUL_URL}`, field: 'sender' },
  { name: 'search conversation_id with NUL', method: 'GET', url: () => `/api/v1/search?query=hello&conversation_id=${NUL_URL}`, field: 'conversation_id' },
  { name: 'search limit 1e400', method: 'GET', url: () => '/api/v1/search?query=hello&limit=1e400', field: 'limit' },
  { name: 'forged search cursor: huge score', method: 'GET', url: () => `/api/v1/search?query=hello&cursor=${searchCursor({ v: 1, q: 'x', s: 1e308, c: '2026-01-01T00:00:00.000Z', m: 'm' })}`, field: 'cursor', code: 'invalid_cursor' },
  { name: 'forged search cursor: bad date', method: 'GET', url: () => `/api/v1/search?query=hello&cursor=${searchCursor({ v: 1, q: 'x', s: 0.5, c: '0000-01-01T00:00:00.000Z', m: 'm' })}`, field: 'cursor', code: 'invalid_cursor' },
  { name: 'forged search cursor: NUL message id', method: 'GET', url: () => `/api/v1/search?query=hello&cursor=${searchCursor({ v: 1, q: 'x', s: 0.5, c: '2026-01-01T00:00:00.000Z', m: '\u0000' })}`, field: 'cursor', code: 'invalid_cursor' },

  // real-time signals over REST
  { name: 'typing in a NUL conversation', method: 'POST', url: () => `/api/v1/conversations/${NUL_URL}/typing`, body: () => ({ is_typing: true }), field: 'id' },
  { name: 'presence of a NUL user', method: 'GET', url: () => `/api/v1/users/${NUL_URL}/presence`, field: 'user_id' },
  { name: 'set the presence of a NUL user', method: 'PUT', url: () => `/api/v1/users/${NUL_URL}/presence`, body: () => ({ status: 'away' }), field: 'user_id' },

  // push devices
  { name: 'device token with NUL', method: 'POST', url: () => '/api/v1/devices', body: () => ({ platform: 'web', token: NUL }), field: 'token' },
  { name: 'remove a NUL device', method: 'DELETE', url: () => `/api/v1/devices/${NUL_URL}`, field: 'device' },
];

describe.each<Adapter>(['pglite', 'postgres'])('hostile input on every REST route, on %s', (adapter) => {
  let stack: ApiStack;
  let ctx: Ctx;
  beforeAll(async () => {
    stack = await createApiStack(adapter);
    const alice = await stack.client.register('hostile_a');
    const bob = await stack.client.register('hostile_b');
    const as = stack.client.as(alice);
    const conversationId = (await as.post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const groupId = (await as.post('/api/v1/groups', { name: 'hostile', member_ids: [bob.user_id] })).body.conversation_id;
    const messageId = (await as.post(`/api/v1/conversations/${conversationId}/messages`, { content: 'hello', content_type: 'text' })).body.message_id;
    const mediaId = (await as.post('/api/v1/media', { content_type: 'text/plain', size_bytes: 5, file_name: 'a.txt', conversation_id: conversationId })).body.media_id;
    ctx = { alice, bob, conversationId, groupId, messageId, mediaId };
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  it.each(ROWS.map((row) => [row.name, row] as const))('%s: 400 naming the field', async (_name, row) => {
    const body = row.body?.(ctx);
    const res = await stack.client.call(row.method, row.url(ctx), {
      ...(row.anonymous ? {} : { token: ctx.alice.token }),
      ...(body !== undefined ? { body } : {}),
      ...(row.headers !== undefined ? { headers: row.headers } : {}),
    });
    expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 400, code: row.code ?? 'validation_error' });
    expect(res.body.error.message.startsWith(`${row.field}: `), res.body.error.message).toBe(true);
  });

  it('refused requests stored nothing, and good ones still work', async () => {
    const stream = conversationStreamId(ctx.conversationId);
    const before = await stack.store.streamVersion(stream);
    for (const row of ROWS.filter((r) => r.method === 'POST' && r.url(ctx).includes('/messages'))) {
      await stack.client.call(row.method, row.url(ctx), { token: ctx.alice.token, body: row.body?.(ctx) });
    }
    expect(await stack.store.streamVersion(stream)).toBe(before);
    const sent = await stack.client.as(ctx.alice).post(`/api/v1/conversations/${ctx.conversationId}/messages`, { content: 'still here\nand well 😀', content_type: 'text' });
    expect(sent.status).toBe(201);
    const history = await stack.client.as(ctx.bob).get(`/api/v1/conversations/${ctx.conversationId}/messages?before=${sent.body.sequence_number + 1}`);
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(['hello', 'still here\nand well 😀']);
  });

  it('the widest valid values pass: a date-only `to` of 9999-12-31, `before` of 2^31-1', async () => {
    const search = await stack.client.as(ctx.alice).get('/api/v1/search?query=hello&from=0001-01-01&to=9999-12-31');
    expect(search.status).toBe(200);
    expect(search.body.hits.map((h: { message_id: string }) => h.message_id)).toEqual([ctx.messageId]);
    const history = await stack.client.as(ctx.alice).get(`/api/v1/conversations/${ctx.conversationId}/messages?before=2147483647`);
    expect(history.status).toBe(200);
    expect(history.body.messages[0].message_id).toBe(ctx.messageId);
  });
});
