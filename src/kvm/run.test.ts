import { describe, expect, it } from 'vitest';
import { buildVm, createDevice, createVm, errnoOf, setup, spiLine, vcpuInit } from '../../test/fixtures/kvmSetup.js';
import {
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_VCPU,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_EXIT_INTR,
  KVM_EXIT_MMIO,
  KVM_RUN,
  kvmRun,
} from '../abi/kvm.js';
import { defineCost } from '../sim/costs.js';
import { eret, op, type TaskGen } from '../sim/task.js';
import {
  C_GUEST_GICV_IAR,
  type GuestFactory,
  type GuestVcpuEnv,
  guestMmioRead,
  guestMmioWrite,
  guestWfi,
} from './guest.js';
import { kvmRunAddress } from './vcpu.js';

const C_TEST_BUSY = defineCost('test_guest_busy', 1000, 'test: a busy guest loop iteration');

describe('KVM_ARM_VCPU_INIT (arm.c kvm_arch_vcpu_ioctl_vcpu_init)', () => {
  it('EFAULT, EINVAL for a foreign target, ENOENT for unknown features, EINVAL for a changed re-init', () => {
    const s = setup();
    const vm = createVm(s);
    const v = s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    expect(errnoOf(() => s.p.ioctl(v, KVM_ARM_VCPU_INIT, 0x10))).toBe('EFAULT');
    expect(errnoOf(() => vcpuInit(s.p, v, 3))).toBe('EINVAL');
    expect(errnoOf(() => vcpuInit(s.p, v, 5, [1 << 8]))).toBe('ENOENT');
    expect(errnoOf(() => vcpuInit(s.p, v, 5, [0, 1]))).toBe('ENOENT');
    expect(vcpuInit(s.p, v, 5, [1 << 2])).toBe(0); // PSCI_0_2
    expect(vcpuInit(s.p, v, 5, [1 << 2])).toBe(0);
    expect(errnoOf(() => vcpuInit(s.p, v, 5, [0]))).toBe('EINVAL');
  });
});

