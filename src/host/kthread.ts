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
import { type Boundary, Frame } from '../sim/frame.js';
import { type Call, current, currentOrNull, op, type Task, type TaskBody } from '../sim/task.js';
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

/**
 * A work function (work_func_t): a named function that finds its object from the item (`work.container`, the
 * kernel's container_of), so that the item holds no closure.
 */
export type WorkFn = (work: WorkStruct) => Call<void>;

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
    /** The object embedding this item, for `fn` (container_of). */
    readonly container: unknown = null,
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
    this.task = e.spawn(`kworker/${cpu}:${wq.name}`, cpu, new WorkerThread(this));
  }
}

const WT_SLEEP = 0; // worker_thread: sleep until the worklist has an item
const WT_PROCESS = 1; // process_one_work: dequeue and run it
const WT_DONE = 2; // the work function returned

/** kernel/workqueue.c worker_thread + process_one_work, for one kworker: a frame that loops forever. */
class WorkerThread extends Frame<never> {
  /** The item whose function runs (WT_DONE). */
  private work: WorkStruct | null = null;

  constructor(private readonly worker: Worker) {
    super();
  }

  protected step(): Boundary {
    const worker = this.worker;
    for (;;) {
      switch (this.pc) {
        case WT_SLEEP:
          if (worker.queue.length === 0) return this.yield_(wait(worker.more));
          this.pc = WT_PROCESS;
          return this.yield_(op(C_PROCESS_WORK, worker.wq.oid));
        case WT_PROCESS: {
          const w = worker.queue.shift()!;
          w.pending = false;
          w.queuedOn = null;
          w.runningOn = worker;
          w.runningSeq = w.queuedSeq;
          w.wqSeqRunning = w.wqSeqPending;
          w.runs++;
          this.work = w;
          this.pc = WT_DONE;
          return this.call(w.fn(w));
        }
        default: {
          // WT_DONE
          const w = this.work!;
          this.work = null;
          w.runningOn = null;
          worker.wq.retire(w.wqSeqRunning);
          w.done.wakeUpAll();
          this.pc = WT_SLEEP;
        }
      }
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
  readonly flushers: WaitQueue;

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
  flush(): Frame {
    return new FlushWorkqueue(this);
  }

  /** flush_workqueue's first step: check the caller may wait, and return the last instance it waits for. */
  beginFlush(): number {
    checkMaySleep('flush_workqueue');
    const t = current();
    for (const w of this.workers) {
      if (w !== undefined && w.task === t)
        throw new ModelError(`deadlock: ${t} flushes its own workqueue ${this.name}`);
    }
    return this.seq;
  }

  /** Whether an instance queued at or before `target` is still in flight (a flusher sleeps on `flushers`). */
  flushing(target: number): boolean {
    return this.inflight.length > 0 && this.inflight[0]! <= target;
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

const PC_BEGIN = 0;
const PC_WAITING = 1;

/** flush_workqueue (kernel/workqueue.c __flush_workqueue): sleep until `target` and the instances before it retire. */
class FlushWorkqueue extends Frame {
  private target = 0;

  constructor(private readonly wq: Workqueue) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === PC_BEGIN) {
      this.target = this.wq.beginFlush();
      this.pc = PC_WAITING;
    }
    if (this.wq.flushing(this.target)) return this.yield_(wait(this.wq.flushers));
    return this.return_(undefined);
  }
}

/** flush_work (kernel/workqueue.c __flush_work): wait for the instance queued or running at the time of the call. */
class FlushWork extends Frame<boolean> {
  private target = 0;

  constructor(private readonly work: WorkStruct) {
    super();
  }

  protected step(): Boundary {
    const work = this.work;
    if (this.pc === PC_BEGIN) {
      if (!work.busy) return this.return_(false);
      checkMaySleep('flush_work');
      const t = current();
      if (work.runningOn !== null && work.runningOn.task === t) {
        throw new ModelError(`deadlock: work ${work.name} flushes itself`);
      }
      this.target = work.queuedSeq;
      this.pc = PC_WAITING;
    }
    const target = this.target;
    if ((work.pending && work.queuedSeq <= target) || (work.runningOn !== null && work.runningSeq <= target)) {
      return this.yield_(wait(work.done));
    }
    return this.return_(true);
  }
}

/** flush_work: wait for the instance queued or running at the time of the call. Returns whether it waited. */
export function flushWork(work: WorkStruct): Frame<boolean> {
  return new FlushWork(work);
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

/** kernel/workqueue.c cancel_work_sync: drop a pending instance, then sleep while a running one finishes. */
class CancelWorkSync extends Frame<boolean> {
  private was = false;

  constructor(private readonly work: WorkStruct) {
    super();
  }

  protected step(): Boundary {
    const work = this.work;
    if (this.pc === PC_BEGIN) {
      this.was = cancelWork(work);
      if (work.runningOn === null) return this.return_(this.was);
      checkMaySleep('cancel_work_sync');
      if (work.runningOn.task === current()) throw new ModelError(`deadlock: work ${work.name} cancels itself sync`);
      this.pc = PC_WAITING;
    }
    if (work.runningOn !== null) return this.yield_(wait(work.done));
    return this.return_(this.was);
  }
}

/** cancel_work_sync: drop a pending instance and wait for a running one. Returns whether one was pending. */
export function cancelWorkSync(work: WorkStruct): Frame<boolean> {
  return new CancelWorkSync(work);
}

/** kthread_run: a kernel thread (pid of its own, no user memory, no fd table) pinned to `cpu`. */
export function kthreadRun(engine: Engine, name: string, cpu: number, body: TaskBody): Task {
  return engine.spawn(name, cpu, body);
}
