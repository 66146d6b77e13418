/**
 * eventfd (fs/eventfd.c): a 64-bit counter behind a file descriptor, and the kernel-side API irqfd (KVM) and virqfd
 * (VFIO) use: eventfd_signal from any context, wait entries whose wake functions run under ctx->wqh.lock, ctx
 * references.
 *
 * The counter is a __u64 kept exact as two 32-bit halves (`hi`, `lo`), so eventfd_signal is allocation-free and
 * the user path (read/write of a __u64) converts to bigint only there.
 *
 */
import { errno } from '../abi/errno.js';
import { EFD_FLAGS_SET, EFD_SEMAPHORE, EFD_SHARED_FCNTL_FLAGS } from '../abi/eventfd.js';
import { defineCost } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { current, op } from '../sim/task.js';
import { wait } from '../sim/waitqueue.js';
import type { FdTable } from './fdtable.js';
import {
  C_FILE_ALLOC,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  type FileOperations,
  type KFile,
  O_RDWR,
  type PollTable,
  pollWait,
  type WaitQueueEntry,
  WaitQueueHead,
} from './file.js';
import type { Kernel } from './kernel.js';
import { KObject } from './kref.js';

export { EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE } from '../abi/eventfd.js';

export const ULLONG_MAX = 0xffff_ffff_ffff_ffffn;
const U32 = 0x1_0000_0000;

export const C_EVENTFD_SIGNAL = defineCost(
  'eventfd_signal',
  60,
  'eventfd_signal: spin_lock_irqsave(wqh.lock), count++, waitqueue_active test; wake callbacks cost their own steps; estimate',
);
export const C_EVENTFD_RW = defineCost(
  'eventfd_rw',
  120,
  'eventfd_read/eventfd_write body: spin_lock_irq, count update, 8-byte copy to/from user; estimate',
);
export const C_EVENTFD_CREATE = defineCost(
  'eventfd_create',
  300,
  'do_eventfd: kmalloc ctx, init_waitqueue_head, ida id; anon_inode_getfd charged by file_alloc; estimate',
);

/** struct eventfd_ctx. */
export class EventfdCtx extends KObject {
  /** The __u64 count as two exact 32-bit halves. */
  hi = 0;
  lo = 0;
  readonly wqh: WaitQueueHead<EventfdCtx>;
  /** ctx->wqh.lock: held by signal, read, write and remove_wait_queue while they run the wake functions. */
  readonly lock: Spinlock;

  constructor(
    readonly kernel: Kernel,
    initval: number,
    readonly flags: number,
  ) {
    super(kernel.refs, 'eventfd_ctx', `[eventfd]#${(kernel.refs.created.get('eventfd_ctx') ?? 0) + 1}`);
    this.lo = initval >>> 0;
    this.lock = new Spinlock(kernel.engine, 'eventfd_ctx.wqh.lock');
    this.wqh = new WaitQueueHead<EventfdCtx>(kernel.engine, this, `${this.name}.wqh`, this.lock.oid);
  }

  /** Shared-object id (ctx->wqh.lock) for checker independence. */
  get oid(): number {
    return this.wqh.oid;
  }

  get semaphore(): boolean {
    return (this.flags & EFD_SEMAPHORE) !== 0;
  }

