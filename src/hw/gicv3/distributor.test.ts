import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../sim/errors.js';
import { beginFootprint, footprintSet, oidOf } from '../../sim/footprint.js';
import { Gicv3CpuInterface } from './cpuInterface.js';
import { Gicv3Distributor } from './distributor.js';
import { Gicv3Redistributor } from './redistributor.js';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_DS,
  GICD_CTLR_ENABLE_G1,
  GICD_ICACTIVER,
  GICD_ICACTIVERnE,
  GICD_ICENABLER,
  GICD_ICENABLERnE,
  GICD_ICFGR,
  GICD_ICFGRnE,
  GICD_ICPENDR,
  GICD_ICPENDRnE,
  GICD_IGROUPR,
  GICD_IGROUPRnE,
  GICD_IPRIORITYR,
  GICD_IPRIORITYRnE,
  GICD_IROUTER,
  GICD_IROUTER_IRM,
  GICD_IROUTERnE,
  GICD_ISACTIVER,
  GICD_ISACTIVERnE,
  GICD_ISENABLER,
  GICD_ISENABLERnE,
  GICD_ISPENDR,
  GICD_ISPENDRnE,
  GICD_PIDR2,
  GICD_TYPER,
  GICD_TYPER_A3V,
  GICD_TYPER_ESPI,
  GICD_TYPER_ESPI_RANGE_SHIFT,
  GICD_TYPER_LPIS,
  GICR_ICFGR0,
  GICR_ICFGR1,
  GICR_IPRIORITYR0,
  GICR_ISENABLER0,
  GICR_ISPENDR0,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_WAKER,
  GICR_WAKER_CHILDREN_ASLEEP,
  GICR_WAKER_PROCESSOR_SLEEP,
  ICC_CTLR_EOIMODE,
  packAffinity,
  SPURIOUS_INTID,
} from './regs.js';

/** Four PEs in two clusters (Aff1 0 and 1, Aff0 0-1), GICD enabled, every PE awake with Group 1 enabled, PMR 0xF0. */
function rig(opts: { nrPes?: number; affinities?: number[] } = {}) {
  const nrPes = opts.nrPes ?? 4;
  const affinities = opts.affinities ?? [0x000, 0x001, 0x100, 0x101].slice(0, nrPes);
  const d = new Gicv3Distributor({ nrPes, nrIrqs: 96, affinities });
  const rds = affinities.map((_, pe) => new Gicv3Redistributor(d, pe));
  const cpus = affinities.map((_, pe) => new Gicv3CpuInterface({ pe, distributor: d }));
  d.write(GICD_CTLR, GICD_CTLR_ENABLE_G1);
  for (const rd of rds) rd.writeWaker(0);
  for (const c of cpus) {
    c.setPmr(0xf0);
    c.setIgrpen1(1);
  }
  return { d, rds, cpus };
}
function spi(
  d: Gicv3Distributor,
  intid: number,
  prio: number,
  route: number | 'any',
  trigger: 'level' | 'edge' = 'level',
) {
  d.setConfig(intid, trigger);
  d.setPriority(intid, prio);
  d.setRoute(intid, route);
  d.enable(intid);
}
const hppis = (d: Gicv3Distributor) => [0, 1, 2, 3].slice(0, d.nrPes).map((pe) => d.highestPending(pe));

describe('GICD identification (IHI 0069 §12.9)', () => {
  it('GICD_TYPER: ITLinesNumber, IDbits, A3V, no LPIs', () => {
    const d = new Gicv3Distributor({ nrPes: 2, nrIrqs: 96 });
    const t = d.read(GICD_TYPER);
    expect(t & 0x1f).toBe(2);
    expect((t >>> 19) & 0x1f).toBe(15);
    expect(t & GICD_TYPER_A3V).not.toBe(0);
    expect(t & GICD_TYPER_LPIS).toBe(0);
    expect((new Gicv3Distributor({ nrPes: 1, nrIrqs: 32, idBits: 24 }).typer >>> 19) & 0x1f).toBe(23);
    expect(d.read(GICD_PIDR2) & 0xf0).toBe(0x30); // gic_of_init checks ArchRev
  });

  it('GICD_CTLR: ARE and DS read as one, only the group enables are writable, RWP reads 0', () => {
    const d = new Gicv3Distributor({ nrPes: 1, nrIrqs: 64 });
    expect(d.read(GICD_CTLR)).toBe(GICD_CTLR_ARE | GICD_CTLR_DS);
    d.write(GICD_CTLR, 0xffffffff);
    expect(d.read(GICD_CTLR)).toBe(GICD_CTLR_ARE | GICD_CTLR_DS | 3);
  });

  it('rejects configurations the model cannot represent', () => {
    expect(() => new Gicv3Distributor({ nrPes: 33, nrIrqs: 64 })).toThrow(ModelError);
    expect(() => new Gicv3Distributor({ nrPes: 1, nrIrqs: 48 })).toThrow(ModelError);
    expect(() => new Gicv3Distributor({ nrPes: 2, nrIrqs: 64, affinities: [1, 1] })).toThrow(/same affinity/);
    expect(() => new Gicv3Distributor({ nrPes: 1, nrIrqs: 64, affinities: [16] })).toThrow(/Aff0 16/);
  });
});

