/**
 * The MSI/MSI-X half of drivers/vfio/pci/vfio_pci_intrs.c (Linux 6.1): VFIO_DEVICE_SET_IRQS on the MSI and MSI-X
 * indexes. ACTION_TRIGGER with DATA_EVENTFD enables the index (vfio_msi_enable: pci_alloc_irq_vectors for
 * start + count vectors) on first use and binds each vector to an eventfd (vfio_msi_set_vector_signal:
 * request_irq(vfio_msihandler) and an IRQ bypass producer whose token is the eventfd); fd -1 unbinds one vector;
 * DATA_NONE with count 0 disables the index (vfio_msi_disable: every vector unbound, pci_free_irq_vectors);
 * DATA_NONE / DATA_BOOL with a count signal the bound eventfds (loopback). MSI and MSI-X cannot be masked through
 * VFIO (vfio_pci_set_irqs_ioctl has no MASK/UNMASK handler for them: ENOTTY), and only one index may be enabled at a
 * time (EINVAL).
 */
import { errno } from '../../abi/errno.js';
import {
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../abi/vfio.js';
import { type EventfdCtx, eventfdCtxFdget, eventfdCtxPut, eventfdSignal } from '../../host/eventfd.js';
import { IRQ_HANDLED, type IrqReturn } from '../../host/irq/irqDesc.js';
import { pciAllocIrqVectors, pciFreeIrqVectors } from '../../host/irq/its/pciMsi.js';
import { freeIrq, requestIrq } from '../../host/irq/manage.js';
import {
  type IrqBypassProducer,
  irqBypassRegisterProducer,
  irqBypassUnregisterProducer,
} from '../../host/irqbypass.js';
import { defineCost } from '../../sim/costs.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { markShared } from '../../sim/snapshot.js';
import { op } from '../../sim/task.js';
import type { VfioPciDevice } from './vfioPci.js';

export const C_VFIO_MSIHANDLER = defineCost(
  'vfio_msihandler',
  40,
  'vfio_msihandler: one call to eventfd_signal; estimate',
);

/** vdev->ctx[vector].producer: vfio-pci registers token and irq only, no callbacks (Linux 6.1). */
export class VfioPciIrqProducer implements IrqBypassProducer {
  constructor(
    public token: EventfdCtx | null,
    readonly irq: number,
  ) {}
}

/** struct vfio_pci_irq_ctx of one MSI/MSI-X vector. */
export class VfioPciIrqCtx {
  trigger: EventfdCtx | null = null;
  name = '';
  producer: VfioPciIrqProducer | null = null;
  /** Handler runs of this vector (the handler signals `trigger`). */
  signals = 0;
}

/** vfio_msihandler: signal the trigger eventfd. */
class VfioMsihandler extends Frame<IrqReturn> {
  constructor(private readonly ctx: VfioPciIrqCtx) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_VFIO_MSIHANDLER));
    }
    if (this.pc === 1 && this.ctx.trigger !== null) {
      this.pc = 2;
      this.ctx.signals++;
      return this.call(eventfdSignal(this.ctx.trigger));
    }
    return this.return_(IRQ_HANDLED);
  }
}

markShared(vfioMsihandler); // code an object of the model points at
function vfioMsihandler(_irq: number, devId: unknown): Frame<IrqReturn> {
  return new VfioMsihandler(devId as VfioPciIrqCtx);
}

const VS_UNREGISTER = 0; // irq_bypass_unregister_producer of the old trigger
const VS_FREE = 1; // free_irq(irq, trigger)
const VS_FREED = 2; // drop the old trigger; fd < 0: done; take the new one, request_irq
const VS_REQUESTED = 3; // request_irq returned: register the producer
const VS_REGISTERED = 4; // irq_bypass_register_producer returned

/**
 * vfio_msi_set_vector_signal: unbind the vector's trigger (producer, free_irq, eventfd_ctx_put), then, for fd >= 0,
 * bind the new one: eventfd_ctx_fdget (EBADF, EINVAL), request_irq, the producer (a registration failure is only
 * logged: token = NULL). The handler's dev_id is the vector's context, whose `trigger` is the kernel's dev_id.
 */
class VfioMsiSetVectorSignal extends Frame {
  private trigger: EventfdCtx | null = null;

