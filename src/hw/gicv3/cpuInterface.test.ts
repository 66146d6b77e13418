import { describe, expect, it } from 'vitest';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { Gicv3CpuInterface } from './cpuInterface.js';
import { Gicv3Distributor } from './distributor.js';
import {
  GICD_CTLR_ENABLE_G1,
  ICC_CTLR_A3V,
  ICC_CTLR_EOIMODE,
  ICC_SGI1R_HI_IRM,
  IDLE_PRIORITY,
  packAffinity,
  SPURIOUS_INTID,
} from './regs.js';

/** Three PEs: 0.0.0.0, 0.0.0.1, 0.0.1.0; all awake, Group 1 enabled, PMR 0xF0 (Linux DEFAULT_PMR_VALUE). */
function rig(opts: { eoiMode?: boolean; priorityBits?: number } = {}) {
  const affinities = [packAffinity(0, 0, 0, 0), packAffinity(0, 0, 0, 1), packAffinity(0, 0, 1, 0)];
  const d = new Gicv3Distributor({ nrPes: 3, nrIrqs: 96, affinities, priorityBits: opts.priorityBits });
  const log: string[] = [];
  const cpus = [0, 1, 2].map(
    (pe) =>
      new Gicv3CpuInterface({ pe, distributor: d, irqSink: { setIrqLine: (p, l) => log.push(`pe${p}:${l ? 1 : 0}`) } }),
  );
  d.setCtlr(GICD_CTLR_ENABLE_G1);
  for (const c of cpus) {
    d.setProcessorSleep(c.pe, false);
    c.setCtlr(opts.eoiMode ? ICC_CTLR_EOIMODE : 0);
    c.setPmr(0xf0);
    c.setIgrpen1(1);
  }
  return { d, cpus, c0: cpus[0]!, log };
}
function spi(d: Gicv3Distributor, intid: number, prio: number, trigger: 'level' | 'edge' = 'level', pe = 0) {
  d.setConfig(intid, trigger);
  d.setPriority(intid, prio);
  d.setRoute(intid, pe);
  d.enable(intid);
}

describe('ICC_IAR1_EL1 (IHI 0069 §12.2)', () => {
  it('reads 1023 with nothing pending; the line stays low', () => {
    const { c0, log } = rig();
    expect(c0.readIar1()).toBe(SPURIOUS_INTID);
    expect(log).toEqual([]);
  });

  it('acknowledges: the SPI becomes active, the running priority is its group priority, the line falls', () => {
    const { d, c0, log } = rig();
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    expect(c0.irqLine).toBe(true);
    expect(c0.readIar1()).toBe(40);
    expect(d.isActive(40)).toBe(true);
    expect(c0.readRpr()).toBe(0xa0);
    expect(c0.readAp1r(0)).toBe(1 << (0xa0 >> 3));
    expect(log).toEqual(['pe0:1', 'pe0:0']);
  });

  it('ICC_IGRPEN1_EL1 = 0 signals nothing; ICC_HPPIR1_EL1 still names the candidate', () => {
    const { d, c0 } = rig();
    spi(d, 40, 0xa0);
    c0.setIgrpen1(0);
    d.setLine(40, true);
    expect(c0.irqLine).toBe(false);
    expect(c0.readIar1()).toBe(SPURIOUS_INTID);
    expect(c0.readHppir1()).toBe(40);
    c0.setIgrpen1(1);
    expect(c0.irqLine).toBe(true);
  });
});

describe('priority masking and preemption (§4.8)', () => {
  it('ICC_PMR_EL1 masks priorities equal or lower (value ≥ PMR); HPPIR1 is not masked', () => {
    const { d, c0 } = rig();
    spi(d, 40, 0xf0);
    d.setLine(40, true);
    expect(c0.irqLine).toBe(false);
    expect(c0.readHppir1()).toBe(40);
    c0.setPmr(0xf8);
    expect(c0.irqLine).toBe(true);
    c0.setPmr(0xff);
    expect(c0.pmrValue).toBe(0xf8); // 5 implemented bits
  });

  it('a higher group priority preempts an active interrupt; an equal one waits', () => {
    const { d, c0 } = rig();
    spi(d, 40, 0xa0);
    spi(d, 41, 0xa0);
    spi(d, 42, 0x80);
    d.setLine(40, true);
    expect(c0.readIar1()).toBe(40);
    d.setLine(41, true);
    expect(c0.irqLine).toBe(false);
    d.setLine(42, true);
    expect(c0.irqLine).toBe(true);
    expect(c0.readIar1()).toBe(42);
    expect(c0.readRpr()).toBe(0x80);
  });

  it('ICC_BPR1_EL1 groups priorities: with BPR1 = 6, 0x90 does not preempt 0xa0 (same group 0x80)', () => {
    const { d, c0 } = rig();
    expect(c0.bpr1Value).toBe(3);
    c0.setBpr1(0);
    expect(c0.bpr1Value).toBe(3); // below the minimum: the minimum
    c0.setBpr1(6);
    spi(d, 40, 0xa0);
    spi(d, 41, 0x90);
    d.setLine(40, true);
    expect(c0.readIar1()).toBe(40);
    expect(c0.readRpr()).toBe(0x80);
    d.setLine(41, true);
    expect(c0.irqLine).toBe(false);
  });

  it('8 priority bits give 128 preemption levels over four ICC_AP1R<n>_EL1', () => {
    const { d, c0 } = rig({ priorityBits: 8 });
    expect(c0.minBpr1).toBe(1);
    spi(d, 40, 0xfe);
    c0.setPmr(0xff);
    d.setLine(40, true);
    expect(c0.readIar1()).toBe(40);
    expect(c0.readAp1r(3)).toBe(0x80000000);
    expect(c0.readRpr()).toBe(0xfe);
  });
});

