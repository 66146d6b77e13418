/**
 * npm run fuzz -- --runs N [--seed S (default 1)] [--machine gicv2|msi|both (default both)] [--path P] [--max-commands M]:
 * the model-based ABI fuzzer for long runs, N sequences on each machine flavour asked for. Prints
 * progress, totals and the call histogram; on a failure the shrunk command list and the seed/path that replay it,
 * and exits 1.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { abiProperty, FuzzStats } from './commands.js';
import { msiProperty } from './msiCommands.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    path: { type: 'string' },
    'max-commands': { type: 'string', default: '40' },
    'replay-path': { type: 'string' },
    machine: { type: 'string', default: 'both' },
  },
});
if (!['gicv2', 'msi', 'both'].includes(values.machine))
  throw new Error(`--machine ${values.machine}: gicv2, msi or both`);
const runs = Number(values.runs);
// a run is a function of its arguments: the default seed is fixed, other seeds are asked for
const seed = Number(values.seed);
const maxCommands = Number(values['max-commands']);
/** What the report needs of fast-check's run details (one shape for both flavours' command types). */
function summary<Ts>(d: fc.RunDetails<Ts>) {
  return {
    failed: d.failed,
    numRuns: d.numRuns,
    seed: d.seed,
    counterexamplePath: d.counterexamplePath,
    errorInstance: d.errorInstance,
    message: fc.defaultReportMessage(d),
  };
}

/** One flavour's run: progress, totals and the histogram; on a failure the shrunk sequence and its replay line. */
function fuzz(machine: 'gicv2' | 'msi'): boolean {
  // wall time for the progress lines only (the CLI timing itself; nothing in the model reads it)
  const started = performance.now();
  let last = started;
  const stats = new FuzzStats(() => {
    const now = performance.now();
    if (now - last > 10_000) {
      last = now;
      console.log(`  ${machine}: ${stats.sequences} sequences, ${((now - started) / 1000).toFixed(0)} s`);
    }
  });
  const opts = { numRuns: runs, seed, path: values.path, endOnFailure: values.path !== undefined };
  const rp0 = values['replay-path'];
  const details =
    machine === 'gicv2'
      ? summary(fc.check(abiProperty(stats, maxCommands, rp0), opts))
      : summary(fc.check(msiProperty(stats, maxCommands, rp0), opts));
  const secs = (performance.now() - started) / 1000;
  console.log(`fuzz ${machine}: seed ${seed}, ${stats.sequences} sequence(s) run (of ${runs}) in ${secs.toFixed(1)} s`);
  for (const line of stats.histogram()) console.log(`  ${line}`);
  if (machine === 'gicv2') {
    console.log(
      `  depth: ${stats.forwardAssigned} ASSIGN_IRQ succeeded, ${stats.raised} line raises, ${stats.delivered} IRQs delivered to guests, up to ${stats.maxFds} fds open`,
    );
    console.log(
      `  lines left enabled with no action after exit (6.1's unmask of a freed index): ${stats.strayEnabled.exact} predicted exactly, ${stats.strayEnabled.either} where the model allowed either`,
    );
  }
  if (machine === 'msi')
    console.log(
      `  depth: ${stats.msiSent} MSIs sent by the function from a vector bound to an eventfd, ${stats.msiSentRunning} with a vCPU in KVM_RUN`,
    );
  if (details.failed) {
    console.log(details.message);
    const err = details.errorInstance;
    console.log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const rp = /replayPath="([^"]*)"/.exec(details.message ?? '')?.[1];
    const replay = rp !== undefined ? ` --replay-path '${rp}'` : '';
    console.log(
      `replay: npm run fuzz -- --machine ${machine} --runs ${runs} --seed ${details.seed} --path ${details.counterexamplePath}${replay}`,
    );
    console.log(`FAILED after ${details.numRuns} run(s)`);
    return false;
  }
  console.log(
    `PASSED ${machine}: ${details.numRuns} sequences, 0 mismatches, 0 invariant violations, 0 leaks (${secs.toFixed(1)} s)`,
  );
  return true;
}

const machines =
  values.machine === 'both' ? (['gicv2', 'msi'] as const) : ([values.machine as 'gicv2' | 'msi'] as const);
for (const machine of machines) if (!fuzz(machine)) process.exit(1);
