import { randomUUID } from 'node:crypto';
import { objectStoreContract } from './contract.js';
import { startS3rver } from './testing/servers.js';

/** The S3 adapter against s3rver (an S3-compatible server) on loopback. */
objectStoreContract('s3 (s3rver)', async () => {
  const s3 = await startS3rver();
  const store = await s3.createStore(`contract-${randomUUID().slice(0, 8)}`);
  return { store, close: () => s3.close() };
});
