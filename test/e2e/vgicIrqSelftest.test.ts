// The GIC sequences of the arm64 KVM selftest vgic_irq (tools/testing/selftests/kvm/arm64/vgic_irq.c), written the
// way a test outside this repository writes them: only the public entry (src/index.ts), a VMM of raw ioctls, a guest
// program that asks the VMM to inject through a ucall (the selftest's GUEST_SYNC: KVM_EXIT_MMIO), and the read-only
// vGIC observers after each step. GICv2 stands in for the selftest's GICv3 (the model's vGIC is v2): EOIR/DIR/PMR/
// APR are the GICV registers, and at most nrLrs (4) interrupts are active at once.
import { describe, expect, it } from 'vitest';
import {
  createGuest,
  createHost,
  GUEST_UCALL_IPA,
  type GuestOps,
  type Host,
  KVM_ARM_IRQ_TYPE_SPI,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_EXIT_MMIO,
  KVM_IRQ_LINE,
  KVM_IRQFD,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  kvmArmIrqLineEncode,
  kvmCreateDevice,
  kvmDevArmVgicAttr,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmIrqLevel,
  kvmRun,
  kvmRunAddress,
  kvmVcpuInit,
  LrState,
  type Process,
  type TaskGen,
  vgicIrqState,
  vgicListRegisters,
} from '../../src/index.js';

const NR_IRQS = 96;
const MIN_SPI = 32;
const GICD_ISPENDR = 0x200;
const GICD_ISACTIVER = 0x300;
const IAR_SPURIOUS = 1023;
/** vgic_irq.c: CPU_PRIO_MASK 0xf8 (everything but the lowest priority passes) and IRQ_DEFAULT_PRIO_REG 0xf0. */
const CPU_PRIO_MASK = 0xf8;
const IRQ_DEFAULT_PRIO_REG = 0xf0;

type InjectCmd = 'irq-line-edge' | 'irq-line-high' | 'irq-line-low' | 'irqfd' | 'ispendr' | 'isactiver';
interface Inject {
  cmd: InjectCmd | 'done';
  first: number;
  num: number;
}

/** A VM built with raw ioctls (the selftest's vm_create_with_one_vcpu + vgic setup, GICv2 flavour). */
class Vmm {
  readonly p: Process;
  readonly vm: number;
  readonly gic: number;
  readonly vcpus: number[] = [];
  /** The ucall mailbox: the guest stores an index into it (its GUEST_SYNC argument). */
  readonly calls: Inject[] = [];
  private readonly threads = new Map<number, ReturnType<Process['thread']>>();

