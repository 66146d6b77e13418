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
 * - Routing (irqRouting.ts): by default GSI = SPI number = INTID − 32 (kvm_vgic_setup_default_irq_routing installs
 *   it for gsi < nr_spis at vgic_init); KVM_SET_GSI_ROUTING may route a GSI to an MSI instead. An unrouted GSI is
 *   accepted and never injects. The wakeup uses the irqfd's snapshot of its GSI's entry (irqfd->irq_entry, refreshed
 *   by irqfd_update at assign and at every routing change): an SPI is injected right there, an MSI only when the ITS
 *   translation cache holds it (kvm_arch_set_irq_inatomic); else the inject work runs kvm_set_irq.
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
import { EPOLLHUP, EPOLLIN, type KFile, type PollTable, vfsPoll, type WaitQueueEntry } from '../host/file.js';
import { irqBypassRegisterConsumer, irqBypassUnregisterConsumer } from '../host/irqbypass.js';
import { KObject } from '../host/kref.js';
import { flushWork, type WorkFn, WorkStruct } from '../host/kthread.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { Mutex, mutexLock, Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { declareStatistics } from '../sim/statistics.js';
import { type Call, type Op, op } from '../sim/task.js';
import { IrqfdConsumer } from './arch/arm/irqBypass.js';
import { C_IRQFD_ASSIGN, C_IRQFD_SHUTDOWN, C_IRQFD_WAKEUP } from './costs.js';
import { EWOULDBLOCK, irqfdRoutingEntry, type KvmKernelIrqRoutingEntry, kvmArchSetIrqInatomic } from './irqRouting.js';
import { KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, KVM_USERSPACE_IRQ_SOURCE_ID } from './kvm.js';
import { C_VGIC_INJECT } from './vgic/vgic.js';
import { vgicHasIts } from './vgic/vgicLpi.js';
import { vgicV4FlushOps } from './vgic/vgicV4Ops.js';
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
declareStatistics(IrqfdResampler, ['acks']);

/** irqfd->inject and irqfd->shutdown: work items that find their irqfd as the kernel's container_of does. */
class IrqfdWork extends WorkStruct {
  constructor(
    readonly irqfd: Irqfd,
    name: string,
    fn: WorkFn,
  ) {
    super(irqfd.vm.kernel.engine, name, fn);
  }
}

function irqfdOf(work: WorkStruct): Irqfd {
  if (!(work instanceof IrqfdWork)) throw new ModelError(`${work.name} is not an irqfd work item`);
  return work.irqfd;
}

markShared(irqfdInjectWork); // code an object of the model points at
/** irqfd_inject (work): container_of(work, struct kvm_kernel_irqfd, inject). */
function irqfdInjectWork(work: WorkStruct): Call<void> {
  return new IrqfdInject(irqfdOf(work));
}

markShared(irqfdShutdownWork); // code an object of the model points at
/** irqfd_shutdown (work on irqfd_cleanup_wq). */
function irqfdShutdownWork(work: WorkStruct): Call<void> {
  return new IrqfdShutdown(irqfdOf(work));
}

/** struct kvm_kernel_irqfd. */
export class Irqfd extends KObject implements WaitQueueEntry<EventfdCtx> {
  resamplefd: EventfdCtx | null = null;
  resampler: IrqfdResampler | null = null;
  readonly inject: WorkStruct;
  readonly shutdown: WorkStruct;
  /** irqfd->consumer: the IRQ bypass consumer, token = the eventfd. */
  readonly consumer = new IrqfdConsumer(this);
  /** On kvm->irqfds.items (irqfd_is_active). */
  active = false;
  /** irqfd->irq_entry: the GSI's routing entry when it has exactly one (irqfd_update), else null (type 0). */
  irqEntry: KvmKernelIrqRoutingEntry | null = null;
  /** Injections done from the wakeup and from the work (statistics). */
  injections = 0;

  constructor(
    readonly vm: KvmVm,
    readonly gsi: number,
    readonly eventfd: EventfdCtx,
  ) {
    super(vm.kernel.refs, 'kvm_irqfd', `irqfd gsi ${gsi}`);
    this.inject = new IrqfdWork(this, `irqfd${gsi}.inject`, irqfdInjectWork);
    this.shutdown = new IrqfdWork(this, `irqfd${gsi}.shutdown`, irqfdShutdownWork);
  }

