// GSI routing and MSIs through the VM ioctls: KVM_SET_GSI_ROUTING (kvm_vm_ioctl, kvm_set_irq_routing,
// setup_routing_entry, arm64 kvm_set_routing_entry), KVM_SIGNAL_MSI (kvm_send_userspace_msi, kvm_set_msi,
// vgic_its_inject_msi, vgic_msi_to_its, vgic_its_resolve_lpi), the default routing vgic_init installs
// (kvm_vgic_setup_default_irq_routing) and the irqfd's snapshot of its entry (irqfd_update).
import { describe, expect, it } from 'vitest';
import { ITS_BASE, ItsProgrammer, itsVm } from '../../test/fixtures/itsSetup.js';
import {
  buildVm,
  createDevice,
  createVm,
  errnoOf,
  irqfd,
  place,
  setAttr,
  setup,
} from '../../test/fixtures/kvmSetup.js';
import {
  KVM_CAP_IRQ_ROUTING,
  KVM_CAP_SIGNAL_MSI,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VCPU,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_MSI_VALID_DEVID,
  KVM_SET_GSI_ROUTING,
  KVM_SIGNAL_MSI,
  type KvmIrqRoutingEntry,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmMsi,
} from '../abi/kvm.js';
import type { Process } from '../host/process.js';
import { kvmIrqMapGsi } from './irqRouting.js';

const DOORBELL = ITS_BASE + 0x1_0040;
const PAD16 = new Array(16).fill(0);

const spi = (gsi: number, pin: number, irqchip = 0, flags = 0): KvmIrqRoutingEntry => ({
  gsi,
  type: KVM_IRQ_ROUTING_IRQCHIP,
  flags,
  pad: 0,
  u0: irqchip,
  u1: pin,
  u2: 0,
  u3: 0,
  upad: PAD16,
});
const msi = (gsi: number, devid: number, data: number, flags = KVM_MSI_VALID_DEVID): KvmIrqRoutingEntry => ({
  gsi,
  type: KVM_IRQ_ROUTING_MSI,
  flags,
  pad: 0,
  u0: DOORBELL,
  u1: 0,
  u2: data,
  u3: devid,
  upad: PAD16,
});

function setRouting(
  p: Process,
  vm: number,
  entries: readonly KvmIrqRoutingEntry[],
  nr = entries.length,
  flags = 0,
): number {
  const a = p.mem.alloc(kvmIrqRouting.size + Math.max(entries.length, 1) * kvmIrqRoutingEntry.size);
  kvmIrqRouting.write(p.mem.view(a, kvmIrqRouting.size), { nr, flags });
  entries.forEach((e, i) => {
    kvmIrqRoutingEntry.write(p.mem.view(a + 8 + i * 48, 48), e);
  });
  return p.ioctl(vm, KVM_SET_GSI_ROUTING, a);
}

function signalMsi(
  p: Process,
  vm: number,
  devid: number,
  data: number,
  flags = KVM_MSI_VALID_DEVID,
  address = DOORBELL,
): number {
  const a = place(
    p,
    kvmMsi.encode({ address_lo: address, address_hi: 0, data, flags, devid, pad: new Array(12).fill(0) }),
  );
  return p.ioctl(vm, KVM_SIGNAL_MSI, a);
}

