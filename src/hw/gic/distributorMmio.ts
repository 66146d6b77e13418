// GICD MMIO decoder (ARM IHI 0048B §4.1 register map, §4.3 register descriptions), Non-secure view as Linux
// sees it on a single-security-state GIC. Unlisted offsets are RAZ/WI.
import { ModelError } from '../../sim/errors.js';
import type { BitmapKind, GicDistributor } from './distributor.js';
import {
  GIC_DIST_ACTIVE_CLEAR,
  GIC_DIST_ACTIVE_SET,
  GIC_DIST_CONFIG,
  GIC_DIST_CTR,
  GIC_DIST_CTRL,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_IGROUP,
  GIC_DIST_IIDR,
  GIC_DIST_PENDING_CLEAR,
  GIC_DIST_PENDING_SET,
  GIC_DIST_PRI,
  GIC_DIST_SGI_PENDING_CLEAR,
  GIC_DIST_SGI_PENDING_SET,
  GIC_DIST_SOFTINT,
  GIC_DIST_TARGET,
  GICD_ICFGR_SGI_VALUE,
  GICD_IIDR_GIC400,
  GICD_SGIR_CPU_TARGET_LIST_SHIFT,
  GICD_SGIR_SGIINTID_MASK,
  GICD_SGIR_TARGET_LIST_FILTER_SHIFT,
  SPI_BASE,
} from './regs.js';

/** Registers that are byte-accessible (IHI 0048B §4.1): IPRIORITYR, ITARGETSR, CPENDSGIR, SPENDSGIR. */
const isByteRegister = (off: number): boolean =>
  (off >= GIC_DIST_PRI && off < GIC_DIST_CONFIG) || (off >= GIC_DIST_SGI_PENDING_CLEAR && off < 0xf30);

/** The IS*R/IC*R bitmap families: [base, kind, set]. */
const BITMAPS: readonly (readonly [number, BitmapKind, boolean])[] = [
  [GIC_DIST_ENABLE_SET, 'enable', true],
  [GIC_DIST_ENABLE_CLEAR, 'enable', false],
  [GIC_DIST_PENDING_SET, 'pend', true],
  [GIC_DIST_PENDING_CLEAR, 'pend', false],
  [GIC_DIST_ACTIVE_SET, 'active', true],
  [GIC_DIST_ACTIVE_CLEAR, 'active', false],
];

function checkAccess(off: number, size: number): void {
  if (size !== 1 && size !== 4) throw new ModelError(`GICD access size ${size} at 0x${off.toString(16)}`);
  if (size === 4 && (off & 3) !== 0) throw new ModelError(`unaligned GICD word access at 0x${off.toString(16)}`);
  if (size === 1 && !isByteRegister(off)) throw new ModelError(`GICD 0x${off.toString(16)} is word-access only`);
}

function readByte(d: GicDistributor, off: number, cpu: number): number {
  if (off >= GIC_DIST_SGI_PENDING_CLEAR) return d.sgiSourcesOf(cpu, (off - GIC_DIST_SGI_PENDING_CLEAR) & 15);
  if (off >= GIC_DIST_TARGET) {
    const intid = off - GIC_DIST_TARGET;
    // §4.3.12: uniprocessor GICD_ITARGETSRn are RAZ/WI; ITARGETSR0-7 read the accessing CPU's own bit.
    return d.nrCpus > 1 && d.isValidIntid(intid) ? d.targetsOf(intid, cpu) : 0;
  }
  const intid = off - GIC_DIST_PRI;
  return d.isValidIntid(intid) ? d.priorityOf(intid, cpu) : 0;
}

