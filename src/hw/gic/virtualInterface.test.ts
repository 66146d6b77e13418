import { describe, expect, it } from 'vitest';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { ModelError } from '../../sim/errors.js';
import { GicDistributor } from './distributor.js';
import { checkLr, lrPhysicalId } from './listRegister.js';
import {
  GIC_CPU_ALIAS_BINPOINT,
  GIC_CPU_BINPOINT,
  GIC_CPU_CTRL,
  GIC_CPU_EOI,
  GIC_CPU_INTACK,
  GIC_CPU_PRIMASK,
  GICH_APR,
  GICH_EISR0,
  GICH_ELRSR0,
  GICH_HCR,
  GICH_HCR_EN,
  GICH_HCR_LRENPIE,
  GICH_HCR_NPIE,
  GICH_HCR_UIE,
  GICH_HCR_VGRP0DIE,
  GICH_HCR_VGRP0EIE,
  GICH_HCR_VGRP1DIE,
  GICH_HCR_VGRP1EIE,
  GICH_LR_EOI,
  GICH_LR_HW,
  GICH_LR0,
  GICH_MISR,
  GICH_MISR_EOI,
  GICH_MISR_LRENP,
  GICH_MISR_NP,
  GICH_MISR_U,
  GICH_MISR_VGRP0D,
  GICH_MISR_VGRP0E,
  GICH_MISR_VGRP1D,
  GICH_MISR_VGRP1E,
  GICH_VMCR,
  GICH_VTR,
  IDLE_PRIORITY,
  MAINTENANCE_PPI,
  SPURIOUS_INTID,
} from './regs.js';
import { decodeLr, GicVirtualInterface, LrState, makeLr } from './virtualInterface.js';

interface Rig {
  d: GicDistributor;
  v: GicVirtualInterface;
  log: string[];
}

/** Virtual interface of CPU 1, HCR.En set, guest GICV_CTLR = EnableGrp0|EnableGrp1|AckCtl, GICV_PMR = 0xF8. */
function rig(opts: { nrLrs?: number; eoiMode?: boolean; hcr?: number } = {}): Rig {
  const d = new GicDistributor({ nrCpus: 2, nrIrqs: 96 });
  const log: string[] = [];
  const v = new GicVirtualInterface({
    cpu: 1,
    distributor: d,
    nrLrs: opts.nrLrs,
    virqSink: { setVirqLine: (c, l) => log.push(`v${c}:${l ? 1 : 0}`) },
  });
  v.setCtlr(0x7 | (opts.eoiMode ? 1 << 9 : 0));
  v.setPmr(0xf8);
  v.writeHcr(GICH_HCR_EN | (opts.hcr ?? 0));
  return { d, v, log };
}
const pend = (vintid: number, priority = 0xa0, extra: Partial<Parameters<typeof makeLr>[0]> = {}): number =>
  makeLr({ vintid, hw: false, eoi: false, state: LrState.Pending, priority, group1: false, ...extra });
const pendHw = (vintid: number, pintid: number, priority = 0xa0): number =>
  makeLr({ vintid, pintid, hw: true, eoi: false, state: LrState.Pending, priority, group1: false });

