import { z } from 'zod';

/** The few REST calls the SDK makes: login, refresh and WebSocket discovery. */
export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
  text(): Promise<string>;
}>;

export class ChatHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ChatHttpError';
  }
}

const Session = z.object({ user_id: z.string(), token: z.string(), refresh_token: z.string().optional(), expires_in: z.number().optional() });
export type Session = z.infer<typeof Session>;
const Realtime = z.object({ websocket_url: z.string().nullable() });

export function restClient(baseUrl: string, fetchImpl: FetchLike) {
  const base = baseUrl.replace(/\/+$/, '');
  async function call<T>(schema: z.ZodType<T>, method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetchImpl(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    if (!res.ok) throw new ChatHttpError(res.status, `${method} ${path}: HTTP ${res.status} ${await res.text().catch(() => '')}`);
    const parsed = schema.safeParse(await res.json());
    if (!parsed.success) throw new ChatHttpError(res.status, `${method} ${path}: unexpected reply: ${parsed.error.message}`);
    return parsed.data;
  }
  return {
    login: (username: string, password: string) => call(Session, 'POST', '/api/v1/auth/login', null, { username, password }),
    refresh: (refreshToken: string) => call(Session, 'POST', '/api/v1/auth/refresh', null, { refresh_token: refreshToken }),
    async websocketUrl(token: string): Promise<string> {
      const { websocket_url } = await call(Realtime, 'GET', '/api/v1/realtime', token);
      if (websocket_url === null) throw new ChatHttpError(503, 'the server has no WebSocket endpoint (GET /api/v1/realtime)');
      return websocket_url;
    },
  };
}
