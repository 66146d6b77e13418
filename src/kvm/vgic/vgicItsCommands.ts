/**
 * The emulated ITS's command queue (arch/arm64/kvm/vgic/vgic-its.c, Linux 6.1: vgic_its_process_commands,
 * vgic_its_handle_command and the vgic_its_cmd_handle_* functions, vgic_its_check_id). Commands are 32 bytes read
 * from guest memory at GITS_CBASER + GITS_CREADR, handled one by one until CREADR reaches CWRITER. A command whose
 * handler fails (a positive E_ITS_* or a -errno) is dropped and the queue goes on, as KVM does: the guest sees no
 * error (no SEIs). A command that cannot be read from guest memory is skipped the same way.
 */
import { ERRNO } from '../../abi/errno.js';
import {
  ITS_CMD_CLEAR,
  ITS_CMD_DISCARD,
  ITS_CMD_INT,
  ITS_CMD_INV,
  ITS_CMD_INVALL,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPI,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVALL,
  ITS_CMD_MOVI,
  ITS_CMD_SIZE,
  ITS_CMD_SYNC,
} from '../../hw/gicv3/its.js';
import { VGIC_MIN_LPI } from './vgicIrq.js';
import {
  COLLECTION_NOT_MAPPED,
  E_ITS_CLEAR_UNMAPPED_INTERRUPT,
  E_ITS_DISCARD_UNMAPPED_INTERRUPT,
  E_ITS_INV_UNMAPPED_INTERRUPT,
  E_ITS_INVALL_UNMAPPED_COLLECTION,
  E_ITS_MAPC_COLLECTION_OOR,
  E_ITS_MAPC_PROCNUM_OOR,
  E_ITS_MAPD_DEVICE_OOR,
  E_ITS_MAPD_ITTSIZE_OOR,
  E_ITS_MAPTI_ID_OOR,
  E_ITS_MAPTI_PHYSICALID_OOR,
  E_ITS_MAPTI_UNMAPPED_DEVICE,
  E_ITS_MOVALL_PROCNUM_OOR,
  E_ITS_MOVI_UNMAPPED_COLLECTION,
  E_ITS_MOVI_UNMAPPED_INTERRUPT,
  findCollection,
  findIte,
  findItsDevice,
  ItsCollection,
  ItsDevice,
  ItsIte,
  itsFreeIte,
  itsIsCollectionMapped,
  kvmGetVgicCpu,
  updateAffinity,
  updateAffinityCollection,
  type VgicIts,
  VITS_TYPER_DEVBITS,
  VITS_TYPER_IDBITS,
  vgicItsFreeCollection,
  vgicItsFreeDevice,
  vgicItsInvall,
  vgicItsTriggerMsi,
} from './vgicIts.js';
import { maxLpisPropbaser, updateLpiConfig, vgicAddLpi, vgicCopyLpiList, vgicItsInvalidateCache } from './vgicLpi.js';
import { vgicV4QueueOp } from './vgicV4Ops.js';

/** GITS_BASER<n>: Valid[63], Indirect[62], Type[58:56], Entry_Size[52:48], Physical_Address[47:16] (+ [15:12] = PA[51:48] with 64 KiB pages), Size[7:0]. */
export const GITS_BASER_VALID = 1n << 63n;
export const GITS_BASER_INDIRECT = 1n << 62n;
export const GITS_BASER_TYPE_SHIFT = 56n;
export const GITS_BASER_ENTRY_SIZE_SHIFT = 48n;
export const GITS_BASER_TYPE_DEVICE = 1n;
export const GITS_BASER_TYPE_COLLECTION = 4n;
const SZ_64K = 0x1_0000;

/** The command's eight 32-bit words (four little-endian u64s, low word first); one buffer: nothing allocates per command. */
const cmd = new Uint32Array(8);

/** A level-1 table entry being read (vgic_its_check_id's indirect_ptr). */
const l1Entry = new Uint32Array(2);

