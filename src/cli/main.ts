#!/usr/bin/env node
/**
 * The `irqfwd` executable (package.json "bin" → dist/cli/main.js). Everything but the wiring lives in commands.ts.
 */
import { runScenario } from '../scenario/runner.js'; // the runner: src/scenario/runner.ts (the lead's)
import { costDefs } from '../sim/costs.js';
import { EXIT_OK, main } from './commands.js';

// `irqfwd trace | head -1`: the reader went away, which is not a failure of the run (exit 1 means an invariant was
// violated): stop quietly, as a Unix filter does.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(EXIT_OK);
});

process.exitCode = await main(process.argv.slice(2), {
  run: runScenario,
  costNames: () => costDefs().map((d) => d.name),
});
