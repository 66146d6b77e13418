/** `npm run bench`: run the benchmarks and print a table (and JSON with --json). */
import os from 'node:os';
import { type BenchResult, engineBenchmarks } from './engine.js';
import { forwardedPathBenchmarks } from './forwardedPath.js';
import { normalPathBenchmark } from './normalPath.js';
import { scalingBenchmark } from './scaling.js';

const json = process.argv.includes('--json');
const normal = normalPathBenchmark();
const forwarded = forwardedPathBenchmarks();
const scaling = scalingBenchmark();
const results: BenchResult[] = [...engineBenchmarks(), normal, ...forwarded];
const machine = `node ${process.version}, ${process.platform}/${process.arch}, ${os.cpus()[0]?.model ?? '?'}`;

if (json) {
  console.log(JSON.stringify({ node: process.version, machine, results, scaling }, null, 2));
} else {
  console.log(`irqfwd benchmarks — ${machine}`);
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
      `${f.name}: simulated/wall time ${f.simPerWall.toFixed(4)}; retained after GC ${f.retainedPerIrq.toFixed(3)} B/IRQ over ${f.count} IRQs`,
    );
  }
  for (const axis of ['lines', 'vcpus'] as const) {
    const ps = scaling.points.filter((p) => p.axis === axis);
    console.log(
      `scaling by ${axis === 'lines' ? 'forwarded IRQs (1 vCPU)' : 'vCPUs (256 lines)'}: ${ps.map((p) => `${axis === 'lines' ? p.lines : p.vcpus}→${(p.nsPerIrq / 1000).toFixed(2)} µs`).join('  ')}   max deviation from mean ${(scaling.spread[axis] * 100).toFixed(1)}%`,
    );
  }
}
