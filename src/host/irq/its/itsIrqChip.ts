/**
 * The chip of an MSI that the ITS translates (Linux 6.1): its_msi_irq_chip of irq-gic-v3-its-pci-msi.c ("ITS-MSI":
 * mask and unmask at the PCI function, then at the parent) over its_irq_chip of irq-gic-v3-its.c, whose callbacks
 * the model's flat IrqChip carries for the whole hierarchy:
 * - mask/unmask: pci_msi_mask_irq (the vector's mask bit), then lpi_update_config — the LPI's configuration byte in
 *   the property table, then its_send_inv (the redistributors have no DirectLPI here, GICR_TYPER.DirectLPI = 0);
 * - irq_eoi: irq_chip_eoi_parent → gic_eoimode1_eoi_irq, which returns at once for an LPI (no active state; the
 *   priority drop was gic_handle_irq's ICC_EOIR1_EL1);
 * - irq_set_affinity: its_set_affinity (MOVI to the chosen CPU's collection, least-loaded choice, -EINVAL for an IRQ
 *   forwarded to a vCPU); irq_set_irqchip_state / irq_retrigger: INT or CLEAR (PENDING only); no get: the parent
 *   GIC refuses LPIs (gic_irq_get_irqchip_state: -EINVAL); no irq_set_type (__irq_set_trigger succeeds).
 * - irq_set_vcpu_affinity: its_irq_set_vcpu_affinity needs a GICv4 ITS (is_v4): -EINVAL on this physical-only ITS;
 *   the GICv4 layer fills `vcpuAffinity` in.
 */
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import type { MsiDevice } from '../../../hw/msiDevice.js';
import { defineCost } from '../../../sim/costs.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { type Call, op } from '../../../sim/task.js';
import type { IrqChip, IrqchipState, IrqDesc, IrqTrigger } from '../irqDesc.js';
import { itsSendClear, itsSendInt, itsSendInv, itsSendMovi } from './itsCommands.js';
import type { ItsDevice } from './itsDevice.js';
import { type HostIts, LPI_PROP_GROUP1 } from './itsInit.js';

export const C_LPI_CONFIG_WRITE = defineCost(
  'lpi_config_write',
  30,
  'lpi_write_config: one byte of the property table + dsb ishst; estimate',
);
export const C_PCI_MSI_MASK = defineCost(
  'pci_msi_mask',
  200,
  'pci_msi_mask_irq: a config-space or MSI-X table write to the device (posted MMIO); estimate',
);

/** irq_data.chip_data of an ITS MSI, and the msi_desc behind it: the function and its vector. */
export interface ItsIrqData {
  readonly dev: ItsDevice;
  readonly pdev: MsiDevice;
  readonly vector: number;
}

/**
 * The GICv4 half of its_irq_set_vcpu_affinity (its_vlpi_map/unmap/…), which the GICv4 layer provides, and what the
 * chip's other callbacks do differently for an IRQ forwarded to a vCPU (irqd_is_forwarded_to_vcpu).
 */
export interface ItsVcpuAffinity {
  irqSetVcpuAffinity(d: IrqDesc, vcpuInfo: unknown): boolean | Call<boolean>;
  /** its_mask_irq / its_unmask_irq of a forwarded IRQ: its_vlpi_set_doorbell, then lpi_update_config on the VCONF. */
  maskVlpi(d: IrqDesc, enable: boolean): Frame;
  /** its_irq_set_irqchip_state of a forwarded IRQ: its_send_vint / its_send_vclear. */
  setVlpiPending(d: IrqDesc, pending: boolean): Frame;
}

export function itsIrqData(d: IrqDesc): ItsIrqData {
  return d.chipData as ItsIrqData;
}

/** its_get_event_id. */
export function itsGetEventId(d: IrqDesc): number {
  return d.hwirq - itsIrqData(d).dev.lpiBase;
}

export class ItsMsiIrqChip implements IrqChip {
  readonly name = 'ITS-MSI';
  readonly eoiIfHandled = false;
  /** GICv4's its_irq_set_vcpu_affinity; null on a GICv3 ITS (GITS_TYPER.Virtual = 0). */
  vcpuAffinity: ItsVcpuAffinity | null = null;

  constructor(readonly host: HostIts) {}

  irqMask(d: IrqDesc): Frame {
    return new ItsMaskMsiIrq(this, d, false);
  }

  irqUnmask(d: IrqDesc): Frame {
    return new ItsMaskMsiIrq(this, d, true);
  }

  irqEoi(_d: IrqDesc): Frame {
    return new Done(undefined);
  }

  irqRetrigger(d: IrqDesc): Frame<boolean> {
    return new ItsSendThen(itsSendInt(itsIrqData(d).dev, itsGetEventId(d)), true);
  }

  irqGetIrqchipState(_d: IrqDesc, _which: IrqchipState): Frame<boolean | null> {
    return new Done(null);
  }

  irqSetIrqchipState(d: IrqDesc, which: IrqchipState, val: boolean): Frame<boolean> {
    if (which !== 'PENDING') return new Done(false);
    if (d.forwardedToVcpu && this.vcpuAffinity !== null) {
      return new ItsSendThen(this.vcpuAffinity.setVlpiPending(d, val), true);
    }
    const { dev } = itsIrqData(d);
    const ev = itsGetEventId(d);
    return new ItsSendThen(val ? itsSendInt(dev, ev) : itsSendClear(dev, ev), true);
  }

