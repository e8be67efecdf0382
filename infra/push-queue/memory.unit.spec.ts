import { pushQueueContract } from './contract.js';
import { createMemoryPushQueue } from './memory.js';

pushQueueContract('memory', async () => ({ queue: createMemoryPushQueue() }));
