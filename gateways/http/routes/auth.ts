import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { line } from '../../../domain/fields.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { ZodTypeProvider } from '../zod.js';

/** POST /api/v1/auth/register and /login: the only routes without a bearer token (rate-limited by IP). */

const Username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[a-zA-Z0-9_.-]+$/, 'use only letters, digits, "_", "." and "-"');

const RegisterBody = z.object({
  username: Username,
  email: z.email().max(254),
  password: z.string().min(8).max(1024),
  phone_number: z
    .string()
    .regex(/^\+?[0-9][0-9 ().-]{2,31}$/, 'expected a phone number such as +33 6 12 34 56 78')
    .nullable()
    .optional(),
});

const Login = line(1, 254);
const LoginBody = z
  .object({ username: Login.optional(), email: Login.optional(), login: Login.optional(), password: z.string().min(1).max(1024) })
  .superRefine((body, ctx) => {
    if (body.login === undefined && body.username === undefined && body.email === undefined) {
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'Required (send "username" or "email" with "password")' });
    }
  });

const RegisterReply = z.object({ user_id: z.string(), username: z.string(), token: z.string() });
const LoginReply = z.object({ user_id: z.string(), username: z.string(), token: z.string() });

export function authRoutes(deps: RouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post('/register', { schema: { body: RegisterBody, response: { 201: RegisterReply } } }, async (request, reply) => {
      const { username, email, password, phone_number } = request.body;
      const user = await deps.users.create({ username, email, password, phone_number: phone_number ?? null });
      request.log.info({ user_id: user.user_id }, 'user registered');
      const token = await deps.tokens.issue(user);
      return reply.code(201).send({ user_id: user.user_id, username: user.username, token });
    });

    app.post('/login', { schema: { body: LoginBody, response: { 200: LoginReply } } }, async (request) => {
      const { login, username, email, password } = request.body;
      const user = await deps.users.authenticate(login ?? username ?? email ?? '', password);
      if (!user) throw new HttpError('invalid_credentials', 'unknown username or email, or wrong password');
      return { user_id: user.user_id, username: user.username, token: await deps.tokens.issue(user) };
    });
  };
}