describe('KVM_RUN (arm.c kvm_arch_vcpu_ioctl_run)', () => {
  it('ENOEXEC before KVM_ARM_VCPU_INIT; EINVAL with an argument or a non-KVM request', () => {
    const s = setup();
    const vm = createVm(s);
    const v = s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    expect(errnoOf(() => s.p.ioctl(v, KVM_RUN, 0))).toBe('ENOEXEC');
    vcpuInit(s.p, v);
    expect(errnoOf(() => s.p.ioctl(v, KVM_RUN, 1))).toBe('EINVAL');
    expect(errnoOf(() => s.p.ioctl(v, 0x3b64, 0))).toBe('EINVAL');
  });

  it('first run with a vGIC whose addresses are unset is ENXIO (vgic_v2_map_resources)', () => {
    const s = setup();
    const vm = createVm(s);
    const v = s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    vcpuInit(s.p, v);
    expect(errnoOf(() => s.p.ioctl(v, KVM_RUN, 0))).toBe('ENXIO');
  });

  it('immediate_exit returns EINTR with KVM_EXIT_INTR', () => {
    const s = setup();
    const { vcpus } = buildVm(s);
    const run = kvmRunAddress(s.p, vcpus[0]!);
    s.p.mem.view(run, 2).setUint8(1, 1);
    expect(errnoOf(() => s.p.ioctl(vcpus[0]!, KVM_RUN, 0))).toBe('EINTR');
    expect(kvmRun.read(s.p.mem.view(run, kvmRun.size)).exit_reason).toBe(KVM_EXIT_INTR);
  });

  it('counts exits by reason: the boot MMIO traps to the distributor, then WFI', () => {
    const s = setup({ guest: { spis: [{ intid: 40 }, { intid: 41 }] } });
    const { vcpus } = buildVm(s);
    s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    const vc = s.kvm.vms[0]!.vcpus[0]!;
    // GICD_CTLR + per SPI: ICFGR read + write, IPRIORITYR, ITARGETSR, ISENABLER
    expect(vc.stat.dabtExits).toBe(1 + 2 * 5);
    expect(vc.stat.mmioKernel).toBe(11);
    expect(vc.stat.wfxExits).toBe(1);
    expect(vc.stat.haltSleeps).toBe(1);
    expect(vc.exitsByReason()).toMatchObject({ DABT_LOW: 11, WFx: 1, IRQ: 0 });
    expect(vc.stat.exits).toBe(12);
    const vgic = s.kvm.vms[0]!.vgic!;
    expect(vgic.spis[8]!.enabled).toBe(true);
    expect(vgic.enabled).toBe(true);
  });

  it('MMIO outside the vGIC exits to the VMM with KVM_EXIT_MMIO; the next KVM_RUN completes the read', () => {
    const got: number[] = [];
    const factory: GuestFactory = {
      createGuest(env: GuestVcpuEnv) {
        return {
          thread: (function* (): TaskGen<void> {
            yield op(0);
            const g = env.guest();
            yield* guestMmioWrite(g, 0x0900_0000, 4, 0x1234_5678);
            got.push(yield* guestMmioRead(g, 0x0900_0004, 4));
            for (;;) yield* guestWfi();
          })(),
          irqVector: (function* (): TaskGen<void> {
            for (;;) yield op(0);
          })(),
        };
      },
    };
    const s = setup({ factory });
    const { vcpus } = buildVm(s);
    const run = kvmRunAddress(s.p, vcpus[0]!);
    const t = s.p.thread('vcpu0', 1);
    expect(t.ioctlAsync(vcpus[0]!, KVM_RUN, 0).result()).toBe(0);
    let r = kvmRun.read(s.p.mem.view(run, kvmRun.size));
    expect(r.exit_reason).toBe(KVM_EXIT_MMIO);
    expect(r.mmio_is_write).toBe(1);
    expect(r.mmio_phys_addr).toBe(0x0900_0000n);
    expect(r.mmio_data.slice(0, 4)).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(t.ioctlAsync(vcpus[0]!, KVM_RUN, 0).result()).toBe(0);
    r = kvmRun.read(s.p.mem.view(run, kvmRun.size));
    expect(r.mmio_is_write).toBe(0);
    expect(r.mmio_len).toBe(4);
    s.p.mem.view(run + 40, 4).setUint32(0, 0xcafe, true); // the VMM answers the read in mmio.data
    t.ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    expect(got).toEqual([0xcafe]);
    expect(s.kvm.vms[0]!.vcpus[0]!.stat.mmioUser).toBe(2);
  });

  it('more pending vIRQs than list registers are all delivered, in priority order', () => {
    const prios = [0xa0, 0x20, 0x80, 0x40, 0x60, 0x30];
    const spis = prios.map((priority, i) => ({ intid: 40 + i, edge: true, priority }));
    const s = setup({ guest: { spis }, nrLrs: 4 });
    const { vm, vcpus } = buildVm(s);
    for (const x of spis) spiLine(s.p, vm, x.intid, 1); // pending before the guest boots
    s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    const expected = [...spis].sort((a, b) => a.priority - b.priority).map((x) => x.intid);
    expect(s.guest.statsOf(0).order).toEqual(expected);
    const vc = s.kvm.vms[0]!.vcpus[0]!;
    expect(vc.stat.maintenanceExits).toBeGreaterThanOrEqual(1); // underflow refills the LRs
  });

  it('a vCPU in guest mode on another CPU is kicked out by an IPI and takes the new vIRQ', () => {
    const factory: GuestFactory = {
      createGuest(env: GuestVcpuEnv) {
        const irqs: number[] = [];
        (env.vcpu as unknown as { seen: number[] }).seen = irqs;
        return {
          thread: (function* (): TaskGen<void> {
            yield op(0);
            const g = env.guest();
            g.irqMasked = true;
            env.vif().write(0, 1);
            env.vif().write(4, 0xf8);
            const base = env.distBase();
            yield* guestMmioWrite(g, base, 4, 1);
            yield* guestMmioWrite(g, base + 0x800 + 40, 1, 1);
            yield* guestMmioWrite(g, base + 0x104, 4, 1 << 8);
            g.irqMasked = false;
            for (;;) yield op(C_TEST_BUSY); // busy: never traps
          })(),
          irqVector: (function* (): TaskGen<void> {
            for (;;) {
              yield op(C_GUEST_GICV_IAR);
              const iar = env.vif().readIar();
              if ((iar & 0x3ff) < 1020) irqs.push(iar & 0x3ff);
              env.vif().writeEoir(iar);
              yield eret();
            }
          })(),
        };
      },
    };
    const s = setup({ factory });
    const { vm, vcpus } = buildVm(s);
    s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.engine.run(200_000);
    const vc = s.kvm.vms[0]!.vcpus[0]!;
    expect(vc.mode).toBe(1);
    spiLine(s.p, vm, 40, 1);
    s.kernel.engine.run(200_000);
    expect(vc.stat.kickIpis).toBe(1);
    expect(vc.stat.irqExits).toBeGreaterThanOrEqual(1);
    expect((vc as unknown as { seen: number[] }).seen).toEqual([40]);
    expect(s.host.genirq.badIrqs).toEqual([]);
  });
});
