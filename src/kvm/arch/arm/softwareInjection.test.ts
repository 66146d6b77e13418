// Software injection into a forwarded vIRQ (issue 14 item 2): the vIRQ is owned by its kvm-vfio consumer
// (kvm_vgic_set_owner), VFIO's handler delivers to it by a direct call, and every other rising level — an irqfd
// write, a second irqfd, a shared resamplefd, KVM_IRQ_LINE, VFIO loopback — is re-posted at the physical GIC
// (irq_set_irqchip_state(PENDING), as vgic_its_trigger_msi does for a forwarded vLPI), so it reaches the guest once,
// through the host, and every HW=1 list register names an active INTID.
import { describe, expect, it } from 'vitest';
import { type Fixture, fixture, teardownClean } from '../../../../test/fixtures/fwdFixture.js';
import { irqfd, spiLine, writeEventfd } from '../../../../test/fixtures/kvmSetup.js';
import { EFD_NONBLOCK } from '../../../abi/eventfd.js';
import { KVM_IRQFD_FLAG_RESAMPLE, VFIO_IRQ_SET_ACTION_TRIGGER } from '../../../abi/index.js';
import { setIrqNone } from '../../../scenario/vmm.js';

const VINTID = 80; // GSI 48, DEV's level line 0

function forwarded(line = 0): Fixture {
  const f = fixture();
  expect(f.assign(line)).toBe(0);
  f.host.settle();
  return f;
}

/**
 * Inject once by `how`, settle, and check the guest saw exactly one vIRQ on `line`, delivered by the host's
 * forwarded path.
 */
function expectDeliveredOnceByHardware(f: Fixture, how: () => void, line = 0): void {
  const drv = f.guest.devices[line]!;
  const plat = f.host.devices[0]!.vdev.irqs[line]!;
  const runs0 = drv.handled + drv.noStatus;
  const calls0 = plat.consumerCalls;
  const signals0 = plat.signals;
  how();
  f.host.settle();
  expect(drv.handled + drv.noStatus - runs0).toBe(1);
  expect(plat.consumerCalls - calls0).toBe(1); // the VFIO handler's direct call to its consumer
  expect(plat.signals - signals0).toBe(0); // and no trigger eventfd signal
  const dist = f.host.irq.gic.distributor;
  expect(dist.isActive(VINTID + line)).toBe(false);
  expect(dist.isPending(VINTID + line)).toBe(false);
  expect(f.host.kvm.vms[0]!.vgic!.hwLrInactive).toBe(0);
  expect(f.host.checkInvariants()).toEqual([]);
}

describe('software injection into a forwarded vIRQ is re-posted at the GIC (kvm_vgic_inject_irq, vgic_its_trigger_msi)', () => {
  it('a write to the irqfd eventfd of the forwarded GSI', () => {
    const f = forwarded();
    expectDeliveredOnceByHardware(f, () => writeEventfd(f.s.p, f.efd[0]!));
    teardownClean(f);
  });

  it('a second irqfd on the forwarded GSI', () => {
    const f = forwarded();
    const e = f.s.p.eventfd(0, EFD_NONBLOCK);
    expect(irqfd(f.s.p, f.vm, e, VINTID - 32)).toBe(0);
    expectDeliveredOnceByHardware(f, () => writeEventfd(f.s.p, e));
    teardownClean(f);
  });

  it('a resamplefd shared with an irqfd of the forwarded GSI (the ack of a normal level vIRQ signals it)', () => {
    const f = forwarded(1); // the edge line: vINTID 81, GSI 49
    const p = f.s.p;
    const [trig, shared] = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
    // a second resample irqfd on GSI 48 (line 0, normal path): its resampler signals f.resample and `shared`
    expect(irqfd(p, f.vm, trig, VINTID - 32, KVM_IRQFD_FLAG_RESAMPLE, shared)).toBe(0);
    expect(irqfd(p, f.vm, shared, VINTID + 1 - 32)).toBe(0);
    const drv0 = f.guest.devices[0]!;
    // line 0 raised once: the guest's EOI → EOI maintenance → kvm_notify_acked_irq → `shared` → irqfd of GSI 49
    expectDeliveredOnceByHardware(f, () => f.raise(0, 1), 1);
    expect(drv0.handled).toBe(1);
    teardownClean(f);
  });

  it('KVM_IRQ_LINE raising the forwarded SPI (lowering it is ignored: the owner drives the line)', () => {
    const f = forwarded();
    expectDeliveredOnceByHardware(f, () => expect(spiLine(f.s.p, f.vm, VINTID, 1)).toBe(0));
    expectDeliveredOnceByHardware(f, () => expect(spiLine(f.s.p, f.vm, VINTID, 1)).toBe(0));
    const drv = f.guest.devices[0]!;
    const runs = drv.handled + drv.noStatus;
    expect(spiLine(f.s.p, f.vm, VINTID, 0)).toBe(0);
    f.host.settle();
    expect(drv.handled + drv.noStatus).toBe(runs);
    teardownClean(f);
  });

  it('VFIO loopback (SET_IRQS TRIGGER, DATA_NONE) on the forwarded index', () => {
    const f = forwarded();
    expectDeliveredOnceByHardware(f, () => setIrqNone(f.s.p, f.dev.device, 0, VFIO_IRQ_SET_ACTION_TRIGGER));
    teardownClean(f);
  });
});

describe('ASSIGN of a vIRQ another in-kernel device owns (kvm_vgic_set_owner)', () => {
  it('EEXIST, and nothing is forwarded', () => {
    const f = fixture();
    const vgic = f.host.kvm.vms[0]!.vgic!;
    const timer = { name: 'another in-kernel device' };
    expect(vgic.kvmVgicSetOwner(vgic.vcpu(0), 81, timer)).toBe(0);
    expect(() => f.assign(1)).toThrow(/EEXIST/);
    expect(f.host.devices[0]!.descs[1]!.forwardedToVcpu).toBe(false);
    expect(vgic.vgicGetIrq(81)!.hw).toBe(false);
    vgic.kvmVgicReleaseOwner(vgic.vcpu(0), 81, timer);
    expect(f.assign(1)).toBe(0);
    expect(vgic.vgicGetIrq(81)!.owner).toBe(f.host.devices[0]!.vdev.irqs[1]!.fwd);
    expect(f.deassign(1)).toBe(0);
    expect(vgic.vgicGetIrq(81)!.owner).toBe(null);
    teardownClean(f);
  });
});
