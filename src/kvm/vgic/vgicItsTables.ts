/**
 * KVM_DEV_ARM_ITS_SAVE_TABLES / RESTORE_TABLES with ABI revision 0 (arch/arm64/kvm/vgic/vgic-its.c, Linux 6.1:
 * vgic_its_save_tables_v0, vgic_its_restore_tables_v0 and their helpers; Documentation/virt/kvm/devices/
 * arm-vgic-its.rst "ITS Table ABI REV0"). The ITS's state goes into the guest's own tables, 8-byte little-endian
 * entries (vgic.h KVM_ITS_*):
 * - DTE at the device table entry of the DeviceID: V[63] | Next[62:49] (DeviceID offset to the next DTE, 0 = last)
 *   | ITT_addr[48:5] (bits 51:8 of the ITT address) | Size[4:0] (EventID bits - 1);
 * - ITE at ITT + EventID × 8: Next[63:48] (EventID offset, 0 = last) | pINTID[47:16] | ICID[15:0];
 * - CTE, packed from the collection table's start and ended by an invalid one: V[63] | RDBase[51:16] (vCPU index)
 *   | ICID[15:0].
 * Returns 0 or a -errno; a restore's positive E_ITS_* from vgic_its_alloc_collection ends nothing (the kernel's loop
 * goes on and returns 0).
 */
import { ERRNO } from '../../abi/errno.js';
import { ModelError } from '../../sim/errors.js';
import { VGIC_MIN_LPI } from './vgicIrq.js';
import {
  COLLECTION_NOT_MAPPED,
  findCollection,
  ItsDevice,
  ItsIte,
  itsIsCollectionMapped,
  kvmGetVgicCpu,
  type VgicIts,
  vgicItsFreeDevice,
} from './vgicIts.js';
import {
  GITS_BASER_INDIRECT,
  GITS_BASER_VALID,
  gitsBaserAddr,
  vgicItsAllocCollection,
  vgicItsCheckId,
} from './vgicItsCommands.js';
import { vgicAddLpi } from './vgicLpi.js';

const ESZ = 8;
const SZ_64K = 0x1_0000;
/** vgic-its.c VITS_DTE_MAX_DEVID_OFFSET / VITS_ITE_MAX_EVENTID_OFFSET. */
const VITS_DTE_MAX_DEVID_OFFSET = 2 ** 14 - 1;
const VITS_ITE_MAX_EVENTID_OFFSET = 2 ** 16 - 1;
const MASK32 = 0xffff_ffffn;

/** kvm_write_guest of one u64 entry: 0 or -EFAULT. */
function writeEntry(its: VgicIts, gpa: number, val: bigint): number {
  return its.vgic.mem.writeU64(gpa, Number(val & MASK32), Number((val >> 32n) & MASK32));
}

const entryBuf = new Uint32Array(2);
/** kvm_read_guest of one u64 entry: the value, or the -EFAULT as a number. */
function readEntry(its: VgicIts, gpa: number): bigint | number {
  const r = its.vgic.mem.readU64(gpa, entryBuf, 0);
  return r !== 0 ? r : (BigInt(entryBuf[1]!) << 32n) | BigInt(entryBuf[0]!);
}

/** vgic_its_save_itt: ITEs in EventID order (list_sort), each at ITT + EventID × 8. */
function saveItt(its: VgicIts, d: ItsDevice): number {
  d.ittHead.sort((a, b) => a.eventId - b.eventId);
  for (let i = 0; i < d.ittHead.length; i++) {
    const ite = d.ittHead[i]!;
    const next =
      i + 1 < d.ittHead.length ? Math.min(d.ittHead[i + 1]!.eventId - ite.eventId, VITS_ITE_MAX_EVENTID_OFFSET) : 0;
    // vgic_its_save_ite reads ite->collection->collection_id: a collection MAPC V=0 removed is a NULL dereference
    if (ite.collection === null)
      throw new ModelError(
        `vgic_its_save_ite: EventID ${ite.eventId}'s collection was unmapped (NULL dereference in the kernel)`,
      );
    const val = (BigInt(next) << 48n) | (BigInt(ite.irq!.intid) << 16n) | BigInt(ite.collection.collectionId);
    const r = writeEntry(its, d.ittAddr + ite.eventId * ESZ, val);
    if (r !== 0) return r;
  }
  return 0;
}

