// The GICv4.1 commands of the ITS (ARM IHI 0069 §5.3 "ITS commands": VMAPP, VMAPTI, VMAPI, VMOVI, VMOVP, VSYNC,
// VINVALL, INVDB): they map vPEs to redistributors and (DeviceID, EventID) pairs to a vINTID of a vPE, which the
// ITS then translates into a vLPI for that vPE (redistributorVpe.ts) instead of a physical LPI. Field positions are
// those Linux's its_build_v*_cmd encoders write (irq-gic-v3-its.c its_encode_vpeid, its_encode_vconf_addr, …);
// the checks and the moves follow QEMU's hw/intc/arm_gicv3_its.c (process_vmapp, process_vmapti, process_vmovi,
// process_vmovp, process_vinvall). As for the physical commands, an erroneous command is ignored and counted.
//
// GICv4.1 specifics: VMAPP carries the VCONF address and the vPE's default doorbell; the per-event doorbell of VMAPTI
// and VMOVI (GICv4.0) is ignored — Linux writes 1023 there on a 4.1 ITS (its_build_vmapti_cmd) — and a vPE's doorbell
// is its default one. VMOVP's ITSList and sequence number matter only with several ITSs; this GIC has one.
import { type Gicv3Lpis, LPI_BASE } from './lpi.js';
import type { Gicv3Vlpis } from './redistributorVpe.js';
import { SPURIOUS_INTID } from './regs.js';

export const ITS_CMD_VMOVI = 0x21;
export const ITS_CMD_VMOVP = 0x22;
export const ITS_CMD_VSYNC = 0x25;
export const ITS_CMD_VMAPP = 0x29;
export const ITS_CMD_VMAPTI = 0x2a;
export const ITS_CMD_VMAPI = 0x2b;
export const ITS_CMD_VINVALL = 0x2d;
export const ITS_CMD_INVDB = 0x2e;

/** An ITT entry: a physical LPI and collection (vpeid -1), or a vINTID (in `lpi`) of vPE `vpeid`. */
export interface IttEntry {
  lpi: number;
  icid: number;
  vpeid: number;
}

/** What the virtual commands use of the ITS: its event lookup and its error count. */
export interface ItsEvents {
  /** Checks (DeviceID, EventID) for a mapping command: the device is mapped and EventID within its ITT. */
  eventSlot(what: string, deviceId: number, eventId: number): Map<number, IttEntry> | null;
  /** The ITT entry of a mapped event, or null after recording the error. */
  mappedEvent(what: string, deviceId: number, eventId: number): IttEntry | null;
  error(why: string): void;
}

/** DW0[51:16] / DW3[51:16] style addresses (64 KiB aligned) in the words w, w + 1. */
const addr16 = (c: Uint32Array, w: number): number => ((c[w]! >>> 16) + (c[w + 1]! & 0xfffff) * 0x10000) * 0x10000;
/** RDbase[51:16] of DW2 (words 4, 5): the PE number (GITS_TYPER.PTA = 0). */
const rdbase = (c: Uint32Array): number => (c[4]! >>> 16) + (c[5]! & 0x7ffff) * 0x10000;
/** vPEID in DW1[47:32]. */
const vpeidOf = (c: Uint32Array): number => c[3]! & 0xffff;

export class Gicv3ItsVirtual {
  private readonly vlpis: Gicv3Vlpis;
  private readonly lpis: Gicv3Lpis;

  constructor(vlpis: Gicv3Vlpis, lpis: Gicv3Lpis) {
    this.vlpis = vlpis;
    this.lpis = lpis;
  }

  /** Executes a virtual command held in c (8 words); false when c is not one. */
  execute(c: Uint32Array, its: ItsEvents): boolean {
    switch (c[0]! & 0xff) {
      case ITS_CMD_VMAPP:
        this.vmapp(c, its);
        return true;
      case ITS_CMD_VMAPTI:
        this.vmapti(its, c[1]!, c[2]!, vpeidOf(c), c[4]!, 'VMAPTI');
        return true;
      case ITS_CMD_VMAPI:
        this.vmapti(its, c[1]!, c[2]!, vpeidOf(c), c[2]!, 'VMAPI');
        return true;
      case ITS_CMD_VMOVI:
        this.vmovi(its, c[1]!, c[2]!, vpeidOf(c));
        return true;
      case ITS_CMD_VMOVP:
        this.vmovp(c, its);
        return true;
      case ITS_CMD_VSYNC: // every earlier command has already taken effect
        this.mappedVpe('VSYNC', vpeidOf(c), its);
        return true;
      case ITS_CMD_VINVALL: {
        const e = this.mappedVpe('VINVALL', vpeidOf(c), its);
        if (e !== null) {
          this.vlpis.table.reloadConfig(e);
          this.vlpis.configChanged(vpeidOf(c));
        }
        return true;
      }
      case ITS_CMD_INVDB: {
        // its_vpe_4_1_send_inv: the doorbell's configuration byte changed (masked or unmasked)
        const e = this.mappedVpe('INVDB', vpeidOf(c), its);
        if (e !== null && e.doorbell !== SPURIOUS_INTID) this.lpis.invalidate(e.doorbell);
        return true;
      }
    }
    return false;
  }