  irqSetType(_d: IrqDesc, _trigger: IrqTrigger): Frame<boolean> {
    return new Done(true);
  }

  irqSetAffinity(d: IrqDesc, cpuMask: number, force: boolean): Frame<number> {
    return new ItsSetAffinity(this.host, d, cpuMask, force);
  }

  irqSetVcpuAffinity(d: IrqDesc, vcpu: unknown): boolean | Call<boolean> {
    return this.vcpuAffinity?.irqSetVcpuAffinity(d, vcpu) ?? false;
  }
}

/** A callback that returns at once, without touching hardware. */
class Done<R> extends Frame<R> {
  constructor(private readonly v: R) {
    super();
  }
  protected step(): Boundary {
    return this.return_(this.v);
  }
}

/** Post one ITS command, then answer `v`. */
class ItsSendThen<R> extends Frame<R> {
  constructor(
    private readonly send: Frame,
    private readonly v: R,
  ) {
    super();
  }
  protected step(): Boundary {
    if (this.pc === 1) return this.return_(this.v);
    this.pc = 1;
    return this.call(this.send);
  }
}

const MK_DEVICE = 0; // pci_msi_mask_irq / pci_msi_unmask_irq: the vector's mask bit
const MK_CONFIG = 1; // lpi_write_config: the property byte
const MK_INV = 2; // its_send_inv
const MK_DONE = 3;

/**
 * its_mask_msi_irq / its_unmask_msi_irq → its_mask_irq / its_unmask_irq → lpi_update_config; for an IRQ forwarded to
 * a vCPU the parent half is the GICv4 layer's (the VM's VCONF byte and a VINV, not the host's property table).
 */
class ItsMaskMsiIrq extends Frame {
  constructor(
    private readonly chip: ItsMsiIrqChip,
    private readonly d: IrqDesc,
    private readonly enable: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const data = itsIrqData(this.d);
    switch (this.pc) {
      case MK_DEVICE:
        this.pc = MK_CONFIG;
        return this.yield_(op(C_PCI_MSI_MASK, data.pdev.oid));
      case MK_CONFIG: {
        data.pdev.setMasked(data.vector, !this.enable);
        const v4 = this.chip.vcpuAffinity;
        if (this.d.forwardedToVcpu && v4 !== null) {
          this.pc = MK_DONE;
          return this.call(v4.maskVlpi(this.d, this.enable));
        }
        this.pc = MK_INV;
        return this.yield_(op(C_LPI_CONFIG_WRITE));
      }
      case MK_INV: {
        // lpi_write_config: clear or set LPI_PROP_ENABLED, always with LPI_PROP_GROUP1
        const host = this.chip.host;
        const pa = host.propTable + this.d.hwirq - LPI_BASE;
        const mem = host.pages.memory;
        mem.writeU8(pa, ((mem.readU8(pa) & ~1) | (this.enable ? 1 : 0) | LPI_PROP_GROUP1) & 0xff);
        this.pc = MK_DONE;
        return this.call(itsSendInv(data.dev, itsGetEventId(this.d)));
      }
      default:
        return this.return_(undefined);
    }
  }
}

const SA_MOVED = 1; // its_send_movi returned: col_map and the LPI count follow

/**
 * its_set_affinity: -EINVAL for a forwarded IRQ; otherwise the least-loaded CPU of the mask (its_select_cpu,
 * falling back to every online CPU; with force, cpumask_pick_least_loaded of the mask itself), MOVI when it changes.
 */
class ItsSetAffinity extends Frame<number> {
  private cpu = -1;

  constructor(
    private readonly host: HostIts,
    private readonly d: IrqDesc,
    private readonly cpuMask: number,
    private readonly force: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const { dev } = itsIrqData(this.d);
    const id = itsGetEventId(this.d);
    const count = this.host.cpuLpiCount;
    if (this.pc === SA_MOVED) {
      dev.colMap[id] = this.cpu;
      count[this.cpu]!++;
      return this.return_(this.cpu);
    }
    if (this.d.forwardedToVcpu) return this.return_(-1); // "A forwarded interrupt should use irq_set_vcpu_affinity"
    const prev = dev.colMap[id]!;
    count[prev]!--;
    const online = (1 << count.length) - 1;
    const mask = this.force || (this.cpuMask & online) !== 0 ? this.cpuMask & online : online;
    this.cpu = pickLeastLoaded(count, mask);
    if (this.cpu < 0) {
      count[prev]!++;
      return this.return_(-1);
    }
    if (this.cpu === prev) {
      count[prev]!++;
      return this.return_(prev);
    }
    this.pc = SA_MOVED;
    return this.call(itsSendMovi(dev, dev.its.collections[this.cpu]!, id));
  }
}

/** cpumask_pick_least_loaded: the first CPU of `mask` with the fewest LPIs, or -1 for an empty mask. */
export function pickLeastLoaded(count: Int32Array, mask: number): number {
  let cpu = -1;
  for (let c = 0; c < count.length; c++) {
    if ((mask & (1 << c)) !== 0 && (cpu < 0 || count[c]! < count[cpu]!)) cpu = c;
  }
  return cpu;
}
