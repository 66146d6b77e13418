// The Interrupt Translation Service (ARM IHI 0069 chapter 5 "LPIs": the ITS, its commands; GITS_* registers): a
// device writes its EventID to GITS_TRANSLATER, the bus adds the writer's DeviceID, and the ITS looks the pair up —
// the device table gives the device's interrupt translation table (ITT), the ITT gives the LPI and the collection,
// the collection table gives the target redistributor — and makes that LPI pending there. Software fills the tables
// only through commands it writes to a queue in memory (GITS_CBASER) and publishes by advancing GITS_CWRITER.
//
// The table formats in memory are IMPLEMENTATION DEFINED: this model keeps the device, ITT and collection
// entries inside the ITS (GITS_BASER<n> are kept as written; software never reads the tables) and processes the queue
// at once when GITS_CWRITER moves, so GITS_CREADR always equals it and a SYNC has nothing to wait for. A command with an
// error is ignored and the queue goes on (one behaviour the architecture permits without SEIs): counted in `commandErrors`, the
// last reason in `lastError`. A translation that finds no mapping is dropped (`droppedCount`). Physical LPIs only
// unless the GIC implements GICv4.1 (`vlpis`): then GITS_TYPER.Virtual = 1 and the virtual commands, and an event may
// map to a vLPI of a vPE (itsVirtual.ts); without it they are errors. QEMU's hw/intc/arm_gicv3_its.c (process_movi,
// process_movall) is the reference for what moves with a retargeted LPI.

import { ModelError } from '../../sim/errors.js';
import { touch } from '../../sim/footprint.js';
import type { PhysicalMemory } from '../physMem.js';
import type { Gicv3TraceHooks } from './gicv3Trace.js';
import type { Gicv3ItsVirtual, ItsEvents, IttEntry } from './itsVirtual.js';
import { type Gicv3Lpis, LPI_BASE } from './lpi.js';

// ---- registers (ITS control frame; the translation frame is 64 KiB above) ----
export const GITS_CTLR = 0x0000;
export const GITS_IIDR = 0x0004;
export const GITS_TYPER = 0x0008;
export const GITS_CBASER = 0x0080;
export const GITS_CWRITER = 0x0088;
export const GITS_CREADR = 0x0090;
export const GITS_BASER = 0x0100;
export const GITS_TRANSLATER = 0x10040;
export const GITS_CTLR_ENABLED = 1 << 0;
export const GITS_CTLR_QUIESCENT = 1 << 31;
/** GITS_CBASER high half: Valid[63]; low half: Size[7:0] (4 KiB pages - 1), Physical_Address[51:12]. */
export const GITS_CBASER_VALID_HI = 1 << 31;
/** GITS_BASER<n> high half: Valid[63], Type[58:56], Entry_Size[52:48] (bytes - 1). */
export const GITS_BASER_TYPE_SHIFT_HI = 24;
export const GITS_BASER_TYPE_DEVICE = 1;
export const GITS_BASER_TYPE_VCPU = 2;
export const GITS_BASER_TYPE_COLLECTION = 4;
export const ITS_CMD_SIZE = 32;

// ---- commands (the number in DW0[7:0]) ----
export const ITS_CMD_MOVI = 0x01;
export const ITS_CMD_INT = 0x03;
export const ITS_CMD_CLEAR = 0x04;
export const ITS_CMD_SYNC = 0x05;
export const ITS_CMD_MAPD = 0x08;
export const ITS_CMD_MAPC = 0x09;
export const ITS_CMD_MAPTI = 0x0a;
export const ITS_CMD_MAPI = 0x0b;
export const ITS_CMD_INV = 0x0c;
export const ITS_CMD_INVALL = 0x0d;
export const ITS_CMD_MOVALL = 0x0e;
export const ITS_CMD_DISCARD = 0x0f;

/** GIC-600 ITS IIDR (implementer ARM 0x43b, ProductID 0x02). */
const GITS_IIDR_GIC600 = 0x0201643b;
const NR_BASERS = 8;
const ITT_ENTRY_SIZE = 8;

