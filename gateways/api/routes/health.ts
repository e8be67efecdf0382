import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { DependencyHealth } from '../../../domain/ports/health.js';
import type { ZodTypeProvider } from '../zod.js';

/** A dependency's state; why it is down stays in the server log (it may name hosts and ports). */
const dependency = z.object({
  name: z.string(),
  status: z.enum(['up', 'down']),
  since: z.string(),
});

const readiness = z.object({
  status: z.enum(['ready', 'unavailable']),
  dependencies: z.array(dependency),
  error: z.object({ code: z.literal('service_unavailable'), message: z.string() }).optional(),
});

/**
 * GET /healthz: liveness, the process is up and serving. GET /readyz: readiness, every dependency
 * this process uses (PostgreSQL, NATS, Redis, the object store) answers: 200 with each one's
 * state, 503 while one is down (probed at most ten times a second, however often it is asked).
 * Neither needs a token nor is rate-limited.
 */
export function healthRoutes(health?: Pick<DependencyHealth, 'check'>): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/healthz',
      { config: { rateLimit: false }, schema: { response: { 200: z.object({ status: z.literal('ok') }) } } },
      async () => ({ status: 'ok' as const }),
    );
    app.get('/readyz', { config: { rateLimit: false }, schema: { response: { 200: readiness, 503: readiness } } }, async (_request, reply) => {
      const states = (await health?.check()) ?? [];
      const dependencies = states.map((s) => ({ name: s.name, status: s.up ? ('up' as const) : ('down' as const), since: s.since }));
      const down = states.filter((s) => !s.up).map((s) => s.name);
      if (down.length === 0) return { status: 'ready' as const, dependencies };
      return reply.code(503).send({
        status: 'unavailable' as const,
        dependencies,
        error: { code: 'service_unavailable' as const, message: `unavailable: ${down.join(', ')} cannot be reached` },
      });
    });
  };
}