const cmdCommand = (): number => cmd[0]! & 0xff;
const cmdDeviceId = (): number => cmd[1]!;
const cmdSize = (): number => (cmd[2]! & 0x1f) + 1;
const cmdId = (): number => cmd[2]!;
const cmdPhysicalId = (): number => cmd[3]!;
const cmdCollection = (): number => cmd[4]! & 0xffff;
/** DW2[51:8], in place (the ITT address is 256-byte aligned). */
const cmdIttAddr = (): number => (cmd[5]! & 0xf_ffff) * 2 ** 32 + ((cmd[4]! & 0xffff_ff00) >>> 0);
const cmdTargetAddr = (): number => ((cmd[4]! >>> 16) | ((cmd[5]! & 0xffff) << 16)) >>> 0;
const cmdValid = (): boolean => cmd[5]! >>> 31 !== 0;
const cmdTarget2Addr = (): number => ((cmd[6]! >>> 16) | ((cmd[7]! & 0xffff) << 16)) >>> 0;

/** GITS_BASER_ADDR_48_to_52 of a table register (64 KiB pages). */
export function gitsBaserAddr(baser: bigint): number {
  return Number((baser & 0x0000_ffff_ffff_0000n) | ((baser & 0xf000n) << 36n));
}

/**
 * vgic_its_check_id: the guest address of `id`'s entry in the device or collection table `baser` describes, or -1
 * when the ID is out of range (16 DeviceID bits, 16-bit collection IDs, the table's size) or the entry — direct, or
 * through a valid level-1 entry read from guest memory — is not guest RAM (the kernel's false).
 */
export function vgicItsCheckId(its: VgicIts, baser: bigint, id: number): number {
  const l1TblSize = (Number(baser & 0xffn) + 1) * SZ_64K;
  const type = (baser >> GITS_BASER_TYPE_SHIFT) & 7n;
  const base = gitsBaserAddr(baser);
  const esz = Number((baser >> GITS_BASER_ENTRY_SIZE_SHIFT) & 0x1fn) + 1;
  if (type === GITS_BASER_TYPE_DEVICE) {
    if (id >= 2 ** VITS_TYPER_DEVBITS) return -1;
  } else if (type === GITS_BASER_TYPE_COLLECTION) {
    if (id >= 2 ** 16) return -1;
  } else {
    return -1;
  }
  const mem = its.vgic.mem;
  let eaddr: number;
  if ((baser & GITS_BASER_INDIRECT) === 0n) {
    if (id >= l1TblSize / esz) return -1;
    eaddr = base + id * esz;
  } else {
    const index = Math.floor(id / (SZ_64K / esz));
    if (index >= l1TblSize / 8) return -1;
    if (mem.readU64(base + index * 8, l1Entry, 0) !== 0) return -1;
    if (l1Entry[1]! >>> 31 === 0) return -1; // the level-1 entry's Valid bit
    const l2 = (l1Entry[1]! & 0xf_ffff) * 2 ** 32 + ((l1Entry[0]! & 0xffff_0000) >>> 0); // GENMASK_ULL(51, 16)
    eaddr = l2 + (id % (SZ_64K / esz)) * esz;
  }
  return mem.visible(eaddr, 1) ? eaddr : -1;
}

/** vgic_its_alloc_collection: E_ITS_MAPC_COLLECTION_OOR when the collection table cannot hold the ID. */
export function vgicItsAllocCollection(its: VgicIts, collId: number): ItsCollection | number {
  if (vgicItsCheckId(its, its.baserCollTable, collId) < 0) return E_ITS_MAPC_COLLECTION_OOR;
  const c = new ItsCollection(collId, COLLECTION_NOT_MAPPED);
  its.collectionList.push(c);
  return c;
}

/** DISCARD: free a mapped ITE (E_ITS_DISCARD_UNMAPPED_INTERRUPT without one, or with its collection unmapped). */
function handleDiscard(its: VgicIts): number {
  const d = findItsDevice(its, cmdDeviceId());
  const ite = findIte(its, cmdDeviceId(), cmdId());
  if (d === null || ite === null || !itsIsCollectionMapped(ite.collection)) return E_ITS_DISCARD_UNMAPPED_INTERRUPT;
  vgicItsInvalidateCache(its.vgic);
  itsFreeIte(its, d, ite);
  return 0;
}

