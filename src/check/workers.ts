/**
 * The systematic search shared by worker threads (`--workers N`).
 *
 * The lead (this thread) explores the top of the tree itself, down to a split depth, enumerating every awake
 * candidate there (sleep sets only, explore.ts splitDepth): each node it reaches at the split depth becomes a
 * subtree task (the choices leading to it and its sleep set). Because every node above the split explores all of
 * its awake candidates, the DPOR below never needs a backtrack point above the split, so the subtrees are
 * independent: each worker explores its tasks with the same reduction and bound, and the lead merges the
 * statistics. The split depth grows until there are several tasks per worker.
 *
 * Verdicts: a pass is the same as one thread's — exhaustive, or bounded by the same bound — and so are the merged
 * statistics whatever the order the tasks finish in (each task is deterministic). The schedules differ from one
 * thread's (the top is enumerated, not reduced). The first violation cancels the other workers; the lead shrinks it.
 * Which violation is found first may vary between runs.
 *
 * The lead blocks synchronously (Atomics.wait on a shared counter, messages drained with receiveMessageOnPort), so
 * the CLI stays synchronous. Only scenarios that can be rebuilt from their options (replay.ts scenarioOfReplay:
 * the built-in ones and scenario files) can be handed to workers.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { Touch } from './execution.js';
import {
  addStats,
  type CheckResult,
  type Counterexample,
  type ExploreOptions,
  type ExploreStats,
  explore,
  newStats,
  type Reduction,
  resultOf,
  type SubtreeTask,
  shrink,
} from './explore.js';
import type { Violation } from './invariants.js';
import type { CheckableScenario } from './model.js';
import { type ReplayFile, replayFileOf } from './replay.js';

export interface ParallelOptions extends ExploreOptions {
  workers: number;
  /** Start value of the split depth (default 1); it grows until there are `tasksPerWorker` tasks per worker. */
  splitDepth?: number;
  /** Subtree tasks per worker to aim for (default 16): subtrees differ widely in size, many small ones balance. */
  tasksPerWorker?: number;
  /** How long to wait for a worker to start (ms, default 60 s): a worker that cannot load its code never answers. */
  startTimeoutMs?: number;
}

/** What the lead sends a worker. */
export interface WorkerSetup {
  readonly scenario: ReplayFile;
  readonly bound: number | null;
  readonly reduction: Reduction;
  readonly budget: number | null;
  readonly teardown: boolean;
  /** [0]: messages posted (the lead waits on it); [1]: tasks with a higher id are cancelled. */
  readonly signal: SharedArrayBuffer;
  readonly port: MessagePort;
}

export interface TaskMessage {
  readonly id: number;
  readonly prefix: readonly number[];
  readonly sleep: readonly (readonly [number, Touch])[];
}

export type WorkerReply =
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'done';
      readonly id: number;
      readonly stats: ExploreStats;
      readonly violation: { readonly violations: readonly Violation[]; readonly found: readonly number[] } | null;
      readonly cancelled: boolean;
    }
  | { readonly kind: 'error'; readonly message: string };

/**
 * The worker's entry: the built JS beside this file, or — running from the TS sources (vitest, tsx) — a small
 * bootstrap that registers tsx's loader in the worker, then imports the TS entry (Node 20 workers inherit neither
 * the parent's loader hooks nor an `--import tsx` in execArgv).
 */
function startWorker(setup: WorkerSetup, transfer: MessagePort): Worker {
  const opts = { workerData: setup, transferList: [transfer] };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./workersThread.js', import.meta.url), opts);
  const tsx = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsx, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./workersThread.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}

/** Collect the subtree tasks at a split depth that gives enough of them; the lead's own work is counted. */
function split(scenario: CheckableScenario, opts: ParallelOptions, stats: ExploreStats) {
  let depth = opts.splitDepth ?? 1;
  for (;;) {
    const tasks: SubtreeTask[] = [];
    const r = explore(scenario, {
      ...opts,
      splitDepth: depth,
      delegate: (t) => tasks.push(t),
      shrink: false,
      onProgress: undefined,
      maxSchedules: undefined,
    });
    if (
      r.counterexample !== null ||
      tasks.length >= (opts.tasksPerWorker ?? 16) * opts.workers ||
      depth >= 40 ||
      tasks.length === 0
    ) {
      addStats(stats, r.stats);
      return { tasks, lead: r };
    }
    depth++;
  }
}

