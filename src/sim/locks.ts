/**
 * Spinlocks (with the irqsave variant) and mutexes for model code, validated by the engine's lockdep.
 * Acquiring is a step of its own (a yield point, as in the kernel a contended lock is where another CPU can get in);
 * releasing happens inside the step that calls unlock. A contended spinlock keeps its CPU (the task spins and can
 * still take interrupts if they are enabled); a contended mutex sleeps and lets the CPU run another thread.
 */
import { defineCost } from './costs.js';
import type { Engine } from './engine.js';
import { ModelError } from './errors.js';
import { touch } from './footprint.js';
import { type Boundary, Frame } from './frame.js';
import { current, type HeldLock, type IrqMaskContext, OP_SPIN, type Op, op, TASK_SPINNING, type Task } from './task.js';
import { WaitQueue, wait } from './waitqueue.js';

export const C_SPIN_LOCK = defineCost('spin_lock', 20, 'uncontended ldaxr/stxr acquire + barrier; estimate');
export const C_MUTEX_LOCK = defineCost('mutex_lock', 40, 'uncontended mutex fast path; estimate');

export class Spinlock implements HeldLock {
  readonly spin = true;
  readonly cls: number;
  readonly oid: number;
  owner: Task | null = null;
  // spinners[0..nSpinners): kept allocated across releases and null until the first spinner, as in WaitQueue
  private spinners: Task[] | null = null;
  private nSpinners = 0;

  constructor(
    readonly engine: Engine,
    /** Lock class name, shared by all instances of the same lock (e.g. 'vfio_platform_irq.lock'). */
    readonly name: string,
  ) {
    this.cls = engine.lockdep.classId(name);
    this.oid = engine.newOid(name);
  }

  /** Called by the owner inside its step. */
  unlock(): void {
    const t = current();
    if (this.owner !== t) throw new ModelError(`${t} unlocks ${this.name} held by ${this.owner ?? 'nobody'}`);
    this.owner = null;
    touch(this.oid);
    dropHeld(t, this);
    const n = this.nSpinners;
    this.nSpinners = 0;
    for (let i = 0; i < n; i++) this.engine.wake(this.spinners![i]!);
  }

  /** Internal: the current task found the lock held and spins. */
  spinOn(t: Task): Op {
    t.state = TASK_SPINNING;
    t.costId = C_SPIN_LOCK;
    t.nTouch = 1;
    t.touch[0] = this.oid;
    this.spinners ??= [];
    this.spinners[this.nSpinners++] = t;
    return OP_SPIN;
  }
}

/**
 * struct mutex embeds its wait_list: the mutex is the queue of the tasks sleeping on it (one object, one name and one
 * checker object id for both, as the lock's state guards the queue).
 */
export class Mutex extends WaitQueue implements HeldLock {
  readonly spin = false;
  readonly cls: number;
  owner: Task | null = null;

  constructor(engine: Engine, name: string) {
    super(engine, name);
    this.cls = engine.lockdep.classId(name);
  }

  unlock(): void {
    const t = current();
    if (this.owner !== t) throw new ModelError(`${t} unlocks ${this.name} held by ${this.owner ?? 'nobody'}`);
    this.owner = null;
    touch(this.oid);
    dropHeld(t, this);
    this.wakeUpOne();
  }
}

function inHardirq(t: Task): boolean {
  return t.kind === 'hardirq' || t.kind === 'guest-irq';
}

function maskCtx(t: Task): IrqMaskContext {
  if (t.maskCtx === null) throw new ModelError(`${t} has no interrupt mask context`);
  return t.maskCtx;
}

function validate(l: Spinlock | Mutex, t: Task): void {
  const ok = l.engine.lockdep.acquire(l.cls, t.held, t.toString(), inHardirq(t), !maskCtx(t).irqMasked);
  if (!ok && l.owner === t) {
    throw new ModelError(`deadlock: ${t} acquires ${l.name} which it already holds (lockdep AA)`);
  }
}

