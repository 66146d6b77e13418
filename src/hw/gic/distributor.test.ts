import { describe, expect, it } from 'vitest';
import { ModelError } from '../../sim/errors.js';
import { GicDistributor } from './distributor.js';
import {
  GIC_DIST_ACTIVE_CLEAR,
  GIC_DIST_ACTIVE_SET,
  GIC_DIST_CONFIG,
  GIC_DIST_CTR,
  GIC_DIST_CTRL,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_IIDR,
  GIC_DIST_PENDING_CLEAR,
  GIC_DIST_PENDING_SET,
  GIC_DIST_PRI,
  GIC_DIST_SGI_PENDING_CLEAR,
  GIC_DIST_SGI_PENDING_SET,
  GIC_DIST_SOFTINT,
  GIC_DIST_TARGET,
  GICD_IIDR_GIC400,
  isPpi,
  isPrivate,
  isSgi,
  isSpi,
  SPURIOUS_INTID,
} from './regs.js';

type State = 'inactive' | 'pending' | 'active' | 'active+pending';

function state(d: GicDistributor, intid: number, cpu?: number): State {
  const p = d.isPending(intid, cpu);
  const a = d.isActive(intid, cpu);
  return a ? (p ? 'active+pending' : 'active') : p ? 'pending' : 'inactive';
}

/** An enabled distributor with `intid` enabled, targeted at CPU 0 and given a priority. */
function dist(nrCpus = 2, nrIrqs = 96): GicDistributor {
  const d = new GicDistributor({ nrCpus, nrIrqs });
  d.setCtlr(1);
  return d;
}
function armSpi(d: GicDistributor, intid: number, trigger: 'level' | 'edge' = 'level', prio = 0xa0): void {
  d.setConfig(intid, trigger);
  d.setPriority(intid, prio);
  d.setTargets(intid, 1);
  d.enable(intid);
}

describe('INTID ranges (IHI 0048B §2.2.1)', () => {
  it('classifies SGIs 0-15, PPIs 16-31, SPIs 32-1019', () => {
    expect([0, 15, 16, 31, 32, 1019, 1020].map((i) => [isSgi(i), isPpi(i), isSpi(i), isPrivate(i)])).toEqual([
      [true, false, false, true],
      [true, false, false, true],
      [false, true, false, true],
      [false, true, false, true],
      [false, false, true, false],
      [false, false, true, false],
      [false, false, false, false],
    ]);
  });

  it('validates INTIDs against nrIrqs and the reserved 1020-1023', () => {
    const d = dist(2, 64);
    expect(d.isValidIntid(63)).toBe(true);
    expect(d.isValidIntid(64)).toBe(false);
    expect(d.isValidIntid(-1)).toBe(false);
    expect(d.isValidIntid(1.5)).toBe(false);
    const big = new GicDistributor({ nrCpus: 1, nrIrqs: 1024 });
    expect(big.isValidIntid(1019)).toBe(true);
    expect(big.isValidIntid(1020)).toBe(false);
    expect(big.isValidIntid(1023)).toBe(false);
  });
});

describe('GicDistributor construction and invalid inputs', () => {
  it('rejects bad geometry', () => {
    expect(() => new GicDistributor({ nrCpus: 0, nrIrqs: 64 })).toThrow(ModelError);
    expect(() => new GicDistributor({ nrCpus: 9, nrIrqs: 64 })).toThrow(/bad nrCpus 9/);
    expect(() => new GicDistributor({ nrCpus: 1, nrIrqs: 48 })).toThrow(/multiple of 32/);
    expect(() => new GicDistributor({ nrCpus: 1, nrIrqs: 1056 })).toThrow(ModelError);
    expect(() => new GicDistributor({ nrCpus: 1, nrIrqs: 64, priorityBits: 3 })).toThrow(/priorityBits 3/);
  });

  it('throws ModelError naming the INTID or CPU', () => {
    const d = dist(2, 64);
    expect(() => d.enable(64)).toThrow(/bad INTID 64/);
    expect(() => d.setPending(1020)).toThrow(ModelError);
    expect(() => d.enable(27)).toThrow(/INTID 27 is private.*CPU is required/);
    expect(() => d.enable(27, 2)).toThrow(/bad CPU 2 \(nrCpus 2\)/);
    expect(() => d.setLine(5, true, 0)).toThrow(/INTID 5 is an SGI/);
    expect(() => d.setLine(40.5, true)).toThrow(/bad INTID 40.5/);
    expect(() => d.acknowledge(3)).toThrow(/bad CPU 3/);
    expect(() => d.setPriority(40, 256)).toThrow(/bad priority 256/);
    expect(() => d.setPriority(40, -1)).toThrow(ModelError);
    expect(() => d.setTargets(20, 1)).toThrow(/private/);
    expect(() => d.setTargets(40, 0x100)).toThrow(/bad CPU mask/);
    expect(() => d.sendSgi(0, 16, 0, 1)).toThrow(/bad SGI 16/);
    expect(() => d.setConfig(3, 'level', 0)).toThrow(/always edge/);
  });
});

