import { emitKeypressEvents } from 'node:readline';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createChatClient, type ChatClient, type ReceivedEvent } from '../gateways/sdk/index.js';

/**
 * A terminal chat client on the SDK:
 *
 *   npm run client -- --user alice [--password ...] [--url http://127.0.0.1:3000]
 *
 * Logs in (registering the user the first time), lists the conversations, and then reads lines:
 * text goes to the current conversation; commands start with "/" (/help lists them). Incoming
 * messages, typing and read receipts are printed as they come. There is no user search in the
 * REST API, so people are named by user id: each client prints its own at start.
 */

const { values: args } = parseArgs({
  options: {
    user: { type: 'string' },
    password: { type: 'string' },
    url: { type: 'string', default: 'http://127.0.0.1:3000' },
    device: { type: 'string' },
  },
  strict: true,
});

if (args.user === undefined) {
  process.stderr.write('usage: npm run client -- --user NAME [--password PASSWORD] [--url http://127.0.0.1:3000]\n');
  process.exit(2);
}
const username = args.user;
const password = args.password ?? `${username}-chat-password`;
const baseUrl = args.url.replace(/\/+$/, '');

type Conversation = { conversation_id: string; type: string; name: string | null; participants: { user_id: string }[] };

/** `T`: the body of the success status the caller checks for. */
async function http<T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
}

type Session = { user_id: string; token: string; refresh_token: string };

async function session(): Promise<Session> {
  const login = await http<Session>('POST', '/api/v1/auth/login', { username, password });
  if (login.status === 200) return login.body;
  const registered = await http<Session>('POST', '/api/v1/auth/register', { username, email: `${username}@example.test`, password });
  if (registered.status === 201) return registered.body;
  throw new Error(`cannot log in (${login.status}) or register (${registered.status} ${JSON.stringify(registered.body)}) as ${username}`);
}

