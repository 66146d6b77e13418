/**
 * The emulated ITS's register frame (arch/arm64/kvm/vgic/vgic-its.c, Linux 6.1: its_registers and the
 * vgic_mmio_{read,write}_its_* handlers, the uaccess writers of GITS_IIDR and GITS_CREADR, vgic_its_commit_v0).
 * The frame is KVM_VGIC_V3_ITS_SIZE (128 KiB) of the MMIO bus, but only the control frame has registers: KVM does not
 * emulate GITS_TRANSLATER (a guest's write there hits no region and is ignored; MSIs reach the ITS through
 * KVM_SIGNAL_MSI or an MSI route). 64-bit registers take 32- or 64-bit accesses; GITS_CTLR, IIDR and the ID
 * registers 32-bit ones only. Values are bigints (a guest access passes its 32-bit halves).
 */
import { ERRNO } from '../../abi/errno.js';
import {
  GITS_BASER,
  GITS_CBASER,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CTLR_QUIESCENT,
  GITS_CWRITER,
  GITS_IIDR,
  GITS_TYPER,
} from '../../hw/gicv3/its.js';
import { touch } from '../../sim/footprint.js';
import {
  type VgicIts,
  VITS_TYPER_DEVBITS,
  VITS_TYPER_IDBITS,
  vgicItsFreeAll,
  vgicItsFreeCollection,
  vgicItsFreeDevice,
} from './vgicIts.js';
import {
  GITS_BASER_ENTRY_SIZE_SHIFT,
  GITS_BASER_INDIRECT,
  GITS_BASER_TYPE_COLLECTION,
  GITS_BASER_TYPE_DEVICE,
  GITS_BASER_TYPE_SHIFT,
  GITS_BASER_VALID,
  itsCmdBufferSize,
  vgicItsProcessCommands,
} from './vgicItsCommands.js';
import { vgicItsInvalidateCache } from './vgicLpi.js';
import { IMPLEMENTER_ARM, PRODUCT_ID_KVM } from './vgicMmioV2.js';
import { extractBytes, update64bitReg, vgicSanitiseItsBaser, vgicSanitiseItsCbaser } from './vgicSanitise.js';

/** The ITS table ABI revisions (its_table_abi_versions): only rev 0, with 8-byte DTEs, CTEs and ITEs. */
export const NR_ITS_ABIS = 1;
export const ABI_0_ESZ = 8;
const GITS_IIDR_REV_SHIFT = 12;
const GITS_IIDR_PRODUCTID_SHIFT = 24;
/** GITS_TYPER: PLPIS[0], ITT_entry_size[7:4], IDbits[12:8], Devbits[17:13]. */
const GITS_TYPER_PLPIS = 1n;
const GITS_CBASER_VALID = 1n << 63n;
/** GITS_BASER's read-only fields: Entry_Size[52:48] and Type[58:56]. */
const GITS_BASER_RO_MASK = (0x1fn << 48n) | (7n << 56n);
const GITS_BASER_ENTRY_SIZE_MASK = 0x1fn << 48n;
const GITS_IDREGS_BASE = 0xffd0;
const GITS_PIDR4 = 0xffd0;
/** ITS_CMD_OFFSET: a queue offset is 32-byte aligned, below 1 MiB. */
const ITS_CMD_OFFSET_MASK = 0xf_ffe0;
const ACCESS_32 = 1;
const ACCESS_64 = 2;

/** vgic-its.c INITIAL_BASER_VALUE: inner RaWb, outer SameAsInner, Inner Shareable, 64 KiB pages. */
export const INITIAL_BASER_VALUE = (3n << 59n) | (1n << 10n) | (2n << 8n);
/** vgic-its.c INITIAL_PROPBASER_VALUE: inner RaWb, outer SameAsInner, Inner Shareable. */
export const INITIAL_PROPBASER_VALUE = (3n << 7n) | (1n << 10n);