describe('per-INTID configuration', () => {
  it('enable/disable is per INTID; SGI/PPI enables are banked per CPU', () => {
    const d = dist();
    d.enable(40);
    d.enable(27, 1);
    expect(d.isEnabled(40)).toBe(true);
    expect(d.isEnabled(41)).toBe(false);
    expect(d.isEnabled(27, 1)).toBe(true);
    expect(d.isEnabled(27, 0)).toBe(false);
    d.disable(40);
    expect(d.isEnabled(40)).toBe(false);
  });

  it('implements 5 priority bits by default: the low 3 bits read as zero', () => {
    const d = dist();
    d.setPriority(40, 0xff);
    expect(d.priorityOf(40)).toBe(0xf8);
    d.setPriority(40, 0xa7);
    expect(d.priorityOf(40)).toBe(0xa0);
    expect(d.priorityMask).toBe(0xf8);
    const d8 = new GicDistributor({ nrCpus: 1, nrIrqs: 64, priorityBits: 8 });
    d8.setPriority(40, 0xa7);
    expect(d8.priorityOf(40)).toBe(0xa7);
  });

  it('banks SGI/PPI priorities per CPU', () => {
    const d = dist();
    d.setPriority(27, 0x10, 0);
    d.setPriority(27, 0x80, 1);
    expect(d.priorityOf(27, 0)).toBe(0x10);
    expect(d.priorityOf(27, 1)).toBe(0x80);
  });

  it('SPI targets are masked to present CPUs; private targets read as the accessing CPU', () => {
    const d = dist(2);
    d.setTargets(40, 0xff);
    expect(d.targetsOf(40)).toBe(0b11);
    expect(d.targetsOf(20, 0)).toBe(1);
    expect(d.targetsOf(20, 1)).toBe(2);
    expect(d.targetsOf(3, 1)).toBe(2);
  });

  it('an SPI with no target is never forwarded (ITARGETSR reset value 0)', () => {
    const d = dist(2);
    d.enable(40);
    d.setPending(40);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.highestPending(1)).toBe(SPURIOUS_INTID);
    d.setTargets(40, 2);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.highestPending(1)).toBe(40);
  });

  it('uniprocessor: all SPIs target CPU 0 and ITARGETSR reads as zero (§4.3.12)', () => {
    const d = dist(1, 64);
    d.enable(40);
    d.setPending(40);
    expect(d.highestPending(0)).toBe(40);
    d.setTargets(40, 0); // WI
    expect(d.highestPending(0)).toBe(40);
    expect(d.read(GIC_DIST_TARGET + 40, 0, 1)).toBe(0);
    expect(d.read(GIC_DIST_TARGET, 0)).toBe(0);
  });

  it('SGIs are always edge; PPIs and SPIs default to level and are programmable', () => {
    const d = dist();
    expect(d.configOf(0, 0)).toBe('edge');
    expect(d.configOf(15, 1)).toBe('edge');
    expect(d.configOf(27, 0)).toBe('level');
    expect(d.configOf(40)).toBe('level');
    d.setConfig(3, 'edge', 0); // no-op
    d.setConfig(27, 'edge', 1);
    d.setConfig(40, 'edge');
    expect(d.configOf(27, 1)).toBe('edge');
    expect(d.configOf(27, 0)).toBe('level');
    expect(d.configOf(40)).toBe('edge');
  });
});

