// GICD and GICR SGI_base MMIO decoders (ARM IHI 0069 §12.8 distributor register map, §12.11 SGI_base frame), as
// Linux's irq-gic-v3.c sees them with affinity routing and one Security state. The two frames share the layout of the
// IS*R/IC*R, IPRIORITYR and ICFGR families: the distributor's cover SPIs (its INTID 0-31 registers are RAZ/WI with
// ARE = 1), the redistributor's cover its PE's SGIs and PPIs. The distributor of a GICv3.1 with Extended SPIs also
// decodes the GICD_*RnE blocks and GICD_IROUTER<n>E (§12.9), which cover ESPIs 4096.. the same way; with no ESPIs
// (GICD_TYPER.ESPI = 0) they are RAZ/WI. Unlisted offsets are RAZ/WI.
import { ModelError } from '../../sim/errors.js';
import type { BitmapKind, Gicv3Distributor } from './distributor.js';
import {
  ESPI_BASE,
  GIC_PIDR2_ARCH_GICV3,
  GICD_CTLR,
  GICD_ICACTIVER,
  GICD_ICACTIVERnE,
  GICD_ICENABLER,
  GICD_ICENABLERnE,
  GICD_ICFGR,
  GICD_ICFGR_SGI_VALUE,
  GICD_ICFGRnE,
  GICD_ICPENDR,
  GICD_ICPENDRnE,
  GICD_IGROUPR,
  GICD_IGROUPRnE,
  GICD_IGRPMODR,
  GICD_IGRPMODRnE,
  GICD_IIDR,
  GICD_IIDR_GIC600,
  GICD_IPRIORITYR,
  GICD_IPRIORITYRnE,
  GICD_IROUTER,
  GICD_IROUTERnE,
  GICD_ISACTIVER,
  GICD_ISACTIVERnE,
  GICD_ISENABLER,
  GICD_ISENABLERnE,
  GICD_ISPENDR,
  GICD_ISPENDRnE,
  GICD_PIDR2,
  GICD_TYPER,
  MAX_ESPIS,
  SPI_BASE,
} from './regs.js';

/** The IS*R/IC*R bitmap families, same offsets in GICD and SGI_base: [base, kind, set]. */
const BITMAPS: readonly (readonly [number, BitmapKind, boolean])[] = [
  [GICD_ISENABLER, 'enable', true],
  [GICD_ICENABLER, 'enable', false],
  [GICD_ISPENDR, 'pend', true],
  [GICD_ICPENDR, 'pend', false],
  [GICD_ISACTIVER, 'active', true],
  [GICD_ICACTIVER, 'active', false],
];

/** The GICD_*RnE bitmap families (one register per 32 ESPIs): [base, kind, set]. */
const ESPI_BITMAPS: readonly (readonly [number, BitmapKind, boolean])[] = [
  [GICD_ISENABLERnE, 'enable', true],
  [GICD_ICENABLERnE, 'enable', false],
  [GICD_ISPENDRnE, 'pend', true],
  [GICD_ICPENDRnE, 'pend', false],
  [GICD_ISACTIVERnE, 'active', true],
  [GICD_ICACTIVERnE, 'active', false],
];

/** Which INTIDs a frame decodes: the distributor's SPIs, or one PE's private INTIDs 0-31. */
export interface Frame {
  name: string;
  /** -1 for the distributor, else the redistributor's PE. */
  pe: number;
}

const isPriority = (off: number): boolean => off >= GICD_IPRIORITYR && off < GICD_IPRIORITYR + 0x400;
const isEspiPriority = (off: number): boolean => off >= GICD_IPRIORITYRnE && off < GICD_IPRIORITYRnE + MAX_ESPIS;
const isEspiRouter = (off: number): boolean => off >= GICD_IROUTERnE && off < GICD_IROUTERnE + MAX_ESPIS * 8;

function checkAccess(f: Frame, off: number, size: number): void {
  if (size !== 1 && size !== 4) throw new ModelError(`${f.name} access size ${size} at 0x${off.toString(16)}`);
  if (size === 4 && (off & 3) !== 0) throw new ModelError(`unaligned ${f.name} word access at 0x${off.toString(16)}`);
  if (size === 1 && !isPriority(off) && !(f.pe < 0 && isEspiPriority(off)))
    throw new ModelError(`${f.name} 0x${off.toString(16)} is word-access only`);
}

