// ICH_LR<n>_EL2 encode/decode (ARM IHI 0069 §12.4 ICH_LR<n>_EL2; field names from arm-gic-v3.h ICH_LR_*). The
// 64-bit register is two uint32 words: `lo` = vINTID[31:0], `hi` = bits [63:32]. Field getters work on `hi` and
// allocate nothing; makeLr/decodeLr/lrToBigInt are for model setup and tests.
import { ModelError } from '../../sim/errors.js';
import type { LrState } from '../gic/listRegister.js';
import {
  ICH_LR_EOI,
  ICH_LR_GROUP,
  ICH_LR_HW,
  ICH_LR_PHYS_ID_MASK,
  ICH_LR_PRIORITY_SHIFT,
  ICH_LR_STATE_SHIFT,
} from './regs.js';

/** ICH_LR<n>_EL2.State[63:62] has GICH_LR.State's encoding. */
export { LrState } from '../gic/listRegister.js';

export interface LrFields {
  vintid: number;
  /** Physical INTID (pINTID[44:32]: an SPI, PPI or GICv3.1 Extended SPI), only with hw. */
  pintid?: number;
  hw: boolean;
  /** Maintenance interrupt on deactivation (EOI, bit 41), only without hw. */
  eoi: boolean;
  state: LrState;
  /** 8-bit priority (Priority[55:48]); the virtual interface compares its top 5 bits. */
  priority: number;
  group1: boolean;
}

export const lrState = (hi: number): LrState => (hi >>> ICH_LR_STATE_SHIFT) as LrState;
export const lrIsHw = (hi: number): boolean => (hi & ICH_LR_HW) !== 0;
export const lrIsGroup1 = (hi: number): boolean => (hi & ICH_LR_GROUP) !== 0;
/** EOI maintenance request; meaningless (part of pINTID) when HW = 1. */
export const lrHasEoi = (hi: number): boolean => !lrIsHw(hi) && (hi & ICH_LR_EOI) !== 0;
export const lrPhysicalId = (hi: number): number => hi & ICH_LR_PHYS_ID_MASK;
/** The priority as compared by a virtual CPU interface with 5 priority bits (low 3 bits ignored). */
export const lrPriority = (hi: number): number => (hi >>> ICH_LR_PRIORITY_SHIFT) & 0xf8;
export const lrWithState = (hi: number, state: LrState): number =>
  ((hi & ~(3 << ICH_LR_STATE_SHIFT)) | (state << ICH_LR_STATE_SHIFT)) >>> 0;

/** Builds an ICH_LR<n>_EL2 value; throws ModelError for fields out of range (setup code, not a guest access). */
export function makeLr(f: LrFields): bigint {
  const { vintid, hw, eoi, state, priority, group1 } = f;
  if (!Number.isInteger(vintid) || vintid < 0 || vintid > 0xffffffff) throw new ModelError(`bad vINTID ${vintid}`);
  if (!Number.isInteger(priority) || priority < 0 || priority > 0xff) throw new ModelError(`bad priority ${priority}`);
  let hi = (priority << ICH_LR_PRIORITY_SHIFT) | (state << ICH_LR_STATE_SHIFT);
  if (group1) hi |= ICH_LR_GROUP;
  if (hw) {
    const p = f.pintid;
    if (p === undefined || !Number.isInteger(p) || p < 0 || p > ICH_LR_PHYS_ID_MASK) {
      throw new ModelError(`HW LR needs a pINTID 0..${ICH_LR_PHYS_ID_MASK}`);
    }
    if (eoi) throw new ModelError('HW LR has no EOI bit (bit 41 is part of pINTID)');
    hi |= ICH_LR_HW | p;
  } else {
    if (f.pintid !== undefined) throw new ModelError('pINTID only with HW=1');
    if (eoi) hi |= ICH_LR_EOI;
  }
  return lrToBigInt(vintid, hi >>> 0);
}

export const lrToBigInt = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

export function decodeLr(lr: bigint): LrFields {
  const lo = Number(lr & 0xffffffffn);
  const hi = Number((lr >> 32n) & 0xffffffffn);
  const hw = lrIsHw(hi);
  const f: LrFields = {
    vintid: lo,
    hw,
    eoi: lrHasEoi(hi),
    state: lrState(hi),
    priority: (hi >>> ICH_LR_PRIORITY_SHIFT) & 0xff,
    group1: lrIsGroup1(hi),
  };
  if (hw) f.pintid = lrPhysicalId(hi);
  return f;
}
