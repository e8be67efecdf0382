import type { PushNotification, PushProvider, PushResult, PushTarget } from './port.js';

/**
 * The embedded default (PUSH_PROVIDER unset): notifications are logged (info), not sent. Every
 * device counts as reached. Tokens are shortened in the log (they are credentials of a device).
 */
export type LogPushLogger = { info(obj: object, msg?: string): void };

export const shortToken = (token: string) => (token.length <= 12 ? token : `${token.slice(0, 6)}…${token.slice(-4)}`);

export function createLogPushProvider(deps: { logger: LogPushLogger }) {
  let closed = false;
  return {
    name: 'log',
    async send(targets: PushTarget[], notification: PushNotification): Promise<PushResult[]> {
      if (closed) throw new Error('the log push provider is closed');
      deps.logger.info(
        { devices: targets.map((t) => ({ platform: t.platform, token: shortToken(t.token) })), title: notification.title, body: notification.body, data: notification.data },
        'push notification (log provider: not sent)',
      );
      return targets.map((t) => ({ token: t.token, outcome: 'sent' as const }));
    },
    async close() {
      closed = true;
    },
  } satisfies PushProvider;
}
