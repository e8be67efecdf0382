import { describe, expect, it } from 'vitest';
import { pushProviderContract } from './contract.js';
import { createLogPushProvider, shortToken } from './log.js';

pushProviderContract('log', async () => ({ provider: createLogPushProvider({ logger: { info() {} } }), unregister: null }), { reportsUnregistered: false });

describe('log push provider (the embedded default)', () => {
  it('logs each notification at info, with shortened tokens and the lengths of title and body, never their text, and sends nothing', async () => {
    const lines: { obj: Record<string, unknown>; msg?: string }[] = [];
    const provider = createLogPushProvider({ logger: { info: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) } });
    const token = 'a-long-fcm-registration-token-0123456789';
    await provider.send([{ token, platform: 'ios' }], { title: 'Alice', body: 'alice: the safe code is 4711', data: { count: '1' } });
    expect(lines).toEqual([
      {
        obj: { devices: [{ platform: 'ios', token: shortToken(token) }], title_chars: 5, body_chars: 28, data: { count: '1' } },
        msg: 'push notification (log provider: not sent)',
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain(token);
    expect(JSON.stringify(lines)).not.toContain('4711');
  });
});
