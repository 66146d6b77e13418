/** `npm run bench`: run the benchmarks and print a table (and JSON with --json). */
import os from 'node:os';
import { type CheckBenchRow, checkBenchmark } from './check.js';
import { type BenchResult, engineBenchmarks } from './engine.js';
import { forwardedPathBenchmarks } from './forwardedPath.js';
import { normalPathBenchmark } from './normalPath.js';
import { scaleBenchmark, scaleReport } from './scale.js';
import { scalingBenchmark } from './scaling.js';
import { printTaskModel, taskModelBenchmark } from './taskModel.js';

const json = process.argv.includes('--json');
const loadAtStart = os
  .loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');
const normal = normalPathBenchmark();
const forwarded = forwardedPathBenchmarks();
const scaling = scalingBenchmark();
const scale = scaleBenchmark();
const check = checkBenchmark(process.argv.includes('--check-full'));
const taskModel = taskModelBenchmark();
const results: BenchResult[] = [...engineBenchmarks(), normal, ...forwarded];
const machine = `node ${process.version}, ${process.platform}/${process.arch}, ${os.cpus()[0]?.model ?? '?'}`;

if (json) {
  console.log(
    JSON.stringify(
      {
        node: process.version,
        machine,
        loadAverage: { start: loadAtStart, end: os.loadavg() },
        results,
        scaling,
        scale,
        check,
        taskModel,
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `irqfwd benchmarks — ${machine}; load average at start ${loadAtStart}, at end ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  for (const r of results) {
    const rate = r.perSecond >= 1e6 ? `${(r.perSecond / 1e6).toFixed(2)} M` : `${(r.perSecond / 1e3).toFixed(1)} k`;
    console.log(
      `${r.name.padEnd(44)} ${rate} ${r.unit}/s   (${r.count} in ${r.seconds.toFixed(3)} s; heap growth ${(r.heapGrowthBytes / 1024).toFixed(0)} KiB = ${r.bytesPerUnit.toFixed(2)} B/${r.unit.replace(/s$/, '')})`,
    );
  }
  console.log(
    `normal path: simulated/wall time ${normal.simPerWall.toFixed(4)} (${(normal.simPerWall * 1000).toFixed(2)} ms simulated per wall second)`,
  );
  for (const f of forwarded) {
    console.log(
      `${f.name}: best ${(f.perSecond / 1e3).toFixed(1)} k/s, median ${(f.perSecondMedian / 1e3).toFixed(1)} k/s, ${(f.perCpuSecond / 1e3).toFixed(1)} k per CPU-second; simulated/wall time ${f.simPerWall.toFixed(4)}; retained after GC ${f.retainedPerIrq.toFixed(3)} B/IRQ over ${f.longCount} IRQs`,
    );
  }
  for (const axis of ['lines', 'vcpus'] as const) {
    const ps = scaling.points.filter((p) => p.axis === axis);
    console.log(
      `scaling by ${axis === 'lines' ? 'forwarded IRQs (1 vCPU)' : 'vCPUs (256 lines)'}, CPU µs/IRQ (wall): ${ps.map((p) => `${axis === 'lines' ? p.lines : p.vcpus}→${(p.cpuNsPerIrq / 1000).toFixed(2)} (${(p.nsPerIrq / 1000).toFixed(2)})`).join('  ')}   max deviation from mean ${(scaling.spread[axis] * 100).toFixed(1)}% CPU, ${(scaling.wallSpread[axis] * 100).toFixed(1)}% wall`,
    );
  }
  for (const l of scaleReport(scale)) console.log(l);
  const checkRow = (r: CheckBenchRow) =>
    console.log(
      `${r.name}: ${r.verdict}${r.counterexample !== undefined ? ` (${r.counterexample} choices)` : ''}; ${r.schedules} schedules (${r.complete} complete), ${r.states} states${r.distinct > 0 ? ` (${r.distinct} distinct)` : ''}, ${r.steps} steps executed in ${r.seconds.toFixed(2)} s (${r.cpuSeconds.toFixed(2)} CPU s, load ${r.load.toFixed(2)}) = ${r.schedulesPerSecond.toFixed(0)} schedules/s, ${r.schedulesPerCpuSecond.toFixed(0)} per CPU-second, ${(r.statesPerSecond / 1e3).toFixed(1)} k states/s`,
    );
  for (const r of check.rows) checkRow(r);
  const sbs = check.sideBySide;
  if (sbs !== undefined) {
    console.log(`check side by side, bound 2, each way run ${sbs.reps}× alternately, its run with the least CPU:`);
    for (const r of sbs.rows) checkRow(r);
    console.log(
      `check side by side: forked at choice points runs ${sbs.vsRebuilt.toFixed(2)}× the schedules per CPU-second of the machine rebuilt per schedule, ${sbs.vsCopied.toFixed(2)}× of the copy with its prefix replayed`,
    );
  }
  for (const x of check.reduction) {
    console.log(
      `check reduction at bound ${x.bound}: DPOR runs ${x.vsNone.toFixed(1)}× fewer schedules than plain enumeration, ${x.vsSleep.toFixed(1)}× fewer than sleep sets`,
    );
  }
  printTaskModel(taskModel);
}
