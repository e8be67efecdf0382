import { assertName, subjectToken } from '../bus/subjects.js';

/**
 * Every NATS name of the push queue, built here from the bus prefix (NATS_PREFIX):
 *
 *   stream          <prefix>_PUSH                    (retention: work queue)
 *   its subjects    <prefix>.push.>
 *   one user's jobs <prefix>.push.<user token>       (token: the user id, escaped as in the bus)
 *   consumer        push-sender                      (one durable pull consumer, shared by every sender)
 */
export type PushQueueNames = {
  readonly stream: string;
  readonly wildcard: string;
  readonly durable: string;
  jobSubject(userId: string): string;
};

export function pushQueueNames(prefix: string): PushQueueNames {
  assertName('push queue prefix', prefix, 32);
  return Object.freeze({
    stream: `${prefix}_PUSH`,
    wildcard: `${prefix}.push.>`,
    durable: 'push-sender',
    jobSubject: (userId: string) => `${prefix}.push.${subjectToken(userId)}`,
  });
}
