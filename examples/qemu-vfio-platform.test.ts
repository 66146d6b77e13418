/**
 * QEMU's vfio-platform sequence runs to completion on the model (hw/vfio/platform.c vfio_start_irqfd_injection,
 * hw/intc/arm_gic_kvm.c kvm_arm_gic_put with error_abort, accel/kvm/kvm-all.c kvm_cpu_exec's kick handling).
 */
import { describe, expect, it } from 'vitest';
import { KVM_EXIT_INTR } from '../src/index.js';
import { runQemu } from './qemu-vfio-platform.js';

/** `names` appear in `log` in this order (other calls may sit between them). */
function inOrder(log: readonly string[], names: readonly string[]): boolean {
  let i = 0;
  for (const line of log) if (i < names.length && line.startsWith(`${names[i]} =`)) i++;
  return i === names.length;
}

describe('examples/qemu-vfio-platform.ts', () => {
  it("replays QEMU's order; every reset write of kvm_arm_gic_put succeeds (CPU_REGS included); 10 IRQs reach the guest", () => {
    const r = runQemu(10);
    const { log } = r.vmm;
    expect(
      inOrder(log, [
        'KVM_CREATE_VM',
        'KVM_CREATE_VCPU',
        'KVM_ARM_VCPU_INIT',
        'KVM_SET_DEVICE_ATTR(NR_IRQS)',
        'KVM_SET_DEVICE_ATTR(CTRL_INIT)',
        'VFIO_SET_IOMMU',
        'VFIO_IOMMU_GET_INFO',
        'VFIO_IOMMU_GET_INFO',
        'VFIO_IOMMU_MAP_DMA',
        'KVM_SET_DEVICE_ATTR(VFIO_FILE_ADD)',
        'VFIO_GROUP_GET_DEVICE_FD',
        'KVM_SET_DEVICE_ATTR(ADDR DIST)',
        'KVM_IRQFD',
        'VFIO_DEVICE_SET_IRQS(TRIGGER)',
        'VFIO_DEVICE_SET_IRQS(UNMASK)',
        'KVM_SET_DEVICE_ATTR(DIST_REGS)',
        'KVM_SET_DEVICE_ATTR(CPU_REGS)',
        'KVM_RUN',
      ]),
    ).toBe(true);
    const cpuRegs = log.filter((l) => l.startsWith('KVM_SET_DEVICE_ATTR(CPU_REGS)'));
    expect(cpuRegs).toHaveLength(8); // CTLR, PMR, BPR, ABPR, APR0..3 of vCPU 0
    expect(cpuRegs.every((l) => l.endsWith('= 0'))).toBe(true);
    // the only failures are the probes QEMU expects to fail: the GICv3 test
    expect(log.filter((l) => !/= \d+$/.test(l))).toEqual(['KVM_CREATE_DEVICE = ENODEV', 'KVM_RUN = EINTR']);
    expect(log).toContain('KVM_CHECK_EXTENSION(MP_STATE) = 0');
    expect(r.iovaRanges).toHaveLength(2);
    expect(r.handled).toBe(10);
    expect(r.kickExitReason).toBe(KVM_EXIT_INTR);
  });

  it('the counters: one IRQ exit and one maintenance exit per level IRQ, one return to QEMU (KVM_EXIT_INTR); clean teardown', () => {
    const r = runQemu(10);
    const s = r.vmm.host.vcpuStats(r.vmm.p, r.vcpuFd);
    expect(s.exits.IRQ).toBe(10);
    expect(s.exits.MAINTENANCE).toBe(10);
    expect(s.userspaceExits).toEqual({ KVM_EXIT_INTR: 1 });
    expect(s.stat.signalExits).toBe(1);
    expect(r.vmm.host.checkInvariants()).toEqual([]);
    r.vmm.p.exit();
    expect(r.vmm.host.checkInvariants({ teardown: true })).toEqual([]);
  });
});
