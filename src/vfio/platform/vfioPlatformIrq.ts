/**
 * drivers/vfio/platform/vfio_platform_irq.c: the IRQ side of vfio-platform. A level IRQ is AUTOMASKED: its handler
 * disables the line (disable_irq_nosync) before signalling the trigger eventfd, and user space (or a virqfd on the
 * unmask eventfd, e.g. KVM's resamplefd) unmasks it. An edge IRQ is only signalled.
 */
import { errno } from '../../abi/errno.js';
import {
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
} from '../../abi/vfio.js';
import { type EventfdCtx, eventfdCtxFdget, eventfdCtxPut, eventfdSignal } from '../../host/eventfd.js';
import type { KFile } from '../../host/file.js';
import type { Genirq } from '../../host/irq/genirq.js';
import { IRQ_HANDLED, IRQ_NOAUTOEN, IRQ_NONE, type IrqReturn } from '../../host/irq/irqDesc.js';
import {
  disableIrqNosync,
  enableIrq,
  freeIrq,
  irqModifyStatus,
  irqSetIrqchipState,
  requestIrq,
} from '../../host/irq/manage.js';
import type { Kernel } from '../../host/kernel.js';
import { defineCost } from '../../sim/costs.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../../sim/locks.js';
import { markShared } from '../../sim/snapshot.js';
import { declareStatistics } from '../../sim/statistics.js';
import { type Call, op } from '../../sim/task.js';
import { type VirqfdCore, VirqfdSlot, vfioVirqfdDisable, vfioVirqfdEnable } from '../virqfd.js';
import {
  type VfioPlatformIrqProducer,
  vfioPlatformRegisterProducer,
  vfioPlatformUnregisterProducer,
} from './vfioPlatformIrqBypass.js';

export const C_VFIO_IRQ_HANDLER = defineCost(
  'vfio_irq_handler',
  80,
  'vfio_automasked_irq_handler / vfio_irq_handler body (irq->lock, masked flag); estimate',
);

/**
 * The consumer of a forwarded IRQ (KVM), in the role the IRQ bypass manager gives it upstream: when VFIO tears the
 * trigger down (replaced, disabled, device closed) it first asks the consumer to stop forwarding.
 */
export interface VfioIrqForward {
  /** Deliver the IRQ (the handler's producer → consumer call, in place of signalling the trigger eventfd). */
  inject(): Call<void>;
  unforward(): Call<void>;
}

/**
 * struct vfio_platform_irq. It embeds its lock (the spinlock_t lock member): the lock's fields start the object, so
 * the handler finds the lock and the IRQ's state in the same cache lines, not in a second object per line. The
 * fields the handler reads on every IRQ come next (an object's fields are laid out in declaration order), set-up-only
 * and reporting fields after them.
 */
export class VfioPlatformIrq extends Spinlock {
  readonly kernel: Kernel;
  /** Forwarded to a vCPU: no automask; the guest's EOI deactivates the line. */
  forwarded = false;
  /** The consumer the forwarded IRQ is delivered to (null in rfc-v1, whose seed design signals the trigger). */
  fwd: VfioIrqForward | null = null;
  /** Forwarded handler runs that called the consumer directly (no eventfd). */
  consumerCalls = 0;
  /** The Linux IRQ number (platform_get_irq), never the GIC INTID. */
  readonly hwirq: number;
  /** The IRQ layer the handler calls back into (disable_irq_nosync): the device's, kept here for the handler. */
  readonly genirq: Genirq;
  masked = false;
  trigger: EventfdCtx | null = null;
  /** Handler runs that signalled the trigger eventfd (incl. loopback triggers), and unmasks that re-enabled the line. */
  signals = 0;
  unmasks = 0;
  flags: number;
  readonly count = 1;
  /** The name request_irq was given (the lock's `name` is its lock class). */
  irqName = '';
  readonly mask = new VirqfdSlot();
  readonly unmask = new VirqfdSlot();
  /** The IRQ bypass producer of the trigger (only under the 2015 series' option: vfioPlatformIrqBypass.ts). */
  producer: VfioPlatformIrqProducer | null = null;
  readonly index: number;
  readonly level: boolean;

  /** Handler runs that delivered the IRQ, by eventfd or to the forwarding consumer. */
  get deliveries(): number {
    return this.signals + this.consumerCalls;
  }

  constructor(kernel: Kernel, genirq: Genirq, index: number, hwirq: number, level: boolean) {
    super(kernel.engine, 'vfio_platform_irq.lock');
    this.kernel = kernel;
    this.genirq = genirq;
    this.hwirq = hwirq;
    this.index = index;
    this.level = level;
    this.flags = VFIO_IRQ_INFO_EVENTFD | (level ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : 0);
  }

