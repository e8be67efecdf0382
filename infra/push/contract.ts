import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushProvider } from '../../gateways/ports/push-provider.js';

/**
 * The PushProvider contract, run against every adapter (log.unit.spec.ts, fcm.int.spec.ts).
 * `setup` returns the provider and, for adapters that reach a real (or stand-in) service
 * (`reportsUnregistered`), a way to make a token unregistered there.
 */
export type ProviderHarness = {
  provider: PushProvider;
  /** Makes `token` one the service reports unregistered; null for adapters that send nowhere. */
  unregister: ((token: string) => void) | null;
  teardown?: () => Promise<void>;
};

export function pushProviderContract(name: string, setup: () => Promise<ProviderHarness>, options: { reportsUnregistered: boolean }) {
  describe(`PushProvider contract: ${name}`, () => {
    let h: ProviderHarness;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.provider.close();
      await h?.teardown?.();
    });
    const notification = { title: 'Alice', body: 'Hi Bob', data: { conversation_id: 'c1' }, collapseKey: 'c1' };

    it('answers one result per device, in the order given', async () => {
      const targets = [
        { token: 'contract-a', platform: 'android' as const },
        { token: 'contract-b', platform: 'ios' as const },
        { token: 'contract-c', platform: 'web' as const },
      ];
      const results = await h.provider.send(targets, notification);
      expect(results.map((r) => r.token)).toEqual(targets.map((t) => t.token));
      expect(results.map((r) => r.outcome)).toEqual(['sent', 'sent', 'sent']);
    });

    it('answers an empty list for no device', async () => {
      expect(await h.provider.send([], notification)).toEqual([]);
    });

    // The log provider sends nowhere: no token is ever unregistered there (an explicit difference).
    if (options.reportsUnregistered) it('reports an unregistered token without throwing, beside the others', async () => {
      h.unregister!('contract-dead');
      const results = await h.provider.send(
        [
          { token: 'contract-live', platform: 'android' },
          { token: 'contract-dead', platform: 'android' },
        ],
        notification,
      );
      expect(results.map((r) => [r.token, r.outcome])).toEqual([
        ['contract-live', 'sent'],
        ['contract-dead', 'unregistered'],
      ]);
    });

    it('refuses to send once closed', async () => {
      const harness = await setup();
      await harness.provider.close();
      await expect(harness.provider.send([{ token: 'x', platform: 'android' }], notification)).rejects.toThrow(/closed/);
      await harness.teardown?.();
    });
  });
}
