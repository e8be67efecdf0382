import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Dependencies point inward (ARCHITECTURE.md): domain imports nothing but itself and zod;
 * commands and projections import the domain, ports (infra/<port>/port.ts) and each other;
 * only infra and gateways import drivers. Test files and test helpers are exempt.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') && !path.includes('/testing/') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

function violations(dir: string, allowed: (target: string) => boolean): string[] {
  return sources(dir).flatMap((file) =>
    importsOf(file)
      .map((spec) => (spec.startsWith('.') ? relative(root, resolve(root, dirname(file), spec)) : spec))
      .filter((target) => !allowed(target))
      .map((target) => `${file} -> ${target}`),
  );
}

const isPort = (target: string) => /^infra\/[^/]+\/port\.(js|ts)$/.test(target);

describe('dependency rules', () => {
  it('domain imports only itself and zod', () => {
    expect(violations('domain', (t) => t.startsWith('domain/') || t === 'zod')).toEqual([]);
  });

  it('commands import only the domain, ports, themselves and node built-ins', () => {
    expect(violations('commands', (t) => t.startsWith('domain/') || t.startsWith('commands/') || isPort(t) || t.startsWith('node:') || t === 'zod')).toEqual([]);
  });

  it('projections import only the domain, ports, themselves and node built-ins', () => {
    expect(
      violations('projections', (t) => t.startsWith('domain/') || t.startsWith('projections/') || isPort(t) || t.startsWith('node:') || t === 'zod'),
    ).toEqual([]);
  });

  it('the rules see imports at all (a rule that reads nothing cannot fail)', () => {
    expect(importsOf('commands/conversations.ts')).toContain('../domain/errors.js');
  });
});
