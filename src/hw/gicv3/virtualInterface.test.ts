import { describe, expect, it } from 'vitest';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { Gicv3CpuInterface } from './cpuInterface.js';
import { Gicv3Distributor } from './distributor.js';
import { lrToBigInt } from './listRegister.js';
import {
  GICD_CTLR_ENABLE_G1,
  ICC_CTLR_EOIMODE,
  ICH_HCR_EN,
  ICH_HCR_LRENPIE,
  ICH_HCR_NPIE,
  ICH_HCR_UIE,
  ICH_HCR_VGRP0DIE,
  ICH_HCR_VGRP0EIE,
  ICH_HCR_VGRP1DIE,
  ICH_HCR_VGRP1EIE,
  ICH_MISR_EOI,
  ICH_MISR_LRENP,
  ICH_MISR_NP,
  ICH_MISR_U,
  ICH_MISR_VGRP0D,
  ICH_MISR_VGRP0E,
  ICH_MISR_VGRP1D,
  ICH_MISR_VGRP1E,
  IDLE_PRIORITY,
  MAINTENANCE_PPI,
  SPURIOUS_INTID,
} from './regs.js';
import { decodeLr, Gicv3VirtualInterface, LrState, makeLr } from './virtualInterface.js';

/** Virtual interface of PE 1: ICH_HCR_EL2.En, guest ICV_IGRPEN1 = 1, ICV_PMR = 0xF8, as KVM's vgic_v3_enable sets up. */
function rig(opts: { nrLrs?: number; eoiMode?: boolean; hcr?: number } = {}) {
  const d = new Gicv3Distributor({ nrPes: 2, nrIrqs: 96 });
  const log: string[] = [];
  const v = new Gicv3VirtualInterface({
    pe: 1,
    distributor: d,
    nrLrs: opts.nrLrs,
    virqSink: { setVirqLine: (pe, l) => log.push(`v${pe}:${l ? 1 : 0}`) },
  });
  v.setIgrpen1(1);
  v.setPmr(0xf8);
  if (opts.eoiMode) v.setCtlr(ICC_CTLR_EOIMODE);
  v.writeHcr(ICH_HCR_EN | (opts.hcr ?? 0));
  return { d, v, log };
}
const pend = (vintid: number, priority = 0xa0, extra: Partial<Parameters<typeof makeLr>[0]> = {}) =>
  makeLr({ vintid, hw: false, eoi: false, state: LrState.Pending, priority, group1: true, ...extra });
const pendHw = (vintid: number, pintid: number, priority = 0xa0) =>
  makeLr({ vintid, pintid, hw: true, eoi: false, state: LrState.Pending, priority, group1: true });

describe('ICH_LR<n>_EL2 encoding (IHI 0069 §12.4; arm-gic-v3.h ICH_LR_*)', () => {
  it('places vINTID[31:0], pINTID[41:32], Priority[55:48], Group[60], HW[61], State[63:62]', () => {
    const lr = makeLr({
      vintid: 40,
      pintid: 72,
      hw: true,
      eoi: false,
      state: LrState.Active,
      priority: 0xa8,
      group1: true,
    });
    expect(lr).toBe(40n | (72n << 32n) | (0xa8n << 48n) | (1n << 60n) | (1n << 61n) | (2n << 62n));
    expect(decodeLr(lr)).toEqual({
      vintid: 40,
      pintid: 72,
      hw: true,
      eoi: false,
      state: 2,
      priority: 0xa8,
      group1: true,
    });
  });

  it('with HW = 0 bit 41 is EOI; round-trips through writeLr/readLr', () => {
    const lr = pend(33, 0x10, { eoi: true });
    expect(lr & (1n << 41n)).toBe(1n << 41n);
    const { v } = rig();
    v.writeLr(2, lr);
    expect(v.readLr(2)).toBe(lr);
    expect(lrToBigInt(v.lrLow(2), v.lrHigh(2))).toBe(lr);
  });
});

