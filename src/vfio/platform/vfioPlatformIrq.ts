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
import type { Genirq } from '../../host/irq/genirq.js';
import { IRQ_HANDLED, IRQ_NOAUTOEN, IRQ_NONE, type IrqHandler, type IrqReturn } from '../../host/irq/irqDesc.js';
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
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../../sim/locks.js';
import { op, type TaskGen } from '../../sim/task.js';
import { type VirqfdCore, type VirqfdSlot, vfioVirqfdDisable, vfioVirqfdEnable } from '../virqfd.js';

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
  inject(): TaskGen<void>;
  unforward(): TaskGen<void>;
}

/** struct vfio_platform_irq. */
export class VfioPlatformIrq {
  flags: number;
  readonly count = 1;
  masked = false;
  trigger: EventfdCtx | null = null;
  name = '';
  readonly mask: VirqfdSlot = { virqfd: null };
  readonly unmask: VirqfdSlot = { virqfd: null };
  readonly lock: Spinlock;
  /** Handler runs that signalled the trigger eventfd (incl. loopback triggers), and unmasks that re-enabled the line. */
  signals = 0;
  unmasks = 0;
  /** Forwarded handler runs that called the consumer directly (no eventfd). */
  consumerCalls = 0;

  /** Handler runs that delivered the IRQ, by eventfd or to the forwarding consumer. */
  get deliveries(): number {
    return this.signals + this.consumerCalls;
  }
  /** Forwarded to a vCPU: no automask; the guest's EOI deactivates the line. */
  forwarded = false;
  /** The consumer the forwarded IRQ is delivered to (null in rfc-v1, whose seed design signals the trigger). */
  fwd: VfioIrqForward | null = null;

  constructor(
    readonly kernel: Kernel,
    readonly index: number,
    /** The Linux IRQ number (platform_get_irq), never the GIC INTID. */
    readonly hwirq: number,
    readonly level: boolean,
  ) {
    this.flags = VFIO_IRQ_INFO_EVENTFD | (level ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : 0);
    this.lock = new Spinlock(kernel.engine, 'vfio_platform_irq.lock');
  }
}

/** What the IRQ code needs of the device: the kernel services and its name. */
export interface VfioPlatformIrqHost {
  readonly kernel: Kernel;
  readonly genirq: Genirq;
  readonly virqfd: VirqfdCore;
  readonly name: string;
  readonly irqs: VfioPlatformIrq[];
}

/** vfio_platform_mask: idempotent; only the first mask disables the line. */
export function* vfioPlatformMask(g: Genirq, irq: VfioPlatformIrq): TaskGen<void> {
  const flags = yield* spinLockIrqsave(irq.lock);
  try {
    if (!irq.masked) {
      yield* disableIrqNosync(g, irq.hwirq);
      irq.masked = true;
    }
  } finally {
    spinUnlockIrqrestore(irq.lock, flags);
  }
}

/** vfio_platform_unmask: idempotent, so never an unbalanced enable_irq. */
export function* vfioPlatformUnmask(g: Genirq, irq: VfioPlatformIrq): TaskGen<void> {
  const flags = yield* spinLockIrqsave(irq.lock);
  try {
    if (irq.masked) {
      yield* enableIrq(g, irq.hwirq);
      irq.masked = false;
      irq.unmasks++;
      irq.kernel.trace?.vfioUnmask?.(irq.hwirq);
    }
  } finally {
    spinUnlockIrqrestore(irq.lock, flags);
  }
}

