import { describe, expect, it } from 'vitest';
import { websocketUrlOf } from './realtime.js';

describe('websocketUrlOf (GET /api/v1/realtime)', () => {
  it('is PUBLIC_WS_URL when set, with or without a gateway here', () => {
    expect(websocketUrlOf({ publicWsUrl: 'wss://chat.example.com/ws', host: '127.0.0.1' }, 3001)).toBe('wss://chat.example.com/ws');
    expect(websocketUrlOf({ publicWsUrl: 'wss://chat.example.com/ws', host: '127.0.0.1' }, null)).toBe('wss://chat.example.com/ws');
  });

  it('is built from HOST and the bound port otherwise, and null without a gateway', () => {
    expect(websocketUrlOf({ publicWsUrl: null, host: '10.0.0.5' }, 3001)).toBe('ws://10.0.0.5:3001/ws');
    expect(websocketUrlOf({ publicWsUrl: null, host: '0.0.0.0' }, 4001)).toBe('ws://127.0.0.1:4001/ws');
    expect(websocketUrlOf({ publicWsUrl: null, host: '::' }, 4001)).toBe('ws://127.0.0.1:4001/ws');
    expect(websocketUrlOf({ publicWsUrl: null, host: '::1' }, 4001)).toBe('ws://[::1]:4001/ws');
    expect(websocketUrlOf({ publicWsUrl: null, host: '127.0.0.1' }, null)).toBeNull();
  });
});
