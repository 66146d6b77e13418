/**
 * npm run fuzz -- --runs N [--seed S] [--path P] [--max-commands M]: the model-based ABI fuzzer for long runs. Prints
 * progress, totals and the call histogram; on a failure the shrunk command list and the seed/path that replay it,
 * and exits 1.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { abiProperty, FuzzStats } from './commands.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string' },
    path: { type: 'string' },
    'max-commands': { type: 'string', default: '40' },
    'replay-path': { type: 'string' },
  },
});
const runs = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() ^ (process.pid << 16)) | 0;
const maxCommands = Number(values['max-commands']);
const started = Date.now();
let last = started;
const stats = new FuzzStats(() => {
  const now = Date.now();
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
const secs = (Date.now() - started) / 1000;
console.log(`fuzz: seed ${seed}, ${stats.sequences} sequence(s) run (of ${runs}) in ${secs.toFixed(1)} s`);
for (const line of stats.histogram()) console.log(`  ${line}`);
console.log(
  `  depth: ${stats.forwardAssigned} ASSIGN_IRQ succeeded, ${stats.raised} line raises, ${stats.delivered} IRQs delivered to guests, up to ${stats.maxFds} fds open`,
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
