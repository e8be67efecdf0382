/**
 * A projector alone in its own process, for the crash test: `tsx projector-process.ts URL[,URL...]
 * BATCH_SIZE`. It projects until it is killed; its connections are named `projector-under-test`
 * so the test can see when a batch transaction is open.
 */
import { createSqlEventStore } from '../../../infra/event-store/sql-event-store.js';
import { createPostgresDatabase } from '../../../infra/sql/postgres.js';
import { conversationsProjection } from '../../conversations/projection.js';
import { createProjector } from '../runtime.js';
import { conversationEvents } from '../decode.js';

const [urls = '', batch = '200'] = process.argv.slice(2);
const dbs = urls.split(',').map((connectionString) => createPostgresDatabase({ connectionString, max: 2, applicationName: 'projector-under-test' }));
const store = await createSqlEventStore({ shards: dbs, ownsDatabases: true, migrate: false });
const projector = createProjector({ store, db: dbs[0]!, projections: [conversationsProjection], decode: conversationEvents, batchSize: Number(batch), pollIntervalMs: 20 });
await projector.start();
process.stdout.write('projecting\n');
