// GICv4.1 in the ITS and the redistributors: one test per virtual command and per residency transition (ARM IHI
// 0069 §5.3 commands, §9 GICv4.1, §12.10 GICR_VPENDBASER; Linux irq-gic-v3-its.c its_build_v*_cmd field layouts;
// QEMU hw/intc/arm_gicv3_its.c process_v*, hw/intc/arm_gicv3_redist.c gicr_write_vpendbaser).
import { describe, expect, it } from 'vitest';
import { bringUpIts, ITT } from '../../../test/fixtures/gicv3Its.js';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { copyState, stateHash } from '../../sim/snapshot.js';
import {
  GITS_BASER,
  GITS_BASER_TYPE_SHIFT_HI,
  GITS_BASER_TYPE_VCPU,
  GITS_TRANSLATER,
  GITS_TYPER,
  ITS_CMD_CLEAR,
  ITS_CMD_DISCARD,
  ITS_CMD_INT,
  ITS_CMD_INV,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVI,
} from './its.js';
import {
  ITS_CMD_INVDB,
  ITS_CMD_VINVALL,
  ITS_CMD_VMAPI,
  ITS_CMD_VMAPP,
  ITS_CMD_VMAPTI,
  ITS_CMD_VMOVI,
  ITS_CMD_VMOVP,
  ITS_CMD_VSYNC,
} from './itsVirtual.js';
import { LrState, makeLr } from './listRegister.js';
import { LPI_BASE } from './lpi.js';
import {
  GICR_INVALLR,
  GICR_INVALLR_V_HI,
  GICR_SYNCR,
  GICR_TYPER,
  GICR_TYPER_RVPEID,
  GICR_TYPER_VLPIS,
  GICR_VLPI_BASE,
  GICR_VPENDBASER,
  GICR_VPENDBASER_4_1_DB_HI,
  GICR_VPENDBASER_4_1_VGRP1EN_HI,
  GICR_VPENDBASER_DIRTY_HI,
  GICR_VPENDBASER_PENDINGLAST_HI,
  GICR_VPENDBASER_VALID_HI,
  GICR_VPROPBASER,
  GICR_VPROPBASER_4_1_VALID_HI,
  ICH_HCR_EN,
  ICH_HCR_EOICOUNT_SHIFT,
  ICH_VMCR_ENG1,
  ICH_VTR_NV4,
  SPURIOUS_INTID,
} from './regs.js';

const VPT = 0x8040_0000; // + vpeid * 64 KiB
const VCONF = 0x8060_0000;
const VPE_TABLE = 0x8070_0000;
const DB = LPI_BASE + 60; // the vPE's default doorbell, a physical LPI
const VINTID = LPI_BASE + 7;
/** vLPI configuration: priority 0x80, enabled (what its_vlpi_map's lpi_write_config writes in the VCONF). */
const VPROP = 0x80 | 2 | 1;

/** its_build_vmapp_cmd: VPEID DW1[47:32], default doorbell DW1[31:0], RDbase DW2[51:16], V DW2[63], VPT DW3[51:16], VPT_size DW3[4:0], VCONF DW0[51:16]. */
const vmapp = (vpeid: number, rd: number, v = true, db = DB) => [
  ITS_CMD_VMAPP | (VCONF & 0xffff0000),
  0,
  db,
  vpeid,
  rd << 16,
  v ? 1 << 31 : 0,
  ((VPT + vpeid * 0x10000) & 0xffff0000) | 13,
  0,
];
const vmapti = (dev: number, ev: number, vpeid: number, vintid: number) => [
  ITS_CMD_VMAPTI,
  dev,
  ev,
  vpeid,
  vintid,
  SPURIOUS_INTID,
];
const vpeCmd = (cmd: number, vpeid: number) => [cmd, 0, 0, vpeid];