  /** A translated or INT vLPI for an ITT entry of a vPE. */
  setPending(e: IttEntry): boolean {
    return this.vlpis.setPending(e.vpeid, e.lpi);
  }
  isPending(e: IttEntry): boolean {
    return this.vlpis.isPending(e.vpeid, e.lpi);
  }
  /** DISCARD and CLEAR of a virtual event: its vLPI's pending state is cleared (QEMU process_its_cmd, virtual ITE). */
  clearPending(e: IttEntry): void {
    this.vlpis.clearPending(e.vpeid, e.lpi);
  }
  /** INV of a virtual event: its VCONF byte is re-read (QEMU process_inv → gicv3_redist_inv_vlpi). */
  invalidate(e: IttEntry): void {
    const vpe = this.vlpis.table.get(e.vpeid);
    if (vpe === null) return;
    this.vlpis.table.reloadOne(vpe, e.lpi);
    this.vlpis.configChanged(e.vpeid);
  }

  /** VMAPP: V=1 maps vPEID to a redistributor with its VPT, VCONF and default doorbell; V=0 unmaps it. */
  private vmapp(c: Uint32Array, its: ItsEvents): void {
    const vpeid = vpeidOf(c);
    const table = this.vlpis.table;
    if (vpeid >= table.nrVpes) {
      its.error(`VMAPP: vPEID ${vpeid} out of range`);
      return;
    }
    if (this.vlpis.isResident(vpeid)) {
      its.error(`VMAPP: vPE ${vpeid} is resident`); // UNPREDICTABLE: ignored
      return;
    }
    if ((c[5]! & 0x80000000) === 0) {
      table.unmap(vpeid);
      return;
    }
    const rd = rdbase(c);
    const doorbell = c[2]!;
    if (rd >= this.lpis.nrPes) {
      its.error(`VMAPP: no redistributor ${rd}`);
      return;
    }
    if (doorbell !== SPURIOUS_INTID && !this.lpis.isLpi(doorbell)) {
      its.error(`VMAPP: default doorbell ${doorbell} is not an LPI`);
      return;
    }
    table.map(vpeid, rd, addr16(c, 6), (c[6]! & 0x1f) + 1, addr16(c, 0), doorbell);
  }

  private vmapti(its: ItsEvents, deviceId: number, eventId: number, vpeid: number, vintid: number, what: string): void {
    const events = its.eventSlot(what, deviceId, eventId);
    if (events === null) return;
    if (vpeid >= this.vlpis.table.nrVpes) {
      its.error(`${what}: vPEID ${vpeid} out of range`);
      return;
    }
    if (!this.lpis.isLpi(vintid)) {
      its.error(`${what}: vINTID ${vintid} is not an implemented vLPI`);
      return;
    }
    events.set(eventId, { lpi: vintid, icid: 0, vpeid });
    // the new mapping's configuration byte is loaded with it: its_vlpi_map writes the VCONF byte and sends no INV
    const vpe = this.vlpis.table.get(vpeid);
    if (vpe !== null && this.vlpis.table.inRange(vpe, vintid)) {
      this.vlpis.table.reloadOne(vpe, vintid);
      this.vlpis.configChanged(vpeid);
    }
  }

  /** VMOVI: the event goes to another vPE; a vLPI pending for the old vPE becomes pending for the new one. */
  private vmovi(its: ItsEvents, deviceId: number, eventId: number, vpeid: number): void {
    const e = its.mappedEvent('VMOVI', deviceId, eventId);
    if (e === null) return;
    if (e.vpeid < 0) {
      its.error(`VMOVI: (${deviceId}, ${eventId}) is a physical mapping`);
      return;
    }
    if (this.vlpis.table.get(vpeid) === null) {
      its.error(`VMOVI: vPE ${vpeid} is not mapped`);
      return;
    }
    const from = e.vpeid;
    e.vpeid = vpeid;
    if (from === vpeid) return;
    // The VCONF is the VM's, shared by its vPEs (VMAPP gives each the same one, as Linux's its_vm has one vprop_page);
    // the model caches it per vPE, so the vINTID's loaded byte moves with the event (Linux sends no INV after VMOVI).
    const src = this.vlpis.table.get(from);
    const dst = this.vlpis.table.get(vpeid)!;
    if (src !== null && this.vlpis.table.inRange(dst, e.lpi)) {
      dst.config[e.lpi - LPI_BASE] = src.config[e.lpi - LPI_BASE]!;
      this.vlpis.configChanged(vpeid);
    }
    if (this.vlpis.isPending(from, e.lpi)) {
      this.vlpis.clearPending(from, e.lpi);
      this.vlpis.setPending(vpeid, e.lpi);
    }
  }

  /** VMOVP: the vPE now belongs to another redistributor (4.1: with DB, a new default doorbell). */
  private vmovp(c: Uint32Array, its: ItsEvents): void {
    const vpeid = vpeidOf(c);
    const e = this.mappedVpe('VMOVP', vpeid, its);
    if (e === null) return;
    const rd = rdbase(c);
    if (rd >= this.lpis.nrPes) {
      its.error(`VMOVP: no redistributor ${rd}`);
      return;
    }
    if (this.vlpis.isResident(vpeid)) {
      its.error(`VMOVP: vPE ${vpeid} is resident`); // UNPREDICTABLE: ignored
      return;
    }
    const db = (c[5]! & 0x80000000) !== 0 ? c[6]! : e.doorbell;
    if (db !== SPURIOUS_INTID && !this.lpis.isLpi(db)) {
      its.error(`VMOVP: default doorbell ${db} is not an LPI`);
      return;
    }
    e.rd = rd;
    e.doorbell = db;
  }

  private mappedVpe(what: string, vpeid: number, its: ItsEvents) {
    const e = this.vlpis.table.get(vpeid);
    if (e === null) its.error(`${what}: vPE ${vpeid} is not mapped`);
    return e;
  }
}
