/**
 * irqfd and resamplefd, after virt/kvm/eventfd.c (kvm_irqfd, kvm_irqfd_assign/deassign, irqfd_wakeup, irqfd_inject,
 * irqfd_shutdown, irqfd_resampler_ack/shutdown, kvm_irqfd_release) and arch/arm64/kvm/vgic/vgic-irqfd.c.
 *
 * - Injection from the wakeup: irqfd_wakeup runs as a wake function of the eventfd, in the signaller's context (the
 *   VFIO hardirq handler, or a write(2)), under ctx->wqh.lock. The irqfd is an exclusive priority waiter
 *   (add_wait_queue_priority, 5.11): it runs before any other waiter, consumes the count and ends the walk. arm64
 *   kvm_arch_set_irq_inatomic injects an SPI right there ("Injecting SPIs is always possible in atomic context as
 *   long as the damn vgic is initialized") with level 1 — for a plain and for a resample irqfd alike; only when the vGIC is not initialised (no routing yet) does it
 *   return -EWOULDBLOCK and the inject work runs irqfd_inject on the system workqueue: a plain irqfd pulses the line
 *   (kvm_set_irq 1 then 0), a resample irqfd holds it at 1. An eventfd already signalled at KVM_IRQFD time schedules
 *   the inject work too ("trigger it as if we didn't miss it").
 * - GSI = SPI number = INTID − 32 (the default routing kvm_vgic_setup_default_irq_routing installs for gsi < nr_spis).
 *   A GSI past nr_spis is accepted and never injects.
 * - Resample: one resampler per GSI, shared by its irqfds, registered as the ack notifier of that GSI. On ack (the
 *   guest EOI'd the level SPI: EOI maintenance → fold → kvm_notify_acked_irq, run by the vCPU thread inside the
 *   fold, before that LR is folded and before the prune: Vgic.kvmVgicSyncHwstate) it lowers the line (kvm_set_irq 0)
 *   and signals every resamplefd.
 * - EPOLLHUP (the eventfd's last fd closed) deactivates the irqfd; deassign deactivates the matching ones and flushes
 *   the cleanup workqueue, so no injection happens after it returns; closing the VM fd releases all of them.
 */
