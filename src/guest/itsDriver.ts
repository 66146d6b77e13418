/**
 * The guest's ITS driver, a subset of drivers/irqchip/irq-gic-v3-its.c as it runs in a KVM guest whose ITS and
 * redistributors KVM emulates (every GITS_* and GICR_* access is a data abort; tables and the command queue are plain
 * guest RAM). At boot, on vCPU 0 after the distributor and before the CPU interfaces:
 * - its_probe_one / its_alloc_tables: the device table (GITS_BASER0) and collection table (GITS_BASER1), one 64 KiB
 *   page each, the 64 KiB command queue (GITS_CBASER, GITS_CWRITER = 0), then GITS_CTLR.Enabled;
 * - its_cpu_init_lpis for every vCPU's redistributor: GICR_PROPBASER (the shared LPI configuration table, 16 ID bits),
 *   GICR_PENDBASER (the vCPU's pending table), GICR_CTLR.EnableLPIs;
 * - its_cpu_init_collections: MAPC (collection n → vCPU n, RDbase as a processor number since GITS_TYPER.PTA = 0)
 *   with its SYNC, then INVALL;
 * - per MSI-capable device (its_msi_prepare → its_create_device): MAPD with an ITT of enough EventID bits; per event
 *   (its_irq_domain_activate): MAPTI to its LPI in the collection of its target vCPU with a SYNC; then the unmask
 *   (lpi_update_config): the LPI's configuration byte with Enable, INV and its SYNC.
 * Each command batch is written to the queue (stores), published with a GITS_CWRITER write, and waited for by
 * reading GITS_CREADR until it reaches CWRITER (its_wait_for_range_completion).
 *
 * Simplifications: vCPU 0 programs every redistributor (Linux: each CPU its own, in its_cpu_init); only the
 * configuration bytes of the LPIs in use are written (Linux fills the whole table with the default priority first);
 * invalidation goes through the ITS (INV), the path Linux takes without GICR_CTLR.IR / DirectLPI. Each function that
 * runs across steps is a frame.
 */
import {
  GITS_BASER,
  GITS_CBASER,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
  GITS_TRANSLATER,
  ITS_CMD_INV,
  ITS_CMD_INVALL,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_SIZE,
  ITS_CMD_SYNC,
} from '../hw/gicv3/its.js';
import { LPI_BASE } from '../hw/gicv3/lpi.js';
import { GICR_CTLR, GICR_CTLR_ENABLE_LPIS, GICR_PENDBASER, GICR_PROPBASER } from '../hw/gicv3/regs.js';
import type { PhysicalMemory } from '../hw/physMem.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op } from '../sim/task.js';
import type { GuestIrqHandler } from './gicDriver.js';
import type { GuestGicV3Driver } from './gicV3Driver.js';

export const C_GUEST_STORE = defineCost(
  'guest_store',
  5,
  'a guest store to its own RAM (an ITS command word, a table entry, an LPI configuration byte); estimate',
);

/** QEMU virt's ITS frame (VIRT_GIC_ITS) and its RAM base (VIRT_MEM), where the driver's tables go. */
export const VIRT_GIC_ITS = 0x0808_0000;
export const VIRT_MEM = 0x4000_0000;
const SZ_64K = 0x1_0000;
const GICR_STRIDE = 0x2_0000;
/** irq-gic-v3-its.c ITS_CMD_QUEUE_SZ (64 KiB) and LPI_NRBITS (16 INTID bits). */
const ITS_CMD_QUEUE_SZ = SZ_64K;
const LPI_NRBITS = 16;
/** LPI_PROP_DEFAULT_PRIO (GICD_INT_DEF_PRI) | LPI_PROP_GROUP1 (RES1), and LPI_PROP_ENABLED. */
const LPI_PROP_DEFAULT = 0xa0 | 0x2;
const LPI_PROP_ENABLED = 0x1;
/** High words: GITS_BASER.Valid / GITS_CBASER.Valid [63]; GITS_BASER.Type [58:56], Entry_Size [52:48] (read only in KVM). */
const VALID_HI = 0x8000_0000;
/** GITS_BASER Page_Size[9:8] = 64 KiB, Size[7:0] = pages - 1; Inner Shareable [11:10] = 1, InnerCache RaWb [61:59] = 7. */
const BASER_LO_ATTRS = (2 << 8) | (1 << 10);
const BASER_HI_ATTRS = 7 << 27;
/** GITS_CBASER.Size (4 KiB pages - 1). */
const CBASER_SIZE = ITS_CMD_QUEUE_SZ / 0x1000 - 1;
/** GICR_PROPBASER.IDbits = LPI_NRBITS - 1 with Inner Shareable | InnerCache RaWb (bits 11:10 = 1, 9:7 = 7). */
const PROPBASER_LO_ATTRS = LPI_NRBITS - 1 + (1 << 10) + (7 << 7);
const PENDBASER_LO_ATTRS = (1 << 10) + (7 << 7);
/** An ITT of EventID bits `bits`: 8-byte entries, 256-byte aligned (ITS_ITT_ALIGN). */
const ITT_ALIGN = 256;