export interface Gicv3ItsOptions {
  lpis: Gicv3Lpis;
  memory: PhysicalMemory;
  /** DeviceID and EventID widths (GITS_TYPER.Devbits + 1, IDbits + 1); default 16 each. */
  deviceBits?: number;
  eventBits?: number;
  newOid?: (name: string) => number;
  /** The virtual commands, when the GIC implements GICv4.1. */
  virtual?: Gicv3ItsVirtual;
}

/** A mapped device (a device table entry): its ITT's address and size, and the ITT's entries. */
interface ItsDevice {
  ittAddr: number;
  eventBits: number;
  readonly events: Map<number, IttEntry>;
}

/** GITS_TYPER high word (GICv4.1): VMOVP[37], VMAPP[40] (the 4.1 VMAPP format). */
const GITS_TYPER_HI_VMOVP = 1 << 5;
const GITS_TYPER_HI_VMAPP = 1 << 8;
const GITS_TYPER_VIRTUAL = 1 << 1;

export class Gicv3Its implements ItsEvents {
  readonly deviceBits: number;
  readonly eventBits: number;
  /** Commands ignored for an error, and the last reason (for tests and checkers). */
  commandErrors = 0;
  lastError = '';
  /** Translation requests that found no mapping (or reached a disabled ITS) and were dropped. */
  droppedCount = 0;
  trace: Gicv3TraceHooks | null = null;
  /** The translation tables as one object of a checker's footprints, -1 when not tracked. */
  readonly oid: number;
  private readonly lpis: Gicv3Lpis;
  private readonly memory: PhysicalMemory;
  private readonly virtual: Gicv3ItsVirtual | null;
  private enabled = false;
  private cbaserLo = 0;
  private cbaserHi = 0;
  /** GITS_CWRITER / GITS_CREADR offsets into the queue, in bytes (multiples of 32). */
  private cwriter = 0;
  private creadr = 0;
  private readonly baser = new Uint32Array(2 * NR_BASERS);
  private readonly devices = new Map<number, ItsDevice>();
  /** Pending (v)LPIs a DISCARD cleared: interrupts dropped by a remap, for checkers. */
  discardedPending = 0;
  /** ICID → target PE (GITS_TYPER.PTA = 0: RDbase is the processor number). */
  private readonly collections = new Map<number, number>();
  /** The command being executed, as 8 little-endian 32-bit words (DW0 lo, DW0 hi, … DW3 hi). */
  private readonly cmd = new Uint32Array(8);

  constructor(opts: Gicv3ItsOptions) {
    this.lpis = opts.lpis;
    this.memory = opts.memory;
    this.virtual = opts.virtual ?? null;
    this.deviceBits = opts.deviceBits ?? 16;
    this.eventBits = opts.eventBits ?? 16;
    for (const [what, bits] of [
      ['deviceBits', this.deviceBits],
      ['eventBits', this.eventBits],
    ] as const) {
      if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new ModelError(`ITS ${what} ${bits} must be 1..32`);
    }
    this.oid = opts.newOid?.('its') ?? -1;
    this.baser[1] = (GITS_BASER_TYPE_DEVICE << GITS_BASER_TYPE_SHIFT_HI) | ((ITT_ENTRY_SIZE - 1) << 16);
    this.baser[3] = (GITS_BASER_TYPE_COLLECTION << GITS_BASER_TYPE_SHIFT_HI) | ((ITT_ENTRY_SIZE - 1) << 16);
    if (this.virtual !== null)
      this.baser[5] = (GITS_BASER_TYPE_VCPU << GITS_BASER_TYPE_SHIFT_HI) | ((ITT_ENTRY_SIZE - 1) << 16);
  }

  /** GITS_TYPER low half: Physical[0], Virtual[1], ITT_entry_size[7:4] (bytes - 1), IDbits[12:8], Devbits[17:13]; PTA[19] = 0. */
  get typerLow(): number {
    const virt = this.virtual !== null ? GITS_TYPER_VIRTUAL : 0;
    return (1 | virt | ((ITT_ENTRY_SIZE - 1) << 4) | ((this.eventBits - 1) << 8) | ((this.deviceBits - 1) << 13)) >>> 0;
  }
  get typerHigh(): number {
    return this.virtual !== null ? GITS_TYPER_HI_VMOVP | GITS_TYPER_HI_VMAPP : 0;
  }

  // ---- MMIO ----

