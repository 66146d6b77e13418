/**
 * The host's GICv4 API (drivers/irqchip/irq-gic-v4.c, Linux 6.1) that KVM's vgic-v4.c calls, on a GICv4.1: every
 * operation is irq_set_vcpu_affinity on an IRQ's descriptor with a struct its_cmd_info — the vPE's doorbell IRQ for
 * residency (its_vpe_4_1_irq_chip, its/itsVpe.ts), a forwarded LPI's IRQ for the vLPI mapping (its_irq_chip,
 * its/itsVlpi.ts) — or the vPE domain's allocation. Each returns a frame; a refused request is the errno
 * irq_set_vcpu_affinity throws (EINVAL).
 *
 * How KVM uses it (vgic-v4.c): vgic_v4_init → its_alloc_vcpu_irqs, then request_irq of each doorbell
 * (vgic_v4_teardown: free_irq of each, then its_free_vcpu_irqs); vgic_v4_load
 * (vcpu_load) → irq_set_affinity(vpe->irq, this CPU) (VMOVP) + its_make_vpe_resident; vgic_v4_commit (before entering
 * the guest) → its_commit_vpe; vgic_v4_put (vcpu_put, WFI) → its_make_vpe_non_resident(vpe, in WFI);
 * kvm_vgic_v4_set_forwarding → its_map_vlpi; kvm_vgic_v4_unset_forwarding → its_unmap_vlpi; what the guest's vITS
 * commands do to a forwarded vLPI (vgicV4Ops.ts): INV/INVALL → its_prop_update_vlpi (INVALL then its_invall_vpe),
 * INT/CLEAR → irq_set_irqchip_state, DISCARD/MAPD → its_unmap_vlpi, MOVI/MOVALL → its_get_vlpi + its_map_vlpi.
 */
import type { Frame } from '../../sim/frame.js';
import type { Genirq } from './genirq.js';
import type { ItsVlpiMap, LpiCmdInfo } from './its/itsVlpi.js';
import type { HostGicV4, ItsVm, ItsVpe, VpeCmdInfo } from './its/itsVpe.js';
import { ItsVpeIrqDomainAlloc, ItsVpeIrqDomainFree } from './its/itsVpe.js';
import { irqSetVcpuAffinity } from './manage.js';

/** its_alloc_vcpu_irqs: the VM's doorbell IRQs, vPEIDs, VPTs and VCONF, each vPE VMAPP'd; the first IRQ, or -1. */
export function itsAllocVcpuIrqs(v4: HostGicV4, vm: ItsVm): Frame<number> {
  return new ItsVpeIrqDomainAlloc(v4.genirq, v4.vpeChip, vm);
}

/** its_free_vcpu_irqs: every vPE VMAPP'd away and its resources given back (the doorbells freed first). */
export function itsFreeVcpuIrqs(v4: HostGicV4, vm: ItsVm): Frame {
  return new ItsVpeIrqDomainFree(v4, vm);
}

/** its_send_vpe_cmd. */
function itsSendVpeCmd(v4: HostGicV4, vpe: ItsVpe, info: VpeCmdInfo): Frame {
  return irqSetVcpuAffinity(v4.genirq, vpe.irq, info);
}

/** its_make_vpe_resident (on the calling CPU; preemption disabled): SCHEDULE_VPE. The caller sets vpe.resident. */
export function itsMakeVpeResident(v4: HostGicV4, vpe: ItsVpe, g0en: boolean, g1en: boolean): Frame {
  return itsSendVpeCmd(v4, vpe, { cmdType: 'SCHEDULE_VPE', g0en, g1en });
}

/** its_make_vpe_non_resident: DESCHEDULE_VPE with GICv4.1's req_db; vpe.pendingLast is what it read back. */
export function itsMakeVpeNonResident(v4: HostGicV4, vpe: ItsVpe, db: boolean): Frame {
  return itsSendVpeCmd(v4, vpe, { cmdType: 'DESCHEDULE_VPE', reqDb: db });
}

/** its_commit_vpe: COMMIT_VPE (GICR_VPENDBASER.Dirty polled clear). */
export function itsCommitVpe(v4: HostGicV4, vpe: ItsVpe): Frame {
  return itsSendVpeCmd(v4, vpe, { cmdType: 'COMMIT_VPE' });
}

/** its_invall_vpe: INVALL_VPE — on GICv4.1 the redistributor re-reads the vPE's whole VCONF (GICR_INVALLR). */
export function itsInvallVpe(v4: HostGicV4, vpe: ItsVpe): Frame {
  return itsSendVpeCmd(v4, vpe, { cmdType: 'INVALL_VPE' });
}

/** its_map_vlpi: the LPI of Linux IRQ `irq` becomes vINTID map.vintid of map.vpe. */
export function itsMapVlpi(g: Genirq, irq: number, map: ItsVlpiMap): Frame {
  const info: LpiCmdInfo = { cmdType: 'MAP_VLPI', map };
  return irqSetVcpuAffinity(g, irq, info);
}

/** its_get_vlpi: fills info.map with the IRQ's current mapping. */
export function itsGetVlpi(g: Genirq, irq: number, info: { cmdType: 'GET_VLPI'; map: ItsVlpiMap | null }): Frame {
  return irqSetVcpuAffinity(g, irq, info);
}

/** its_unmap_vlpi: back to a physical LPI (irq_set_vcpu_affinity with a NULL info). */
export function itsUnmapVlpi(g: Genirq, irq: number): Frame {
  return irqSetVcpuAffinity(g, irq, null);
}

/** its_prop_update_vlpi: the vLPI's configuration byte (priority, enable), with an INV when `inv`. */
export function itsPropUpdateVlpi(g: Genirq, irq: number, config: number, inv: boolean): Frame {
  const info: LpiCmdInfo = { cmdType: inv ? 'PROP_UPDATE_AND_INV_VLPI' : 'PROP_UPDATE_VLPI', config };
  return irqSetVcpuAffinity(g, irq, info);
}
