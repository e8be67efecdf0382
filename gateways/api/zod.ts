import type { FastifyInstance, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';
import { HttpError } from './errors.js';

/**
 * Routes are schema-first with zod: the params / querystring / headers / body schemas validate
 * (and type) the request, the response schema shapes the reply — `z.object` drops every key it
 * does not list, so nothing leaks that a schema does not name.
 */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'headers' };

function asZod(schema: unknown, where: string): z.ZodType {
  if (schema instanceof z.ZodType) return schema;
  throw new TypeError(`${where}: route schemas must be zod schemas`);
}

/** "content: Required", "limit: Too big: expected number to be <=200" — the field first. */
export function describeIssues(error: z.ZodError, part: string): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : (PART_NAMES[part] ?? part)}: ${issue.message}`)
    .join('; ');
}

const requiredWhenMissing = (issue: { input?: unknown }) => (issue.input === undefined ? 'Required' : undefined);

export function useZod(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, method, url, httpPart }) => {
    const zod = asZod(schema, `${method} ${url} ${httpPart ?? ''}`);
    const part = httpPart ?? 'body';
    return (data: unknown) => {
      // fastify hands a missing body over as null
      const result = zod.safeParse(part === 'body' && data === null ? undefined : data, { error: requiredWhenMissing });
      if (result.success) return { value: result.data };
      return { error: new HttpError('validation_error', describeIssues(result.error, part)) };
    };
  });

  app.setSerializerCompiler(({ schema, method, url }) => {
    const zod = asZod(schema, `${method} ${url} response`);
    return (data: unknown) => JSON.stringify(zod.parse(data));
  });
}
