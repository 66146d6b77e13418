import { describe, expect, it } from 'vitest';
import { ModelError } from '../../sim/errors.js';
import { Gic } from './gic.js';
import { GIC_CPU_CTRL_EOImodeNS, GICH_HCR_EN, MAINTENANCE_PPI, SPURIOUS_INTID, VTIMER_PPI } from './regs.js';
import { LrState, makeLr } from './virtualInterface.js';

const SPI = 40;

/** A host as Linux's irq-gic.c leaves it: GICD on, SPI 40 level at 0xA0 → CPU 0, GICCs on, PMR 0xF0. */
function host(opts: { eoiMode: boolean; log?: string[] }): Gic {
  const log = opts.log;
  const gic = new Gic({
    nrCpus: 2,
    nrIrqs: 96,
    irqSink: { setIrqLine: (cpu, level) => log?.push(`irq${cpu}=${level ? 1 : 0}`) },
    virqSink: { setVirqLine: (cpu, level) => log?.push(`virq${cpu}=${level ? 1 : 0}`) },
  });
  const d = gic.distributor;
  d.setConfig(SPI, 'level');
  d.setPriority(SPI, 0xa0);
  d.setTargets(SPI, 1);
  d.enable(SPI);
  for (let cpu = 0; cpu < 2; cpu++) {
    d.setPriority(MAINTENANCE_PPI, 0xa0, cpu);
    d.enable(MAINTENANCE_PPI, cpu);
    const c = gic.cpu(cpu);
    c.setCtlr(1 | (opts.eoiMode ? GIC_CPU_CTRL_EOImodeNS : 0));
    c.setPmr(0xf0);
    const v = gic.vif(cpu);
    v.writeHcr(GICH_HCR_EN);
    v.setCtlr(1); // guest Linux: EnableGrp0
    v.setPmr(0xf0);
  }
  d.setCtlr(1);
  return gic;
}
const hwLr = (vintid: number, pintid: number): number =>
  makeLr({ vintid, pintid, hw: true, eoi: false, state: LrState.Pending, priority: 0xa0, group1: false });
const eoiLr = (vintid: number): number =>
  makeLr({ vintid, hw: false, eoi: true, state: LrState.Pending, priority: 0xa0, group1: false });

describe('Gic wiring', () => {
  it('builds one distributor and per-CPU interfaces with the requested geometry', () => {
    const gic = new Gic({ nrCpus: 3, nrIrqs: 64, nrLrs: 8, priorityBits: 6 });
    expect(gic.nrCpus).toBe(3);
    expect(gic.cpuInterfaces.map((c) => c.cpu)).toEqual([0, 1, 2]);
    expect(gic.virtualInterfaces.map((v) => v.nrLrs)).toEqual([8, 8, 8]);
    expect(gic.distributor.priorityMask).toBe(0xfc);
  });

  it('rejects a bad CPU with ModelError', () => {
    const gic = new Gic({ nrCpus: 2, nrIrqs: 64 });
    expect(() => gic.cpu(2)).toThrow(/bad CPU 2 \(nrCpus 2\)/);
    expect(() => gic.vif(-1)).toThrow(ModelError);
  });
});