/** vfio_automasked_irq_handler: mask, then signal (if it was not masked already). */
function automaskedHandler(g: Genirq): IrqHandler {
  return function* (_irqNo, devId): TaskGen<IrqReturn> {
    const irq = devId as VfioPlatformIrq;
    yield op(C_VFIO_IRQ_HANDLER, irq.lock.oid);
    let ret: IrqReturn = IRQ_NONE;
    let fwd: VfioIrqForward | null = null;
    const flags = yield* spinLockIrqsave(irq.lock);
    try {
      // A forwarded level IRQ stays active at the GIC until the guest deactivates it: nothing to mask.
      if (irq.forwarded) {
        ret = IRQ_HANDLED;
        fwd = irq.fwd;
      } else if (!irq.masked) {
        yield* disableIrqNosync(g, irq.hwirq);
        irq.masked = true;
        ret = IRQ_HANDLED;
      }
    } finally {
      spinUnlockIrqrestore(irq.lock, flags);
    }
    if (ret === IRQ_HANDLED) irq.kernel.trace?.vfioIrq?.(irq.hwirq, irq.forwarded ? 'forwarded' : 'automasked');
    if (ret === IRQ_HANDLED) yield* deliver(irq, fwd);
    return ret;
  };
}

/**
 * Hand the IRQ on: to the forwarding consumer directly, else by signalling the trigger (newer kernels guard the
 * loopback case of a trigger that was never set, eventfd_signal(NULL)).
 */
function* deliver(irq: VfioPlatformIrq, fwd: VfioIrqForward | null): TaskGen<void> {
  if (fwd !== null) {
    irq.consumerCalls++;
    yield* fwd.inject();
  } else if (irq.trigger !== null) {
    irq.signals++;
    yield* eventfdSignal(irq.trigger);
  }
}

/** vfio_irq_handler (edge). */
function* edgeHandler(_irqNo: number, devId: unknown): TaskGen<IrqReturn> {
  const irq = devId as VfioPlatformIrq;
  yield op(C_VFIO_IRQ_HANDLER, irq.lock.oid);
  irq.kernel.trace?.vfioIrq?.(irq.hwirq, 'edge');
  yield* deliver(irq, irq.forwarded ? irq.fwd : null);
  return IRQ_HANDLED;
}

export function handlerFor(g: Genirq, irq: VfioPlatformIrq): IrqHandler {
  return (irq.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0 ? automaskedHandler(g) : edgeHandler;
}

/** vfio_set_trigger: drop the old trigger (free_irq), then install `fd` (fd < 0: disable only). */
export function* vfioSetTrigger(h: VfioPlatformIrqHost, irq: VfioPlatformIrq, fd: number): TaskGen<void> {
  const g = h.genirq;
  if (irq.trigger !== null) {
    if (irq.fwd !== null) yield* irq.fwd.unforward();
    yield* irqModifyStatus(g, irq.hwirq, IRQ_NOAUTOEN, 0);
    yield* freeIrq(g, irq.hwirq, irq);
    eventfdCtxPut(irq.trigger);
    irq.trigger = null;
  }
  if (fd < 0) return;
  irq.name = `vfio-irq[${irq.hwirq}](${h.name})`;
  const trigger = eventfdCtxFdget(h.kernel.currentUser().files, fd);
  irq.trigger = trigger;
  yield* irqModifyStatus(g, irq.hwirq, 0, IRQ_NOAUTOEN);
  try {
    yield* requestIrq(g, irq.hwirq, handlerFor(g, irq), 0, irq.name, irq);
  } catch (e) {
    eventfdCtxPut(trigger);
    irq.trigger = null;
    throw e;
  }
  // A masked index stays disabled under its new trigger.
  if (!irq.masked) yield* enableIrq(g, irq.hwirq);
}

function* maskHandler(this: void, opaque: unknown, data: unknown): TaskGen<boolean> {
  yield* vfioPlatformMask(data as Genirq, opaque as VfioPlatformIrq);
  return false;
}

function* unmaskHandler(this: void, opaque: unknown, data: unknown): TaskGen<boolean> {
  yield* vfioPlatformUnmask(data as Genirq, opaque as VfioPlatformIrq);
  return false;
}

/** Actions MASK and UNMASK (vfio_platform_set_irq_mask / _unmask). */
function* setIrqMaskOrUnmask(
  h: VfioPlatformIrqHost,
  irq: VfioPlatformIrq,
  unmask: boolean,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): TaskGen<void> {
  const what = unmask ? 'UNMASK' : 'MASK';
  if (start !== 0 || count !== 1) throw errno('EINVAL', `${what} of index ${irq.index} needs start 0 and count 1`);
  if ((irq.flags & VFIO_IRQ_INFO_MASKABLE) === 0) {
    throw errno('EINVAL', `${what}: index ${irq.index} is not maskable (edge IRQs are not)`);
  }
  const g = h.genirq;
  if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
    const fd = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
    const slot = unmask ? irq.unmask : irq.mask;
    if (fd >= 0) {
      const file = h.kernel.currentUser().files.fget(fd);
      try {
        const name = `${h.name}.irq${irq.index}.${unmask ? 'unmask' : 'mask'}`;
        yield* vfioVirqfdEnable(h.virqfd, name, irq, unmask ? unmaskHandler : maskHandler, null, g, slot, file);
      } finally {
        file.put();
      }
    } else {
      yield* vfioVirqfdDisable(h.virqfd, slot);
    }
    return;
  }
  if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 && data[0] === 0) return;
  if (unmask) yield* vfioPlatformUnmask(g, irq);
  else yield* vfioPlatformMask(g, irq);
}