  /** The exact count. */
  get count(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  set count(v: bigint) {
    if (v < 0n || v > ULLONG_MAX) throw new ModelError(`eventfd count ${v} does not fit a __u64`);
    this.hi = Number(v >> 32n);
    this.lo = Number(v & 0xffff_ffffn);
  }

  /** The count as a number: exact below 2^53 (any count reached by signals alone). */
  get countNumber(): number {
    return this.hi * U32 + this.lo;
  }

  get isZero(): boolean {
    return this.hi === 0 && this.lo === 0;
  }

  /** add_wait_queue on ctx->wqh (virqfd does it through vfs_poll's poll_table). */
  addWaitEntry(e: WaitQueueEntry<EventfdCtx>): void {
    this.checkAlive('add_wait_queue');
    this.wqh.add(e);
  }

  /** add_wait_queue_priority on ctx->wqh (irqfd_ptable_queue_proc, since 5.11). */
  addPriorityWaitEntry(e: WaitQueueEntry<EventfdCtx>): void {
    this.checkAlive('add_wait_queue_priority');
    this.wqh.addPriority(e);
  }
}

// ---- kernel-side API ----------------------------------------------------------------------------------------------

/**
 * eventfd_signal / eventfd_signal_mask: add 1 (saturating at ULLONG_MAX) and, under ctx->wqh.lock with IRQs
 * saved, run the wake functions with EPOLLIN | mask. Callable from any context, hardirq included. Signalling from
 * inside an eventfd wake function is a kernel WARN (current->in_eventfd; the signal is dropped); the model
 * reports it as a ModelError.
 */
export function eventfdSignal(ctx: EventfdCtx, mask = 0): Frame {
  return new EventfdSignalMask(ctx, mask);
}

const SIG_BEGIN = 0; // eventfd_signal_mask's step
const SIG_CHECK = 1; // the in_eventfd test, then spin_lock_irqsave(&ctx->wqh.lock, flags)
const SIG_LOCKED = 2; // add to the count, wake_up_locked_poll
const SIG_WOKEN = 3; // the wake functions ran: unlock

/** fs/eventfd.c eventfd_signal_mask. */
class EventfdSignalMask extends Frame {
  private flags = false;

  constructor(
    private readonly ctx: EventfdCtx,
    private readonly mask: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const ctx = this.ctx;
    switch (this.pc) {
      case SIG_BEGIN:
        this.pc = SIG_CHECK;
        return this.yield_(op(C_EVENTFD_SIGNAL, ctx.oid));
      case SIG_CHECK:
        ctx.checkAlive('eventfd_signal');
        if (current().inEventfd > 0) {
          throw new ModelError(
            `eventfd_signal(${ctx.name}) called from an eventfd wake callback: WARN_ON_ONCE(current->in_eventfd), signal dropped`,
          );
        }
        this.pc = SIG_LOCKED;
        return this.call(spinLockIrqsave(ctx.lock));
      case SIG_LOCKED:
        this.flags = sent as boolean;
        current().inEventfd++;
        this.pc = SIG_WOKEN;
        if (ctx.lo !== 0xffff_ffff) ctx.lo++;
        else if (ctx.hi !== 0xffff_ffff) {
          ctx.lo = 0;
          ctx.hi++;
        }
        ctx.kernel.trace?.eventfdSignal?.(ctx);
        if (ctx.wqh.active) return this.call(ctx.wqh.wakeUpPoll(EPOLLIN | this.mask));
        return this.unlockAndReturn();
      default: // SIG_WOKEN
        return this.unlockAndReturn();
    }
  }

  private unlockAndReturn(): Boundary {
    this.unlock();
    return this.return_(undefined);
  }

  private unlock(): void {
    current().inEventfd--;
    spinUnlockIrqrestore(this.ctx.lock, this.flags);
  }

