/** `npm run bench`: run the benchmarks and print a table (and JSON with --json). */
import { type BenchResult, engineBenchmarks } from './engine.js';
import { normalPathBenchmark } from './normalPath.js';

const json = process.argv.includes('--json');
const normal = normalPathBenchmark();
const results: BenchResult[] = [...engineBenchmarks(), normal];

if (json) {
  console.log(JSON.stringify({ node: process.version, results }, null, 2));
} else {
  console.log(`irqfwd benchmarks — node ${process.version}, ${process.platform}/${process.arch}`);
  for (const r of results) {
    const rate = r.perSecond >= 1e6 ? `${(r.perSecond / 1e6).toFixed(2)} M` : `${(r.perSecond / 1e3).toFixed(1)} k`;
    console.log(
      `${r.name.padEnd(44)} ${rate} ${r.unit}/s   (${r.count} in ${r.seconds.toFixed(3)} s; heap growth ${(r.heapGrowthBytes / 1024).toFixed(0)} KiB = ${r.bytesPerUnit.toFixed(2)} B/${r.unit.replace(/s$/, '')})`,
    );
  }
  console.log(
    `normal path: simulated/wall time ${normal.simPerWall.toFixed(4)} (${(normal.simPerWall * 1000).toFixed(2)} ms simulated per wall second)`,
  );
}
