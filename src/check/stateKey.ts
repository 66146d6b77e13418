/**
 * The key of a state for the stateful search: a fingerprint (sim/snapshot.ts stateHash) of everything that decides
 * what the rest of a run can do or what an invariant judges — the machine, and the spin-loop detector's view of it —
 * and of nothing that only records how the run got there:
 *
 * - clocks: the engine's `now`, each CPU's `readyAt` and the time keys of the engine's heap. The checker never orders
 *   by time (the choosable agents are the heap's members, ascending), and the model's reads of the clock in the
 *   concurrent phase only feed statistics (latency sums, round trips) or compare against the set-up's time (the
 *   guest's retargeting actions are all due when the phase starts);
 * - the heap's layout (which slot holds which agent, insertion sequence numbers): only its membership is read;
 * - step counters (`Engine.steps`, `Cpu.steps`): read by nothing in the model;
 * - statistics: the fields the model declares only count what happened (sim/statistics.ts: kvm_vcpu_stat, the vGIC's
 *   flush and fold counts, VFIO's unmasks, a CPU's exceptions and exits), for metrics and reports — no model code
 *   decides on them and no invariant reads them. Without them two orders that took a vCPU out and back in a different
 *   number of times merge: assign-race's unbounded search keys 38,240 states instead of 51,967 and judges 578 end
 *   states instead of 1,109, with the same verdict;
 * - the cost table (`CostTable`): costs only advance clocks, and its length is a cache of the costs the process has
 *   defined so far (modules load lazily), not state of the machine;
 * - `Engine.recordFootprints`: the checker's switch, on in every state it keys;
 * - `Engine.oidNames`: the names of the checker's object ids, read only by reports (`Engine.oidName`: the
 *   counterexample trace, the livelock verdict's message); how many ids exist (`nextOid`) stays in the key. 574
 *   strings in assign-race, each a string hash per key.
 *
 * stateKey.test.ts shows it: states that differ only in these fields (shifted clocks, a re-laid heap, other counts,
 * every declared statistic changed) have equal keys after every step of the same continuation, the same choosable
 * agents and footprints, and the same verdict. They are also all that differs between two orders of independent steps (measured by swapping adjacent
 * independent steps of random schedules: only `Cpu.readyAt` and the heap's arrays changed), so such orders merge.
 *
 * Under a preemption bound the key also holds the agent that ran last: with it, the state and the preemptions left
 * decide which continuations the search may still take (stateful.ts keeps the fewest preemptions a key was reached
 * with).
 */
import { CostTable } from '../sim/costs.js';
import { Cpu } from '../sim/cpu.js';
import { Engine } from '../sim/engine.js';
import { EventHeap } from '../sim/eventHeap.js';
import { Lockdep } from '../sim/lockdep.js';
import { type HashView, stateHash } from '../sim/snapshot.js';
import type { Execution } from './execution.js';

/** The agents a heap holds, ascending: its membership without its layout or time keys. */
function heapMembers(o: object): number[] {
  const h = o as EventHeap;
  const out: number[] = [];
  for (let i = 0; i < h.size; i++) out.push(h.at(i));
  return out.sort((a, b) => a - b);
}

/** The fields the key leaves out, per class, and the heap read as a set. */
const STATE_KEY_VIEW: HashView = {
  statistics: true,
  omit: new Map<object, readonly string[]>([
    [Engine.prototype, ['now', 'steps', 'recordFootprints', 'oidNames']],
    [Cpu.prototype, ['readyAt', 'steps']],
    [CostTable.prototype, ['cycles']],
  ]),
  canonical: new Map<object, (o: object) => unknown>([[EventHeap.prototype, heapMembers]]),
};

/** The key of `ex`'s current state; `withLast`: with the agent that ran last (what a preemption is counted against). */
export function stateKey(ex: Execution, withLast: boolean): string {
  return stateHash([ex.inst, ex.spinState(), withLast ? ex.last : null], STATE_KEY_VIEW);
}

/** The engine without its clock, its free timer slots read as a set (which agent number the next timer gets). */
function engineUntimed(o: object): unknown {
  const e = o as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(e)) if (k !== 'now' && k !== 'freeTimers') out[k] = e[k];
  out.freeTimers = [...(e.freeTimers as number[])].sort((a, b) => a - b);
  return out;
}

/** What two orders of commuting steps may leave different though nothing behaves differently (untimedStateHash). */
const UNTIMED_VIEW: HashView = {
  omit: new Map<object, readonly string[]>([[Cpu.prototype, ['readyAt']]]),
  canonical: new Map<object, (o: object) => unknown>([
    [EventHeap.prototype, heapMembers],
    [Engine.prototype, engineUntimed],
    [Lockdep.prototype, (o) => (o as Lockdep).canonical()],
  ]),
};

/**
 * stateHash of the machine reachable from `root` (and its `engine`) with what two orders of commuting steps may leave
 * different though nothing behaves differently: time (the engine's clock, each CPU's ready time, the (time, insertion)
 * keys of the queue of enabled agents, which counts as the set it holds), the order of the free timer slots, and which
 * task lockdep saw first (Lockdep.canonical). footprint.test.ts's commutation check compares these.
 */
export function untimedStateHash(root: unknown, engine: Engine): string {
  return stateHash([root, engine], UNTIMED_VIEW);
}