function bringUp() {
  const f = bringUpIts(4);
  const { gic, memory, send } = f;
  for (let i = 0; i < 64; i++) memory.writeU8(VCONF + i, VPROP);
  for (let pe = 0; pe < 2; pe++) {
    // allocate_vpe_l1_table: one vPE table shared by the redistributors (4.1)
    gic.redistributor(pe).write(GICR_VLPI_BASE + GICR_VPROPBASER, VPE_TABLE);
    gic.redistributor(pe).write(GICR_VLPI_BASE + GICR_VPROPBASER + 4, GICR_VPROPBASER_4_1_VALID_HI);
    const vif = gic.vif(pe);
    vif.writeHcr(ICH_HCR_EN);
    vif.writeVmcr(ICH_VMCR_ENG1 | (0xf8 << 24));
  }
  send([ITS_CMD_MAPC, 0, 0, 0, 0, 1 << 31]);
  send([ITS_CMD_MAPC, 0, 0, 0, (1 << 16) | 1, 1 << 31]);
  send([ITS_CMD_MAPD, 5, 3, 0, ITT, 1 << 31]);
  /** its_vpe_4_1_schedule: vPEID, then Valid | VGrp1En. */
  const schedule = (pe: number, vpeid: number) => {
    gic.redistributor(pe).write(GICR_VLPI_BASE + GICR_VPENDBASER, vpeid);
    gic
      .redistributor(pe)
      .write(GICR_VLPI_BASE + GICR_VPENDBASER + 4, GICR_VPENDBASER_VALID_HI | GICR_VPENDBASER_4_1_VGRP1EN_HI);
  };
  /** its_vpe_4_1_deschedule: Valid cleared, Doorbell as asked; returns the read-back high word. */
  const deschedule = (pe: number, db: boolean) => {
    const rd = gic.redistributor(pe);
    rd.write(GICR_VLPI_BASE + GICR_VPENDBASER + 4, db ? GICR_VPENDBASER_4_1_DB_HI : 0);
    return rd.read(GICR_VLPI_BASE + GICR_VPENDBASER + 4);
  };
  const vptBit = (vpeid: number, intid: number) =>
    (memory.readU8(VPT + vpeid * 0x10000 + (intid >> 3)) >> (intid & 7)) & 1;
  return { ...f, vlpis: gic.vlpis!, schedule, deschedule, vptBit };
}

