// What the ITS and the GICv4.1 redistributors report to a tracer (docs/TRACING.md: its_cmd, its_translate,
// gic_vpendbaser, gic_vpe_doorbell, gic_vlpi_iar). These are hardware steps, so Linux has no tracepoint for them; the
// model calls a hook where the hardware acts, and the hooks stay null while nobody traces (one null test, no allocation).
import type { IttEntry } from './itsVirtual.js';

export interface Gicv3TraceHooks {
  /** The ITS executed the command held in `cmd` (8 words, DW0 low first); `ok` false: ignored for an error. */
  itsCommand(cmd: Uint32Array, ok: boolean): void;
  /**
   * A GITS_TRANSLATER write (DeviceID, EventID) found `e` (null: no mapping, or the ITS is disabled); `pe` is the
   * collection's target for a physical LPI, -1 when its collection is unmapped or the event maps a vLPI.
   */
  itsTranslate(deviceId: number, eventId: number, e: IttEntry | null, pe: number): void;
  /** GICR_VPENDBASER.Valid changed on `pe`: vPE `vpeid` made resident, or non-resident (with DB, read-back PendingLast). */
  vpendbaser(pe: number, vpeid: number, valid: boolean, doorbell: boolean, pendingLast: boolean): void;
  /** The redistributor raised vPE `vpeid`'s default doorbell LPI `intid` for its vLPI `vintid`. */
  vpeDoorbell(pe: number, vpeid: number, intid: number, vintid: number): void;
  /** ICV_IAR1_EL1 on `pe` acknowledged the resident vPE's vLPI `vintid` (direct injection, no list register). */
  vlpiAcknowledge(pe: number, vpeid: number, vintid: number): void;
}
