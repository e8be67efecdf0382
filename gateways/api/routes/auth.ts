import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MAX_PASSWORD_LENGTH, passwordProblem } from '../../../infra/users/password-policy.js';
import type { AccountService } from '../accounts.js';
import { caller } from '../auth.js';
import type { FailureLimit } from '../failure-limit.js';
import { line, Username } from '../../../domain/fields.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * Accounts and sessions (PUBLIC: no bearer token, rate-limited by client address):
 *   POST /api/v1/auth/register {username, email, password, phone_number?}   201 session
 *   POST /api/v1/auth/login    {username | email | login, password}        200 session
 *   POST /api/v1/auth/refresh  {refresh_token}                              200 session (rotated)
 * AUTHENTICATED (bearer token):
 *   POST /api/v1/auth/logout                                   204: this session ends
 *   POST /api/v1/auth/logout-all                               204: every session of the caller ends
 *   POST /api/v1/auth/password {current_password, new_password} 200 {user_id, username, token, expires_in}
 * A session is {user_id, username, token (the access token), refresh_token, expires_in (seconds)}.
 * Failed logins and refused refresh tokens count against the caller's address (failure-limit.ts).
 */

/** A password of the policy (infra/users/password-policy.ts); the account part is checked on the whole body. */
const newPassword = (minLength: number) =>
  z.string().superRefine((password, ctx) => {
    const problem = passwordProblem(password, {}, minLength);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

const Session = z.object({ user_id: z.string(), username: z.string(), token: z.string(), refresh_token: z.string(), expires_in: z.number() });
const Renewed = z.object({ user_id: z.string(), username: z.string(), token: z.string(), expires_in: z.number() });

const Login = line(1, 254);
const LoginBody = z
  .object({ username: Login.optional(), email: Login.optional(), login: Login.optional(), password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 2) })
  .superRefine((body, ctx) => {
    if (body.login === undefined && body.username === undefined && body.email === undefined) {
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'Required (send "username" or "email" with "password")' });
    }
  });

export type AuthRouteDeps = {
  accounts: AccountService;
  failures: FailureLimit;
  passwordMinLength: number;
  /** The onRequest hook of the routes that hash a password (failure-limit.ts, createHashingLimit). */
  hashingLimit: (request: FastifyRequest) => Promise<void>;
};

/** The public routes, under /api/v1/auth. */
export function authRoutes(deps: AuthRouteDeps): FastifyPluginAsync {
  const RegisterBody = z
    .object({
      username: Username,
      email: z.email().max(254),
      password: newPassword(deps.passwordMinLength),
      phone_number: z
        .string()
        .regex(/^\+?[0-9][0-9 ().-]{2,31}$/, 'expected a phone number such as +33 6 12 34 56 78')
        .nullable()
        .optional(),
    })
    .superRefine((body, ctx) => {
      // The field's own rules were reported by the field; here only what needs the other fields.
      if (passwordProblem(body.password, {}, deps.passwordMinLength) !== null) return;
      const problem = passwordProblem(body.password, body, deps.passwordMinLength);
      if (problem !== null) ctx.addIssue({ code: 'custom', path: ['password'], message: problem });
    });

  /** Runs `work`; an error from it counts as a failure of the caller's address. Refused at once while the address is over its budget. */
  async function counted<T>(request: FastifyRequest, work: () => Promise<T>): Promise<T> {
    await deps.failures.check(request);
    try {
      return await work();
    } catch (error) {
      if (deps.failures.counts(error)) await deps.failures.record(request);
      throw error;
    }
  }

  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post('/register', { onRequest: deps.hashingLimit, schema: { body: RegisterBody, response: { 201: Session } } }, async (request, reply) => {
      const { username, email, password, phone_number } = request.body;
      const session = await deps.accounts.register({ username, email, password, phone_number: phone_number ?? null });
      request.log.info({ user_id: session.user_id }, 'user registered');
      return reply.code(201).send(session);
    });

    app.post('/login', { onRequest: deps.hashingLimit, schema: { body: LoginBody, response: { 200: Session } } }, async (request) => {
      const { login, username, email, password } = request.body;
      return counted(request, () => deps.accounts.login(login ?? username ?? email ?? '', password));
    });

    app.post('/refresh', { schema: { body: z.object({ refresh_token: z.string().min(1).max(256) }), response: { 200: Session } } }, async (request) =>
      counted(request, () => deps.accounts.refresh(request.body.refresh_token)),
    );
  };
}

/** The authenticated routes, under /api/v1 (the bearer-token scope). */
export function sessionRoutes(deps: AuthRouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post('/auth/logout', async (request, reply) => {
      await deps.accounts.logout(caller(request));
      return reply.code(204).send();
    });

    app.post('/auth/logout-all', async (request, reply) => {
      await deps.accounts.logoutAll(caller(request));
      return reply.code(204).send();
    });

    app.post(
      '/auth/password',
      {
        onRequest: deps.hashingLimit,
        schema: {
          body: z.object({ current_password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 2), new_password: z.string().max(MAX_PASSWORD_LENGTH * 2) }),
          response: { 200: Renewed },
        },
      },
      async (request) => {
        await deps.failures.check(request);
        try {
          return await deps.accounts.changePassword(caller(request), request.body.current_password, request.body.new_password);
        } catch (error) {
          if (deps.failures.counts(error)) await deps.failures.record(request);
          throw error;
        }
      },
    );
  };
}
