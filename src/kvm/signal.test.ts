/**
 * A signal to a vCPU thread (UThread.kill, the VMM's kick: QEMU's qemu_cpu_kick → SIG_IPI, crosvm's vcpu kick): KVM_RUN
 * returns EINTR with run->exit_reason = KVM_EXIT_INTR — arm.c kvm_arch_vcpu_ioctl_run checks signal_pending before
 * each entry, and kvm_vcpu_block ends on a pending signal — and the counters say so (kvm_vcpu_stat.signal_exits).
 */
import { describe, expect, it } from 'vitest';
import { buildVm, errnoOf, setup } from '../../test/fixtures/kvmSetup.js';
import { KVM_EXIT_INTR, KVM_RUN, kvmRun } from '../abi/kvm.js';
import { defineCost } from '../sim/costs.js';
import { op, type TaskGen } from '../sim/task.js';
import type { GuestFactory, GuestVcpuEnv } from './guest.js';
import { kvmRunAddress } from './vcpu.js';

const C_TEST_SPIN = defineCost('test_guest_spin', 1000, 'test: a guest loop iteration that never traps');

function exitReason(s: ReturnType<typeof setup>, vcpuFd: number): number {
  return s.p.mem.view(kvmRunAddress(s.p, vcpuFd) + kvmRun.offsetof('exit_reason'), 4).getUint32(0, true);
}

describe('KVM_RUN and a signal (kvm_arch_vcpu_ioctl_run: signal_pending → KVM_EXIT_INTR, -EINTR)', () => {
  it('a vCPU blocked in WFI wakes and returns EINTR; the next KVM_RUN blocks again (the handler consumed it)', () => {
    const s = setup();
    const { vcpus } = buildVm(s);
    const th = s.p.thread('vcpu0', 1);
    const h = th.ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    const vc = s.kvm.vms[0]!.vcpus[0]!;
    expect(vc.wfiSleeping).toBe(true);
    th.kill(10);
    expect(errnoOf(() => h.result())).toBe('EINTR');
    expect(exitReason(s, vcpus[0]!)).toBe(KVM_EXIT_INTR);
    expect(vc.stat.signalExits).toBe(1);
    expect(vc.userspaceExitsByReason()).toEqual({ KVM_EXIT_INTR: 1 });
    const h2 = th.ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    expect(h2.done).toBe(false);
    expect(vc.wfiSleeping).toBe(true);
  });

  it('a vCPU in guest mode on another CPU takes the reschedule IPI, exits with IRQ and returns EINTR', () => {
    const factory: GuestFactory = {
      createGuest(_env: GuestVcpuEnv) {
        return {
          thread: (function* (): TaskGen<void> {
            for (;;) yield op(C_TEST_SPIN); // never traps
          })(),
          irqVector: (function* (): TaskGen<void> {})(),
        };
      },
    };
    const s = setup({ factory });
    const { vcpus } = buildVm(s);
    const th = s.p.thread('vcpu0', 1);
    const h = th.ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.engine.run(100_000);
    const vc = s.kvm.vms[0]!.vcpus[0]!;
    expect(vc.mode).toBe(1); // IN_GUEST_MODE
    th.kill(10);
    expect(errnoOf(() => h.result())).toBe('EINTR');
    expect(vc.exitsByReason().IRQ).toBe(1);
    expect(vc.stat.signalExits).toBe(1);
    expect(exitReason(s, vcpus[0]!)).toBe(KVM_EXIT_INTR);
  });
});
