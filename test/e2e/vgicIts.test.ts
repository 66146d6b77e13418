// MSIs end to end on a GICv3 host: a VMM of raw ioctls builds a VM with a vGIC-v3 and a vITS
// (KVM_DEV_TYPE_ARM_VGIC_ITS at QEMU virt's VIRT_GIC_ITS), the guest's ITS driver (irq-gic-v3-its.c subset) maps
// device 0 event 0 to LPI 8192 through the emulated command queue, and the VMM delivers that MSI three ways:
// KVM_SIGNAL_MSI (vgic_its_inject_msi), and an irqfd on a GSI that KVM_SET_GSI_ROUTING routes as an MSI — first
// through the inject work (kvm_set_irq → kvm_set_msi: the translation cache is cold), then from irqfd_wakeup itself
// (kvm_arch_set_irq_inatomic finds the cached translation). Each time the guest's LPI handler runs and EOIs.
import { describe, expect, it } from 'vitest';
import {
  EFD_NONBLOCK,
  KVM_CAP_MSI_DEVID,
  KVM_CAP_SIGNAL_MSI,
  KVM_CHECK_EXTENSION,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_MSI_VALID_DEVID,
  KVM_SET_GSI_ROUTING,
  KVM_SIGNAL_MSI,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmMsi,
  type Process,
  VIRT_GIC_ITS,
} from '../../src/index.js';
import { kvmIrqfd } from '../../src/scenario/vmm.js';
import { itsGuestMachine, LpiHandler } from '../fixtures/itsGuest.js';

const LPI = 8192;
const MSI_GSI = 5;
const GITS_TRANSLATER = 0x1_0040;

/** struct kvm_msi of device 0 event 0: the doorbell GITS_TRANSLATER, data = EventID. */
function msiOf(p: Process): number {
  const a = p.mem.alloc(kvmMsi.size);
  const address = VIRT_GIC_ITS + GITS_TRANSLATER;
  kvmMsi.write(p.mem.view(a, kvmMsi.size), {
    address_lo: address,
    address_hi: 0,
    data: 0,
    flags: KVM_MSI_VALID_DEVID,
    devid: 0,
    pad: new Array(12).fill(0),
  });
  return a;
}

/** KVM_SET_GSI_ROUTING: GSI 0 stays SPI 32, GSI MSI_GSI becomes device 0 event 0's MSI. */
function routeMsi(p: Process, vm: number): void {
  const a = p.mem.alloc(kvmIrqRouting.size + 2 * kvmIrqRoutingEntry.size);
  kvmIrqRouting.write(p.mem.view(a, kvmIrqRouting.size), { nr: 2, flags: 0 });
  const e = (i: number) => p.mem.view(a + kvmIrqRouting.size + i * kvmIrqRoutingEntry.size, kvmIrqRoutingEntry.size);
  const pad = new Array(16).fill(0);
  kvmIrqRoutingEntry.write(e(0), {
    gsi: 0,
    type: KVM_IRQ_ROUTING_IRQCHIP,
    flags: 0,
    pad: 0,
    u0: 0,
    u1: 0,
    u2: 0,
    u3: 0,
    upad: pad,
  });
  kvmIrqRoutingEntry.write(e(1), {
    gsi: MSI_GSI,
    type: KVM_IRQ_ROUTING_MSI,
    flags: KVM_MSI_VALID_DEVID,
    pad: 0,
    u0: VIRT_GIC_ITS + GITS_TRANSLATER,
    u1: 0,
    u2: 0,
    u3: 0,
    upad: pad,
  });
  expect(p.ioctl(vm, KVM_SET_GSI_ROUTING, a)).toBe(0);
}

function itsMachine() {
  const handler = new LpiHandler('msi-dev0-ev0');
  const m = itsGuestMachine(1, [{ deviceId: 0, events: [{ eventId: 0, lpi: LPI, handler }] }]);
  return { ...m, handler };
}

describe('MSIs through the vITS to the guest as LPIs (vgic_its_inject_msi, kvm_set_msi, irqfd MSI routing)', () => {
  it('the guest maps device 0 event 0 to LPI 8192; KVM_SIGNAL_MSI and an MSI-routed irqfd each run its handler and EOI', () => {
    const m = itsMachine();
    const { host, guest, handler, p, vm, kvmVm } = m;
    const vgic = kvmVm.vgic!;
    const its = kvmVm.vgicIts[0]!;
    // the guest's boot: the ITS enabled, every command accepted, LPI 8192 enabled at priority 0xa0 on vCPU 0
    expect(its.enabled).toBe(true);
    expect(its.commandErrors).toBe(0);
    expect(its.creadr).toBe(its.cwriter);
    const lpi = vgic.vgicGetIrq(LPI)!;
    expect([lpi.enabled, lpi.priority, lpi.targetVcpuIdx]).toEqual([true, 0xa0, 0]);
    expect(p.ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI)).toBe(1);
    expect(p.ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID)).toBe(1);

    // an irqfd on a GSI that KVM_SET_GSI_ROUTING routes as device 0 event 0's MSI: the first signal finds the
    // translation cache cold (kvm_arch_set_irq_inatomic: -EWOULDBLOCK) and the inject work delivers it; vgic_its_resolve_lpi
    // caches the translation, so the second is injected from irqfd_wakeup itself
    routeMsi(p, vm);
    const efd = p.eventfd(0, EFD_NONBLOCK);
    kvmIrqfd(p, vm, efd, MSI_GSI);
    const irqfd = kvmVm.irqfds.items[0]!;
    expect(irqfd.irqEntry?.msi?.devid).toBe(0);
    const one = p.mem.alloc(8);
    p.mem.writeU64(one, 1n);
    expect(vgic.lpiTranslationCache.every((c) => c.irq === null)).toBe(true);
    expect(p.write(efd, one, 8)).toBe(8);
    host.settle();
    expect(handler.handled).toBe(1);
    expect(vgic.lpiTranslationCache[0]!.irq).toBe(lpi);
    expect(p.write(efd, one, 8)).toBe(8);
    host.settle();
    expect(handler.handled).toBe(2);

    // KVM_SIGNAL_MSI: 1 = delivered
    expect(p.ioctl(vm, KVM_SIGNAL_MSI, msiOf(p))).toBe(1);
    host.settle();
    expect(handler.handled).toBe(3);
    expect(irqfd.injections).toBe(2);
    expect(guest.driver.cpuStats[0]!.eoirWrites).toBe(3);
    expect(guest.stats().unhandled).toBe(0);
    expect(vgic.vcpus[0]!.apCount).toBe(0);
    expect(lpi.refcount).toBe(2); // the ITE's and the translation cache's
    expect(host.checkInvariants()).toEqual([]);
  });
});
