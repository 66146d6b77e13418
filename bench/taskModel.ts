/**
 * The task model, old against new, side by side in one process: spin_lock_irqsave/unlock and mutex_lock/unlock
 * acquired by a thread through `yield*`, with the generator primitives of round 1 (copied here as the reference) and
 * the Frame state machines that replaced them (src/sim/locks.ts); and what a copy of the checker's machine would
 * cost once nothing in it is a suspended generator: a structural copy of assign-race's object graph at the start of
 * its concurrent phase, with the generators it still holds counted. Prints the load average: absolute figures drift
 * on a shared machine, the ratios much less.
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
  while (m.owner !== null) yield wait(m.wq);
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

// ---- what a snapshot of the checker's machine would copy ---------------------------------------------------------

interface GraphCopy {
  objects: number;
  generators: number;
  closures: number;
  copyUs: number;
}

/** A structural copy of everything reachable (prototypes kept, typed arrays and collections copied, functions shared). */
function copyGraph(root: object): GraphCopy {
  const seen = new Map<object, unknown>();
  let generators = 0;
  let closures = 0;
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'function' && v.prototype === undefined && v.name === '') closures++;
      return v;
    }
    const o = v as object;
    const done = seen.get(o);
    if (done !== undefined) return done;
    if (Object.prototype.toString.call(o) === '[object Generator]') {
      generators++;
      seen.set(o, o);
      return o;
    }
    if (ArrayBuffer.isView(o)) {
      const c = (o as unknown as { slice(): object }).slice();
      seen.set(o, c);
      return c;
    }
    if (o instanceof Map) {
      const c = new Map();
      seen.set(o, c);
      for (const [k, x] of o) c.set(copy(k), copy(x));
      return c;
    }
    if (o instanceof Set) {
      const c = new Set();
      seen.set(o, c);
      for (const x of o) c.add(copy(x));
      return c;
    }
    const c: Record<string | symbol, unknown> = Array.isArray(o) ? [] : Object.create(Object.getPrototypeOf(o));
    seen.set(o, c);
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k)!;
      if ('value' in d) c[k] = copy(d.value);
    }
    return c;
  };
  const t0 = performance.now();
  const reps = 50;
  for (let i = 0; i < reps; i++) {
    seen.clear();
    generators = 0;
    closures = 0;
    copy(root);
  }
  return { objects: seen.size, generators, closures, copyUs: ((performance.now() - t0) * 1000) / reps };
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
    `  assign-race machine: rebuild ${b.buildUs.toFixed(0)} µs; a structural copy of its ${g.objects} objects ${g.copyUs.toFixed(0)} µs — not a snapshot yet: it still holds ${g.generators} suspended generators and ${g.closures} closures`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) printTaskModel(taskModelBenchmark());