/** vgic_its_save_device_tables: devices in DeviceID order, each one's ITT then its DTE (EINVAL when the table cannot hold it). */
function saveDeviceTables(its: VgicIts): number {
  const baser = its.baserDeviceTable;
  if ((baser & GITS_BASER_VALID) === 0n) return 0;
  const list = its.deviceList;
  list.sort((a, b) => a.deviceId - b.deviceId);
  for (let i = 0; i < list.length; i++) {
    const d = list[i]!;
    const eaddr = vgicItsCheckId(its, baser, d.deviceId);
    if (eaddr < 0) return -ERRNO.EINVAL;
    let r = saveItt(its, d);
    if (r !== 0) return r;
    const next = i + 1 < list.length ? Math.min(list[i + 1]!.deviceId - d.deviceId, VITS_DTE_MAX_DEVID_OFFSET) : 0;
    const val =
      (1n << 63n) | (BigInt(next) << 49n) | (BigInt(Math.floor(d.ittAddr / 256)) << 5n) | BigInt(d.numEventidBits - 1);
    r = writeEntry(its, eaddr, val);
    if (r !== 0) return r;
  }
  return 0;
}

/** vgic_its_save_collection_table: the CTEs packed, then an invalid one unless the table is full. */
function saveCollectionTable(its: VgicIts): number {
  const baser = its.baserCollTable;
  if ((baser & GITS_BASER_VALID) === 0n) return 0;
  let gpa = gitsBaserAddr(baser);
  const maxSize = (Number(baser & 0xffn) + 1) * SZ_64K;
  let filled = 0;
  for (const c of its.collectionList) {
    const r = writeEntry(its, gpa, (1n << 63n) | (BigInt(c.targetAddr) << 16n) | BigInt(c.collectionId));
    if (r !== 0) return r;
    gpa += ESZ;
    filled += ESZ;
  }
  return filled === maxSize ? 0 : writeEntry(its, gpa, 0n);
}

/** vgic_its_save_tables_v0. */
export function vgicItsSaveTablesV0(its: VgicIts): number {
  const r = saveDeviceTables(its);
  return r !== 0 ? r : saveCollectionTable(its);
}

/** What scan_its_table applies to each entry: < 0 error, 0 last entry found, else the ID offset to the next one. */
type EntryFn = (its: VgicIts, id: number, entry: bigint, dev: ItsDevice | null) => number;

/** scan_its_table: entries from `base` while `size` lasts; 1 when it ran out without finding the last one. */
function scanItsTable(
  its: VgicIts,
  base: number,
  size: number,
  startId: number,
  fn: EntryFn,
  dev: ItsDevice | null,
): number {
  let len = size;
  let id = startId;
  let gpa = base;
  while (len > 0) {
    const entry = readEntry(its, gpa);
    if (typeof entry === 'number') return entry;
    const next = fn(its, id, entry, dev);
    if (next <= 0) return next;
    id += next;
    gpa += next * ESZ;
    len -= next * ESZ;
  }
  return 1;
}

