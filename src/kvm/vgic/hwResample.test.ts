/**
 * A forwarded (HW-mapped) level vIRQ made pending through its latch — an edge injection before the guest configured
 * the SPI as level, e.g. the line raised before the first KVM_RUN — must keep the physical INTID active while the
 * latch holds it pending: the guest's EOI of the HW=1 LR then deactivates an active INTID (GICv2 §5.4).
 */
import { describe, expect, it } from 'vitest';
import {
  buildVm,
  createDevice,
  irqfd,
  type KvmSetup,
  place,
  setAttr,
  u32Buf,
} from '../../../test/fixtures/kvmSetup.js';
import { DEV, ethernetDevice } from '../../../test/fixtures/vfioDevice.js';
import { EFD_NONBLOCK } from '../../abi/eventfd.js';
import {
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
  kvmArchForwardedIrq,
} from '../../abi/kvm.js';
import { createHost } from '../../machine.js';
import { mask, openVfioDevice, trigger, unmask, unmaskEventfd } from '../../scenario/vmm.js';
import { DefaultGuest } from '../guest.js';

/** DEV's level line 0 → guest SPI 48 (vINTID 80, level), edge line 1 → SPI 49 (vINTID 81, `level1` or edge). */
function preBoot(level1: boolean) {
  const guest = new DefaultGuest({ spis: [{ intid: 80 }, { intid: 81, edge: !level1 }] });
  const host = createHost({ cpus: 3, devices: [ethernetDevice()], guestFactory: guest });
  const p = host.process();
  const s: KvmSetup = { kernel: host.kernel, host: host.irq, kvm: host.kvm, p, guest, kvmFd: p.open('/dev/kvm') };
  const { vm, vcpus } = buildVm(s, 1);
  const dev = openVfioDevice(p, 7, DEV);
  const efd = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
  const resample = p.eventfd(0, EFD_NONBLOCK);
  mask(p, dev.device, 0);
  irqfd(p, vm, efd[0]!, 48, KVM_IRQFD_FLAG_RESAMPLE, resample);
  unmaskEventfd(p, dev.device, 0, resample);
  trigger(p, dev.device, 0, efd[0]!);
  unmask(p, dev.device, 0);
  irqfd(p, vm, efd[1]!, 49);
  trigger(p, dev.device, 1, efd[1]!);
  const kvfio = createDevice(p, vm, KVM_DEV_TYPE_VFIO);
  setAttr(p, kvfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, u32Buf(p, dev.group));
  const fwd = (index: number) =>
    place(p, kvmArchForwardedIrq.encode({ fd: dev.device, irq_index: index, guest_irq: 48 + index }));
  return {
    host,
    guest,
    hw: host.device(DEV),
    assign: (index: number) => setAttr(p, kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ, fwd(index)),
    boot: () => {
      p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
      host.settle();
    },
    virq: (intid: number) => host.kvm.vms[0]!.vgic!.vgicGetIrq(intid)!,
  };
}

describe('a forwarded line raised before the first KVM_RUN', () => {
  it('level line: the latched vIRQ is delivered once and its EOI deactivates an active INTID', () => {
    const f = preBoot(false);
    expect(f.assign(0)).toBe(0);
    f.hw.assert(0);
    f.host.run(300_000);
    f.hw.deassert(0);
    f.host.settle();
    // the SPI is still edge (vgic_init's default): the injection set the latch, the host left INTID 80 active
    expect(f.virq(80).pendingLatch).toBe(true);
    expect(f.host.irq.gic.distributor.isActive(80)).toBe(true);
    f.boot();
    expect(f.guest.stats[0]!.byIntid.get(80)).toBe(1);
    expect(f.host.irq.gic.distributor.isActive(80)).toBe(false);
    expect(f.host.checkInvariants()).toEqual([]);
  });

  it('edge line onto a level vINTID, raised before and after boot: every EOI deactivates an active INTID', () => {
    const f = preBoot(true);
    expect(f.assign(1)).toBe(0);
    f.hw.pulse(1);
    f.host.settle();
    f.boot();
    for (let i = 0; i < 3; i++) {
      f.hw.pulse(1);
      f.host.settle();
    }
    expect(f.guest.stats[0]!.byIntid.get(81)).toBe(4);
    expect(f.host.irq.gic.distributor.isActive(81)).toBe(false);
    expect(f.host.checkInvariants()).toEqual([]);
  });
});
