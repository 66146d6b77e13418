/**
 * KVM's emulated ITS (arch/arm64/kvm/vgic/vgic-its.c, Linux 6.1): struct vgic_its with its devices, their
 * translation entries (ITEs) and the collections, the translation of a (DeviceID, EventID) pair to an LPI and its
 * vCPU (vgic_its_resolve_lpi), and MSI injection (vgic_its_trigger_msi, vgic_its_inject_msi with the translation
 * cache). The command queue is vgicItsCommands.ts, the register frame vgicItsMmio.ts, the KVM device
 * vgicItsDevice.ts.
 *
 * Collections target a vCPU by its index (GITS_TYPER.PTA = 0: RDbase is a processor number). Lists keep insertion
 * order (list_add_tail), so every walk is deterministic. Synchronous: its_lock and cmd_lock are held for one step.
 */
import { ERRNO } from '../../abi/errno.js';
import { GITS_TRANSLATER } from '../../hw/gicv3/its.js';
import { touch } from '../../sim/footprint.js';
import type { KvmMsiRoute } from '../irqRouting.js';
import type { KvmVm } from '../vm.js';
import type { Vgic, VgicCpu } from './vgic.js';
import type { VgicIrq } from './vgicIrq.js';
import {
  updateLpiConfig,
  vgicCopyLpiList,
  vgicHasIts,
  vgicItsCacheTranslation,
  vgicItsCheckCache,
  vgicItsInvalidateCache,
  vgicLpisEnabled,
  vgicPutIrq,
} from './vgicLpi.js';
import { vgicV4QueueOp } from './vgicV4Ops.js';

/** vgic-its.c COLLECTION_NOT_MAPPED: a collection allocated by MAPTI before any MAPC. */
export const COLLECTION_NOT_MAPPED = 0xffff_ffff;
/** vgic-its.c VITS_TYPER_IDBITS / VITS_TYPER_DEVBITS: EventID and DeviceID widths. */
export const VITS_TYPER_IDBITS = 16;
export const VITS_TYPER_DEVBITS = 16;
/** The KVM_VGIC_ITS_ADDR_TYPE base before it is set (VGIC_ADDR_UNDEF). */
export const VGIC_ADDR_UNDEF = 0xffff_ffff_ffff_ffffn;

/** include/linux/irqchip/arm-gic-v3.h E_ITS_*: the command errors (positive: a mapping problem, not an errno). */
export const E_ITS_MOVI_UNMAPPED_INTERRUPT = 0x010107;
export const E_ITS_MOVI_UNMAPPED_COLLECTION = 0x010109;
export const E_ITS_INT_UNMAPPED_INTERRUPT = 0x010307;
export const E_ITS_CLEAR_UNMAPPED_INTERRUPT = 0x010507;
export const E_ITS_MAPD_DEVICE_OOR = 0x010801;
export const E_ITS_MAPD_ITTSIZE_OOR = 0x010802;
export const E_ITS_MAPC_PROCNUM_OOR = 0x010902;
export const E_ITS_MAPC_COLLECTION_OOR = 0x010903;
export const E_ITS_MAPTI_UNMAPPED_DEVICE = 0x010a04;
export const E_ITS_MAPTI_ID_OOR = 0x010a05;
export const E_ITS_MAPTI_PHYSICALID_OOR = 0x010a06;
export const E_ITS_INV_UNMAPPED_INTERRUPT = 0x010c07;
export const E_ITS_INVALL_UNMAPPED_COLLECTION = 0x010d09;
export const E_ITS_MOVALL_PROCNUM_OOR = 0x010e01;
export const E_ITS_DISCARD_UNMAPPED_INTERRUPT = 0x010f07;

/** struct its_collection. */
export class ItsCollection {
  constructor(
    readonly collectionId: number,
    /** The target vCPU index, or COLLECTION_NOT_MAPPED. */
    public targetAddr: number,
  ) {}
}

/** struct its_ite: an EventID's LPI (a reference on it) and collection. */
export class ItsIte {
  irq: VgicIrq | null = null;
  constructor(
    readonly eventId: number,
    public collection: ItsCollection | null,
  ) {}
}

