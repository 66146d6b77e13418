/**
 * npm run fuzz -- --runs N [--seed S (default 1)] [--path P] [--max-commands M]: the model-based ABI fuzzer for long runs. Prints
 * progress, totals and the call histogram; on a failure the shrunk command list and the seed/path that replay it,
 * and exits 1.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { abiProperty, FuzzStats } from './commands.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    path: { type: 'string' },
    'max-commands': { type: 'string', default: '40' },
    'replay-path': { type: 'string' },
  },
});
const runs = Number(values.runs);
// a run is a function of its arguments: the default seed is fixed, other seeds are asked for
const seed = Number(values.seed);
const maxCommands = Number(values['max-commands']);
// wall time for the progress lines only (the CLI timing itself; nothing in the model reads it)
const started = performance.now();
let last = started;
const stats = new FuzzStats(() => {
  const now = performance.now();
  if (now - last > 10_000) {
    last = now;
    console.log(`  ${stats.sequences} sequences, ${((now - started) / 1000).toFixed(0)} s`);
  }
});
const details = fc.check(abiProperty(stats, maxCommands, values['replay-path']), {
  numRuns: runs,
  seed,
  path: values.path,
  endOnFailure: values.path !== undefined,
});
const secs = (performance.now() - started) / 1000;
console.log(`fuzz: seed ${seed}, ${stats.sequences} sequence(s) run (of ${runs}) in ${secs.toFixed(1)} s`);
for (const line of stats.histogram()) console.log(`  ${line}`);
console.log(
  `  depth: ${stats.forwardAssigned} ASSIGN_IRQ succeeded, ${stats.raised} line raises, ${stats.delivered} IRQs delivered to guests, up to ${stats.maxFds} fds open`,
);
console.log(
  `  lines left enabled with no action after exit (6.1's unmask of a freed index): ${stats.strayEnabled.exact} predicted exactly, ${stats.strayEnabled.either} where the model allowed either`,
);
if (details.failed) {
  console.log(fc.defaultReportMessage(details));
  const err = details.errorInstance;
  console.log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  const rp = /replayPath="([^"]*)"/.exec(fc.defaultReportMessage(details) ?? '')?.[1];
  const replay = rp !== undefined ? ` --replay-path '${rp}'` : '';
  console.log(
    `replay: npm run fuzz -- --runs ${runs} --seed ${details.seed} --path ${details.counterexamplePath}${replay}`,
  );
  console.log(`FAILED after ${details.numRuns} run(s)`);
  process.exit(1);
}
console.log(
  `PASSED ${details.numRuns} sequences, 0 mismatches, 0 invariant violations, 0 leaks (${secs.toFixed(1)} s)`,
);