describe('level-sensitive state machine (IHI 0048B §3.2.4)', () => {
  it('line high → pending; acknowledge with line still high → active+pending', () => {
    const d = dist();
    armSpi(d, 40);
    expect(state(d, 40)).toBe('inactive');
    d.setLine(40, true);
    expect(state(d, 40)).toBe('pending');
    expect(d.acknowledge(0)).toBe(40);
    expect(state(d, 40)).toBe('active+pending');
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID); // not signalled again while active
  });

  it('deassert while pending → inactive (pending follows the line)', () => {
    const d = dist();
    armSpi(d, 40);
    d.setLine(40, true);
    d.setLine(40, false);
    expect(state(d, 40)).toBe('inactive');
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
  });

  it('deassert while active+pending → active; deactivate → inactive', () => {
    const d = dist();
    armSpi(d, 40);
    d.setLine(40, true);
    d.acknowledge(0);
    d.setLine(40, false);
    expect(state(d, 40)).toBe('active');
    expect(d.deactivate(40, 0)).toBe(true);
    expect(state(d, 40)).toBe('inactive');
  });

  it('deactivate with the line still high → pending again, and it is re-signalled', () => {
    const d = dist();
    armSpi(d, 40);
    d.setLine(40, true);
    d.acknowledge(0);
    d.deactivate(40, 0);
    expect(state(d, 40)).toBe('pending');
    expect(d.highestPending(0)).toBe(40);
  });

  it('assert while active → active+pending', () => {
    const d = dist();
    armSpi(d, 40);
    d.setLine(40, true);
    d.acknowledge(0);
    d.setLine(40, false);
    d.setLine(40, true);
    expect(state(d, 40)).toBe('active+pending');
  });

  it('software ISPENDR sets a latch that survives deassertion and is cleared by acknowledge', () => {
    const d = dist();
    armSpi(d, 40);
    d.setPending(40);
    expect(state(d, 40)).toBe('pending');
    d.setLine(40, true);
    d.setLine(40, false);
    expect(state(d, 40)).toBe('pending'); // latch keeps it pending
    d.acknowledge(0);
    expect(state(d, 40)).toBe('active'); // latch cleared, line low
    d.deactivate(40, 0);
    expect(state(d, 40)).toBe('inactive');
  });

  it('ICPENDR clears the latch but not a pending state driven by the asserted line (§4.3.8)', () => {
    const d = dist();
    armSpi(d, 40);
    d.setLine(40, true);
    d.setPending(40);
    d.clearPending(40);
    expect(state(d, 40)).toBe('pending');
    d.setLine(40, false);
    expect(state(d, 40)).toBe('inactive');
  });

  it('deactivate of an inactive interrupt reports false and changes nothing', () => {
    const d = dist();
    armSpi(d, 40);
    expect(d.deactivate(40, 0)).toBe(false);
    expect(state(d, 40)).toBe('inactive');
  });
});

describe('edge-triggered state machine (IHI 0048B §3.2.4)', () => {
  it('rising edge → pending; the pending latch stays after the line falls', () => {
    const d = dist();
    armSpi(d, 41, 'edge');
    d.setLine(41, true);
    expect(state(d, 41)).toBe('pending');
    d.setLine(41, false);
    expect(state(d, 41)).toBe('pending');
  });

  it('acknowledge clears the latch: pending → active even with the line still high', () => {
    const d = dist();
    armSpi(d, 41, 'edge');
    d.setLine(41, true);
    expect(d.acknowledge(0)).toBe(41);
    expect(state(d, 41)).toBe('active');
  });

  it('a new edge while active → active+pending; deactivate → pending', () => {
    const d = dist();
    armSpi(d, 41, 'edge');
    d.setLine(41, true);
    d.acknowledge(0);
    d.setLine(41, false);
    d.setLine(41, true);
    expect(state(d, 41)).toBe('active+pending');
    d.deactivate(41, 0);
    expect(state(d, 41)).toBe('pending');
  });

  it('a held-high line gives no new edge; repeated setLine(true) is idempotent', () => {
    const d = dist();
    armSpi(d, 41, 'edge');
    d.setLine(41, true);
    d.acknowledge(0);
    d.setLine(41, true);
    expect(state(d, 41)).toBe('active');
    d.deactivate(41, 0);
    expect(state(d, 41)).toBe('inactive');
    expect(d.lineLevel(41)).toBe(true);
  });

  it('two edges while pending collapse into one pending interrupt', () => {
    const d = dist();
    armSpi(d, 41, 'edge');
    d.setLine(41, true);
    d.setLine(41, false);
    d.setLine(41, true);
    d.acknowledge(0);
    expect(state(d, 41)).toBe('active');
  });
});