/** MOVI: the ITE moves to another mapped collection, its LPI to that collection's vCPU. */
function handleMovi(its: VgicIts): number {
  const ite = findIte(its, cmdDeviceId(), cmdId());
  if (ite === null) return E_ITS_MOVI_UNMAPPED_INTERRUPT;
  if (!itsIsCollectionMapped(ite.collection)) return E_ITS_MOVI_UNMAPPED_COLLECTION;
  const c = findCollection(its, cmdCollection());
  if (!itsIsCollectionMapped(c)) return E_ITS_MOVI_UNMAPPED_COLLECTION;
  ite.collection = c;
  vgicItsInvalidateCache(its.vgic);
  if (ite.irq !== null) updateAffinity(ite.irq, kvmGetVgicCpu(its.vgic, c.targetAddr));
  return 0;
}

/**
 * MAPTI / MAPI: map (DeviceID, EventID) to an LPI (MAPI: the EventID itself) in a collection, allocated if new. An
 * existing mapping is UNPREDICTABLE: KVM keeps it and reports success.
 */
function handleMapi(its: VgicIts): number {
  const deviceId = cmdDeviceId();
  const eventId = cmdId();
  const d = findItsDevice(its, deviceId);
  if (d === null) return E_ITS_MAPTI_UNMAPPED_DEVICE;
  if (eventId >= 2 ** d.numEventidBits) return E_ITS_MAPTI_ID_OOR;
  const lpiNr = cmdCommand() === ITS_CMD_MAPTI ? cmdPhysicalId() : eventId;
  if (lpiNr < VGIC_MIN_LPI || lpiNr >= maxLpisPropbaser(its.vgic.propbaser)) return E_ITS_MAPTI_PHYSICALID_OOR;
  if (findIte(its, deviceId, eventId) !== null) return 0;
  let c = findCollection(its, cmdCollection());
  let newColl = false;
  if (c === null) {
    const r = vgicItsAllocCollection(its, cmdCollection());
    if (typeof r === 'number') return r;
    c = r;
    newColl = true;
  }
  const ite = new ItsIte(eventId, c);
  d.ittHead.push(ite);
  const vcpu = itsIsCollectionMapped(c) ? kvmGetVgicCpu(its.vgic, c.targetAddr) : null;
  const irq = vgicAddLpi(its.vgic, lpiNr, vcpu);
  if (typeof irq === 'number') {
    if (newColl) vgicItsFreeCollection(its, c.collectionId);
    itsFreeIte(its, d, ite);
    return irq;
  }
  ite.irq = irq;
  return 0;
}

/**
 * MAPD: (re)map a DeviceID to an ITT of Size EventID bits, or unmap it (V = 0). Mapping a mapped device frees its
 * ITEs first (the spec's "invalidates all cached data").
 */
function handleMapd(its: VgicIts): number {
  const deviceId = cmdDeviceId();
  const valid = cmdValid();
  const bits = cmdSize();
  if (vgicItsCheckId(its, its.baserDeviceTable, deviceId) < 0) return E_ITS_MAPD_DEVICE_OOR;
  if (valid && bits > VITS_TYPER_IDBITS) return E_ITS_MAPD_ITTSIZE_OOR;
  const d = findItsDevice(its, deviceId);
  if (d !== null) vgicItsFreeDevice(its, d);
  if (!valid) return 0;
  its.deviceList.push(new ItsDevice(deviceId, cmdIttAddr(), bits));
  return 0;
}

/** MAPC: map a collection to a vCPU (RDbase = processor number; past the online vCPUs: E_ITS_MAPC_PROCNUM_OOR), or unmap it. */
function handleMapc(its: VgicIts): number {
  const valid = cmdValid();
  const collId = cmdCollection();
  const target = cmdTargetAddr();
  if (target >= its.vgic.vcpus.length) return E_ITS_MAPC_PROCNUM_OOR;
  if (!valid) {
    vgicItsFreeCollection(its, collId);
    vgicItsInvalidateCache(its.vgic);
    return 0;
  }
  const c = findCollection(its, collId);
  if (c === null) {
    const r = vgicItsAllocCollection(its, collId);
    if (typeof r === 'number') return r;
    r.targetAddr = target;
  } else {
    c.targetAddr = target;
    updateAffinityCollection(its, c);
  }
  return 0;
}

/** CLEAR: the LPI loses its pending state — a forwarded vLPI at the hardware too (irq_set_irqchip_state: VCLEAR). */
function handleClear(its: VgicIts): number {
  const ite = findIte(its, cmdDeviceId(), cmdId());
  if (ite === null || ite.irq === null) return E_ITS_CLEAR_UNMAPPED_INTERRUPT;
  ite.irq.pendingLatch = false;
  if (ite.irq.hw) vgicV4QueueOp(its.vgic, { kind: 'pending', hostIrq: ite.irq.hostIrq, pending: false });
  return 0;
}

