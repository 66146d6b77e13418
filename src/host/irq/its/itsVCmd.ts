/**
 * The GICv4(.1) ITS commands as irq-gic-v3-its.c (Linux 6.1) builds them — its_encode_vpeid DW1[47:32],
 * its_encode_virt_id DW2[31:0], its_encode_db_phys_id DW2[63:32], its_encode_db_valid DW2[0], its_encode_vpt_addr
 * DW3[51:16], its_encode_vpt_size DW3[4:0], its_encode_vconf_addr DW0[51:16], its_encode_alloc DW0[8],
 * its_encode_ptz DW0[9], its_encode_vmapp_default_db DW1[31:0], its_encode_vmovp_default_db DW3[31:0], its_encode_db
 * DW2[63] — and the its_send_v* helpers: its_send_single_vcommand posts each with the VSYNC of the vPE the builder
 * returns (valid_vpe), except a 4.1 VMAPP with V = 0, which is self-synchronising.
 */
import { ITS_CMD_INV } from '../../../hw/gicv3/its.js';
import {
  type ITS_CMD_INVDB,
  type ITS_CMD_VINVALL,
  ITS_CMD_VMAPP,
  ITS_CMD_VMAPTI,
  ITS_CMD_VMOVI,
  ITS_CMD_VMOVP,
  ITS_CMD_VSYNC,
} from '../../../hw/gicv3/itsVirtual.js';
import { SPURIOUS_INTID } from '../../../hw/gicv3/regs.js';
import type { Frame } from '../../../sim/frame.js';
import {
  type ItsCmdBlock,
  itsBuildEventCmd,
  itsCmdBlock,
  itsEncodeCmd,
  itsEncodeDevid,
  itsEncodeEventId,
  itsEncodeTarget,
  itsEncodeValid,
} from './itsCmd.js';
import { itsSendSingleCommand } from './itsCmdQueue.js';
import type { ItsNode } from './itsNode.js';

const HI = 2 ** 32;

/** A 64 KiB-aligned address in DWn[51:16]. */
function encodeAddr16(c: ItsCmdBlock, dw: number, pa: number): void {
  c[2 * dw] = ((c[2 * dw]! & 0xffff) | ((pa % HI) & 0xffff0000)) >>> 0;
  c[2 * dw + 1] = ((c[2 * dw + 1]! & ~0xfffff) | (Math.floor(pa / HI) & 0xfffff)) >>> 0;
}
function vcmd(nr: number, vpeId: number): ItsCmdBlock {
  const c = itsCmdBlock();
  itsEncodeCmd(c, nr);
  c[3] = vpeId & 0xffff; // its_encode_vpeid
  return c;
}

/** VSYNC, VINVALL, INVDB: the vPEID only. */
export function itsBuildVpeCmd(
  nr: typeof ITS_CMD_VSYNC | typeof ITS_CMD_VINVALL | typeof ITS_CMD_INVDB,
  vpeId: number,
): ItsCmdBlock {
  return vcmd(nr, vpeId);
}

/** its_build_vmapp_cmd on a 4.1 ITS: V = 1 with target, VPT, VPT_size, Alloc, PTZ = 0, VCONF, default doorbell. */
export function itsBuildVmappCmd(
  vpeId: number,
  valid: boolean,
  alloc: boolean,
  target: number,
  vpt: number,
  vptIdBits: number,
  vconf: number,
  db: number,
): ItsCmdBlock {
  const c = vcmd(ITS_CMD_VMAPP, vpeId);
  itsEncodeValid(c, valid);
  if (alloc) c[0] = (c[0]! | (1 << 8)) >>> 0;
  if (!valid) return c;
  itsEncodeTarget(c, target);
  encodeAddr16(c, 3, vpt);
  c[6] = ((c[6]! & ~0x1f) | (vptIdBits - 1)) >>> 0;
  encodeAddr16(c, 0, vconf);
  c[2] = db >>> 0;
  return c;
}

/** its_build_vmapti_cmd: a 4.1 ITS gets doorbell 1023 (the vPE's default doorbell serves). */
export function itsBuildVmaptiCmd(devId: number, eventId: number, vpeId: number, vintid: number): ItsCmdBlock {
  const c = vcmd(ITS_CMD_VMAPTI, vpeId);
  itsEncodeDevid(c, devId);
  itsEncodeEventId(c, eventId);
  c[4] = vintid >>> 0;
  c[5] = SPURIOUS_INTID;
  return c;
}

/** its_build_vmovi_cmd: doorbell 1023, its_encode_db_valid(true). */
export function itsBuildVmoviCmd(devId: number, eventId: number, vpeId: number): ItsCmdBlock {
  const c = vcmd(ITS_CMD_VMOVI, vpeId);
  itsEncodeDevid(c, devId);
  itsEncodeEventId(c, eventId);
  c[4] = 1;
  c[5] = SPURIOUS_INTID;
  return c;
}

/** its_build_vmovp_cmd on a 4.1 ITS: seq_num and its_list (one ITS: 0), target, DB = 1 and the default doorbell. */
export function itsBuildVmovpCmd(vpeId: number, target: number, db: number): ItsCmdBlock {
  const c = vcmd(ITS_CMD_VMOVP, vpeId);
  itsEncodeTarget(c, target);
  c[5] = (c[5]! | 0x80000000) >>> 0; // its_encode_db
  c[6] = db >>> 0;
  return c;
}

/** its_send_single_vcommand of a command for vPE `vpeId`, with its VSYNC. */
export function itsSendVcommand(its: ItsNode, cmd: ItsCmdBlock, vpeId: number): Frame {
  return itsSendSingleCommand(its, cmd, vcmd(ITS_CMD_VSYNC, vpeId));
}

/** its_send_vinv (its_build_vinv_cmd): INV of a forwarded event, synchronised on its vPE. */
export function itsSendVinv(its: ItsNode, devId: number, eventId: number, vpeId: number): Frame {
  return itsSendVcommand(its, itsBuildEventCmd(ITS_CMD_INV, devId, eventId), vpeId);
}
