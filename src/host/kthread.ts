/**
 * Kernel threads and workqueues (kernel/kthread.c, kernel/workqueue.c), at the level the model needs:
 *
 * - A WorkStruct has a PENDING bit: queueWork on a pending item does nothing and returns false, so an item queued
 *   twice before it runs runs once. PENDING is cleared just before the function runs, so the function may requeue
 *   its own item (it then runs again afterwards).
 * - Non-reentrancy: an item is never run by two workers at once; queueing an item that is running queues it on the
 *   worker that runs it (find_worker_executing_work), so the runs are serialised.
 * - Per-CPU workers: a workqueue has one kworker thread per CPU (created on first use), and queueWork targets the
 *   CPU of the caller (WORK_CPU_UNBOUND resolves to the local CPU); callers outside any task use CPU 0. Items on one
 *   worker run in FIFO order. Concurrency-managed extra workers (a second kworker when one sleeps) are not
 *   modelled: an item that sleeps delays the items queued behind it on the same CPU.
 * - flushWork waits until the instance queued (or running) when it was called has finished; a requeue after the
 *   call is not waited for. cancelWorkSync removes a pending instance and waits for a running one.
 *   flushWorkqueue waits for every item queued on the workqueue before the call.
 */
import { defineCost } from '../sim/costs.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { current, currentOrNull, op, type Task, type TaskGen } from '../sim/task.js';
import { WaitQueue, wait } from '../sim/waitqueue.js';

export const C_QUEUE_WORK = defineCost(
  'queue_work',
  80,
  'queue_work: test_and_set PENDING, insert_work under pool->lock, wake_up_worker; estimate',
);
export const C_PROCESS_WORK = defineCost(
  'process_one_work',
  100,
  'kworker dequeue + process_one_work bookkeeping around the work function; estimate',
);

export type WorkFn = (work: WorkStruct) => TaskGen<void>;

/** struct work_struct. */
export class WorkStruct {
  pending = false;
  /** The worker running this item, or null. */
  runningOn: Worker | null = null;
  /** The worker holding the pending instance, or null. */
  queuedOn: Worker | null = null;
  /** Instance numbers: each successful queue gets the next one. */
  queuedSeq = 0;
  runningSeq = 0;
  /** Workqueue-level sequence of the pending and running instances (for flushWorkqueue). */
  wqSeqPending = 0;
  wqSeqRunning = 0;
  /** How many times the function ran. */
  runs = 0;
  /** flush_work/cancel_work_sync waiters. */
  readonly done: WaitQueue;

  constructor(
    engine: Engine,
    readonly name: string,
    readonly fn: WorkFn,
  ) {
    this.done = new WaitQueue(engine, `work:${name}`);
  }

  get running(): boolean {
    return this.runningOn !== null;
  }

  get busy(): boolean {
    return this.pending || this.runningOn !== null;
  }
}

/** A kworker of one workqueue on one CPU. */
export class Worker {
  readonly queue: WorkStruct[] = [];
  readonly more: WaitQueue;
  readonly task: Task;

  constructor(
    readonly wq: Workqueue,
    readonly cpu: number,
  ) {
    const e = wq.engine;
    this.more = new WaitQueue(e, `kworker/${cpu}:${wq.name}`);
    this.task = e.spawn(`kworker/${cpu}:${wq.name}`, cpu, this.loop());
  }

  private *loop(): TaskGen<void> {
    for (;;) {
      while (this.queue.length === 0) yield wait(this.more);
      yield op(C_PROCESS_WORK, this.wq.oid);
      const w = this.queue.shift()!;
      w.pending = false;
      w.queuedOn = null;
      w.runningOn = this;
      w.runningSeq = w.queuedSeq;
      w.wqSeqRunning = w.wqSeqPending;
      w.runs++;
      yield* w.fn(w);
      w.runningOn = null;
      this.wq.retire(w.wqSeqRunning);
      w.done.wakeUpAll();
    }
  }
}

/** struct workqueue_struct. */
export class Workqueue {
  readonly oid: number;
  private readonly workers: (Worker | undefined)[] = [];
  private seq = 0;
  /** Workqueue-level sequence numbers of instances queued and not yet finished, ascending. */
  private readonly inflight: number[] = [];
  private readonly flushers: WaitQueue;

