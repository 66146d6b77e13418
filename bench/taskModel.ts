/**
 * The task model, old against new, side by side in one process: spin_lock_irqsave/unlock and mutex_lock/unlock
 * acquired by a thread through `yield*`, with the generator primitives of round 1 (copied here as the reference) and
 * the Frame state machines that replaced them (src/sim/locks.ts); and what a snapshot of the checker's machine
 * costs: assign-race's machine at the start of its concurrent phase rebuilt, copied (copyState) and fingerprinted
 * (stateHash), with what findUncopyable still finds in it. Prints the load average: absolute figures drift on a shared
 * machine, the ratios much less.
 *
 *   node --expose-gc --import tsx bench/taskModel.ts
 */
import os from 'node:os';
import { raceScenario } from '../src/check/model.js';
import { Engine } from '../src/sim/engine.js';
import {
  C_MUTEX_LOCK,
  type Mutex,
  Mutex as MutexClass,
  mutexLock,
  type Spinlock,
  Spinlock as SpinlockClass,
  spinLockIrqsave,
  spinLockStep,
  spinLockTake,
  spinUnlockIrqrestore,
} from '../src/sim/locks.js';
import { copyState, findUncopyable, stateHash } from '../src/sim/snapshot.js';
import { current, type Op, op, type TaskGen } from '../src/sim/task.js';
import { wait } from '../src/sim/waitqueue.js';

// ---- round 1's generator primitives (the reference) -------------------------------------------------------------

function* oldSpinLockContended(l: Spinlock): Generator<Op, void, unknown> {
  const t = current();
  while (l.owner !== null) yield l.spinOn(t);
  l.owner = t;
  t.held.push(l);
}

function* oldSpinLockIrqsave(l: Spinlock): Generator<Op, boolean, unknown> {
  const ctx = current().maskCtx!;
  const flags = ctx.irqMasked;
  ctx.irqMasked = true;
  yield spinLockStep(l);
  if (!spinLockTake(l)) yield* oldSpinLockContended(l);
  return flags;
}

function* oldMutexLock(m: Mutex): Generator<Op, void, unknown> {
  yield op(C_MUTEX_LOCK, m.oid);
  const t = current();
  while (m.owner !== null) yield wait(m);
  m.owner = t;
  t.held.push(m);
}

type Impl = 'generator' | 'frame';

function lockLoop(impl: Impl, n: number): number {
  const e = new Engine({ cpus: 1 });
  const l = new SpinlockClass(e, 'bench.lock');
  const m = new MutexClass(e, 'bench.mutex');
  function* body(): TaskGen<void> {
    for (let i = 0; i < n; i++) {
      const f = impl === 'generator' ? yield* oldSpinLockIrqsave(l) : yield* spinLockIrqsave(l);
      spinUnlockIrqrestore(l, f);
      if (impl === 'generator') yield* oldMutexLock(m);
      else yield* mutexLock(m);
      m.unlock();
    }
  }
  e.spawn('bench', 0, body());
  const t0 = performance.now();
  e.settle();
  return ((performance.now() - t0) * 1e6) / (2 * n);
}

// ---- a snapshot of the checker's machine (sim/snapshot.ts) ---------------------------------------------------------

interface GraphCopy {
  objects: number;
  /** What findUncopyable reports: suspended generators, and functions in state not registered as code. */
  generators: number;
  closures: number;
  copyUs: number;
  hashUs: number;
}

function countObjects(root: object): number {
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) return;
    if (v instanceof Map) for (const [k, x] of v) walk(k), walk(x);
    else if (v instanceof Set) for (const x of v) walk(x);
    else for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k]);
  };
  walk(root);
  return seen.size;
}

/** copyState and stateHash of the machine at the start of the concurrent phase, best of 5 batches of 20. */
function copyGraph(root: object): GraphCopy {
  const found = findUncopyable(root, 1000);
  const generators = found.filter((f) => f.endsWith('suspended generator')).length;
  const time = (f: () => void): number => {
    let best = Number.POSITIVE_INFINITY;
    for (let b = 0; b < 5; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) f();
      best = Math.min(best, ((performance.now() - t0) * 1000) / 20);
    }
    return best;
  };
  return {
    objects: countObjects(root),
    generators,
    closures: found.length - generators,
    copyUs: generators === 0 ? time(() => copyState(root)) : Number.NaN,
    hashUs: generators === 0 ? time(() => stateHash(root)) : Number.NaN,
  };
}

export interface TaskModelBench {
  readonly loadAverage: number;
  readonly lockNs: Record<Impl, number>;
  readonly buildUs: number;
  readonly graph: GraphCopy;
}

export function taskModelBenchmark(): TaskModelBench {
  const n = 200_000;
  lockLoop('generator', n / 10);
  lockLoop('frame', n / 10);
  const lockNs: Record<Impl, number> = { generator: Number.POSITIVE_INFINITY, frame: Number.POSITIVE_INFINITY };
  for (let r = 0; r < 5; r++) {
    for (const impl of ['generator', 'frame'] as const) lockNs[impl] = Math.min(lockNs[impl], lockLoop(impl, n));
  }
  const s = raceScenario({});
  for (let i = 0; i < 20; i++) s.build();
  const t0 = performance.now();
  const builds = 100;
  let inst = s.build();
  for (let i = 1; i < builds; i++) inst = s.build();
  const buildUs = ((performance.now() - t0) * 1000) / builds;
  return { loadAverage: os.loadavg()[0]!, lockNs, buildUs, graph: copyGraph(inst) };
}

export function printTaskModel(b: TaskModelBench): void {
  console.log(`task model (load average ${b.loadAverage.toFixed(2)}):`);
  console.log(
    `  lock+unlock through yield*: generator ${b.lockNs.generator.toFixed(1)} ns, frame ${b.lockNs.frame.toFixed(1)} ns (frame/generator ${(b.lockNs.frame / b.lockNs.generator).toFixed(2)})`,
  );
  const g = b.graph;
  console.log(
    `  assign-race machine (${g.objects} objects): rebuild ${b.buildUs.toFixed(0)} µs, copyState ${g.copyUs.toFixed(0)} µs, stateHash ${g.hashUs.toFixed(0)} µs; uncopyable: ${g.generators} suspended generators, ${g.closures} unregistered functions`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) printTaskModel(taskModelBenchmark());