describe('list register encoding (IHI 0048B §5.3.6, arm-gic.h GICH_LR_*)', () => {
  it('places VirtualID, PhysicalID, Priority, State, Grp1 and HW in their fields', () => {
    const lr = makeLr({
      vintid: 40,
      pintid: 72,
      hw: true,
      eoi: false,
      state: LrState.Active,
      priority: 0xa0,
      group1: true,
    });
    expect(lr).toBe((40 | (72 << 10) | (0x14 << 23) | (2 << 28) | (1 << 30) | 0x80000000) >>> 0);
    expect(lrPhysicalId(lr)).toBe(72);
    expect(decodeLr(lr)).toEqual({
      vintid: 40,
      pintid: 72,
      hw: true,
      eoi: false,
      state: 2,
      priority: 0xa0,
      group1: true,
    });
  });

  it('with HW=0, bit 19 is EOI and bits [12:10] the SGI source CPUID', () => {
    const lr = makeLr({
      vintid: 3,
      cpuid: 5,
      hw: false,
      eoi: true,
      state: LrState.Pending,
      priority: 0x08,
      group1: false,
    });
    expect(lr).toBe(3 | (5 << 10) | GICH_LR_EOI | (1 << 23) | (1 << 28));
    expect(decodeLr(lr)).toMatchObject({ vintid: 3, cpuid: 5, eoi: true, hw: false, priority: 0x08 });
  });

  it('keeps only 5 priority bits', () => {
    expect(decodeLr(pend(40, 0xff)).priority).toBe(0xf8);
  });

  it('rejects pending+active with HW=1, HW with SGI or reserved pINTID, and reserved vINTIDs', () => {
    const hwPA = (GICH_LR_HW | (40 << 10) | 40 | (3 << 28)) >>> 0;
    expect(() => checkLr(hwPA)).toThrow(/P\+A with HW=1/);
    expect(() =>
      makeLr({
        vintid: 40,
        pintid: 40,
        hw: true,
        eoi: false,
        state: LrState.PendingActive,
        priority: 0,
        group1: false,
      }),
    ).toThrow(ModelError);
    expect(() => checkLr((GICH_LR_HW | (5 << 10) | 40 | (1 << 28)) >>> 0)).toThrow(/pINTID 5/);
    expect(() => checkLr(1021 | (1 << 28))).toThrow(/reserved vINTID/);
    expect(() => makeLr({ vintid: 40, hw: true, eoi: true, state: 1, priority: 0, group1: false, pintid: 40 })).toThrow(
      /no EOI bit/,
    );
    expect(() => makeLr({ vintid: 40, cpuid: 1, hw: false, eoi: false, state: 1, priority: 0, group1: false })).toThrow(
      /CPUID only for SGIs/,
    );
  });
});

describe('GICH registers', () => {
  it('GICH_VTR reports ListRegs-1, PREbits-1 = PRIbits-1 = 4', () => {
    expect(rig().v.readVtr()).toBe(((4 << 29) | (4 << 26) | 3) >>> 0);
    expect(rig({ nrLrs: 16 }).v.readVtr() & 0x3f).toBe(15);
  });

  it('rejects bad construction and bad LR indices', () => {
    const d = new GicDistributor({ nrCpus: 1, nrIrqs: 64 });
    expect(() => new GicVirtualInterface({ cpu: 1, distributor: d })).toThrow(/bad CPU 1/);
    expect(() => new GicVirtualInterface({ cpu: 0, distributor: d, nrLrs: 65 })).toThrow(/bad nrLrs/);
    const { v } = rig();
    expect(() => v.writeLr(4, 0)).toThrow(/LR index 4 \(nrLrs 4\)/);
    expect(() => v.readLr(-1)).toThrow(ModelError);
  });

  it('writing a pending+active HW=1 LR throws and leaves the LR unchanged', () => {
    const { v } = rig();
    expect(() => v.writeLr(0, (GICH_LR_HW | (40 << 10) | 40 | (3 << 28)) >>> 0)).toThrow(ModelError);
    expect(v.readLr(0)).toBe(0);
  });

  it('GICH_VMCR aliases GICV_CTLR, GICV_PMR, GICV_BPR and GICV_ABPR with minimum binary points', () => {
    const { v } = rig();
    v.writeVmcr(0);
    expect(v.read(GIC_CPU_BINPOINT)).toBe(2);
    expect(v.read(GIC_CPU_ALIAS_BINPOINT)).toBe(3);
    v.write(GIC_CPU_CTRL, 0x203);
    v.write(GIC_CPU_PRIMASK, 0xa7);
    v.write(GIC_CPU_BINPOINT, 5);
    expect(v.read(GIC_CPU_CTRL)).toBe(0x203);
    expect(v.eoiMode).toBe(true);
    expect(v.read(GIC_CPU_PRIMASK)).toBe(0xa0);
    expect(v.pmrValue).toBe(0xa0);
    expect(v.bprValue).toBe(5);
    expect(v.readVmcr()).toBe((((0xa0 >> 3) << 27) | (5 << 21) | (3 << 18) | 0x203) >>> 0);
  });

  it('MMIO: HCR, VTR, VMCR, LRs, APR at the GICH offsets', () => {
    const { v } = rig();
    v.writeGich(GICH_LR0 + 8, pend(44));
    expect(v.readLr(2)).toBe(pend(44));
    expect(v.readGich(GICH_LR0 + 8)).toBe(pend(44));
    expect(v.readGich(GICH_HCR)).toBe(GICH_HCR_EN);
    expect(v.readGich(GICH_VTR)).toBe(v.readVtr());
    expect(v.readGich(GICH_VMCR)).toBe(v.readVmcr());
    v.writeGich(GICH_APR, 1 << 3);
    expect(v.readGich(GICH_APR)).toBe(1 << 3);
    expect(v.readRpr()).toBe(0x18);
    expect(v.readGich(GICH_ELRSR0)).toBe(0b1011);
  });
});