  constructor(
    readonly engine: Engine,
    readonly name: string,
  ) {
    this.oid = engine.newOid(`wq:${name}`);
    this.flushers = new WaitQueue(engine, `wq:${name}.flush`);
  }

  worker(cpu: number): Worker {
    let w = this.workers[cpu];
    if (w === undefined) {
      this.engine.cpu(cpu);
      w = new Worker(this, cpu);
      this.workers[cpu] = w;
    }
    return w;
  }

  /** queue_work_on: false if the item was already pending. Callable from any context (hardirq included). */
  queueWorkOn(cpu: number, work: WorkStruct): boolean {
    if (work.pending) return false;
    const target = work.runningOn ?? this.worker(cpu);
    if (target.wq !== this) {
      throw new ModelError(`work ${work.name} queued on ${this.name} while running on ${target.wq.name}`);
    }
    work.pending = true;
    work.queuedOn = target;
    work.queuedSeq++;
    work.wqSeqPending = ++this.seq;
    this.inflight.push(work.wqSeqPending);
    target.queue.push(work);
    target.more.wakeUpAll();
    return true;
  }

  /** queue_work: on the caller's CPU (CPU 0 outside any task). */
  queueWork(work: WorkStruct): boolean {
    const t = currentOrNull();
    return this.queueWorkOn(t === null ? 0 : Math.max(0, t.cpu), work);
  }

  /** Internal: an instance finished or was cancelled. */
  retire(wqSeq: number): void {
    const i = this.inflight.indexOf(wqSeq);
    if (i < 0) throw new ModelError(`workqueue ${this.name}: instance ${wqSeq} retired twice`);
    this.inflight.splice(i, 1);
    this.flushers.wakeUpAll();
  }

  /** flush_workqueue: wait until every item queued before the call has finished. */
  *flush(): TaskGen<void> {
    const target = this.seq;
    checkMaySleep('flush_workqueue');
    const t = current();
    for (const w of this.workers) {
      if (w !== undefined && w.task === t)
        throw new ModelError(`deadlock: ${t} flushes its own workqueue ${this.name}`);
    }
    while (this.inflight.length > 0 && this.inflight[0]! <= target) yield wait(this.flushers);
  }

  /** Items pending on any worker. */
  get pendingCount(): number {
    let n = 0;
    for (const w of this.workers) if (w !== undefined) n += w.queue.length;
    return n;
  }
}

function checkMaySleep(what: string): void {
  const t = current();
  if (t.kind !== 'thread') throw new ModelError(`BUG: sleeping function ${what} called from ${t.kind} context`);
}

/** flush_work: wait for the instance queued or running at the time of the call. Returns whether it waited. */
export function* flushWork(work: WorkStruct): TaskGen<boolean> {
  if (!work.busy) return false;
  checkMaySleep('flush_work');
  const t = current();
  if (work.runningOn !== null && work.runningOn.task === t) {
    throw new ModelError(`deadlock: work ${work.name} flushes itself`);
  }
  const target = work.queuedSeq;
  while ((work.pending && work.queuedSeq <= target) || (work.runningOn !== null && work.runningSeq <= target)) {
    yield wait(work.done);
  }
  return true;
}

/** cancel_work (no wait): drop a pending instance. Returns whether one was pending. */
export function cancelWork(work: WorkStruct): boolean {
  if (!work.pending) return false;
  const w = work.queuedOn!;
  const i = w.queue.indexOf(work);
  if (i < 0) throw new ModelError(`work ${work.name} pending but not on its worker's queue`);
  w.queue.splice(i, 1);
  work.pending = false;
  work.queuedOn = null;
  w.wq.retire(work.wqSeqPending);
  work.done.wakeUpAll();
  return true;
}

/** cancel_work_sync: drop a pending instance and wait for a running one. Returns whether one was pending. */
export function* cancelWorkSync(work: WorkStruct): TaskGen<boolean> {
  const was = cancelWork(work);
  if (work.runningOn !== null) {
    checkMaySleep('cancel_work_sync');
    if (work.runningOn.task === current()) throw new ModelError(`deadlock: work ${work.name} cancels itself sync`);
    while (work.runningOn !== null) yield wait(work.done);
  }
  return was;
}

/** kthread_run: a kernel thread (pid of its own, no user memory, no fd table) pinned to `cpu`. */
export function kthreadRun(engine: Engine, name: string, cpu: number, body: TaskGen<void>): Task {
  return engine.spawn(name, cpu, body);
}
