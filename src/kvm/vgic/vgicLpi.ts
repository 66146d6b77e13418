/**
 * LPIs of the vGIC-v3 (Linux 6.1): their struct vgic_irq's life on the VM's LPI list (vgic-its.c vgic_add_lpi,
 * vgic.c vgic_put_irq / __vgic_put_lpi_locked), the configuration byte each one caches from the guest's table at
 * GICR_PROPBASER (vgic-its.c update_lpi_config), the pending table at GICR_PENDBASER (vgic-v3.c
 * vgic_v3_lpi_sync_pending_status, vgic-its.c its_sync_lpi_pending_table), and what GICR_CTLR.EnableLPIs does
 * (vgic-mmio-v3.c vgic_mmio_write_v3r_ctlr: vgic_enable_lpis / vgic_flush_pending_lpis).
 *
 * An LPI is an edge vIRQ of Group 1 that is queued on an ap-list and written into a list register like an SPI (vgic.c,
 * vgicV3.ts); its pending state is the pending latch, never the line. Synchronous, like vgic.ts: the caller declares
 * the step (the translation cache declares its lpi_list_lock itself: readers and writers come from unrelated paths).
 * Guest-memory reads return -EFAULT beyond the IPA size (guestMem.ts).
 */
import { touch } from '../../sim/footprint.js';
import type { Vgic, VgicCpu } from './vgic.js';
import { VGIC_CONFIG_EDGE, VGIC_MIN_LPI, VgicIrq } from './vgicIrq.js';
import { vgicV4QueueOp } from './vgicV4Ops.js';

/** vgic-mmio-v3.c INTERRUPT_ID_BITS_ITS: GICD_TYPER.IDbits + 1 with an ITS, and the cap on PROPBASER.IDbits. */
export const INTERRUPT_ID_BITS_ITS = 16;
/** The configuration byte: Enable[0], Priority[7:2] (include/linux/irqchip/arm-gic-v3.h LPI_PROP_*). */
const LPI_PROP_ENABLED = 1;
const LPI_PROP_PRIORITY_MASK = 0xfc;
/** GICR_PROPBASER.IDbits[4:0]; Physical_Address[51:12]. GICR_PENDBASER.Physical_Address[51:16], PTZ[62]. */
const PROPBASER_IDBITS_MASK = 0x1fn;
const PROPBASER_ADDRESS_MASK = ((1n << 52n) - 1n) & ~0xfffn;
const PENDBASER_ADDRESS_MASK = ((1n << 52n) - 1n) & ~0xffffn;
export const GICR_PENDBASER_PTZ = 1n << 62n;
/** vgic-its.c LPI_DEFAULT_PCPU_CACHE_SIZE: translation-cache entries per vCPU. */
const LPI_DEFAULT_PCPU_CACHE_SIZE = 16;

/** GICR_PROPBASER_ADDRESS. */
export function propbaserAddress(propbaser: bigint): number {
  return Number(propbaser & PROPBASER_ADDRESS_MASK);
}

/** GICR_PENDBASER_ADDRESS. */
export function pendbaserAddress(pendbaser: bigint): number {
  return Number(pendbaser & PENDBASER_ADDRESS_MASK);
}

/** vgic-its.c max_lpis_propbaser: 1 << min(IDbits + 1, INTERRUPT_ID_BITS_ITS) — one past the last LPI INTID. */
export function maxLpisPropbaser(propbaser: bigint): number {
  const idBits = Number(propbaser & PROPBASER_IDBITS_MASK) + 1;
  return 2 ** Math.min(idBits, INTERRUPT_ID_BITS_ITS);
}

/** vgic.h vgic_has_its: a GICv3 model with an ITS device. */
export function vgicHasIts(vgic: Vgic): boolean {
  return vgic.isV3 && vgic.hasIts;
}

/** vgic-mmio-v3.c vgic_lpis_enabled: GICR_CTLR.EnableLPIs of the vCPU's redistributor. */
export function vgicLpisEnabled(vc: VgicCpu): boolean {
  return vc.lpisEnabled;
}

/**
 * vgic-its.c update_lpi_config: the LPI's byte of the configuration table (PROPBASER + intid − 8192) becomes its
 * priority and enable — for every LPI, or with `filter` only one that targets that vCPU — and the LPI is queued if
 * that made it deliverable. A vLPI forwarded to the hardware (GICv4) is not queued: the byte goes to its VCONF with
 * its_prop_update_vlpi (with an INV when `needsInv`), whatever the filter. Returns 0 or the read's -EFAULT.
 */
