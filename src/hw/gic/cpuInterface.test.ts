import { describe, expect, it } from 'vitest';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { ModelError } from '../../sim/errors.js';
import { GicCpuInterface } from './cpuInterface.js';
import { GicDistributor } from './distributor.js';
import {
  GIC_CPU_ACTIVEPRIO,
  GIC_CPU_BINPOINT,
  GIC_CPU_CTRL,
  GIC_CPU_CTRL_EOImodeNS,
  GIC_CPU_DEACTIVATE,
  GIC_CPU_EOI,
  GIC_CPU_HIGHPRI,
  GIC_CPU_IDENT,
  GIC_CPU_INTACK,
  GIC_CPU_PRIMASK,
  GIC_CPU_RUNNINGPRI,
  GICC_IIDR_GIC400,
  IDLE_PRIORITY,
  SPURIOUS_INTID,
} from './regs.js';

interface Rig {
  d: GicDistributor;
  cpus: GicCpuInterface[];
  log: string[];
}

/** Two CPUs, GICD and both GICCs enabled, PMR 0xF0 (Linux GICC_INT_PRI_THRESHOLD). */
function rig(opts: { eoiMode?: boolean; priorityBits?: number } = {}): Rig {
  const d = new GicDistributor({ nrCpus: 2, nrIrqs: 96, priorityBits: opts.priorityBits });
  const log: string[] = [];
  const cpus = [0, 1].map(
    (cpu) =>
      new GicCpuInterface({
        cpu,
        distributor: d,
        irqSink: { setIrqLine: (c, level) => log.push(`cpu${c}:${level ? 1 : 0}`) },
      }),
  );
  d.setCtlr(1);
  for (const c of cpus) {
    c.setCtlr(1 | (opts.eoiMode ? GIC_CPU_CTRL_EOImodeNS : 0));
    c.setPmr(0xf0);
  }
  return { d, cpus, log };
}
function spi(d: GicDistributor, intid: number, prio: number, trigger: 'level' | 'edge' = 'level', targets = 1): void {
  d.setConfig(intid, trigger);
  d.setPriority(intid, prio);
  d.setTargets(intid, targets);
  d.enable(intid);
}

describe('GICC_IAR (IHI 0048B §4.4.4)', () => {
  it('returns 1023 when nothing is pending, and the line stays low', () => {
    const { cpus, log } = rig();
    expect(cpus[0]!.readIar()).toBe(SPURIOUS_INTID);
    expect(cpus[0]!.irqLine).toBe(false);
    expect(log).toEqual([]);
  });

  it('acknowledges the pending interrupt: it becomes active and the IRQ line falls', () => {
    const { d, cpus, log } = rig();
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    expect(cpus[0]!.irqLine).toBe(true);
    expect(cpus[1]!.irqLine).toBe(false);
    expect(cpus[0]!.readIar()).toBe(40);
    expect(d.isActive(40)).toBe(true);
    expect(cpus[0]!.irqLine).toBe(false);
    expect(log).toEqual(['cpu0:1', 'cpu0:0']);
  });

  it('returns SGIs with the source CPUID in bits [12:10]', () => {
    const { d, cpus } = rig();
    d.enable(7, 0);
    d.sendSgi(1, 7, 0, 1);
    expect(cpus[0]!.readIar()).toBe(7 | (1 << 10));
  });

  it('masks by GICC_PMR: priority must be strictly higher (lower value) than the mask', () => {
    const { d, cpus } = rig();
    spi(d, 40, 0xf0);
    d.setLine(40, true);
    expect(cpus[0]!.irqLine).toBe(false);
    expect(cpus[0]!.readIar()).toBe(SPURIOUS_INTID);
    expect(d.isActive(40)).toBe(false);
    expect(cpus[0]!.readHppir()).toBe(40); // HPPIR is not masked by PMR
    cpus[0]!.setPmr(0xf8);
    expect(cpus[0]!.irqLine).toBe(true);
    expect(cpus[0]!.readIar()).toBe(40);
  });

  it('PMR keeps only the implemented priority bits', () => {
    const { cpus } = rig();
    cpus[0]!.setPmr(0xff);
    expect(cpus[0]!.pmrValue).toBe(0xf8);
  });

  it('returns 1023 with GICC_CTLR.Enable = 0', () => {
    const { d, cpus } = rig();
    spi(d, 40, 0xa0);
    cpus[0]!.setCtlr(0);
    d.setLine(40, true);
    expect(cpus[0]!.irqLine).toBe(false);
    expect(cpus[0]!.readIar()).toBe(SPURIOUS_INTID);
    cpus[0]!.setCtlr(1);
    expect(cpus[0]!.irqLine).toBe(true);
  });

  it('rejects a bad CPU at construction', () => {
    const d = new GicDistributor({ nrCpus: 1, nrIrqs: 64 });
    expect(() => new GicCpuInterface({ cpu: 1, distributor: d })).toThrow(/bad CPU 1/);
  });
});

