/**
 * drivers/vfio/virqfd.c: an eventfd whose signal runs a VFIO handler inside the signaller's wakeup (mask or unmask
 * an IRQ without a round trip to user space). This is how a KVM resamplefd unmasks a vfio-platform level IRQ.
 */
import { errno } from '../abi/errno.js';
import {
  type EventfdCtx,
  eventfdCtxDoRead,
  eventfdCtxFileget,
  eventfdCtxPut,
  eventfdCtxRemoveWaitQueue,
} from '../host/eventfd.js';
import { EPOLLHUP, EPOLLIN, type KFile, type PollTable, vfsPoll, type WaitQueueEntry } from '../host/file.js';
import type { Kernel } from '../host/kernel.js';
import { flushWork, type Workqueue, WorkStruct } from '../host/kthread.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import type { Call } from '../sim/task.js';

/**
 * The handler run in the wakeup: returns true when the (optional) thread work should be scheduled. A named function
 * (the state is in `opaque`/`data`), never a closure.
 */
export type VirqfdHandler = (opaque: unknown, data: unknown) => Call<boolean>;

/**
 * Where a driver keeps its virqfd (the kernel's `struct virqfd **pvirqfd`). A class rather than an object literal: the
 * checker's state key reads a class's objects with one reader.
 */
export class VirqfdSlot {
  virqfd: Virqfd | null = null;
}

/** Shared state of all virqfds: virqfd_lock and vfio_irqfd_cleanup_wq. */
export class VirqfdCore {
  readonly lock: Spinlock;
  readonly cleanupWq: Workqueue;

  constructor(readonly kernel: Kernel) {
    this.lock = new Spinlock(kernel.engine, 'virqfd_lock');
    this.cleanupWq = kernel.createWorkqueue('vfio-irqfd-cleanup');
  }
}

/** struct virqfd: a wait entry on the eventfd (its wake function) and the poll table that queues it. */
export class Virqfd implements WaitQueueEntry<EventfdCtx>, PollTable {
  readonly shutdown: WorkStruct;
  readonly inject: WorkStruct;
  eventfd: EventfdCtx | null = null;

  constructor(
    readonly core: VirqfdCore,
    readonly name: string,
    readonly opaque: unknown,
    readonly handler: VirqfdHandler | null,
    readonly thread: VirqfdHandler | null,
    readonly data: unknown,
    readonly slot: VirqfdSlot,
  ) {
    const engine = core.kernel.engine;
    this.shutdown = new WorkStruct(engine, `${name}.shutdown`, virqfdShutdown, this);
    this.inject = new WorkStruct(engine, `${name}.inject`, virqfdInject, this);
  }

  /** virqfd_wakeup: EPOLLIN consumes the count and runs the handler; EPOLLHUP queues the shutdown. Returns 0. */
  wake(_ctx: EventfdCtx, key: number): Frame<number> {
    return new VirqfdWakeup(this, key);
  }

  /** virqfd_ptable_queue_proc: add the wait entry to the eventfd's head. */
  queueProc(): void {
    this.eventfd!.addWaitEntry(this);
  }
}

const VW_IN = 0; // EPOLLIN: consume the count, run the handler
const VW_HUP = 1; // EPOLLHUP: spin_lock_irqsave(&virqfd_lock, flags)
const VW_HUP_LOCKED = 2; // queue the shutdown unless a disable did

/** drivers/vfio/virqfd.c virqfd_wakeup. */
class VirqfdWakeup extends Frame<number> {
  constructor(
    private readonly v: Virqfd,
    private readonly key: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const v = this.v;
    switch (this.pc) {
      case VW_IN:
        this.pc = VW_HUP;
        if ((this.key & EPOLLIN) !== 0) {
          eventfdCtxDoRead(v.eventfd!);
          return this.call(new VirqfdFire(v));
        }
        return this.hup();
      case VW_HUP:
        return this.hup();
      default: {
        // VW_HUP_LOCKED: the eventfd is closing; queue the release unless a disable already did.
        if (v.slot.virqfd === v) {
          v.slot.virqfd = null;
          v.core.cleanupWq.queueWork(v.shutdown);
        }
        spinUnlockIrqrestore(v.core.lock, sent as boolean);
        return this.return_(0);
      }
    }
  }

  private hup(): Boundary {
    if ((this.key & EPOLLHUP) === 0) return this.return_(0);
    this.pc = VW_HUP_LOCKED;
    return this.call(spinLockIrqsave(this.v.core.lock));
  }
}

/**
 * virqfd_wakeup's (and vfio_virqfd_enable's) `if ((!handler || handler(opaque, data)) && thread)
 * schedule_work(&virqfd->inject)`.
 */
class VirqfdFire extends Frame {
  constructor(private readonly v: Virqfd) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const v = this.v;
    if (this.pc === 0) {
      if (v.handler !== null) {
        this.pc = 1;
        return this.call(v.handler(v.opaque, v.data));
      }
      sent = true;
    }
    if (sent === true && v.thread !== null) v.core.kernel.queueWork(v.inject);
    return this.return_(undefined);
  }
}