describe('GICV_IAR / RPR / HPPIR on the LR contents', () => {
  it('acknowledges the highest-priority pending LR: pending → active, RPR = its priority', () => {
    const { v, log } = rig();
    v.writeLr(0, pend(40, 0x80));
    v.writeLr(1, pend(41, 0x40));
    expect(v.virqLine).toBe(true);
    expect(v.readHppir()).toBe(41);
    expect(v.readIar()).toBe(41);
    expect(decodeLr(v.readLr(1)).state).toBe(LrState.Active);
    expect(v.readRpr()).toBe(0x40);
    expect(v.virqLine).toBe(false); // 0x80 cannot preempt 0x40
    expect(v.readIar()).toBe(SPURIOUS_INTID);
    expect(log).toEqual(['v1:1', 'v1:0']);
  });

  it('returns the SGI source CPUID for HW=0 SGIs', () => {
    const { v } = rig();
    v.writeLr(0, pend(2, 0x80, { cpuid: 3 }));
    expect(v.readIar()).toBe(2 | (3 << 10));
  });

  it('nothing is signalled with HCR.En = 0, a disabled group, or priority not above the virtual PMR', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0xa0));
    v.writeHcr(0);
    expect(v.readIar()).toBe(SPURIOUS_INTID);
    v.writeHcr(GICH_HCR_EN);
    v.setCtlr(0x6); // EnableGrp0 clear
    expect(v.virqLine).toBe(false);
    v.setCtlr(0x7);
    v.setPmr(0xa0);
    expect(v.virqLine).toBe(false);
    v.setPmr(0xa8);
    expect(v.virqLine).toBe(true);
    expect(v.readIar()).toBe(40);
  });

  it('a Group 1 LR with AckCtl = 0 reads 1022 and stays pending', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0xa0, { group1: true }));
    v.setCtlr(0x3); // EnableGrp0|EnableGrp1, AckCtl = 0
    expect(v.readIar()).toBe(1022);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Pending);
  });

  it('nested virtual preemption: a higher group priority preempts; EOIs unwind GICH_APR', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0x80));
    v.readIar();
    v.writeLr(1, pend(41, 0x88));
    expect(v.virqLine).toBe(false); // lower priority
    v.writeLr(2, pend(42, 0x78));
    expect(v.virqLine).toBe(true);
    expect(v.readIar()).toBe(42);
    expect(v.readApr()).toBe((1 << (0x78 >> 3)) | (1 << (0x80 >> 3)));
    v.writeEoir(42);
    expect(v.readRpr()).toBe(0x80);
    v.writeEoir(40);
    expect(v.readRpr()).toBe(IDLE_PRIORITY);
    expect(v.readIar()).toBe(41);
  });

  it('preemption compares virtual group priorities per GICV_BPR', () => {
    for (const [bpr, preempts] of [
      [2, true],
      [6, true], // group priority = bit [7]: 0x78 vs 0x80 differ
      [7, false], // no group priority bits: nothing preempts
    ] as const) {
      const { v } = rig();
      v.setBpr(bpr);
      v.writeLr(0, pend(40, 0x80));
      v.readIar();
      v.writeLr(1, pend(41, 0x78));
      expect(v.virqLine, `BPR ${bpr}`).toBe(preempts);
    }
    const { v } = rig();
    v.setBpr(5); // group priority = bits [7:6]: 0x78 (01) vs 0x40 (01) are one group
    v.writeLr(0, pend(40, 0x78));
    v.readIar();
    v.writeLr(1, pend(41, 0x40));
    expect(v.virqLine).toBe(false);
  });

  it('a pending+active LR is not signalled until deactivated, then it is pending', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0x80, { state: LrState.PendingActive }));
    expect(v.virqLine).toBe(false);
    v.writeApr(1 << (0x80 >> 3));
    v.writeEoir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Pending);
    expect(v.virqLine).toBe(true);
  });
});

