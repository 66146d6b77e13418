// A passed-through MSI end to end, host to guest, on a GICv3 host with a vITS — QEMU's vfio-pci MSI path: the VMM
// binds the function's MSI vector 0 to an eventfd (VFIO_DEVICE_SET_IRQS), routes a GSI as the guest's MSI
// (KVM_SET_GSI_ROUTING: doorbell GITS_TRANSLATER, the guest's DeviceID and EventID) and backs it with that eventfd
// (KVM_IRQFD). Each posted write of the function: host ITS → host LPI → vfio_msihandler → eventfd_signal →
// irqfd_wakeup → vITS translation (vgic_its_inject_msi, then from the translation cache) → guest LPI → the guest's
// handler and ICC_EOIR1_EL1.
import { describe, expect, it } from 'vitest';
import { EFD_NONBLOCK } from '../../src/abi/eventfd.js';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSI_IRQ_INDEX,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
} from '../../src/abi/vfio.js';
import {
  KVM_IRQ_ROUTING_MSI,
  KVM_MSI_VALID_DEVID,
  KVM_SET_GSI_ROUTING,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  VIRT_GIC_ITS,
} from '../../src/index.js';
import { kvmIrqfd, openVfioDevice, place } from '../../src/scenario/vmm.js';
import { itsGuestMachine, LpiHandler } from '../fixtures/itsGuest.js';

const NAME = '0000:01:00.0';
const HOST_DEVID = 0x0100;
/** The guest's view: QEMU's RID of the function on the guest bus, event 0 on LPI 8192. */
const GUEST_DEVID = 8;
const GSI = 0;

describe('vfio-pci MSI → irqfd (MSI route) → vITS → guest LPI', () => {
  it('each of 5 posted writes of the function runs the guest’s LPI handler once, and the guest EOIs it', () => {
    const handler = new LpiHandler('vfio-msi0');
    const events = [{ eventId: 0, lpi: 8192, handler }];
    const { host, guest, p, vm, kvmVm } = itsGuestMachine(1, [{ deviceId: GUEST_DEVID, events }], {
      msiDevices: [{ name: NAME, iommuGroup: 12, deviceId: HOST_DEVID, vectors: 4 }],
    });
    const h = openVfioDevice(p, 12, NAME);
    const efd = p.eventfd(0, EFD_NONBLOCK);
    const bytes = vfioIrqSetWithData(
      {
        flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 1,
      },
      vfioIrqSetEventfdData([efd]),
    );
    expect(p.ioctl(h.device, VFIO_DEVICE_SET_IRQS, place(p, bytes))).toBe(0);
    const r = p.mem.alloc(kvmIrqRouting.size + kvmIrqRoutingEntry.size);
    kvmIrqRouting.write(p.mem.view(r, kvmIrqRouting.size), { nr: 1, flags: 0 });
    kvmIrqRoutingEntry.write(p.mem.view(r + kvmIrqRouting.size, kvmIrqRoutingEntry.size), {
      gsi: GSI,
      type: KVM_IRQ_ROUTING_MSI,
      flags: KVM_MSI_VALID_DEVID,
      pad: 0,
      u0: guest.its!.msis[0]!.address,
      u1: 0,
      u2: guest.its!.msis[0]!.data,
      u3: GUEST_DEVID,
      upad: new Array(16).fill(0),
    });
    expect(p.ioctl(vm, KVM_SET_GSI_ROUTING, r)).toBe(0);
    kvmIrqfd(p, vm, efd, GSI);
    expect(guest.its!.msis[0]!.address).toBe(VIRT_GIC_ITS + 0x1_0040);

    const hw = host.msiDevice(NAME);
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