  /** irq_ctx->lock. */
  get lock(): Spinlock {
    return this;
  }
}
declareStatistics(VfioPlatformIrq, ['unmasks']);

/** What the IRQ code needs of the device: the kernel services and its name. */
export interface VfioPlatformIrqHost {
  readonly kernel: Kernel;
  readonly genirq: Genirq;
  readonly virqfd: VirqfdCore;
  readonly name: string;
  readonly irqs: VfioPlatformIrq[];
  /** Register an IRQ bypass producer per trigger (the 2015 series, not upstream). */
  readonly irqBypassProducers?: boolean;
}

const VM_LOCK = 0; // spin_lock_irqsave(&irq_ctx->lock, flags)
const VM_LOCKED = 1; // test masked; disable_irq_nosync / enable_irq
const VM_DONE = 2; // the IRQ layer call returned: update, unlock

/**
 * vfio_platform_mask / vfio_platform_unmask: idempotent, so only the first mask disables the line and never an
 * unbalanced enable_irq.
 */
class VfioPlatformMask extends Frame {
  private flags = false;

  constructor(
    private readonly irq: VfioPlatformIrq,
    private readonly unmask: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const irq = this.irq;
    switch (this.pc) {
      case VM_LOCK:
        this.pc = VM_LOCKED;
        return this.call(spinLockIrqsave(irq.lock));
      case VM_LOCKED:
        this.flags = sent as boolean;
        if (irq.masked === this.unmask) {
          this.pc = VM_DONE;
          return this.call(this.unmask ? enableIrq(irq.genirq, irq.hwirq) : disableIrqNosync(irq.genirq, irq.hwirq));
        }
        spinUnlockIrqrestore(irq.lock, this.flags);
        return this.return_(undefined);
      default: // VM_DONE
        irq.masked = !this.unmask;
        if (this.unmask) {
          irq.unmasks++;
          irq.kernel.trace?.vfioUnmask?.(irq.hwirq);
        }
        spinUnlockIrqrestore(irq.lock, this.flags);
        return this.return_(undefined);
    }
  }

  protected override unwind(): void {
    if (this.pc === VM_DONE) spinUnlockIrqrestore(this.irq.lock, this.flags);
  }
}

export function vfioPlatformMask(irq: VfioPlatformIrq): Frame {
  return new VfioPlatformMask(irq, false);
}

export function vfioPlatformUnmask(irq: VfioPlatformIrq): Frame {
  return new VfioPlatformMask(irq, true);
}

/**
 * Hand the IRQ on: to the forwarding consumer directly, else by signalling the trigger (newer kernels guard the
 * loopback case of a trigger that was never set, eventfd_signal(NULL)). Returns what to call, or null.
 */
function deliver(irq: VfioPlatformIrq, fwd: VfioIrqForward | null): Call<void> | null {
  if (fwd !== null) {
    irq.consumerCalls++;
    return fwd.inject();
  }
  if (irq.trigger !== null) {
    irq.signals++;
    return eventfdSignal(irq.trigger);
  }
  return null;
}

const AM_BEGIN = 0; // the handler's step
const AM_LOCK = 1; // spin_lock_irqsave(&irq_ctx->lock, flags)
const AM_LOCKED = 2; // forwarded, or mask with disable_irq_nosync
const AM_DISABLED = 3; // disable_irq_nosync returned: masked, unlock
const AM_DELIVERED = 4; // eventfd_signal (or the consumer) returned

/** vfio_automasked_irq_handler: mask, then signal (if it was not masked already). */
class VfioAutomaskedIrqHandler extends Frame<IrqReturn> {
  private flags = false;
  private ret: IrqReturn = IRQ_NONE;
  private fwd: VfioIrqForward | null = null;