describe('forwarded path: host EOImode=1, LR with HW=1 (the point of the project)', () => {
  it('guest EOI deactivates the physical SPI; the still-high line makes it pending again', () => {
    const log: string[] = [];
    const gic = host({ eoiMode: true, log });
    const d = gic.distributor;
    const c0 = gic.cpu(0);
    const v0 = gic.vif(0);

    d.setLine(SPI, true); // device asserts
    expect(c0.irqLine).toBe(true);
    expect(c0.readIar()).toBe(SPI); // host takes the IRQ
    expect(d.isActive(SPI)).toBe(true);
    c0.writeEoir(SPI); // EOImode=1: priority drop only
    expect(c0.readRpr()).toBe(0xff);
    expect(d.isActive(SPI)).toBe(true);
    expect(d.isPending(SPI)).toBe(true); // active+pending: the line is still high …
    expect(c0.irqLine).toBe(false); // … but it cannot fire again on the host
    expect(c0.readIar()).toBe(SPURIOUS_INTID);

    v0.writeLr(0, hwLr(SPI, SPI)); // KVM injects the vIRQ, HW=1, pINTID = 40
    expect(v0.virqLine).toBe(true);
    expect(v0.readIar()).toBe(SPI); // guest takes it
    expect(d.isActive(SPI)).toBe(true);
    v0.writeEoir(SPI); // guest EOI → physical deactivation
    expect((v0.readLr(0) >>> 28) & 3).toBe(LrState.Invalid);
    expect(d.isActive(SPI)).toBe(false);
    expect(d.isPending(SPI)).toBe(true);
    expect(c0.irqLine).toBe(true); // fires again: the device still asserts

    // No maintenance interrupt, no exit, nothing UNPREDICTABLE.
    expect(v0.readMisr()).toBe(0);
    expect(v0.maintenanceLine).toBe(false);
    expect(d.isPending(MAINTENANCE_PPI, 0)).toBe(false);
    expect(c0.unpredictableCount + v0.unpredictableCount).toBe(0);
    expect(log).toEqual(['irq0=1', 'irq0=0', 'virq0=1', 'virq0=0', 'irq0=1']);
  });

  it('if the guest silenced the device first, the guest EOI leaves the SPI inactive', () => {
    const gic = host({ eoiMode: true });
    const d = gic.distributor;
    d.setLine(SPI, true);
    gic.cpu(0).readIar();
    gic.cpu(0).writeEoir(SPI);
    gic.vif(0).writeLr(0, hwLr(SPI, SPI));
    gic.vif(0).readIar();
    d.setLine(SPI, false); // guest driver clears the device's interrupt
    expect(d.isActive(SPI)).toBe(true);
    expect(d.isPending(SPI)).toBe(false);
    gic.vif(0).writeEoir(SPI);
    expect(d.isActive(SPI)).toBe(false);
    expect(d.isPending(SPI)).toBe(false);
    expect(gic.cpu(0).irqLine).toBe(false);
  });

  it('guest EOImode=1: EOIR drops the virtual priority only; GICV_DIR deactivates the physical SPI', () => {
    const gic = host({ eoiMode: true });
    const d = gic.distributor;
    const v0 = gic.vif(0);
    v0.setCtlr(1 | (1 << 9));
    d.setLine(SPI, true);
    gic.cpu(0).readIar();
    gic.cpu(0).writeEoir(SPI);
    v0.writeLr(0, hwLr(SPI, SPI));
    v0.readIar();
    v0.writeEoir(SPI);
    expect(d.isActive(SPI)).toBe(true);
    v0.writeDir(SPI);
    expect(d.isActive(SPI)).toBe(false);
  });

  it('a forwarded PPI (virtual timer, 27) is deactivated on the guest CPU only', () => {
    const gic = host({ eoiMode: true });
    const d = gic.distributor;
    for (let cpu = 0; cpu < 2; cpu++) {
      d.setPriority(VTIMER_PPI, 0xa0, cpu);
      d.enable(VTIMER_PPI, cpu);
      d.setLine(VTIMER_PPI, true, cpu);
      expect(gic.cpu(cpu).readIar()).toBe(VTIMER_PPI);
      gic.cpu(cpu).writeEoir(VTIMER_PPI);
    }
    const v1 = gic.vif(1);
    v1.writeLr(0, hwLr(VTIMER_PPI, VTIMER_PPI));
    expect(v1.readIar()).toBe(VTIMER_PPI);
    v1.writeEoir(VTIMER_PPI);
    expect(d.isActive(VTIMER_PPI, 1)).toBe(false);
    expect(d.isActive(VTIMER_PPI, 0)).toBe(true);
    expect(gic.cpu(1).irqLine).toBe(true); // timer line still high on CPU 1
    expect(gic.cpu(0).irqLine).toBe(false);
  });

  it('a guest EOI after the host already deactivated (double deactivation) is flagged', () => {
    const gic = host({ eoiMode: true });
    const d = gic.distributor;
    d.setLine(SPI, true);
    gic.cpu(0).readIar();
    gic.cpu(0).writeEoir(SPI);
    gic.cpu(0).writeDir(SPI); // host deactivates too: the race the patch names
    d.setLine(SPI, false);
    gic.vif(0).writeLr(0, hwLr(SPI, SPI));
    gic.vif(0).readIar();
    gic.vif(0).writeEoir(SPI);
    expect(gic.vif(0).unpredictableCount).toBe(1);
  });

  it('an LR with HW=1 in the pending+active state is refused', () => {
    const gic = host({ eoiMode: true });
    const state = LrState.PendingActive;
    const write = (): void => {
      gic
        .vif(0)
        .writeLr(0, makeLr({ vintid: SPI, pintid: SPI, hw: true, eoi: false, state, priority: 0, group1: false }));
    };
    expect(write).toThrow(ModelError);
  });
});