describe('affinity routing (§4.5, GICD_IROUTER<n>)', () => {
  it('an SPI reaches only the PE its IROUTER affinity names', () => {
    const { d, cpus } = rig();
    spi(d, 40, 0xa0, 2);
    d.setLine(40, true);
    expect(hppis(d)).toEqual([SPURIOUS_INTID, SPURIOUS_INTID, 40, SPURIOUS_INTID]);
    expect(cpus.map((c) => c.irqLine)).toEqual([false, false, true, false]);
  });

  it('GICD_IROUTER is written and read as two 32-bit halves; Aff3 takes part in the match', () => {
    const aff = [packAffinity(0, 0, 0, 0), packAffinity(1, 2, 3, 4)];
    const { d } = rig({ nrPes: 2, affinities: aff });
    spi(d, 33, 0x80, 0);
    d.write(GICD_IROUTER + 33 * 8, (2 << 16) | (3 << 8) | 4);
    expect(d.routeOf(33)).toBeNull(); // Aff3 still 0: 0.2.3.4 names no PE
    d.write(GICD_IROUTER + 33 * 8 + 4, 1);
    expect(d.routeOf(33)).toBe(1);
    expect(d.read(GICD_IROUTER + 33 * 8)).toBe((2 << 16) | (3 << 8) | 4);
    expect(d.read(GICD_IROUTER + 33 * 8 + 4)).toBe(1);
    d.setPending(33);
    expect(d.highestPending(1)).toBe(33);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
  });

  it('an affinity naming no PE forwards the SPI nowhere and reads back as written (CONSTRAINED UNPREDICTABLE)', () => {
    const { d } = rig();
    spi(d, 40, 0xa0, 0);
    d.write(GICD_IROUTER + 40 * 8, 0x0207);
    d.setLine(40, true);
    expect(hppis(d)).toEqual([SPURIOUS_INTID, SPURIOUS_INTID, SPURIOUS_INTID, SPURIOUS_INTID]);
    expect(d.read(GICD_IROUTER + 40 * 8)).toBe(0x0207);
    expect(d.isPending(40)).toBe(true);
  });

  it('re-routing a pending SPI moves it to the new PE', () => {
    const { d } = rig();
    spi(d, 40, 0xa0, 0);
    d.setPending(40);
    d.setRoute(40, 3);
    expect(hppis(d)).toEqual([SPURIOUS_INTID, SPURIOUS_INTID, SPURIOUS_INTID, 40]);
  });

  it('1 of N: offered to every participating PE; the first acknowledge takes it from the others', () => {
    const { d, cpus } = rig();
    spi(d, 50, 0xa0, 'any', 'edge');
    expect(d.read(GICD_IROUTER + 50 * 8) & GICD_IROUTER_IRM).not.toBe(0);
    d.setLine(50, true);
    expect(hppis(d)).toEqual([50, 50, 50, 50]);
    expect(cpus[2]!.readIar1()).toBe(50);
    expect(hppis(d)).toEqual([SPURIOUS_INTID, SPURIOUS_INTID, SPURIOUS_INTID, SPURIOUS_INTID]);
    expect(cpus[0]!.readIar1()).toBe(SPURIOUS_INTID);
  });

  it('1 of N: a PE with ICC_IGRPEN1_EL1 clear or ProcessorSleep set does not participate', () => {
    const { d, rds, cpus } = rig();
    spi(d, 50, 0xa0, 'any');
    cpus[0]!.setIgrpen1(0);
    rds[1]!.writeWaker(GICR_WAKER_PROCESSOR_SLEEP);
    d.setLine(50, true);
    expect(hppis(d)).toEqual([SPURIOUS_INTID, SPURIOUS_INTID, 50, 50]);
    cpus[0]!.setIgrpen1(1);
    expect(d.highestPending(0)).toBe(50);
  });

  it('GICD_CTLR.EnableGrp1 clear forwards nothing; the state still changes', () => {
    const { d } = rig();
    spi(d, 40, 0xa0, 0);
    d.setCtlr(0);
    d.setLine(40, true);
    expect(d.isPending(40)).toBe(true);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    d.setCtlr(GICD_CTLR_ENABLE_G1);
    expect(d.highestPending(0)).toBe(40);
  });

  it('private INTIDs have no IROUTER', () => {
    const { d } = rig();
    expect(() => d.setRoute(27, 0)).toThrow(/private/);
    expect(d.read(GICD_IROUTER + 27 * 8)).toBe(0);
  });
});