describe('PPIs are banked per CPU', () => {
  it('setLine(ppi, level, cpu) only affects that CPU', () => {
    const d = dist(2);
    for (const c of [0, 1]) {
      d.enable(27, c);
      d.setPriority(27, 0x40, c);
    }
    d.setLine(27, true, 1);
    expect(d.isPending(27, 1)).toBe(true);
    expect(d.isPending(27, 0)).toBe(false);
    expect(d.highestPending(1)).toBe(27);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.acknowledge(1)).toBe(27);
    expect(d.isActive(27, 1)).toBe(true);
    expect(d.isActive(27, 0)).toBe(false);
    expect(() => d.setLine(27, true)).toThrow(/CPU is required/);
  });
});

describe('interrupt selection', () => {
  it('picks the highest priority (lowest value), then the lowest INTID, skipping disabled and active', () => {
    const d = dist();
    armSpi(d, 40, 'level', 0x80);
    armSpi(d, 41, 'level', 0x40);
    armSpi(d, 42, 'level', 0x40);
    armSpi(d, 43, 'level', 0x00);
    for (const i of [40, 41, 42, 43]) d.setLine(i, true);
    d.disable(43);
    expect(d.highestPending(0)).toBe(41);
    d.acknowledge(0);
    expect(d.highestPending(0)).toBe(42);
    d.acknowledge(0);
    expect(d.highestPending(0)).toBe(40);
  });

  it('an SPI targeting two CPUs is taken by the first to acknowledge (1-N)', () => {
    const d = dist(2);
    armSpi(d, 40);
    d.setTargets(40, 3);
    d.setLine(40, true);
    expect(d.highestPending(0)).toBe(40);
    expect(d.highestPending(1)).toBe(40);
    expect(d.acknowledge(1)).toBe(40);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.acknowledge(0)).toBe(SPURIOUS_INTID);
  });

  it('GICD_CTLR.Enable = 0 forwards nothing but state still changes', () => {
    const d = dist();
    armSpi(d, 40);
    d.setCtlr(0);
    d.setLine(40, true);
    expect(d.isPending(40)).toBe(true);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.acknowledge(0)).toBe(SPURIOUS_INTID);
    expect(d.isActive(40)).toBe(false);
    d.setCtlr(1);
    expect(d.highestPending(0)).toBe(40);
  });

  it('tells the listeners of the CPUs a state change can reach: SPI targets, the PPI CPU, all for CTLR', () => {
    const d = dist(2);
    const calls: number[] = [];
    d.attach(0, { update: () => calls.push(0) });
    d.attach(1, { update: () => calls.push(1) });
    d.setTargets(40, 0b10);
    calls.length = 0;
    d.setLine(40, true);
    expect(calls).toEqual([1]);
    calls.length = 0;
    d.setLine(27, true, 0);
    expect(calls).toEqual([0]);
    calls.length = 0;
    d.setCtlr(0);
    expect(calls).toEqual([0, 1]);
  });
});