describe('GICC_EOIR / GICC_DIR and EOImode (§3.2.1, §4.4.5, §4.4.15)', () => {
  it('EOImode 0: EOIR drops priority and deactivates', () => {
    const { d, cpus } = rig();
    spi(d, 40, 0xa0, 'edge');
    d.setLine(40, true);
    const c = cpus[0]!;
    c.readIar();
    expect(c.readRpr()).toBe(0xa0);
    c.writeEoir(40);
    expect(c.readRpr()).toBe(IDLE_PRIORITY);
    expect(d.isActive(40)).toBe(false);
    expect(c.unpredictableCount).toBe(0);
  });

  it('EOImode 0 with a level line still high: EOIR → pending again → IRQ line rises', () => {
    const { d, cpus, log } = rig();
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    cpus[0]!.readIar();
    cpus[0]!.writeEoir(40);
    expect(d.isPending(40)).toBe(true);
    expect(log).toEqual(['cpu0:1', 'cpu0:0', 'cpu0:1']);
  });

  it('EOImode 1: EOIR only drops priority, the interrupt stays active until GICC_DIR', () => {
    const { d, cpus } = rig({ eoiMode: true });
    const c = cpus[0]!;
    expect(c.eoiMode).toBe(true);
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    expect(c.readIar()).toBe(40);
    c.writeEoir(40);
    expect(c.readRpr()).toBe(IDLE_PRIORITY);
    expect(d.isActive(40)).toBe(true);
    expect(c.irqLine).toBe(false); // line still high but the interrupt is active: not re-signalled
    c.writeDir(40);
    expect(d.isActive(40)).toBe(false);
    expect(d.isPending(40)).toBe(true);
    expect(c.irqLine).toBe(true);
    expect(c.unpredictableCount).toBe(0);
  });

  it('EOImode 1: other interrupts are taken while one waits for DIR', () => {
    const { d, cpus } = rig({ eoiMode: true });
    const c = cpus[0]!;
    spi(d, 40, 0x40);
    spi(d, 41, 0xa0);
    d.setLine(40, true);
    c.readIar();
    c.writeEoir(40);
    d.setLine(41, true);
    expect(c.readIar()).toBe(41);
  });

  it('DIR with EOImode 0 is UNPREDICTABLE: counted, reported and ignored', () => {
    const { d, cpus } = rig();
    const seen = unpredictableLog(d);
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    cpus[0]!.readIar();
    cpus[0]!.writeDir(40);
    expect(d.isActive(40)).toBe(true);
    expect(cpus[0]!.unpredictableCount).toBe(1);
    expect(seen).toEqual(['0 GICC_DIR dir_eoimode0 40']);
  });

  it('EOIR with nothing active and DIR of an inactive interrupt are counted and reported', () => {
    const { d, cpus } = rig({ eoiMode: true });
    const seen = unpredictableLog(d);
    cpus[0]!.writeEoir(40);
    cpus[0]!.writeDir(41);
    expect(cpus[0]!.unpredictableCount).toBe(2);
    expect(seen).toEqual(['0 GICC_EOIR no_active_priority 40', '0 GICC_DIR inactive 41']);
  });

  it('spurious/special INTIDs are ignored; nonexistent INTIDs are model errors', () => {
    const { cpus } = rig();
    cpus[0]!.writeEoir(SPURIOUS_INTID);
    cpus[0]!.writeDir(1022);
    expect(cpus[0]!.unpredictableCount).toBe(0);
    expect(() => cpus[0]!.writeEoir(500)).toThrow(ModelError);
    expect(() => cpus[0]!.writeDir(96)).toThrow(/GICC_DIR write of INTID 96 on CPU 0/);
  });

  it('EOIR deactivates the banked PPI of its own CPU only', () => {
    const { d, cpus } = rig();
    for (const c of [0, 1]) {
      d.enable(27, c);
      d.setPriority(27, 0x20, c);
      d.setLine(27, true, c);
    }
    expect(cpus[0]!.readIar()).toBe(27);
    expect(cpus[1]!.readIar()).toBe(27);
    d.setLine(27, false, 0);
    cpus[0]!.writeEoir(27);
    expect(d.isActive(27, 0)).toBe(false);
    expect(d.isActive(27, 1)).toBe(true);
  });
});

