// The guest's ITS driver (irq-gic-v3-its.c subset) against KVM's emulated ITS: what its boot leaves in the vITS and
// the vGIC (tables, collections per vCPU, devices, LPIs enabled on their target), that every command it wrote was
// accepted, and that an MSI of each event reaches the handler on the event's vCPU.
import { describe, expect, it } from 'vitest';
import { itsGuestMachine, LpiHandler } from '../../test/fixtures/itsGuest.js';
import { KVM_MSI_VALID_DEVID, KVM_SIGNAL_MSI, kvmMsi } from '../abi/kvm.js';
import { createGuest } from '../createGuest.js';
import { findIte, findItsDevice } from '../kvm/vgic/vgicIts.js';
import { createHost } from '../machine.js';
import { ModelError } from '../sim/errors.js';

describe('GuestItsDriver (its_init, its_cpu_init, its_create_device, its_irq_domain_activate, lpi_update_config)', () => {
  it('two vCPUs: collections 0 and 1, device 7’s events on LPIs 8192 (vCPU 0) and 8200 (vCPU 1); each MSI runs on its vCPU', () => {
    const h0 = new LpiHandler('ev0');
    const h1 = new LpiHandler('ev3');
    const events = [
      { eventId: 0, lpi: 8192, handler: h0 },
      { eventId: 3, lpi: 8200, target: 1, handler: h1 },
    ];
    const { host, guest, p, vm, kvmVm } = itsGuestMachine(2, [{ deviceId: 7, events }]);
    const its = kvmVm.vgicIts[0]!;
    const vgic = kvmVm.vgic!;
    expect([its.enabled, its.commandErrors]).toEqual([true, 0]);
    expect(its.collectionList.map((c) => [c.collectionId, c.targetAddr])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(findItsDevice(its, 7)?.numEventidBits).toBe(2);
    expect(vgic.vcpus.map((v) => v.lpisEnabled)).toEqual([true, true]);
    const lpi = findIte(its, 7, 3)!.irq!;
    expect([lpi.intid, lpi.enabled, lpi.priority, lpi.targetVcpuIdx]).toEqual([8200, true, 0xa0, 1]);
    expect(guest.its!.msis.map((m) => [m.deviceId, m.data, m.address])).toEqual([
      [7, 0, 0x0809_0040],
      [7, 3, 0x0809_0040],
    ]);
    for (const m of [...guest.its!.msis, ...guest.its!.msis]) {
      const a = p.mem.alloc(kvmMsi.size);
      const msg = { address_lo: m.address, address_hi: 0, data: m.data, flags: KVM_MSI_VALID_DEVID, devid: m.deviceId };
      kvmMsi.write(p.mem.view(a, kvmMsi.size), { ...msg, pad: new Array(12).fill(0) });
      expect(p.ioctl(vm, KVM_SIGNAL_MSI, a)).toBe(1);
      host.settle();
    }
    expect([h0.handledOn, h1.handledOn]).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(guest.stats().unhandled).toBe(0);
  });

  it('refuses an LPI outside 8192..65535 and a target vCPU the guest lacks; needs the GICv3 driver', () => {
    const host = createHost({ gic: 'v3', cpus: 1 });
    const handler = new LpiHandler('x');
    const bad =
      (lpi: number, target = 0) =>
      () =>
        createGuest(host, {
          vcpus: 1,
          its: { devices: [{ deviceId: 0, events: [{ eventId: 0, lpi, target, handler }] }] },
        });
    expect(bad(8191)).toThrow(ModelError);
    expect(bad(65536)).toThrow(ModelError);
    expect(bad(8192, 1)).toThrow(ModelError);
    const v2 = createHost({ cpus: 1 });
    expect(() => createGuest(v2, { vcpus: 1, its: { devices: [] } })).toThrow(ModelError);
  });
});