describe('KVM_SET_GSI_ROUTING (kvm_set_irq_routing)', () => {
  it('KVM_CHECK_EXTENSION: IRQ_ROUTING answers KVM_MAX_IRQ_ROUTES, SIGNAL_MSI 1', () => {
    const s = setup({ gic: 'v3' });
    expect(s.p.ioctl(s.kvmFd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING)).toBe(4096);
    expect(s.p.ioctl(s.kvmFd, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI)).toBe(1);
  });

  it('vgic_init installs GSI i → SPI i for every SPI; a table set before it is replaced', () => {
    const s = setup();
    const vm = createVm(s);
    expect(setRouting(s.p, vm, [msi(3, 0, 0)])).toBe(0);
    const kvmVm = s.kvm.vms[0]!;
    expect(kvmIrqMapGsi(kvmVm, 3)[0]!.msi).not.toBeNull();
    s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const gic = createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    setAttr(s.p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    expect(kvmIrqMapGsi(kvmVm, 3)[0]!.pin).toBe(3);
    expect(kvmIrqMapGsi(kvmVm, 223)[0]!.pin).toBe(223);
    expect(kvmIrqMapGsi(kvmVm, 224)).toEqual([]);
  });

  it('EINVAL: more than KVM_MAX_IRQ_ROUTES entries, flags in the header, a GSI ≥ 4096, flags on an IRQCHIP entry, flags other than VALID_DEVID on an MSI one, a pin past the SPIs, irqchip 1, an unknown type, a GSI routed twice', () => {
    const s = setup({ gic: 'v3' });
    const vm = createVm(s);
    const p = s.p;
    expect(errnoOf(() => setRouting(p, vm, [], 4097))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [], 0, 1))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(4096, 0)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(0, 0, 0, 1)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [msi(0, 0, 0, 3)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(0, 988)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(0, 1, 1)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [{ ...spi(0, 1), type: 3 }]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(2, 1), spi(2, 5)]))).toBe('EINVAL');
    expect(errnoOf(() => setRouting(p, vm, [spi(2, 1), msi(2, 0, 0)]))).toBe('EINVAL');
    expect(s.kvm.vms[0]!.irqRouting).toBeNull(); // every failure left the (absent) table alone
    expect(setRouting(p, vm, [spi(0, 987), msi(4095, 1, 2)])).toBe(0);
    expect(s.kvm.vms[0]!.irqRouting!.nrRtEntries).toBe(4096);
  });

  it('EFAULT for a header or an entry array outside the caller’s memory', () => {
    const s = setup({ gic: 'v3' });
    const vm = createVm(s);
    expect(errnoOf(() => s.p.ioctl(vm, KVM_SET_GSI_ROUTING, 0x10))).toBe('EFAULT');
    const a = s.p.mem.alloc(8);
    kvmIrqRouting.write(s.p.mem.view(a, 8), { nr: 4000, flags: 0 });
    expect(errnoOf(() => s.p.ioctl(vm, KVM_SET_GSI_ROUTING, a))).toBe('EFAULT');
  });

  it('irqfd_update: an irqfd’s snapshot follows its GSI’s entry across routing changes', () => {
    const v = itsVm(1);
    const p = v.s.p;
    const efd = p.eventfd(0);
    irqfd(p, v.vm, efd, 7);
    const fd = v.kvmVm.irqfds.items[0]!;
    expect(fd.irqEntry?.pin).toBe(7);
    setRouting(p, v.vm, [msi(7, 1, 2)]);
    expect(fd.irqEntry?.msi?.data).toBe(2);
    setRouting(p, v.vm, [spi(1, 1)]);
    expect(fd.irqEntry).toBeNull();
  });

  it('kvm_set_irq_routing publishes a table that nothing writes again (rcu_assign_pointer): a write to it, a GSI’s list or an entry throws; the next table replaces it whole', () => {
    const v = itsVm(1);
    expect(setRouting(v.s.p, v.vm, [msi(7, 1, 2)])).toBe(0);
    const rt = v.kvmVm.irqRouting!;
    const e = kvmIrqMapGsi(v.kvmVm, 7)[0]!;
    expect(() => (rt.map[7] as unknown[]).push(e)).toThrow(TypeError);
    expect(() => rt.map.pop()).toThrow(TypeError);
    expect(() => Object.assign(e, { pin: 3 })).toThrow(TypeError);
    expect(() => Object.assign(e.msi!, { data: 3 })).toThrow(TypeError);
    expect(setRouting(v.s.p, v.vm, [msi(7, 1, 3)])).toBe(0);
    expect(v.kvmVm.irqRouting).not.toBe(rt);
    expect(kvmIrqMapGsi(v.kvmVm, 7)[0]!.msi!.data).toBe(3);
    expect(e.msi!.data).toBe(2); // the old table, as a reader that still holds it sees it
  });
});

describe('KVM_SIGNAL_MSI (kvm_send_userspace_msi → vgic_its_inject_msi)', () => {
  it('EINVAL without an in-kernel irqchip, or with flags other than KVM_MSI_VALID_DEVID', () => {
    const s = setup({ gic: 'v3' });
    const vm = createVm(s);
    expect(errnoOf(() => signalMsi(s.p, vm, 0, 0))).toBe('EINVAL');
    const v = itsVm(1);
    expect(errnoOf(() => signalMsi(v.s.p, v.vm, 0, 0, 2))).toBe('EINVAL');
  });

  it('ENODEV on a vGIC without an ITS (vgic_has_its)', () => {
    const s = setup();
    const { vm } = buildVm(s, 1);
    expect(errnoOf(() => signalMsi(s.p, vm, 0, 0))).toBe('ENODEV');
  });

  it('vgic_msi_to_its: EINVAL without VALID_DEVID, or for a doorbell that is no ITS frame', () => {
    const v = itsVm(1);
    expect(errnoOf(() => signalMsi(v.s.p, v.vm, 0, 0, 0))).toBe('EINVAL');
    expect(errnoOf(() => signalMsi(v.s.p, v.vm, 0, 0, KVM_MSI_VALID_DEVID, 0x0900_0000))).toBe('EINVAL');
  });

  it('vgic_its_resolve_lpi: EBUSY while the ITS is disabled or the target’s LPIs are; 0 (blocked) for an unmapped event; 1 delivered', () => {
    const v = itsVm(2);
    const p = v.s.p;
    expect(errnoOf(() => signalMsi(p, v.vm, 0, 0))).toBe('EBUSY');
    const g = new ItsProgrammer(v);
    g.enable();
    g.enableLpis(0); // PROPBASER is shared: MAPTI checks the LPI against its IDbits
    g.mapc(0, 0);
    g.mapc(1, 1);
    g.mapd(0, 4);
    g.mapti(0, 0, 8192, 1);
    expect(errnoOf(() => signalMsi(p, v.vm, 0, 0))).toBe('EBUSY'); // vCPU 1 has EnableLPIs = 0
    g.enableLpis(1);
    expect(signalMsi(p, v.vm, 0, 1)).toBe(0);
    expect(signalMsi(p, v.vm, 5, 0)).toBe(0);
    expect(signalMsi(p, v.vm, 0, 0)).toBe(1);
    expect(v.vgic.vgicGetIrq(8192)!.pendingLatch).toBe(true);
  });

  it('the translation cache answers before the ITS is even looked up, and is emptied by disabling the ITS', () => {
    const v = itsVm(1);
    const p = v.s.p;
    const g = new ItsProgrammer(v);
    g.standard();
    g.mapti(0, 0, 8192, 0);
    expect(signalMsi(p, v.vm, 0, 0)).toBe(1);
    expect(v.vgic.lpiTranslationCache[0]!.irq?.intid).toBe(8192);
    g.write(0, 0); // GITS_CTLR.Enabled = 0
    expect(v.vgic.lpiTranslationCache[0]!.irq).toBeNull();
    expect(errnoOf(() => signalMsi(p, v.vm, 0, 0))).toBe('EBUSY');
  });
});