describe('SGIs (GICD_SGIR §4.3.15)', () => {
  it('filter 0 sends to the target list, tracking the source CPU in IAR bits [12:10]', () => {
    const d = dist(4, 64);
    d.enable(3, 2);
    d.sendSgi(1, 3, 0, 0b0100);
    expect(d.isPending(3, 2)).toBe(true);
    expect(d.isPending(3, 0)).toBe(false);
    expect(d.sgiSourcesOf(2, 3)).toBe(0b10);
    expect(d.highestPending(2)).toBe(3 | (1 << 10));
    expect(d.acknowledge(2)).toBe(3 | (1 << 10));
    expect(state(d, 3, 2)).toBe('active');
  });

  it('filter 1 sends to all but the sender, filter 2 to the sender only, filter 3 is ignored', () => {
    const d = dist(3, 64);
    d.sendSgi(1, 5, 1, 0);
    expect([0, 1, 2].map((c) => d.isPending(5, c))).toEqual([true, false, true]);
    d.sendSgi(1, 6, 2, 0);
    expect([0, 1, 2].map((c) => d.isPending(6, c))).toEqual([false, true, false]);
    d.sendSgi(1, 7, 3, 0b111);
    expect([0, 1, 2].map((c) => d.isPending(7, c))).toEqual([false, false, false]);
  });

  it('the same SGI from two sources is acknowledged once per source (active+pending in between)', () => {
    const d = dist(4, 64);
    d.enable(2, 0);
    d.sendSgi(3, 2, 0, 1);
    d.sendSgi(1, 2, 0, 1);
    expect(d.acknowledge(0)).toBe(2 | (1 << 10)); // lowest source first
    expect(state(d, 2, 0)).toBe('active+pending');
    d.deactivate(2, 0);
    expect(d.acknowledge(0)).toBe(2 | (3 << 10));
    expect(state(d, 2, 0)).toBe('active');
  });

  it('GICD_SGIR, SPENDSGIR and CPENDSGIR via MMIO', () => {
    const d = dist(2, 64);
    d.write(GIC_DIST_SOFTINT, (0 << 24) | (0b10 << 16) | 9, 0);
    expect(d.sgiSourcesOf(1, 9)).toBe(1);
    expect(d.read(GIC_DIST_SGI_PENDING_SET + 9, 1, 1)).toBe(1);
    d.write(GIC_DIST_SGI_PENDING_SET + 9, 0b10, 1, 1);
    expect(d.sgiSourcesOf(1, 9)).toBe(0b11);
    d.write(GIC_DIST_SGI_PENDING_CLEAR + 9, 0b11, 1, 1);
    expect(d.isPending(9, 1)).toBe(false);
  });
});