  constructor(
    private readonly vdev: VfioPciDevice,
    private readonly vector: number,
    private readonly fd: number,
    private readonly msix: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vdev = this.vdev;
    const ctx = vdev.ctx[this.vector];
    if (ctx === undefined) throw errno('EINVAL', `vector ${this.vector} >= the ${vdev.ctx.length} enabled`);
    const irq = vdev.vectors!.descs[this.vector]!.irq; // pci_irq_vector
    const g = vdev.genirq;
    for (;;) {
      switch (this.pc) {
        case VS_UNREGISTER:
          if (ctx.trigger === null) {
            this.pc = VS_FREED;
            continue;
          }
          this.pc = VS_FREE;
          return this.call(irqBypassUnregisterProducer(vdev.kernel.irqBypass, ctx.producer!));
        case VS_FREE:
          ctx.producer = null;
          this.pc = VS_FREED;
          return this.call(freeIrq(g, irq, ctx));
        case VS_FREED:
          if (ctx.trigger !== null) {
            eventfdCtxPut(ctx.trigger);
            ctx.trigger = null;
          }
          if (this.fd < 0) return this.return_(undefined);
          ctx.name = `vfio-msi${this.msix ? 'x' : ''}[${this.vector}](${vdev.name})`;
          this.trigger = eventfdCtxFdget(vdev.kernel.currentUser().files, this.fd);
          ctx.trigger = this.trigger; // the handler signals ctx.trigger: set before it can run
          this.pc = VS_REQUESTED;
          return this.call(requestIrq(g, irq, vfioMsihandler, 0, ctx.name, ctx));
        case VS_REQUESTED:
          this.trigger = null;
          ctx.producer = new VfioPciIrqProducer(ctx.trigger, irq);
          this.pc = VS_REGISTERED;
          return this.call(irqBypassRegisterProducer(vdev.kernel.irqBypass, ctx.producer));
        default:
          if (sent !== 0) ctx.producer!.token = null; // "irq bypass producer (token %p) registration fails"
          return this.return_(undefined);
      }
    }
  }

  /** request_irq failed: the new trigger is dropped (kfree(name), eventfd_ctx_put). */
  protected override unwind(): void {
    if (this.pc === VS_REQUESTED && this.trigger !== null) {
      eventfdCtxPut(this.trigger);
      this.vdev.ctx[this.vector]!.trigger = null;
    }
  }
}

const SB_NEXT = 0; // vfio_msi_set_vector_signal of vector `j`
const SB_UNWIND = 1; // a vector failed: unbind start .. j-1, then rethrow

/** vfio_msi_set_block: bind start .. start+count-1 (fds null: unbind them all); on a failure, unbind what was bound. */
class VfioMsiSetBlock extends Frame {
  private i = 0;
  private error: unknown = null;

  constructor(
    private readonly vdev: VfioPciDevice,
    private readonly start: number,
    private readonly count: number,
    private readonly fds: readonly number[] | null,
    private readonly msix: boolean,
  ) {
    super();
    if (start >= vdev.ctx.length || start + count > vdev.ctx.length) {
      throw errno('EINVAL', `vectors ${start}..${start + count - 1} exceed the ${vdev.ctx.length} enabled`);
    }
  }

  protected step(): Boundary {
    if (this.pc === SB_NEXT) {
      if (this.i >= this.count) return this.return_(undefined);
      const fd = this.fds === null ? -1 : this.fds[this.i]!;
      return this.call(new VfioMsiSetVectorSignal(this.vdev, this.start + this.i++, fd, this.msix));
    }
    // SB_UNWIND: `for (--j; j >= start; j--)` with fd -1
    if (this.i-- > 0) return this.call(new VfioMsiSetVectorSignal(this.vdev, this.start + this.i, -1, this.msix));
    throw this.error;
  }

  protected override catch_(e: unknown): boolean {
    if (this.pc !== SB_NEXT) return false;
    this.error = e;
    this.pc = SB_UNWIND;
    this.i--; // the failed vector unbound itself
    return true;
  }
}

const EN_ALLOCATED = 1; // pci_alloc_irq_vectors returned

/** vfio_msi_enable: only from no index enabled (EINVAL); vdev->ctx for nvec vectors, pci_alloc_irq_vectors. */
class VfioMsiEnable extends Frame {
  constructor(
    private readonly vdev: VfioPciDevice,
    private readonly nvec: number,
    private readonly index: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vdev = this.vdev;
    if (this.pc === 0) {
      if (vdev.irqType !== null) throw errno('EINVAL', `index ${vdev.irqType} is enabled: disable it first`);
      // pci_alloc_irq_vectors(pdev, 1, nvec): __pci_enable_msi{,x}_range refuse maxvec < minvec before anything
      if (this.nvec < 1) throw errno('ERANGE', 'pci_alloc_irq_vectors(pdev, 1, 0): no vector asked for');
      this.pc = EN_ALLOCATED;
      return this.call(
        pciAllocIrqVectors(vdev.msiDomain, vdev.pdev, this.nvec, this.index === VFIO_PCI_MSIX_IRQ_INDEX),
      );
    }
    vdev.vectors = sent as NonNullable<VfioPciDevice['vectors']>;
    vdev.ctx = Array.from({ length: this.nvec }, () => new VfioPciIrqCtx());
    vdev.irqType = this.index;
    return this.return_(undefined);
  }
}