describe('ICH_VTR_EL2 and ICH_VMCR_EL2', () => {
  it('VTR: ListRegs = nrLrs - 1, PRIbits = PREbits = 4, A3V, nV4, IDbits 0', () => {
    expect(rig({ nrLrs: 16 }).v.readVtr()).toBe(((4 << 29) | (4 << 26) | (1 << 21) | (1 << 20) | 15) >>> 0);
  });

  it('VMCR aliases ICV_PMR (5 bits), ICV_BPR1 (minimum 3), ICV_IGRPEN1 and ICV_CTLR.EOImode', () => {
    const { v } = rig();
    v.setPmr(0xff);
    expect(v.pmrValue).toBe(0xf8);
    v.setBpr1(0);
    expect(v.bpr1Value).toBe(3);
    v.setBpr1(5);
    v.setCtlr(ICC_CTLR_EOIMODE);
    expect(v.readVmcr()).toBe(((0xf8 << 24) | (5 << 18) | (1 << 9) | 2) >>> 0);
    expect(v.ctlrValue & ICC_CTLR_EOIMODE).toBe(ICC_CTLR_EOIMODE);
  });
});

describe('ICV_IAR1_EL1 / virtual IRQ output (§6.3)', () => {
  it('a pending Group 1 LR raises vIRQ; acknowledge makes it active and lowers vIRQ', () => {
    const { v, log } = rig();
    v.writeLr(0, pend(40));
    expect(v.virqLine).toBe(true);
    expect(v.readHppir1()).toBe(40);
    expect(v.readIar1()).toBe(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    expect(v.readRpr()).toBe(0xa0);
    expect(v.readAp1r(0)).toBe(1 << (0xa0 >> 3));
    expect(log).toEqual(['v1:1', 'v1:0']);
  });

  it('nothing is signalled without ICH_HCR_EL2.En, VENG1, above VPMR, or for a Group 0 LR (no vFIQ)', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0xf8));
    expect(v.virqLine).toBe(false); // priority == VPMR
    v.writeLr(0, pend(40, 0xa0, { group1: false }));
    expect(v.virqLine).toBe(false);
    expect(v.readIar1()).toBe(SPURIOUS_INTID);
    v.writeLr(0, pend(40));
    v.setIgrpen1(0);
    expect(v.virqLine).toBe(false);
    v.setIgrpen1(1);
    v.writeHcr(0);
    expect(v.virqLine).toBe(false);
    expect(v.readIar1()).toBe(SPURIOUS_INTID);
  });

  it('the highest-priority pending LR wins; an active one preempts only higher group priorities', () => {
    const { v } = rig();
    v.writeLr(0, pend(40, 0xa0));
    v.writeLr(1, pend(41, 0x80));
    expect(v.readIar1()).toBe(41);
    expect(v.virqLine).toBe(false); // 0xa0 cannot preempt 0x80
    v.writeLr(2, pend(42, 0x40));
    expect(v.readIar1()).toBe(42);
    expect(v.readRpr()).toBe(0x40);
    v.writeEoir1(42);
    expect(v.readRpr()).toBe(0x80);
  });
});

