// vgic-v4.c's VM and vCPU life cycle (vgic_v4_init / teardown, vgic_v4_load / put / commit) and
// kvm_vgic_v4_set_forwarding's "not ours: 0" cases, on the GICv4.1 machine of test/fixtures/vgicV4Setup.ts.
import { describe, expect, it } from 'vitest';
import { itsGuestMachine } from '../../../test/fixtures/itsGuest.js';
import { forwardedMsi, LPI, v41 } from '../../../test/fixtures/vgicV4Setup.js';
import { actionsOf } from '../../host/irq/irqDesc.js';

describe('vgic_v4_init', () => {
  it('gives each vCPU a vPE and requests its doorbell with vgic_v4_doorbell_handler (left enabled on GICv4.1)', () => {
    const { host, kvmVm } = itsGuestMachine(2, [], v41(4));
    const itsVm = kvmVm.vgic!.itsVm!;
    expect(itsVm.vpes).toHaveLength(2);
    for (const vpe of itsVm.vpes) {
      const desc = host.irq.genirq.desc(vpe.irq);
      expect(actionsOf(desc).map((a) => a.name)).toEqual(['vcpu']);
      expect(desc.depth).toBe(0);
    }
  });

  it('fails KVM_DEV_ARM_VGIC_CTRL_INIT with ENOMEM when its_alloc_vcpu_irqs finds too few vPEIDs', () => {
    expect(() => itsGuestMachine(2, [], v41(1))).toThrow(/ENOMEM/);
  });

  it('does nothing without a GICv4.1 host (kvm_vgic_global_state.has_gicv4 false)', () => {
    const { kvmVm } = itsGuestMachine(1, []);
    expect(kvmVm.vgic!.itsVm).toBeNull();
  });
});

describe('vgic_v4_load / vgic_v4_put / vgic_v4_commit', () => {
  it('a running vCPU’s vPE is resident and ready on the CPU it runs on (VMOVP there first)', () => {
    const { kvmVm, host } = forwardedMsi({ busy: true });
    host.run(10_000);
    const vpe = kvmVm.vgic!.itsVm!.vpes[0]!;
    expect(vpe.resident).toBe(true);
    expect(vpe.ready).toBe(true);
    expect(vpe.colIdx).toBe(1);
  });

  it('a vCPU blocked in WFI is non-resident (kvm_vcpu_wfi: IN_WFI, put with the doorbell)', () => {
    const { kvmVm, vcpu } = forwardedMsi();
    expect(vcpu.wfiSleeping).toBe(true);
    expect(vcpu.inWfi).toBe(true);
    expect(kvmVm.vgic!.itsVm!.vpes[0]!.resident).toBe(false);
  });
});

describe('kvm_vgic_v4_set_forwarding', () => {
  it('forwards nothing without GICv4 direct MSIs: the MSI stays a software-injected LPI through the eventfd', () => {
    const { host, kvmVm, hw, handler, ctx } = forwardedMsi({ nrVpes: 0 });
    expect(kvmVm.vgic!.lpis.get(LPI)!.hw).toBe(false);
    hw.fire(0);
    host.settle();
    expect(handler.handled).toBe(1);
    expect(ctx.signals).toBe(1);
  });
});