describe('normal (irqfd) path: HW=0 LR with EOI maintenance', () => {
  it('guest EOI raises the maintenance interrupt PPI 25 on the host CPU; folding the LR lowers it', () => {
    const log: string[] = [];
    const gic = host({ eoiMode: true, log });
    const d = gic.distributor;
    const c0 = gic.cpu(0);
    const v0 = gic.vif(0);

    d.setLine(SPI, true);
    expect(c0.readIar()).toBe(SPI);
    c0.writeEoir(SPI);
    d.disable(SPI); // VFIO automask (disable_irq_nosync)
    c0.writeDir(SPI); // host deactivates itself on the normal path
    expect(d.isActive(SPI)).toBe(false);
    expect(c0.irqLine).toBe(false);

    v0.writeLr(0, eoiLr(SPI));
    expect(v0.readIar()).toBe(SPI);
    d.setLine(SPI, false); // guest silences the device
    v0.writeEoir(SPI);
    expect(v0.readEisr(0)).toBe(1);
    expect(v0.maintenanceLine).toBe(true);
    expect(d.isPending(MAINTENANCE_PPI, 0)).toBe(true);
    expect(d.isPending(MAINTENANCE_PPI, 1)).toBe(false);
    expect(c0.irqLine).toBe(true);

    expect(c0.readIar()).toBe(MAINTENANCE_PPI); // host takes the maintenance IRQ
    v0.writeLr(0, 0); // kvm folds the LR (vgic_v2_fold_lr_state) and clears it
    expect(v0.maintenanceLine).toBe(false);
    c0.writeEoir(MAINTENANCE_PPI);
    c0.writeDir(MAINTENANCE_PPI);
    expect(d.isActive(MAINTENANCE_PPI, 0)).toBe(false);
    expect(d.isPending(MAINTENANCE_PPI, 0)).toBe(false);
    expect(c0.irqLine).toBe(false);
    expect(log).toEqual(['irq0=1', 'irq0=0', 'virq0=1', 'virq0=0', 'irq0=1', 'irq0=0']);
  });
});

describe('determinism', () => {
  it('the same sequence of calls yields the same callback trace', () => {
    const run = (): string[] => {
      const log: string[] = [];
      const gic = host({ eoiMode: true, log });
      const d = gic.distributor;
      for (let i = 0; i < 5; i++) {
        d.setLine(SPI, true);
        const iar = gic.cpu(0).readIar();
        gic.cpu(0).writeEoir(iar);
        gic.vif(0).writeLr(0, hwLr(SPI, SPI));
        const viar = gic.vif(0).readIar();
        if (i % 2 === 0) d.setLine(SPI, false);
        gic.vif(0).writeEoir(viar);
        log.push(`iar=${iar} viar=${viar}`);
      }
      return log;
    };
    const a = run();
    expect(a).toEqual(run());
    expect(a.filter((l) => l.startsWith('iar='))).toEqual(Array.from({ length: 5 }, () => 'iar=40 viar=40'));
  });
});