/** INV: re-read the LPI's configuration byte (update_lpi_config with needs_inv: a forwarded vLPI's VCONF + INV). */
function handleInv(its: VgicIts): number {
  const ite = findIte(its, cmdDeviceId(), cmdId());
  if (ite === null || ite.irq === null) return E_ITS_INV_UNMAPPED_INTERRUPT;
  return updateLpiConfig(its.vgic, ite.irq, null, true);
}

/** INVALL: vgic_its_invall of the collection's vCPU. */
function handleInvall(its: VgicIts): number {
  const c = findCollection(its, cmdCollection());
  if (!itsIsCollectionMapped(c)) return E_ITS_INVALL_UNMAPPED_COLLECTION;
  const vcpu = kvmGetVgicCpu(its.vgic, c.targetAddr);
  if (vcpu !== null) vgicItsInvall(its.vgic, vcpu);
  return 0;
}

/** MOVALL: every LPI of the VM that targets vCPU target1 now targets target2. */
function handleMovall(its: VgicIts): number {
  const vgic = its.vgic;
  const t1 = cmdTargetAddr();
  const t2 = cmdTarget2Addr();
  if (t1 >= vgic.vcpus.length || t2 >= vgic.vcpus.length) return E_ITS_MOVALL_PROCNUM_OOR;
  if (t1 === t2) return 0;
  const vcpu2 = kvmGetVgicCpu(vgic, t2);
  for (const intid of vgicCopyLpiList(vgic, kvmGetVgicCpu(vgic, t1))) updateAffinity(vgic.vgicGetIrq(intid)!, vcpu2);
  vgicItsInvalidateCache(vgic);
  return 0;
}

/** vgic_its_handle_command: the handler's result; -ENODEV for a command KVM does not know (GICv4's included). */
function vgicItsHandleCommand(its: VgicIts): number {
  switch (cmdCommand()) {
    case ITS_CMD_MAPD:
      return handleMapd(its);
    case ITS_CMD_MAPC:
      return handleMapc(its);
    case ITS_CMD_MAPI:
    case ITS_CMD_MAPTI:
      return handleMapi(its);
    case ITS_CMD_MOVI:
      return handleMovi(its);
    case ITS_CMD_DISCARD:
      return handleDiscard(its);
    case ITS_CMD_CLEAR:
      return handleClear(its);
    case ITS_CMD_MOVALL:
      return handleMovall(its);
    case ITS_CMD_INT:
      return vgicItsTriggerMsi(its, cmdDeviceId(), cmdId());
    case ITS_CMD_INV:
      return handleInv(its);
    case ITS_CMD_INVALL:
      return handleInvall(its);
    case ITS_CMD_SYNC:
      return 0; // KVM is in sync all the time
    default:
      return -ERRNO.ENODEV;
  }
}

/** ITS_CMD_BUFFER_SIZE: (CBASER.Size + 1) 4 KiB pages. */
export function itsCmdBufferSize(cbaser: bigint): number {
  return (Number(cbaser & 0xffn) + 1) << 12;
}

/** GITS_CBASER_ADDRESS: Physical_Address[51:12] (CBASER is sanitised to 64 KiB alignment). */
function gitsCbaserAddress(cbaser: bigint): number {
  return Number(cbaser & 0x000f_ffff_ffff_f000n);
}

/** vgic_its_process_commands: with the ITS enabled, every command from CREADR up to CWRITER (wrapping). */
export function vgicItsProcessCommands(its: VgicIts): void {
  if (!its.enabled) return;
  const base = gitsCbaserAddress(its.cbaser);
  const mem = its.vgic.mem;
  while (its.cwriter !== its.creadr) {
    let ok = true;
    for (let i = 0; i < 4; i++) if (mem.readU64(base + its.creadr + 8 * i, cmd, 2 * i) !== 0) ok = false;
    if (ok) {
      const ret = vgicItsHandleCommand(its);
      if (ret !== 0) {
        its.commandErrors++;
        its.lastError = ret;
      }
    }
    its.creadr += ITS_CMD_SIZE;
    if (its.creadr === itsCmdBufferSize(its.cbaser)) its.creadr = 0;
  }
}