  /** A wake function threw with the lock held and in_eventfd raised. */
  protected override unwind(): void {
    if (this.pc === SIG_WOKEN) this.unlock();
  }
}

/**
 * eventfd_ctx_do_read: consume the count (1 in semaphore mode when non-zero, else all of it) and return what was
 * consumed as a number (exact below 2^53). Call with the ctx lock held, i.e. in one step.
 */
export function eventfdCtxDoRead(ctx: EventfdCtx): number {
  ctx.checkAlive('eventfd_ctx_do_read');
  if (ctx.isZero) return 0;
  if (ctx.semaphore) {
    if (ctx.lo !== 0) ctx.lo--;
    else {
      ctx.lo = 0xffff_ffff;
      ctx.hi--;
    }
    return 1;
  }
  const n = ctx.countNumber;
  ctx.hi = 0;
  ctx.lo = 0;
  return n;
}

/** eventfd_ctx_do_read with an exact __u64 result. */
export function eventfdCtxDoReadBig(ctx: EventfdCtx): bigint {
  ctx.checkAlive('eventfd_ctx_do_read');
  const before = ctx.count;
  const cnt = ctx.semaphore && before !== 0n ? 1n : before;
  ctx.count = before - cnt;
  return cnt;
}

/**
 * eventfd_ctx_remove_wait_queue: atomically remove `e` and read/reset the count (do_read semantics); wakes
 * writers with EPOLLOUT if something was read. Returns the count read: 0n is the kernel's -EAGAIN.
 */
export function eventfdCtxRemoveWaitQueue(ctx: EventfdCtx, e: WaitQueueEntry<EventfdCtx>): Frame<bigint> {
  ctx.checkAlive('eventfd_ctx_remove_wait_queue');
  return new EventfdCtxRemoveWaitQueue(ctx, e);
}

const RWQ_LOCK = 0; // spin_lock_irqsave(&ctx->wqh.lock, flags)
const RWQ_LOCKED = 1; // do_read, remove the entry, wake writers
const RWQ_WOKEN = 2; // unlock

class EventfdCtxRemoveWaitQueue extends Frame<bigint> {
  private flags = false;
  private cnt = 0n;

  constructor(
    private readonly ctx: EventfdCtx,
    private readonly e: WaitQueueEntry<EventfdCtx>,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const ctx = this.ctx;
    switch (this.pc) {
      case RWQ_LOCK:
        this.pc = RWQ_LOCKED;
        return this.call(spinLockIrqsave(ctx.lock));
      case RWQ_LOCKED:
        this.flags = sent as boolean;
        this.pc = RWQ_WOKEN;
        this.cnt = eventfdCtxDoReadBig(ctx);
        ctx.wqh.remove(this.e);
        if (this.cnt !== 0n && ctx.wqh.active) return this.call(ctx.wqh.wakeUpPoll(EPOLLOUT));
        spinUnlockIrqrestore(ctx.lock, this.flags);
        return this.return_(this.cnt);
      default: // RWQ_WOKEN
        spinUnlockIrqrestore(ctx.lock, this.flags);
        return this.return_(this.cnt);
    }
  }

  protected override unwind(): void {
    if (this.pc === RWQ_WOKEN) spinUnlockIrqrestore(this.ctx.lock, this.flags);
  }
}

/** eventfd_ctx_fileget: EINVAL if the file is not an eventfd; else a new ctx reference. */
export function eventfdCtxFileget(file: KFile): EventfdCtx {
  file.checkAlive('eventfd_ctx_fileget');
  if (file.fops !== eventfdFops) throw errno('EINVAL', `${file.name} is not an eventfd`);
  return (file.privateData as EventfdCtx).get();
}

/** eventfd_ctx_fdget: EBADF for a bad fd, EINVAL for a non-eventfd; else a new ctx reference. */
export function eventfdCtxFdget(files: FdTable, fd: number): EventfdCtx {
  const file = files.lookup(fd);
  if (file === undefined) throw errno('EBADF', `fd ${fd} is not an open file descriptor`);
  return eventfdCtxFileget(file);
}

/** eventfd_fget: a file reference to an eventfd (EBADF / EINVAL as above). */
export function eventfdFget(files: FdTable, fd: number): KFile {
  const file = files.fget(fd);
  if (file.fops !== eventfdFops) {
    file.put();
    throw errno('EINVAL', `fd ${fd} (${file.name}) is not an eventfd`);
  }
  return file;
}

/** eventfd_ctx_put: drop a ctx reference; the last one frees it. */
export function eventfdCtxPut(ctx: EventfdCtx): void {
  ctx.put();
}

// ---- the file ----------------------------------------------------------------------------------------------------

function ctxOf(file: KFile): EventfdCtx {
  const ctx = file.privateData;
  if (!(ctx instanceof EventfdCtx)) throw new ModelError(`${file.name}: private_data is not an eventfd_ctx`);
  ctx.checkAlive('eventfd file op');
  return ctx;
}

const WL_LOCK = 0;
const WL_LOCKED = 1;
const WL_WOKEN = 2;

/** wake_up_locked_poll under ctx->wqh.lock (the read/write/release paths take it around the wakeup). */
class WakeLocked extends Frame {
  private flags = false;

