/**
 * kvm_vcpu_kick of a vCPU thread blocked in WFI: the wakeup reaches the vCPU's CPU as the scheduler's reschedule IPI
 * when the waker runs elsewhere (kernel/sched/core.c ttwu_queue_wakelist/resched_curr), and not when it runs there.
 */
import { describe, expect, it } from 'vitest';
import { buildVm, place, setup, spiLine } from '../../test/fixtures/kvmSetup.js';
import { KVM_ARM_IRQ_TYPE_SPI, KVM_IRQ_LINE, KVM_RUN, kvmArmIrqLineEncode, kvmIrqLevel } from '../abi/kvm.js';

function blockedVcpuOnCpu1() {
  const s = setup({ guest: { spis: [{ intid: 40, edge: true }] } });
  const { vm, vcpus } = buildVm(s);
  s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
  s.kernel.settle();
  const vc = s.kvm.vms[0]!.vcpus[0]!;
  expect(vc.stat.haltSleeps).toBe(1);
  return { s, vm, vc, cpu1: s.kernel.engine.cpus[1]! };
}

describe('kvm_vcpu_kick of a blocked vCPU', () => {
  it('from another CPU: the vCPU CPU takes one reschedule IPI, then the guest gets the vIRQ', () => {
    const { s, vm, vc, cpu1 } = blockedVcpuOnCpu1();
    const irqsBefore = cpu1.irqs;
    spiLine(s.p, vm, 40, 1); // the VMM's main thread runs on CPU 0
    s.kernel.settle();
    expect(vc.stat.kickWakeups).toBe(1);
    expect(cpu1.irqs - irqsBefore).toBe(1);
    expect(s.guest.statsOf(0).order).toEqual([40]);
  });

  it('from the vCPU own CPU: no IPI', () => {
    const { s, vm, vc, cpu1 } = blockedVcpuOnCpu1();
    const irqsBefore = cpu1.irqs;
    const line = kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_SPI, vcpu: 0, num: 40 });
    const arg = place(s.p, kvmIrqLevel.encode({ irq: line, level: 1 }));
    expect(s.p.thread('injector', 1).ioctlAsync(vm, KVM_IRQ_LINE, arg).result()).toBe(0);
    s.kernel.settle();
    expect(vc.stat.kickWakeups).toBe(1);
    expect(cpu1.irqs).toBe(irqsBefore);
    expect(s.guest.statsOf(0).order).toEqual([40]);
  });
});