describe('virtual EOI (§6.3, ICH_VMCR_EL2.VEOIM)', () => {
  it('VEOIM 0: ICV_EOIR1_EL1 drops the priority and invalidates the LR', () => {
    const { v } = rig();
    v.writeLr(0, pend(40));
    v.readIar1();
    v.writeEoir1(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Invalid);
    expect(v.readRpr()).toBe(IDLE_PRIORITY);
    expect(v.readElrsr()).toBe(0b1111);
  });

  it('VEOIM 1: EOIR1 only drops; ICV_DIR_EL1 deactivates; pending+active goes back to pending', () => {
    const { v } = rig({ eoiMode: true });
    v.writeLr(0, pend(40));
    v.readIar1();
    v.writeEoir1(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
    v.writeLr(
      0,
      makeLr({ vintid: 40, hw: false, eoi: false, state: LrState.PendingActive, priority: 0xa0, group1: true }),
    );
    expect(v.virqLine).toBe(false);
    v.writeDir(40);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Pending);
    expect(v.virqLine).toBe(true);
  });

  it('HW = 1: the guest EOI deactivates the physical SPI at the distributor (host EOImode 1 flow)', () => {
    const { d, v } = rig();
    const host = new Gicv3CpuInterface({ pe: 1, distributor: d });
    d.setCtlr(GICD_CTLR_ENABLE_G1);
    d.setProcessorSleep(1, false);
    host.setCtlr(ICC_CTLR_EOIMODE);
    host.setPmr(0xf0);
    host.setIgrpen1(1);
    d.setPriority(72, 0xa0);
    d.setRoute(72, 1);
    d.enable(72);
    d.setLine(72, true);
    expect(host.readIar1()).toBe(72);
    host.writeEoir1(72); // priority drop only: 72 stays active, owned by the guest
    d.setLine(72, false);
    v.writeLr(0, pendHw(40, 72));
    expect(v.readIar1()).toBe(40);
    expect(d.isActive(72)).toBe(true);
    v.writeEoir1(40);
    expect(d.isActive(72)).toBe(false);
    expect(v.readMisr()).toBe(0); // no maintenance for HW deactivation
    expect(v.unpredictableCount + host.unpredictableCount).toBe(0);
  });

  it('HW = 1 with a PPI (the vtimer, 27) deactivates this PE’s own copy', () => {
    const { d, v } = rig();
    d.setActive(27, true, 1);
    d.setActive(27, true, 0);
    v.writeLr(0, pendHw(27, 27));
    v.readIar1();
    v.writeEoir1(27);
    expect(d.isActive(27, 1)).toBe(false);
    expect(d.isActive(27, 0)).toBe(true);
  });

  it('counts UNPREDICTABLE LR values (HW with SGI or special pINTID, HW pending+active, vINTID 1020-1023) and forwards nothing for them', () => {
    const { d, v } = rig();
    const seen = unpredictableLog(d);
    d.setActive(5, true, 1);
    v.writeLr(0, pendHw(40, 5));
    expect(v.unpredictableCount).toBe(1);
    expect(seen).toEqual(['1 ICH_LR_EL2 lr_content 40']);
    v.readIar1();
    v.writeEoir1(40);
    expect(d.isActive(5, 1)).toBe(true);
    v.writeLr(1, pendHw(41, 1020));
    v.writeLr(
      2,
      makeLr({ vintid: 42, pintid: 72, hw: true, eoi: false, state: LrState.PendingActive, priority: 0, group1: true }),
    );
    v.writeLr(3, pend(1021));
    expect(v.unpredictableCount).toBe(4);
    v.writeLr(3, makeLr({ vintid: 1021, hw: false, eoi: false, state: LrState.Invalid, priority: 0, group1: true }));
    expect(v.unpredictableCount).toBe(4); // an invalid LR is never used
  });

  it('counts a guest EOI with no active priority, DIR with VEOIM 0, and DIR of an LR that is only pending', () => {
    const { d, v } = rig();
    const seen = unpredictableLog(d);
    v.writeEoir1(40);
    v.writeDir(40);
    expect(v.unpredictableCount).toBe(2);
    v.setCtlr(ICC_CTLR_EOIMODE);
    v.writeLr(0, pend(40));
    v.writeDir(40);
    expect(v.unpredictableCount).toBe(3);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Pending);
    v.writeEoir1(1023);
    expect(v.unpredictableCount).toBe(3);
    expect(seen).toEqual([
      '1 ICV_EOIR1_EL1 no_active_priority 40',
      '1 ICV_DIR_EL1 dir_eoimode0 40',
      '1 ICV_DIR_EL1 lr_pending 40',
    ]);
  });
});