type Reg = 'ctlr' | 'iidr' | 'typer' | 'cbaser' | 'cwriter' | 'creadr' | 'baser' | 'idregs';

interface ItsRegion {
  readonly offset: number;
  readonly len: number;
  readonly access: number;
  readonly reg: Reg;
}

/** its_registers. */
const ITS_REGISTERS: readonly ItsRegion[] = [
  { offset: GITS_CTLR, len: 4, access: ACCESS_32, reg: 'ctlr' },
  { offset: GITS_IIDR, len: 4, access: ACCESS_32, reg: 'iidr' },
  { offset: GITS_TYPER, len: 8, access: ACCESS_64 | ACCESS_32, reg: 'typer' },
  { offset: GITS_CBASER, len: 8, access: ACCESS_64 | ACCESS_32, reg: 'cbaser' },
  { offset: GITS_CWRITER, len: 8, access: ACCESS_64 | ACCESS_32, reg: 'cwriter' },
  { offset: GITS_CREADR, len: 8, access: ACCESS_64 | ACCESS_32, reg: 'creadr' },
  { offset: GITS_BASER, len: 0x40, access: ACCESS_64 | ACCESS_32, reg: 'baser' },
  { offset: GITS_IDREGS_BASE, len: 0x30, access: ACCESS_32, reg: 'idregs' },
];

/** vgic_find_mmio_region: the region holding `offset`, or null. */
export function vgicItsFindRegion(offset: number): ItsRegion | null {
  for (const r of ITS_REGISTERS) if (offset >= r.offset && offset < r.offset + r.len) return r;
  return null;
}

/** The region a guest access of `len` bytes at `offset` may use (check_region: width allowed, naturally aligned), or null. */
export function vgicItsGuestRegion(offset: number, len: number): ItsRegion | null {
  const r = vgicItsFindRegion(offset);
  if (r === null || offset % len !== 0) return null;
  if (len === 4 && (r.access & ACCESS_32) !== 0) return r;
  if (len === 8 && (r.access & ACCESS_64) !== 0) return r;
  return null;
}

/** vgic_mmio_read_its_typer. */
function itsTyper(): bigint {
  return (
    GITS_TYPER_PLPIS |
    (BigInt(VITS_TYPER_DEVBITS - 1) << 13n) |
    (BigInt(VITS_TYPER_IDBITS - 1) << 8n) |
    (BigInt(ABI_0_ESZ - 1) << 4n)
  );
}

/** vgic_mmio_read_its_idregs: the GIC-600-like part number 0x492 and the CoreSight component IDs. */
function itsIdreg(offset: number): bigint {
  switch (offset & 0xffff) {
    case 0xffe0: // PIDR0
      return 0x92n;
    case 0xffe4: // PIDR1
      return 0xb4n;
    case 0xffe8: // PIDR2: GIC_PIDR2_ARCH_GICv3 | 0x0b
      return 0x3bn;
    case GITS_PIDR4:
      return 0x40n; // a 64 KiB software-visible page
    case 0xfff0:
      return 0x0dn;
    case 0xfff4:
      return 0xf0n;
    case 0xfff8:
      return 0x05n;
    case 0xfffc:
      return 0xb1n;
    default:
      return 0n;
  }
}

/** A read of `len` bytes at `offset` of the frame's region `r` (its_read). */
export function vgicItsRegRead(its: VgicIts, r: ItsRegion, offset: number, len: number): bigint {
  switch (r.reg) {
    case 'ctlr':
      return (
        BigInt((its.creadr === its.cwriter ? GITS_CTLR_QUIESCENT : 0) | (its.enabled ? GITS_CTLR_ENABLED : 0)) &
        0xffff_ffffn
      );
    case 'iidr':
      return BigInt(
        ((its.abiRev << GITS_IIDR_REV_SHIFT) | (PRODUCT_ID_KVM << GITS_IIDR_PRODUCTID_SHIFT) | IMPLEMENTER_ARM) >>> 0,
      );
    case 'typer':
      return extractBytes(itsTyper(), offset & 7, len);
    case 'cbaser':
      return extractBytes(its.cbaser, offset & 7, len);
    case 'cwriter':
      return extractBytes(BigInt(its.cwriter), offset & 7, len);
    case 'creadr':
      return extractBytes(BigInt(its.creadr), offset & 7, len);
    case 'baser': {
      const idx = ((offset - GITS_BASER) >> 3) & 7;
      const reg = idx === 0 ? its.baserDeviceTable : idx === 1 ? its.baserCollTable : 0n;
      return extractBytes(reg, offset & 7, len);
    }
    default:
      return itsIdreg(offset);
  }
}