  /**
   * irqfd_wakeup: returns 1 after consuming an EPOLLIN event, which, the irqfd being an exclusive priority waiter,
   * ends the eventfd's wake-up walk (5.11 "kvm/eventfd: Use priority waitqueue to catch events before userspace").
   */
  wake(_ctx: EventfdCtx, key: number): Call<number> {
    return new IrqfdWakeup(this, key);
  }
}

/** irqfd_wakeup: EPOLLIN's step. */
const PC_WAKEUP = 0;
/** eventfd_ctx_do_read, then kvm_arch_set_irq_inatomic. */
const PC_DO_READ = 1;
/** kvm_arch_set_irq_inatomic with the snapshot: an SPI, or an MSI the translation cache may hold. */
const PC_INATOMIC = 2;
/** EPOLLHUP: irqfds.lock taken. */
const PC_HUP_LOCKED = 3;

/** irqfd_wakeup as a frame. */
class IrqfdWakeup extends Frame<number> {
  constructor(
    private readonly irqfd: Irqfd,
    private readonly key: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const irqfd = this.irqfd;
    const vm = irqfd.vm;
    switch (this.pc) {
      case PC_WAKEUP:
        if ((this.key & EPOLLIN) === 0) return this.hup();
        this.pc = PC_DO_READ;
        return this.yield_(op(C_IRQFD_WAKEUP, vm.oid));
      case PC_DO_READ:
        eventfdCtxDoRead(irqfd.eventfd);
        // kvm_arch_set_irq_inatomic: an initialised vGIC's SPI or (maybe) an MSI now, else -EWOULDBLOCK → inject work
        if (inatomicMayInject(vm, irqfd.irqEntry)) {
          this.pc = PC_INATOMIC;
          return this.yield_(op(C_VGIC_INJECT, vm.oid));
        }
        vm.kernel.scheduleWork(irqfd.inject);
        return this.hup();
      case PC_INATOMIC: {
        // the kvm_set_irq trace point is the model's (the kernel traces no kvm_set_irq on this path): kept for SPIs
        const e = irqfd.irqEntry;
        if (e !== null && e.msi === null) vm.kvm.trace?.kvmSetIrq(irqfd.gsi, 1, KVM_USERSPACE_IRQ_SOURCE_ID, vm);
        const r = kvmArchSetIrqInatomic(vm, e, 1);
        if (r === EWOULDBLOCK) {
          vm.kernel.scheduleWork(irqfd.inject);
        } else if (r >= 0) {
          vm.trace?.irqfdInject?.(vm, irqfd.gsi, 1);
          irqfd.injections++;
        }
        return this.hup();
      }
      default: {
        // PC_HUP_LOCKED
        const irqfds = vm.irqfds;
        if (irqfd.active) irqfds.deactivate(irqfd);
        spinUnlockIrqrestore(irqfds.lock, sent as boolean);
        return this.return_(this.ret());
      }
    }
  }

  /** 1 after consuming an EPOLLIN event. */
  private ret(): number {
    return (this.key & EPOLLIN) !== 0 ? 1 : 0;
  }

  /** EPOLLHUP: the eventfd is closing: detach from KVM unless a deassign already deactivated us. */
  private hup(): Boundary {
    if ((this.key & EPOLLHUP) === 0) return this.return_(this.ret());
    this.pc = PC_HUP_LOCKED;
    return this.call(spinLockIrqsave(this.irqfd.vm.irqfds.lock));
  }
}

/** Whether kvm_arch_set_irq_inatomic can get past -EWOULDBLOCK: an SPI with the vGIC initialised, an MSI with an ITS. */
function inatomicMayInject(vm: KvmVm, e: KvmKernelIrqRoutingEntry | null): boolean {
  const vgic = vm.vgic;
  if (e === null || vgic === null) return false;
  return e.msi === null ? vgic.initialized : vgicHasIts(vgic);
}

/** irqfd_inject (work) as a frame. */
class IrqfdInject extends Frame {
  constructor(private readonly irqfd: Irqfd) {
    super();
  }

