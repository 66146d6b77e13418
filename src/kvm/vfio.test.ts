import { describe, expect, it } from 'vitest';
import { fixture, GSI, PERIOD, teardownClean, totals } from '../../test/fixtures/fwdFixture.js';
import { attr, createDevice, errnoOf, hasAttr, place, setAttr, u32Buf } from '../../test/fixtures/kvmSetup.js';
import {
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_DEV_VFIO_GROUP_DEL,
  KVM_GET_DEVICE_ATTR,
  kvmArchForwardedIrq,
} from '../abi/kvm.js';
import { KvmVfio } from './vfio.js';

describe('kvm-vfio forwarding: the end-to-end forwarded path', () => {
  it('level: 1000 IRQs handled once each, 0 maintenance exits, 0 resamples, 0 VFIO unmasks; the guest EOI deactivates', () => {
    const f = fixture();
    expect(f.assign(0)).toBe(0);
    const desc = f.host.devices[0]!.descs[0]!;
    expect(desc.forwardedToVcpu).toBe(true);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hwintid).toBe(80); // the INTID, not the Linux IRQ number
    expect(desc.irq).not.toBe(80);
    const before = totals(f);
    f.raise(0, 1000);
    f.host.settle();
    const t = totals(f);
    expect(t.handled[0]).toBe(1000);
    expect(t.noStatus[0]).toBe(0);
    expect(t.maintenance - before.maintenance).toBe(0);
    expect(t.unmasks - before.unmasks).toBe(0);
    expect(t.consumerCalls[0]! - before.consumerCalls[0]!).toBe(1000); // delivered to KVM by a direct call
    expect(t.signals[0]! - before.signals[0]!).toBe(0); // not through the trigger eventfd
    expect(f.host.irq.gic.distributor.isActive(80)).toBe(false);
    expect(f.host.checkInvariants()).toEqual([]);
    teardownClean(f);
  });

  it('edge: 1000 IRQs handled once each with no maintenance exit', () => {
    const f = fixture();
    f.assign(1);
    f.raise(1, 1000);
    f.host.settle();
    const t = totals(f);
    expect(t.handled[1]).toBe(1000);
    expect(t.maintenance).toBe(0);
    teardownClean(f);
  });

  it('the normal path for comparison: one maintenance exit and one VFIO unmask per level IRQ', () => {
    const f = fixture();
    const before = totals(f);
    f.raise(0, 100);
    f.host.settle();
    const t = totals(f);
    expect(t.handled[0]).toBe(100);
    expect(t.maintenance - before.maintenance).toBe(100);
    expect(t.unmasks - before.unmasks).toBe(100);
    teardownClean(f);
  });
});

describe('kvm-vfio forwarding follows the guest retargeting the vIRQ', () => {
  it('delivers every IRQ, those after the retarget on vCPU 1', () => {
    const f = fixture({ vcpus: 2 });
    f.assign(0);
    const start = f.host.engine.now + 1000;
    f.raise(0, 40, start);
    f.guest.scheduleRetarget({ at: start + 20 * PERIOD - PERIOD / 2, intid: 80, target: 1 });
    f.host.settle();
    const drv = f.guest.devices[0]!;
    expect(drv.handled).toBe(40);
    expect(drv.noStatus).toBe(0);
    expect([0, 1].map((v) => f.guest.driver.kstatIrqsCpu(drv.intid, v))).toEqual([20, 20]);
    expect(f.host.devices[0]!.descs[0]!.forwardedToVcpu).toBe(true);
    teardownClean(f);
  });
});

