/**
 * ITS command blocks as irq-gic-v3-its.c builds them (its_encode_* and the its_build_*_cmd builders): 32 bytes, four
 * little-endian 64-bit doublewords, kept here as eight 32-bit words (DW0 low, DW0 high, … DW3 high) — the form the
 * hardware model reads back from memory (src/hw/gicv3/its.ts). Field positions (ARM IHI 0069 §5.3):
 * DW0 command[7:0], DeviceID[63:32]; DW1 EventID[31:0] or Size[4:0], pINTID[63:32]; DW2 ICID[15:0], RDbase[51:16],
 * ITT_addr[51:8], V[63]. The builders take plain values (the caller reads its_device and its_collection).
 */
import {
  type ITS_CMD_CLEAR,
  type ITS_CMD_DISCARD,
  type ITS_CMD_INT,
  type ITS_CMD_INV,
  ITS_CMD_INVALL,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVI,
  ITS_CMD_SYNC,
} from '../../../hw/gicv3/its.js';

/** struct its_cmd_block: raw_cmd[4] as eight 32-bit words. */
export type ItsCmdBlock = Uint32Array;

const HI = 2 ** 32;

export function itsCmdBlock(): ItsCmdBlock {
  return new Uint32Array(8);
}

/** its_encode_cmd: DW0[7:0]. */
export function itsEncodeCmd(c: ItsCmdBlock, nr: number): void {
  c[0] = ((c[0]! & ~0xff) | (nr & 0xff)) >>> 0;
}
/** its_encode_devid: DW0[63:32]. */
export function itsEncodeDevid(c: ItsCmdBlock, devid: number): void {
  c[1] = devid >>> 0;
}
/** its_encode_event_id: DW1[31:0]. */
export function itsEncodeEventId(c: ItsCmdBlock, id: number): void {
  c[2] = id >>> 0;
}
/** its_encode_phys_id: DW1[63:32]. */
export function itsEncodePhysId(c: ItsCmdBlock, id: number): void {
  c[3] = id >>> 0;
}
/** its_encode_size: DW1[4:0], the EventID bits of the device minus one. */
export function itsEncodeSize(c: ItsCmdBlock, size: number): void {
  c[2] = ((c[2]! & ~0x1f) | (size & 0x1f)) >>> 0;
}
/** its_encode_itt: DW2[51:8]. */
export function itsEncodeItt(c: ItsCmdBlock, ittAddr: number): void {
  c[4] = ((c[4]! & 0xff) | ((ittAddr % HI) & 0xffffff00)) >>> 0;
  c[5] = ((c[5]! & ~0xfffff) | (Math.floor(ittAddr / HI) & 0xfffff)) >>> 0;
}
/** its_encode_valid: DW2[63]. */
export function itsEncodeValid(c: ItsCmdBlock, valid: boolean): void {
  c[5] = ((c[5]! & 0x7fffffff) | (valid ? 0x80000000 : 0)) >>> 0;
}
/** its_encode_target: DW2[51:16], the redistributor (with GITS_TYPER.PTA = 0, its processor number << 16). */
export function itsEncodeTarget(c: ItsCmdBlock, target: number): void {
  c[4] = ((c[4]! & 0xffff) | ((target % HI) & 0xffff0000)) >>> 0;
  c[5] = ((c[5]! & ~0xfffff) | (Math.floor(target / HI) & 0xfffff)) >>> 0;
}
/** its_encode_collection: DW2[15:0]. */
export function itsEncodeCollection(c: ItsCmdBlock, col: number): void {
  c[4] = ((c[4]! & ~0xffff) | (col & 0xffff)) >>> 0;
}

/** its_build_mapd_cmd: map (or, valid = false, unmap) a DeviceID to an ITT of `nrItes` entries (a power of two). */
export function itsBuildMapdCmd(devId: number, nrItes: number, ittAddr: number, valid: boolean): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_MAPD);
  itsEncodeDevid(c, devId);
  itsEncodeSize(c, Math.log2(nrItes) - 1);
  itsEncodeItt(c, ittAddr);
  itsEncodeValid(c, valid);
  return c;
}

/** its_build_mapc_cmd: bind collection `col` to the redistributor `target`. */
export function itsBuildMapcCmd(col: number, target: number, valid: boolean): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_MAPC);
  itsEncodeCollection(c, col);
  itsEncodeTarget(c, target);
  itsEncodeValid(c, valid);
  return c;
}

/** its_build_mapti_cmd: (DeviceID, EventID) → LPI `physId` in collection `col`. */
export function itsBuildMaptiCmd(devId: number, eventId: number, physId: number, col: number): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_MAPTI);
  itsEncodeDevid(c, devId);
  itsEncodeEventId(c, eventId);
  itsEncodePhysId(c, physId);
  itsEncodeCollection(c, col);
  return c;
}

/** its_build_movi_cmd: retarget an event to collection `col`. */
export function itsBuildMoviCmd(devId: number, eventId: number, col: number): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_MOVI);
  itsEncodeDevid(c, devId);
  itsEncodeEventId(c, eventId);
  itsEncodeCollection(c, col);
  return c;
}

/** its_build_discard_cmd, its_build_inv_cmd, its_build_int_cmd, its_build_clear_cmd: one event of a device. */
export function itsBuildEventCmd(
  nr: typeof ITS_CMD_DISCARD | typeof ITS_CMD_INV | typeof ITS_CMD_INT | typeof ITS_CMD_CLEAR,
  devId: number,
  eventId: number,
): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, nr);
  itsEncodeDevid(c, devId);
  itsEncodeEventId(c, eventId);
  return c;
}

/** its_build_invall_cmd: re-read the configuration of every LPI of collection `col`. */
export function itsBuildInvallCmd(col: number): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_INVALL);
  itsEncodeCollection(c, col);
  return c;
}

/** its_build_sync_cmd: wait until the effects of earlier commands on redistributor `target` are visible. */
export function itsBuildSyncCmd(target: number): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, ITS_CMD_SYNC);
  itsEncodeTarget(c, target);
  return c;
}

/** The fields of a command block, decoded (tests and trace readers). */
export interface ItsCmdFields {
  cmd: number;
  devId: number;
  eventId: number;
  physId: number;
  size: number;
  ittAddr: number;
  valid: boolean;
  col: number;
  target: number;
}

export function itsDecodeCmd(c: ItsCmdBlock): ItsCmdFields {
  return {
    cmd: c[0]! & 0xff,
    devId: c[1]!,
    eventId: c[2]!,
    physId: c[3]!,
    size: c[2]! & 0x1f,
    ittAddr: (c[5]! & 0xfffff) * HI + ((c[4]! & 0xffffff00) >>> 0),
    valid: (c[5]! & 0x80000000) !== 0,
    col: c[4]! & 0xffff,
    target: (c[5]! & 0xfffff) * HI + ((c[4]! & 0xffff0000) >>> 0),
  };
}
