/**
 * Push notifications to devices (FCM; APNs and web push through FCM).
 *
 * Guarantees every adapter gives (contract.ts checks them):
 * - `send` tries every device once and answers one result per device, in the order given; it never
 *   throws for a device's failure: each result says whether the device got it (`sent`), will never
 *   get anything with this token (`unregistered`: the caller removes the token), failed in a way
 *   worth retrying later (`transient`: provider unavailable, internal error, quota), or failed
 *   for good (`failed`: a bug or a misconfiguration, logged by the caller, not retried).
 * - It may throw only when it cannot try at all (closed provider).
 * - Retrying is the caller's job (gateways/push/sender.ts); an adapter may retry inside one call
 *   (firebase-admin retries 503 and connection resets itself).
 */
export type Platform = 'android' | 'ios' | 'web';

export type PushTarget = { token: string; platform: Platform };

export type PushNotification = {
  title: string;
  body: string;
  /** String key/values delivered to the app with the notification (FCM `data`). */
  data: Record<string, string>;
  /** Notifications with the same key replace each other on the device (Android collapse key, APNs thread id). */
  collapseKey?: string;
  /** Badge count for iOS. */
  badge?: number;
};

export type PushOutcome = 'sent' | 'unregistered' | 'transient' | 'failed';

export type PushResult = { token: string; outcome: PushOutcome; error?: string };

export interface PushProvider {
  readonly name: string;
  send(targets: PushTarget[], notification: PushNotification): Promise<PushResult[]>;
  close(): Promise<void>;
}
