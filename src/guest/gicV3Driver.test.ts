// The guest's GICv3 driver (irq-gic-v3.c) on the vGIC-v3 (vgic-v3.c, vgic-mmio-v3.c) and the GICv3 hardware's ICV_*
// interface, with a minimal KVM-like run loop per vCPU (KVM proper is not used): enter the guest; on a data abort
// emulate the GICD/GICR with the vGIC-v3 MMIO; on WFI poll until the vGIC has something pending; re-enter.
import { describe, expect, it } from 'vitest';
import { KVM_DEV_TYPE_ARM_VGIC_V3 } from '../abi/kvm.js';
import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_WFx } from '../hw/esr.js';
import { Gicv3 } from '../hw/gicv3/gicv3.js';
import { ICH_VMCR_ENG1, ICH_VMCR_EOIM } from '../hw/gicv3/regs.js';
import { Vgic, type VgicCpu } from '../kvm/vgic/vgic.js';
import { vgicV3MmioAccess } from '../kvm/vgic/vgicMmioV3.js';
import { vgicV3SetRedistBase } from '../kvm/vgic/vgicV3Redist.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { enterGuest, op, type TaskGen } from '../sim/task.js';
import { VIRT_GICD_BASE } from './gicDriver.js';
import { VIRT_GICR_BASE } from './gicV3Driver.js';
import { createGuestKernel, type GuestKernel } from './guestKernel.js';

const C_POLL = defineCost('test_gicv3_rig_poll', 100, 'test rig only: host run loop polling the vGIC');
const HOST_IRQ_BASE = 1000;

interface Access {
  vcpu: number;
  write: boolean;
  ipa: number;
  data: number;
}

function rig(opts: { vcpus?: number; eoiMode?: 0 | 1 } = {}) {
  const n = opts.vcpus ?? 1;
  const engine = new Engine({ cpus: n });
  const gic = new Gicv3({ nrPes: n, nrIrqs: 128, virqSink: engine });
  const dist = gic.distributor;
  const vgic = new Vgic(engine, {
    model: KVM_DEV_TYPE_ARM_VGIC_V3,
    hostIrqOps: {
      getIrqchipState: (h, which) =>
        which === 'PENDING' ? dist.isPending(h - HOST_IRQ_BASE) : dist.isActive(h - HOST_IRQ_BASE),
      setIrqchipState: (h, which, val) => {
        if (which === 'ACTIVE') dist.setActive(h - HOST_IRQ_BASE, val);
        else if (val) dist.setPending(h - HOST_IRQ_BASE);
        else dist.clearPending(h - HOST_IRQ_BASE);
      },
      hwIntidOf: (h) => h - HOST_IRQ_BASE,
      observeActive: (intid) => dist.isActive(intid),
    },
  });
  const vcs: VgicCpu[] = [];
  for (let i = 0; i < n; i++) vcs.push(vgic.kvmVgicVcpuInit(i));
  const layout = { ipaBits: 40, vgicDistBase: BigInt(VIRT_GICD_BASE), vcpus: vcs };
  vgicV3SetRedistBase(layout, vgic, 0, BigInt(VIRT_GICR_BASE), n);
  expect(vgic.vgicInit()).toBe(0);
  const handled: number[] = [];
  const kernel: GuestKernel = createGuestKernel({
    engine,
    gic: {
      vif: () => {
        throw new ModelError('a GICv3 guest has no GICV');
      },
    },
    gicv3: gic,
    vcpus: n,
    eoiMode: opts.eoiMode,
    irqs: [40, 41, 48].map((intid) => ({
      intid,
      trigger: intid === 41 ? ('edge' as const) : ('level' as const),
      target: 0,
      handler: {
        name: `irq${intid}`,
        *handle(_g: GuestCpu, _vcpu: number) {
          handled.push(intid);
          return true;
        },
      },
    })),
  });
  const accesses: Access[] = [];
  function* runLoop(i: number, g: () => GuestCpu): TaskGen {
    const vc = vcs[i]!;
    vgic.kvmVgicLoad(vc, gic.vif(i));
    for (;;) {
      vgic.kvmVgicFlushHwstate(vc);
      const guest = g();
      yield enterGuest(guest);
      for (let gsi = vgic.kvmVgicSyncHwstate(vc); gsi >= 0; gsi = vgic.kvmVgicSyncContinue(vc)) {
        vgic.kvmVgicInjectIrq(null, gsi + 32, false); // the irqfd resampler's de-assert
      }
      if (guest.exitReason === ESR_ELx_EC_DABT_LOW) {
        const { isWrite, len, data } = guest.mmio;
        accesses.push({ vcpu: i, write: isWrite, ipa: guest.exitArg, data });
        const v = vgicV3MmioAccess(vc, BigInt(VIRT_GICD_BASE), BigInt(guest.exitArg), isWrite, len, data);
        if (!isWrite) guest.trapTask!.resumeValue = v;
      } else if (guest.exitReason === ESR_ELx_EC_WFx) {
        while (!vgic.kvmVgicVcpuPendingIrq(vc)) yield op(C_POLL);
      }
      yield op(C_POLL);
    }
  }
  const guests: GuestCpu[] = [];
  for (let i = 0; i < n; i++) {
    const host = engine.spawn(
      `vcpu${i}`,
      i,
      runLoop(i, () => guests[i]!),
    );
    guests.push(kernel.createGuestCpu(i, host));
  }
  engine.runUntil(() => kernel.booted, 'guest boot');
  engine.runUntil(() => kernel.vcpus.every((v) => v.stats.wfis > 0), 'guest idle');
  return { engine, gic, dist, vgic, vcs, kernel, handled, accesses };
}

