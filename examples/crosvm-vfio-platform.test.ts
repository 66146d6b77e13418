/**
 * crosvm's vfio-platform sequence runs to completion on the model (arch/src/lib.rs generate_platform_bus,
 * devices/src/irqchip/kvm/aarch64.rs KvmKernelIrqChip::new / finalize, devices/src/vfio.rs).
 */
import { describe, expect, it } from 'vitest';
import { KVM_EXIT_INTR } from '../src/index.js';
import { runCrosvm } from './crosvm-vfio-platform.js';

describe('examples/crosvm-vfio-platform.ts', () => {
  it("replays crosvm's order (irqchip, VFIO, vCPUs, CTRL_INIT, then irqfd before VFIO's eventfds) and delivers 10 level IRQs", () => {
    const r = runCrosvm(10);
    const names = r.vmm.log.map((l) => l.split(' = ')[0]);
    const at = (n: string) => names.indexOf(n);
    // KvmKernelIrqChip::new before the VFIO devices, both before build_vm's vCPUs
    expect(at('KVM_CREATE_DEVICE')).toBeLessThan(at('VFIO_GROUP_GET_DEVICE_FD'));
    expect(at('VFIO_DEVICE_GET_INFO')).toBeLessThan(at('KVM_CREATE_VCPU'));
    expect(at('KVM_ARM_VCPU_INIT')).toBeLessThan(at('KVM_SET_DEVICE_ATTR(CTRL_INIT)'));
    // irq_chip.finalize before generate_platform_bus: KVM_IRQFD is EAGAIN until the vGIC is initialised
    expect(at('KVM_SET_DEVICE_ATTR(CTRL_INIT)')).toBeLessThan(at('KVM_IRQFD'));
    expect(at('KVM_IRQFD')).toBeLessThan(at('VFIO_DEVICE_SET_IRQS(TRIGGER)'));
    expect(at('VFIO_DEVICE_SET_IRQS(TRIGGER)')).toBeLessThan(at('VFIO_DEVICE_SET_IRQS(UNMASK)'));
    // the GICv3 attempt fails (GICv2 host) and the kick interrupts KVM_RUN; nothing else fails
    expect(r.vmm.log.filter((l) => !/= \d+$/.test(l))).toEqual(['KVM_CREATE_DEVICE = ENODEV', 'KVM_RUN = EINTR']);
    // KVM_CAP_ARM_PSCI_0_2 is 0 (guest PSCI calls are not served): the feature is not requested
    expect(r.vmm.log).toContain('KVM_CHECK_EXTENSION(ARM_PSCI_0_2) = 0');
    expect(r.handled).toBe(10);
    expect(r.kickExitReason).toBe(KVM_EXIT_INTR);
    const s = r.vmm.host.vcpuStats(r.vmm.p, r.vcpuFd);
    expect([s.exits.IRQ, s.exits.MAINTENANCE, s.userspaceExits.KVM_EXIT_INTR]).toEqual([10, 10, 1]);
    r.vmm.p.exit();
    expect(r.vmm.host.checkInvariants({ teardown: true })).toEqual([]);
  });
});