  read(offset: number): number {
    switch (offset) {
      case GITS_CTLR:
        return ((this.enabled ? GITS_CTLR_ENABLED : 0) | GITS_CTLR_QUIESCENT) >>> 0;
      case GITS_IIDR:
        return GITS_IIDR_GIC600;
      case GITS_TYPER:
        return this.typerLow;
      case GITS_TYPER + 4:
        return this.typerHigh;
      case GITS_CBASER:
        return this.cbaserLo;
      case GITS_CBASER + 4:
        return this.cbaserHi;
      case GITS_CWRITER:
        return this.cwriter;
      case GITS_CREADR:
        return this.creadr;
    }
    if (offset >= GITS_BASER && offset < GITS_BASER + 8 * NR_BASERS && (offset & 3) === 0) {
      return this.baser[(offset - GITS_BASER) >> 2]!;
    }
    return 0;
  }

  /** A register write; GITS_TRANSLATER also takes the DeviceID the interconnect attaches to the write. */
  write(offset: number, value: number, deviceId = 0): void {
    const v = value >>> 0;
    switch (offset) {
      case GITS_CTLR:
        this.enabled = (v & GITS_CTLR_ENABLED) !== 0;
        if (this.enabled) this.processQueue();
        return;
      case GITS_CBASER: // a CBASER write resets CREADR; CBASER is writable only while the ITS is disabled
        if (this.enabled) return;
        this.cbaserLo = v;
        this.creadr = 0;
        return;
      case GITS_CBASER + 4:
        if (this.enabled) return;
        this.cbaserHi = v;
        this.creadr = 0;
        return;
      case GITS_CWRITER:
        this.cwriter = v & 0xfffe0;
        this.processQueue();
        return;
      case GITS_TRANSLATER:
        this.translate(deviceId, v);
        return;
    }
    if (offset >= GITS_BASER && offset < GITS_BASER + 8 * NR_BASERS && (offset & 3) === 0) {
      const i = (offset - GITS_BASER) >> 2;
      // Type and Entry_Size are read-only
      this.baser[i] = (i & 1) === 1 ? (v & ~(0x071f << 16)) | (this.baser[i]! & (0x071f << 16)) : v;
    }
  }

  // ---- translation ----

  /** A message (DeviceID, EventID) to GITS_TRANSLATER: true when it made an LPI pending. */
  translate(deviceId: number, eventId: number): boolean {
    touch(this.oid);
    const hit = this.enabled ? this.lookup(deviceId, eventId) : null;
    this.trace?.itsTranslate(
      deviceId,
      eventId,
      hit,
      hit === null || hit.vpeid >= 0 ? -1 : (this.collections.get(hit.icid) ?? -1),
    );
    if (hit === null) {
      this.droppedCount++;
      return false;
    }
    if (hit.vpeid >= 0) {
      if (this.virtual!.setPending(hit)) return true;
      this.droppedCount++;
      return false;
    }
    const pe = this.collections.get(hit.icid);
    if (pe === undefined) {
      this.droppedCount++;
      return false;
    }
    return this.lpis.setPending(pe, hit.lpi);
  }

  /** The LPI and target PE (DeviceID, EventID) maps to, or null (for observers; declares nothing). */
  mapping(deviceId: number, eventId: number): { lpi: number; pe: number } | null {
    const e = this.lookup(deviceId, eventId);
    const pe = e === null || e.vpeid >= 0 ? undefined : this.collections.get(e.icid);
    return e === null || pe === undefined ? null : { lpi: e.lpi, pe };
  }

  private lookup(deviceId: number, eventId: number): IttEntry | null {
    const dev = this.devices.get(deviceId);
    if (dev === undefined || eventId >= 2 ** dev.eventBits) return null;
    return dev.events.get(eventId) ?? null;
  }

  // ---- the command queue ----

  private get queueBase(): number {
    return (this.cbaserHi & 0xfffff) * 2 ** 32 + ((this.cbaserLo & 0xfffff000) >>> 0);
  }
  private get queueSize(): number {
    return ((this.cbaserLo & 0xff) + 1) * 4096;
  }

