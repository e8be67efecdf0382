import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { contentDisposition } from '../content-disposition.js';
import { createLocalDiskObjectStore, SignedUrlError, type LocalDiskObjectStore } from '../local-disk.js';
import { createS3ObjectStore, type S3ObjectStore } from '../s3.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const TEST_SIGNING_SECRET = 'object-store-test-secret-0123456789abcdef';

/** s3rver on 127.0.0.1, a free port, a temporary directory; and an S3 adapter pointed at it. */
export async function startS3rver(): Promise<{ endpoint: string; createStore(bucket: string): Promise<S3ObjectStore>; close(): Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const stores: S3ObjectStore[] = [];
  return {
    endpoint,
    async createStore(bucket) {
      const store = createS3ObjectStore({
        bucket,
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        createBucket: true,
      });
      await store.ensureBucket();
      stores.push(store);
      return store;
    },
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * A local-disk store in a temporary directory, with a bare node:http server that serves its
 * signed URLs the way the REST API does (gateways/api/routes/media-files.ts).
 */
export async function startLocalDisk(options: { maxBytes?: number; now?: () => number } = {}): Promise<{
  store: LocalDiskObjectStore;
  dir: string;
  close(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'local-objects-'));
  let base = '';
  const store = createLocalDiskObjectStore({ dir, secret: TEST_SIGNING_SECRET, publicUrl: () => base, maxBytes: options.maxBytes ?? 100 * 1024 * 1024, ...(options.now ? { now: options.now } : {}) });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const prefix = `${store.routePrefix}/`;
    const fail = (error: unknown) => {
      const status = error instanceof SignedUrlError ? error.status : 500;
      const code = error instanceof SignedUrlError ? error.code : 'internal_error';
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: { code, message: error instanceof Error ? error.message : String(error) } }));
      req.resume();
    };
    if (!url.pathname.startsWith(prefix)) return fail(new SignedUrlError(404, 'object_not_found', 'no route'));
    const key = url.pathname.slice(prefix.length).split('/').map(decodeURIComponent).join('/');
    const query = Object.fromEntries(url.searchParams);
    if (req.method === 'PUT') {
      store
        .receive({ key, query, contentType: req.headers['content-type'], contentLength: req.headers['content-length'], body: req })
        .then(() => res.writeHead(200).end(), fail);
    } else if (req.method === 'GET') {
      store.open({ key, query }).then((object) => {
        res.writeHead(200, { 'content-type': object.contentType ?? 'application/octet-stream', 'content-length': String(object.sizeBytes),
          ...(object.fileName !== null ? { 'content-disposition': contentDisposition(object.fileName) } : {}),
        });
        object.body.pipe(res);
      }, fail);
    } else {
      fail(new SignedUrlError(404, 'object_not_found', 'no route'));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no address');
  base = `http://127.0.0.1:${address.port}`;
  return {
    store,
    dir,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
