/**
 * Statistics: fields that only count what happened, for metrics and reports — struct kvm_vcpu_stat, the vGIC's flush
 * and fold counts, VFIO's unmask count. Model code increments them and never decides on them; no invariant reads
 * them. Two states that differ only in statistics therefore behave alike, and the checker's state key leaves them out
 * (a view with `statistics: true`, src/sim/snapshot.ts), as it leaves out clocks and step counters. A field that some
 * code or invariant reads back (a delivery count an invariant compares, note_interrupt's irq_count) is state, not a
 * statistic. check/stateKey.test.ts scrambles every declared statistic of a machine and shows that nothing — the
 * invariants' verdicts, the steps that follow, the rest of the key — changes.
 */

/** Per prototype: the statistic fields its class declared, or 'all' for an object that is statistics only. */
const declared = new Map<object, readonly string[] | 'all'>();

/** Declare `fields` of `cls`'s objects statistics, or (no fields) the whole object; subclasses inherit it. */
export function declareStatistics(cls: { readonly prototype: object }, fields?: readonly string[]): void {
  declared.set(cls.prototype, fields === undefined ? 'all' : [...fields]);
}

/** The statistics of objects with prototype `proto`: those declared on it and on its ancestors. */
export function statisticsOf(proto: object): readonly string[] | 'all' | undefined {
  let out: string[] | undefined;
  for (let p: object | null = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    const d = declared.get(p);
    if (d === 'all') return 'all';
    if (d !== undefined) out = [...(out ?? []), ...d];
  }
  return out;
}