  constructor(
    readonly host: Host,
    nrVcpus: number,
  ) {
    const p = host.process();
    this.p = p;
    const kvm = p.open('/dev/kvm');
    this.vm = p.ioctl(kvm, KVM_CREATE_VM, 0);
    const dev = p.mem.alloc(kvmCreateDevice.size);
    kvmCreateDevice.write(p.mem.view(dev, kvmCreateDevice.size), { type: KVM_DEV_TYPE_ARM_VGIC_V2, fd: 0, flags: 0 });
    p.ioctl(this.vm, KVM_CREATE_DEVICE, dev);
    this.gic = kvmCreateDevice.read(p.mem.view(dev, kvmCreateDevice.size)).fd;
    this.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, 0x0800_0000, 8);
    this.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, 0x0801_0000, 8);
    this.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, NR_IRQS, 4);
    const init = p.mem.alloc(kvmVcpuInit.size);
    p.ioctl(this.vm, KVM_ARM_PREFERRED_TARGET, init);
    for (let i = 0; i < nrVcpus; i++) {
      const fd = p.ioctl(this.vm, KVM_CREATE_VCPU, i);
      p.ioctl(fd, KVM_ARM_VCPU_INIT, init);
      this.vcpus.push(fd);
    }
    this.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0, 0);
  }

  get vgic() {
    return this.host.kvm.vms[0]!.vgic!;
  }

  /** KVM_SET_DEVICE_ATTR on the vGIC with a u32/u64 payload (len 0: none). */
  setAttr(group: number, attr: number | bigint, value: number, len: 0 | 4 | 8): void {
    const p = this.p;
    const payload = len === 0 ? 0 : p.mem.alloc(len);
    if (len === 4) p.mem.writeU32(payload, value);
    if (len === 8) p.mem.writeU64(payload, BigInt(value));
    const a = p.mem.alloc(kvmDeviceAttr.size);
    kvmDeviceAttr.write(p.mem.view(a, kvmDeviceAttr.size), {
      flags: 0,
      group,
      attr: BigInt(attr),
      addr: BigInt(payload),
    });
    p.ioctl(this.gic, KVM_SET_DEVICE_ATTR, a);
  }

  irqLine(intid: number, level: number): void {
    const a = this.p.mem.alloc(kvmIrqLevel.size);
    const irq = kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_SPI, vcpu: 0, num: intid });
    kvmIrqLevel.write(this.p.mem.view(a, kvmIrqLevel.size), { irq, level });
    this.p.ioctl(this.vm, KVM_IRQ_LINE, a);
  }

  /** kvm_routing_and_irqfd_check: an eventfd per SPI bound with KVM_IRQFD (gsi = INTID − 32), written once. */
  irqfd(intid: number): void {
    const p = this.p;
    const efd = p.eventfd(0);
    const a = p.mem.alloc(kvmIrqfd.size);
    kvmIrqfd.write(p.mem.view(a, kvmIrqfd.size), { fd: efd, gsi: intid - MIN_SPI, flags: 0, resamplefd: 0 });
    p.ioctl(this.vm, KVM_IRQFD, a);
    const one = p.mem.alloc(8);
    p.mem.writeU64(one, 1n);
    expect(p.write(efd, one, 8)).toBe(8);
    p.close(efd);
  }

  /** run_guest_cmd. */
  inject(c: Inject): void {
    for (let i = c.first; i < c.first + c.num; i++) {
      const bit = 1 << (i & 31);
      switch (c.cmd) {
        case 'irq-line-edge':
          this.irqLine(i, 1);
          this.irqLine(i, 0);
          break;
        case 'irq-line-high':
          this.irqLine(i, 1);
          break;
        case 'irq-line-low':
          this.irqLine(i, 0);
          break;
        case 'irqfd':
          this.irqfd(i);
          break;
        case 'ispendr':
        case 'isactiver': {
          const reg = (c.cmd === 'ispendr' ? GICD_ISPENDR : GICD_ISACTIVER) + (i >> 5) * 4;
          this.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, kvmDevArmVgicAttr(0, reg), bit >>> 0, 4);
          break;
        }
      }
    }
  }

  /** The selftest's vcpu_run/get_ucall loop on vCPU `idx`: serve injections until the guest says done. */
  run(idx = 0): void {
    let th = this.threads.get(idx);
    if (th === undefined) {
      th = this.p.thread(`CPU ${idx}/KVM`, idx);
      this.threads.set(idx, th);
    }
    const run = kvmRunAddress(this.p, this.vcpus[idx]!);
    for (;;) {
      th.ioctlAsync(this.vcpus[idx]!, KVM_RUN, 0).result();
      const r = kvmRun.read(this.p.mem.view(run, kvmRun.size));
      expect(r.exit_reason).toBe(KVM_EXIT_MMIO);
      expect(Number(r.mmio_phys_addr)).toBe(GUEST_UCALL_IPA);
      const c = this.calls[r.mmio_data[0]! | (r.mmio_data[1]! << 8)]!;
      if (c.cmd === 'done') return;
      this.inject(c);
    }
  }
}

/** Guest helpers shared by the sequences (the selftest's guest side). */
function guestSide(vmm: Vmm) {
  return {
    *sync(ops: GuestOps, cmd: Inject['cmd'], first: number, num = 1): TaskGen<void> {
      vmm.calls.push({ cmd, first, num });
      yield* ops.ucall(vmm.calls.length - 1);
    },
    /** wait_for_and_activate_irq: WFI, then acknowledge, until something is acknowledged (IRQs masked). */
    *waitForAndActivate(ops: GuestOps): TaskGen<number> {
      for (;;) {
        yield* ops.wfi();
        const intid = yield* ops.ack();
        if (intid !== IAR_SPURIOUS) return intid;
      }
    },
  };
}

