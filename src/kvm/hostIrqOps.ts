/**
 * The host IRQ layer as the vGIC needs it (kvm_vgic_map_irq's irq_desc walk, irq_{get,set}_irqchip_state), for the
 * synchronous vGIC core. genirq's irqGetIrqchipState/irqSetIrqchipState are generators (desc->lock, then a chip
 * register step); the vGIC calls these from inside its fold, which is one atomic step of the vCPU thread (the kernel
 * runs it with interrupts disabled, under irq_lock). So, rather than turning the vGIC into generators, the accesses are
 * done here as direct distributor reads/writes (what gic_irq_{get,set}_irqchip_state does, minus desc->lock, which
 * the kernel's irq_get_irqchip_state takes only to keep the descriptor alive), charged to the running step as they
 * happen (C_GICD_READ for a read, C_GICD_ACTIVE for an active-state write, C_GICD_WRITE for a pending write); the
 * distributor declares the INTID each touches.
 */
import type { HostIrq } from '../host/irq/boot.js';
import { C_GICD_ACTIVE, C_GICD_READ, C_GICD_WRITE } from '../host/irq/irqGicV2.js';
import { charge } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { currentOrNull } from '../sim/task.js';
import type { VgicHostIrqOps, VgicIrqchipState } from './vgic/vgic.js';

export class KvmHostIrqOps implements VgicHostIrqOps {
  constructor(private readonly host: HostIrq) {}

  private hwirq(hostIrq: number): number {
    const d = this.host.genirq.domain.irqToDesc(hostIrq);
    if (d === undefined) throw new ModelError(`vGIC: Linux IRQ ${hostIrq} has no irq_desc`);
    return d.hwirq;
  }

  /** A private INTID is banked: the access reaches the current CPU's copy. */
  private bank(hwirq: number): number | undefined {
    if (hwirq >= 32) return undefined;
    const t = currentOrNull();
    if (t === null || t.cpu < 0) throw new ModelError(`vGIC: banked INTID ${hwirq} accessed outside any CPU`);
    return t.cpu;
  }

  /** gic_irq_get_irqchip_state: GICD_ISPENDR / GICD_ISACTIVER read. */
  getIrqchipState(hostIrq: number, which: VgicIrqchipState): boolean {
    const hw = this.hwirq(hostIrq);
    charge(C_GICD_READ);
    const dist = this.host.gic.distributor;
    return which === 'PENDING' ? dist.isPending(hw, this.bank(hw)) : dist.isActive(hw, this.bank(hw));
  }

  /** gic_irq_set_irqchip_state: GICD_I[SC]PENDR / GICD_I[SC]ACTIVER write. */
  setIrqchipState(hostIrq: number, which: VgicIrqchipState, val: boolean): void {
    const hw = this.hwirq(hostIrq);
    charge(which === 'ACTIVE' ? C_GICD_ACTIVE : C_GICD_WRITE);
    const dist = this.host.gic.distributor;
    const bank = this.bank(hw);
    if (which === 'ACTIVE') dist.setActive(hw, val, bank);
    else if (val) dist.setPending(hw, bank);
    else dist.clearPending(hw, bank);
  }

  /**
   * GICD_ISACTIVER as an observer reads it, for an invariant: no cost; the distributor still declares the INTID to the
   * checker, which only adds a dependence (sound).
   */
  observeActive(intid: number): boolean {
    return this.host.gic.distributor.isActive(intid, this.bank(intid));
  }

  /** kvm_vgic_map_irq: the root irqchip's hwirq (the GIC INTID) of a Linux IRQ, -1 without a descriptor. */
  hwIntidOf(hostIrq: number): number {
    return this.host.genirq.domain.irqToDesc(hostIrq)?.hwirq ?? -1;
  }
}
