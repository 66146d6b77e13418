/**
 * What the emulated ITS and redistributors do to a vLPI forwarded to the hardware (irq->hw, host_irq: vgicV4Forwarding.ts)
 * (arch/arm64/kvm/vgic/vgic-its.c, Linux 6.1): the guest's command or register write updates the emulated state and
 * calls into the host's GICv4 layer (host/irq/irqGicV4.ts) —
 * - INV, INVALL, GICR_INVLPIR, GICR_INVALLR → update_lpi_config → its_prop_update_vlpi (the VCONF byte, with the
 *   INV only for INV); INVALL and GICR_INVALLR then its_invall_vpe (vgic_its_invall);
 * - INT → vgic_its_trigger_msi → irq_set_irqchip_state(host_irq, PENDING, true); CLEAR → (…, false);
 * - DISCARD, MAPD (V = 0, or a remap) → its_free_ite → its_unmap_vlpi (its DISCARD drops a pending vLPI, as the
 *   guest's DISCARD asks; nothing moves back to the emulated latch);
 * - MOVI, MOVALL, MAPC of a mapped collection → update_affinity → its_get_vlpi, then its_map_vlpi with the new vCPU's
 *   vPE (a VMOVI at the host ITS).
 *
 * Divergence: the vITS emulation is synchronous (one step, vgicIts.ts), the host calls are frames. The emulation
 * queues the calls here in the kernel's order (vgic_dist.v4Ops) and the path that ran it drains the queue before it
 * returns — the vCPU's MMIO exit before the guest runs again (vcpuRun.ts), KVM_SIGNAL_MSI, the irqfd's inject work, the
 * vITS and vGIC-v3 devices' attribute writes, vgic_its_destroy — so a guest sees its commands' hardware effects before
 * its next instruction, as it does under its_lock. A second path that finds the queue being drained leaves its calls to the first (the kernel
 * would sleep on its_lock instead).
 */
import { ErrnoError } from '../../abi/errno.js';
import { itsGetVlpi, itsInvallVpe, itsMapVlpi, itsPropUpdateVlpi, itsUnmapVlpi } from '../../host/irq/irqGicV4.js';
import type { ItsVlpiMap } from '../../host/irq/its/itsVlpi.js';
import { irqSetIrqchipState } from '../../host/irq/manage.js';
import { touch } from '../../sim/footprint.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import type { KvmVm } from '../vm.js';
import type { Vgic } from './vgic.js';

/**
 * One host call of the GICv4 layer, on a forwarded vLPI's host IRQ or a vCPU's vPE (by vCPU index). Plain data, not a
 * closure: the checker's machine copy and state key carry the queue (stateKey.test.ts), and a queueing step is
 * ordered with the draining one through the VM's object, which vgicV4FlushOps touches in the same step.
 */
export type VgicV4Op =
  | { readonly kind: 'prop'; readonly hostIrq: number; readonly config: number; readonly inv: boolean }
  | { readonly kind: 'pending'; readonly hostIrq: number; readonly pending: boolean }
  | { readonly kind: 'unmap'; readonly hostIrq: number }
  | { readonly kind: 'affinity'; readonly hostIrq: number; readonly vcpu: number }
  | { readonly kind: 'invall'; readonly vcpu: number };

/** Queue a host call of the emulation that runs now (its caller drains the queue: vgicV4FlushOps). */
export function vgicV4QueueOp(vgic: Vgic, o: VgicV4Op): void {
  vgic.v4Ops.push(o);
}

/** The frame that runs the VM's queued host calls, or null when there are none or another path is running them. */
export function vgicV4FlushOps(vm: KvmVm): Frame<number> | null {
  const vgic = vm.vgic;
  if (vgic === null || vgic.v4Ops.length === 0) return null;
  touch(vm.oid); // the queue and who runs it are the VM's (the checker's object for them)
  if (vgic.v4OpsRunning) return null;
  vgic.v4OpsRunning = true;
  return new VgicV4RunOps(vm);
}

/**
 * Runs the queued calls in order; returns how many failed. A failure is what the kernel ignores (the command's
 * return value, which the vITS drops) or WARNs about (its_free_ite's its_unmap_vlpi): counted in vgic.v4OpErrors.
 */
class VgicV4RunOps extends Frame<number> {
  private failed = 0;
  /** its_get_vlpi's answer (update_affinity). */
  private readonly info: { cmdType: 'GET_VLPI'; map: ItsVlpiMap | null } = { cmdType: 'GET_VLPI', map: null };
  private vpeIdx = -1;
  private hostIrq = 0;

  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(): Boundary {
    const vgic = this.vm.vgic!;
    touch(this.vm.oid);
    if (this.pc === 1) {
      // update_affinity: the map its_get_vlpi gave, with the new vCPU's vPE
      const map = this.info.map;
      const vpe = vgic.itsVm?.vpes[this.vpeIdx];
      this.pc = 0;
      if (map !== null && vpe !== undefined) {
        map.vpe = vpe;
        return this.call(itsMapVlpi(this.vm.kvm.hostIrq.genirq, this.hostIrq, map));
      }
    }
    const o = vgic.v4Ops.shift();
    if (o === undefined) return this.finish();
    const g = this.vm.kvm.hostIrq.genirq;
    switch (o.kind) {
      case 'prop':
        return this.call(itsPropUpdateVlpi(g, o.hostIrq, o.config, o.inv));
      case 'pending':
        return this.call(irqSetIrqchipState(g, o.hostIrq, 'PENDING', o.pending));
      case 'unmap':
        return this.call(itsUnmapVlpi(g, o.hostIrq));
      case 'affinity':
        this.info.map = null;
        this.vpeIdx = o.vcpu;
        this.hostIrq = o.hostIrq;
        this.pc = 1;
        return this.call(itsGetVlpi(g, o.hostIrq, this.info));
      default: {
        const vpe = vgic.itsVm?.vpes[o.vcpu];
        const v4 = this.vm.kvm.hostIrq.version === 'v3' ? this.vm.kvm.hostIrq.v4 : null;
        if (vpe === undefined || v4 === null) return this.step();
        return this.call(itsInvallVpe(v4, vpe));
      }
    }
  }

  protected override catch_(e: unknown): boolean {
    if (!(e instanceof ErrnoError)) return false;
    this.failed++;
    this.vm.vgic!.v4OpErrors++;
    this.pc = 0;
    return true;
  }

  protected override unwind(): void {
    this.vm.vgic!.v4OpsRunning = false;
  }

  private finish(): Boundary {
    this.vm.vgic!.v4OpsRunning = false;
    return this.return_(this.failed);
  }
}