  /** Executes the commands between GITS_CREADR and GITS_CWRITER, when the ITS is enabled and the queue valid. */
  private processQueue(): void {
    if (!this.enabled || (this.cbaserHi & GITS_CBASER_VALID_HI) === 0) return;
    if (this.cwriter >= this.queueSize) {
      this.error(`GITS_CWRITER 0x${this.cwriter.toString(16)} beyond the ${this.queueSize}-byte queue`);
      return;
    }
    touch(this.oid);
    while (this.creadr !== this.cwriter) {
      const at = this.queueBase + this.creadr;
      for (let i = 0; i < 4; i++) this.memory.readU64(at + 8 * i, this.cmd, 2 * i);
      const errors = this.commandErrors;
      this.execute();
      this.trace?.itsCommand(this.cmd, this.commandErrors === errors);
      this.creadr = (this.creadr + ITS_CMD_SIZE) % this.queueSize;
    }
  }

  private execute(): void {
    const c = this.cmd;
    const deviceId = c[1]!;
    const eventId = c[2]!;
    const icid = c[4]! & 0xffff;
    switch (c[0]! & 0xff) {
      case ITS_CMD_MAPD:
        this.mapd(deviceId, (c[2]! & 0x1f) + 1, (c[5]! & 0xfffff) * 2 ** 32 + ((c[4]! & 0xffffff00) >>> 0), valid(c));
        break;
      case ITS_CMD_MAPC:
        this.mapc(icid, rdbase(c, 4), valid(c));
        break;
      case ITS_CMD_MAPTI:
        this.mapti(deviceId, eventId, c[3]!, icid, 'MAPTI');
        break;
      case ITS_CMD_MAPI:
        this.mapti(deviceId, eventId, eventId, icid, 'MAPI');
        break;
      case ITS_CMD_MOVI:
        this.movi(deviceId, eventId, icid);
        break;
      case ITS_CMD_DISCARD:
        this.discard(deviceId, eventId);
        break;
      case ITS_CMD_INT:
      case ITS_CMD_CLEAR:
      case ITS_CMD_INV:
        this.eventCommand(c[0]! & 0xff, deviceId, eventId);
        break;
      case ITS_CMD_INVALL:
        if (this.collections.has(icid)) this.lpis.invalidateAll();
        else this.error(`INVALL: collection ${icid} is not mapped`);
        break;
      case ITS_CMD_SYNC: // every earlier command has already taken effect
        if (rdbase(c, 4) >= this.lpis.nrPes) this.error(`SYNC: no redistributor ${rdbase(c, 4)}`);
        break;
      case ITS_CMD_MOVALL: {
        const from = rdbase(c, 4);
        const to = rdbase(c, 6);
        if (from < this.lpis.nrPes && to < this.lpis.nrPes) this.lpis.moveAll(from, to);
        else this.error(`MOVALL: no redistributor ${from} or ${to}`);
        break;
      }
      default:
        if (this.virtual?.execute(c, this) !== true) {
          this.error(`command 0x${(c[0]! & 0xff).toString(16)} is not an ITS command this ITS implements`);
        }
    }
  }

  private mapd(deviceId: number, eventBits: number, ittAddr: number, v: boolean): void {
    if (deviceId >= 2 ** this.deviceBits) {
      this.error(`MAPD: DeviceID ${deviceId} out of range`);
      return;
    }
    if (!v) {
      this.devices.delete(deviceId);
      return;
    }
    if (eventBits > this.eventBits) {
      this.error(`MAPD: ${eventBits} EventID bits exceed ${this.eventBits}`);
      return;
    }
    // a remap of a device that still has mapped events is UNPREDICTABLE: its old ITT is simply replaced here
    this.devices.set(deviceId, { ittAddr, eventBits, events: new Map() });
  }

  private mapc(icid: number, pe: number, v: boolean): void {
    if (!v) {
      this.collections.delete(icid);
      return;
    }
    if (pe >= this.lpis.nrPes) {
      this.error(`MAPC: no redistributor ${pe}`);
      return;
    }
    this.collections.set(icid, pe);
  }

  private mapti(deviceId: number, eventId: number, lpi: number, icid: number, what: string): void {
    const events = this.eventSlot(what, deviceId, eventId);
    if (events === null) return;
    if (!this.lpis.isLpi(lpi)) {
      this.error(`${what}: INTID ${lpi} is not an implemented LPI (from ${LPI_BASE})`);
      return;
    }
    events.set(eventId, { lpi, icid, vpeid: -1 });
  }