  protected step(): Boundary {
    const irqfd = this.irqfd;
    const vm = irqfd.vm;
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_VGIC_INJECT, vm.oid));
    }
    if (this.pc === 2) return this.return_(undefined);
    if (irqfd.resampler === null) {
      vm.kvmSetIrq(irqfd.gsi, 1, KVM_USERSPACE_IRQ_SOURCE_ID);
      vm.kvmSetIrq(irqfd.gsi, 0, KVM_USERSPACE_IRQ_SOURCE_ID);
    } else {
      vm.kvmSetIrq(irqfd.gsi, 1, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
    }
    if (vm.irqRouted(irqfd.gsi)) {
      vm.trace?.irqfdInject?.(vm, irqfd.gsi, irqfd.resampler === null ? -1 : 1);
      irqfd.injections++;
    }
    // an MSI route to a forwarded vLPI: vgic_its_trigger_msi's irq_set_irqchip_state (vgicV4Ops.ts)
    const ops = vgicV4FlushOps(vm);
    if (ops === null) return this.return_(undefined);
    this.pc = 2;
    return this.call(ops);
  }
}

/** irqfd_shutdown's step. */
const PC_SHUTDOWN = 0;
/** eventfd_ctx_remove_wait_queue: no new event can be scheduled. */
const PC_UNHOOK = 1;
/** flush_work(&irqfd->inject): no inject in flight. */
const PC_FLUSH = 2;
/** The inject work is idle: leave the resampler, if any. */
const PC_FLUSHED = 3;
/** irqfd_resampler_shutdown returned: drop the resamplefd. */
const PC_RESAMPLER_GONE = 4;
/** irq_bypass_unregister_consumer returned: free. */
const PC_CONSUMER_GONE = 5;

/** irqfd_shutdown (work on irqfd_cleanup_wq) as a frame. */
class IrqfdShutdown extends Frame {
  constructor(private readonly irqfd: Irqfd) {
    super();
  }

  protected step(): Boundary {
    const irqfd = this.irqfd;
    switch (this.pc) {
      case PC_SHUTDOWN:
        this.pc = PC_UNHOOK;
        return this.yield_(op(C_IRQFD_SHUTDOWN, irqfd.vm.oid));
      case PC_UNHOOK:
        // unhook from the eventfd so that no new event can be scheduled, then wait for an inject in flight
        this.pc = PC_FLUSH;
        return this.call(eventfdCtxRemoveWaitQueue(irqfd.eventfd, irqfd));
      case PC_FLUSH:
        this.pc = PC_FLUSHED;
        return this.call(flushWork(irqfd.inject));
      case PC_FLUSHED:
        if (irqfd.resampler !== null) {
          this.pc = PC_RESAMPLER_GONE;
          return this.call(irqfd.vm.irqfds.resamplerShutdown(irqfd));
        }
        return this.unregisterConsumer();
      case PC_RESAMPLER_GONE:
        eventfdCtxPut(irqfd.resamplefd!);
        irqfd.resamplefd = null;
        return this.unregisterConsumer();
      default:
        // PC_CONSUMER_GONE
        return this.free();
    }
  }

  private unregisterConsumer(): Boundary {
    this.pc = PC_CONSUMER_GONE;
    return this.call(irqBypassUnregisterConsumer(this.irqfd.vm.kernel.irqBypass, this.irqfd.consumer));
  }

