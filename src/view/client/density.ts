/**
 * Zoomed out, a lane is drawn as density instead of one bar per event: per bucket of a few pixels, the number of
 * IRQs asserted on a device line's lane, or of point events on any other (a bar chart in the lane's strip) and the share of the bucket's time its
 * outermost slices cover, by style (time in guest mode, in the host IRQ handler, line high, INTID active), stacked.
 * Both come from per-lane sorted columns with prefix sums, so a bucket costs a few binary searches, not its events.
 */
import { ASSERT_EVENT, isPointStyle, STYLE_CHECK_MARKED, STYLE_MARKER, type TimelineData } from '../timelineData.js';
import { lowerBound, upperBound } from './search.js';

export interface LaneDensity {
  /** Starts of the lane's point events, sorted. */
  readonly points: Float64Array;
  /** Starts of the lane's IRQ assertions (a device line's lane): what its strip counts, when it has some. */
  readonly irqs: Float64Array;
  /** The lane's outermost (depth 0) slices, disjoint and sorted. */
  readonly sliceStart: Float64Array;
  readonly sliceEnd: Float64Array;
  readonly sliceStyle: Uint8Array;
  /** Styles among those slices, and per style the prefix sums of their durations (cum[s][j]: slices [0, j)). */
  readonly styles: readonly number[];
  readonly cum: readonly Float64Array[];
  /** Items drawn one by one even zoomed out: checker steps that matter and violations. */
  readonly always: readonly number[];
}

/** Width of a density bucket, in pixels. */
export const BUCKET_PX = 3;
/** A lane is drawn as density when its visible events are closer than this many pixels apart on average. */
export const DENSE_SPACING_PX = 4;

export function densityIndex(d: TimelineData): LaneDensity[] {
  const out: LaneDensity[] = [];
  const assert = d.names.indexOf(ASSERT_EVENT);
  for (let l = 0; l < d.lanes.length; l++) {
    const a = d.laneFirst[l]!;
    const b = d.laneFirst[l + 1]!;
    // one pass to size the columns, one to fill them
    let np = 0;
    let ns = 0;
    let present = 0;
    for (let i = a; i < b; i++) {
      const style = d.itemStyle[i]!;
      if (isPointStyle(style)) np++;
      else if (d.itemDepth[i] === 0) {
        ns++;
        present |= 1 << style;
      }
    }
    const styles: number[] = [];
    for (let s = 0; s < STYLE_MARKER; s++) if (present & (1 << s)) styles.push(s);
    const slot = new Int8Array(STYLE_MARKER).fill(-1);
    styles.forEach((s, k) => {
      slot[s] = k;
    });
    const points = new Float64Array(np);
    const sliceStart = new Float64Array(ns);
    const sliceEnd = new Float64Array(ns);
    const sliceStyle = new Uint8Array(ns);
    const cum = styles.map(() => new Float64Array(ns + 1));
    const always: number[] = [];
    const irqs: number[] = [];
    let p = 0;
    let j = 0;
    for (let i = a; i < b; i++) {
      const style = d.itemStyle[i]!;
      if (isPointStyle(style)) {
        points[p++] = d.itemStart[i]!;
        if (d.itemName[i] === assert) irqs.push(d.itemStart[i]!);
        if (style >= STYLE_CHECK_MARKED) always.push(i);
      } else if (d.itemDepth[i] === 0) {
        sliceStart[j] = d.itemStart[i]!;
        sliceEnd[j] = d.itemStart[i]! + d.itemDur[i]!;
        sliceStyle[j] = style;
        for (let k = 0; k < styles.length; k++) cum[k]![j + 1] = cum[k]![j]!;
        cum[slot[style]!]![j + 1]! += d.itemDur[i]!;
        j++;
      }
    }
    out.push({ points, irqs: Float64Array.from(irqs), sliceStart, sliceEnd, sliceStyle, styles, cum, always });
  }
  return out;
}

/** Values of a sorted column in [t0, t1). */
export function countIn(sorted: Float64Array, t0: number, t1: number): number {
  const n = sorted.length;
  return lowerBound(sorted, t1, 0, n) - lowerBound(sorted, t0, 0, n);
}

/** What a lane's strip counts per bucket: IRQs asserted on a device line's lane, else every point event. */
export const stripSeries = (ld: LaneDensity): Float64Array => (ld.irqs.length > 0 ? ld.irqs : ld.points);

/** Time before t covered by the lane's outermost slices of style ld.styles[k]. */
export function coveredBefore(ld: LaneDensity, k: number, t: number): number {
  const j = upperBound(ld.sliceStart, t, 0, ld.sliceStart.length); // slices starting at or before t
  let c = ld.cum[k]![j]!;
  // only the last of them can still be open at t
  if (j > 0 && ld.sliceStyle[j - 1] === ld.styles[k] && ld.sliceEnd[j - 1]! > t) c -= ld.sliceEnd[j - 1]! - t;
  return c;
}

/** A bucket in words (the page's tooltip over a density lane): its events and the time share of each slice style. */
export function bucketSummary(ld: LaneDensity, t0: number, t1: number, styleName: (style: number) => string): string {
  const n = countIn(ld.points, t0, t1);
  const parts = [`${n} event${n === 1 ? '' : 's'}`];
  if (ld.irqs.length > 0) parts.unshift(`${countIn(ld.irqs, t0, t1)} IRQs asserted`);
  ld.styles.forEach((style, k) => {
    const share = (coveredBefore(ld, k, t1) - coveredBefore(ld, k, t0)) / (t1 - t0);
    parts.push(`${styleName(style)} ${(share * 100).toFixed(1)}%`);
  });
  return parts.join(', ');
}
