/**
 * One side of bench/fwdCompare.ts, run in a child process from a transpiled tree (the tree's own
 * bench/fwdMachine.js next to this file): the forwarded-path machine of bench/forwardedPath.ts, warmed up, then timed
 * in CPU time. Prints one JSON line: IRQs per CPU-second for each run, and the simulated state the runs ended in
 * (engine steps and cycle), which must be the same on both sides — the code changed, the simulation did not.
 *
 * argv: `idle|busy` and the IRQs per run.
 */
import { buildFwdMachine } from './fwdMachine.js';

const busy = process.argv[2] === 'busy';
const count = Number(process.argv[3]);
const m = buildFwdMachine({ lines: 1, vcpus: 1, busy });
m.run(Math.min(count, 20_000));
const perCpuSecond: number[] = [];
for (let r = 0; r < 3; r++) {
  const c0 = process.cpuUsage();
  m.run(count);
  const c = process.cpuUsage(c0);
  perCpuSecond.push(count / ((c.user + c.system) / 1e6));
}
console.log(JSON.stringify({ perCpuSecond, steps: m.host.engine.steps, cycle: m.host.engine.now }));
