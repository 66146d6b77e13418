/**
 * Old and new checker side by side (issue 13): `node --import tsx bench/checkCompare.ts [ref] [reps]`. Transpiles
 * git `ref`'s tree and this working tree (bench/treeCompare.ts) and runs check-assign-race at bound 2 in each — DPOR
 * with the machine rebuilt, copied or forked per schedule, and the stateful search — and the unbounded stateful search
 * (sleep sets, what `--bound none` runs) on check-deassign-unassigned, in child processes, alternating old and new,
 * `reps` times. Prints the load average, each side's lowest CPU time and schedules per CPU-second, and
 * fails unless both sides found the same schedules, states, distinct states and verdict.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { load, root, withTrees } from './treeCompare.js';

const ref = process.argv[2] ?? 'main';
const reps = Number(process.argv[3] ?? 3);
const WAYS = ['rebuilt', 'copied', 'forked', 'stateful', 'unbounded'] as const;
const file = (way: string) =>
  path.join(root, 'scenarios', way === 'unbounded' ? 'check-deassign-unassigned.yaml' : 'check-assign-race.yaml');

interface Row {
  schedules: number;
  states: number;
  distinct: number | null;
  verdict: string;
  violations: number;
  cpu: number;
}

withTrees(ref, 'checkSide.js', (sides, rev) => {
  console.log(`checker, old = ${ref} (${rev}) vs new = this working tree; load average at start ${load()}`);
  const best: Record<string, Row> = {};
  for (let r = 0; r < reps; r++) {
    for (const way of WAYS) {
      for (const side of r % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const)) {
        const out = execFileSync(process.execPath, [path.join(sides[side], 'bench', 'checkSide.js'), way, file(way)], {
          encoding: 'utf8',
        });
        const row = JSON.parse(out) as Row;
        const key = `${side} ${way}`;
        if (best[key] === undefined || row.cpu < best[key].cpu) best[key] = row;
      }
    }
  }
  for (const way of WAYS) {
    const o = best[`old ${way}`]!;
    const n = best[`new ${way}`]!;
    if (
      o.schedules !== n.schedules ||
      o.states !== n.states ||
      o.distinct !== n.distinct ||
      o.verdict !== n.verdict ||
      o.violations !== n.violations
    ) {
      throw new Error(`${way}: old and new searched differently (${JSON.stringify(o)} vs ${JSON.stringify(n)})`);
    }
    const rate = (x: Row) => Math.round(x.schedules / x.cpu);
    const perState = (x: Row) => Math.round((x.cpu * 1e6) / x.states);
    console.log(
      `${way.padEnd(9)}: ${n.schedules} schedules, ${n.states} states${n.distinct ? ` (${n.distinct} distinct)` : ''}, ${n.verdict}; old ${o.cpu.toFixed(2)} s CPU = ${rate(o)}/CPU-s, ${perState(o)} µs/state, new ${n.cpu.toFixed(2)} s CPU = ${rate(n)}/CPU-s, ${perState(n)} µs/state (${(o.cpu / n.cpu).toFixed(2)}×)`,
    );
  }
  console.log(`load average at end ${load()}`);
});