export function updateLpiConfig(vgic: Vgic, irq: VgicIrq, filter: VgicCpu | null, needsInv = false): number {
  const prop = vgic.mem.readU8(propbaserAddress(vgic.propbaser) + irq.intid - VGIC_MIN_LPI);
  if (prop < 0) return prop;
  if (filter === null || filter.id === irq.targetVcpuIdx) {
    irq.priority = prop & LPI_PROP_PRIORITY_MASK;
    irq.enabled = (prop & LPI_PROP_ENABLED) !== 0;
    if (!irq.hw) {
      vgic.vgicQueueIrqUnlock(irq);
      return 0;
    }
  }
  if (irq.hw) vgicV4QueueOp(vgic, { kind: 'prop', hostIrq: irq.hostIrq, config: prop, inv: needsInv });
  return 0;
}

/**
 * vgic-v3.c vgic_v3_lpi_sync_pending_status: the LPI's bit in its target's pending table becomes its pending latch
 * (and the LPI is queued); a set bit is consumed (cleared in guest memory). 0 without a target; else 0 or -EFAULT.
 */
export function vgicV3LpiSyncPendingStatus(vgic: Vgic, irq: VgicIrq): number {
  const vc = vgic.targetVcpuOf(irq);
  if (vc === null) return 0;
  const ptr = pendbaserAddress(vc.pendbaser) + Math.floor(irq.intid / 8);
  const bit = 1 << (irq.intid % 8);
  const val = vgic.mem.readU8(ptr);
  if (val < 0) return val;
  const status = (val & bit) !== 0;
  irq.pendingLatch = status;
  vgic.vgicQueueIrqUnlock(irq);
  return status ? vgic.mem.writeU8(ptr, val & ~bit) : 0;
}

/**
 * vgic-its.c vgic_add_lpi: a new reference to LPI `intid` — the existing vgic_irq as it is (one more reference: "there
 * is no put, since we keep the reference"), or a new edge, Group 1 one targeting `vcpu`, added to the LPI list, whose
 * configuration and pending bit are then read from guest memory. A read failure drops the reference again and
 * returns the -errno.
 */
export function vgicAddLpi(vgic: Vgic, intid: number, vcpu: VgicCpu | null): VgicIrq | number {
  let irq = vgic.lpis.get(intid);
  if (irq !== undefined) {
    irq.refcount++;
    return irq;
  }
  irq = new VgicIrq(intid, vgic.newOid(`vgic.lpi${intid}`), vcpu, VGIC_CONFIG_EDGE);
  irq.group = 1;
  vgic.lpis.set(intid, irq);
  irq.refcount++;
  let ret = updateLpiConfig(vgic, irq, null);
  if (ret === 0) ret = vgicV3LpiSyncPendingStatus(vgic, irq);
  if (ret !== 0) {
    vgicPutIrq(vgic, irq);
    return ret;
  }
  return irq;
}

/** vgic.c vgic_put_irq for an LPI: drop a reference; the last one takes it off the LPI list (freed). */
export function vgicPutIrq(vgic: Vgic, irq: VgicIrq): void {
  if (irq.intid < VGIC_MIN_LPI) return;
  if (--irq.refcount === 0) vgic.lpis.delete(irq.intid);
}

/** vgic-its.c vgic_copy_lpi_list: the INTIDs of the LPIs (targeting `vcpu`, unless null), in list order. */
export function vgicCopyLpiList(vgic: Vgic, vcpu: VgicCpu | null): number[] {
  const out: number[] = [];
  for (const irq of vgic.lpis.values()) if (vcpu === null || irq.targetVcpuIdx === vcpu.id) out.push(irq.intid);
  return out;
}

/**
 * vgic-its.c vgic_enable_lpis (EnableLPIs 0 → 1): unless PENDBASER.PTZ says the table is zero, its_sync_lpi_pending_table
 * loads the pending bit of every LPI that targets the vCPU (bits are not consumed here). Returns 0 or -EFAULT.
 */
export function vgicEnableLpis(vgic: Vgic, vc: VgicCpu): number {
  if ((vc.pendbaser & GICR_PENDBASER_PTZ) !== 0n) return 0;
  const base = pendbaserAddress(vc.pendbaser);
  for (const intid of vgicCopyLpiList(vgic, vc)) {
    const mask = vgic.mem.readU8(base + Math.floor(intid / 8));
    if (mask < 0) return mask;
    const irq = vgic.lpis.get(intid)!;
    irq.pendingLatch = (mask & (1 << (intid % 8))) !== 0;
    vgic.vgicQueueIrqUnlock(irq);
  }
  return 0;
}

/**
 * vgic.c vgic_flush_pending_lpis (EnableLPIs 1 → 0): every LPI on the vCPU's ap-list leaves it with the ap-list's
 * reference (its pending latch is kept: the LPI is queued again if it is still pending when it is next triggered).
 */