/** One event of an MSI-capable device: its LPI, the vCPU its collection targets, and the guest's handler. */
export interface GuestItsEvent {
  eventId: number;
  lpi: number;
  /** vCPU whose collection the LPI goes to; default 0. */
  target?: number;
  handler: GuestIrqHandler;
}

export interface GuestItsDevice {
  deviceId: number;
  events: readonly GuestItsEvent[];
}

export interface GuestItsOptions {
  /** IPA of the ITS frame; default VIRT_GIC_ITS. */
  base?: number;
  /** Guest RAM from which the tables are allocated; default VIRT_MEM. */
  ramBase?: number;
  devices: readonly GuestItsDevice[];
}

// Action kinds of the boot plan (plain data: the frame walks it)
const A_MMIO_WRITE = 0;
const A_STORE_U64 = 1;
const A_STORE_U8 = 2;
/** Read GITS_CREADR until it equals `lo` (the CWRITER just written). */
const A_WAIT_CREADR = 3;

interface Action {
  readonly kind: number;
  readonly addr: number;
  readonly lo: number;
  readonly hi: number;
}

/** What the guest sends to the ITS: its MSI doorbell and the message of each event. */
export interface GuestItsMsi {
  readonly deviceId: number;
  readonly eventId: number;
  /** GITS_TRANSLATER's IPA (its_irq_compose_msi_msg), and the data (the EventID). */
  readonly address: number;
  readonly data: number;
}

/** The driver: its boot plan and the MSI messages of the devices' events. */
export class GuestItsDriver {
  readonly base: number;
  private readonly ramBase: number;
  private next: number;
  private cwriter = 0;
  private readonly queue: number;
  private readonly plan: Action[] = [];
  readonly msis: GuestItsMsi[] = [];

  constructor(
    private readonly gic: GuestGicV3Driver,
    private readonly opts: GuestItsOptions,
  ) {
    this.base = opts.base ?? VIRT_GIC_ITS;
    this.ramBase = opts.ramBase ?? VIRT_MEM;
    this.next = this.ramBase;
    this.queue = this.alloc(ITS_CMD_QUEUE_SZ, SZ_64K);
    for (const d of opts.devices) {
      for (const e of d.events) {
        if (!Number.isInteger(e.lpi) || e.lpi < LPI_BASE || e.lpi >= 2 ** LPI_NRBITS) {
          throw new ModelError(
            `device ${d.deviceId} event ${e.eventId}: LPI ${e.lpi} outside 8192..${2 ** LPI_NRBITS - 1}`,
          );
        }
        gic.checkVcpu(e.target ?? 0);
        gic.registerHandler(e.lpi, e.handler);
        this.msis.push({
          deviceId: d.deviceId,
          eventId: e.eventId,
          address: this.base + GITS_TRANSLATER,
          data: e.eventId,
        });
      }
    }
    this.buildPlan();
  }

  /** The boot (its_init, its_cpu_init for every vCPU, the devices' MSI set-up) as a frame on vCPU 0. */
  init(g: GuestCpu, ram: PhysicalMemory): Frame {
    return new GuestItsInit(this.gic, g, ram, this.plan);
  }

  /** A bump allocator in guest RAM (the tables are never freed). */
  private alloc(size: number, align: number): number {
    const at = Math.ceil(this.next / align) * align;
    this.next = at + size;
    return at;
  }

  private mmio(addr: number, value: number): void {
    this.plan.push({ kind: A_MMIO_WRITE, addr, lo: value >>> 0, hi: 0 });
  }

  /** A 64-bit register as two 32-bit writes (low word first, as writeq's halves would land). */
  private mmio64(addr: number, lo: number, hi: number): void {
    this.mmio(addr, lo);
    this.mmio(addr + 4, hi);
  }

  /** One command (four little-endian u64s, given as eight words) into the queue. */
  private command(w: readonly number[]): void {
    for (let i = 0; i < 4; i++) {
      this.plan.push({
        kind: A_STORE_U64,
        addr: this.queue + this.cwriter + 8 * i,
        lo: w[2 * i]! >>> 0,
        hi: w[2 * i + 1]! >>> 0,
      });
    }
    this.cwriter = (this.cwriter + ITS_CMD_SIZE) % ITS_CMD_QUEUE_SZ;
  }

  /** its_send_single_command's end: CWRITER, then the wait for CREADR. */
  private publish(): void {
    this.mmio64(this.base + GITS_CWRITER, this.cwriter, 0);
    this.plan.push({ kind: A_WAIT_CREADR, addr: this.base + GITS_CREADR, lo: this.cwriter, hi: 0 });
  }

  /** its_build_sync_cmd: SYNC to RDbase `target`. */
  private sync(target: number): void {
    this.command([ITS_CMD_SYNC, 0, 0, 0, target << 16, target >>> 16, 0, 0]);
  }