describe('GICv4.1 ITS commands and vPE residency', () => {
  it('advertises GICv4.1: GITS_TYPER.Virtual, VMOVP, VMAPP; a vPE GITS_BASER; GICR_TYPER.VLPIS, RVPEID; ICH_VTR_EL2.nV4 = 0', () => {
    const { gic, its } = bringUp();
    expect(its.read(GITS_TYPER) & 2).toBe(2);
    expect(its.read(GITS_TYPER + 4) & ((1 << 5) | (1 << 8))).toBe((1 << 5) | (1 << 8));
    const types = [0, 1, 2, 3, 4, 5, 6, 7].map(
      (n) => (its.read(GITS_BASER + 8 * n + 4) >>> GITS_BASER_TYPE_SHIFT_HI) & 7,
    );
    expect(types).toContain(GITS_BASER_TYPE_VCPU);
    expect(gic.redistributor(0).read(GICR_TYPER) & (GICR_TYPER_VLPIS | GICR_TYPER_RVPEID)).toBe(
      GICR_TYPER_VLPIS | GICR_TYPER_RVPEID,
    );
    expect(gic.vif(0).readVtr() & ICH_VTR_NV4).toBe(0);
    expect(bringUpIts().gic.vif(0).readVtr() & ICH_VTR_NV4).toBe(ICH_VTR_NV4); // a GICv3 without GICv4
  });

  it('VMAPP + VMAPTI, vPE resident: the MSI is a vLPI the guest acknowledges at ICV_IAR1_EL1 with no LR and EOIs with no EOIcount', () => {
    const { gic, its, send, schedule, vlpis } = bringUp();
    send(vmapp(0, 1));
    send(vmapti(5, 2, 0, VINTID));
    send(vpeCmd(ITS_CMD_VSYNC, 0));
    schedule(1, 0);
    expect(vlpis.residentVpe(1)).toBe(0);
    its.write(GITS_TRANSLATER, 2, 5);
    const vif = gic.vif(1);
    expect(vif.virqLine).toBe(true);
    expect(gic.cpu(1).irqLine).toBe(false); // no physical interrupt: no exit
    expect(vif.readHppir1()).toBe(VINTID);
    expect(vif.readIar1()).toBe(VINTID);
    expect(vif.readRpr()).toBe(0x80);
    expect(vif.virqLine).toBe(false);
    expect(vlpis.isPending(0, VINTID)).toBe(false);
    vif.writeEoir1(VINTID);
    expect(vif.readRpr()).toBe(0xff);
    expect(vif.readHcr() >>> ICH_HCR_EOICOUNT_SHIFT).toBe(0);
    expect([vif.readMisr(), vif.readElrsr(), vif.unpredictableCount]).toEqual([0, 0xf, 0]);
    expect(its.commandErrors).toBe(0);
  });

  it('the virtual interface signals the higher priority of its best LR and its best direct vLPI', () => {
    const { gic, its, send, schedule } = bringUp();
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    schedule(0, 0);
    const vif = gic.vif(0);
    vif.writeLr(0, makeLr({ vintid: 40, hw: false, eoi: false, state: LrState.Pending, priority: 0xa0, group1: true }));
    its.write(GITS_TRANSLATER, 0, 5);
    expect(vif.readIar1()).toBe(VINTID); // 0x80 beats the LR's 0xa0
    expect(vif.virqLine).toBe(false); // the LR's 0xa0 does not preempt the running 0x80
    vif.writeEoir1(VINTID);
    expect(vif.readIar1()).toBe(40);
  });

  it('non-resident: the vLPI is recorded in the VPT in memory, no doorbell unless requested; resident again → delivered', () => {
    const { gic, its, send, schedule, deschedule, vlpis, vptBit } = bringUp();
    send(vmapp(1, 0));
    send(vmapti(5, 1, 1, VINTID));
    its.write(GITS_TRANSLATER, 1, 5);
    expect(vptBit(1, VINTID)).toBe(1);
    expect(gic.distributor.lpis!.isPending(0, DB)).toBe(false);
    schedule(0, 1);
    expect(gic.vif(0).readIar1()).toBe(VINTID);
    expect(deschedule(0, false) & (GICR_VPENDBASER_VALID_HI | GICR_VPENDBASER_PENDINGLAST_HI)).toBe(0);
    expect(vptBit(1, VINTID)).toBe(0); // written back: acknowledged
    expect(vlpis.residentVpe(0)).toBe(-1);
  });

  it('de-residency with Doorbell = 1 and PendingLast = 0: the next vLPI raises the default doorbell once, until resident again', () => {
    const { gic, its, send, schedule, deschedule, vlpis } = bringUp();
    send(vmapp(0, 1));
    send(vmapti(5, 0, 0, VINTID));
    send(vmapti(5, 1, 0, VINTID + 1));
    schedule(1, 0);
    const hi = deschedule(1, true);
    expect(hi & (GICR_VPENDBASER_PENDINGLAST_HI | GICR_VPENDBASER_DIRTY_HI)).toBe(0);
    its.write(GITS_TRANSLATER, 0, 5);
    const lpis = gic.distributor.lpis!;
    expect(lpis.isPending(1, DB)).toBe(true);
    expect(gic.cpu(1).readIar1()).toBe(DB);
    its.write(GITS_TRANSLATER, 1, 5); // a second vLPI: no second doorbell
    expect(lpis.isPending(1, DB)).toBe(false);
    schedule(1, 0);
    expect(gic.vif(1).readIar1()).toBe(VINTID);
    expect(gic.vif(1).readIar1()).toBe(SPURIOUS_INTID); // 0x80 does not preempt itself
    gic.vif(1).writeEoir1(VINTID);
    expect(gic.vif(1).readIar1()).toBe(VINTID + 1);
    expect(vlpis.isPending(0, VINTID + 1)).toBe(false);
  });

  it('de-residency with a vLPI still pending reads back PendingLast = 1 and arms no doorbell (its_vpe_4_1_deschedule)', () => {
    const { gic, its, send, schedule, deschedule, vptBit } = bringUp();
    send(vmapp(0, 1));
    send(vmapti(5, 0, 0, VINTID));
    send(vmapti(5, 1, 0, VINTID + 1));
    schedule(1, 0);
    its.write(GITS_TRANSLATER, 0, 5);
    expect(deschedule(1, true) & GICR_VPENDBASER_PENDINGLAST_HI).toBe(GICR_VPENDBASER_PENDINGLAST_HI);
    expect(vptBit(0, VINTID)).toBe(1);
    expect(gic.vif(1).virqLine).toBe(false);
    its.write(GITS_TRANSLATER, 1, 5);
    expect(gic.distributor.lpis!.isPending(1, DB)).toBe(false);
  });

  it('a disabled vLPI raises no doorbell and is not presented; VINVALL re-reads the VCONF', () => {
    const { gic, memory, its, send, schedule, deschedule } = bringUp();
    send(vmapp(0, 1));
    send(vmapti(5, 0, 0, VINTID));
    schedule(1, 0);
    deschedule(1, true);
    memory.writeU8(VCONF + 7, 0x80 | 2); // disabled
    send(vpeCmd(ITS_CMD_VINVALL, 0));
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.distributor.lpis!.isPending(1, DB)).toBe(false);
    schedule(1, 0);
    expect(gic.vif(1).virqLine).toBe(false);
    memory.writeU8(VCONF + 7, VPROP);
    send(vpeCmd(ITS_CMD_VINVALL, 0));
    expect(gic.vif(1).virqLine).toBe(true);
  });

  it('GICR_INVALLR with V = 1 and a vPEID re-reads that vPE’s VCONF (its_vpe_4_1_invall); V = 0 does not; GICR_SYNCR reads 0', () => {
    const { gic, memory, its, send, schedule } = bringUp();
    send(vmapp(0, 1));
    send(vmapti(5, 0, 0, VINTID));
    schedule(1, 0);
    memory.writeU8(VCONF + 7, 0x80 | 2); // disabled, not yet invalidated
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.vif(1).virqLine).toBe(true);
    const rd = gic.redistributor(0); // any redistributor: the vPEID names the vPE
    rd.write(GICR_INVALLR, 0);
    rd.write(GICR_INVALLR + 4, 0);
    expect(gic.vif(1).virqLine).toBe(true);
    rd.write(GICR_INVALLR + 4, GICR_INVALLR_V_HI | 0);
    expect(gic.vif(1).virqLine).toBe(false);
    expect(rd.read(GICR_SYNCR)).toBe(0);
  });

  it('VMOVI carries the event’s loaded VCONF byte to the new vPE (the VM’s VCONF is shared; Linux sends no INV after it)', () => {
    const { gic, its, send, schedule, memory } = bringUp();
    send(vmapp(0, 0));
    send(vmapp(1, 1));
    memory.writeU8(VCONF + 7, 0x80 | 2);
    schedule(1, 1); // vPE 1 resident with the byte disabled
    memory.writeU8(VCONF + 7, VPROP);
    send(vmapti(5, 0, 0, VINTID)); // loads the enabled byte for vPE 0 only
    send([ITS_CMD_VMOVI, 5, 0, 1, 1, SPURIOUS_INTID]);
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.vif(1).readIar1()).toBe(VINTID);
  });

  it('INV of a virtual event re-reads its VCONF byte; INVDB re-reads the doorbell’s configuration', () => {
    const { gic, memory, its, send, schedule, deschedule } = bringUp();
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    schedule(0, 0);
    memory.writeU8(VCONF + 7, 0x80 | 2);
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.vif(0).virqLine).toBe(true); // stale cached byte
    send([ITS_CMD_INV, 5, 0]);
    expect(gic.vif(0).virqLine).toBe(false);
    memory.writeU8(VCONF + 7, VPROP);
    send([ITS_CMD_INV, 5, 0]);
    expect(gic.vif(0).readIar1()).toBe(VINTID);
    deschedule(0, true);
    memory.writeU8(0x8000_0000 + DB - LPI_BASE, 0xa0 | 2); // its_vpe_4_1_mask_irq: doorbell disabled
    send(vpeCmd(ITS_CMD_INVDB, 0));
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.distributor.lpis!.isPending(0, DB)).toBe(true);
    expect(gic.cpu(0).irqLine).toBe(false); // pending but masked
  });

  it('DISCARD, INT and CLEAR act on a virtual mapping: resident or in the VPT', () => {
    const { gic, its, send, schedule, deschedule, vlpis, vptBit } = bringUp();
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    send([ITS_CMD_INT, 5, 0]);
    expect(vptBit(0, VINTID)).toBe(1);
    send([ITS_CMD_CLEAR, 5, 0]);
    expect(vptBit(0, VINTID)).toBe(0);
    schedule(0, 0);
    send([ITS_CMD_INT, 5, 0]);
    expect(gic.vif(0).virqLine).toBe(true);
    send([ITS_CMD_DISCARD, 5, 0]); // its_vlpi_unmap's DISCARD with the vLPI in flight
    expect(gic.vif(0).virqLine).toBe(false);
    expect(vlpis.isPending(0, VINTID)).toBe(false);
    its.write(GITS_TRANSLATER, 0, 5);
    expect(its.droppedCount).toBe(1);
    deschedule(0, false);
    expect(vptBit(0, VINTID)).toBe(0);
    expect(its.commandErrors).toBe(0);
  });

  it('VMAPI maps EventID n to vINTID n; VMOVI moves the event and its pending vLPI to another vPE', () => {
    const { its, send, vlpis } = bringUp();
    send([ITS_CMD_MAPD, 6, 13, 0, ITT, 1 << 31]);
    send(vmapp(0, 0));
    send(vmapp(1, 1));
    send([ITS_CMD_VMAPI, 6, VINTID, 0]);
    its.write(GITS_TRANSLATER, VINTID, 6);
    expect(vlpis.isPending(0, VINTID)).toBe(true);
    send([ITS_CMD_VMOVI, 6, VINTID, 1, 1, SPURIOUS_INTID]);
    expect([vlpis.isPending(0, VINTID), vlpis.isPending(1, VINTID)]).toEqual([false, true]);
    expect(its.commandErrors).toBe(0);
  });

  it('VMOVP moves a non-resident vPE (its doorbell follows); a resident one is refused; VMAPP V=0 unmaps', () => {
    const { gic, its, send, schedule, deschedule, vlpis } = bringUp();
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    schedule(0, 0);
    send([ITS_CMD_VMOVP, 0, 0, 0, 1 << 16, 1 << 31, DB]);
    expect(its.lastError).toMatch(/resident/);
    deschedule(0, true);
    send([ITS_CMD_VMOVP, 0, 0, 0, 1 << 16, 1 << 31, DB]);
    schedule(0, 0); // mapped to redistributor 1 now: UNPREDICTABLE, ignored
    expect(vlpis.residentVpe(0)).toBe(-1);
    expect(vlpis.unpredictableCount).toBe(1);
    its.write(GITS_TRANSLATER, 0, 5);
    expect(gic.distributor.lpis!.isPending(1, DB)).toBe(true);
    send(vmapp(0, 0, false));
    its.write(GITS_TRANSLATER, 0, 5);
    expect(its.droppedCount).toBe(1);
  });

  it('GICR_VPENDBASER: Valid 1→1 and an unmapped vPEID are UNPREDICTABLE (ignored, counted); Dirty always reads 0', () => {
    const { gic, send, schedule, vlpis } = bringUp();
    const seen = unpredictableLog(vlpis);
    schedule(0, 3); // vPE 3 not mapped
    expect(vlpis.residentVpe(0)).toBe(-1);
    send(vmapp(3, 0));
    schedule(0, 3);
    schedule(0, 3); // the vPEID half and the Valid half both written while Valid = 1
    expect(vlpis.unpredictableCount).toBe(3);
    expect(seen).toEqual([
      '0 GICR_VPENDBASER vpe_not_mapped 3',
      '0 GICR_VPENDBASER vpe_resident 3',
      '0 GICR_VPENDBASER vpe_resident 3',
    ]);
    const hi = gic.redistributor(0).read(GICR_VLPI_BASE + GICR_VPENDBASER + 4);
    expect(hi & (GICR_VPENDBASER_VALID_HI | GICR_VPENDBASER_DIRTY_HI)).toBe(GICR_VPENDBASER_VALID_HI);
  });

  it('erroneous virtual commands are ignored and counted; MOVI of a vLPI is one; a GICv3 without GICv4 refuses them all', () => {
    const { its, send } = bringUp();
    send(vmapp(9, 0)); // vPEID beyond the 4 vPEs
    send(vmapti(7, 0, 0, VINTID)); // device 7 not mapped
    send(vmapti(5, 0, 9, VINTID));
    send(vmapti(5, 0, 0, 40)); // not an LPI
    send(vmapp(0, 5)); // no redistributor 5
    send(vpeCmd(ITS_CMD_VSYNC, 2));
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    send([ITS_CMD_MOVI, 5, 0, 0, 1]);
    expect(its.commandErrors).toBe(7);
    expect(its.lastError).toMatch(/VMOVI/);
    const v3 = bringUpIts();
    v3.send([ITS_CMD_MAPTI, 5, 0, LPI_BASE]);
    v3.send(vmapp(0, 0));
    expect(v3.its.commandErrors).toBe(2);
    expect(v3.its.lastError).toMatch(/0x29/);
  });

  it('a GICv4.1 is plain data: a copy with a resident vPE runs on its own and hashes equal', () => {
    const { gic, send, schedule } = bringUp();
    send(vmapp(0, 0));
    send(vmapti(5, 0, 0, VINTID));
    schedule(0, 0);
    const c = copyState(gic);
    expect(stateHash(c)).toBe(stateHash(gic));
    c.its!.write(GITS_TRANSLATER, 0, 5);
    expect(c.vif(0).virqLine).toBe(true);
    expect(gic.vif(0).virqLine).toBe(false);
  });
});