  constructor(private readonly irq: VfioPlatformIrq) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const irq = this.irq;
    switch (this.pc) {
      case AM_BEGIN:
        this.pc = AM_LOCK;
        return this.yield_(op(C_VFIO_IRQ_HANDLER, irq.oid));
      case AM_LOCK:
        this.pc = AM_LOCKED;
        return this.call(spinLockIrqsave(irq.lock));
      case AM_LOCKED:
        this.flags = sent as boolean;
        // A forwarded level IRQ stays active at the GIC until the guest deactivates it: nothing to mask.
        if (irq.forwarded) {
          this.ret = IRQ_HANDLED;
          this.fwd = irq.fwd;
        } else if (!irq.masked) {
          this.pc = AM_DISABLED;
          return this.call(disableIrqNosync(irq.genirq, irq.hwirq));
        }
        return this.unlockAndDeliver();
      case AM_DISABLED:
        irq.masked = true;
        this.ret = IRQ_HANDLED;
        return this.unlockAndDeliver();
      default: // AM_DELIVERED
        return this.return_(this.ret);
    }
  }

  private unlockAndDeliver(): Boundary {
    const irq = this.irq;
    this.pc = AM_DELIVERED;
    spinUnlockIrqrestore(irq.lock, this.flags);
    if (this.ret !== IRQ_HANDLED) return this.return_(this.ret);
    irq.kernel.trace?.vfioIrq?.(irq.hwirq, irq.forwarded ? 'forwarded' : 'automasked');
    const next = deliver(irq, this.fwd);
    return next === null ? this.return_(this.ret) : this.call(next);
  }

  /** disable_irq_nosync threw with irq_ctx->lock held. */
  protected override unwind(): void {
    if (this.pc === AM_DISABLED) spinUnlockIrqrestore(this.irq.lock, this.flags);
  }
}

markShared(vfioAutomaskedIrqHandler); // code an object of the model points at
function vfioAutomaskedIrqHandler(_irqNo: number, devId: unknown): Frame<IrqReturn> {
  return new VfioAutomaskedIrqHandler(devId as VfioPlatformIrq);
}

const ED_BEGIN = 0; // the handler's step
const ED_DELIVER = 1; // eventfd_signal (or the consumer)
const ED_DELIVERED = 2;

/** vfio_irq_handler (edge). */
class VfioIrqHandler extends Frame<IrqReturn> {
  constructor(private readonly irq: VfioPlatformIrq) {
    super();
  }

  protected step(): Boundary {
    const irq = this.irq;
    switch (this.pc) {
      case ED_BEGIN:
        this.pc = ED_DELIVER;
        return this.yield_(op(C_VFIO_IRQ_HANDLER, irq.oid));
      case ED_DELIVER: {
        irq.kernel.trace?.vfioIrq?.(irq.hwirq, 'edge');
        this.pc = ED_DELIVERED;
        const next = deliver(irq, irq.forwarded ? irq.fwd : null);
        if (next !== null) return this.call(next);
        return this.return_(IRQ_HANDLED);
      }
      default:
        return this.return_(IRQ_HANDLED);
    }
  }
}

markShared(vfioIrqHandler); // code an object of the model points at
function vfioIrqHandler(_irqNo: number, devId: unknown): Frame<IrqReturn> {
  return new VfioIrqHandler(devId as VfioPlatformIrq);
}