describe('maintenance interrupt (ICH_MISR_EL2, PPI 25)', () => {
  it('EOI: a HW = 0 LR with EOI = 1 left invalid sets ICH_EISR_EL2 and MISR.EOI, asserting PPI 25', () => {
    const { d, v } = rig();
    v.writeLr(1, pend(40, 0xa0, { eoi: true }));
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(false);
    v.readIar1();
    v.writeEoir1(40);
    expect(v.readEisr()).toBe(0b10);
    expect(v.readElrsr()).toBe(0b1101);
    expect(v.readMisr()).toBe(ICH_MISR_EOI);
    expect(v.maintenanceLine).toBe(true);
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(true);
    expect(d.lineLevel(MAINTENANCE_PPI, 0)).toBe(false);
    v.writeLr(1, 0n); // KVM's fold clears the LR
    expect(d.lineLevel(MAINTENANCE_PPI, 1)).toBe(false);
  });

  it('U: with UIE, zero or one valid LR signals underflow', () => {
    const { v } = rig({ hcr: ICH_HCR_UIE });
    expect(v.readMisr()).toBe(ICH_MISR_U);
    v.writeLr(0, pend(40));
    expect(v.readMisr()).toBe(ICH_MISR_U);
    v.writeLr(1, pend(41));
    expect(v.readMisr()).toBe(0);
    expect(v.maintenanceLine).toBe(false);
  });

  it('NP: with NPIE, no LR in the pending state', () => {
    const { v } = rig({ hcr: ICH_HCR_NPIE });
    v.writeLr(0, pend(40));
    expect(v.readMisr()).toBe(0);
    v.readIar1();
    expect(v.readMisr()).toBe(ICH_MISR_NP);
  });

  it('LRENP: an EOI of a vINTID in no LR counts in EOIcount (5 bits, wrapping); LRENPIE signals it', () => {
    const { v } = rig({ hcr: ICH_HCR_LRENPIE });
    v.writeLr(0, pend(40));
    v.readIar1();
    v.writeLr(0, 0n); // the hypervisor took the LR away while active
    v.writeEoir1(40);
    expect(v.readHcr() >>> 27).toBe(1);
    expect(v.readMisr()).toBe(ICH_MISR_LRENP);
    v.writeHcr(ICH_HCR_EN | ICH_HCR_LRENPIE | (31 << 27));
    v.writeAp1r(0, 1);
    v.writeEoir1(40);
    expect(v.readHcr() >>> 27).toBe(0);
  });

  it('VGrp0E/D and VGrp1E/D follow VENG0 and VENG1', () => {
    const { v } = rig({ hcr: ICH_HCR_VGRP0EIE | ICH_HCR_VGRP0DIE | ICH_HCR_VGRP1EIE | ICH_HCR_VGRP1DIE });
    expect(v.readMisr()).toBe(ICH_MISR_VGRP0D | ICH_MISR_VGRP1E);
    v.writeVmcr(1);
    expect(v.readMisr()).toBe(ICH_MISR_VGRP0E | ICH_MISR_VGRP1D);
  });

  it('ICH_HCR_EL2.En clear keeps the maintenance line low', () => {
    const { v } = rig({ hcr: ICH_HCR_UIE });
    expect(v.maintenanceLine).toBe(true);
    v.writeHcr(ICH_HCR_UIE);
    expect(v.maintenanceLine).toBe(false);
  });
});

describe('world switch (hyp/vgic-v3-sr.c __vgic_v3_save_state / __vgic_v3_restore_state)', () => {
  it('save/restore round-trips the LRs as lo, hi pairs', () => {
    const { v } = rig();
    v.writeLr(0, pend(40));
    v.writeLr(3, pendHw(41, 72));
    const buf = new Uint32Array(8);
    v.saveLrs(buf);
    for (let i = 0; i < 4; i++) v.writeLr(i, 0n);
    expect(v.virqLine).toBe(false);
    v.restoreLrs(buf);
    expect(v.readLr(3)).toBe(pendHw(41, 72));
    expect(v.virqLine).toBe(true);
    expect(() => v.saveLrs(new Uint32Array(7))).toThrow(/need 8/);
  });

  it('an LPI held in an LR is deactivated by its EOI even with VEOIM = 1; an LPI in no LR adds no EOIcount (VirtualWriteEOIR1; QEMU icv_eoir_write)', () => {
    const { v } = rig({ eoiMode: true });
    v.writeLr(0, pend(8192 + 5, 0x80, { eoi: true }));
    expect(v.readIar1()).toBe(8192 + 5);
    v.writeEoir1(8192 + 5);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Invalid);
    expect(v.readEisr()).toBe(1); // EOI maintenance asked for by the LR
    v.writeLr(0, pend(8192 + 6, 0x80));
    expect(v.readIar1()).toBe(8192 + 6);
    v.writeEoir1(8192 + 7); // the wrong LPI: a priority drop, nothing deactivated, no EOIcount
    expect(v.readHcr() >>> 27).toBe(0);
    expect(decodeLr(v.readLr(0)).state).toBe(LrState.Active);
  });
});
