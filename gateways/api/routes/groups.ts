import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ConversationView } from '../../../commands/conversations.js';
import { MAX_GROUP_MEMBERS } from '../../../domain/conversation/events.js';
import { Description, GroupName } from '../../../domain/fields.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { GroupBody, Id } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * Groups: create, add members (admins only), remove a member (admins) or leave (any member,
 * removing themself). group_id is the conversation_id.
 */

const CreateGroupBody = z.object({
  name: GroupName,
  description: Description.nullable().optional(),
  member_ids: z.array(Id).max(MAX_GROUP_MEMBERS),
});

const GroupParams = z.object({ id: Id });

function groupBody(c: ConversationView): z.input<typeof GroupBody> {
  return {
    group_id: c.conversation_id,
    conversation_id: c.conversation_id,
    type: 'group',
    name: c.name,
    description: c.description,
    participants: c.participants,
    created_by: c.created_by,
    created_at: c.created_at,
  };
}

export function groupRoutes(deps: RouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post('/groups', { schema: { body: CreateGroupBody, response: { 201: GroupBody } } }, async (request, reply) => {
      const me = caller(request);
      const { name, description, member_ids } = request.body;
      const created = await deps.commands.createGroup(me.userId, { name, description: description ?? null, member_ids }, request.id);
      await deps.settle(created.position, request.log);
      return reply.code(201).send(groupBody(created.conversation));
    });

    app.post(
      '/groups/:id/members',
      {
        schema: {
          params: GroupParams,
          body: z.object({ user_ids: z.array(Id).min(1).max(MAX_GROUP_MEMBERS) }),
          response: { 200: GroupBody },
        },
      },
      async (request) => {
        const me = caller(request);
        const updated = await deps.commands.addMembers(me.userId, request.params.id, request.body.user_ids, request.id);
        await deps.settle(updated.position, request.log);
        return groupBody(updated.conversation);
      },
    );

    app.delete(
      '/groups/:id/members/:user_id',
      { schema: { params: GroupParams.extend({ user_id: Id }), response: { 200: GroupBody } } },
      async (request) => {
        const me = caller(request);
        const updated = await deps.commands.removeMember(me.userId, request.params.id, request.params.user_id, request.id);
        await deps.settle(updated.position, request.log);
        return groupBody(updated.conversation);
      },
    );
  };
}
