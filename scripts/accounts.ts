/**
 * Operate user accounts (README, "Accounts and sessions"):
 *
 *   npm run accounts -- disable LOGIN      the account can no longer log in; every session ends
 *   npm run accounts -- enable LOGIN       it can log in again (its old sessions stay ended)
 *   npm run accounts -- logout-all LOGIN   every session ends (a stolen device, a leaked token)
 *
 * LOGIN is a username or an e-mail address (any case). The databases are opened as the server
 * opens them (DATABASE_URL, else the embedded database in CHAT_DATA_DIR, which must not be in use
 * by a running server). REST requests with the account's tokens are refused from the next one on;
 * WebSocket connections are closed within SESSION_CHECK_INTERVAL_MS (4103 for a disabled account,
 * 4100 otherwise). Prints one JSON line: {"user_id","username","action","sessions_ended"}.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSqlDeviceRegistry } from '../infra/devices/sql.js';
import { createSqlSessionStore } from '../infra/sessions/sql.js';
import { createSqlUserRepository } from '../infra/users/sql.js';
import { CliError, parseCommandLine, runCli, UsageError } from './lib/cli.js';
import { openStoreLikeTheServer } from './lib/open-store.js';

const USAGE = `usage:
  npm run accounts -- disable LOGIN
  npm run accounts -- enable LOGIN
  npm run accounts -- logout-all LOGIN
`;

const COMMANDS = ['disable', 'enable', 'logout-all'] as const;

function parse(argv: string[]) {
  const { values, positionals } = parseCommandLine(argv, { help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) return { command: 'help' as const, login: '' };
  const [command, login, ...rest] = positionals;
  if (command === undefined) throw new UsageError('a command is needed: disable, enable or logout-all');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}; expected disable, enable or logout-all`);
  if (login === undefined || login === '') throw new UsageError(`${command} needs a username or e-mail address`);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  return { command: command as (typeof COMMANDS)[number], login };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const opened = await openStoreLikeTheServer('accounts');
  try {
    const primary = opened.databases[0]!;
    const users = createSqlUserRepository(primary);
    await users.ensureSchema();
    const sessions = createSqlSessionStore(primary, { refreshTtlSeconds: opened.config.refreshTokenTtlSeconds, maxLivePerUser: opened.config.maxSessionsPerUser });
    await sessions.ensureSchema();
    const devices = createSqlDeviceRegistry(primary);
    await devices.ensureSchema();
    const user = await users.findByLogin(args.login);
    if (user === null) throw new CliError(`no account with the username or e-mail ${JSON.stringify(args.login)}`);
    let ended: string[] = [];
    if (args.command === 'enable') {
      await users.setDisabled(user.user_id, false);
    } else {
      if (args.command === 'disable') await users.setDisabled(user.user_id, true);
      else await users.bumpTokenVersion(user.user_id);
      ended = await sessions.revokeAll(user.user_id, args.command === 'disable' ? 'account_disabled' : 'logout_all');
      await devices.releaseAllBut(user.user_id, null);
    }
    process.stdout.write(`${JSON.stringify({ user_id: user.user_id, username: user.username, action: args.command, sessions_ended: ended.length })}\n`);
  } finally {
    await opened.close();
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await runCli('accounts', USAGE, main);
}