  eventSlot(what: string, deviceId: number, eventId: number): Map<number, IttEntry> | null {
    const dev = this.devices.get(deviceId);
    if (dev === undefined) {
      this.error(`${what}: DeviceID ${deviceId} is not mapped`);
      return null;
    }
    if (eventId >= 2 ** dev.eventBits) {
      this.error(`${what}: EventID ${eventId} out of the device's range`);
      return null;
    }
    return dev.events;
  }

  /** MOVI: retarget an event; an LPI pending at the old redistributor becomes pending at the new one (process_movi). */
  private movi(deviceId: number, eventId: number, icid: number): void {
    const to = this.collections.get(icid);
    const e = this.mappedEvent('MOVI', deviceId, eventId);
    if (e === null) return;
    if (e.vpeid >= 0) {
      this.error(`MOVI: (${deviceId}, ${eventId}) maps a vLPI (VMOVI moves it)`);
      return;
    }
    if (to === undefined) {
      this.error(`MOVI: collection ${icid} is not mapped`);
      return;
    }
    const from = this.collections.get(e.icid);
    e.icid = icid;
    if (from !== undefined && from !== to && this.lpis.isPending(from, e.lpi)) {
      this.lpis.clearPending(from, e.lpi);
      this.lpis.setPending(to, e.lpi);
    }
  }

  /** DISCARD: the event is unmapped and its LPI's pending state at the target cleared. */
  private discard(deviceId: number, eventId: number): void {
    const e = this.mappedEvent('DISCARD', deviceId, eventId);
    if (e === null) return;
    const pe = e.vpeid >= 0 ? undefined : this.collections.get(e.icid);
    if (e.vpeid >= 0) {
      if (this.virtual!.isPending(e)) this.discardedPending++;
      this.virtual!.clearPending(e);
    } else if (pe !== undefined) {
      if (this.lpis.isPending(pe, e.lpi)) this.discardedPending++;
      this.lpis.clearPending(pe, e.lpi);
    }
    this.devices.get(deviceId)!.events.delete(eventId);
  }

  /** INT (make pending as a translation would), CLEAR (clear pending), INV (re-read the LPI's configuration). */
  private eventCommand(cmd: number, deviceId: number, eventId: number): void {
    const what = cmd === ITS_CMD_INT ? 'INT' : cmd === ITS_CMD_CLEAR ? 'CLEAR' : 'INV';
    const e = this.mappedEvent(what, deviceId, eventId);
    if (e === null) return;
    if (e.vpeid >= 0) {
      const v = this.virtual!;
      if (cmd === ITS_CMD_INV) v.invalidate(e);
      else if (cmd === ITS_CMD_INT) v.setPending(e);
      else v.clearPending(e);
      return;
    }
    if (cmd === ITS_CMD_INV) {
      this.lpis.invalidate(e.lpi);
      return;
    }
    const pe = this.collections.get(e.icid);
    if (pe === undefined) this.error(`${what}: collection ${e.icid} is not mapped`);
    else if (cmd === ITS_CMD_INT) this.lpis.setPending(pe, e.lpi);
    else this.lpis.clearPending(pe, e.lpi);
  }

  /** The ITT entry of a mapped event, or null after recording the command error. */
  mappedEvent(what: string, deviceId: number, eventId: number): IttEntry | null {
    const e = this.devices.get(deviceId)?.events.get(eventId);
    if (e === undefined) this.error(`${what}: (${deviceId}, ${eventId}) is not mapped`);
    return e ?? null;
  }

  error(why: string): void {
    this.commandErrors++;
    this.lastError = why;
  }
}

/** DW2[63] V of MAPD and MAPC. */
const valid = (c: Uint32Array): boolean => (c[5]! & 0x80000000) !== 0;
/** RDbase[50:16] of the doubleword at word `w` (DW2 of MAPC, SYNC, MOVALL; DW3 of MOVALL): the PE number (PTA = 0). */
const rdbase = (c: Uint32Array, w: number): number => (c[w]! >>> 16) + (c[w + 1]! & 0x7ffff) * 0x10000;
