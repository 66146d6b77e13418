import { describe, expect, it } from 'vitest';
import { bringUpIts, ITT, PROP_ENABLED, PROP_TABLE } from '../../../test/fixtures/gicv3Its.js';
import { unpredictableLog } from '../../../test/fixtures/unpredictableLog.js';
import { copyState, stateHash } from '../../sim/snapshot.js';
import {
  GITS_CREADR,
  GITS_CTLR,
  GITS_CWRITER,
  GITS_TRANSLATER,
  GITS_TYPER,
  ITS_CMD_CLEAR,
  ITS_CMD_DISCARD,
  ITS_CMD_INT,
  ITS_CMD_INV,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPI,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVALL,
  ITS_CMD_MOVI,
  ITS_CMD_SYNC,
} from './its.js';
import { LPI_BASE } from './lpi.js';
import {
  GICD_TYPER,
  GICD_TYPER_LPIS,
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_PROPBASER,
  GICR_TYPER,
  GICR_TYPER_PLPIS,
  SPURIOUS_INTID,
} from './regs.js';

const bringUp = () => bringUpIts();

const mapc = (icid: number, pe: number, v = true) => [ITS_CMD_MAPC, 0, 0, 0, (pe << 16) | icid, v ? 1 << 31 : 0];
const mapd = (dev: number, eventBits: number, v = true) => [ITS_CMD_MAPD, dev, eventBits - 1, 0, ITT, v ? 1 << 31 : 0];
const mapti = (dev: number, ev: number, lpi: number, icid: number) => [ITS_CMD_MAPTI, dev, ev, lpi, icid];
const byEvent = (cmd: number, dev: number, ev: number) => [cmd, dev, ev];

