/**
 * The layer order of docs/ARCHITECTURE.md, enforced: a module of src/ imports only from its own layer or the ones
 * below it, so the folder graph has no cycle. Test files may reach up (a unit test builds a machine); test fixtures
 * live in test/fixtures, outside src/ and dist/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Bottom first. `.` is src/'s own files (machine.ts assembles the layers below it; index.ts is the public API). */
const LAYERS = [
  'sim',
  'abi',
  'trace',
  'hw',
  'host',
  'vfio',
  'kvm',
  'guest',
  '.',
  'scenario',
  'check',
  'view',
  'cli',
  'fuzz',
] as const;

const SRC = join(import.meta.dirname, '..', 'src');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  const top = rel.split('/')[0]!;
  return rel.includes('/') ? top : '.';
}

/** Every relative import (static, type-only and dynamic) of a source file, as absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    out.push(normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

describe('layers (docs/ARCHITECTURE.md §Layers)', () => {
  const files = sources(SRC);

  it('every folder of src/ has a place in the order', () => {
    const folders = new Set(files.map(layerOf));
    expect([...folders].filter((f) => !(LAYERS as readonly string[]).includes(f))).toEqual([]);
    expect(files.length).toBeGreaterThan(100);
  });

  it('no module imports from a layer above its own', () => {
    const rank = (l: string) => (LAYERS as readonly string[]).indexOf(l);
    const up: string[] = [];
    let seen = 0;
    for (const f of files) {
      for (const target of importsOf(f)) {
        seen++;
        if (!target.startsWith(SRC)) {
          up.push(`${relative(SRC, f)} imports ${relative(SRC, target)} (outside src/)`);
          continue;
        }
        if (rank(layerOf(target)) > rank(layerOf(f))) up.push(`${relative(SRC, f)} imports ${relative(SRC, target)}`);
      }
    }
    expect(up).toEqual([]);
    expect(seen).toBeGreaterThan(500); // the scan sees the imports it judges
  });
});
