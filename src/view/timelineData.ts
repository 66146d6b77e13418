/**
 * The timeline the page renders: lanes and columnar item arrays (so 100 k events stay compact and the browser can
 * binary-search them), built in node by timelineModel.ts and embedded in the page as JSON. Shared by the builder
 * and the browser code, so it holds types and constants only.
 */

export type LaneKind = 'check' | 'line' | 'its' | 'gic' | 'doorbell' | 'cpu' | 'vcpu' | 'vpe' | 'lr' | 'other';

/**
 * Top-to-bottom order of lane kinds inside a run: the direction an interrupt travels (an MSI through the ITS; a vLPI
 * for a non-resident vPE through its doorbell and a host CPU). A vCPU's vPE and list-register lanes sit under it.
 */
export const LANE_ORDER: readonly LaneKind[] = [
  'check',
  'line',
  'its',
  'gic',
  'doorbell',
  'cpu',
  'vcpu',
  'vpe',
  'lr',
  'other',
];

export interface Lane {
  readonly run: number;
  readonly kind: LaneKind;
  readonly label: string;
  /** Rows for nested slices (deeper slices share the last row). */
  readonly rows: number;
  /** Whether the lane holds slices; point events get a strip of their own above them then. */
  readonly slices: boolean;
}

/** A device asserting its line (src/trace/events.ts): where an IRQ starts, and each run's time 0. */
export const ASSERT_EVENT = 'device_assert';
/** The ITS translating a device's MSI write: where an MSI starts (each run's time 0 when it has no line). */
export const MSI_EVENT = 'its_translate';

/** Most rows a lane gets for nested slices. */
export const MAX_ROWS = 4;

/** Item styles, by index: the browser maps each to a colour and a shape. Slices first, then point events. */
export const STYLE_SLICE = 0;
export const STYLE_GUEST = 1;
export const STYLE_HANDLER = 2;
export const STYLE_LINE = 3;
export const STYLE_ACTIVE = 4;
export const STYLE_VIRQ = 5;
/** A GICv4.1 vPE resident on a PE (GICR_VPENDBASER.Valid). */
export const STYLE_RESIDENT = 6;
/** A point event of one interrupt's causal chain (it carries `seq`). */
export const STYLE_MARKER = 7;
/** A vLPI the guest acknowledged straight from the redistributor (no list register, no exit). */
export const STYLE_DIRECT_VLPI = 8;
/** A vPE's doorbell: raised by the redistributor, handled by KVM. */
export const STYLE_DOORBELL = 9;
export const STYLE_INSTANT = 10;
export const STYLE_CHECK_STEP = 11;
export const STYLE_CHECK_MARKED = 12;
export const STYLE_VIOLATION = 13;

/** Styles drawn as ticks across the whole lane rather than as slices in a row. */
export function isPointStyle(style: number): boolean {
  return style >= STYLE_MARKER;
}

export interface RunInfo {
  readonly label: string;
  /** Where the run came from (a file, or the scenario and mode). */
  readonly source: string;
  /** Its lanes are [firstLane, endLane). */
  readonly firstLane: number;
  readonly endLane: number;
  /**
   * Trace time (ns) of the run's time 0: its first IRQ (the first device assertion or MSI translation), so the runs stacked on one
   * axis start their first IRQs together; its first event when it has no IRQ. The run's item times are relative to it.
   */
  readonly originNs: number;
  readonly originIsIrq: boolean;
}

export interface CheckStep {
  readonly item: number;
  readonly index: number;
  readonly agent: string;
  readonly marked: boolean;
  readonly what: string;
}

export interface Violation {
  readonly run: number;
  readonly item: number;
  readonly invariant: string;
  readonly message: string;
}

export interface TimelineData {
  readonly version: 1;
  readonly title: string;
  readonly runs: readonly RunInfo[];
  readonly lanes: readonly Lane[];
  /** Interned item names. */
  readonly names: readonly string[];
  /** Items sorted by lane, then start, then longer first; lane `l` holds items [laneFirst[l], laneFirst[l + 1]). */
  readonly laneFirst: readonly number[];
  readonly itemLane: readonly number[];
  /** Start and duration in ns (duration 0: an instant). */
  readonly itemStart: readonly number[];
  readonly itemDur: readonly number[];
  readonly itemName: readonly number[];
  readonly itemStyle: readonly number[];
  /** Nesting depth among the lane's slices. */
  readonly itemDepth: readonly number[];
  /** The interrupt sequence number of a causal-chain event, else 0. */
  readonly itemSeq: readonly number[];
  /** The event's fields, one `key=value` per line. */
  readonly itemArgs: readonly string[];
  /** Causal chains (one per interrupt and run), sorted by their first item's start: chain `c` is flowItems[flowFirst[c] .. flowFirst[c + 1]). */
  readonly flowFirst: readonly number[];
  readonly flowItems: readonly number[];
  readonly flowStart: readonly number[];
  readonly flowEnd: readonly number[];
  readonly checkSteps: readonly CheckStep[];
  readonly violations: readonly Violation[];
  readonly startNs: number;
  readonly endNs: number;
}