  constructor(
    private readonly ctx: EventfdCtx,
    private readonly key: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const ctx = this.ctx;
    switch (this.pc) {
      case WL_LOCK:
        this.pc = WL_LOCKED;
        return this.call(spinLockIrqsave(ctx.lock));
      case WL_LOCKED:
        this.flags = sent as boolean;
        this.pc = WL_WOKEN;
        return this.call(ctx.wqh.wakeUpPoll(this.key));
      default: // WL_WOKEN
        spinUnlockIrqrestore(ctx.lock, this.flags);
        return this.return_(undefined);
    }
  }

  protected override unwind(): void {
    if (this.pc === WL_WOKEN) spinUnlockIrqrestore(this.ctx.lock, this.flags);
  }
}

function wakeLocked(ctx: EventfdCtx, key: number): Frame {
  return new WakeLocked(ctx, key);
}

const RW_BEGIN = 0; // the read/write step (spin_lock_irq(&ctx->wqh.lock) and the count)
const RW_CHECK = 1; // the count tested: O_NONBLOCK fails, else sleep
const RW_SLEEP = 2; // sleeping until the count allows it (re-tested after every wakeup)
const RW_WOKEN = 3; // the other side woken: return

/**
 * eventfd_read (consume the count, sleeping while it is 0; wake writers) and eventfd_write (add to it, sleeping
 * while it would pass 0xfffffffffffffffe; wake readers).
 */
class EventfdReadWrite extends Frame<number> {
  /** The count read, or the value written. */
  private ucnt = 0n;

  constructor(
    private readonly file: KFile,
    private readonly ctx: EventfdCtx,
    private readonly addr: number,
    private readonly write: boolean,
  ) {
    super();
  }

  /** The count does not allow the operation yet: 0 for a read, too close to ULLONG_MAX for a write. */
  private blocked(): boolean {
    const ctx = this.ctx;
    return this.write ? !(ULLONG_MAX - ctx.count > this.ucnt) : ctx.isZero;
  }