/** struct its_device: a DeviceID's ITT (address and EventID bits) and its ITEs. */
export class ItsDevice {
  readonly ittHead: ItsIte[] = [];
  constructor(
    readonly deviceId: number,
    readonly ittAddr: number,
    readonly numEventidBits: number,
  ) {}
}

/** struct vgic_its. */
export class VgicIts {
  /** vgic_its_base: the GITS frame's IPA (KVM_VGIC_ITS_ADDR_TYPE), VGIC_ADDR_UNDEF until set. */
  base = VGIC_ADDR_UNDEF;
  /** GITS_CTLR.Enabled. */
  enabled = false;
  /** ABI revision (GITS_IIDR.Revision): only 0 exists. */
  abiRev = 0;
  /** GITS_BASER0 (devices), GITS_BASER1 (collections), GITS_CBASER, GITS_CREADR, GITS_CWRITER. */
  baserDeviceTable = 0n;
  baserCollTable = 0n;
  cbaser = 0n;
  creadr = 0;
  cwriter = 0;
  readonly deviceList: ItsDevice[] = [];
  readonly collectionList: ItsCollection[] = [];
  /** Commands whose handler returned an error (the guest sees nothing: statistics for tests). */
  commandErrors = 0;
  lastError = 0;

  constructor(
    readonly vm: KvmVm,
    /** Checker object id: its_lock / cmd_lock and the state they protect. */
    readonly oid: number,
  ) {}

  get vgic(): Vgic {
    return this.vm.vgic!;
  }
}

/** find_its_device. */
export function findItsDevice(its: VgicIts, deviceId: number): ItsDevice | null {
  for (const d of its.deviceList) if (d.deviceId === deviceId) return d;
  return null;
}

/** find_ite. */
export function findIte(its: VgicIts, deviceId: number, eventId: number): ItsIte | null {
  const d = findItsDevice(its, deviceId);
  if (d === null) return null;
  for (const ite of d.ittHead) if (ite.eventId === eventId) return ite;
  return null;
}

/** find_collection. */
export function findCollection(its: VgicIts, collId: number): ItsCollection | null {
  for (const c of its.collectionList) if (c.collectionId === collId) return c;
  return null;
}

/** its_is_collection_mapped. */
export function itsIsCollectionMapped(c: ItsCollection | null): c is ItsCollection {
  return c !== null && c.targetAddr !== COLLECTION_NOT_MAPPED;
}

/** kvm_get_vcpu: the vCPU of that index, or null. */
export function kvmGetVgicCpu(vgic: Vgic, idx: number): VgicCpu | null {
  return vgic.vcpus[idx] ?? null;
}

/**
 * update_affinity: the LPI now targets `vcpu` (a pending one moves at the next prune); a forwarded vLPI is mapped to
 * that vCPU's vPE (its_get_vlpi + its_map_vlpi: a VMOVI, which moves a pending vLPI with it).
 */
export function updateAffinity(irq: VgicIrq, vcpu: VgicCpu | null): void {
  irq.targetVcpuIdx = vcpu === null ? -1 : vcpu.id;
  if (irq.hw && vcpu !== null) vgicV4QueueOp(vcpu.vgic, { kind: 'affinity', hostIrq: irq.hostIrq, vcpu: vcpu.id });
}

/** update_affinity_ite: an ITE whose collection is mapped follows it. */
function updateAffinityIte(vgic: Vgic, ite: ItsIte): void {
  if (!itsIsCollectionMapped(ite.collection) || ite.irq === null) return;
  updateAffinity(ite.irq, kvmGetVgicCpu(vgic, ite.collection.targetAddr));
}

/** update_affinity_collection: every ITE of the collection. */
export function updateAffinityCollection(its: VgicIts, coll: ItsCollection): void {
  for (const d of its.deviceList)
    for (const ite of d.ittHead) if (ite.collection === coll) updateAffinityIte(its.vgic, ite);
}