describe('GICv3 LPIs and the ITS (IHI 0069 ch. 5; Linux irq-gic-v3-its.c sequences)', () => {
  it('advertises LPIs: GICD_TYPER.LPIS, GICR_TYPER.PLPIS, GITS_TYPER.Physical with the ID widths', () => {
    const { gic, its } = bringUp();
    expect(gic.distributor.read(GICD_TYPER) & GICD_TYPER_LPIS).toBe(GICD_TYPER_LPIS);
    expect(gic.redistributor(1).read(GICR_TYPER) & GICR_TYPER_PLPIS).toBe(GICR_TYPER_PLPIS);
    expect(gic.redistributor(1).read(GICR_CTLR)).toBe(GICR_CTLR_ENABLE_LPIS);
    const typer = its.read(GITS_TYPER);
    expect(typer & 1).toBe(1);
    expect(((typer >> 8) & 0x1f) + 1).toBe(16);
    expect(((typer >> 13) & 0x1f) + 1).toBe(16);
  });

  it('MAPC/MAPD/MAPTI then a doorbell write: the LPI is pending at the collection’s PE, IAR1 takes it, no active state', () => {
    const { gic, its, send } = bringUp();
    send(mapc(0, 1));
    send(mapd(5, 4));
    send(mapti(5, 3, LPI_BASE + 8, 0));
    send([ITS_CMD_SYNC, 0, 0, 0, 1 << 16]);
    expect(its.read(GITS_CREADR)).toBe(its.read(GITS_CWRITER));
    expect(its.commandErrors).toBe(0);
    its.write(GITS_TRANSLATER, 3, 5);
    const lpis = gic.distributor.lpis!;
    expect(lpis.isPending(1, LPI_BASE + 8)).toBe(true);
    expect(gic.cpu(0).irqLine).toBe(false);
    expect(gic.cpu(1).irqLine).toBe(true);
    expect(gic.cpu(1).readIar1()).toBe(LPI_BASE + 8);
    expect(lpis.isPending(1, LPI_BASE + 8)).toBe(false);
    gic.cpu(1).writeEoir1(LPI_BASE + 8); // EOImode 1: priority drop
    gic.cpu(1).writeDir(LPI_BASE + 8); // deactivating an LPI has no effect, and is not UNPREDICTABLE
    expect(gic.cpu(1).unpredictableCount).toBe(0);
    expect(gic.cpu(1).readRpr()).toBe(0xff);
  });

  it('MAPI maps EventID n to LPI n; an unmapped event, device or disabled ITS drops the write', () => {
    const { gic, its, send } = bringUp();
    send(mapc(0, 0));
    send(mapd(1, 14));
    send([ITS_CMD_MAPI, 1, LPI_BASE + 2, 0, 0]);
    its.write(GITS_TRANSLATER, LPI_BASE + 2, 1);
    expect(gic.cpu(0).readIar1()).toBe(LPI_BASE + 2);
    its.write(GITS_TRANSLATER, 7, 1);
    its.write(GITS_TRANSLATER, 0, 9);
    its.write(GITS_CTLR, 0);
    its.write(GITS_TRANSLATER, LPI_BASE + 2, 1);
    expect(its.droppedCount).toBe(3);
    expect(gic.cpu(0).irqLine).toBe(false);
  });

  it('a configuration byte change is seen only after INV (the redistributor caches it)', () => {
    const { memory, gic, its, send } = bringUp();
    send(mapc(0, 0));
    send(mapd(2, 4));
    send(mapti(2, 0, LPI_BASE + 1, 0));
    memory.writeU8(PROP_TABLE + 1, 0xa0 | 2); // disable LPI 8193 in the table
    its.write(GITS_TRANSLATER, 0, 2);
    expect(gic.cpu(0).irqLine).toBe(true); // stale cached byte: still enabled
    send(byEvent(ITS_CMD_INV, 2, 0));
    expect(gic.cpu(0).irqLine).toBe(false); // pending but disabled
    expect(gic.distributor.lpis!.isPending(0, LPI_BASE + 1)).toBe(true);
    memory.writeU8(PROP_TABLE + 1, PROP_ENABLED);
    send(byEvent(ITS_CMD_INV, 2, 0));
    expect(gic.cpu(0).readIar1()).toBe(LPI_BASE + 1);
  });

  it('priority decides between an SPI and an LPI; an equal priority goes to the SPI (lower INTID)', () => {
    const { memory, gic, its, send } = bringUp();
    send(mapc(0, 0));
    send(mapd(3, 4));
    send(mapti(3, 0, LPI_BASE, 0));
    const d = gic.distributor;
    d.setPriority(40, 0xa0);
    d.writeIrouter(40, 0, 0);
    d.setConfig(40, 'edge');
    d.enable(40);
    d.setLine(40, true);
    its.write(GITS_TRANSLATER, 0, 3);
    expect(d.highestPending(0)).toBe(40);
    memory.writeU8(PROP_TABLE, 0x80 | 3);
    send(byEvent(ITS_CMD_INV, 3, 0));
    expect(d.highestPending(0)).toBe(LPI_BASE);
  });

  it('MOVI moves a pending LPI to the new collection’s PE; DISCARD clears and unmaps; INT and CLEAR', () => {
    const { gic, its, send } = bringUp();
    const lpis = gic.distributor.lpis!;
    send(mapc(0, 0));
    send(mapc(1, 1));
    send(mapd(4, 4));
    send(mapti(4, 1, LPI_BASE + 5, 0));
    send(byEvent(ITS_CMD_INT, 4, 1));
    expect(lpis.isPending(0, LPI_BASE + 5)).toBe(true);
    send([ITS_CMD_MOVI, 4, 1, 0, 1]);
    expect(lpis.isPending(0, LPI_BASE + 5)).toBe(false);
    expect(lpis.isPending(1, LPI_BASE + 5)).toBe(true);
    expect(its.mapping(4, 1)).toEqual({ lpi: LPI_BASE + 5, pe: 1 });
    send(byEvent(ITS_CMD_CLEAR, 4, 1));
    expect(lpis.isPending(1, LPI_BASE + 5)).toBe(false);
    its.write(GITS_TRANSLATER, 1, 4);
    send(byEvent(ITS_CMD_DISCARD, 4, 1));
    expect(lpis.isPending(1, LPI_BASE + 5)).toBe(false);
    expect(its.mapping(4, 1)).toBeNull();
    expect(its.commandErrors).toBe(0);
  });

  it('MOVALL moves every LPI pending at one redistributor to another', () => {
    const { gic, its, send } = bringUp();
    const lpis = gic.distributor.lpis!;
    send(mapc(0, 0));
    send(mapd(6, 4));
    send(mapti(6, 0, LPI_BASE + 3, 0));
    send(mapti(6, 1, LPI_BASE + 40, 0));
    its.write(GITS_TRANSLATER, 0, 6);
    its.write(GITS_TRANSLATER, 1, 6);
    send([ITS_CMD_MOVALL, 0, 0, 0, 0 << 16, 0, 1 << 16, 0]);
    expect([lpis.isPending(0, LPI_BASE + 3), lpis.isPending(0, LPI_BASE + 40)]).toEqual([false, false]);
    expect([lpis.isPending(1, LPI_BASE + 3), lpis.isPending(1, LPI_BASE + 40)]).toEqual([true, true]);
  });

  it('a command with an error is ignored and the queue goes on', () => {
    const { its, send } = bringUp();
    send(mapti(9, 0, LPI_BASE, 0)); // device 9 not mapped
    send(mapd(9, 2));
    send(mapti(9, 4, LPI_BASE, 0)); // EventID beyond the device's 2 bits
    send(mapti(9, 0, 40, 0)); // an SPI is not an LPI
    send([0x2a]); // VMAPTI: no GICv4 here
    send(mapti(9, 1, LPI_BASE, 0));
    expect(its.commandErrors).toBe(4);
    expect(its.lastError).toMatch(/0x2a/);
    expect(its.mapping(9, 1)).toEqual(null); // no collection 0 mapped yet
    send(mapc(0, 0));
    expect(its.mapping(9, 1)).toEqual({ lpi: LPI_BASE, pe: 0 });
  });

  it('an LPI sent to a redistributor with EnableLPIs = 0 is dropped', () => {
    const { gic, its, send } = bringUp();
    gic.redistributor(1).write(GICR_CTLR, 0);
    send(mapc(0, 1));
    send(mapd(1, 2));
    send(mapti(1, 0, LPI_BASE, 0));
    its.write(GITS_TRANSLATER, 0, 1);
    expect(gic.distributor.lpis!.droppedCount).toBe(1);
    expect(gic.cpu(1).readIar1()).toBe(SPURIOUS_INTID);
  });

  // its_cpu_init_lpis programs each CPU's redistributor as the CPU comes up, while earlier CPUs have LPIs on
  it('GICR_PROPBASER: UNPREDICTABLE only through a redistributor with EnableLPIs set, or with another table', () => {
    const { gic } = bringUp();
    const lpis = gic.distributor.lpis!;
    const seen = unpredictableLog(lpis);
    gic.redistributor(1).write(GICR_CTLR, 0);
    gic.redistributor(1).write(GICR_PROPBASER, PROP_TABLE | 13); // the same table, PE 0 still has LPIs on
    expect(lpis.unpredictableCount).toBe(0);
    gic.redistributor(0).write(GICR_PROPBASER, PROP_TABLE | 13); // EnableLPIs is set on PE 0: ignored
    expect(lpis.unpredictableCount).toBe(1);
    gic.redistributor(1).write(GICR_PROPBASER, (PROP_TABLE + 0x1000) | 13); // another table than the shared one
    expect(lpis.unpredictableCount).toBe(2);
    expect(seen).toEqual(['0 GICR_PROPBASER enable_lpis 0', '1 GICR_PROPBASER other_table 0']);
  });

  it('a GIC with an ITS is plain data: a copy runs on its own and hashes equal', () => {
    const { gic, its, send } = bringUp();
    send(mapc(0, 0));
    send(mapd(1, 2));
    send(mapti(1, 0, LPI_BASE, 0));
    const c = copyState(gic);
    expect(stateHash(c)).toBe(stateHash(gic));
    c.its!.write(GITS_TRANSLATER, 0, 1);
    expect(c.cpu(0).irqLine).toBe(true);
    expect(gic.cpu(0).irqLine).toBe(false);
    expect(its.droppedCount).toBe(0);
  });
});
