/**
 * Wait queues and completions. A task sleeps with `while (!cond) yield wait(wq)`: the condition test and the
 * enqueue happen in one atomic step, so a wakeup can never be lost between them (the guarantee the kernel's
 * prepare_to_wait/schedule pattern gives). After a wakeup the task's next step is declared as touching the
 * queue's object, which is what guards the condition it re-tests.
 */

import { C_NONE } from './costs.js';
import type { Engine } from './engine.js';
import { ModelError } from './errors.js';
import { touch } from './footprint.js';
import { type Boundary, Frame } from './frame.js';
import { current, OP_BLOCK, type Op, TASK_BLOCKED, type Task } from './task.js';

export class WaitQueue {
  // waiters[0..n) sleep; the array keeps its backing store across wakeups (resetting length would free it and the
  // next sleep would allocate it again), so stale entries past n are harmless. Null until the first sleeper: most
  // queues never have one, and an empty array is one more object per queue for the checker's state key and copies.
  private waiters: Task[] | null = null;
  private n = 0;

  constructor(
    readonly engine: Engine,
    readonly name: string,
    readonly oid = engine.newOid(name),
  ) {}

  get length(): number {
    touch(this.oid);
    return this.n;
  }

  add(t: Task): void {
    if (t.kind !== 'thread') throw new ModelError(`${t} (${t.kind}) cannot sleep on ${this.name}`);
    touch(this.oid);
    t.state = TASK_BLOCKED;
    t.costId = C_NONE;
    t.nTouch = 1;
    t.touch[0] = this.oid;
    this.waiters ??= [];
    this.waiters[this.n++] = t;
  }

  /** Wake every sleeper (they re-test their conditions). Returns how many were woken. */
  wakeUpAll(): number {
    touch(this.oid);
    const n = this.n;
    this.n = 0;
    for (let i = 0; i < n; i++) this.engine.wake(this.waiters![i]!);
    return n;
  }

  /** Wake the oldest sleeper only. */
  wakeUpOne(): boolean {
    touch(this.oid);
    if (this.n === 0) return false;
    const w = this.waiters!;
    const t = w[0]!;
    const n = --this.n;
    for (let i = 0; i < n; i++) w[i] = w[i + 1]!;
    this.engine.wake(t);
    return true;
  }

  has(t: Task): boolean {
    touch(this.oid);
    for (let i = 0; i < this.n; i++) if (this.waiters![i] === t) return true;
    return false;
  }
}

/** Sleep on a wait queue: `while (!cond) yield wait(wq);` */
export function wait(wq: WaitQueue): Op {
  wq.add(current());
  return OP_BLOCK;
}

/** struct completion: a count of completions and the queue of those waiting for one. */
export class Completion {
  done = 0;
  readonly wq: WaitQueue;

  constructor(engine: Engine, name: string) {
    this.wq = new WaitQueue(engine, name);
  }

  complete(): void {
    this.done++;
    this.wq.wakeUpAll();
  }

  completeAll(): void {
    this.done = Number.MAX_SAFE_INTEGER;
    this.wq.wakeUpAll();
  }

  reinit(): void {
    touch(this.wq.oid);
    this.done = 0;
  }
}

const PC_CHECK = 0;
const PC_SLEEPING = 1;

/** kernel/sched/completion.c wait_for_completion: sleep until `done` is non-zero, then consume one completion. */
class WaitForCompletion extends Frame {
  constructor(private readonly c: Completion) {
    super();
  }

  protected step(): Boundary {
    const c = this.c;
    if (this.pc === PC_CHECK) {
      touch(c.wq.oid);
      this.pc = PC_SLEEPING;
    }
    // while (!x->done) schedule(); — re-tested after every wakeup
    if (c.done === 0) return this.yield_(wait(c.wq));
    if (c.done !== Number.MAX_SAFE_INTEGER) c.done--;
    return this.return_(undefined);
  }
}

export function waitForCompletion(c: Completion): Frame {
  return new WaitForCompletion(c);
}
