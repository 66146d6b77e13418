/**
 * Bringing up LPIs and the ITS as Linux does at boot (irq-gic-v3-its.c, Linux 6.1), synchronously like gicV3Init:
 * its_probe_one (GITS_CBASER for a 64 KiB command queue, GITS_CWRITER = 0, its_alloc_tables, GITS_CTLR.Enabled),
 * allocate_lpi_tables (one LPI property table for all redistributors, reset to priority 0xa0 | Group 1, disabled;
 * one zeroed pending table per CPU), its_lpi_init (the LPI allocator sized by GICD_TYPER.num_LPIs, else IDbits),
 * then per CPU its_cpu_init_lpis (GICR_PROPBASER, GICR_PENDBASER, GICR_CTLR.EnableLPIs) and
 * its_cpu_init_collection (collection n = CPU n, MAPC + SYNC, INVALL). Boot runs before any task, so its commands
 * are queued and posted directly; everything later goes through its_send_single_command (itsCmdQueue.ts).
 *
 * The model's ITS keeps its device and collection tables inside (their format is IMPLEMENTATION DEFINED), so
 * its_alloc_tables is reduced to one flat 64 KiB table per GITS_BASER<n> of type Devices or Collections.
 */
import type { Gicv3 } from '../../../hw/gicv3/gicv3.js';
import {
  GITS_BASER,
  GITS_BASER_TYPE_COLLECTION,
  GITS_BASER_TYPE_DEVICE,
  GITS_BASER_TYPE_SHIFT_HI,
  GITS_CBASER,
  GITS_CBASER_VALID_HI,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
} from '../../../hw/gicv3/its.js';
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import {
  GICD_TYPER_IDBITS_SHIFT,
  GICD_TYPER_NUM_LPIS_SHIFT,
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_PENDBASER,
  GICR_PROPBASER,
  GICR_TYPER,
  GICR_TYPER_PROCNUM_SHIFT,
} from '../../../hw/gicv3/regs.js';
import type { PhysicalMemory } from '../../../hw/physMem.js';
import type { Engine } from '../../../sim/engine.js';
import { ModelError } from '../../../sim/errors.js';
import { type ItsCmdBlock, itsBuildInvallCmd, itsBuildMapcCmd, itsBuildSyncCmd } from './itsCmd.js';
import { ITS_CMD_QUEUE_SZ, ItsNode, itsPostCommands, itsQueueCommand } from './itsNode.js';
import { LpiRangeList } from './lpiRange.js';
import { PhysPages } from './physPages.js';

/** ITS_MAX_LPI_NRBITS: Linux uses at most 64K INTIDs for LPIs. */
const ITS_MAX_LPI_NRBITS = 16;
/** LPI_PROP_DEFAULT_PRIO (= GICD_INT_DEF_PRI) and LPI_PROP_GROUP1, LPI_PROP_ENABLED of the configuration byte. */
export const LPI_PROP_DEFAULT_PRIO = 0xa0;
export const LPI_PROP_GROUP1 = 1 << 1;
export const LPI_PROP_ENABLED = 1 << 0;
const SZ_64K = 64 * 1024;
const HI = 2 ** 32;

/** What the host's LPI support is: the ITS, the allocator and the tables (gic_rdists of the kernel). */
export interface HostIts {
  readonly its: ItsNode;
  readonly lpiRanges: LpiRangeList;
  readonly pages: PhysPages;
  /** gic_rdists->prop_table_pa, and the INTID bits it covers (lpi_id_bits). */
  readonly propTable: number;
  readonly lpiIdBits: number;
  /** Per CPU: the pending table (gic_data_rdist()->pend_page). */
  readonly pendTables: readonly number[];
  /** Per CPU: the LPIs targeting it (cpu_lpi_count, unmanaged: its_select_cpu picks the least loaded). */
  readonly cpuLpiCount: Int32Array;
}

/** Queue and post one command (and its SYNC) at boot, when nothing else runs. */
function itsBootCommand(its: ItsNode, cmd: ItsCmdBlock, sync: ItsCmdBlock | null): void {
  itsQueueCommand(its, cmd);
  if (sync !== null) itsQueueCommand(its, sync);
  itsPostCommands(its);
}

