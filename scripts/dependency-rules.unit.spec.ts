import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Dependencies point inward (ARCHITECTURE.md, "Layout and the dependency rule"):
 * - the domain imports only itself and zod (its ports, domain/ports, are interfaces of its own);
 * - commands and projections import the domain (rules and ports), themselves, node built-ins, zod;
 * - infra (the adapters) imports drivers, node built-ins, the domain, the edges' ports
 *   (gateways/ports) and itself: never commands, projections or a role;
 * - each role (ROLES: gateways/<role>/) imports no other role, and what roles share
 *   (gateways/protocol, sdk, envelope, ports, lib, auth, media) imports no role;
 * - only the composition root (gateways/compose) and the process entry (gateways/main.ts) see it all.
 * Test files and test helpers (testing/ folders) are exempt.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const ROLE_FOLDERS = ['api', 'gateway', 'projector', 'relay', 'delivery', 'push'].map((role) => `gateways/${role}/`);
const SHARED_FOLDERS = ['protocol', 'sdk', 'envelope', 'ports', 'lib', 'auth', 'media'].map((name) => `gateways/${name}/`);

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return name === 'testing' || name === 'node_modules' ? [] : sources(path);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') && name !== 'contract.ts' ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

/** Relative imports as repository paths; packages and node built-ins as written. */
const targetOf = (file: string, spec: string) => (spec.startsWith('.') ? relative(root, resolve(root, dirname(file), spec)) : spec);

function violations(files: string[], allowed: (target: string, file: string) => boolean): string[] {
  return files.flatMap((file) =>
    importsOf(file)
      .map((spec) => targetOf(file, spec))
      .filter((target) => !allowed(target, file))
      .map((target) => `${file} -> ${target}`),
  );
}

const isPackage = (target: string) => !target.startsWith('node:') && !/^(domain|commands|projections|gateways|infra|scripts)\//.test(target);
const roleOf = (path: string) => ROLE_FOLDERS.find((folder) => path.startsWith(folder));

describe('dependency rules', () => {
  it('domain imports only itself and zod', () => {
    expect(violations(sources('domain'), (t) => t.startsWith('domain/') || t === 'zod')).toEqual([]);
  });

  it('commands import only the domain, themselves, node built-ins and zod', () => {
    expect(violations(sources('commands'), (t) => t.startsWith('domain/') || t.startsWith('commands/') || t.startsWith('node:') || t === 'zod')).toEqual([]);
  });

  it('projections import only the domain, themselves, node built-ins and zod', () => {
    expect(violations(sources('projections'), (t) => t.startsWith('domain/') || t.startsWith('projections/') || t.startsWith('node:') || t === 'zod')).toEqual([]);
  });

  it('adapters import drivers, the domain, the edge ports and infra: no core service, no role', () => {
    expect(
      violations(sources('infra'), (t) => t.startsWith('node:') || isPackage(t) || t.startsWith('domain/') || t.startsWith('gateways/ports/') || t.startsWith('infra/')),
    ).toEqual([]);
  });

  it('no role imports another role, and nothing the roles share imports a role', () => {
    const gatewayFiles = sources('gateways').filter((f) => roleOf(f) !== undefined || SHARED_FOLDERS.some((folder) => f.startsWith(folder)));
    expect(
      violations(gatewayFiles, (t, file) => {
        const target = roleOf(t);
        return target === undefined || target === roleOf(file);
      }),
    ).toEqual([]);
  });

  it('every role has its start(deps, signal) entry', () => {
    for (const folder of ROLE_FOLDERS) expect(readFileSync(join(root, folder, 'start.ts'), 'utf8')).toMatch(/export async function start\(deps: [^,]+, signal: AbortSignal\)/);
  });

  it('the rules see imports at all (a rule that reads nothing cannot fail)', () => {
    expect(importsOf('commands/conversations.ts')).toContain('../domain/errors.js');
    expect(violations(['gateways/compose/process.ts'], (t) => !roleOf(t))).not.toEqual([]);
  });
});