function writeByte(d: GicDistributor, off: number, v: number, cpu: number): void {
  if (off >= GIC_DIST_SGI_PENDING_SET) {
    d.writeSgiSources(cpu, off - GIC_DIST_SGI_PENDING_SET, v, true);
  } else if (off >= GIC_DIST_SGI_PENDING_CLEAR) {
    d.writeSgiSources(cpu, off - GIC_DIST_SGI_PENDING_CLEAR, v, false);
  } else if (off >= GIC_DIST_TARGET) {
    const intid = off - GIC_DIST_TARGET;
    if (intid >= SPI_BASE && d.isValidIntid(intid)) d.setTargets(intid, v); // ITARGETSR0-7 are read-only
  } else {
    const intid = off - GIC_DIST_PRI;
    if (d.isValidIntid(intid)) d.setPriority(intid, v, cpu);
  }
}

/** GICD_ICFGRn: 16 INTIDs per register, bit 2F+1 = edge. ICFGR0 (SGIs) reads 0xAAAAAAAA and ignores writes. */
function readConfig(d: GicDistributor, n: number, cpu: number): number {
  if (n === 0) return GICD_ICFGR_SGI_VALUE;
  let v = 0;
  for (let k = 0; k < 16; k++) {
    const intid = n * 16 + k;
    if (d.isValidIntid(intid) && d.configOf(intid, cpu) === 'edge') v |= 2 << (2 * k);
  }
  return v >>> 0;
}

function writeConfig(d: GicDistributor, n: number, v: number, cpu: number): void {
  if (n === 0) return;
  for (let k = 0; k < 16; k++) {
    const intid = n * 16 + k;
    if (d.isValidIntid(intid)) d.setConfig(intid, ((v >>> (2 * k + 1)) & 1) !== 0 ? 'edge' : 'level', cpu);
  }
}

export function gicdRead(d: GicDistributor, off: number, cpu: number, size: 1 | 4): number {
  checkAccess(off, size);
  if (isByteRegister(off)) {
    if (size === 1) return readByte(d, off, cpu);
    let v = 0;
    for (let i = 0; i < 4; i++) v |= readByte(d, off + i, cpu) << (8 * i);
    return v >>> 0;
  }
  if (off === GIC_DIST_CTRL) return d.ctlrValue;
  if (off === GIC_DIST_CTR) return d.typer;
  if (off === GIC_DIST_IIDR) return GICD_IIDR_GIC400;
  if (off >= GIC_DIST_IGROUP && off < GIC_DIST_ENABLE_SET) return 0; // Non-secure view: RAZ/WI
  for (const [base, kind] of BITMAPS) {
    if (off >= base && off < base + 0x80) return d.readBitmap(kind, (off - base) >> 2, cpu);
  }
  if (off >= GIC_DIST_CONFIG && off < GIC_DIST_CONFIG + 0x100) return readConfig(d, (off - GIC_DIST_CONFIG) >> 2, cpu);
  return 0; // includes GICD_SGIR (write-only)
}

export function gicdWrite(d: GicDistributor, off: number, v: number, cpu: number, size: 1 | 4): void {
  checkAccess(off, size);
  if (isByteRegister(off)) {
    if (size === 1) writeByte(d, off, v & 0xff, cpu);
    else for (let i = 0; i < 4; i++) writeByte(d, off + i, (v >>> (8 * i)) & 0xff, cpu);
    return;
  }
  if (off === GIC_DIST_CTRL) {
    d.setCtlr(v);
    return;
  }
  for (const [base, kind, set] of BITMAPS) {
    if (off >= base && off < base + 0x80) {
      if (v !== 0) d.writeBitmap(kind, (off - base) >> 2, cpu, v, set); // writing 0 has no effect
      return;
    }
  }
  if (off >= GIC_DIST_CONFIG && off < GIC_DIST_CONFIG + 0x100) {
    writeConfig(d, (off - GIC_DIST_CONFIG) >> 2, v, cpu);
  } else if (off === GIC_DIST_SOFTINT) {
    const filter = (v >>> GICD_SGIR_TARGET_LIST_FILTER_SHIFT) & 3;
    const list = (v >>> GICD_SGIR_CPU_TARGET_LIST_SHIFT) & 0xff;
    d.sendSgi(cpu, v & GICD_SGIR_SGIINTID_MASK, filter, list);
  }
}