import { errno } from '../abi/errno.js';
import { KVM_IRQFD_FLAG_DEASSIGN, KVM_IRQFD_FLAG_RESAMPLE, kvmIrqfd as kvmIrqfdStruct } from '../abi/kvm.js';
import {
  type EventfdCtx,
  eventfdCtxDoRead,
  eventfdCtxFdget,
  eventfdCtxFileget,
  eventfdCtxPut,
  eventfdCtxRemoveWaitQueue,
  eventfdSignal,
} from '../host/eventfd.js';
import { EPOLLHUP, EPOLLIN, type PollTable, vfsPoll, type WaitQueueEntry } from '../host/file.js';
import { KObject } from '../host/kref.js';
import { flushWork, WorkStruct } from '../host/kthread.js';
import { ModelError } from '../sim/errors.js';
import { Mutex, mutexLock, Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { op, type TaskGen } from '../sim/task.js';
import { C_IRQFD_ASSIGN, C_IRQFD_SHUTDOWN, C_IRQFD_WAKEUP } from './costs.js';
import { KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, KVM_USERSPACE_IRQ_SOURCE_ID } from './kvm.js';
import { C_VGIC_INJECT } from './vgic/vgic.js';
import type { KvmVm } from './vm.js';

/** struct kvm_kernel_irqfd_resampler. */
export class IrqfdResampler {
  /** The irqfds sharing this GSI (resampler->list). */
  readonly irqfds: Irqfd[] = [];
  /** Acks handled (statistic). */
  acks = 0;

  constructor(
    readonly vm: KvmVm,
    readonly gsi: number,
  ) {}
}

/** struct kvm_kernel_irqfd. */
export class Irqfd extends KObject implements WaitQueueEntry<EventfdCtx> {
  resamplefd: EventfdCtx | null = null;
  resampler: IrqfdResampler | null = null;
  readonly inject: WorkStruct;
  readonly shutdown: WorkStruct;
  /** On kvm->irqfds.items (irqfd_is_active). */
  active = false;
  /** Injections done from the wakeup and from the work (statistics). */
  injections = 0;

  constructor(
    readonly vm: KvmVm,
    readonly gsi: number,
    readonly eventfd: EventfdCtx,
  ) {
    super(vm.kernel.refs, 'kvm_irqfd', `irqfd gsi ${gsi}`);
    const e = vm.kernel.engine;
    this.inject = new WorkStruct(e, `irqfd${gsi}.inject`, () => this.irqfdInject());
    this.shutdown = new WorkStruct(e, `irqfd${gsi}.shutdown`, () => this.irqfdShutdown());
  }

  /**
   * irqfd_wakeup: returns 1 after consuming an EPOLLIN event, which, the irqfd being an exclusive priority waiter,
   * ends the eventfd's wake-up walk (5.11 "kvm/eventfd: Use priority waitqueue to catch events before userspace").
   */
  *wake(_ctx: EventfdCtx, key: number): TaskGen<number> {
    const vm = this.vm;
    let ret = 0;
    if ((key & EPOLLIN) !== 0) {
      ret = 1;
      yield op(C_IRQFD_WAKEUP, vm.oid);
      eventfdCtxDoRead(this.eventfd);
      // kvm_arch_set_irq_inatomic: inject now if routed, else -EWOULDBLOCK → irqfd_inject work
      if (vm.irqRouted(this.gsi)) {
        yield op(C_VGIC_INJECT, vm.oid);
        vm.kvmSetIrq(this.gsi, 1, KVM_USERSPACE_IRQ_SOURCE_ID);
        vm.trace?.irqfdInject?.(vm, this.gsi, 1);
        this.injections++;
      } else {
        vm.kernel.scheduleWork(this.inject);
      }
    }
    if ((key & EPOLLHUP) !== 0) {
      // The eventfd is closing: detach from KVM unless a deassign already deactivated us
      const irqfds = vm.irqfds;
      const flags = yield* spinLockIrqsave(irqfds.lock);
      if (this.active) irqfds.deactivate(this);
      spinUnlockIrqrestore(irqfds.lock, flags);
    }
    return ret;
  }

  /** irqfd_inject (work). */
  private *irqfdInject(): TaskGen<void> {
    const vm = this.vm;
    yield op(C_VGIC_INJECT, vm.oid);
    if (this.resampler === null) {
      vm.kvmSetIrq(this.gsi, 1, KVM_USERSPACE_IRQ_SOURCE_ID);
      vm.kvmSetIrq(this.gsi, 0, KVM_USERSPACE_IRQ_SOURCE_ID);
    } else {
      vm.kvmSetIrq(this.gsi, 1, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
    }
    if (vm.irqRouted(this.gsi)) {
      vm.trace?.irqfdInject?.(vm, this.gsi, this.resampler === null ? -1 : 1);
      this.injections++;
    }
  }

  /** irqfd_shutdown (work on irqfd_cleanup_wq). */
  private *irqfdShutdown(): TaskGen<void> {
    yield op(C_IRQFD_SHUTDOWN, this.vm.oid);
    // unhook from the eventfd so that no new event can be scheduled, then wait for an inject in flight
    yield* eventfdCtxRemoveWaitQueue(this.eventfd, this);
    yield* flushWork(this.inject);
    if (this.resampler !== null) {
      yield* this.vm.irqfds.resamplerShutdown(this);
      eventfdCtxPut(this.resamplefd!);
      this.resamplefd = null;
    }
    eventfdCtxPut(this.eventfd);
    this.markFreed();
  }
}

/** kvm->irqfds: the VM's irqfds, their lock, and the resamplers. */
export class KvmIrqfds {
  readonly items: Irqfd[] = [];
  /** kvm->irqfds.lock. */
  readonly lock: Spinlock;
  /** kvm->irqfds.resampler_lock. */
  readonly resamplerLock: Mutex;
  readonly resamplers: IrqfdResampler[] = [];

  constructor(readonly vm: KvmVm) {
    this.lock = new Spinlock(vm.kernel.engine, 'kvm->irqfds.lock');
    this.resamplerLock = new Mutex(vm.kernel.engine, 'kvm->irqfds.resampler_lock');
  }

  /** The resampler of a GSI, if any. */
  resamplerOf(gsi: number): IrqfdResampler | undefined {
    return this.resamplers.find((r) => r.gsi === gsi);
  }

  /** irqfd_deactivate: off the list, shutdown queued. Call with `lock` held. */
  deactivate(irqfd: Irqfd): void {
    const i = this.items.indexOf(irqfd);
    if (i < 0) throw new ModelError('irqfd_deactivate of an irqfd not on the list');
    this.items.splice(i, 1);
    irqfd.active = false;
    this.vm.kvm.irqfdCleanupWq.queueWork(irqfd.shutdown);
  }

  /** irqfd_resampler_shutdown: leave the resampler; the last one out lowers the line and frees it. */
  *resamplerShutdown(irqfd: Irqfd): TaskGen<void> {
    const r = irqfd.resampler!;
    yield* mutexLock(this.resamplerLock);
    try {
      const i = r.irqfds.indexOf(irqfd);
      if (i >= 0) r.irqfds.splice(i, 1);
      if (r.irqfds.length === 0) {
        const j = this.resamplers.indexOf(r);
        if (j >= 0) this.resamplers.splice(j, 1); // kvm_unregister_irq_ack_notifier
        yield op(C_VGIC_INJECT, this.vm.oid);
        this.vm.kvmSetIrq(r.gsi, 0, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
      }
    } finally {
      this.resamplerLock.unlock();
    }
    irqfd.resampler = null;
  }

  /** kvm_notify_acked_irq(kvm, 0, gsi) → irqfd_resampler_ack of the GSI's resampler, if any. */
  *notifyAcked(gsi: number): TaskGen<void> {
    const r = this.resamplerOf(gsi);
    if (r === undefined) return;
    r.acks++;
    yield op(C_VGIC_INJECT, this.vm.oid);
    this.vm.kvmSetIrq(gsi, 0, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
    this.vm.trace?.irqfdResample?.(this.vm, gsi);
    // irqfd_resampler_notify: every resamplefd of the GSI
    for (let i = 0; i < r.irqfds.length; i++) {
      const fd = r.irqfds[i]!.resamplefd;
      if (fd !== null) yield* eventfdSignal(fd);
    }
  }

  /** kvm_irqfd_assign. */
  *assign(fd: number, gsi: number, resample: boolean, resamplefdNum: number): TaskGen<number> {
    const vm = this.vm;
    yield op(C_IRQFD_ASSIGN, vm.oid);
    // kvm_arch_intc_initialized (arm64: vgic_initialized) comes before the fds are even looked at
    if (vm.vgic === null || !vm.vgic.initialized) {
      throw errno(
        'EAGAIN',
        'KVM_IRQFD: the VM has no initialised vGIC (KVM_DEV_ARM_VGIC_CTRL_INIT or a first KVM_RUN)',
      );
    }
    const files = vm.kernel.currentUser().files;
    const file = files.lookup(fd);
    if (file === undefined) throw errno('EBADF', `irqfd: fd ${fd} is not open`);
    const eventfd = eventfdCtxFileget(file);
    const irqfd = new Irqfd(vm, gsi, eventfd);
    try {
      if (resample) {
        irqfd.resamplefd = eventfdCtxFdget(files, resamplefdNum);
        yield* mutexLock(this.resamplerLock);
        let r = this.resamplerOf(gsi);
        if (r === undefined) {
          r = new IrqfdResampler(vm, gsi); // kvm_register_irq_ack_notifier
          this.resamplers.push(r);
        }
        r.irqfds.push(irqfd);
        irqfd.resampler = r;
        this.resamplerLock.unlock();
      }
      const flags = yield* spinLockIrqsave(this.lock);
      if (this.items.some((x) => x.eventfd === eventfd)) {
        spinUnlockIrqrestore(this.lock, flags);
        throw errno('EBUSY', `irqfd: eventfd ${fd} already backs an irqfd of this VM`);
      }
      this.items.push(irqfd);
      irqfd.active = true;
      spinUnlockIrqrestore(this.lock, flags);
    } catch (e) {
      if (irqfd.resampler !== null) yield* this.resamplerShutdown(irqfd);
      if (irqfd.resamplefd !== null) eventfdCtxPut(irqfd.resamplefd);
      eventfdCtxPut(eventfd);
      irqfd.markFreed();
      throw e;
    }
    // vfs_poll installs irqfd_wakeup on the eventfd as an exclusive priority waiter (irqfd_ptable_queue_proc); a
    // signal that came before is injected now (by the work)
    const pt: PollTable = { queueProc: () => eventfd.addPriorityWaitEntry(irqfd) };
    const events = vfsPoll(file, pt);
    if ((events & EPOLLIN) !== 0) vm.kernel.scheduleWork(irqfd.inject);
    return 0;
  }

  /** kvm_irqfd_deassign: 0 whether or not something matched; no injection after it returns. */
  *deassign(fd: number, gsi: number): TaskGen<number> {
    const vm = this.vm;
    yield op(C_IRQFD_ASSIGN, vm.oid);
    const eventfd = eventfdCtxFdget(vm.kernel.currentUser().files, fd);
    const flags = yield* spinLockIrqsave(this.lock);
    for (const irqfd of [...this.items]) {
      if (irqfd.eventfd === eventfd && irqfd.gsi === gsi) this.deactivate(irqfd);
    }
    spinUnlockIrqrestore(this.lock, flags);
    eventfdCtxPut(eventfd);
    yield* vm.kvm.irqfdCleanupWq.flush();
    return 0;
  }

  /** kvm_irqfd_release (VM fd closed): deactivate every irqfd and wait for the shutdowns. */
  *kvmIrqfdRelease(): TaskGen<void> {
    const flags = yield* spinLockIrqsave(this.lock);
    while (this.items.length > 0) this.deactivate(this.items[0]!);
    spinUnlockIrqrestore(this.lock, flags);
    yield* this.vm.kvm.irqfdCleanupWq.flush();
  }
}

/** kvm_irqfd (KVM_IRQFD): EFAULT, EINVAL for unknown flags, then deassign or assign (EAGAIN before vgic_init). */
export function* kvmIrqfd(vm: KvmVm, arg: number): TaskGen<number> {
  const mem = vm.kernel.currentUser().mem;
  const a = kvmIrqfdStruct.read(mem.view(arg, kvmIrqfdStruct.size));
  if ((a.flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) !== 0) {
    throw errno('EINVAL', `KVM_IRQFD flags 0x${a.flags.toString(16)} outside DEASSIGN|RESAMPLE`);
  }
  if ((a.flags & KVM_IRQFD_FLAG_DEASSIGN) !== 0) return yield* vm.irqfds.deassign(a.fd, a.gsi);
  return yield* vm.irqfds.assign(a.fd, a.gsi, (a.flags & KVM_IRQFD_FLAG_RESAMPLE) !== 0, a.resamplefd);
}