  private free(): Boundary {
    eventfdCtxPut(this.irqfd.eventfd);
    this.irqfd.markFreed();
    return this.return_(undefined);
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
  resamplerShutdown(irqfd: Irqfd): Frame {
    return new IrqfdResamplerShutdown(this, irqfd);
  }

  /** kvm_notify_acked_irq(kvm, 0, gsi) → irqfd_resampler_ack of the GSI's resampler, if any. */
  notifyAcked(gsi: number): Frame {
    return new IrqfdResamplerAck(this, gsi);
  }

  /** kvm_irqfd_assign. */
  assign(fd: number, gsi: number, resample: boolean, resamplefdNum: number): Frame<number> {
    return new KvmIrqfdAssign(this, fd, gsi, resample, resamplefdNum);
  }

  /** kvm_irqfd_deassign: 0 whether or not something matched; no injection after it returns. */
  deassign(fd: number, gsi: number): Frame<number> {
    return new KvmIrqfdDeassign(this, fd, gsi);
  }

  /** kvm_irqfd_release (VM fd closed): deactivate every irqfd and wait for the shutdowns. */
  kvmIrqfdRelease(): Frame<number> {
    return new KvmIrqfdDeassign(this, -1, -1);
  }
}

/** kvm_irqfd_assign's step. */
const AS_START = 0;
/** The checks, the irqfd; with RESAMPLE, resampler_lock. */
const AS_CHECKS = 1;
/** resampler_lock held: join or create the GSI's resampler. */
const AS_RESAMPLER = 2;
/** irqfds.lock held: the EBUSY check, then on the list. */
const AS_LISTED = 3;
/** An error after the irqfd existed: leave the resampler (steps), then free what was taken. */
const AS_UNDO = 4;
/** irqfd_resampler_shutdown of the undo returned. */
const AS_UNDONE = 5;
/** irq_bypass_register_consumer returned (its result is only logged). */
const AS_CONSUMER = 6;

/** kvm_irqfd_assign as a frame. Its error path has steps (irqfd_resampler_shutdown): the error waits in `pending`. */
class KvmIrqfdAssign extends Frame<number> {
  /** The eventfd's file (fdget's reference), and its context. */
  private file: KFile | null = null;
  private eventfd: EventfdCtx | null = null;
  private irqfd: Irqfd | null = null;
  private pending: { error: unknown } | null = null;

  constructor(
    private readonly irqfds: KvmIrqfds,
    private readonly fd: number,
    private readonly gsi: number,
    private readonly resample: boolean,
    private readonly resamplefdNum: number,
  ) {
    super();
  }

  override next(sent?: unknown): IteratorResult<Op, number> {
    try {
      return super.next(sent);
    } catch (e) {
      if (this.irqfd === null || this.pc >= AS_UNDO || this.irqfd.active) throw e;
      this.pending = { error: e };
      this.pc = AS_UNDO;
      return super.next(undefined);
    }
  }

  protected step(sent: unknown): Boundary {
    const irqfds = this.irqfds;
    const vm = irqfds.vm;
    switch (this.pc) {
      case AS_START:
        this.pc = AS_CHECKS;
        return this.yield_(op(C_IRQFD_ASSIGN, vm.oid));
      case AS_CHECKS: {
        // kvm_arch_intc_initialized (arm64: vgic_initialized) comes before the fds are even looked at
        if (vm.vgic === null || !vm.vgic.initialized) {
          throw errno(
            'EAGAIN',
            'KVM_IRQFD: the VM has no initialised vGIC (KVM_DEV_ARM_VGIC_CTRL_INIT or a first KVM_RUN)',
          );
        }
        const files = vm.kernel.currentUser().files;
        const file = files.lookup(this.fd);
        if (file === undefined) throw errno('EBADF', `irqfd: fd ${this.fd} is not open`);
        this.file = file;
        const eventfd = eventfdCtxFileget(file);
        this.eventfd = eventfd;
        const irqfd = new Irqfd(vm, this.gsi, eventfd);
        this.irqfd = irqfd;
        if (this.resample) {
          irqfd.resamplefd = eventfdCtxFdget(files, this.resamplefdNum);
          this.pc = AS_RESAMPLER;
          return this.call(mutexLock(irqfds.resamplerLock));
        }
        this.pc = AS_LISTED;
        return this.call(spinLockIrqsave(irqfds.lock));
      }
      case AS_RESAMPLER: {
        const irqfd = this.irqfd!;
        let r = irqfds.resamplerOf(this.gsi);
        if (r === undefined) {
          r = new IrqfdResampler(vm, this.gsi); // kvm_register_irq_ack_notifier
          irqfds.resamplers.push(r);
        }
        r.irqfds.push(irqfd);
        irqfd.resampler = r;
        irqfds.resamplerLock.unlock();
        this.pc = AS_LISTED;
        return this.call(spinLockIrqsave(irqfds.lock));
      }
      case AS_LISTED: {
        const flags = sent as boolean;
        const irqfd = this.irqfd!;
        const eventfd = this.eventfd!;
        if (irqfds.items.some((x) => x.eventfd === eventfd)) {
          spinUnlockIrqrestore(irqfds.lock, flags);
          throw errno('EBUSY', `irqfd: eventfd ${this.fd} already backs an irqfd of this VM`);
        }
        irqfd.irqEntry = irqfdRoutingEntry(vm, this.gsi); // irqfd_update
        irqfds.items.push(irqfd);
        irqfd.active = true;
        spinUnlockIrqrestore(irqfds.lock, flags);
        // vfs_poll installs irqfd_wakeup on the eventfd as an exclusive priority waiter (irqfd_ptable_queue_proc); a
        // signal that came before is injected now (by the work)
        const pt: PollTable = { queueProc: () => eventfd.addPriorityWaitEntry(irqfd) };
        const events = vfsPoll(this.file!, pt);
        if ((events & EPOLLIN) !== 0) vm.kernel.scheduleWork(irqfd.inject);
        // kvm_arch_has_irq_bypass() (arm64: always): a failure to register is only logged (pr_info)
        this.pc = AS_CONSUMER;
        return this.call(irqBypassRegisterConsumer(vm.kernel.irqBypass, irqfd.consumer));
      }
      case AS_CONSUMER:
        return this.return_(0);
      case AS_UNDO:
        if (this.irqfd!.resampler !== null) {
          this.pc = AS_UNDONE;
          return this.call(irqfds.resamplerShutdown(this.irqfd!));
        }
        return this.undone();
      default:
        return this.undone();
    }
  }