describe('EOImode (§4.1.1: priority drop and deactivation)', () => {
  it('EOImode 0: ICC_EOIR1_EL1 drops the priority and deactivates', () => {
    const { d, c0 } = rig();
    spi(d, 40, 0xa0, 'edge');
    d.setLine(40, true);
    c0.readIar1();
    c0.writeEoir1(40);
    expect(d.isActive(40)).toBe(false);
    expect(c0.readRpr()).toBe(IDLE_PRIORITY);
    expect(c0.unpredictableCount).toBe(0);
  });

  it('EOImode 1 (KVM hosts): EOIR1 only drops the priority; ICC_DIR_EL1 deactivates', () => {
    const { d, c0 } = rig({ eoiMode: true });
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    c0.readIar1();
    d.setLine(40, false);
    c0.writeEoir1(40);
    expect(c0.readRpr()).toBe(IDLE_PRIORITY);
    expect(d.isActive(40)).toBe(true);
    c0.writeDir(40);
    expect(d.isActive(40)).toBe(false);
    expect(c0.unpredictableCount).toBe(0);
  });

  it('level interrupt still asserted after deactivation is signalled again', () => {
    const { d, c0 } = rig();
    spi(d, 40, 0xa0);
    d.setLine(40, true);
    c0.readIar1();
    expect(c0.irqLine).toBe(false);
    c0.writeEoir1(40);
    expect(c0.irqLine).toBe(true);
  });

  it('counts the UNPREDICTABLE cases: EOI with no active priority, DIR with EOImode 0, DIR of an inactive INTID', () => {
    const { d, c0 } = rig();
    const seen = unpredictableLog(d);
    c0.writeEoir1(40);
    expect(c0.unpredictableCount).toBe(2); // no active priority, and 40 is not active
    c0.writeDir(40);
    expect(c0.unpredictableCount).toBe(3);
    c0.setCtlr(ICC_CTLR_EOIMODE);
    c0.writeDir(40);
    c0.writeDir(2000); // an INTID this GIC does not have
    expect(c0.unpredictableCount).toBe(5);
    c0.writeEoir1(SPURIOUS_INTID);
    c0.writeDir(1022);
    expect(c0.unpredictableCount).toBe(5);
    expect(seen).toEqual([
      '0 ICC_EOIR1_EL1 no_active_priority 40',
      '0 ICC_EOIR1_EL1 inactive 40',
      '0 ICC_DIR_EL1 dir_eoimode0 40',
      '0 ICC_DIR_EL1 inactive 40',
      '0 ICC_DIR_EL1 not_implemented 2000',
    ]);
  });
});

describe('ICC_CTLR_EL1 and ICC_SRE_EL1', () => {
  it('EOImode is writable; PRIbits, IDbits, A3V are read-only', () => {
    const { c0 } = rig();
    c0.setCtlr(0xffffffff);
    expect(c0.ctlrValue).toBe(ICC_CTLR_EOIMODE | (4 << 8) | ICC_CTLR_A3V);
    expect(c0.sreValue).toBe(7);
    const d24 = new Gicv3Distributor({ nrPes: 1, nrIrqs: 32, idBits: 24 });
    expect((new Gicv3CpuInterface({ pe: 0, distributor: d24 }).ctlrValue >>> 11) & 7).toBe(1);
  });
});

describe('ICC_SGI1R_EL1 (§12.2; Linux gic_send_sgi)', () => {
  it('TargetList with Aff1 selects PEs by affinity; the sender can target itself', () => {
    const { d, cpus } = rig();
    for (const c of cpus) d.enable(3, c.pe);
    cpus[2]!.writeSgi1r((3 << 24) | (0 << 16) | 0b11, 0);
    expect([0, 1, 2].map((pe) => d.isPending(3, pe))).toEqual([true, true, false]);
    cpus[0]!.writeSgi1r((5 << 24) | (1 << 16) | 1, 0);
    expect(d.isPending(5, 2)).toBe(true);
    expect(d.isPending(5, 0)).toBe(false);
  });

  it('the acknowledged SGI has no source in the INTID (one pending bit per target PE)', () => {
    const { d, cpus } = rig();
    d.enable(3, 0);
    cpus[1]!.writeSgi1r((3 << 24) | 1, 0);
    cpus[2]!.writeSgi1r((3 << 24) | 1, 0);
    expect(cpus[0]!.readIar1()).toBe(3);
    expect(d.isPending(3, 0)).toBe(false);
  });

  it('IRM = 1 targets every PE but the sender; an Aff2/Aff3 mismatch or RS ≠ 0 targets none', () => {
    const { d, cpus } = rig();
    cpus[1]!.writeSgi1r(7 << 24, ICC_SGI1R_HI_IRM);
    expect([0, 1, 2].map((pe) => d.isPending(7, pe))).toEqual([true, false, true]);
    cpus[0]!.writeSgi1r((8 << 24) | 1, 1); // Aff2 = 1
    cpus[0]!.writeSgi1r((8 << 24) | 1, 1 << 16); // Aff3 = 1
    cpus[0]!.writeSgi1r((8 << 24) | 1, 1 << 12); // RS = 1: Aff0 16
    expect([0, 1, 2].map((pe) => d.isPending(8, pe))).toEqual([false, false, false]);
  });
});