export function vgicFlushPendingLpis(vgic: Vgic, vc: VgicCpu): void {
  let w = 0;
  const n = vc.apCount;
  for (let r = 0; r < n; r++) {
    const irq = vc.ap(r);
    if (irq.intid < VGIC_MIN_LPI) {
      vc.apList[w++] = irq;
      continue;
    }
    irq.vcpu = null;
    vgicPutIrq(vgic, irq);
  }
  vc.apTruncate(w);
}

/** struct vgic_translation_cache_entry: a doorbell/DeviceID/EventID translation and the LPI it gave (a reference). */
export class VgicTranslationCacheEntry {
  /** The doorbell IPA (below 2^52: exact as a number, so a lookup allocates no bigint). */
  db = 0;
  devid = 0;
  eventid = 0;
  irq: VgicIrq | null = null;
}

/** vgic-its.c vgic_lpi_translation_cache_init: 16 empty entries per online vCPU, once. */
export function vgicLpiTranslationCacheInit(vgic: Vgic): void {
  const cache = vgic.lpiTranslationCache;
  if (cache.length !== 0) return;
  vgic.lpiListLockOid = vgic.newOid('vgic.lpi_list_lock');
  const sz = vgic.vcpus.length * LPI_DEFAULT_PCPU_CACHE_SIZE;
  for (let i = 0; i < sz; i++) cache.push(new VgicTranslationCacheEntry());
}

/** __vgic_its_check_cache: the cached LPI (its entry moved to the head, most recently used) or null. Allocates nothing. */
export function vgicItsCheckCache(vgic: Vgic, db: number, devid: number, eventid: number): VgicIrq | null {
  const cache = vgic.lpiTranslationCache;
  if (cache.length === 0) return null; // no ITS: nothing can fill it
  touch(vgic.lpiListLockOid); // under lpi_list_lock, and a hit reorders the list
  for (let i = 0; i < cache.length; i++) {
    const cte = cache[i]!;
    if (cte.irq === null) break; // nothing after an empty entry
    if (cte.db !== db || cte.devid !== devid || cte.eventid !== eventid) continue;
    for (let j = i; j > 0; j--) cache[j] = cache[j - 1]!; // list_move to the head
    cache[0] = cte;
    return cte.irq;
  }
  return null;
}

/**
 * vgic_its_cache_translation: reuse the least recently used entry (dropping its reference), take a reference on the
 * LPI, move the entry to the head. Nothing for a forwarded vLPI, when the cache is empty or already holds the
 * translation.
 */
export function vgicItsCacheTranslation(vgic: Vgic, db: number, devid: number, eventid: number, irq: VgicIrq): void {
  const cache = vgic.lpiTranslationCache;
  if (irq.hw) return; // "Do not cache a directly injected interrupt": the cached path would set the emulated latch
  if (cache.length === 0) return;
  touch(vgic.lpiListLockOid);
  if (vgicItsCheckCache(vgic, db, devid, eventid) !== null) return;
  const cte = cache.pop()!;
  if (cte.irq !== null) vgicPutIrq(vgic, cte.irq);
  irq.refcount++;
  cte.db = db;
  cte.devid = devid;
  cte.eventid = eventid;
  cte.irq = irq;
  cache.unshift(cte);
}

/** vgic_its_invalidate_cache: every entry drops its LPI, up to the first empty one. */
export function vgicItsInvalidateCache(vgic: Vgic): void {
  if (vgic.lpiTranslationCache.length !== 0) touch(vgic.lpiListLockOid);
  for (const cte of vgic.lpiTranslationCache) {
    if (cte.irq === null) break;
    vgicPutIrq(vgic, cte.irq);
    cte.irq = null;
  }
}

/**
 * vgic-v3.c vgic_v3_save_pending_tables (KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES): each LPI with a target writes its
 * pending latch into its bit of that vCPU's pending table, rewriting a byte only when the bit differs. 0 or -EFAULT.
 */
export function vgicV3SavePendingTables(vgic: Vgic): number {
  for (const irq of vgic.lpis.values()) {
    const vc = vgic.targetVcpuOf(irq);
    if (vc === null) continue;
    const ptr = pendbaserAddress(vc.pendbaser) + Math.floor(irq.intid / 8);
    const bit = 1 << (irq.intid % 8);
    const val = vgic.mem.readU8(ptr);
    if (val < 0) return val;
    if (((val & bit) !== 0) === irq.pendingLatch) continue;
    const r = vgic.mem.writeU8(ptr, irq.pendingLatch ? val | bit : val & ~bit);
    if (r !== 0) return r;
  }
  return 0;
}