describe('GICV_EOIR / GICV_DIR and virtual EOImode', () => {
  it('EOImode 0: EOIR drops priority and invalidates the LR (ELRSR bit set)', () => {
    const { v } = rig();
    v.writeLr(0, pend(40));
    v.readIar();
    expect(v.readElrsr(0)).toBe(0b1110);
    v.writeEoir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Invalid);
    expect(v.readRpr()).toBe(IDLE_PRIORITY);
    expect(v.readElrsr(0)).toBe(0b1111);
    expect(v.unpredictableCount).toBe(0);
  });

  it('EOImode 1: EOIR only drops priority; DIR deactivates', () => {
    const { v } = rig({ eoiMode: true });
    v.writeLr(0, pend(40));
    v.readIar();
    v.writeEoir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    expect(v.readRpr()).toBe(IDLE_PRIORITY);
    v.writeDir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Invalid);
  });

  it('DIR with EOImode 0 is counted, reported and ignored', () => {
    const { d, v } = rig();
    const seen = unpredictableLog(d);
    v.writeLr(0, pend(40));
    v.readIar();
    v.writeDir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    expect(v.unpredictableCount).toBe(1);
    expect(seen).toEqual(['1 GICV_DIR dir_eoimode0 40']);
  });

  it('SGI deactivation matches the source CPUID', () => {
    const { v } = rig();
    v.writeLr(0, pend(2, 0x80, { cpuid: 1, state: LrState.Active }));
    v.writeLr(1, pend(2, 0x80, { cpuid: 3, state: LrState.Active }));
    v.writeApr(1 << (0x80 >> 3));
    v.writeEoir(2 | (3 << 10));
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    expect(decodeLr(v.readLr(1)).state).toBe(LrState.Invalid);
  });

  it('EOI of an INTID in no LR increments EOICount (wraps at 32) and raises LRENP with LRENPIE', () => {
    const { v, d } = rig({ hcr: GICH_HCR_LRENPIE });
    expect(v.readMisr()).toBe(0);
    v.writeApr(1);
    v.writeEoir(50);
    expect(v.eoiCount).toBe(1);
    expect(v.readHcr() >>> 27).toBe(1);
    expect(v.readMisr()).toBe(GICH_MISR_LRENP);
    expect(v.maintenanceLine).toBe(true);
    expect(d.isPending(MAINTENANCE_PPI, 1)).toBe(true);
    v.writeHcr(GICH_HCR_EN | GICH_HCR_LRENPIE | (31 << 27));
    v.writeApr(1);
    v.writeEoir(50);
    expect(v.eoiCount).toBe(0);
    expect(v.maintenanceLine).toBe(false);
  });

  it('EOImode 1: DIR of an INTID in no LR increments EOICount', () => {
    const { v } = rig({ eoiMode: true });
    v.writeDir(60);
    expect(v.eoiCount).toBe(1);
  });

  it('an EOI that clears no APR bit has no effect and does not count', () => {
    const { d, v } = rig();
    const seen = unpredictableLog(d);
    v.writeLr(0, pend(40, 0x80, { state: LrState.Active }));
    v.writeEoir(40);
    expect(v.eoiCount).toBe(0);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    expect(v.unpredictableCount).toBe(1);
    expect(seen).toEqual(['1 GICV_EOIR no_active_priority 40']);
  });

  it('deactivating an LR that is only pending is UNPREDICTABLE: counted, reported, no EOICount', () => {
    const { d, v } = rig({ eoiMode: true });
    const seen = unpredictableLog(d);
    v.writeLr(0, pend(40));
    v.writeDir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Pending);
    expect(v.eoiCount).toBe(0);
    expect(v.unpredictableCount).toBe(1);
    expect(seen).toEqual(['1 GICV_DIR lr_pending 40']);
  });

  // §5.3.6: a HW=1 LR forwards the guest's deactivation to the distributor, which finds the pINTID inactive
  it('a HW=1 LR whose physical INTID is not active: the guest EOI is reported with the pINTID', () => {
    const { d, v } = rig();
    const seen = unpredictableLog(d);
    v.writeLr(0, pend(40, 0x80, { hw: true, pintid: 72 }));
    v.readIar();
    v.writeEoir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Invalid);
    expect(v.unpredictableCount).toBe(1);
    expect(seen).toEqual(['1 GICV_EOIR inactive 72']);
  });
});