  private buildPlan(): void {
    const gic = this.gic;
    const base = this.base;
    // its_alloc_tables: BASER0 (devices) and BASER1 (collections), one 64 KiB page each; then the command queue
    const devTable = this.alloc(SZ_64K, SZ_64K);
    const collTable = this.alloc(SZ_64K, SZ_64K);
    this.mmio64(base + GITS_BASER, devTable | BASER_LO_ATTRS, VALID_HI | BASER_HI_ATTRS);
    this.mmio64(base + GITS_BASER + 8, collTable | BASER_LO_ATTRS, VALID_HI | BASER_HI_ATTRS);
    this.mmio64(base + GITS_CBASER, this.queue | CBASER_SIZE | (1 << 10), VALID_HI | BASER_HI_ATTRS);
    this.mmio64(base + GITS_CWRITER, 0, 0);
    this.mmio(base + GITS_CTLR, GITS_CTLR_ENABLED);
    // its_cpu_init_lpis, for each vCPU: the shared configuration table and the vCPU's own pending table
    const propTable = this.alloc(2 ** LPI_NRBITS - LPI_BASE, SZ_64K);
    for (let cpu = 0; cpu < gic.nrVcpus; cpu++) {
      const rd = gic.gicrBase + cpu * GICR_STRIDE;
      const pend = this.alloc(2 ** LPI_NRBITS / 8, SZ_64K);
      this.mmio64(rd + GICR_PROPBASER, propTable | PROPBASER_LO_ATTRS, 0);
      this.mmio64(rd + GICR_PENDBASER, pend | PENDBASER_LO_ATTRS, 0);
      this.mmio(rd + GICR_CTLR, GICR_CTLR_ENABLE_LPIS);
    }
    // its_cpu_init_collections: MAPC (+ SYNC), INVALL
    for (let cpu = 0; cpu < gic.nrVcpus; cpu++) {
      this.command([ITS_CMD_MAPC, 0, 0, 0, (cpu << 16) | cpu, VALID_HI | (cpu >>> 16), 0, 0]);
      this.sync(cpu);
      this.command([ITS_CMD_INVALL, 0, 0, 0, cpu, 0, 0, 0]);
      this.publish();
    }
    for (const d of this.opts.devices) this.deviceSetup(d, propTable);
  }

  /** its_create_device (MAPD) and, per event, its_irq_domain_activate (MAPTI) and the unmask (config byte, INV). */
  private deviceSetup(d: GuestItsDevice, propTable: number): void {
    const maxEvent = d.events.reduce((m, e) => Math.max(m, e.eventId), 0);
    const bits = Math.max(1, Math.ceil(Math.log2(maxEvent + 1)));
    const itt = this.alloc(Math.max(2 ** bits * 8, ITT_ALIGN), ITT_ALIGN);
    this.command([ITS_CMD_MAPD, d.deviceId, bits - 1, 0, itt >>> 0, VALID_HI | Math.floor(itt / 2 ** 32), 0, 0]);
    this.publish();
    for (const e of d.events) {
      const target = e.target ?? 0;
      const prop = propTable + e.lpi - LPI_BASE;
      this.plan.push({ kind: A_STORE_U8, addr: prop, lo: LPI_PROP_DEFAULT, hi: 0 });
      this.command([ITS_CMD_MAPTI, d.deviceId, e.eventId, e.lpi, target, 0, 0, 0]);
      this.sync(target);
      this.publish();
      this.plan.push({ kind: A_STORE_U8, addr: prop, lo: LPI_PROP_DEFAULT | LPI_PROP_ENABLED, hi: 0 });
      this.command([ITS_CMD_INV, d.deviceId, e.eventId, 0, 0, 0, 0, 0]);
      this.sync(target);
      this.publish();
    }
  }
}

const PC_NEXT = 0;
const PC_CREADR = 1;
const PC_STORE = 2;

/** The boot plan run on vCPU 0: each store one step, each GITS_* / GICR_* access a trap. */
class GuestItsInit extends Frame {
  private i = 0;

  constructor(
    private readonly gic: GuestGicV3Driver,
    private readonly g: GuestCpu,
    private readonly ram: PhysicalMemory,
    private readonly plan: readonly Action[],
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === PC_CREADR) {
      const a = this.plan[this.i - 1]!;
      if (sent !== a.lo) return this.call(this.gic.mmioAt(this.g, a.addr, false)); // its_wait_for_range_completion
    } else if (this.pc === PC_STORE) {
      const a = this.plan[this.i - 1]!;
      if (a.kind === A_STORE_U64) this.ram.writeU64(a.addr, a.lo, a.hi);
      else this.ram.writeU8(a.addr, a.lo);
    }
    this.pc = PC_NEXT;
    const a = this.plan[this.i++];
    if (a === undefined) return this.return_(undefined);
    switch (a.kind) {
      case A_MMIO_WRITE:
        return this.call(this.gic.mmioAt(this.g, a.addr, true, a.lo));
      case A_WAIT_CREADR:
        this.pc = PC_CREADR;
        return this.call(this.gic.mmioAt(this.g, a.addr, false));
      default:
        this.pc = PC_STORE;
        return this.yield_(op(C_GUEST_STORE, this.gic.cpuOid(this.g)));
    }
  }
}
