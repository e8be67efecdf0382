import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { DeviceRegistry } from '../../ports/devices.js';
import { caller } from '../auth.js';
import { HttpError } from '../errors.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * Push devices of the caller:
 * - POST /api/v1/devices {platform: android|ios|web, token}: 201 and the device when the token is
 *   new to the caller; 200 when the caller had registered it already (the platform is updated, and
 *   the token now belongs to the caller's current session); 409 `device_token_taken` when another
 *   user holds it through a live session (a token never moves between users silently: it is free
 *   again once that session ends, e.g. by logging out on the device). Logging a session out
 *   (logout, logout-all, a password change for the others) releases its tokens. A session holds
 *   one token: registering another (FCM rotated it) replaces the one it held.
 * - GET /api/v1/devices: the caller's devices.
 * - DELETE /api/v1/devices/{device_id or token}: 204; 404 device_not_found when the caller has no
 *   such device (another user's device is "not found" too). A token with "/" or other reserved
 *   characters must be URL-encoded; the device_id is always safe.
 */

/** FCM registration tokens are ~150-200 printable ASCII characters; APNs-through-FCM and web tokens too. */
export const DeviceToken = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^[\x21-\x7E]+$/, 'expected printable ASCII without spaces (an FCM registration token)');

const Platform = z.enum(['android', 'ios', 'web']);

const DeviceBody = z.object({
  device_id: z.string(),
  platform: Platform,
  token: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});

export function deviceRoutes(devices: DeviceRegistry): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/devices',
      { schema: { body: z.object({ platform: Platform, token: DeviceToken }), response: { 200: DeviceBody, 201: DeviceBody } } },
      async (request, reply) => {
        const me = caller(request);
        const registration = await devices.register({ userId: me.userId, sessionId: me.session?.sessionId ?? null }, request.body.platform, request.body.token);
        if (registration === null) {
          throw new HttpError('device_token_taken', 'token: this device token is registered to another account; log that account out on the device first');
        }
        const { device, created } = registration;
        request.log.info({ device_id: device.device_id, platform: device.platform, created }, 'push device registered');
        return reply.code(created ? 201 : 200).send(device);
      },
    );

    app.get('/devices', { schema: { response: { 200: z.object({ devices: z.array(DeviceBody) }) } } }, async (request) => ({
      devices: await devices.list(caller(request).userId),
    }));

    app.delete('/devices/:device', { schema: { params: z.object({ device: DeviceToken }) } }, async (request, reply) => {
      const removed = await devices.remove(caller(request).userId, request.params.device);
      if (!removed) throw new HttpError('device_not_found', 'device: you have no device with this id or token');
      return reply.code(204).send();
    });
  };
}
