import { randomBytes } from 'node:crypto';
import { TEST_NATS_URL } from '../../gateways/testing/shared-services.js';
import { pushQueueContract } from './contract.js';
import { createJetStreamPushQueue } from './jetstream.js';

const logger = { warn() {}, error() {} };

pushQueueContract('JetStream work queue', async () => {
  const prefix = `pushq_${randomBytes(4).toString('hex')}`;
  const queue = await createJetStreamPushQueue({ servers: TEST_NATS_URL, prefix, logger });
  return {
    queue,
    async teardown() {
      const admin = await createJetStreamPushQueue({ servers: TEST_NATS_URL, prefix, logger });
      await admin.deleteStream().finally(() => admin.close());
    },
  };
});
