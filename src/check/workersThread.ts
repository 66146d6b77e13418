/**
 * A check worker thread (workers.ts): rebuilds the scenario from its options, then explores each subtree task it
 * is sent and replies with the task's statistics and its violation (or null). Cancelled through the shared flag.
 */
import { workerData } from 'node:worker_threads';
import { explore } from './explore.js';
import { scenarioOfReplay } from './replay.js';
import type { TaskMessage, WorkerReply, WorkerSetup } from './workers.js';

const setup = workerData as WorkerSetup;
const sig = new Int32Array(setup.signal);
const port = setup.port;

function reply(m: WorkerReply): void {
  port.postMessage(m);
  Atomics.add(sig, 0, 1);
  Atomics.notify(sig, 0);
}

try {
  const scenario = scenarioOfReplay(setup.scenario);
  port.on('message', (t: TaskMessage) => {
    try {
      const r = explore(scenario, {
        ...(setup.bound !== null ? { bound: setup.bound } : {}),
        ...(setup.budget !== null ? { budget: setup.budget } : {}),
        reduction: setup.reduction,
        teardown: setup.teardown,
        root: { prefix: t.prefix, sleep: t.sleep },
        shrink: false,
        cancelled: () => t.id > Atomics.load(sig, 1),
      });
      const cx = r.counterexample;
      reply({
        kind: 'done',
        id: t.id,
        stats: r.stats,
        violation: cx === null ? null : { violations: cx.violations, found: cx.found },
        cancelled: r.limits.includes('cancelled'),
      });
    } catch (e) {
      reply({ kind: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  });
  reply({ kind: 'ready' });
} catch (e) {
  reply({ kind: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
}
