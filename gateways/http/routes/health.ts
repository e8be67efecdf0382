import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from '../zod.js';

/** GET /healthz: the process is up and serving (no token, not rate-limited). */
export function healthRoutes(): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/healthz',
      { config: { rateLimit: false }, schema: { response: { 200: z.object({ status: z.literal('ok') }) } } },
      async () => ({ status: 'ok' as const }),
    );
  };
}
