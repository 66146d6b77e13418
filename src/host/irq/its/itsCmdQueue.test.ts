/**
 * The host ITS driver's command writer (its_send_single_command, irq-gic-v3-its.c) against the hardware ITS model:
 * boot state (its_cpu_init_lpis, its_cpu_init_collection), commands and their SYNC reaching the ITS, the queue
 * wrapping, and its->lock held only while the queue is written.
 */
import { describe, expect, it } from 'vitest';
import {
  GITS_CREADR,
  GITS_CWRITER,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_SYNC,
} from '../../../hw/gicv3/its.js';
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import { GICR_CTLR, GICR_CTLR_ENABLE_LPIS, GICR_PROPBASER } from '../../../hw/gicv3/regs.js';
import { Engine } from '../../../sim/engine.js';
import type { Frame } from '../../../sim/frame.js';
import type { TaskGen } from '../../../sim/task.js';
import { bootHostIrq, type HostIrqV3 } from '../boot.js';
import { itsBuildMaptiCmd, itsBuildSyncCmd, itsDecodeCmd } from './itsCmd.js';
import { itsSendSingleCommand } from './itsCmdQueue.js';
import { itsSendDiscard, itsSendMapd, itsSendMapti, itsSendMovi } from './itsCommands.js';
import { ItsDevice } from './itsDevice.js';
import { ITS_CMD_QUEUE_NR_ENTRIES } from './itsNode.js';

function setup(cpus = 2) {
  const engine = new Engine({ cpus, seed: 3 });
  const hi = bootHostIrq(engine, { gic: 'v3', nrLpis: 256 }) as HostIrqV3;
  const host = hi.its!;
  const run = (frames: () => Frame[]): void => {
    const t = engine.spawn(
      'its-test',
      1,
      (function* (): TaskGen<void> {
        for (const f of frames()) yield* f;
      })(),
    );
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
  };
  return { engine, hi, host, its: host.its, hw: host.its.hw, run };
}

describe('ITS boot (its_cpu_init_lpis, its_cpu_init_collection)', () => {
  it('enables LPIs on every redistributor with one shared property table and maps collection n to CPU n', () => {
    const { hi, host, its } = setup(3);
    for (let cpu = 0; cpu < 3; cpu++) {
      const rd = hi.gic.redistributor(cpu);
      expect(rd.read(GICR_CTLR) & GICR_CTLR_ENABLE_LPIS).toBe(GICR_CTLR_ENABLE_LPIS);
      expect(rd.read(GICR_PROPBASER) & 0x1f).toBe(host.lpiIdBits - 1);
      expect(its.collections[cpu]).toEqual({ colId: cpu, targetAddress: cpu << 16 });
    }
    // per CPU: MAPC + SYNC, INVALL; none refused by the ITS
    expect(its.sent[ITS_CMD_MAPC]).toBe(3);
    expect(its.sent[ITS_CMD_SYNC]).toBe(3);
    expect(its.hw.commandErrors).toBe(0);
    // gic_reset_prop_table: priority 0xa0, Group 1, disabled
    expect(host.pages.memory.readU8(host.propTable)).toBe(0xa2);
    // its_lpi_init sized by GICD_TYPER.num_LPIs: the 256 LPIs the GIC implements
    expect(host.lpiRanges.freeCount).toBe(256);
  });
});

describe('its_send_single_command', () => {
  it('posts MAPD, MAPTI + SYNC and DISCARD + SYNC; the ITS executes each before the writer returns', () => {
    const { its, hw, run } = setup();
    const dev = new ItsDevice(its, 7, its.pages.alloc(256, 256), 4, LPI_BASE, 4);
    dev.colMap[2] = 1;
    run(() => [itsSendMapd(dev, true), itsSendMapti(dev, LPI_BASE + 2, 2)]);
    expect(hw.mapping(7, 2)).toEqual({ lpi: LPI_BASE + 2, pe: 1 });
    expect(hw.read(GITS_CREADR)).toBe(hw.read(GITS_CWRITER));
    expect([its.sent[ITS_CMD_MAPD], its.sent[ITS_CMD_MAPTI]]).toEqual([1, 1]);
    // its_set_affinity: MOVI to collection 0, the SYNC on the event's old collection (1)
    const before = its.cmdWrite;
    run(() => [itsSendMovi(dev, its.collections[0]!, 2)]);
    const sync = new Uint32Array(8);
    for (let i = 0; i < 4; i++) {
      its.pages.memory.readU64(its.cmdBase + 32 * (before + 1) + 8 * i, sync, 2 * i);
    }
    expect(itsDecodeCmd(sync)).toMatchObject({ cmd: ITS_CMD_SYNC, target: 1 << 16 });
    expect(hw.mapping(7, 2)).toEqual({ lpi: LPI_BASE + 2, pe: 0 });
    dev.colMap[2] = 0;
    run(() => [itsSendDiscard(dev, 2)]);
    expect(hw.mapping(7, 2)).toBeNull();
    expect(hw.commandErrors).toBe(0);
    expect(its.log).toEqual([]);
  });

  it('wraps around the 64 KiB queue (its_wait_for_range_completion linearises the read pointer)', () => {
    const { its, hw, run } = setup();
    const dev = new ItsDevice(its, 1, its.pages.alloc(256, 256), 2, LPI_BASE, 2);
    run(() => [itsSendMapd(dev, true)]);
    const n = ITS_CMD_QUEUE_NR_ENTRIES / 2 + 3; // each MAPTI takes two slots with its SYNC
    run(() =>
      Array.from({ length: n }, (_, i) =>
        itsSendSingleCommand(its, itsBuildMaptiCmd(1, i % 2, LPI_BASE + (i % 2), 0), itsBuildSyncCmd(0)),
      ),
    );
    // boot: per CPU MAPC + SYNC and INVALL (6 slots), then the MAPD
    expect(its.cmdWrite).toBe((6 + 1 + 2 * n) % ITS_CMD_QUEUE_NR_ENTRIES);
    expect(hw.read(GITS_CREADR)).toBe(its.cmdWrite * 32);
    expect(hw.mapping(1, 1)).toEqual({ lpi: LPI_BASE + 1, pe: 0 });
    expect(its.log).toEqual([]);
  });

  it('holds its->lock only while writing the queue: released before the completion poll', () => {
    const { engine, its, run } = setup();
    const dev = new ItsDevice(its, 2, its.pages.alloc(256, 256), 2, LPI_BASE, 2);
    let heldAtReturn: unknown = 'unset';
    run(() => [itsSendMapd(dev, true)]);
    const t = engine.spawn(
      'probe',
      0,
      (function* (): TaskGen<void> {
        yield* itsSendMapd(dev, false);
        heldAtReturn = its.lock.owner;
      })(),
    );
    engine.settle();
    expect(t.error).toBeUndefined();
    expect(heldAtReturn).toBeNull();
    expect(its.hw.mapping(2, 0)).toBeNull();
  });
});
