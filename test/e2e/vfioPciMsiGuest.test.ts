// A passed-through MSI end to end, host to guest, on a GICv3 host with a vITS — QEMU's vfio-pci MSI path: the VMM
// binds the function's MSI vector 0 to an eventfd (VFIO_DEVICE_SET_IRQS), routes a GSI as the guest's MSI
// (KVM_SET_GSI_ROUTING: doorbell GITS_TRANSLATER, the guest's DeviceID and EventID) and backs it with that eventfd
// (KVM_IRQFD). Each posted write of the function: host ITS → host LPI → vfio_msihandler → eventfd_signal →
// irqfd_wakeup → vITS translation (vgic_its_inject_msi, then from the translation cache) → guest LPI → the guest's
// handler and ICC_EOIR1_EL1.
import { describe, expect, it } from 'vitest';
import { VIRT_GIC_ITS } from '../../src/index.js';
import { forwardedMsi } from '../fixtures/vgicV4Setup.js';

describe('vfio-pci MSI → irqfd (MSI route) → vITS → guest LPI', () => {
  it('each of 5 posted writes of the function runs the guest’s LPI handler once, and the guest EOIs it', () => {
    const { host, guest, kvmVm, handler, hw } = forwardedMsi({ nrVpes: 0 });
    expect(guest.its!.msis[0]!.address).toBe(VIRT_GIC_ITS + 0x1_0040);
    for (let i = 0; i < 5; i++) {
      hw.fire(0);
      host.settle();
    }
    expect(handler.handled).toBe(5);
    expect(guest.driver.cpuStats[0]!.eoirWrites).toBe(5);
    expect(kvmVm.irqfds.items[0]!.injections).toBe(5);
    expect(host.irq.genirq.badIrqs).toEqual([]);
    expect(host.checkInvariants()).toEqual([]);
  });
});