describe('1 of N under any interleaving (property)', () => {
  type Op =
    | { kind: 'edge' }
    | { kind: 'iar'; pe: number }
    | { kind: 'eoi'; pe: number }
    | { kind: 'sleep'; pe: number; on: boolean };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.constant<Op>({ kind: 'edge' }),
    fc.integer({ min: 0, max: 3 }).map<Op>((pe) => ({ kind: 'iar', pe })),
    fc.integer({ min: 0, max: 3 }).map<Op>((pe) => ({ kind: 'eoi', pe })),
    fc.record({ pe: fc.integer({ min: 0, max: 3 }), on: fc.boolean() }).map<Op>((r) => ({ kind: 'sleep', ...r })),
  );

  it('an edge SPI is acknowledged at most once per assertion and is held by at most one PE', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { d, rds, cpus } = rig();
        spi(d, 50, 0xa0, 'any', 'edge');
        const holders = new Set<number>();
        let edges = 0;
        let acks = 0;
        for (const o of ops) {
          if (o.kind === 'edge') {
            d.setLine(50, true);
            d.setLine(50, false);
            edges++;
          } else if (o.kind === 'iar') {
            if (cpus[o.pe]!.readIar1() === 50) {
              acks++;
              holders.add(o.pe);
            }
          } else if (o.kind === 'eoi') {
            if (holders.delete(o.pe)) cpus[o.pe]!.writeEoir1(50);
          } else rds[o.pe]!.writeWaker(o.on ? GICR_WAKER_PROCESSOR_SLEEP : 0);
          expect(holders.size).toBeLessThanOrEqual(1);
          expect(acks).toBeLessThanOrEqual(edges);
          expect(d.isActive(50)).toBe(holders.size === 1);
        }
        expect(cpus.reduce((n, c) => n + c.unpredictableCount, 0)).toBe(0);
      }),
    );
  });
});