export function itsInit(engine: Engine, gic: Gicv3, memory: PhysicalMemory): HostIts {
  const hw = gic.its;
  if (hw === null) throw new ModelError('its_init: this GICv3 has no ITS (built without LPIs)');
  const pages = new PhysPages(memory);
  const nrCpus = gic.nrPes;
  const its = new ItsNode(engine, hw, pages, nrCpus);

  // its_probe_one: the command queue (Size = 16 pages - 1), its_alloc_tables, then enable
  hw.write(GITS_CBASER + 4, (Math.floor(its.cmdBase / HI) | GITS_CBASER_VALID_HI) >>> 0);
  hw.write(GITS_CBASER, ((its.cmdBase % HI) | (ITS_CMD_QUEUE_SZ / 4096 - 1)) >>> 0);
  hw.write(GITS_CWRITER, 0);
  for (let i = 0; i < 8; i++) {
    const type = (hw.read(GITS_BASER + 8 * i + 4) >>> GITS_BASER_TYPE_SHIFT_HI) & 7;
    if (type !== GITS_BASER_TYPE_DEVICE && type !== GITS_BASER_TYPE_COLLECTION) continue;
    const table = pages.alloc(SZ_64K, SZ_64K);
    hw.write(GITS_BASER + 8 * i, ((table % HI) | (SZ_64K / 4096 - 1)) >>> 0);
    hw.write(GITS_BASER + 8 * i + 4, (Math.floor(table / HI) | 0x80000000) >>> 0);
  }
  hw.write(GITS_CTLR, GITS_CTLR_ENABLED);

  // allocate_lpi_tables + its_setup_lpi_prop_table + its_lpi_init
  const typer = gic.distributor.typer;
  const lpiIdBits = Math.min(((typer >>> GICD_TYPER_IDBITS_SHIFT) & 0x1f) + 1, ITS_MAX_LPI_NRBITS);
  const propSize = Math.ceil(2 ** lpiIdBits / SZ_64K) * SZ_64K; // LPI_PROPBASE_SZ
  const propTable = pages.alloc(propSize, SZ_64K);
  pages.fill(propTable, propSize, LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1); // gic_reset_prop_table
  const pendSize = Math.ceil(2 ** lpiIdBits / 8 / SZ_64K) * SZ_64K; // LPI_PENDBASE_SZ
  const pendTables = Array.from({ length: nrCpus }, () => pages.alloc(pendSize, SZ_64K));
  const numLpis = 2 ** (((typer >>> GICD_TYPER_NUM_LPIS_SHIFT) & 0x1f) + 1);
  const lpis = 2 ** lpiIdBits - LPI_BASE;
  const lpiRanges = new LpiRangeList(numLpis > 2 && numLpis <= lpis ? numLpis : lpis);

  for (let cpu = 0; cpu < nrCpus; cpu++) {
    // its_cpu_init_lpis: PROPBASER (IDbits = lpi_id_bits - 1), PENDBASER, EnableLPIs
    const rd = gic.redistributor(cpu);
    rd.write(GICR_PROPBASER + 4, Math.floor(propTable / HI));
    rd.write(GICR_PROPBASER, ((propTable % HI) | (lpiIdBits - 1)) >>> 0);
    rd.write(GICR_PENDBASER + 4, Math.floor(pendTables[cpu]! / HI));
    rd.write(GICR_PENDBASER, pendTables[cpu]! % HI);
    rd.write(GICR_CTLR, rd.read(GICR_CTLR) | GICR_CTLR_ENABLE_LPIS);
    // its_cpu_init_collection: GITS_TYPER.PTA = 0, so the target is the processor number << 16
    const col = its.collections[cpu]!;
    col.targetAddress = ((rd.read(GICR_TYPER) >>> GICR_TYPER_PROCNUM_SHIFT) & 0xffff) * 0x10000;
    col.colId = cpu;
    itsBootCommand(its, itsBuildMapcCmd(col.colId, col.targetAddress, true), itsBuildSyncCmd(col.targetAddress));
    itsBootCommand(its, itsBuildInvallCmd(col.colId), null);
  }
  return { its, lpiRanges, pages, propTable, lpiIdBits, pendTables, cpuLpiCount: new Int32Array(nrCpus) };
}