interface Setup {
  host: Host;
  vmm: Vmm;
  received: number[];
}

/**
 * One selftest configuration (test_vgic): SPIs first..first+num−1 configured with `level`, EOImode `eoiMode`,
 * PMR = CPU_PRIO_MASK; `body` is the guest program (after gic_init); the hook of each SPI is the generic handler's
 * checks (active, edge not pending, level: lower the line) and records the order.
 */
function setup(
  eoiMode: 0 | 1,
  level: boolean,
  intids: number[],
  body: (ops: GuestOps, g: ReturnType<typeof guestSide>, s: Setup) => TaskGen<void>,
  eoi: 'always' | 'late' | 'never' = 'always',
): Setup {
  const host = createHost({ cpus: 2 });
  const vmm = new Vmm(host, 1);
  const g = guestSide(vmm);
  const s: Setup = { host, vmm, received: [] };
  createGuest(host, {
    vcpus: 1,
    eoiMode,
    eoi,
    priority: IRQ_DEFAULT_PRIO_REG,
    pmr: CPU_PRIO_MASK,
    irqs: intids.map((intid) => ({
      intid,
      trigger: level ? 'level' : 'edge',
      *hook(ops: GuestOps, n: number): TaskGen<void> {
        expect(yield* ops.isActive(n)).toBe(true); // GUEST_ASSERT(gic_irq_get_active(intid))
        if (!level) expect(yield* ops.isPending(n)).toBe(false);
        else yield* g.sync(ops, 'irq-line-low', n);
        s.received.push(n);
      },
    })),
    *program(ops): TaskGen<void> {
      yield* body(ops, g, s);
      yield* g.sync(ops, 'done', 0, 0);
    },
  });
  return s;
}

/** guest_inject: priorities cycled over (i % 31) << 3, IRQs masked while the VMM injects, then taken one by one. */
function* guestInject(
  ops: GuestOps,
  g: ReturnType<typeof guestSide>,
  s: Setup,
  cmd: InjectCmd,
  ids: number[],
): TaskGen<void> {
  for (const i of ids) yield* ops.setPriority(i, (i % 31) << 3);
  ops.irqsMasked(true);
  yield* g.sync(ops, cmd, ids[0]!, ids.length);
  while (s.received.length < ids.length) {
    yield* ops.wfi();
    ops.irqsMasked(false);
    yield* ops.work(10); // isb(): the pending vIRQ is taken here
    ops.irqsMasked(true);
  }
  ops.irqsMasked(false);
  expect(yield* ops.ack()).toBe(IAR_SPURIOUS); // GUEST_ASSERT_IAR_EMPTY
  for (const i of ids) yield* ops.setPriority(i, IRQ_DEFAULT_PRIO_REG);
}

/** SPIs 60..67: priorities (i % 31) << 3 are 0xe8, 0xf0, then 0x00..0x28, so 62..67 come before 60 and 61. */
const INJECT_IDS = [60, 61, 62, 63, 64, 65, 66, 67];
const BY_PRIORITY = [62, 63, 64, 65, 66, 67, 60, 61];

function expectIdle(vmm: Vmm, ids: number[]): void {
  for (const i of ids) {
    const st = vgicIrqState(vmm.vgic, i);
    expect({ intid: i, pending: st.pending, active: st.active }).toEqual({ intid: i, pending: false, active: false });
  }
  expect(vgicListRegisters(vmm.vgic, 0)).toEqual([]);
}

describe('vgic_irq guest_inject (test_injection): every SPI taken once, in priority order', () => {
  const cases: [InjectCmd, boolean][] = [
    ['irq-line-edge', false],
    ['irqfd', false],
    ['ispendr', false],
    ['irq-line-high', true],
    ['ispendr', true],
  ];
  for (const eoiMode of [0, 1] as const) {
    for (const [cmd, level] of cases) {
      it(`${cmd}, ${level ? 'level' : 'edge'}, EOImode ${eoiMode}${eoiMode ? ' (EOIR + DIR)' : ''}`, () => {
        const s = setup(eoiMode, level, INJECT_IDS, (ops, g, st) => guestInject(ops, g, st, cmd, INJECT_IDS));
        s.vmm.run();
        expect(s.received).toEqual(BY_PRIORITY);
        expectIdle(s.vmm, INJECT_IDS);
      });
    }
  }
});

