/**
 * Old and new code side by side: the tree of a git ref and this working tree are each transpiled file by file
 * (esbuild, ESM, as tsc emits dist/) into a temporary directory, runnable with this node_modules. Used by
 * bench/fwdCompare.ts (forwarded path) and bench/checkCompare.ts (checker).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

/** Transpile `tree`'s src/ and bench/ to `out` (one .js per .ts, imports kept), runnable with this node_modules. */
function transpile(tree: string, out: string): void {
  buildSync({
    entryPoints: [...tsFiles(path.join(tree, 'src')), ...tsFiles(path.join(tree, 'bench'))],
    outbase: tree,
    outdir: out,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'));
}

export const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/**
 * Transpile `ref`'s tree and this working tree, copy this tree's `driver` (a bench/ file name, e.g. 'fwdSide.js')
 * into the old side so both run the same driver against their own model, call `body` with the two directories,
 * and remove them afterwards.
 */
export function withTrees(
  ref: string,
  driver: string,
  body: (sides: { old: string; new: string }, rev: string) => void,
): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'irqfwd-cmp-'));
  try {
    const rev = execFileSync('git', ['-C', root, 'rev-parse', '--short', ref], { encoding: 'utf8' }).trim();
    const oldTree = path.join(tmp, 'old-tree');
    fs.mkdirSync(oldTree);
    execFileSync('sh', ['-c', `git -C "${root}" archive ${rev} src bench | tar -x -C "${oldTree}"`]);
    const sides = { old: path.join(tmp, 'old'), new: path.join(tmp, 'new') };
    transpile(oldTree, sides.old);
    transpile(root, sides.new);
    fs.copyFileSync(path.join(sides.new, 'bench', driver), path.join(sides.old, 'bench', driver));
    body(sides, rev);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