describe('kvm-vfio attributes and errnos (the issue table)', () => {
  it('KVM_HAS_DEVICE_ATTR answers 0 for the new attributes, GET gives EPERM, unknown ones ENXIO', () => {
    const f = fixture();
    const { p } = f.s;
    expect(hasAttr(p, f.kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ)).toBe(0);
    expect(hasAttr(p, f.kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ)).toBe(0);
    expect(errnoOf(() => hasAttr(p, f.kvfio, KVM_DEV_VFIO_DEVICE, 3))).toBe('ENXIO');
    expect(errnoOf(() => p.ioctl(f.kvfio, KVM_GET_DEVICE_ATTR, attr(p, KVM_DEV_VFIO_DEVICE, 1, 0)))).toBe('EPERM');
    expect(errnoOf(() => setAttr(p, f.kvfio, 9, 1, 0))).toBe('ENXIO');
    expect(errnoOf(() => setAttr(p, f.kvfio, KVM_DEV_VFIO_DEVICE, 7, 0))).toBe('ENXIO');
  });

  it('EFAULT, EBADF, EINVAL (not VFIO, bad index, bad guest_irq), EEXIST, ENOENT', () => {
    const f = fixture();
    const { p } = f.s;
    const set = (fd: number, index: number, gsi: number, a = KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ) =>
      setAttr(
        p,
        f.kvfio,
        KVM_DEV_VFIO_DEVICE,
        a,
        place(p, kvmArchForwardedIrq.encode({ fd, irq_index: index, guest_irq: gsi })),
      );
    expect(errnoOf(() => setAttr(p, f.kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ, 0x10))).toBe(
      'EFAULT',
    );
    expect(errnoOf(() => set(77, 0, GSI[0]!))).toBe('EBADF');
    expect(errnoOf(() => set(f.efd[0]!, 0, GSI[0]!))).toBe('EINVAL');
    expect(errnoOf(() => set(f.dev.device, 2, GSI[0]!))).toBe('EINVAL');
    expect(errnoOf(() => set(f.dev.device, 0, 5000))).toBe('EINVAL');
    expect(errnoOf(() => set(f.dev.device, 0, GSI[0]!, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ))).toBe('ENOENT');
    const refs = () => f.s.kernel.refs.list('vfio_device')[0]!.refs;
    const before = refs();
    expect(set(f.dev.device, 0, GSI[0]!)).toBe(0);
    expect(set(f.dev.device, 1, GSI[1]!)).toBe(0);
    expect(refs()).toBe(before + 1); // exactly one kvm-vfio reference per assigned device
    f.deassign(1);
    expect(errnoOf(() => set(f.dev.device, 0, GSI[0]!))).toBe('EEXIST');
    // the vIRQ is taken by another physical IRQ
    expect(errnoOf(() => set(f.dev.device, 1, GSI[0]!))).toBe('EEXIST');
    f.deassign(0);
    expect(refs()).toBe(before); // the device's last forwarded IRQ dropped it
  });

  it('EPERM when the device group was not added; group add/del give EEXIST, ENOENT, EBADF, EINVAL', () => {
    const f = fixture();
    const { p } = f.s;
    const grp = (a: number, fd: number) => setAttr(p, f.kvfio, KVM_DEV_VFIO_GROUP, a, u32Buf(p, fd));
    expect(errnoOf(() => grp(KVM_DEV_VFIO_GROUP_ADD, f.dev.group))).toBe('EEXIST');
    expect(errnoOf(() => grp(KVM_DEV_VFIO_GROUP_ADD, 99))).toBe('EBADF');
    expect(errnoOf(() => grp(KVM_DEV_VFIO_GROUP_ADD, f.efd[0]!))).toBe('EINVAL');
    expect(grp(KVM_DEV_VFIO_GROUP_DEL, f.dev.group)).toBe(0);
    expect(errnoOf(() => grp(KVM_DEV_VFIO_GROUP_DEL, f.dev.group))).toBe('ENOENT');
    expect(errnoOf(() => f.assign(0))).toBe('EPERM');
  });

  it('EBUSY for a second kvm-vfio device in the VM', () => {
    const f = fixture();
    expect(errnoOf(() => createDevice(f.s.p, f.vm, KVM_DEV_TYPE_VFIO))).toBe('EBUSY');
  });
});

describe('closing kvm-vfio while a forwarded level IRQ is being handled', () => {
  for (const busy of [false, true]) {
    it(`falls back to the normal path without losing an IRQ (${busy ? 'busy' : 'idle'} guest)`, () => {
      const f = fixture({ busy });
      f.assign(0);
      f.raise(0, 12);
      f.host.engine.runUntil(() => f.guest.devices[0]!.handled >= 3, 'the third delivery');
      f.host.run(200);
      const h = f.s.p.thread('closer', 0).closeAsync(f.kvfio);
      f.host.run(12 * PERIOD);
      expect(h.result()).toBe(0);
      const t = totals(f);
      expect(t.handled[0]).toBe(12);
      expect(t.noStatus[0]).toBe(0);
      expect(f.host.devices[0]!.descs[0]!.forwardedToVcpu).toBe(false);
      expect(f.host.checkInvariants()).toEqual([]);
    });
  }
});

describe('kvm-vfio teardown in every order', () => {
  const steps = ['deassign', 'group-del', 'close-device', 'close-kvm-vfio', 'close-vm'] as const;
  function permutations<T>(xs: readonly T[]): T[][] {
    if (xs.length <= 1) return [xs.slice()];
    return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((r) => [x, ...r]));
  }
  for (const order of permutations(steps)) {
    it(order.join(' → '), () => {
      const f = fixture();
      const { p } = f.s;
      f.assign(0);
      f.assign(1);
      f.raise(0, 3);
      f.raise(1, 3, f.host.engine.now + PERIOD / 2);
      f.host.run(PERIOD + 5000); // IRQs in flight
      for (const st of order) {
        const ignore = (g: () => unknown) => errnoOf(g); // a step may legitimately fail (ENOENT, EBADF) after another
        if (st === 'deassign') ignore(() => f.deassign(0));
        if (st === 'group-del')
          ignore(() => setAttr(p, f.kvfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, u32Buf(p, f.dev.group)));
        if (st === 'close-device') p.close(f.dev.device);
        if (st === 'close-kvm-vfio') p.close(f.kvfio);
        if (st === 'close-vm') p.close(f.vm);
      }
      f.host.settle();
      const kv = f.host.kvm.vms[0]?.devices.find((d) => d.private_ instanceof KvmVfio);
      if (kv !== undefined && !kv.gone) expect((kv.private_ as KvmVfio).devices).toEqual([]);
      teardownClean(f);
    });
  }
});