/**
 * its_free_ite: off its device's list; a forwarded vLPI is unmapped (its_unmap_vlpi; irq->hw stays as the kernel
 * leaves it, the vgic_irq normally goes with this put); the LPI reference vgic_add_lpi gave goes.
 */
export function itsFreeIte(its: VgicIts, d: ItsDevice, ite: ItsIte): void {
  d.ittHead.splice(d.ittHead.indexOf(ite), 1);
  if (ite.irq === null) return;
  if (ite.irq.hw) vgicV4QueueOp(its.vgic, { kind: 'unmap', hostIrq: ite.irq.hostIrq });
  vgicPutIrq(its.vgic, ite.irq);
}

/** vgic_its_free_device: its ITEs (UNPREDICTABLE to unmap with ITEs: they are all freed), the cache, the device. */
export function vgicItsFreeDevice(its: VgicIts, d: ItsDevice): void {
  while (d.ittHead.length > 0) itsFreeIte(its, d, d.ittHead[0]!);
  vgicItsInvalidateCache(its.vgic);
  its.deviceList.splice(its.deviceList.indexOf(d), 1);
}

/** vgic_its_free_collection: ITEs of the collection lose it; the collection goes. */
export function vgicItsFreeCollection(its: VgicIts, collId: number): void {
  const c = findCollection(its, collId);
  if (c === null) return;
  for (const d of its.deviceList)
    for (const ite of d.ittHead) if (ite.collection?.collectionId === collId) ite.collection = null;
  its.collectionList.splice(its.collectionList.indexOf(c), 1);
}

/** vgic_its_free_device_list / vgic_its_free_collection_list. */
export function vgicItsFreeAll(its: VgicIts): void {
  while (its.deviceList.length > 0) vgicItsFreeDevice(its, its.deviceList[0]!);
  while (its.collectionList.length > 0) vgicItsFreeCollection(its, its.collectionList[0]!.collectionId);
}

/**
 * vgic_its_invall (the INVALL command, GICR_INVALLR): every LPI targeting the vCPU re-reads its configuration, then
 * its vPE, once GICv4 has given it one, is invalidated as a whole (its_invall_vpe).
 */
export function vgicItsInvall(vgic: Vgic, vcpu: VgicCpu): void {
  for (const intid of vgicCopyLpiList(vgic, vcpu)) {
    const irq = vgic.vgicGetIrq(intid);
    if (irq !== null) updateLpiConfig(vgic, irq, vcpu);
  }
  if (vgic.itsVm !== null) vgicV4QueueOp(vgic, { kind: 'invall', vcpu: vcpu.id });
}

/** The doorbell an MSI to this ITS writes: GITS_TRANSLATER's IPA. */
export function vgicItsDoorbell(its: VgicIts): number {
  return Number(its.base) + GITS_TRANSLATER;
}

/** The translation vgic_its_resolve_lpi gives: the LPI and the vCPU its collection targets. */
export interface VgicItsTranslation {
  readonly irq: VgicIrq;
  readonly vcpu: VgicCpu;
}

/**
 * vgic_its_resolve_lpi: the LPI (DeviceID, EventID) is mapped to and the vCPU its collection targets — -EBUSY while
 * the ITS is disabled or that vCPU's redistributor has LPIs disabled, E_ITS_INT_UNMAPPED_INTERRUPT when nothing
 * (or an unmapped collection, or a vCPU that does not exist) is there. On success the translation is cached.
 */
export function vgicItsResolveLpi(its: VgicIts, devid: number, eventid: number): VgicItsTranslation | number {
  touch(its.oid);
  if (!its.enabled) return -ERRNO.EBUSY;
  const ite = findIte(its, devid, eventid);
  if (ite === null || ite.irq === null || !itsIsCollectionMapped(ite.collection)) return E_ITS_INT_UNMAPPED_INTERRUPT;
  const vcpu = kvmGetVgicCpu(its.vgic, ite.collection.targetAddr);
  if (vcpu === null) return E_ITS_INT_UNMAPPED_INTERRUPT;
  if (!vgicLpisEnabled(vcpu)) return -ERRNO.EBUSY;
  vgicItsCacheTranslation(its.vgic, vgicItsDoorbell(its), devid, eventid, ite.irq);
  return { irq: ite.irq, vcpu };
}

