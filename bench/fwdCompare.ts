/**
 * Old and new forwarded path side by side (issue 13): `node --import tsx bench/fwdCompare.ts [ref] [count] [reps]`.
 * The tree of git `ref` (default main) and this working tree are each transpiled file by file (esbuild, ESM, as tsc
 * emits dist/) into a temporary directory, and bench/fwdSide.ts runs the forwarded-path machine of each in child
 * processes, alternating old and new, idle and running guest, `reps` times. Prints the load average before and after,
 * best and median IRQs per CPU-second of each side, and fails unless both sides ended every run in the same
 * simulated state (engine steps and cycle).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { load, withTrees } from './treeCompare.js';

const ref = process.argv[2] ?? 'main';
const count = Number(process.argv[3] ?? 100_000);
const reps = Number(process.argv[4] ?? 3);

interface Side {
  perCpuSecond: number[];
  steps: number;
  cycle: number;
}

withTrees(ref, 'fwdSide.js', (sides, rev) => {
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
});