describe('vgic_irq test_inject_preemption: each SPI preempts the last; EOIR highest priority first, DIR in order', () => {
  // Descending priorities (intid + 1 preempts intid); 4 SPIs = the 4 list registers.
  const ids = [32, 33, 34, 35];
  for (const eoiMode of [0, 1] as const) {
    for (const level of [false, true]) {
      it(`${level ? 'level (KVM_IRQ_LINE high)' : 'edge (KVM_IRQ_LINE pulse)'}, EOImode ${eoiMode}`, () => {
        const cmd: InjectCmd = level ? 'irq-line-high' : 'irq-line-edge';
        const seen: number[] = [];
        const s = setup(eoiMode, level, ids, function* (ops, g, st) {
          for (let i = 0; i < ids.length; i++) yield* ops.setPriority(ids[i]!, (ids.length - 1 - i) * 8);
          ops.irqsMasked(true);
          for (const intid of ids) {
            yield* g.sync(ops, cmd, intid);
            seen.push(yield* g.waitForAndActivate(ops));
            if (level) yield* g.sync(ops, 'irq-line-low', intid);
            // while the guest runs, its LRs are live: every SPI acknowledged so far is active there
            const lrs = vgicListRegisters(vmm().vgic, 0).map((l) => [l.vintid, l.state, l.priority]);
            const n = seen.length;
            expect(lrs).toEqual(ids.slice(0, n).map((i, k) => [i, LrState.Active, (ids.length - 1 - k) * 8]));
            yield* g.sync(ops, 'done', 0, 0);
          }
          for (let i = ids.length - 1; i >= 0; i--) yield* ops.eoir(ids[i]!);
          if (eoiMode === 1) for (const intid of ids) yield* ops.dir(intid);
          ops.irqsMasked(false);
          for (const intid of ids) expect(yield* ops.isActive(intid)).toBe(false);
          expect(yield* ops.readApr()).toBe(0);
          expect(yield* ops.ack()).toBe(IAR_SPURIOUS);
          expect(st.received).toEqual([]); // no exception was taken: all of it ran with IRQs masked
        });
        const vmm = () => s.vmm;
        // the guest stops after each acknowledgement; out of the guest the vIRQs are back on the ap-list
        for (let k = 0; k < ids.length; k++) {
          s.vmm.run();
          expect(vgicListRegisters(s.vmm.vgic, 0)).toEqual([]);
          for (const i of ids.slice(0, k + 1)) {
            const st = vgicIrqState(s.vmm.vgic, i);
            expect([st.active, st.lineLevel, st.apVcpu, st.onLr]).toEqual([true, false, 0, false]);
          }
        }
        s.vmm.run();
        expect(seen).toEqual(ids);
        expectIdle(s.vmm, ids);
      });
    }
  }
});

describe('vgic_irq guest_restore_active (test_restore_active): ISACTIVER from the VMM, then EOIR (+ DIR)', () => {
  const ids = [32, 33, 34, 35];
  for (const eoiMode of [0, 1] as const) {
    it(`EOImode ${eoiMode}`, () => {
      const s = setup(eoiMode, false, ids, function* (ops, g) {
        for (let i = 0; i < ids.length; i++) yield* ops.setPriority(ids[i]!, (ids.length - 1 - i) * 8);
        for (let i = 0; i < ids.length; i++) {
          yield* g.sync(ops, 'isactiver', ids[i]!);
          // what a migration restores with the active state: the active priority (GICv2 APR bit = priority >> 3)
          yield* ops.writeApr((yield* ops.readApr()) | (1 << (ids.length - 1 - i)));
        }
        yield* g.sync(ops, 'done', 0, 0);
        for (let i = ids.length - 1; i >= 0; i--) {
          yield* ops.eoir(ids[i]!);
          if (eoiMode === 1) yield* ops.dir(ids[i]!);
        }
        for (const intid of ids) expect(yield* ops.isActive(intid)).toBe(false);
        expect(yield* ops.readApr()).toBe(0);
        expect(yield* ops.ack()).toBe(IAR_SPURIOUS);
      });
      s.vmm.run();
      for (const i of ids) {
        const st = vgicIrqState(s.vmm.vgic, i);
        expect([st.active, st.pending, st.apVcpu >= 0 ? st.apVcpu : -1]).toEqual([true, false, 0]);
      }
      s.vmm.run();
      expect(s.received).toEqual([]);
      expectIdle(s.vmm, ids);
    });
  }
});

