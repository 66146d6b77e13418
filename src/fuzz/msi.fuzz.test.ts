import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KVM_CREATE_DEVICE,
  KVM_SET_DEVICE_ATTR,
  KVM_SIGNAL_MSI,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmMsi,
} from '../abi/kvm.js';
import { expectStep, FuzzMismatch, FuzzStats, u64Bytes } from './commands.js';
import { msiProperty, msiStart, msiTeardown } from './msiCommands.js';

describe('model-based ABI fuzzing, the MSI flavour (GICv3 + vITS + vfio-pci MSI/MSI-X)', () => {
  it('250 random sequences agree with msiModel, keep the invariants and tear down clean', () => {
    const stats = new FuzzStats();
    fc.assert(msiProperty(stats), { numRuns: 250, seed: 20261205 });
    expect(stats.sequences).toBeGreaterThanOrEqual(250);
    const c = (call: string, k: string) => stats.calls.get(call)?.get(k) ?? 0;
    // deep states: MSIs that reach an enabled vITS (0: no mapping) and a disabled one (vgic_its_resolve_lpi's EBUSY)
    expect(c('KVM_SIGNAL_MSI', 'ok')).toBeGreaterThan(10);
    expect(c('KVM_SIGNAL_MSI', 'EBUSY') + c('KVM_SIGNAL_MSI', 'ENODEV')).toBeGreaterThan(0);
    expect(c('PCI_SET_IRQS', 'ok')).toBeGreaterThan(100);
    // MSIs through the host ITS into vfio_msihandler (and on, through an irqfd's MSI route, to the vITS)
    expect(stats.msiSent).toBeGreaterThan(20);
    // vCPUs in KVM_RUN (the idle GICv3 guest) while the function fires; lock_all_vcpus' EBUSY on register access
    expect(c('KVM_RUN', 'ok')).toBeGreaterThan(10);
    expect(stats.msiSentRunning).toBeGreaterThan(5);
    expect(c('VGIC_V3:set', 'EBUSY') + c('VITS:set', 'EBUSY')).toBeGreaterThan(0);
    expect(c('KVM_IRQFD', 'EBUSY')).toBeGreaterThan(0);
    expect(c('KVM_SET_GSI_ROUTING', 'EINVAL')).toBeGreaterThan(0);
    expect(c('KVM_CREATE_DEVICE', 'EEXIST')).toBeGreaterThan(0);
  });

  it('a model that misses the vITS frame is caught: it predicts EINVAL (vgic_msi_to_its), KVM_SIGNAL_MSI gave EBUSY', () => {
    const stats = new FuzzStats();
    const { model, real } = msiStart(stats);
    const vm = model.fdsOf('vm')[0]!;
    const { p } = real;
    const vgic = model.createDevice(vm, 7, 0, false);
    const its = model.createDevice(vm, 8, 0, false);
    expect([vgic, its]).toEqual([
      { ok: true, value: 7 },
      { ok: true, value: 8 },
    ]);
    for (const type of [7, 8])
      p.ioctl(vm, KVM_CREATE_DEVICE, p.mem.allocBytes(kvmCreateDevice.encode({ type, fd: 0, flags: 0 })));
    // the ITS frame is set on the real machine only
    const base = p.mem.allocBytes(u64Bytes(0x0808_0000n));
    const attr = kvmDeviceAttr.encode({ flags: 0, group: 0, attr: 4n, addr: BigInt(base) }); // GRP_ADDR, ITS_ADDR_TYPE
    p.ioctl(8, KVM_SET_DEVICE_ATTR, p.mem.allocBytes(attr));
    const msi = kvmMsi.encode({
      address_lo: 0x0809_0040,
      address_hi: 0,
      data: 0,
      flags: 1,
      devid: 9,
      pad: Array(12).fill(0),
    });
    const exp = model.signalMsi(vm, { address: 0x0809_0040n, flags: 1 }, false);
    expect(exp).toEqual({ ok: false, errno: 'EINVAL' });
    const out = real.ioctlStruct(vm, KVM_SIGNAL_MSI, msi, false);
    expect(out).toEqual({ ok: false, errno: 'EBUSY' });
    expect(() => expectStep(real, 'KVM_SIGNAL_MSI', 'KVM_SIGNAL_MSI', exp, out)).toThrow(FuzzMismatch);
    msiTeardown(real);
  });

  it('teardown finds the pci function with MSI still enabled (a leaked vfio_msi_disable would show here)', () => {
    const { real } = msiStart(new FuzzStats());
    const d = real.host.msiDevices[0]!;
    d.hw.enabled = true; // as if process exit had not run vfio_pci_core_close_device's vfio_msi_disable
    expect(() => msiTeardown(real)).toThrow(/still has MSI enabled/);
  });
});