  /** The rest of the error path: the eventfd references and the irqfd go, then the error goes on. */
  private undone(): Boundary {
    const irqfd = this.irqfd!;
    if (irqfd.resamplefd !== null) eventfdCtxPut(irqfd.resamplefd);
    eventfdCtxPut(this.eventfd!);
    irqfd.markFreed();
    throw this.pending!.error;
  }
}

/** kvm_irqfd_deassign / kvm_irqfd_release: the step (deassign only). */
const DE_START = 0;
/** irqfds.lock. */
const DE_LOCK = 1;
/** irqfds.lock held: deactivate. */
const DE_LOCKED = 2;
/** flush_workqueue(irqfd_cleanup_wq) returned. */
const DE_FLUSHED = 3;

/**
 * kvm_irqfd_deassign (the irqfds of `fd` on `gsi`) or, with fd −1, kvm_irqfd_release (all of them), as a frame:
 * deactivate under irqfds.lock, then flush the cleanup workqueue so no injection happens after it returns.
 */
class KvmIrqfdDeassign extends Frame<number> {
  private eventfd: EventfdCtx | null = null;

  constructor(
    private readonly irqfds: KvmIrqfds,
    private readonly fd: number,
    private readonly gsi: number,
  ) {
    super();
    if (fd < 0) this.pc = DE_LOCK;
  }

  protected step(sent: unknown): Boundary {
    const irqfds = this.irqfds;
    const vm = irqfds.vm;
    switch (this.pc) {
      case DE_START:
        this.pc = DE_LOCK;
        return this.yield_(op(C_IRQFD_ASSIGN, vm.oid));
      case DE_LOCK:
        if (this.fd >= 0) this.eventfd = eventfdCtxFdget(vm.kernel.currentUser().files, this.fd);
        this.pc = DE_LOCKED;
        return this.call(spinLockIrqsave(irqfds.lock));
      case DE_LOCKED: {
        const eventfd = this.eventfd;
        if (eventfd === null) {
          while (irqfds.items.length > 0) irqfds.deactivate(irqfds.items[0]!);
        } else {
          for (const irqfd of [...irqfds.items]) {
            if (irqfd.eventfd === eventfd && irqfd.gsi === this.gsi) irqfds.deactivate(irqfd);
          }
        }
        spinUnlockIrqrestore(irqfds.lock, sent as boolean);
        if (eventfd !== null) eventfdCtxPut(eventfd);
        this.pc = DE_FLUSHED;
        return this.call(vm.kvm.irqfdCleanupWq.flush());
      }
      default:
        return this.return_(0);
    }
  }
}

/** irqfd_resampler_shutdown: mutex_lock(&kvm->irqfds.resampler_lock). */
const PC_RS_LOCK = 0;
/** resampler_lock held: leave the resampler's list. */
const PC_RS_LOCKED = 1;
/** The last irqfd out: kvm_set_irq(..., 0) lowers the line. */
const PC_RS_LOWER = 2;

/** irqfd_resampler_shutdown as a frame (resampler_lock is held at PC_RS_LOWER). */
class IrqfdResamplerShutdown extends Frame {
  constructor(
    private readonly irqfds: KvmIrqfds,
    private readonly irqfd: Irqfd,
  ) {
    super();
  }

