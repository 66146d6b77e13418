import { describe, expect, it } from 'vitest';
import {
  devOf,
  expectForwardedLevelRun,
  fixture,
  GSI,
  teardownClean,
  totals,
} from '../../../../test/fixtures/fwdFixture.js';
import { errnoOf, irqfd } from '../../../../test/fixtures/kvmSetup.js';
import { KVM_IRQFD_FLAG_DEASSIGN, KVM_IRQFD_FLAG_RESAMPLE } from '../../../abi/kvm.js';
import { trigger } from '../../../scenario/vmm.js';
import { IrqfdConsumer } from './irqBypass.js';

const VINTID = 32 + GSI[0]!;

describe('irqfd as an IRQ bypass consumer (virt/kvm/eventfd.c, arch/arm64/kvm/arm.c)', () => {
  it('upstream 6.1: kvm_irqfd_assign registers a consumer per irqfd (token = eventfd); vfio-platform no producer', () => {
    const f = fixture();
    const m = f.host.kernel.irqBypass;
    expect(m.consumers).toHaveLength(2);
    expect(m.consumers.every((c) => c instanceof IrqfdConsumer)).toBe(true);
    expect(m.producers).toEqual([]);
    expect(m.connects).toBe(0);
    // so the level line takes the irqfd path: resampled through EOI maintenance
    const before = totals(f);
    f.raise(0, 3);
    f.host.settle();
    const t = totals(f);
    expect(t.handled[0]! - before.handled[0]!).toBe(3);
    expect(t.maintenance - before.maintenance).toBe(3);
    expect(devOf(f).vdev.irqs[0]!.forwarded).toBe(false);
  });

  it('irqfd_shutdown unregisters the consumer (KVM_IRQFD deassign)', () => {
    const f = fixture();
    irqfd(f.s.p, f.vm, f.efd[1]!, GSI[1]!, KVM_IRQFD_FLAG_DEASSIGN);
    f.host.settle();
    expect(f.host.kernel.irqBypass.consumers).toHaveLength(1);
    teardownClean(f);
    expect(f.host.kernel.irqBypass.consumers).toEqual([]);
  });
});

describe("the 2015 series' option ('bypass'): a vfio-platform producer per trigger, add_producer forwards the SPI", () => {
  it('VFIO_DEVICE_SET_IRQS TRIGGER connects to the irqfd on the same eventfd: the SPI is forwarded with the HW bit', () => {
    const f = fixture({ forwarding: 'bypass' });
    const m = f.host.kernel.irqBypass;
    expect(m.producers).toHaveLength(2);
    expect(m.connects).toBe(2);
    const virq = f.host.kvm.vms[0]!.vgic!.vgicGetIrq(VINTID)!;
    expect(virq.hw).toBe(true);
    expect(devOf(f).vdev.irqs[0]!.forwarded).toBe(true);
    expectForwardedLevelRun(f, 5);
    teardownClean(f);
    expect(m.producers).toEqual([]);
    expect(m.consumers).toEqual([]);
  });

  it('KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ of an IRQ the bypass forwards fails EEXIST (the vIRQ is owned)', () => {
    const f = fixture({ forwarding: 'bypass' });
    expect(errnoOf(() => f.assign(0))).toBe('EEXIST');
    expectForwardedLevelRun(f, 2);
  });

  it('KVM_IRQFD deassign disconnects (del_producer, bracketed): back on the irqfd path; re-assign connects again', () => {
    const f = fixture({ forwarding: 'bypass' });
    const p = f.s.p;
    const vm = f.host.kvm.vms[0]!;
    irqfd(p, f.vm, f.efd[0]!, GSI[0]!, KVM_IRQFD_FLAG_DEASSIGN);
    f.host.settle();
    const virq = vm.vgic!.vgicGetIrq(VINTID)!;
    expect(virq.hw).toBe(false);
    expect(virq.owner).toBeNull();
    expect(devOf(f).vdev.irqs[0]!.forwarded).toBe(false);
    expect(devOf(f).vdev.irqs[0]!.fwd).toBeNull();
    // the guest was resumed by the bracket's start
    expect(vm.vcpus.every((v) => !v.paused)).toBe(true);
    irqfd(p, f.vm, f.efd[0]!, GSI[0]!, KVM_IRQFD_FLAG_RESAMPLE, f.resample);
    f.host.settle();
    expect(vm.vgic!.vgicGetIrq(VINTID)!.hw).toBe(true);
    expectForwardedLevelRun(f, 3);
    teardownClean(f);
  });

  it('releasing the trigger (SET_IRQS TRIGGER fd -1) unregisters the producer and unforwards the IRQ', () => {
    const f = fixture({ forwarding: 'bypass' });
    trigger(f.s.p, f.dev.device, 0, -1);
    f.host.settle();
    const irq = devOf(f).vdev.irqs[0]!;
    expect(irq.producer).toBeNull();
    expect(irq.forwarded).toBe(false);
    expect(f.host.kernel.irqBypass.producers).toHaveLength(1);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(VINTID)!.hw).toBe(false);
    expect(f.host.checkInvariants()).toEqual([]);
    // a new trigger registers a new producer, which connects to the irqfd still registered on that eventfd
    trigger(f.s.p, f.dev.device, 0, f.efd[0]!);
    f.host.settle();
    expect(irq.forwarded).toBe(true);
    expectForwardedLevelRun(f, 2);
  });

  it('an IRQ already forwarded by ASSIGN: add_producer fails EEXIST, __connect undoes it, the consumer is not registered', () => {
    const f = fixture({ forwarding: 'bypass' });
    const p = f.s.p;
    const m = f.host.kernel.irqBypass;
    irqfd(p, f.vm, f.efd[0]!, GSI[0]!, KVM_IRQFD_FLAG_DEASSIGN);
    f.host.settle();
    expect(f.assign(0)).toBe(0);
    const connects = m.connects;
    irqfd(p, f.vm, f.efd[0]!, GSI[0]!, KVM_IRQFD_FLAG_RESAMPLE, f.resample);
    f.host.settle();
    expect(m.connects).toBe(connects);
    expect(m.consumers).toHaveLength(1);
    expectForwardedLevelRun(f, 2);
    expect(f.deassign(0)).toBe(0);
    teardownClean(f);
  });
});