describe('preemption and the active priority stack (§3.3)', () => {
  it('a higher-priority interrupt preempts one in service; EOIs unwind the stack', () => {
    const { d, cpus, log } = rig();
    const c = cpus[0]!;
    spi(d, 40, 0xa0, 'edge');
    spi(d, 41, 0x40, 'edge');
    d.setLine(40, true);
    expect(c.readIar()).toBe(40);
    expect(c.readRpr()).toBe(0xa0);
    d.setLine(41, true);
    expect(c.irqLine).toBe(true);
    expect(c.readIar()).toBe(41);
    expect(c.readRpr()).toBe(0x40);
    expect(c.readApr(0)).toBe((1 << (0x40 >> 3)) | (1 << (0xa0 >> 3)));
    c.writeEoir(41);
    expect(c.readRpr()).toBe(0xa0);
    c.writeEoir(40);
    expect(c.readRpr()).toBe(IDLE_PRIORITY);
    expect(c.readApr(0)).toBe(0);
    expect(log).toEqual(['cpu0:1', 'cpu0:0', 'cpu0:1', 'cpu0:0']);
  });

  it('an equal-priority interrupt does not preempt; it is taken after EOI', () => {
    const { d, cpus } = rig();
    const c = cpus[0]!;
    spi(d, 40, 0x80, 'edge');
    spi(d, 41, 0x80, 'edge');
    d.setLine(40, true);
    c.readIar();
    d.setLine(41, true);
    expect(c.irqLine).toBe(false);
    expect(c.readIar()).toBe(SPURIOUS_INTID);
    expect(c.readHppir()).toBe(41);
    c.writeEoir(40);
    expect(c.irqLine).toBe(true);
    expect(c.readIar()).toBe(41);
  });

  it('a lower-priority interrupt does not preempt', () => {
    const { d, cpus } = rig();
    const c = cpus[0]!;
    spi(d, 40, 0x40, 'edge');
    spi(d, 41, 0x80, 'edge');
    d.setLine(40, true);
    c.readIar();
    d.setLine(41, true);
    expect(c.readIar()).toBe(SPURIOUS_INTID);
    expect(d.isPending(41)).toBe(true);
  });

  it('preemption compares group priorities per GICC_BPR', () => {
    const { d, cpus } = rig();
    const c = cpus[0]!;
    expect(c.bprValue).toBe(2); // minimum for 5 priority bits
    c.setBpr(0);
    expect(c.bprValue).toBe(2);
    c.setBpr(4); // group priority = bits [7:5]
    spi(d, 40, 0x50, 'edge');
    spi(d, 41, 0x40, 'edge');
    spi(d, 42, 0x20, 'edge');
    d.setLine(40, true);
    c.readIar();
    expect(c.readRpr()).toBe(0x40);
    d.setLine(41, true); // 0x40 is in the same group as 0x50
    expect(c.readIar()).toBe(SPURIOUS_INTID);
    d.setLine(42, true); // 0x20 is a higher group
    expect(c.readIar()).toBe(42);
    expect(c.readRpr()).toBe(0x20);
  });

  it('with 8 priority bits there are 128 preemption levels over 4 APR words', () => {
    const { d, cpus } = rig({ priorityBits: 8 });
    const c = cpus[0]!;
    expect(c.minBpr).toBe(0);
    spi(d, 40, 0xa2, 'edge');
    d.setLine(40, true);
    c.readIar();
    expect(c.readRpr()).toBe(0xa2);
    expect(c.readApr(2)).toBe(1 << ((0xa2 >> 1) - 64));
  });

  it('GICC_APR write/read round-trips (CPU PM save/restore) and sets the running priority', () => {
    const { cpus } = rig();
    cpus[0]!.writeApr(0, 1 << 4);
    expect(cpus[0]!.readApr(0)).toBe(1 << 4);
    expect(cpus[0]!.readRpr()).toBe(0x20);
  });
});

describe('GICC MMIO view', () => {
  it('decodes the GICC offsets Linux uses', () => {
    const { d, cpus } = rig();
    const c = cpus[1]!;
    c.write(GIC_CPU_CTRL, 0x201);
    expect(c.read(GIC_CPU_CTRL)).toBe(0x201);
    expect(c.eoiMode).toBe(true);
    c.write(GIC_CPU_PRIMASK, 0xf0);
    expect(c.read(GIC_CPU_PRIMASK)).toBe(0xf0);
    c.write(GIC_CPU_BINPOINT, 3);
    expect(c.read(GIC_CPU_BINPOINT)).toBe(3);
    expect(c.read(GIC_CPU_IDENT)).toBe(GICC_IIDR_GIC400);
    expect(c.read(GIC_CPU_RUNNINGPRI)).toBe(0xff);
    spi(d, 50, 0x30, 'level', 2);
    d.setLine(50, true);
    expect(c.read(GIC_CPU_HIGHPRI)).toBe(50);
    expect(c.read(GIC_CPU_INTACK)).toBe(50);
    expect(c.read(GIC_CPU_ACTIVEPRIO)).toBe(1 << 6);
    c.write(GIC_CPU_EOI, 50);
    expect(d.isActive(50)).toBe(true);
    c.write(GIC_CPU_DEACTIVATE, 50);
    expect(d.isActive(50)).toBe(false);
  });

  it('keeps only the Non-secure GICC_CTLR bits', () => {
    const { cpus } = rig();
    cpus[0]!.setCtlr(0xffffffff);
    expect(cpus[0]!.ctlrValue).toBe(0x261);
  });
});