describe('maintenance interrupts (GICH_MISR, GICH_EISR, PPI 25)', () => {
  it('HW=0 with EOI: guest EOI sets EISR and MISR.EOI and asserts PPI 25 on this CPU only', () => {
    const { v, d } = rig();
    v.writeLr(2, pend(40, 0xa0, { eoi: true }));
    expect(v.readEisr(0)).toBe(0);
    v.readIar();
    v.writeEoir(40);
    expect(v.readEisr(0)).toBe(0b100);
    expect(v.readGich(GICH_EISR0)).toBe(0b100);
    expect(v.readElrsr(0)).toBe(0b1011); // an EOI LR is not free until the hypervisor handles it
    expect(v.readMisr()).toBe(GICH_MISR_EOI);
    expect(v.readGich(GICH_MISR)).toBe(GICH_MISR_EOI);
    expect(v.maintenanceLine).toBe(true);
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(true);
    expect(d.lineLevel(MAINTENANCE_PPI, 0)).toBe(false);
    v.writeLr(2, 0); // the hypervisor folds the LR
    expect(v.readMisr()).toBe(0);
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(false);
  });

  it('the maintenance interrupt needs HCR.En', () => {
    const { v, d } = rig();
    v.writeLr(0, pend(40, 0xa0, { eoi: true, state: LrState.Invalid }));
    expect(v.maintenanceLine).toBe(true);
    v.writeHcr(0);
    expect(v.readMisr()).toBe(GICH_MISR_EOI);
    expect(v.maintenanceLine).toBe(false);
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(false);
  });

  it('UIE: underflow while at most one LR is valid', () => {
    const { v } = rig({ hcr: GICH_HCR_UIE });
    expect(v.readMisr()).toBe(GICH_MISR_U);
    v.writeLr(0, pend(40));
    expect(v.readMisr()).toBe(GICH_MISR_U);
    v.writeLr(1, pend(41));
    expect(v.readMisr()).toBe(0);
    expect(v.maintenanceLine).toBe(false);
    v.readIar();
    v.writeEoir(40);
    expect(v.readMisr()).toBe(GICH_MISR_U);
    expect(v.maintenanceLine).toBe(true);
  });

  it('NPIE: no LR in the pending state', () => {
    const { v } = rig({ hcr: GICH_HCR_NPIE });
    expect(v.readMisr()).toBe(GICH_MISR_NP);
    v.writeLr(0, pend(40));
    expect(v.readMisr()).toBe(0);
    v.readIar();
    expect(v.readMisr()).toBe(GICH_MISR_NP);
  });

  it('VGrp0/1 enabled/disabled maintenance bits follow the virtual group enables', () => {
    const { v } = rig({ hcr: GICH_HCR_VGRP0EIE | GICH_HCR_VGRP0DIE | GICH_HCR_VGRP1EIE | GICH_HCR_VGRP1DIE });
    expect(v.readMisr()).toBe(GICH_MISR_VGRP0E | GICH_MISR_VGRP1E);
    v.setCtlr(0);
    expect(v.readMisr()).toBe(GICH_MISR_VGRP0D | GICH_MISR_VGRP1D);
  });
});

describe('world switch', () => {
  it('saveLrs / clearLrs / restoreLrs round-trip the LRs', () => {
    const { v } = rig();
    v.writeLr(0, pend(40));
    v.writeLr(3, pendHw(41, 41));
    const saved = new Uint32Array(4);
    v.saveLrs(saved);
    v.clearLrs();
    expect(v.readElrsr(0)).toBe(0b1111);
    expect(v.virqLine).toBe(false);
    v.restoreLrs(saved);
    expect(Array.from(saved)).toEqual([pend(40), 0, 0, pendHw(41, 41)]);
    expect(v.readLr(3)).toBe(pendHw(41, 41));
    expect(v.virqLine).toBe(true);
  });

  it('restoreLrs checks every value before writing any', () => {
    const { v } = rig();
    v.writeLr(0, pend(40));
    const bad = new Uint32Array([pend(41), (GICH_LR_HW | (40 << 10) | 40 | (3 << 28)) >>> 0, 0, 0]);
    expect(() => v.restoreLrs(bad)).toThrow(/P\+A with HW=1/);
    expect(v.readLr(0)).toBe(pend(40));
    expect(() => v.saveLrs(new Uint32Array(2))).toThrow(/need 4 slots/);
  });
});

describe('GICV MMIO view', () => {
  it('IAR and EOIR at the GICC offsets', () => {
    const { v } = rig();
    v.writeLr(0, pend(45));
    expect(v.read(GIC_CPU_INTACK)).toBe(45);
    v.write(GIC_CPU_EOI, 45);
    expect(v.readLr(0) >>> 28).toBe(0);
  });
});
