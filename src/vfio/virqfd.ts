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
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import type { TaskGen } from '../sim/task.js';

/** The handler run in the wakeup: returns true when the (optional) thread work should be scheduled. */
export type VirqfdHandler = (opaque: unknown, data: unknown) => TaskGen<boolean>;

/** Where a driver keeps its virqfd (the kernel's `struct virqfd **pvirqfd`). */
export interface VirqfdSlot {
  virqfd: Virqfd | null;
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

export class Virqfd implements WaitQueueEntry<EventfdCtx> {
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
    this.shutdown = new WorkStruct(engine, `${name}.shutdown`, () => this.doShutdown());
    this.inject = new WorkStruct(engine, `${name}.inject`, () => this.doInject());
  }

  /** virqfd_wakeup: EPOLLIN consumes the count and runs the handler; EPOLLHUP queues the shutdown. Returns 0. */
  *wake(_ctx: EventfdCtx, key: number): TaskGen<number> {
    if ((key & EPOLLIN) !== 0) {
      eventfdCtxDoRead(this.eventfd!);
      yield* this.fire();
    }
    if ((key & EPOLLHUP) !== 0) {
      const flags = yield* spinLockIrqsave(this.core.lock);
      // The eventfd is closing; queue the release unless a disable already did.
      if (this.slot.virqfd === this) {
        this.slot.virqfd = null;
        this.core.cleanupWq.queueWork(this.shutdown);
      }
      spinUnlockIrqrestore(this.core.lock, flags);
    }
    return 0;
  }

  private *fire(): TaskGen<void> {
    const schedule = this.handler === null || (yield* this.handler(this.opaque, this.data));
    if (schedule && this.thread !== null) this.core.kernel.queueWork(this.inject);
  }

  private *doInject(): TaskGen<void> {
    if (this.thread !== null) yield* this.thread(this.opaque, this.data);
  }

  /** virqfd_shutdown: detach from the eventfd, wait for a running inject, drop the ctx. */
  private *doShutdown(): TaskGen<void> {
    const ctx = this.eventfd!;
    yield* eventfdCtxRemoveWaitQueue(ctx, this);
    yield* flushWork(this.inject);
    eventfdCtxPut(ctx);
    this.eventfd = null;
  }

  /** vfio_virqfd_enable's poll: a signal that arrived before registration fires now (the count is kept). */
  *checkPending(file: KFile): TaskGen<void> {
    const pt: PollTable = { queueProc: () => this.eventfd!.addWaitEntry(this) };
    const events = vfsPoll(file, pt);
    if ((events & EPOLLIN) !== 0) yield* this.fire();
  }
}

/**
 * vfio_virqfd_enable: EBADF for a bad fd, EINVAL for a non-eventfd, EBUSY if the slot already holds a virqfd.
 * `file` is the eventfd file the caller looked up (the kernel's fdget(fd)).
 */
export function* vfioVirqfdEnable(
  core: VirqfdCore,
  name: string,
  opaque: unknown,
  handler: VirqfdHandler | null,
  thread: VirqfdHandler | null,
  data: unknown,
  slot: VirqfdSlot,
  file: KFile,
): TaskGen<void> {
  const virqfd = new Virqfd(core, name, opaque, handler, thread, data, slot);
  virqfd.eventfd = eventfdCtxFileget(file);
  const flags = yield* spinLockIrqsave(core.lock);
  if (slot.virqfd !== null) {
    spinUnlockIrqrestore(core.lock, flags);
    eventfdCtxPut(virqfd.eventfd);
    throw errno('EBUSY', `${name}: a virqfd is already installed for this action`);
  }
  slot.virqfd = virqfd;
  spinUnlockIrqrestore(core.lock, flags);
  yield* virqfd.checkPending(file);
}

/** vfio_virqfd_disable: deactivate the slot's virqfd (if any) and wait for every queued shutdown to finish. */
export function* vfioVirqfdDisable(core: VirqfdCore, slot: VirqfdSlot): TaskGen<void> {
  const flags = yield* spinLockIrqsave(core.lock);
  const v = slot.virqfd;
  if (v !== null) {
    core.cleanupWq.queueWork(v.shutdown);
    slot.virqfd = null;
  }
  spinUnlockIrqrestore(core.lock, flags);
  yield* core.cleanupWq.flush();
}