describe("the guest's 'late' completion policy from the IRQ vector = test_inject_preemption's order", () => {
  it('EOImode 1, eoi late: the vector acknowledges 35, 34, 33, 32 (each preempts), EOIRs them back, DIRs in order', () => {
    const ids = [32, 33, 34, 35];
    const s = setup(
      1,
      false,
      ids,
      function* (ops, g, st) {
        // ascending priority values: 35 is the highest, so a single exception acknowledges all four, 35 first
        for (let i = 0; i < ids.length; i++) yield* ops.setPriority(ids[i]!, (ids.length - 1 - i) * 8);
        ops.irqsMasked(true);
        yield* g.sync(ops, 'ispendr', 32, 4);
        yield* ops.wfi();
        ops.irqsMasked(false);
        yield* ops.work(10);
        expect(st.received).toEqual([35, 34, 33, 32]);
      },
      'late',
    );
    s.vmm.run();
    expectIdle(s.vmm, ids);
  });
});

describe('priority mask (gic_set_priority_mask)', () => {
  it('an SPI at priority ≥ PMR stays pending until the mask is opened', () => {
    const s = setup(0, false, [40], function* (ops, g, st) {
      yield* ops.setPriorityMask(IRQ_DEFAULT_PRIO_REG);
      yield* ops.setPriority(40, IRQ_DEFAULT_PRIO_REG); // not above PMR 0xf0: masked
      ops.irqsMasked(true);
      yield* g.sync(ops, 'ispendr', 40);
      expect(yield* ops.ack()).toBe(IAR_SPURIOUS);
      ops.irqsMasked(false);
      yield* ops.work(10);
      expect(st.received).toEqual([]);
      yield* g.sync(ops, 'done', 0, 0);
      // in its LR, pending, but below the mask: the GICV signals nothing
      const lr = vgicListRegisters(s.vmm.vgic, 0).map((l) => [l.vintid, l.state, l.priority]);
      expect(lr).toEqual([[40, LrState.Pending, IRQ_DEFAULT_PRIO_REG]]);
      expect(st.received).toEqual([]);
      yield* ops.setPriorityMask(CPU_PRIO_MASK); // GICv2's PMR has 5 bits: 0xf8 lets 0xf0 through, never 0xf8
      yield* ops.work(10);
      expect(st.received).toEqual([40]);
    });
    s.vmm.run();
    const st = vgicIrqState(s.vmm.vgic, 40);
    expect([st.pending, st.pendingLatch, st.active, st.priority]).toEqual([true, true, false, IRQ_DEFAULT_PRIO_REG]);
    s.vmm.run();
    expectIdle(s.vmm, [40]);
  });
});

describe('GuestOps.waitUntil (a guest polling shared memory)', () => {
  it('tests the condition at entry and after each poll step, and gives up after maxPolls', () => {
    let tests = 0;
    let gaveUp = '';
    const s = setup(0, false, [40], function* (ops) {
      const t0 = ops.now;
      yield* ops.waitUntil(() => ++tests === 3); // two polls
      expect(ops.now).toBeGreaterThan(t0);
      try {
        yield* ops.waitUntil(() => false, 2);
      } catch (e) {
        gaveUp = (e as Error).message;
      }
    });
    s.vmm.run();
    expect(tests).toBe(3);
    expect(gaveUp).toBe('vCPU 0: condition still false after 2 polls');
  });
});
