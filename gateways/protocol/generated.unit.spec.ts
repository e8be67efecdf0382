import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The generated TypeScript is committed (so `npm ci && npm start` needs no code generation).
 * These tests run buf itself (from the @bufbuild/buf npm package, offline): the .proto files must
 * lint clean, and generating them again must give exactly the committed files.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const GEN_DIR = 'gateways/protocol/gen';
const bin = join(root, 'node_modules', '.bin');
let scratch: string;

async function buf(args: string[]): Promise<{ stdout: string; stderr: string }> {
  // buf finds the protoc-gen-es plugin on PATH, as `npm run proto:gen` and `npx` arrange.
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, BUF_CACHE_DIR: join(scratch, 'cache') };
  return promisify(execFile)(join(bin, 'buf'), args, { cwd: root, env, timeout: 60_000 });
}

async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), await readFile(path, 'utf8'));
  }
  return out;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'proto-gen-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('proto/ and its generated code', () => {
  it('passes buf lint', async () => {
    await expect(buf(['lint'])).resolves.toMatchObject({ stdout: '', stderr: '' });
  });

  it('matches the committed gateways/protocol/gen (else run `npm run proto:gen` and commit)', async () => {
    await buf(['generate', '--output', join(scratch, 'out')]);
    const fresh = await files(join(scratch, 'out', GEN_DIR));
    const committed = await files(join(root, GEN_DIR));
    expect(fresh.size).toBeGreaterThan(0);
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [path, text] of fresh) expect(committed.get(path), `${GEN_DIR}/${path} is stale`).toBe(text);
  });
});

describe('the protocol module runs in browsers', () => {
  it('imports no Node.js module and nothing but zod, @bufbuild/protobuf, the domain and itself', async () => {
    const dir = dirname(fileURLToPath(import.meta.url));
    const sources = [...(await files(dir))].filter(([path]) => path.endsWith('.ts') && !path.endsWith('.spec.ts') && !path.startsWith('testing/'));
    expect(sources.length).toBeGreaterThan(5);
    const offending = sources.flatMap(([path, text]) =>
      [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)]
        .map((m) => m[1]!)
        .filter((spec) => {
          if (spec === 'zod' || spec === '@bufbuild/protobuf' || spec.startsWith('@bufbuild/protobuf/')) return false;
          if (spec.startsWith('.')) {
            const target = relative(root, resolve(dir, dirname(path), spec));
            return !(target.startsWith('gateways/protocol/') || target.startsWith('domain/'));
          }
          return true;
        })
        .map((spec) => `${path} -> ${spec}`),
    );
    expect(offending).toEqual([]);
  });
});
