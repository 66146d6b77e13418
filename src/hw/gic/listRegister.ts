// GICH_LRn encode/decode (ARM IHI 0048B §5.3 List Registers; field names from include/linux/irqchip/arm-gic.h).
// Field getters work on the raw uint32 and allocate nothing; makeLr/decodeLr are for model setup and tests.
import { ModelError } from '../../sim/errors.js';
import {
  GICH_LR_CPUID_MASK,
  GICH_LR_EOI,
  GICH_LR_GROUP1,
  GICH_LR_HW,
  GICH_LR_PHYSID_CPUID_SHIFT,
  GICH_LR_PRIORITY_SHIFT,
  GICH_LR_STATE_SHIFT,
  GICH_LR_VIRTUALID,
  NR_SGIS,
} from './regs.js';

/** GICH_LR.State[29:28]. */
export const LrState = { Invalid: 0, Pending: 1, Active: 2, PendingActive: 3 } as const;
export type LrState = (typeof LrState)[keyof typeof LrState];

export interface LrFields {
  vintid: number;
  /** Physical INTID (PhysicalID[19:10]), only with hw. */
  pintid?: number;
  /** SGI source CPU (CPUID[12:10]), only without hw. */
  cpuid?: number;
  hw: boolean;
  /** Request a maintenance interrupt on deactivation (bit 19), only without hw. */
  eoi: boolean;
  state: LrState;
  /** 8-bit priority as the vGIC stores it; the LR keeps its top 5 bits (priority >> 3, vgic-v2.c "five bits"). */
  priority: number;
  group1: boolean;
}

export const lrVirtualId = (lr: number): number => lr & GICH_LR_VIRTUALID;
export const lrState = (lr: number): LrState => ((lr >>> GICH_LR_STATE_SHIFT) & 3) as LrState;
export const lrIsHw = (lr: number): boolean => (lr & GICH_LR_HW) !== 0;
export const lrIsGroup1 = (lr: number): boolean => (lr & GICH_LR_GROUP1) !== 0;
/** EOI maintenance request; meaningless (part of PhysicalID) when HW = 1. */
export const lrHasEoi = (lr: number): boolean => !lrIsHw(lr) && (lr & GICH_LR_EOI) !== 0;
export const lrPhysicalId = (lr: number): number => (lr >>> GICH_LR_PHYSID_CPUID_SHIFT) & 0x3ff;
export const lrCpuId = (lr: number): number => (lr >>> GICH_LR_PHYSID_CPUID_SHIFT) & GICH_LR_CPUID_MASK;
/** The LR priority as an 8-bit value (5 implemented bits, low 3 bits zero). */
export const lrPriority = (lr: number): number => ((lr >>> GICH_LR_PRIORITY_SHIFT) & 0x1f) << 3;
export const lrWithState = (lr: number, state: LrState): number =>
  ((lr & ~(3 << GICH_LR_STATE_SHIFT)) | (state << GICH_LR_STATE_SHIFT)) >>> 0;

/** Builds a GICH_LR value; throws ModelError for combinations KVM never writes (vgic-v2.c vgic_v2_compute_lr). */
export function makeLr(f: LrFields): number {
  const { vintid, hw, eoi, state, priority, group1 } = f;
  if (!Number.isInteger(vintid) || vintid < 0 || vintid > GICH_LR_VIRTUALID)
    throw new ModelError(`bad vINTID ${vintid}`);
  if (!Number.isInteger(priority) || priority < 0 || priority > 0xff) throw new ModelError(`bad priority ${priority}`);
  let v = vintid | ((priority >>> 3) << GICH_LR_PRIORITY_SHIFT) | (state << GICH_LR_STATE_SHIFT);
  if (group1) v |= GICH_LR_GROUP1;
  if (hw) {
    const p = f.pintid;
    if (p === undefined || !Number.isInteger(p) || p < 0 || p > 0x3ff) throw new ModelError(`HW LR needs pINTID`);
    if (eoi || f.cpuid !== undefined) throw new ModelError('HW LR has no EOI bit or CPUID (bits 19:10 are pINTID)');
    v |= GICH_LR_HW | (p << GICH_LR_PHYSID_CPUID_SHIFT);
  } else {
    if (f.pintid !== undefined) throw new ModelError('pINTID only with HW=1');
    const c = f.cpuid ?? 0;
    if (!Number.isInteger(c) || c < 0 || c > GICH_LR_CPUID_MASK) throw new ModelError(`bad CPUID ${c}`);
    if (c !== 0 && vintid >= NR_SGIS) throw new ModelError('CPUID only for SGIs');
    v |= c << GICH_LR_PHYSID_CPUID_SHIFT;
    if (eoi) v |= GICH_LR_EOI;
  }
  checkLr(v);
  return v >>> 0;
}

export function decodeLr(lr: number): LrFields {
  const hw = lrIsHw(lr);
  const f: LrFields = {
    vintid: lrVirtualId(lr),
    hw,
    eoi: lrHasEoi(lr),
    state: lrState(lr),
    priority: lrPriority(lr),
    group1: lrIsGroup1(lr),
  };
  if (hw) f.pintid = lrPhysicalId(lr);
  else f.cpuid = lrCpuId(lr);
  return f;
}

/**
 * Rejects LR values that are UNPREDICTABLE or that KVM must never write:
 * pending+active with HW=1 ("the pending state is kept at the physical distributor level", vgic-v2.c),
 * HW=1 naming an SGI or reserved pINTID, and a valid LR with a reserved vINTID 1020-1023.
 */
export function checkLr(lr: number): void {
  const state = lrState(lr);
  if (lrIsHw(lr)) {
    if (state === LrState.PendingActive) throw new ModelError(`LR 0x${(lr >>> 0).toString(16)}: P+A with HW=1`);
    const p = lrPhysicalId(lr);
    if (p < NR_SGIS || p >= 1020) throw new ModelError(`LR 0x${(lr >>> 0).toString(16)}: HW=1 with pINTID ${p}`);
  }
  if (state !== LrState.Invalid && lrVirtualId(lr) >= 1020) {
    throw new ModelError(`LR 0x${(lr >>> 0).toString(16)}: reserved vINTID`);
  }
}