/** Explore with `opts.workers` worker threads; the same verdict as explore() with one. */
export function exploreParallel(scenario: CheckableScenario, opts: ParallelOptions): CheckResult {
  const reduction = opts.reduction ?? 'dpor';
  const bound = opts.bound ?? Number.POSITIVE_INFINITY;
  if (opts.workers <= 1) return explore(scenario, opts);
  const stats = newStats();
  const { tasks, lead } = split(scenario, opts, stats);
  const finish = (cx: Counterexample | null, cutBy: string) => {
    if (opts.onProgress) opts.onProgress(stats);
    return resultOf(scenario, reduction, opts.workers, bound, stats, cutBy, cx);
  };
  if (lead.counterexample !== null) {
    const cx = lead.counterexample;
    const found = { end: 'violation' as const, violations: cx.violations, schedule: cx.found };
    return finish({ ...cx, schedule: opts.shrink === false ? [...cx.found] : shrink(scenario, found, opts) }, '');
  }
  if (tasks.length === 0) return finish(null, '');

  const signal = new SharedArrayBuffer(8);
  const sig = new Int32Array(signal);
  sig[1] = 0x7fffffff;
  const n = Math.min(opts.workers, tasks.length);
  const workers: { w: Worker; port: MessagePort; busy: boolean }[] = [];
  const setupBase = {
    scenario: replayFileOf(scenario, '', []),
    bound: opts.bound ?? null,
    reduction,
    budget: opts.budget ?? null,
    teardown: opts.teardown ?? true,
    signal,
  };
  for (let i = 0; i < n; i++) {
    const ch = new MessageChannel();
    const setup: WorkerSetup = { ...setupBase, port: ch.port2 };
    const w = startWorker(setup, ch.port2);
    w.unref();
    workers.push({ w, port: ch.port1, busy: true }); // busy until 'ready'
  }
  let next = 0;
  let pending = n; // 'ready' messages, then tasks in flight
  // the violation of the lowest task id: the one a single thread running the tasks in order would report
  let violation: { id: number; violations: readonly Violation[]; found: readonly number[] } | null = null;
  let failure = '';
  let cutBy = '';
  let ready = 0;
  // waits of up to 1 s each while some worker has not said 'ready' (no clock in src/: count them)
  let startWaits = Math.ceil((opts.startTimeoutMs ?? 60_000) / 1000);
  const every = opts.progressEvery ?? 100;
  let shown = 0;
  try {
    while (pending > 0) {
      const seen = Atomics.load(sig, 0);
      let got = false;
      for (const wk of workers) {
        for (let m = receiveMessageOnPort(wk.port); m !== undefined; m = receiveMessageOnPort(wk.port)) {
          got = true;
          const msg = m.message as WorkerReply;
          pending--;
          wk.busy = false;
          if (msg.kind === 'ready') ready++;
          else if (msg.kind === 'error') failure ||= msg.message;
          else {
            addStats(stats, msg.stats);
            if (msg.violation !== null && (violation === null || msg.id < violation.id)) {
              violation = { id: msg.id, ...msg.violation };
              Atomics.store(sig, 1, msg.id);
            }
          }
        }
      }
      if (failure !== '') Atomics.store(sig, 1, -1);
      else if (violation === null && opts.maxSchedules !== undefined && stats.schedules >= opts.maxSchedules) {
        cutBy = `schedule limit ${opts.maxSchedules}`;
        Atomics.store(sig, 1, -1);
      }
      for (const wk of workers) {
        if (wk.busy || next >= tasks.length || next > Atomics.load(sig, 1)) continue;
        const t = tasks[next]!;
        const msg: TaskMessage = { id: next++, prefix: t.prefix, sleep: t.sleep };
        wk.busy = true;
        pending++;
        wk.port.postMessage(msg);
      }
      if (opts.onProgress && stats.schedules - shown >= every) {
        shown = stats.schedules;
        opts.onProgress(stats);
      }
      if (!got && pending > 0) {
        if (ready < n && startWaits <= 0) {
          throw new Error(`check workers: ${n - ready} of ${n} worker thread(s) did not start`);
        }
        // only a full second without a signal counts: a started worker's replies wake the wait early, and under load
        // they could otherwise use up the budget of one still starting
        if (Atomics.wait(sig, 0, seen, 1000) === 'timed-out' && ready < n) startWaits--;
      }
    }
  } finally {
    for (const wk of workers) void wk.w.terminate();
  }
  if (failure !== '') throw new Error(`check worker failed: ${failure}`);
  if (violation !== null) {
    const found = { end: 'violation' as const, violations: violation.violations, schedule: violation.found };
    const schedule = opts.shrink === false ? [...violation.found] : shrink(scenario, found, opts);
    return finish({ violations: violation.violations, found: [...violation.found], schedule }, '');
  }
  return finish(null, cutBy);
}
