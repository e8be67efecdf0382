import type { PushNotification, PushProvider, PushResult, PushTarget } from '../../gateways/ports/push-provider.js';

/**
 * The embedded default (PUSH_PROVIDER unset): notifications are logged (info), not sent. Every
 * device counts as reached. The log says who and what (devices, the data's ids and count) but not
 * the words: title and body hold message text and names, so only their lengths are logged; tokens
 * are shortened (they are credentials of a device).
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
        {
          devices: targets.map((t) => ({ platform: t.platform, token: shortToken(t.token) })),
          title_chars: notification.title.length,
          body_chars: notification.body.length,
          data: notification.data,
        },
        'push notification (log provider: not sent)',
      );
      return targets.map((t) => ({ token: t.token, outcome: 'sent' as const }));
    },
    async close() {
      closed = true;
    },
  } satisfies PushProvider;
}