/** vgic_its_restore_ite: an ITE mapping EventID `eventId` (pINTID 0: an empty slot, scan on). */
const restoreIte: EntryFn = (its, eventId, val, dev) => {
  const d = dev!;
  const collId = Number(val & 0xffffn);
  const lpiId = Number((val >> 16n) & MASK32);
  if (lpiId === 0) return 1;
  if (lpiId < VGIC_MIN_LPI) return -ERRNO.EINVAL;
  const offset = Number(val >> 48n);
  if (eventId + offset >= 2 ** d.numEventidBits) return -ERRNO.EINVAL;
  const c = findCollection(its, collId);
  if (c === null) return -ERRNO.EINVAL;
  const ite = new ItsIte(eventId, c);
  d.ittHead.push(ite);
  const vcpu = itsIsCollectionMapped(c) ? kvmGetVgicCpu(its.vgic, c.targetAddr) : null;
  const irq = vgicAddLpi(its.vgic, lpiId, vcpu);
  if (typeof irq === 'number') return irq;
  ite.irq = irq;
  return offset;
};

/** vgic_its_restore_dte: a device from a valid DTE, then its ITT (a failure frees it again). */
const restoreDte: EntryFn = (its, id, entry) => {
  if (entry >> 63n === 0n) return 1;
  const bits = Number(entry & 0x1fn) + 1;
  const ittAddr = Number((entry >> 5n) & ((1n << 44n) - 1n)) * 256;
  const offset = Number((entry >> 49n) & 0x3fffn);
  const d = new ItsDevice(id, ittAddr, bits);
  its.deviceList.push(d);
  let r = scanItsTable(its, ittAddr, 2 ** bits * ESZ, 0, restoreIte, d);
  if (r > 0) r = 0;
  if (r !== 0) {
    vgicItsFreeDevice(its, d);
    return r;
  }
  return offset;
};

/** handle_l1_dte: a valid level-1 entry's 64 KiB level-2 table of DTEs. */
const handleL1Dte: EntryFn = (its, id, entry) => {
  if (entry >> 63n === 0n) return 1;
  const gpa = Number(entry & 0x000f_ffff_ffff_0000n);
  return scanItsTable(its, gpa, SZ_64K, id * (SZ_64K / ESZ), restoreDte, null);
};

/** vgic_its_restore_device_tables. */
function restoreDeviceTables(its: VgicIts): number {
  const baser = its.baserDeviceTable;
  if ((baser & GITS_BASER_VALID) === 0n) return 0;
  const size = (Number(baser & 0xffn) + 1) * SZ_64K;
  const fn = (baser & GITS_BASER_INDIRECT) !== 0n ? handleL1Dte : restoreDte;
  const r = scanItsTable(its, gitsBaserAddr(baser), size, 0, fn, null);
  return Math.min(r, 0);
}

/** vgic_its_restore_cte: 0 at an invalid CTE (the end), 1 after restoring one, or an error. */
function restoreCte(its: VgicIts, gpa: number): number {
  const val = readEntry(its, gpa);
  if (typeof val === 'number') return val;
  if (val >> 63n === 0n) return 0;
  const target = Number((val >> 16n) & MASK32);
  const collId = Number(val & 0xffffn);
  if (target !== COLLECTION_NOT_MAPPED && target >= its.vgic.vcpus.length) return -ERRNO.EINVAL;
  if (findCollection(its, collId) !== null) return -ERRNO.EEXIST;
  const c = vgicItsAllocCollection(its, collId);
  if (typeof c === 'number') return c;
  c.targetAddr = target;
  return 1;
}

/** vgic_its_restore_collection_table. */
function restoreCollectionTable(its: VgicIts): number {
  const baser = its.baserCollTable;
  if ((baser & GITS_BASER_VALID) === 0n) return 0;
  let gpa = gitsBaserAddr(baser);
  const maxSize = (Number(baser & 0xffn) + 1) * SZ_64K;
  let ret = 1;
  for (let read = 0; read < maxSize; read += ESZ, gpa += ESZ) {
    ret = restoreCte(its, gpa);
    if (ret <= 0) break;
  }
  return Math.min(ret, 0);
}

/** vgic_its_restore_tables_v0: collections first (the ITEs name them), then devices and their ITTs. */
export function vgicItsRestoreTablesV0(its: VgicIts): number {
  const r = restoreCollectionTable(its);
  return r !== 0 ? r : restoreDeviceTables(its);
}
