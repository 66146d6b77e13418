/**
 * Old and new forwarded path side by side (issue 13): `node --import tsx bench/fwdCompare.ts [ref] [count] [reps]`.
 * The tree of git `ref` (default main) and this working tree are each transpiled file by file (esbuild, ESM, as tsc
 * emits dist/) into a temporary directory, and bench/fwdSide.ts runs the forwarded-path machine of each in child
 * processes, alternating old and new, idle and running guest, `reps` times. Prints the load average before and after,
 * best and median IRQs per CPU-second of each side, and fails unless both sides ended every run in the same
 * simulated state (engine steps and cycle).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ref = process.argv[2] ?? 'main';
const count = Number(process.argv[3] ?? 100_000);
const reps = Number(process.argv[4] ?? 3);

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

interface Side {
  perCpuSecond: number[];
  steps: number;
  cycle: number;
}

const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'irqfwd-fwdcmp-'));
try {
  const rev = execFileSync('git', ['-C', root, 'rev-parse', '--short', ref], { encoding: 'utf8' }).trim();
  const oldTree = path.join(tmp, 'old-tree');
  fs.mkdirSync(oldTree);
  execFileSync('sh', ['-c', `git -C "${root}" archive ${rev} src bench | tar -x -C "${oldTree}"`]);
  const sides = { old: path.join(tmp, 'old'), new: path.join(tmp, 'new') };
  transpile(oldTree, sides.old);
  transpile(root, sides.new);
  // the old tree runs this tree's driver against its own machine builder
  fs.copyFileSync(path.join(sides.new, 'bench', 'fwdSide.js'), path.join(sides.old, 'bench', 'fwdSide.js'));

  console.log(`forwarded path, old = ${ref} (${rev}) vs new = this working tree; load average at start ${load()}`);
  const runs: Record<string, Side[]> = {};
  for (let r = 0; r < reps; r++) {
    for (const mode of ['idle', 'busy']) {
      const order = r % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
      for (const side of order) {
        const outp = execFileSync(
          process.execPath,
          [path.join(sides[side], 'bench', 'fwdSide.js'), mode, String(mode === 'idle' ? count : count / 2)],
          { encoding: 'utf8' },
        );
        const key = `${side} ${mode}`;
        runs[key] = [...(runs[key] ?? []), JSON.parse(outp) as Side];
      }
    }
  }
  for (const mode of ['idle', 'busy']) {
    const o = runs[`old ${mode}`]!;
    const n = runs[`new ${mode}`]!;
    for (let i = 0; i < reps; i++) {
      if (o[i]!.steps !== n[i]!.steps || o[i]!.cycle !== n[i]!.cycle) {
        throw new Error(
          `${mode}: old and new simulated differently (steps/cycle ${o[i]!.steps}/${o[i]!.cycle} vs ${n[i]!.steps}/${n[i]!.cycle})`,
        );
      }
    }
    const stat = (s: Side[]) => {
      const v = s.flatMap((x) => x.perCpuSecond).sort((a, b) => b - a);
      return { best: v[0]!, median: v[v.length >> 1]! };
    };
    const so = stat(o);
    const sn = stat(n);
    const k = (x: number) => `${(x / 1e3).toFixed(1)} k`;
    console.log(
      `${mode === 'idle' ? 'idle vCPU (WFI)   ' : 'running vCPU (busy)'}: old best ${k(so.best)} / median ${k(so.median)}, new best ${k(sn.best)} / median ${k(sn.median)} forwarded IRQs per CPU-second (${(sn.median / so.median).toFixed(2)}× median; same ${o[0]!.steps} steps)`,
    );
  }
  console.log(`load average at end ${load()}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