  protected step(): Boundary {
    const irqfds = this.irqfds;
    const r = this.irqfd.resampler!;
    switch (this.pc) {
      case PC_RS_LOCK:
        this.pc = PC_RS_LOCKED;
        return this.call(mutexLock(irqfds.resamplerLock));
      case PC_RS_LOCKED: {
        this.pc = PC_RS_LOWER;
        const i = r.irqfds.indexOf(this.irqfd);
        if (i >= 0) r.irqfds.splice(i, 1);
        if (r.irqfds.length > 0) return this.unlock();
        const j = irqfds.resamplers.indexOf(r);
        if (j >= 0) irqfds.resamplers.splice(j, 1); // kvm_unregister_irq_ack_notifier
        return this.yield_(op(C_VGIC_INJECT, irqfds.vm.oid));
      }
      default:
        // PC_RS_LOWER
        irqfds.vm.kvmSetIrq(r.gsi, 0, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
        return this.unlock();
    }
  }

  private unlock(): Boundary {
    this.irqfds.resamplerLock.unlock();
    this.irqfd.resampler = null;
    return this.return_(undefined);
  }

  protected override unwind(): void {
    if (this.pc === PC_RS_LOWER) this.irqfds.resamplerLock.unlock();
  }
}

/** kvm_notify_acked_irq: the GSI's ack notifier, if any. */
const PC_ACK = 0;
/** irqfd_resampler_ack: kvm_set_irq(..., 0). */
const PC_LOWER = 1;
/** irqfd_resampler_notify, one resamplefd at a time. */
const PC_NOTIFY = 2;

/** kvm_notify_acked_irq → irqfd_resampler_ack → irqfd_resampler_notify, as a frame. */
class IrqfdResamplerAck extends Frame {
  private r: IrqfdResampler | null = null;
  /** The next irqfd of the resampler whose resamplefd is signalled. */
  private i = 0;

  constructor(
    private readonly irqfds: KvmIrqfds,
    private readonly gsi: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = this.irqfds.vm;
    switch (this.pc) {
      case PC_ACK: {
        const r = this.irqfds.resamplerOf(this.gsi);
        if (r === undefined) return this.return_(undefined);
        this.r = r;
        r.acks++;
        this.pc = PC_LOWER;
        return this.yield_(op(C_VGIC_INJECT, vm.oid));
      }
      case PC_LOWER:
        vm.kvmSetIrq(this.gsi, 0, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);
        vm.trace?.irqfdResample?.(vm, this.gsi);
        this.pc = PC_NOTIFY;
        return this.notify();
      default:
        return this.notify();
    }
  }

  /** irqfd_resampler_notify: every resamplefd of the GSI. */
  private notify(): Boundary {
    const list = this.r!.irqfds;
    while (this.i < list.length) {
      const fd = list[this.i++]!.resamplefd;
      if (fd !== null) return this.call(eventfdSignal(fd));
    }
    return this.return_(undefined);
  }
}

/** kvm_irqfd (KVM_IRQFD): EFAULT, EINVAL for unknown flags, then deassign or assign (EAGAIN before vgic_init). */
export function kvmIrqfd(vm: KvmVm, arg: number): Frame<number> {
  const mem = vm.kernel.currentUser().mem;
  const a = kvmIrqfdStruct.read(mem.view(arg, kvmIrqfdStruct.size));
  if ((a.flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) !== 0) {
    throw errno('EINVAL', `KVM_IRQFD flags 0x${a.flags.toString(16)} outside DEASSIGN|RESAMPLE`);
  }
  if ((a.flags & KVM_IRQFD_FLAG_DEASSIGN) !== 0) return vm.irqfds.deassign(a.fd, a.gsi);
  return vm.irqfds.assign(a.fd, a.gsi, (a.flags & KVM_IRQFD_FLAG_RESAMPLE) !== 0, a.resamplefd);
}