/** Whether `intid` is decoded by frame f (distributor: SPIs; redistributor: 0-31). */
function inFrame(d: Gicv3Distributor, f: Frame, intid: number): boolean {
  return f.pe < 0 ? intid >= SPI_BASE && d.isValidIntid(intid) : intid < SPI_BASE;
}

function readConfig(d: Gicv3Distributor, f: Frame, n: number): number {
  if (n === 0) return f.pe < 0 ? 0 : GICD_ICFGR_SGI_VALUE;
  let v = 0;
  for (let k = 0; k < 16; k++) {
    const intid = n * 16 + k;
    if (inFrame(d, f, intid) && d.configOf(intid, f.pe) === 'edge') v |= 2 << (2 * k);
  }
  return v >>> 0;
}
function writeConfig(d: Gicv3Distributor, f: Frame, n: number, v: number): void {
  if (n === 0) return; // SGIs: RO edge (GICR_ICFGR0); GICD_ICFGR0: RAZ/WI with ARE
  for (let k = 0; k < 16; k++) {
    const intid = n * 16 + k;
    if (inFrame(d, f, intid)) d.setConfig(intid, ((v >>> (2 * k + 1)) & 1) !== 0 ? 'edge' : 'level', f.pe);
  }
}

/** The families both frames share; undefined when `off` is none of them. */
function readShared(d: Gicv3Distributor, f: Frame, off: number, size: 1 | 4): number | undefined {
  if (isPriority(off)) {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const intid = off - GICD_IPRIORITYR + i;
      if (inFrame(d, f, intid)) v |= d.priorityOf(intid, f.pe) << (8 * i);
    }
    return v >>> 0;
  }
  const n = (off & 0x7f) >> 2;
  // IGROUPR: every implemented INTID is Group 1 (RAO/WI); IGRPMODR: RAZ/WI (no Secure Group 1).
  if (off >= GICD_IGROUPR && off < GICD_ISENABLER) {
    let v = 0;
    for (let b = 0; b < 32; b++) if (inFrame(d, f, n * 32 + b)) v |= 1 << b;
    return v >>> 0;
  }
  for (const [base, kind] of BITMAPS) {
    if (off >= base && off < base + 0x80) return inFrame(d, f, n * 32) ? d.readBitmap(kind, n, f.pe) : 0;
  }
  if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) return readConfig(d, f, (off - GICD_ICFGR) >> 2);
  if (off >= GICD_IGRPMODR && off < GICD_IGRPMODR + 0x80) return 0;
  return undefined;
}

function writeShared(d: Gicv3Distributor, f: Frame, off: number, v: number, size: 1 | 4): boolean {
  if (isPriority(off)) {
    for (let i = 0; i < size; i++) {
      const intid = off - GICD_IPRIORITYR + i;
      if (inFrame(d, f, intid)) d.setPriority(intid, (v >>> (8 * i)) & 0xff, f.pe);
    }
    return true;
  }
  const n = (off & 0x7f) >> 2;
  for (const [base, kind, set] of BITMAPS) {
    if (off >= base && off < base + 0x80) {
      if (v !== 0 && inFrame(d, f, n * 32)) d.writeBitmap(kind, n, f.pe, v, set);
      return true;
    }
  }
  if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) {
    writeConfig(d, f, (off - GICD_ICFGR) >> 2, v);
    return true;
  }
  return false;
}

/** The distributor's Extended SPI registers; undefined when `off` is none of them. */
function readEspi(d: Gicv3Distributor, off: number, size: 1 | 4): number | undefined {
  if (isEspiPriority(off)) {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const intid = ESPI_BASE + off - GICD_IPRIORITYRnE + i;
      if (d.isEspi(intid)) v |= d.priorityOf(intid) << (8 * i);
    }
    return v >>> 0;
  }
  const n = (off & 0x7f) >> 2;
  // IGROUPR<n>E: every implemented ESPI is Group 1 (RAO/WI); IGRPMODR<n>E: RAZ/WI, as for the SPIs
  if (off >= GICD_IGROUPRnE && off < GICD_IGROUPRnE + 0x80) return d.isEspi(ESPI_BASE + n * 32) ? 0xffffffff : 0;
  if (off >= GICD_IGRPMODRnE && off < GICD_IGRPMODRnE + 0x80) return 0;
  for (const [base, kind] of ESPI_BITMAPS) {
    if (off >= base && off < base + 0x80) return d.readBitmap(kind, n, -1, true);
  }
  if (off >= GICD_ICFGRnE && off < GICD_ICFGRnE + 0x100) {
    const first = ESPI_BASE + ((off - GICD_ICFGRnE) >> 2) * 16;
    let v = 0;
    for (let k = 0; k < 16; k++) if (d.isEspi(first + k) && d.configOf(first + k) === 'edge') v |= 2 << (2 * k);
    return v >>> 0;
  }
  if (isEspiRouter(off)) {
    const intid = ESPI_BASE + ((off - GICD_IROUTERnE) >> 3);
    if (!d.isEspi(intid)) return 0;
    return (off & 4) === 0 ? d.irouterLow(intid) : d.irouterHigh(intid);
  }
  return undefined;
}