/** Action TRIGGER (vfio_platform_set_irq_trigger). */
function* setIrqTrigger(
  h: VfioPlatformIrqHost,
  irq: VfioPlatformIrq,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): TaskGen<void> {
  if (count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
    yield* vfioSetTrigger(h, irq, -1);
    return;
  }
  if (start !== 0 || count !== 1) throw errno('EINVAL', `TRIGGER of index ${irq.index} needs start 0 and count 1`);
  if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
    yield* vfioSetTrigger(h, irq, new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true));
    return;
  }
  // Loopback: run the handler now, in process context.
  if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 && data[0] === 0) return;
  // irqfwd: a forwarded IRQ is delivered by the host handler with its INTID active; a loopback is re-posted at the
  // GIC so that it takes that path once (igate, held here, keeps the forwarded state still).
  if (irq.fwd !== null && irq.forwarded) {
    yield* irqSetIrqchipState(h.genirq, irq.hwirq, 'PENDING', true);
    return;
  }
  yield* handlerFor(h.genirq, irq)(irq.hwirq, irq);
}

/** vfio_platform_set_irqs_ioctl: exactly one action, else ENOTTY. Called under vdev->igate. */
export function* vfioPlatformSetIrqs(
  h: VfioPlatformIrqHost,
  flags: number,
  index: number,
  start: number,
  count: number,
  data: Uint8Array,
): TaskGen<void> {
  const irq = h.irqs[index]!;
  switch (flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) {
    case VFIO_IRQ_SET_ACTION_MASK:
      return yield* setIrqMaskOrUnmask(h, irq, false, start, count, flags, data);
    case VFIO_IRQ_SET_ACTION_UNMASK:
      return yield* setIrqMaskOrUnmask(h, irq, true, start, count, flags, data);
    case VFIO_IRQ_SET_ACTION_TRIGGER:
      return yield* setIrqTrigger(h, irq, start, count, flags, data);
    default:
      throw errno(
        'ENOTTY',
        `VFIO_DEVICE_SET_IRQS flags 0x${flags.toString(16)}: exactly one of ACTION_MASK, ACTION_UNMASK, ACTION_TRIGGER`,
      );
  }
}

/** vfio_platform_irq_cleanup: every virqfd off, every trigger freed. */
export function* vfioPlatformIrqCleanup(h: VfioPlatformIrqHost): TaskGen<void> {
  for (const irq of h.irqs) {
    yield* vfioVirqfdDisable(h.virqfd, irq.mask);
    yield* vfioVirqfdDisable(h.virqfd, irq.unmask);
    yield* vfioSetTrigger(h, irq, -1);
  }
}