const DI_BLOCK = 0; // vfio_msi_set_block(vdev, 0, num_ctx, NULL)
const DI_FREE = 1; // pci_free_irq_vectors
const DI_DONE = 2;

/** vfio_msi_disable: every vector unbound, the vectors freed, no index enabled. */
class VfioMsiDisable extends Frame {
  constructor(private readonly vdev: VfioPciDevice) {
    super();
  }

  protected step(): Boundary {
    const vdev = this.vdev;
    const msix = vdev.irqType === VFIO_PCI_MSIX_IRQ_INDEX;
    switch (this.pc) {
      case DI_BLOCK:
        this.pc = DI_FREE;
        return this.call(new VfioMsiSetBlock(vdev, 0, vdev.ctx.length, null, msix));
      case DI_FREE:
        this.pc = DI_DONE;
        return this.call(pciFreeIrqVectors(vdev.msiDomain, vdev.vectors!));
      default:
        vdev.vectors = null;
        vdev.ctx = [];
        vdev.irqType = null;
        return this.return_(undefined);
    }
  }
}

export function vfioMsiDisable(vdev: VfioPciDevice): Frame {
  return new VfioMsiDisable(vdev);
}

const TR_ENABLED = 1; // vfio_msi_enable returned: set the block
const TR_BLOCK = 2; // vfio_msi_set_block returned (a failure after enabling disables again)
const TR_DISABLED = 3; // disabled (DATA_NONE, count 0), or a failed enable undone: rethrow
const TR_SIGNAL = 4; // loopback: eventfd_signal of vector `i`
const TR_FAILED = 5; // vfio_msi_set_block failed on a freshly enabled index: vfio_msi_disable

/** vfio_pci_set_msi_trigger. */
class VfioPciSetMsiTrigger extends Frame {
  private i = 0;
  private error: unknown = null;
  private fds: number[] = [];

  constructor(
    private readonly vdev: VfioPciDevice,
    private readonly index: number,
    private readonly start: number,
    private readonly count: number,
    private readonly flags: number,
    private readonly data: Uint8Array,
  ) {
    super();
  }

  protected step(): Boundary {
    const { vdev, index, start, count, flags } = this;
    const msix = index === VFIO_PCI_MSIX_IRQ_INDEX;
    switch (this.pc) {
      case 0: {
        if (vdev.irqType === index && count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
          this.pc = TR_DISABLED;
          return this.call(new VfioMsiDisable(vdev));
        }
        if (vdev.irqType !== index && vdev.irqType !== null) {
          throw errno('EINVAL', `index ${index}: index ${vdev.irqType} is enabled`);
        }
        if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
          const view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
          this.fds = Array.from({ length: count }, (_, k) => view.getInt32(4 * k, true));
          if (vdev.irqType === index) {
            this.pc = TR_DISABLED;
            return this.call(new VfioMsiSetBlock(vdev, start, count, this.fds, msix));
          }
          this.pc = TR_ENABLED;
          return this.call(new VfioMsiEnable(vdev, start + count, index));
        }
        if (vdev.irqType !== index || start + count > vdev.ctx.length) {
          throw errno('EINVAL', `index ${index}: no vectors ${start}..${start + count - 1} enabled to signal`);
        }
        this.i = start;
        this.pc = TR_SIGNAL;
        return this.step();
      }
      case TR_ENABLED:
        this.pc = TR_BLOCK;
        return this.call(new VfioMsiSetBlock(vdev, start, count, this.fds, msix));
      case TR_BLOCK:
        return this.return_(undefined);
      case TR_FAILED:
        this.pc = TR_DISABLED;
        return this.call(new VfioMsiDisable(vdev));
      case TR_DISABLED:
        if (this.error !== null) throw this.error;
        return this.return_(undefined);
      default: {
        // TR_SIGNAL: DATA_NONE signals every bound vector, DATA_BOOL those whose byte is set
        while (this.i < start + count) {
          const k = this.i++;
          const trigger = vdev.ctx[k]!.trigger;
          const bool = (flags & VFIO_IRQ_SET_DATA_BOOL) !== 0;
          if (trigger !== null && (!bool || this.data[k - start] !== 0)) return this.call(eventfdSignal(trigger));
        }
        return this.return_(undefined);
      }
    }
  }

  /** vfio_msi_set_block failed on a freshly enabled index: vfio_msi_disable, then the error. */
  protected override catch_(e: unknown): boolean {
    if (this.pc !== TR_BLOCK) return false;
    this.error = e;
    this.pc = TR_FAILED;
    return true;
  }
}

export function vfioPciSetMsiTrigger(
  vdev: VfioPciDevice,
  index: number,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): Frame {
  return new VfioPciSetMsiTrigger(vdev, index, start, count, flags, data);
}
