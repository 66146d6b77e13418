/** Binary searches over the timeline's sorted columns (pure: unit-tested in node). */

/** First index in [lo, hi) whose value is > x (values sorted ascending). */
export function upperBound(values: ArrayLike<number>, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in [lo, hi) whose value is >= x (values sorted ascending). */
export function lowerBound(values: ArrayLike<number>, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Running maximum of end times inside each segment [first[k], first[k + 1]): with starts sorted, the items that
 * can overlap [t0, t1] are those from lowerBound(runningMaxEnd, t0) to upperBound(start, t1).
 */
export function runningMaxEnd(
  start: ArrayLike<number>,
  dur: ArrayLike<number>,
  first: ArrayLike<number>,
  segments: number,
): Float64Array {
  const out = new Float64Array(start.length);
  for (let k = 0; k < segments; k++) {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = first[k]!; i < first[k + 1]!; i++) {
      const e = start[i]! + dur[i]!;
      if (e > m) m = e;
      out[i] = m;
    }
  }
  return out;
}

/** The index range [lo, hi) of segment k's items that may overlap [t0, t1]. */
export function visibleRange(
  start: ArrayLike<number>,
  maxEnd: ArrayLike<number>,
  first: ArrayLike<number>,
  k: number,
  t0: number,
  t1: number,
): [number, number] {
  const a = first[k]!;
  const b = first[k + 1]!;
  const hi = upperBound(start, t1, a, b);
  return [lowerBound(maxEnd, t0, a, hi), hi];
}