/** vgic_mmio_write_its_ctlr: enabling needs valid CBASER and tables; disabling drops the cache; then the queue runs. */
function writeCtlr(its: VgicIts, val: bigint): void {
  const enable = (val & BigInt(GITS_CTLR_ENABLED)) !== 0n;
  const valid =
    (its.baserDeviceTable & GITS_BASER_VALID) !== 0n &&
    (its.baserCollTable & GITS_BASER_VALID) !== 0n &&
    (its.cbaser & GITS_CBASER_VALID) !== 0n;
  if (!its.enabled && enable && !valid) return; // UNPREDICTABLE: KVM ignores it
  its.enabled = enable;
  if (!its.enabled) vgicItsInvalidateCache(its.vgic);
  vgicItsProcessCommands(its);
}

/** vgic_mmio_write_its_cbaser: read-only while enabled; the queue restarts empty (CREADR = CWRITER = 0). */
function writeCbaser(its: VgicIts, offset: number, len: number, val: bigint): void {
  if (its.enabled) return;
  its.cbaser = vgicSanitiseItsCbaser(update64bitReg(its.cbaser, offset & 7, len, val));
  its.creadr = 0;
  its.cwriter = 0;
}

/** vgic_mmio_write_its_cwriter: an offset inside the queue publishes commands up to it. */
function writeCwriter(its: VgicIts, offset: number, len: number, val: bigint): void {
  const reg = Number(update64bitReg(BigInt(its.cwriter), offset & 7, len, val) & BigInt(ITS_CMD_OFFSET_MASK));
  if (reg >= itsCmdBufferSize(its.cbaser)) return;
  its.cwriter = reg;
  vgicItsProcessCommands(its);
}

/**
 * vgic_mmio_write_its_baser: ignored while enabled; BASER0 is the device table, BASER1 the collection table (never
 * indirect), others WI; Type and Entry_Size are the ABI's; clearing Valid frees the table's devices or collections.
 */