describe('guest GICv3 driver (irq-gic-v3.c) on the vGIC-v3', () => {
  it('boot: GICD in gic_dist_init order, GICR_WAKER, then ICC_PMR/BPR1/CTLR/IGRPEN1 through the ICV_* interface', () => {
    const r = rig({ vcpus: 2 });
    const d = (off: number) => VIRT_GICD_BASE + off;
    const seq = r.accesses
      .filter((a) => a.vcpu === 0)
      .map((a) => `${a.vcpu} ${a.write ? 'W' : 'R'} 0x${a.ipa.toString(16)}`);
    expect(seq.slice(0, 8)).toEqual([
      `0 W 0x${d(0).toString(16)}`, // GICD_CTLR = 0
      `0 R 0x${d(4).toString(16)}`, // GICD_TYPER
      `0 W 0x${d(0x184).toString(16)}`, // ICENABLER1 (INTID 40)
      `0 W 0x${d(0x84).toString(16)}`, // IGROUPR1 = ~0
      `0 R 0x${d(0xc08).toString(16)}`, // ICFGR2
      `0 W 0x${d(0xc08).toString(16)}`,
      `0 W 0x${d(0x428).toString(16)}`, // IPRIORITYR byte 40
      `0 W 0x${d(0x6000 + 40 * 8).toString(16)}`, // IROUTER40
    ]);
    // vCPU 1 woke its own redistributor: GICR_WAKER read, write, poll
    const gicr1 = VIRT_GICR_BASE + 0x2_0000 + 0x14;
    expect(r.accesses.filter((a) => a.vcpu === 1).map((a) => a.ipa)).toEqual([gicr1, gicr1, gicr1]);
    expect(r.vgic.enabled).toBe(true);
    expect(r.kernel.driver.nrIrqs).toBe(256); // vgic_init's default (VGIC_NR_IRQS_LEGACY), from GICD_TYPER
    const irq41 = r.vgic.vgicGetIrq(41)!;
    expect({ enabled: irq41.enabled, config: irq41.config, priority: irq41.priority, group: irq41.group }).toEqual({
      enabled: true,
      config: 0,
      priority: 0xa0,
      group: 1,
    });
    for (const vc of r.vcs) {
      r.vgic.kvmVgicPut(vc); // vgic_v3_put: the shadow ICH_VMCR_EL2 now holds the guest's ICC_* settings
      expect(vc.vgicVmcr >>> 24).toBe(0xf0);
      expect(vc.vgicVmcr & (ICH_VMCR_ENG1 | ICH_VMCR_EOIM)).toBe(ICH_VMCR_ENG1);
    }
  });

  it('an injected edge SPI (what an irqfd does) is acknowledged through ICC_IAR1 and completed with ICC_EOIR1', () => {
    const r = rig();
    expect(r.vgic.kvmVgicInjectIrq(null, 41, true)).toBe(1);
    r.engine.runUntil(() => r.handled.length === 1, 'irq 41');
    r.engine.run(2000);
    expect(r.handled).toEqual([41]);
    expect(r.kernel.driver.cpuStats[0]).toMatchObject({
      irqs: 1,
      iarReads: 2,
      eoirWrites: 1,
      dirWrites: 0,
      unhandled: 0,
    });
    expect(r.vgic.vgicGetIrq(41)!.active).toBe(false);
  });

  for (const eoiMode of [0, 1] as const) {
    it(`a forwarded SPI (HW list register, EOImode ${eoiMode}): the guest's ${eoiMode === 0 ? 'EOIR1' : 'DIR'} deactivates the physical INTID`, () => {
      const r = rig({ eoiMode });
      expect(r.vgic.kvmVgicMapPhysIrq(r.vcs[0]!, HOST_IRQ_BASE + 48, 48)).toBe(0);
      r.dist.setLine(48, true);
      r.dist.setActive(48, true); // the host took it and left it active for the guest
      expect(r.vgic.kvmVgicInjectIrq(null, 48, true)).toBe(1);
      r.engine.runUntil(() => r.handled.length === 1, 'irq 48');
      r.dist.setLine(48, false); // the handler quietened the device
      r.engine.runUntil(() => !r.dist.isActive(48), 'physical deactivation');
      r.engine.run(2000);
      expect(r.handled).toEqual([48]);
      expect(r.vgic.hwLrInactive).toBe(0);
      const st = r.kernel.driver.cpuStats[0]!;
      expect([st.eoirWrites, st.dirWrites]).toEqual(eoiMode === 0 ? [1, 0] : [1, 1]);
      expect(r.gic.vif(0).unpredictableCount).toBe(0);
    });
  }
});