export function handlerFor(irq: VfioPlatformIrq): (irq: number, devId: unknown) => Frame<IrqReturn> {
  return (irq.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0 ? vfioAutomaskedIrqHandler : vfioIrqHandler;
}

const ST_UNFORWARD = 0; // the consumer stops forwarding (irq_bypass_unregister_producer)
const ST_UNREGISTER = 1; // the old trigger's IRQ bypass producer goes (2015 series option)
const ST_NOAUTOEN_CLR = 2; // irq_clear_status_flags(IRQ_NOAUTOEN)
const ST_FREE = 3; // free_irq
const ST_FREED = 4; // drop the old trigger; install the new one
const ST_REQUEST = 5; // irq_set_status_flags(IRQ_NOAUTOEN) done: request_irq
const ST_REQUESTED = 6; // enable_irq unless masked
const ST_ENABLED = 7; // register the new trigger's IRQ bypass producer (2015 series option)
const ST_DONE = 8;

/** vfio_set_trigger: drop the old trigger (free_irq), then install `fd` (fd < 0: disable only). */
class VfioSetTrigger extends Frame {
  /** The new trigger, until request_irq succeeded (dropped if it fails). */
  private trigger: EventfdCtx | null = null;
  /** There was a trigger to drop. */
  private hadTrigger = false;

  constructor(
    private readonly h: VfioPlatformIrqHost,
    private readonly irq: VfioPlatformIrq,
    private readonly fd: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const irq = this.irq;
    const g = this.h.genirq;
    for (;;) {
      switch (this.pc) {
        case ST_UNFORWARD:
          this.hadTrigger = irq.trigger !== null;
          if (!this.hadTrigger) {
            this.pc = ST_FREED;
            continue;
          }
          this.pc = ST_UNREGISTER;
          if (irq.fwd !== null) return this.call(irq.fwd.unforward());
          continue;
        case ST_UNREGISTER:
          this.pc = ST_NOAUTOEN_CLR;
          if (irq.producer !== null) return this.call(vfioPlatformUnregisterProducer(irq, irq.producer));
          continue;
        case ST_NOAUTOEN_CLR:
          this.pc = ST_FREE;
          return this.call(irqModifyStatus(g, irq.hwirq, IRQ_NOAUTOEN, 0));
        case ST_FREE:
          this.pc = ST_FREED;
          return this.call(freeIrq(g, irq.hwirq, irq));
        case ST_FREED: {
          if (this.hadTrigger) {
            eventfdCtxPut(irq.trigger!);
            irq.trigger = null;
          }
          if (this.fd < 0) return this.return_(undefined);
          irq.irqName = `vfio-irq[${irq.hwirq}](${this.h.name})`;
          const trigger = eventfdCtxFdget(this.h.kernel.currentUser().files, this.fd);
          irq.trigger = trigger;
          this.trigger = trigger;
          this.pc = ST_REQUEST;
          return this.call(irqModifyStatus(g, irq.hwirq, 0, IRQ_NOAUTOEN));
        }
        case ST_REQUEST:
          this.pc = ST_REQUESTED;
          return this.call(requestIrq(g, irq.hwirq, handlerFor(irq), 0, irq.irqName, irq));
        case ST_REQUESTED:
          this.trigger = null;
          // A masked index stays disabled under its new trigger.
          this.pc = ST_ENABLED;
          if (!irq.masked) return this.call(enableIrq(g, irq.hwirq));
          continue;
        case ST_ENABLED:
          this.pc = ST_DONE;
          if (this.h.irqBypassProducers === true) {
            return this.call(vfioPlatformRegisterProducer(irq, g, irq.trigger!));
          }
          return this.return_(undefined);
        default:
          return this.return_(undefined);
      }
    }
  }

  /** request_irq failed: drop the new trigger. */
  protected override unwind(): void {
    if (this.pc === ST_REQUESTED) {
      eventfdCtxPut(this.trigger!);
      this.irq.trigger = null;
      this.trigger = null;
    }
  }
}

export function vfioSetTrigger(h: VfioPlatformIrqHost, irq: VfioPlatformIrq, fd: number): Frame {
  return new VfioSetTrigger(h, irq, fd);
}

/** vfio_platform_mask_handler / vfio_platform_unmask_handler, the virqfd handlers: (un)mask, schedule nothing. */
class VfioPlatformMaskHandler extends Frame<boolean> {
  constructor(
    private readonly irq: VfioPlatformIrq,
    private readonly unmask: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(new VfioPlatformMask(this.irq, this.unmask));
    }
    return this.return_(false);
  }
}

function vfioPlatformMaskHandler(opaque: unknown): Frame<boolean> {
  return new VfioPlatformMaskHandler(opaque as VfioPlatformIrq, false);
}

markShared(vfioPlatformUnmaskHandler); // code an object of the model points at
function vfioPlatformUnmaskHandler(opaque: unknown): Frame<boolean> {
  return new VfioPlatformMaskHandler(opaque as VfioPlatformIrq, true);
}

/** Actions MASK and UNMASK (vfio_platform_set_irq_mask / _unmask): what to call, or null for nothing to do. */
function setIrqMaskOrUnmask(
  h: VfioPlatformIrqHost,
  irq: VfioPlatformIrq,
  unmask: boolean,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): Call<void> | null {
  const what = unmask ? 'UNMASK' : 'MASK';
  if (start !== 0 || count !== 1) throw errno('EINVAL', `${what} of index ${irq.index} needs start 0 and count 1`);
  if ((irq.flags & VFIO_IRQ_INFO_MASKABLE) === 0) {
    throw errno('EINVAL', `${what}: index ${irq.index} is not maskable (edge IRQs are not)`);
  }
  if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
    const fd = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
    const slot = unmask ? irq.unmask : irq.mask;
    if (fd < 0) return vfioVirqfdDisable(h.virqfd, slot);
    const file = h.kernel.currentUser().files.fget(fd);
    const name = `${h.name}.irq${irq.index}.${unmask ? 'unmask' : 'mask'}`;
    const handler = unmask ? vfioPlatformUnmaskHandler : vfioPlatformMaskHandler;
    let enable: Frame;
    try {
      enable = vfioVirqfdEnable(h.virqfd, name, irq, handler, null, null, slot, file);
    } catch (e) {
      file.put();
      throw e;
    }
    return new FdputAfter(enable, file);
  }
  if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 && data[0] === 0) return null;
  return new VfioPlatformMask(irq, unmask);
}

