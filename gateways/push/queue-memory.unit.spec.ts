import { pushQueueContract } from './queue.contract.js';
import { createMemoryPushQueue } from './queue-memory.js';

pushQueueContract('memory', async () => ({ queue: createMemoryPushQueue() }));