/**
 * vgic_msi_to_its (vgic_its_get_its): the ITS whose GITS_TRANSLATER frame holds the MSI's doorbell — -ENODEV without
 * an ITS, -EINVAL without KVM_MSI_VALID_DEVID or when no ITS frame is at that address.
 */
export function vgicMsiToIts(vm: KvmVm, msi: KvmMsiRoute): VgicIts | number {
  const vgic = vm.vgic;
  if (vgic === null || !vgicHasIts(vgic)) return -ERRNO.ENODEV;
  if ((msi.flags & 1) === 0) return -ERRNO.EINVAL; // KVM_MSI_VALID_DEVID
  const address = (BigInt(msi.addressHi >>> 0) << 32n) | BigInt(msi.addressLo >>> 0);
  const its = vgicItsAt(vm, address);
  return its ?? -ERRNO.EINVAL;
}

/** kvm_io_bus_get_dev on the MMIO bus, for ITS frames: the ITS whose 128 KiB frame contains `ipa`. */
export function vgicItsAt(vm: KvmVm, ipa: bigint): VgicIts | null {
  for (const its of vm.vgicIts)
    if (its.base !== VGIC_ADDR_UNDEF && ipa >= its.base && ipa < its.base + 0x2_0000n) return its;
  return null;
}

/**
 * vgic_its_trigger_msi: resolve, then make the LPI pending and queue it — a forwarded vLPI at the hardware instead
 * (irq_set_irqchip_state(host_irq, PENDING, true): a VINT). 0, a positive E_ITS_* or a -errno.
 */
export function vgicItsTriggerMsi(its: VgicIts, devid: number, eventid: number): number {
  const t = vgicItsResolveLpi(its, devid, eventid);
  if (typeof t === 'number') return t;
  if (t.irq.hw) {
    vgicV4QueueOp(its.vgic, { kind: 'pending', hostIrq: t.irq.hostIrq, pending: true });
    return 0;
  }
  t.irq.pendingLatch = true;
  its.vgic.lpiInjections++;
  its.vgic.traceLr?.itsInject?.(t.vcpu, t.irq.intid, devid, eventid, false);
  its.vgic.vgicQueueIrqUnlock(t.irq);
  return 0;
}

/** vgic_its_inject_cached_translation: 0 after injecting a cached translation, -1 on a miss. Allocates nothing. */
export function vgicItsInjectCachedTranslation(vgic: Vgic, msi: KvmMsiRoute): number {
  const db = (msi.addressHi >>> 0) * 2 ** 32 + (msi.addressLo >>> 0);
  const irq = vgicItsCheckCache(vgic, db, msi.devid, msi.data);
  if (irq === null) return -1;
  irq.pendingLatch = true;
  vgic.lpiInjections++;
  vgic.traceLr?.itsInject?.(vgic.targetVcpuOf(irq), irq.intid, msi.devid, msi.data, true);
  vgic.vgicQueueIrqUnlock(irq);
  return 0;
}

/**
 * vgic_its_inject_msi: KVM_SIGNAL_MSI's and an MSI route's delivery — 1 delivered (the cache, or a translation), 0
 * when a mapping is missing (the guest "blocked" it), or the -errno of vgic_msi_to_its / vgic_its_resolve_lpi.
 */
export function vgicItsInjectMsi(vm: KvmVm, msi: KvmMsiRoute): number {
  const vgic = vm.vgic;
  if (vgic !== null && vgicItsInjectCachedTranslation(vgic, msi) === 0) return 1;
  const its = vgicMsiToIts(vm, msi);
  if (typeof its === 'number') return its;
  const ret = vgicItsTriggerMsi(its, msi.devid, msi.data);
  if (ret < 0) return ret;
  return ret !== 0 ? 0 : 1;
}