describe('GICD MMIO register map (IHI 0048B §4.1)', () => {
  it('GICD_CTLR, GICD_TYPER and GICD_IIDR', () => {
    const d = new GicDistributor({ nrCpus: 2, nrIrqs: 96 });
    expect(d.read(GIC_DIST_CTRL, 0)).toBe(0);
    d.write(GIC_DIST_CTRL, 0xffffffff, 0);
    expect(d.read(GIC_DIST_CTRL, 0)).toBe(1);
    expect(d.read(GIC_DIST_CTR, 0)).toBe(2 | (1 << 5));
    expect(d.typer).toBe(0x22);
    expect(d.read(GIC_DIST_IIDR, 0)).toBe(GICD_IIDR_GIC400);
  });

  it('ISENABLER 0x100 / ICENABLER 0x180, with register 0 banked', () => {
    const d = dist(2, 96);
    d.write(GIC_DIST_ENABLE_SET + 4, 1 << 8, 0); // INTID 40
    d.write(GIC_DIST_ENABLE_SET, 1 << 27, 1); // PPI 27 of CPU 1
    expect(d.isEnabled(40)).toBe(true);
    expect(d.isEnabled(27, 1)).toBe(true);
    expect(d.read(GIC_DIST_ENABLE_SET, 0)).toBe(0);
    expect(d.read(GIC_DIST_ENABLE_CLEAR, 1)).toBe((1 << 27) >>> 0);
    d.write(GIC_DIST_ENABLE_CLEAR + 4, 1 << 8, 0);
    expect(d.isEnabled(40)).toBe(false);
    d.write(GIC_DIST_ENABLE_SET + 4, 0, 0); // writing zeros has no effect
    expect(d.read(GIC_DIST_ENABLE_SET + 4, 0)).toBe(0);
    expect(d.read(GIC_DIST_ENABLE_SET + 12, 0)).toBe(0); // beyond ITLinesNumber
  });

  it('ISPENDR 0x200 / ICPENDR 0x280; SGI pending bits are read-only there', () => {
    const d = dist(2, 96);
    d.write(GIC_DIST_PENDING_SET + 4, 1 << 9, 0);
    expect(d.isPending(41)).toBe(true);
    expect(d.read(GIC_DIST_PENDING_SET + 4, 0)).toBe(1 << 9);
    d.write(GIC_DIST_PENDING_CLEAR + 4, 1 << 9, 0);
    expect(d.isPending(41)).toBe(false);
    d.write(GIC_DIST_PENDING_SET, 0xffffffff, 0);
    expect(d.isPending(3, 0)).toBe(false);
    expect(d.isPending(20, 0)).toBe(true);
  });

  it('ISACTIVER 0x300 / ICACTIVER 0x380', () => {
    const d = dist(2, 96);
    d.write(GIC_DIST_ACTIVE_SET + 4, 1 << 10, 0);
    expect(d.isActive(42)).toBe(true);
    expect(d.read(GIC_DIST_ACTIVE_CLEAR + 4, 1)).toBe(1 << 10);
    d.write(GIC_DIST_ACTIVE_CLEAR + 4, 1 << 10, 0);
    expect(d.isActive(42)).toBe(false);
  });

  it('IPRIORITYR 0x400 byte and word accesses, low bits RAZ', () => {
    const d = dist(2, 96);
    d.write(GIC_DIST_PRI + 40, 0xa5, 0, 1);
    expect(d.priorityOf(40)).toBe(0xa0);
    d.write(GIC_DIST_PRI + 44, 0x0f1f2fff, 0);
    expect([44, 45, 46, 47].map((i) => d.priorityOf(i))).toEqual([0xf8, 0x28, 0x18, 0x08]);
    expect(d.read(GIC_DIST_PRI + 44, 0)).toBe(0x081828f8);
    d.write(GIC_DIST_PRI + 24, 0x80, 1, 1);
    expect(d.priorityOf(24, 1)).toBe(0x80);
    expect(d.priorityOf(24, 0)).toBe(0);
  });

  it('ITARGETSR 0x800: SPIs writable, ITARGETSR0-7 read-only own-CPU (Linux gic_get_cpumask)', () => {
    const d = dist(2, 96);
    expect(d.read(GIC_DIST_TARGET, 1)).toBe(0x02020202);
    d.write(GIC_DIST_TARGET + 16, 0x01010101, 1);
    expect(d.read(GIC_DIST_TARGET + 16, 1)).toBe(0x02020202);
    d.write(GIC_DIST_TARGET + 40, 0x02030103, 0);
    expect([40, 41, 42, 43].map((i) => d.targetsOf(i))).toEqual([3, 1, 3, 2]);
    d.write(GIC_DIST_TARGET + 44, 0xff, 0, 1);
    expect(d.targetsOf(44)).toBe(3);
  });

  it('ICFGR 0xC00: SGIs read 0xAAAAAAAA (edge), bit 2F+1 selects edge', () => {
    const d = dist(2, 96);
    expect(d.read(GIC_DIST_CONFIG, 0)).toBe(0xaaaaaaaa);
    d.write(GIC_DIST_CONFIG, 0, 0); // ignored
    expect(d.configOf(3, 0)).toBe('edge');
    d.write(GIC_DIST_CONFIG + 8, 2 << (2 * 9), 0); // INTID 41 edge
    expect(d.configOf(41)).toBe('edge');
    expect(d.configOf(40)).toBe('level');
    expect(d.read(GIC_DIST_CONFIG + 8, 0)).toBe(2 << 18);
    d.write(GIC_DIST_CONFIG + 4, 2 << (2 * 11), 1); // PPI 27 of CPU 1 edge
    expect(d.configOf(27, 1)).toBe('edge');
    expect(d.configOf(27, 0)).toBe('level');
  });

  it('rejects bad access sizes and alignment as model errors', () => {
    const d = dist();
    expect(() => d.read(GIC_DIST_ENABLE_SET + 1, 0, 1)).toThrow(/word-access only/);
    expect(() => d.read(GIC_DIST_PRI + 2, 0)).toThrow(/unaligned/);
    expect(() => d.read(GIC_DIST_CTRL, 5)).toThrow(/bad CPU 5/);
  });
});