/** Remove `l` from the held list; usually it is the last one taken, and pop() allocates nothing (splice does). */
function dropHeld(t: Task, l: HeldLock): void {
  const h = t.held;
  const last = h.length - 1;
  if (last >= 0 && h[last] === l) {
    h.pop();
    return;
  }
  const i = h.lastIndexOf(l);
  if (i < 0) throw new ModelError(`${t} releases ${l.name} which lockdep never saw it take`);
  for (let j = i; j < last; j++) h[j] = h[j + 1]!;
  h.pop();
}

/** spin_lock(): the acquisition step, then spinning while another task holds the lock. */
class SpinLockFrame extends Frame<boolean> {
  constructor(
    private readonly l: Spinlock,
    /** spin_lock_irqsave: mask interrupts first and return the previous mask state. */
    private readonly irqsave: boolean,
  ) {
    super();
  }

  private flags = false;

  protected step(): Boundary {
    const l = this.l;
    switch (this.pc) {
      case 0:
        if (this.irqsave) {
          const ctx = maskCtx(current());
          this.flags = ctx.irqMasked;
          ctx.irqMasked = true;
        }
        this.pc = 1;
        return this.yield_(spinLockStep(l));
      case 1:
        if (spinLockTake(l)) return this.return_(this.flags);
        this.pc = 2;
        return this.yield_(l.spinOn(current()));
      default:
        // spinning: the holder released it (a wakeup), or this is a re-try
        if (!spinLockRetry(l)) return this.yield_(l.spinOn(current()));
        return this.return_(this.flags);
    }
  }
}

export function spinLock(l: Spinlock): Frame<boolean> {
  return new SpinLockFrame(l, false);
}

/*
 * spin_lock() in parts, for frames that inline it instead of calling a SpinLockFrame per acquisition: yield
 * spinLockStep(l); then if spinLockTake(l) fails, yield l.spinOn(current()) until spinLockRetry(l) succeeds. That is
 * exactly spinLock(l).
 */

/** The acquisition step: yield its op. */
export function spinLockStep(l: Spinlock): Op {
  return op(C_SPIN_LOCK, l.oid);
}

/** After the acquisition step: lockdep, then take the lock if it is free. False: the caller must spin. */
export function spinLockTake(l: Spinlock): boolean {
  const t = current();
  validate(l, t);
  if (l.owner !== null) return false;
  l.owner = t;
  t.held.push(l);
  return true;
}

/** After a spin step: take the lock if its holder released it. False: spin again (yield l.spinOn(current())). */
export function spinLockRetry(l: Spinlock): boolean {
  if (l.owner !== null) return false;
  const t = current();
  l.owner = t;
  t.held.push(l);
  return true;
}

/** spin_lock_irqsave(): returns the previous mask state, to hand back to spinUnlockIrqrestore. */
export function spinLockIrqsave(l: Spinlock): Frame<boolean> {
  return new SpinLockFrame(l, true);
}

export function spinUnlockIrqrestore(l: Spinlock, flags: boolean): void {
  l.unlock();
  maskCtx(current()).irqMasked = flags;
}

/** mutex_lock(): the acquisition step, then sleeping on the mutex's wait queue while another task holds it. */
class MutexLockFrame extends Frame {
  constructor(private readonly m: Mutex) {
    super();
  }

  protected step(): Boundary {
    const m = this.m;
    const t = current();
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_MUTEX_LOCK, m.oid));
    }
    if (this.pc === 1) {
      if (inHardirq(t))
        throw new ModelError(`BUG: sleeping function mutex_lock(${m.name}) called from hardirq context`);
      validate(m, t);
      this.pc = 2;
    }
    if (m.owner !== null) return this.yield_(wait(m));
    m.owner = t;
    t.held.push(m);
    return this.return_(undefined);
  }
}

export function mutexLock(m: Mutex): Frame {
  return new MutexLockFrame(m);
}

/** local_irq_save()/local_irq_restore() on whatever context the current task runs in. */
export function localIrqSave(): boolean {
  const ctx = maskCtx(current());
  const flags = ctx.irqMasked;
  ctx.irqMasked = true;
  return flags;
}

export function localIrqRestore(flags: boolean): void {
  maskCtx(current()).irqMasked = flags;
}