  protected step(): Boundary {
    const ctx = this.ctx;
    const write = this.write;
    for (;;) {
      switch (this.pc) {
        case RW_BEGIN:
          this.pc = RW_CHECK;
          return this.yield_(op(C_EVENTFD_RW, ctx.oid));
        case RW_CHECK:
          if (write) {
            this.ucnt = ctx.kernel.currentUser().mem.view(this.addr, 8).getBigUint64(0, true);
            if (this.ucnt === ULLONG_MAX) throw errno('EINVAL', 'eventfd write of 0xffffffffffffffff is not allowed');
          }
          if (this.blocked() && this.file.nonblock) {
            throw write
              ? errno(
                  'EAGAIN',
                  `${ctx.name}: count ${ctx.count} + ${this.ucnt} would exceed 0xfffffffffffffffe (O_NONBLOCK)`,
                )
              : errno('EAGAIN', `${ctx.name} count is 0 and the file is O_NONBLOCK`);
          }
          this.pc = RW_SLEEP;
          continue;
        case RW_SLEEP:
          if (this.blocked()) {
            if (ctx.kernel.signalPending()) {
              throw errno('ERESTARTSYS', `${write ? 'write to' : 'read of'} ${ctx.name} interrupted by a signal`);
            }
            return this.yield_(wait(ctx.wqh.tasks));
          }
          if (write) ctx.count += this.ucnt;
          else this.ucnt = eventfdCtxDoReadBig(ctx);
          this.pc = RW_WOKEN;
          if (ctx.wqh.active) return this.call(wakeLocked(ctx, write ? EPOLLIN : EPOLLOUT));
          continue;
        default:
          // As in the kernel, a read consumes the count before put_user; a faulting buffer loses it.
          if (!write) ctx.kernel.currentUser().mem.view(this.addr, 8).setBigUint64(0, this.ucnt, true);
          return this.return_(8);
      }
    }
  }
}

function eventfdReadWrite(file: KFile, len: number, addr: number, write: boolean): Frame<number> {
  const ctx = ctxOf(file);
  if (len < 8) {
    throw errno(
      'EINVAL',
      `eventfd ${write ? 'write' : 'read'} of ${len} bytes: the buffer must hold a __u64 (8 bytes)`,
    );
  }
  return new EventfdReadWrite(file, ctx, addr, write);
}

function eventfdRead(file: KFile, addr: number, len: number): Frame<number> {
  return eventfdReadWrite(file, len, addr, false);
}

function eventfdWrite(file: KFile, addr: number, len: number): Frame<number> {
  return eventfdReadWrite(file, len, addr, true);
}

/** eventfd_poll. */
function eventfdPoll(file: KFile, pt: PollTable | null): number {
  const ctx = ctxOf(file);
  pollWait(file, ctx.wqh, pt);
  let events = 0;
  if (!ctx.isZero) events |= EPOLLIN;
  const full = ctx.hi === 0xffff_ffff && ctx.lo === 0xffff_ffff;
  if (full) events |= EPOLLERR;
  if (ctx.hi !== 0xffff_ffff || ctx.lo < 0xffff_fffe) events |= EPOLLOUT;
  return events;
}

/** eventfd_release: wake_up_poll(EPOLLHUP), then drop the file's ctx reference. */
class EventfdRelease extends Frame {
  constructor(private readonly ctx: EventfdCtx) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(wakeLocked(this.ctx, EPOLLHUP));
    }
    eventfdCtxPut(this.ctx);
    return this.return_(undefined);
  }
}

function eventfdRelease(file: KFile): Frame {
  return new EventfdRelease(ctxOf(file));
}

export const eventfdFops: FileOperations = markShared({
  name: 'eventfd_fops',
  read: eventfdRead,
  write: eventfdWrite,
  poll: eventfdPoll,
  release: eventfdRelease,
});

/**
 * do_eventfd (the eventfd2 syscall body): EINVAL for flags outside EFD_SEMAPHORE|EFD_NONBLOCK|EFD_CLOEXEC,
 * EMFILE when the fd table is full; returns the new fd. `initval` is an unsigned int (truncated to 32 bits as C
 * would).
 */
export function doEventfd(kernel: Kernel, files: FdTable, initval: number, flags: number): Frame<number> {
  return new DoEventfd(kernel, files, initval, flags);
}

const DE_CHECK = 0; // the flags
const DE_ALLOC = 1; // kmalloc the ctx
const DE_GETFD = 2; // anon_inode_getfd

class DoEventfd extends Frame<number> {
  constructor(
    private readonly kernel: Kernel,
    private readonly files: FdTable,
    private readonly initval: number,
    private readonly flags: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const { files, flags } = this;
    switch (this.pc) {
      case DE_CHECK:
        if ((flags & ~EFD_FLAGS_SET) !== 0) {
          throw errno(
            'EINVAL',
            `eventfd flags 0x${(flags >>> 0).toString(16)} outside EFD_SEMAPHORE|EFD_NONBLOCK|EFD_CLOEXEC`,
          );
        }
        this.pc = DE_ALLOC;
        return this.yield_(op(C_EVENTFD_CREATE, files.oid));
      case DE_ALLOC:
        this.pc = DE_GETFD;
        return this.yield_(op(C_FILE_ALLOC, files.oid));
      default: {
        const ctx = new EventfdCtx(this.kernel, this.initval, flags);
        try {
          return this.return_(
            this.kernel.anonInodeGetfd('[eventfd]', eventfdFops, ctx, O_RDWR | (flags & EFD_SHARED_FCNTL_FLAGS), files),
          );
        } catch (e) {
          ctx.put();
          throw e;
        }
      }
    }
  }
}

export { EPOLLHUP, EPOLLIN, EPOLLOUT };