function writeBaser(its: VgicIts, offset: number, len: number, val: bigint): void {
  if (its.enabled) return;
  const idx = ((offset - GITS_BASER) >> 3) & 7;
  if (idx > 1) return;
  const device = idx === 0;
  let reg = update64bitReg(device ? its.baserDeviceTable : its.baserCollTable, offset & 7, len, val);
  reg &= ~GITS_BASER_RO_MASK;
  if (!device) reg &= ~GITS_BASER_INDIRECT;
  reg |= BigInt(ABI_0_ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT;
  reg |= (device ? GITS_BASER_TYPE_DEVICE : GITS_BASER_TYPE_COLLECTION) << GITS_BASER_TYPE_SHIFT;
  reg = vgicSanitiseItsBaser(reg);
  if (device) its.baserDeviceTable = reg;
  else its.baserCollTable = reg;
  if ((reg & GITS_BASER_VALID) !== 0n) return;
  if (device) while (its.deviceList.length > 0) vgicItsFreeDevice(its, its.deviceList[0]!);
  else while (its.collectionList.length > 0) vgicItsFreeCollection(its, its.collectionList[0]!.collectionId);
}

/** A guest write (its_write; the uaccess writers are vgicItsUaccessWrite's). */
export function vgicItsRegWrite(its: VgicIts, r: ItsRegion, offset: number, len: number, val: bigint): void {
  switch (r.reg) {
    case 'ctlr':
      writeCtlr(its, val);
      return;
    case 'cbaser':
      writeCbaser(its, offset, len, val);
      return;
    case 'cwriter':
      writeCwriter(its, offset, len, val);
      return;
    case 'baser':
      writeBaser(its, offset, len, val);
      return;
    default:
      return; // TYPER, IIDR, CREADR, ID registers: WI for the guest
  }
}

/** vgic_its_commit_v0: the tables' Entry_Size fields follow the ABI. */
export function vgicItsCommitV0(its: VgicIts): void {
  const esz = BigInt(ABI_0_ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT;
  its.baserCollTable = (its.baserCollTable & ~GITS_BASER_ENTRY_SIZE_MASK) | esz;
  its.baserDeviceTable = (its.baserDeviceTable & ~GITS_BASER_ENTRY_SIZE_MASK) | esz;
}

/**
 * A userspace write (KVM_DEV_ARM_VGIC_GRP_ITS_REGS): GITS_IIDR selects the ABI revision (EINVAL past the last one),
 * GITS_CREADR sets the read offset (EBUSY while enabled, EINVAL outside the queue); other registers as the guest
 * writes them. Returns 0 or a -errno.
 */
export function vgicItsUaccessWrite(its: VgicIts, r: ItsRegion, offset: number, len: number, val: bigint): number {
  if (r.reg === 'iidr') {
    const rev = Number((val >> BigInt(GITS_IIDR_REV_SHIFT)) & 0xfn);
    if (rev >= NR_ITS_ABIS) return -ERRNO.EINVAL;
    its.abiRev = rev;
    vgicItsCommitV0(its);
    return 0;
  }
  if (r.reg === 'creadr') {
    if (its.enabled) return -ERRNO.EBUSY;
    const off = Number(val & BigInt(ITS_CMD_OFFSET_MASK));
    if (off >= itsCmdBufferSize(its.cbaser)) return -ERRNO.EINVAL;
    its.creadr = off;
    return 0;
  }
  vgicItsRegWrite(its, r, offset, len, val);
  return 0;
}

/** vgic_its_reset (KVM_DEV_ARM_ITS_CTRL_RESET): tables invalid (ABI fields kept), queue empty, disabled, all freed. */
export function vgicItsReset(its: VgicIts): void {
  its.baserCollTable &= ~GITS_BASER_VALID;
  its.baserDeviceTable &= ~GITS_BASER_VALID;
  its.cbaser = 0n;
  its.creadr = 0;
  its.cwriter = 0;
  its.enabled = false;
  vgicItsFreeAll(its);
}

/** The userspace ABI's access width: 64-bit registers are accessed whole (vgic_its_attr_regs_access). */
export function vgicItsUaccessLen(r: ItsRegion): number {
  return (r.access & ACCESS_64) !== 0 ? 8 : 4;
}

/** vgic_its_{has_attr_regs,attr_regs_access}'s alignment: 4 below GITS_TYPER and from GITS_PIDR4 on, else 8. */
export function vgicItsUaccessAlign(offset: bigint): bigint {
  return offset < BigInt(GITS_TYPER) || offset >= BigInt(GITS_PIDR4) ? 3n : 7n;
}

/**
 * A guest access of `len` bytes at `offset` of the ITS frame (dispatch_mmio_read/write): the value read, 0 for a
 * write; an access that hits no register or is too wide or misaligned (GITS_TRANSLATER included) reads as zero and is
 * ignored.
 */
export function vgicItsMmioAccess(its: VgicIts, offset: number, isWrite: boolean, len: number, data: number): number {
  touch(its.oid);
  const r = vgicItsGuestRegion(offset, len);
  if (r === null) return 0;
  if (isWrite) {
    vgicItsRegWrite(its, r, offset, len, BigInt(data >>> 0));
    return 0;
  }
  return Number(vgicItsRegRead(its, r, offset, len) & 0xffff_ffffn);
}