describe('GICD SPI registers', () => {
  it('IS/IC ENABLER, PENDR, ACTIVER words cover SPIs; the INTID 0-31 word is RAZ/WI with ARE', () => {
    const { d } = rig();
    d.write(GICD_ISENABLER + 4, 1 << 8);
    expect(d.isEnabled(40)).toBe(true);
    d.write(GICD_ICENABLER + 4, 1 << 8);
    expect(d.isEnabled(40)).toBe(false);
    d.write(GICD_ISPENDR + 4, 1 << 9);
    expect(d.read(GICD_ISPENDR + 4)).toBe(1 << 9);
    d.write(GICD_ICPENDR + 4, 1 << 9);
    expect(d.isPending(41)).toBe(false);
    d.write(GICD_ISACTIVER + 8, 1);
    expect(d.isActive(64)).toBe(true);
    d.write(GICD_ICACTIVER + 8, 1);
    expect(d.isActive(64)).toBe(false);
    d.write(GICD_ISENABLER, 0xffffffff);
    expect(d.read(GICD_ISENABLER)).toBe(0);
    expect(d.isEnabled(27, 0)).toBe(false);
    expect(d.read(GICD_ISENABLER + 12)).toBe(0); // beyond ITLinesNumber
  });

  it('IGROUPR reads every implemented SPI as Group 1, IPRIORITYR keeps the implemented bits', () => {
    const { d } = rig();
    expect(d.read(GICD_IGROUPR)).toBe(0);
    expect(d.read(GICD_IGROUPR + 4)).toBe(0xffffffff);
    d.write(GICD_IPRIORITYR + 40, 0xa7, 1);
    expect(d.priorityOf(40)).toBe(0xa0);
    d.write(GICD_IPRIORITYR + 44, 0x80706050);
    expect(d.read(GICD_IPRIORITYR + 44)).toBe(0x80706050);
    d.write(GICD_IPRIORITYR + 4, 0xffffffff);
    expect(d.priorityOf(4, 0)).toBe(0);
  });

  it('ICFGR: level interrupts stay pending while asserted through ICPENDR; edge ones latch', () => {
    const { d } = rig();
    d.write(GICD_ICFGR + 8, 2 << 2); // INTID 33 edge
    expect(d.configOf(33)).toBe('edge');
    expect(d.configOf(32)).toBe('level');
    expect(d.read(GICD_ICFGR + 8)).toBe(2 << 2);
    d.setLine(32, true);
    d.write(GICD_ICPENDR + 4, 1);
    expect(d.isPending(32)).toBe(true);
    d.setLine(33, true);
    d.setLine(33, false);
    expect(d.isPending(33)).toBe(true);
    expect(d.read(GICD_ICFGR)).toBe(0);
  });

  it('level: acknowledge of an asserted line gives active-and-pending; deactivate gives pending', () => {
    const { d } = rig();
    spi(d, 40, 0xa0, 0);
    d.setLine(40, true);
    expect(d.acknowledge(0)).toBe(40);
    expect(d.isActive(40) && d.isPending(40)).toBe(true);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    expect(d.deactivate(40, 0)).toBe(true);
    expect(d.highestPending(0)).toBe(40);
    expect(d.deactivate(41, 0)).toBe(false);
  });

  it('ties at equal priority go to the lowest INTID, a PPI included', () => {
    const { d } = rig();
    spi(d, 40, 0x80, 0);
    d.setPriority(20, 0x80, 0);
    d.enable(20, 0);
    d.setPending(40);
    d.setPending(20, 0);
    expect(d.highestPending(0)).toBe(20);
    d.setPriority(40, 0x70);
    expect(d.highestPending(0)).toBe(40);
  });
});