markShared(virqfdInject); // code an object of the model points at
/** virqfd_inject, the inject work: run the thread function. */
function virqfdInject(work: WorkStruct): Call<void> {
  return new VirqfdInject(work.container as Virqfd);
}

class VirqfdInject extends Frame {
  constructor(private readonly v: Virqfd) {
    super();
  }

  protected step(): Boundary {
    const v = this.v;
    if (this.pc === 0 && v.thread !== null) {
      this.pc = 1;
      return this.call(v.thread(v.opaque, v.data));
    }
    return this.return_(undefined);
  }
}

markShared(virqfdShutdown); // code an object of the model points at
/** virqfd_shutdown, the shutdown work: detach from the eventfd, wait for a running inject, drop the ctx. */
function virqfdShutdown(work: WorkStruct): Call<void> {
  return new VirqfdShutdown(work.container as Virqfd);
}

const VS_REMOVE = 0; // eventfd_ctx_remove_wait_queue
const VS_FLUSH = 1; // flush_work(&virqfd->inject)
const VS_PUT = 2; // eventfd_ctx_put

class VirqfdShutdown extends Frame {
  constructor(private readonly v: Virqfd) {
    super();
  }

  protected step(): Boundary {
    const v = this.v;
    switch (this.pc) {
      case VS_REMOVE:
        this.pc = VS_FLUSH;
        return this.call(eventfdCtxRemoveWaitQueue(v.eventfd!, v));
      case VS_FLUSH:
        this.pc = VS_PUT;
        return this.call(flushWork(v.inject));
      default:
        eventfdCtxPut(v.eventfd!);
        v.eventfd = null;
        return this.return_(undefined);
    }
  }
}

/**
 * vfio_virqfd_enable: EBADF for a bad fd, EINVAL for a non-eventfd, EBUSY if the slot already holds a virqfd.
 * `file` is the eventfd file the caller looked up (the kernel's fdget(fd)).
 */
export function vfioVirqfdEnable(
  core: VirqfdCore,
  name: string,
  opaque: unknown,
  handler: VirqfdHandler | null,
  thread: VirqfdHandler | null,
  data: unknown,
  slot: VirqfdSlot,
  file: KFile,
): Frame {
  const virqfd = new Virqfd(core, name, opaque, handler, thread, data, slot);
  virqfd.eventfd = eventfdCtxFileget(file);
  return new VfioVirqfdEnable(virqfd, file);
}

const VE_LOCK = 0; // spin_lock_irq(&virqfd_lock)
const VE_LOCKED = 1; // install in the slot (EBUSY if taken), then vfs_poll
const VE_FIRED = 2; // a pending signal ran the handler

class VfioVirqfdEnable extends Frame {
  constructor(
    private readonly virqfd: Virqfd,
    private readonly file: KFile,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const virqfd = this.virqfd;
    const core = virqfd.core;
    switch (this.pc) {
      case VE_LOCK:
        this.pc = VE_LOCKED;
        return this.call(spinLockIrqsave(core.lock));
      case VE_LOCKED: {
        const flags = sent as boolean;
        const slot = virqfd.slot;
        if (slot.virqfd !== null) {
          spinUnlockIrqrestore(core.lock, flags);
          eventfdCtxPut(virqfd.eventfd!);
          throw errno('EBUSY', `${virqfd.name}: a virqfd is already installed for this action`);
        }
        slot.virqfd = virqfd;
        spinUnlockIrqrestore(core.lock, flags);
        // a signal that arrived before registration fires now (the count is kept)
        const events = vfsPoll(this.file, virqfd);
        if ((events & EPOLLIN) === 0) return this.return_(undefined);
        this.pc = VE_FIRED;
        return this.call(new VirqfdFire(virqfd));
      }
      default:
        return this.return_(undefined);
    }
  }
}

const VD_LOCK = 0; // spin_lock_irqsave(&virqfd_lock, flags)
const VD_LOCKED = 1; // queue the shutdown, then flush_workqueue(vfio_irqfd_cleanup_wq)
const VD_FLUSHED = 2;

/** vfio_virqfd_disable: deactivate the slot's virqfd (if any) and wait for every queued shutdown to finish. */
class VfioVirqfdDisable extends Frame {
  constructor(
    private readonly core: VirqfdCore,
    private readonly slot: VirqfdSlot,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const core = this.core;
    switch (this.pc) {
      case VD_LOCK:
        this.pc = VD_LOCKED;
        return this.call(spinLockIrqsave(core.lock));
      case VD_LOCKED: {
        const v = this.slot.virqfd;
        if (v !== null) {
          core.cleanupWq.queueWork(v.shutdown);
          this.slot.virqfd = null;
        }
        spinUnlockIrqrestore(core.lock, sent as boolean);
        this.pc = VD_FLUSHED;
        return this.call(core.cleanupWq.flush());
      }
      default:
        return this.return_(undefined);
    }
  }
}

export function vfioVirqfdDisable(core: VirqfdCore, slot: VirqfdSlot): Frame {
  return new VfioVirqfdDisable(core, slot);
}