async function main(): Promise<void> {
  const me = await session();
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  const tty = process.stdin.isTTY === true;
  const print = (line: string) => {
    if (tty) {
      process.stdout.write('\r\x1b[K');
      process.stdout.write(`${line}\n`);
      rl.prompt(true);
    } else process.stdout.write(`${line}\n`);
  };

  const conversations = new Map<string, Conversation>();
  const order: string[] = [];
  let current: string | null = null;
  const who = (userId: string) => (userId === me.user_id ? 'me' : userId);
  const label = (id: string) => {
    const c = conversations.get(id);
    if (c === undefined) return id;
    if (c.name !== null) return `#${c.name}`;
    return c.participants.map((p) => who(p.user_id)).filter((n) => n !== 'me').join(', ') || id;
  };
  const remember = (c: Conversation) => {
    if (!conversations.has(c.conversation_id)) order.push(c.conversation_id);
    conversations.set(c.conversation_id, c);
  };

  // The SDK renews the short-lived access token with the refresh token; REST calls here use its latest one.
  const client: ChatClient = createChatClient({
    baseUrl,
    token: me.token,
    refreshToken: me.refresh_token,
    onTokens: (tokens) => {
      me.token = tokens.token;
    },
    deviceId: args.device ?? `terminal-${username}`,
    WebSocket,
    autoAckDelivered: true,
  });

  async function refresh(): Promise<void> {
    const inbox = await http<{ conversations: (Conversation & { last_message: { sequence_number: number } | null })[] }>('GET', '/api/v1/conversations?limit=200', undefined, me.token);
    if (inbox.status !== 200) throw new Error(`GET /api/v1/conversations: ${inbox.status}`);
    for (const c of inbox.body.conversations) {
      remember(c);
      client.track(c.conversation_id, c.last_message?.sequence_number ?? 0);
    }
  }

  const list = () => {
    if (order.length === 0) print('no conversations yet: /open <user_id> or /group <name> <user_id>...');
    order.forEach((id, i) => {
      print(`  ${i + 1}. ${label(id)}  (${id})${id === current ? '  <- current' : ''}`);
    });
  };

  client.on('event', (e: ReceivedEvent) => {
    const where = e.conversation_id === current ? '' : `[${label(e.conversation_id)}] `;
    switch (e.type) {
      case 'MessageSent':
        if (e.data.sender_id !== me.user_id) {
          print(`${where}${who(e.data.sender_id)}: ${e.data.content}`);
          if (e.conversation_id === current) client.markRead(e.conversation_id, e.version);
        } else print(`${where}me: ${e.data.content}  (#${e.version})`);
        return;
      case 'Read':
        if (e.data.user_id !== me.user_id) print(`${where}read by ${who(e.data.user_id)} up to #${e.data.up_to_version}`);
        return;
      case 'Delivered':
        if (e.data.user_id !== me.user_id) print(`${where}delivered to ${who(e.data.user_id)} up to #${e.data.up_to_version}`);
        return;
      case 'ConversationCreated':
        void refresh().then(() => print(`new conversation: ${label(e.conversation_id)} (${e.conversation_id})`));
        return;
      case 'MembersAdded':
        print(`${where}${e.data.user_ids.map(who).join(', ')} joined`);
        return;
      default:
        return;
    }
  });
  client.on('typing', (t) => {
    if (t.userId !== me.user_id && t.isTyping) print(`${t.conversationId === current ? '' : `[${label(t.conversationId)}] `}${who(t.userId)} is typing...`);
  });
  client.on('presence', (p) => print(`${who(p.userId)} is ${p.status}`));
  client.on('disconnected', (d) => print(`disconnected (${d.code}${d.reason ? ` ${d.reason}` : ''})${d.reconnectInMs === null ? '' : `, reconnecting in ${d.reconnectInMs} ms`}`));
  client.on('open', () => print('connected'));
  client.on('closed', (c) => {
    if (c.terminal) print(`connection refused for good: ${c.code} ${c.reason}`);
  });

  print(`you are ${username} (user id ${me.user_id}); /help for commands`);
  await client.connect();
  await refresh();
  list();
  if (order.length === 1) current = order[0]!;

  if (tty) {
    emitKeypressEvents(process.stdin, rl);
    process.stdin.on('keypress', () => {
      if (current !== null && rl.line.length > 0 && !rl.line.startsWith('/')) client.typing(current, true).catch(() => {});
    });
    rl.setPrompt('> ');
    rl.prompt();
  }

  const help = [
    '/list                         your conversations',
    '/open <user_id>               open (or find) the 1:1 conversation with a user and switch to it',
    '/group <name> <user_id>...    create a group and switch to it',
    '/to <n | conversation_id>     switch the current conversation',
    '/read                         mark the current conversation read',
    '/quit',
    'anything else is sent to the current conversation',
  ];

  for await (const line of rl) {
    const text = line.trim();
    try {
      if (text === '') {
        // nothing
      } else if (text === '/help') {
        for (const h of help) print(h);
      } else if (text === '/list') list();
      else if (text === '/quit') break;
      else if (text.startsWith('/open ')) {
        const other = text.slice(6).trim();
        const res = await http<Conversation>('POST', '/api/v1/conversations', { participant_id: other }, me.token);
        if (res.status !== 200 && res.status !== 201) print(`cannot open: ${res.status} ${JSON.stringify(res.body)}`);
        else {
          remember({ ...res.body, name: null });
          client.track(res.body.conversation_id, 0);
          current = res.body.conversation_id;
          print(`now talking to ${label(res.body.conversation_id)} (${res.body.conversation_id})`);
        }
      } else if (text.startsWith('/group ')) {
        const [name, ...members] = text.slice(7).trim().split(/\s+/);
        const res = await http<{ conversation_id: string }>('POST', '/api/v1/groups', { name, member_ids: members }, me.token);
        if (res.status !== 201) print(`cannot create: ${res.status} ${JSON.stringify(res.body)}`);
        else {
          remember({ conversation_id: res.body.conversation_id, type: 'group', name: name ?? null, participants: [] });
          client.track(res.body.conversation_id, 0);
          current = res.body.conversation_id;
          print(`now in #${name}`);
        }
      } else if (text.startsWith('/to ')) {
        const arg = text.slice(4).trim();
        const byIndex = /^\d+$/.test(arg) ? order[Number(arg) - 1] : undefined;
        const target = byIndex ?? (conversations.has(arg) ? arg : undefined);
        if (target === undefined) print(`no such conversation: ${arg} (/list)`);
        else {
          current = target;
          print(`now in ${label(target)}`);
        }
      } else if (text === '/read') {
        const cursor = current === null ? undefined : client.cursor(current);
        if (current !== null && cursor !== undefined && cursor > 0) client.markRead(current, cursor);
      } else if (text.startsWith('/')) print(`unknown command ${text.split(' ')[0]} (/help)`);
      else if (current === null) print('no current conversation: /open <user_id> or /to <n>');
      else {
        await client.send(current, text);
      }
    } catch (error) {
      print(`error: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (tty) rl.prompt();
  }
  await client.close();
  rl.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`client: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