describe('redistributors (§12.10, §12.11)', () => {
  it('GICR_TYPER reports the PE affinity in [63:32], Processor_Number, and Last only on the last one', () => {
    const { rds } = rig();
    expect(rds[2]!.read(GICR_TYPER + 4)).toBe(0x100);
    expect(rds[3]!.read(GICR_TYPER + 4)).toBe(0x101);
    expect((rds[2]!.read(GICR_TYPER) >>> 8) & 0xffff).toBe(2);
    expect(rds.map((r) => (r.read(GICR_TYPER) & GICR_TYPER_LAST) !== 0)).toEqual([false, false, false, true]);
  });

  it('GICR_WAKER: a sleeping redistributor forwards nothing; clearing ProcessorSleep clears ChildrenAsleep', () => {
    const d = new Gicv3Distributor({ nrPes: 1, nrIrqs: 64 });
    const rd = new Gicv3Redistributor(d, 0);
    d.setCtlr(GICD_CTLR_ENABLE_G1);
    expect(rd.read(GICR_WAKER)).toBe(GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP);
    spi(d, 40, 0xa0, 0);
    d.setPending(40);
    expect(d.highestPending(0)).toBe(SPURIOUS_INTID);
    rd.write(GICR_WAKER, 0);
    expect(rd.read(GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP).toBe(0);
    expect(d.highestPending(0)).toBe(40);
  });

  it('SGI_base registers are banked per PE; GICR_ICFGR0 reads SGIs as edge and ignores writes', () => {
    const { d, rds } = rig();
    rds[1]!.write(GICR_SGI_BASE + GICR_ISENABLER0, 1 << 27);
    expect(d.isEnabled(27, 1)).toBe(true);
    expect(d.isEnabled(27, 0)).toBe(false);
    rds[1]!.write(GICR_SGI_BASE + GICR_IPRIORITYR0 + 27, 0x40, 1);
    expect(d.priorityOf(27, 1)).toBe(0x40);
    expect(rds[1]!.read(GICR_SGI_BASE + GICR_IPRIORITYR0 + 24)).toBe(0x40000000);
    rds[1]!.write(GICR_SGI_BASE + GICR_ISPENDR0, 1 << 27);
    expect(d.highestPending(1)).toBe(27);
    expect(rds[1]!.read(GICR_SGI_BASE + GICR_ICFGR0)).toBe(0xaaaaaaaa);
    rds[1]!.write(GICR_SGI_BASE + GICR_ICFGR0, 0);
    expect(d.configOf(3, 1)).toBe('edge');
    rds[1]!.write(GICR_SGI_BASE + GICR_ICFGR1, 2 << 22); // PPI 27 edge
    expect(d.configOf(27, 1)).toBe('edge');
    expect(rds[1]!.read(GICR_SGI_BASE + GICR_ICFGR1)).toBe(2 << 22);
    expect(rds[1]!.read(GICR_SGI_BASE + GICR_ISENABLER0 + 4)).toBe(0); // SPIs are not in this frame
  });

  it('rejects word accesses that are not aligned and byte accesses outside IPRIORITYR', () => {
    const { d, rds } = rig();
    expect(() => d.read(GICD_ISENABLER + 2)).toThrow(ModelError);
    expect(() => d.read(GICD_ISENABLER, 1)).toThrow(ModelError);
    expect(() => rds[0]!.read(GICR_WAKER, 1)).toThrow(ModelError);
  });
});

describe('footprints (sim/footprint.ts)', () => {
  it('declares the INTID it changes and the CPU interface whose best candidate changed', () => {
    const names: string[] = [];
    const d = new Gicv3Distributor({ nrPes: 2, nrIrqs: 64, newOid: (n) => names.push(n) - 1 });
    d.setCtlr(GICD_CTLR_ENABLE_G1);
    d.setProcessorSleep(1, false);
    spi(d, 40, 0xa0, 1);
    beginFootprint(true);
    d.setLine(40, true);
    const fp = footprintSet();
    beginFootprint(false);
    expect(fp?.map((o) => names[oidOf(o)])).toEqual(['gicv3.intid40', 'icc1']);
  });
});

describe('GICv3.1 Extended SPIs (§12.9 GICD_*RnE, GICD_IROUTER<n>E; irq-gic-v3.c ESPI_RANGE)', () => {
  /** Two PEs, SPIs 32..95, ESPIs 4096..4159, GICD enabled, both PEs awake with Group 1 enabled, PMR 0xF0. */
  function espiRig() {
    const d = new Gicv3Distributor({ nrPes: 2, nrIrqs: 96, nrEspis: 64 });
    const rds = [0, 1].map((pe) => new Gicv3Redistributor(d, pe));
    const cpus = [0, 1].map((pe) => new Gicv3CpuInterface({ pe, distributor: d }));
    d.write(GICD_CTLR, GICD_CTLR_ENABLE_G1);
    for (const rd of rds) rd.writeWaker(0);
    for (const c of cpus) {
      c.setPmr(0xf0);
      c.setIgrpen1(1);
    }
    return { d, cpus };
  }

  it('GICD_TYPER reports ESPI and ESPI_range = nrEspis / 32 - 1; a GICv3.0 reports neither', () => {
    const t = new Gicv3Distributor({ nrPes: 1, nrIrqs: 64, nrEspis: 1024 }).typer;
    expect(t & GICD_TYPER_ESPI).not.toBe(0);
    expect(t >>> GICD_TYPER_ESPI_RANGE_SHIFT).toBe(31);
    expect(new Gicv3Distributor({ nrPes: 1, nrIrqs: 64, nrEspis: 64 }).typer >>> GICD_TYPER_ESPI_RANGE_SHIFT).toBe(1);
    expect(new Gicv3Distributor({ nrPes: 1, nrIrqs: 64 }).typer & (GICD_TYPER_ESPI | (0x1f << 27))).toBe(0);
    expect(() => new Gicv3Distributor({ nrPes: 1, nrIrqs: 64, nrEspis: 48 })).toThrow(ModelError);
    expect(() => new Gicv3Distributor({ nrPes: 1, nrIrqs: 64, nrEspis: 2048 })).toThrow(ModelError);
  });

  it('the E-register blocks cover ESPIs 4096 + 32n.. as the SPI blocks cover SPIs; unimplemented ones are RAZ/WI', () => {
    const { d } = espiRig();
    d.write(GICD_ISENABLERnE + 4, 1 << 3); // ESPI 4131
    expect(d.isEnabled(4131)).toBe(true);
    expect(d.read(GICD_ISENABLERnE + 4)).toBe(1 << 3);
    d.write(GICD_ICENABLERnE + 4, 1 << 3);
    expect(d.isEnabled(4131)).toBe(false);
    d.write(GICD_ISPENDRnE, 1 << 5);
    expect(d.isPending(4101)).toBe(true);
    d.write(GICD_ICPENDRnE, 1 << 5);
    expect(d.isPending(4101)).toBe(false);
    d.write(GICD_ISACTIVERnE, 1);
    expect(d.isActive(4096)).toBe(true);
    d.write(GICD_ICACTIVERnE, 1);
    expect(d.isActive(4096)).toBe(false);
    d.write(GICD_IPRIORITYRnE + 7, 0x57, 1);
    expect(d.priorityOf(4103)).toBe(0x50);
    expect(d.read(GICD_IPRIORITYRnE + 4)).toBe(0x50000000);
    d.write(GICD_ICFGRnE + 4, 2 << 2); // ESPI 4096 + 16 + 1 edge
    expect(d.configOf(4113)).toBe('edge');
    expect(d.read(GICD_ICFGRnE + 4)).toBe(2 << 2);
    expect(d.read(GICD_IGROUPRnE + 4)).toBe(0xffffffff);
    d.write(GICD_IROUTERnE + 5 * 8, packAffinity(0, 0, 0, 1));
    expect(d.routeOf(4101)).toBe(1);
    expect(d.read(GICD_IROUTERnE + 5 * 8)).toBe(1);
    // beyond ESPI_range, and the blocks of a GIC without ESPIs
    d.write(GICD_ISENABLERnE + 8, 0xffffffff);
    expect(d.read(GICD_ISENABLERnE + 8)).toBe(0);
    expect(d.read(GICD_IGROUPRnE + 8)).toBe(0);
    expect(d.isValidIntid(4160)).toBe(false);
    const v30 = new Gicv3Distributor({ nrPes: 1, nrIrqs: 64 });
    v30.write(GICD_ISENABLERnE, 0xffffffff);
    expect(v30.read(GICD_ISENABLERnE)).toBe(0);
    expect(v30.isValidIntid(4096)).toBe(false);
  });

  it('an ESPI level line is acknowledged through ICC_IAR1_EL1 as its INTID and deactivated by ICC_DIR_EL1', () => {
    const { d, cpus } = espiRig();
    spi(d, 4100, 0xa0, 1);
    cpus[1]!.setCtlr(ICC_CTLR_EOIMODE);
    d.setLine(4100, true);
    expect(cpus[1]!.irqLine).toBe(true);
    expect(cpus[0]!.irqLine).toBe(false);
    expect(cpus[1]!.readIar1()).toBe(4100);
    expect(d.isActive(4100) && d.isPending(4100)).toBe(true);
    cpus[1]!.writeEoir1(4100);
    d.setLine(4100, false);
    expect(d.isActive(4100)).toBe(true);
    cpus[1]!.writeDir(4100);
    expect(d.isActive(4100)).toBe(false);
    expect(cpus[1]!.unpredictableCount).toBe(0);
  });

  it('highestPending is the lowest (priority, INTID) over SPIs and ESPIs alike (property)', () => {
    const intids = [40, 63, 95, 4096, 4127, 4128, 4159];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...intids), fc.integer({ min: 0, max: 15 }), fc.boolean()), {
          maxLength: 12,
        }),
        (ops) => {
          const { d } = espiRig();
          const prio = new Map<number, number>();
          const pending = new Set<number>();
          for (const [intid, p, pend] of ops) {
            spi(d, intid, p << 4, 0, 'edge');
            prio.set(intid, p << 4);
            if (pend) {
              d.setPending(intid);
              pending.add(intid);
            } else {
              d.clearPending(intid);
              pending.delete(intid);
            }
          }
          const best = [...pending].sort((a, b) => prio.get(a)! - prio.get(b)! || a - b)[0];
          expect(d.highestPending(0)).toBe(best ?? SPURIOUS_INTID);
        },
      ),
    );
  });
});