function writeEspi(d: Gicv3Distributor, off: number, v: number, size: 1 | 4): boolean {
  if (isEspiPriority(off)) {
    for (let i = 0; i < size; i++) {
      const intid = ESPI_BASE + off - GICD_IPRIORITYRnE + i;
      if (d.isEspi(intid)) d.setPriority(intid, (v >>> (8 * i)) & 0xff);
    }
    return true;
  }
  const n = (off & 0x7f) >> 2;
  for (const [base, kind, set] of ESPI_BITMAPS) {
    if (off >= base && off < base + 0x80) {
      if (v !== 0) d.writeBitmap(kind, n, -1, v, set, true);
      return true;
    }
  }
  if (off >= GICD_ICFGRnE && off < GICD_ICFGRnE + 0x100) {
    const first = ESPI_BASE + ((off - GICD_ICFGRnE) >> 2) * 16;
    for (let k = 0; k < 16; k++) {
      if (d.isEspi(first + k)) d.setConfig(first + k, ((v >>> (2 * k + 1)) & 1) !== 0 ? 'edge' : 'level');
    }
    return true;
  }
  if (isEspiRouter(off)) {
    const intid = ESPI_BASE + ((off - GICD_IROUTERnE) >> 3);
    if (!d.isEspi(intid)) return true;
    if ((off & 4) === 0) d.writeIrouter(intid, v, d.irouterHigh(intid));
    else d.writeIrouter(intid, d.irouterLow(intid), v);
    return true;
  }
  return false;
}

const DIST: Frame = { name: 'GICD', pe: -1 };

export function gicdRead(d: Gicv3Distributor, off: number, size: 1 | 4): number {
  checkAccess(DIST, off, size);
  const shared = readShared(d, DIST, off, size) ?? readEspi(d, off, size);
  if (shared !== undefined) return shared;
  if (off === GICD_CTLR) return d.ctlrValue;
  if (off === GICD_TYPER) return d.typer;
  if (off === GICD_IIDR) return GICD_IIDR_GIC600;
  if (off === GICD_PIDR2) return GIC_PIDR2_ARCH_GICV3;
  // GICD_IROUTER<n>: 64-bit, accessed as two words (§12.1.3: 64-bit registers allow 32-bit halves).
  if (off >= GICD_IROUTER + SPI_BASE * 8 && off < GICD_IROUTER + 1020 * 8) {
    const intid = (off - GICD_IROUTER) >> 3;
    if (!d.isValidIntid(intid)) return 0;
    return (off & 4) === 0 ? d.irouterLow(intid) : d.irouterHigh(intid);
  }
  return 0;
}

export function gicdWrite(d: Gicv3Distributor, off: number, v: number, size: 1 | 4): void {
  checkAccess(DIST, off, size);
  if (writeShared(d, DIST, off, v, size) || writeEspi(d, off, v, size)) return;
  if (off === GICD_CTLR) d.setCtlr(v);
  else if (off >= GICD_IROUTER + SPI_BASE * 8 && off < GICD_IROUTER + 1020 * 8) {
    const intid = (off - GICD_IROUTER) >> 3;
    if (!d.isValidIntid(intid)) return;
    if ((off & 4) === 0) d.writeIrouter(intid, v, d.irouterHigh(intid));
    else d.writeIrouter(intid, d.irouterLow(intid), v);
  }
}

/** A redistributor's SGI_base frame (offset relative to SGI_base); f.pe is its PE. */
export function gicrSgiRead(d: Gicv3Distributor, f: Frame, off: number, size: 1 | 4): number {
  checkAccess(f, off, size);
  return readShared(d, f, off, size) ?? 0;
}
export function gicrSgiWrite(d: Gicv3Distributor, f: Frame, off: number, v: number, size: 1 | 4): void {
  checkAccess(f, off, size);
  writeShared(d, f, off, v, size);
}
