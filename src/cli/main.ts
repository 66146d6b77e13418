#!/usr/bin/env node
/**
 * The `irqfwd` executable (package.json "bin" → dist/cli/main.js). Everything but the wiring lives in commands.ts.
 */
import { runScenario } from '../scenario/runner.js'; // the runner: src/scenario/runner.ts (the lead's)
import { costDefs } from '../sim/costs.js';
import { main } from './commands.js';

process.exitCode = await main(process.argv.slice(2), {
  run: runScenario,
  costNames: () => costDefs().map((d) => d.name),
});