/** `ret = vfio_virqfd_enable(...); fdput(f);`: call `inner`, then drop the file reference, whatever happens. */
class FdputAfter extends Frame {
  constructor(
    private readonly inner: Frame,
    private readonly file: KFile,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(this.inner);
    }
    this.file.put();
    return this.return_(undefined);
  }

  protected override unwind(): void {
    if (this.pc === 1) this.file.put();
  }
}

/** Action TRIGGER (vfio_platform_set_irq_trigger): what to call, or null for nothing to do. */
function setIrqTrigger(
  h: VfioPlatformIrqHost,
  irq: VfioPlatformIrq,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): Call<unknown> | null {
  if (count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) return vfioSetTrigger(h, irq, -1);
  if (start !== 0 || count !== 1) throw errno('EINVAL', `TRIGGER of index ${irq.index} needs start 0 and count 1`);
  if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
    return vfioSetTrigger(h, irq, new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true));
  }
  // Loopback: run the handler now, in process context.
  if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 && data[0] === 0) return null;
  // irqfwd: a forwarded IRQ is delivered by the host handler with its INTID active; a loopback is re-posted at the
  // GIC so that it takes that path once (igate, held here, keeps the forwarded state still).
  if (irq.fwd !== null && irq.forwarded) return irqSetIrqchipState(h.genirq, irq.hwirq, 'PENDING', true);
  return handlerFor(irq)(irq.hwirq, irq);
}

/** vfio_platform_set_irqs_ioctl: exactly one action, else ENOTTY. Called under vdev->igate. */
class VfioPlatformSetIrqs extends Frame {
  constructor(
    private readonly h: VfioPlatformIrqHost,
    private readonly flags: number,
    private readonly index: number,
    private readonly start: number,
    private readonly count: number,
    private readonly data: Uint8Array,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) return this.return_(undefined);
    const { h, flags, start, count, data } = this;
    const irq = h.irqs[this.index]!;
    let next: Call<unknown> | null;
    switch (flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) {
      case VFIO_IRQ_SET_ACTION_MASK:
        next = setIrqMaskOrUnmask(h, irq, false, start, count, flags, data);
        break;
      case VFIO_IRQ_SET_ACTION_UNMASK:
        next = setIrqMaskOrUnmask(h, irq, true, start, count, flags, data);
        break;
      case VFIO_IRQ_SET_ACTION_TRIGGER:
        next = setIrqTrigger(h, irq, start, count, flags, data);
        break;
      default:
        throw errno(
          'ENOTTY',
          `VFIO_DEVICE_SET_IRQS flags 0x${flags.toString(16)}: exactly one of ACTION_MASK, ACTION_UNMASK, ACTION_TRIGGER`,
        );
    }
    if (next === null) return this.return_(undefined);
    this.pc = 1;
    return this.call(next);
  }
}

export function vfioPlatformSetIrqs(
  h: VfioPlatformIrqHost,
  flags: number,
  index: number,
  start: number,
  count: number,
  data: Uint8Array,
): Frame {
  return new VfioPlatformSetIrqs(h, flags, index, start, count, data);
}

const CL_MASK = 0; // vfio_virqfd_disable(&irq->mask)
const CL_UNMASK = 1; // vfio_virqfd_disable(&irq->unmask)
const CL_TRIGGER = 2; // vfio_set_trigger(vdev, i, -1)
const CL_NEXT = 3;

/** vfio_platform_irq_cleanup: every virqfd off, every trigger freed. */
class VfioPlatformIrqCleanup extends Frame {
  private i = 0;

  constructor(private readonly h: VfioPlatformIrqHost) {
    super();
  }

  protected step(): Boundary {
    const h = this.h;
    if (this.pc === CL_NEXT) {
      this.i++;
      this.pc = CL_MASK;
    }
    const irq = h.irqs[this.i];
    if (irq === undefined) return this.return_(undefined);
    switch (this.pc) {
      case CL_MASK:
        this.pc = CL_UNMASK;
        return this.call(vfioVirqfdDisable(h.virqfd, irq.mask));
      case CL_UNMASK:
        this.pc = CL_TRIGGER;
        return this.call(vfioVirqfdDisable(h.virqfd, irq.unmask));
      default:
        this.pc = CL_NEXT;
        return this.call(vfioSetTrigger(h, irq, -1));
    }
  }
}

export function vfioPlatformIrqCleanup(h: VfioPlatformIrqHost): Frame {
  return new VfioPlatformIrqCleanup(h);
}
