/**
 * The metrics of one run (one mode of a scenario): a record with stable field names (docs/CLI.md "JSON output"
 * documents each), a collector the runner feeds during the run, a latency recorder that allocates nothing per sample,
 * and the formatters for the compare table and JSON.
 */
import type { Mode, ScenarioExpectation } from './schema.js';

export const EXIT_REASONS = ['irq', 'maintenance', 'ipi', 'wfx', 'hvc', 'dabt', 'sysreg', 'other'] as const;
/**
 * Why a vCPU left the guest: a physical device/host IRQ ('irq'), the vGIC maintenance interrupt ('maintenance'), a
 * host IPI kicking the vCPU ('ipi'), a trapped WFI/WFE ('wfx'), a hypercall ('hvc'), a stage-2 data abort — MMIO to
 * an emulated device such as the vGIC distributor ('dabt'), a trapped system register ('sysreg'), anything else.
 */
export type ExitReason = (typeof EXIT_REASONS)[number];

export const PROBE_NAMES = ['hypercall', 'virqCompletion', 'ioLatencyIn', 'ioLatencyOut'] as const;
/**
 * Microbenchmark probes (ISCA 2016 Table II / ASPLOS 2014 Table 3 terms):
 * - hypercall: guest HVC issued → guest resumes after it (a null hypercall round trip);
 * - virqCompletion: guest GICV_IAR read starts → GICV_EOIR write done (ack + EOI, no handler body);
 * - ioLatencyIn: host thread writes the irqfd eventfd → guest vector entry for that vIRQ;
 * - ioLatencyOut: guest MMIO doorbell write → the host side (ioeventfd waiter or VMM) sees it.
 */
export type ProbeName = (typeof PROBE_NAMES)[number];

export interface Quantiles {
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * A latency distribution: sample count, and mean/p50/p99/max in cycles and in ns (at the run's clock); null when
 * there were no samples (a figure of 0 would read as "instant").
 */
export interface LatencySummary {
  count: number;
  cycles: Quantiles | null;
  ns: Quantiles | null;
}

/** Per passed-through line (device IRQ index). */
export interface LineMetrics {
  device: string;
  index: number;
  intid: number;
  raised: number;
  delivered: number;
  coalesced: number;
  orphaned: number;
  lost: number;
  latencyToGuest: LatencySummary;
}

export interface Metrics {
  mode: Mode;
  /** Simulated time of the run (to quiescence after teardown) and the clock. */
  simulated: { cycles: number; ns: number; hz: number };
  irqs: {
    /** Device events: line assertions (via: line) or eventfd writes (via: eventfd). */
    raised: number;
    /** Guest handler entries for a passed-through vIRQ. */
    delivered: number;
    /** Raises merged into an interrupt already pending (legal: a GIC latches one pending state per INTID). */
    coalesced: number;
    /**
     * Raises while no VM owned the line (before its irqfd was set up, or after teardown/close released it): the
     * scenario accounts for them, they are not lost.
     */
    orphaned: number;
    /** raised − delivered − coalesced − orphaned: events the guest never saw. Must be 0. */
    lost: number;
    /** Guest handler entries beyond one per raise (delivered twice). Must be 0. */
    duplicates: number;
    /** Physical INTIDs still active in the GIC at the end. Must be 0. */
    leftActive: number;
    /** Host IRQs still disabled/VFIO-masked at the end while nobody will unmask them. Must be 0. */
    leftMasked: number;
  };
  exits: {
    total: number;
    byReason: Record<ExitReason, number>;
    /** Exits divided by irqs.delivered (null when nothing was delivered). */
    perIrq: { total: number | null; byReason: Record<ExitReason, number | null> };
  };
  /**
   * CPU cycles the physical CPUs spent outside the guest and outside idle — host kernel, hypervisor (world switch,
   * vGIC), VMM and kernel threads — in total, divided by irqs.delivered (null when nothing was delivered), and per
   * physical CPU; `livelocked` counts the CPUs that spent at least LIVELOCK_SHARE of the run there (a host CPU
   * that never got back to its guest or its idle loop: an interrupt storm on the irqfd path).
   */
  hostCycles: { total: number; perIrq: number | null; byCpu: number[]; livelocked: number };
  latency: {
    /** Line asserted (or eventfd written) → guest handler entry. */
    toGuest: LatencySummary;
    /**
     * Line asserted → physical deactivation of the INTID (host DIR, or guest EOI on a HW list register). Not the
     * moment the line can fire again on the normal path, where the host deactivates early but keeps the IRQ
     * masked until the VFIO unmask: that is `toRearm`.
     */
    toDeactivation: LatencySummary;
    /**
     * Line asserted → the line can fire again: the INTID deactivated and the host IRQ enabled (after the VFIO unmask
     * when the normal level path masked it; the deactivation itself when nothing masked it).
     */
    toRearm: LatencySummary;
  };
  counters: {
    /** eventfd_signal calls on irqfd trigger eventfds and resamplefds. */
    eventfdSignals: number;
    /** VFIO unmasks of a host IRQ (enable_irq via the unmask eventfd or SET_IRQS UNMASK). */
    unmasks: number;
    /** vGIC maintenance interrupts taken. */
    maintenanceIrqs: number;
    /** irqfd resampler notifications (ack of a level vIRQ → line lowered, resamplefd signalled). */
    resamples: number;
    /** vIRQ injections by KVM: kvm_set_irq rising on a wired line's route, LPIs the vITS makes pending for an MSI. */
    injections: number;
    /** Times a vCPU entered with more pending vIRQs than list registers. */
    lrOverflows: number;
  };
  /** Microbenchmark probes that recorded samples in this run (see ProbeName). */
  probes: Partial<Record<ProbeName, LatencySummary>>;
  lines: LineMetrics[];
}

// ---------------------------------------------------------------------------------------------------------------
// Latency recorder

/**
 * Samples in a Float64Array that doubles when full (amortised: no allocation per sample after warm-up); quantiles by
 * sorting a copy once at the end. Percentiles use the nearest-rank method: pN = the ceil(N/100 · n)-th smallest.
 */
export class LatencyRecorder {
  private buf: Float64Array;
  private n = 0;
  private sum = 0;
  private maxSeen = 0;

  constructor(initialCapacity = 1024) {
    this.buf = new Float64Array(Math.max(1, initialCapacity));
  }

  get count(): number {
    return this.n;
  }

  get capacity(): number {
    return this.buf.length;
  }

  record(cycles: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = cycles;
    this.sum += cycles;
    if (cycles > this.maxSeen) this.maxSeen = cycles;
  }

  reset(): void {
    this.n = 0;
    this.sum = 0;
    this.maxSeen = 0;
  }

  summary(hz: number): LatencySummary {
    const n = this.n;
    if (n === 0) return { count: 0, cycles: null, ns: null };
    const sorted = this.buf.slice(0, n).sort();
    const rank = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
    const cycles: Quantiles = { mean: round(this.sum / n, 2), p50: rank(50), p99: rank(99), max: this.maxSeen };
    const toNs = (c: number) => round((c * 1e9) / hz, 3);
    return {
      count: n,
      cycles,
      ns: { mean: toNs(cycles.mean), p50: toNs(cycles.p50), p99: toNs(cycles.p99), max: toNs(cycles.max) },
    };
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A CPU spending at least this share of the run in the host is livelocked (Metrics.hostCycles.livelocked). */
export const LIVELOCK_SHARE = 0.99;

function zeroReasons(): Record<ExitReason, number> {
  return { irq: 0, maintenance: 0, ipi: 0, wfx: 0, hvc: 0, dabt: 0, sysreg: 0, other: 0 };
}

// ---------------------------------------------------------------------------------------------------------------
// Collector

export interface LineSpec {
  device: string;
  index: number;
  intid: number;
}

/**
 * What the runner updates while a run goes. Counters are plain fields (`c.counters.unmasks++`); line-indexed calls
 * take the line's position in the `lines` given to the constructor. Nothing here allocates per event.
 */
export class MetricsCollector {
  readonly counters: Metrics['counters'] = {
    eventfdSignals: 0,
    unmasks: 0,
    maintenanceIrqs: 0,
    resamples: 0,
    injections: 0,
    lrOverflows: 0,
  };
  readonly exitsByReason: Record<ExitReason, number> = zeroReasons();
  private readonly raisedBy: Float64Array;
  private readonly deliveredBy: Float64Array;
  private readonly coalescedBy: Float64Array;
  private readonly orphanedBy: Float64Array;
  private readonly duplicatesBy: Float64Array;
  private readonly toGuestBy: LatencyRecorder[];
  private readonly toGuest = new LatencyRecorder(4096);
  private readonly toDeactivation = new LatencyRecorder(4096);
  private readonly toRearm = new LatencyRecorder(4096);
  private readonly probes = new Map<ProbeName, LatencyRecorder>();

  constructor(
    readonly mode: Mode,
    readonly hz: number,
    readonly lines: readonly LineSpec[],
  ) {
    const n = lines.length;
    this.raisedBy = new Float64Array(n);
    this.deliveredBy = new Float64Array(n);
    this.coalescedBy = new Float64Array(n);
    this.orphanedBy = new Float64Array(n);
    this.duplicatesBy = new Float64Array(n);
    this.toGuestBy = lines.map(() => new LatencyRecorder(1024));
  }

  exit(reason: ExitReason): void {
    this.exitsByReason[reason]++;
  }

  raised(line: number): void {
    this.raisedBy[line]!++;
  }

  coalesced(line: number): void {
    this.coalescedBy[line]!++;
  }

  /** A raise while no VM owns the line (see Metrics.irqs.orphaned). */
  orphaned(line: number): void {
    this.orphanedBy[line]!++;
  }

  /** A guest handler entry; `latency` = cycles since the raise it answers. */
  delivered(line: number, latency: number): void {
    this.deliveredBy[line]!++;
    this.toGuest.record(latency);
    this.toGuestBy[line]!.record(latency);
  }

  duplicate(line: number): void {
    this.duplicatesBy[line]!++;
  }

  /** The physical INTID deactivated; `latency` = cycles since the raise. */
  deactivated(latency: number): void {
    this.toDeactivation.record(latency);
  }

  /** The line can fire again (deactivated, and unmasked if it was masked); `latency` = cycles since the raise. */
  rearmed(latency: number): void {
    this.toRearm.record(latency);
  }

  probe(name: ProbeName, cycles: number): void {
    let r = this.probes.get(name);
    if (!r) {
      r = new LatencyRecorder(1024);
      this.probes.set(name, r);
    }
    r.record(cycles);
  }

  /**
   * `hostByCpu`: host cycles of each physical CPU over `windowCycles`, the span they were counted in (livelock is a
   * share of it); without them no CPU is judged.
   */
  finish(end: {
    simCycles: number;
    hostCycles: number;
    hostByCpu?: readonly number[];
    windowCycles?: number;
    leftActive: number;
    leftMasked: number;
  }): Metrics {
    const hostByCpu = end.hostByCpu ?? [];
    const window = end.windowCycles ?? 0;
    const hz = this.hz;
    const lines: LineMetrics[] = this.lines.map((l, i) => {
      const raised = this.raisedBy[i]!;
      const delivered = this.deliveredBy[i]!;
      const coalesced = this.coalescedBy[i]!;
      const orphaned = this.orphanedBy[i]!;
      return {
        ...l,
        raised,
        delivered,
        coalesced,
        orphaned,
        lost: Math.max(0, raised - delivered - coalesced - orphaned),
        latencyToGuest: this.toGuestBy[i]!.summary(hz),
      };
    });
    const sum = (f: (l: LineMetrics) => number) => lines.reduce((a, l) => a + f(l), 0);
    const delivered = sum((l) => l.delivered);
    const total = EXIT_REASONS.reduce((a, r) => a + this.exitsByReason[r], 0);
    const per = (x: number) => (delivered > 0 ? round(x / delivered, 4) : null);
    const perReason = {} as Record<ExitReason, number | null>;
    for (const r of EXIT_REASONS) perReason[r] = per(this.exitsByReason[r]);
    const livelocked = hostByCpu.filter((c) => window > 0 && c >= LIVELOCK_SHARE * window);
    const probes: Metrics['probes'] = {};
    for (const name of PROBE_NAMES) {
      const r = this.probes.get(name);
      if (r && r.count > 0) probes[name] = r.summary(hz);
    }
    return {
      mode: this.mode,
      simulated: { cycles: end.simCycles, ns: round((end.simCycles * 1e9) / hz, 3), hz },
      irqs: {
        raised: sum((l) => l.raised),
        delivered,
        coalesced: sum((l) => l.coalesced),
        orphaned: sum((l) => l.orphaned),
        lost: sum((l) => l.lost),
        duplicates: this.duplicatesBy.reduce((a, x) => a + x, 0),
        leftActive: end.leftActive,
        leftMasked: end.leftMasked,
      },
      exits: { total, byReason: { ...this.exitsByReason }, perIrq: { total: per(total), byReason: perReason } },
      hostCycles: {
        total: end.hostCycles,
        perIrq: per(end.hostCycles),
        byCpu: [...hostByCpu],
        livelocked: livelocked.length,
      },
      latency: {
        toGuest: this.toGuest.summary(hz),
        toDeactivation: this.toDeactivation.summary(hz),
        toRearm: this.toRearm.summary(hz),
      },
      counters: { ...this.counters },
      probes,
      lines,
    };
  }
}

/** A Metrics record of a run that did nothing (the shape every run has). */
export function emptyMetrics(mode: Mode, hz: number): Metrics {
  return new MetricsCollector(mode, hz, []).finish({ simCycles: 0, hostCycles: 0, leftActive: 0, leftMasked: 0 });
}

// ---------------------------------------------------------------------------------------------------------------
// Metric paths and expectations

/** The value at a dotted path ("exits.perIrq.total", "probes.hypercall.cycles.mean"), if it is a number. */
export function metricAt(m: Metrics, path: string): number | undefined {
  let v: unknown = m;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'number' ? v : undefined;
}

/** A run with one sample of everything: every numeric field present, none null (the template of metric paths). */
const TEMPLATE: Metrics = (() => {
  const c = new MetricsCollector('normal', 1e9, [{ device: 'd', index: 0, intid: 32 }]);
  c.raised(0);
  c.delivered(0, 1);
  c.deactivated(1);
  c.rearmed(1);
  for (const p of PROBE_NAMES) c.probe(p, 1);
  return c.finish({ simCycles: 1, hostCycles: 1, hostByCpu: [1], windowCycles: 1, leftActive: 0, leftMasked: 0 });
})();

/** Whether `path` names a numeric field of every Metrics record (probes included). */
export function isMetricPath(path: string): boolean {
  return metricAt(TEMPLATE, path) !== undefined;
}

/** All numeric metric paths, for help and error messages. */
export function metricPaths(): string[] {
  const out: string[] = [];
  const walk = (v: unknown, prefix: string) => {
    if (typeof v === 'number') out.push(prefix);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v))
      for (const [k, x] of Object.entries(v)) walk(x, prefix ? `${prefix}.${k}` : k);
  };
  walk(TEMPLATE, '');
  return out;
}

export interface ExpectationResult {
  metric: string;
  mode: Mode;
  /** The expected figure; undefined when skipped. */
  expected?: number;
  actual?: number;
  tolerance: number;
  ok: boolean;
  /** Why it was not checked (the profile has no such anchor, the metric has no samples). */
  skipped?: string;
  /** Where the expected figure comes from (the anchor's citation). */
  source?: string;
}

/**
 * Checks a scenario's `expect` entries against the metrics of each mode run. `anchors` are the cost profile's
 * published figures; an anchor the profile lacks is skipped, not failed.
 */
export function checkExpectations(
  expect: readonly ScenarioExpectation[],
  runs: readonly Metrics[],
  anchors: Readonly<Record<string, { cycles: number; source: string }>>,
): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  for (const e of expect) {
    for (const m of runs) {
      if (e.mode !== undefined && e.mode !== m.mode) continue;
      const tolerance = e.tolerance ?? (e.anchor !== undefined ? 0.1 : 0);
      const base = { metric: e.metric, mode: m.mode, tolerance };
      let expected = e.value;
      let source: string | undefined;
      if (e.anchor !== undefined) {
        const a = anchors[e.anchor];
        if (!a) {
          out.push({ ...base, ok: true, skipped: `the cost profile has no '${e.anchor}' figure` });
          continue;
        }
        expected = a.cycles;
        source = a.source;
      }
      const actual = metricAt(m, e.metric);
      if (actual === undefined) {
        out.push({ ...base, expected, ok: true, skipped: 'no samples in this run', source });
        continue;
      }
      const exp = expected ?? 0;
      const ok = Math.abs(actual - exp) <= tolerance * Math.abs(exp) + 1e-9;
      out.push({ ...base, expected: exp, actual, ok, ...(source !== undefined ? { source } : {}) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/** A thousands-separated integer or a fixed-decimal number, for tables. */
export function fmtNum(x: number, decimals = 0): string {
  if (!Number.isFinite(x)) return String(x);
  const s = x.toFixed(decimals);
  const [int, frac] = s.split('.');
  const neg = int!.startsWith('-');
  const digits = neg ? int!.slice(1) : int!;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg ? '-' : ''}${grouped}${frac !== undefined ? `.${frac}` : ''}`;
}

export type Row = readonly [label: string, ...cells: string[]] | null;

/** Renders rows as aligned columns: the label left-aligned, the cells right-aligned; null is a blank line. */
export function renderTable(header: readonly string[], rows: readonly Row[]): string {
  const widths = header.map((h) => h.length);
  for (const r of rows) {
    if (!r) continue;
    for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i] ?? 0, r[i]!.length);
  }
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]!)))
      .join('   ')
      .trimEnd();
  const out = [line(header)];
  for (const r of rows) out.push(r ? line(r) : '');
  return `${out.join('\n')}\n`;
}

/** A table cell: the figure, or "—" when the run has no sample of it (never a 0 that reads as a measurement). */
export function fmtCell(x: number | null | undefined, decimals = 0): string {
  return x === null || x === undefined ? '—' : fmtNum(x, decimals);
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || !(b > 0)) return '';
  return `${(a / b).toFixed(2)}×`;
}

/** Footnote of the `assert → deactivation*` row. */
export const DEACTIVATION_NOTE =
  '* deactivation alone: the normal path deactivates the INTID at the host EOI, before the guest runs, but a level\n' +
  '  IRQ stays masked until the VFIO unmask; "re-armed" is when each path can take the next interrupt.';

/**
 * The compare table: one column per run — per mode (normal, forwarded), with a forwarded/normal ratio column when
 * both ran, or per compare path (`names`). A figure a run has no sample of prints "—".
 */
export function formatMetricsTable(runs: readonly Metrics[], names?: readonly string[]): string {
  const both = names === undefined && runs.length === 2 && runs[0]!.mode === 'normal' && runs[1]!.mode === 'forwarded';
  const header = ['', ...(names ?? runs.map((m) => m.mode)), ...(both ? ['fwd/normal'] : [])];
  const row = (label: string, f: (m: Metrics) => number | null | undefined, decimals = 0, withRatio = false): Row => {
    const cells = runs.map((m) => fmtCell(f(m), decimals));
    if (both) cells.push(withRatio ? ratio(f(runs[1]!), f(runs[0]!)) : '');
    return [label, ...cells];
  };
  const rows: Row[] = [
    row('IRQs raised', (m) => m.irqs.raised),
    row('IRQs delivered to the guest', (m) => m.irqs.delivered),
    row('  coalesced (merged, pending)', (m) => m.irqs.coalesced),
    row('  orphaned (no VM owned line)', (m) => m.irqs.orphaned),
    row('IRQs lost', (m) => m.irqs.lost),
    [
      'left active / masked',
      ...runs.map((m) => `${fmtNum(m.irqs.leftActive)} / ${fmtNum(m.irqs.leftMasked)}`),
      ...(both ? [''] : []),
    ],
    null,
    row('exits per IRQ', (m) => m.exits.perIrq.total, 2, true),
  ];
  for (const r of EXIT_REASONS) {
    if (runs.some((m) => m.exits.byReason[r] > 0)) rows.push(row(`  ${r}`, (m) => m.exits.perIrq.byReason[r], 2));
  }
  rows.push(row('host cycles per IRQ', (m) => m.hostCycles.perIrq, 0, true));
  if (runs.some((m) => m.hostCycles.livelocked > 0))
    rows.push(row(`CPUs livelocked (≥ ${LIVELOCK_SHARE * 100} % host)`, (m) => m.hostCycles.livelocked));
  const lat = (l: (m: Metrics) => LatencySummary, q: keyof Quantiles) => (m: Metrics) => l(m).ns?.[q];
  const toGuest = (m: Metrics) => m.latency.toGuest;
  const toDeact = (m: Metrics) => m.latency.toDeactivation;
  const toRearm = (m: Metrics) => m.latency.toRearm;
  rows.push(
    null,
    row('assert → guest handler, ns  mean', lat(toGuest, 'mean'), 1, true),
    row('                            p50', lat(toGuest, 'p50'), 1, true),
    row('                            p99', lat(toGuest, 'p99'), 1, true),
    row('                            max', lat(toGuest, 'max'), 1, true),
    row('assert → deactivation*, ns  mean', lat(toDeact, 'mean'), 1, true),
    row('                            p99', lat(toDeact, 'p99'), 1, true),
    row('assert → re-armed, ns       mean', lat(toRearm, 'mean'), 1, true),
    row('  (deactivated and unmasked) p99', lat(toRearm, 'p99'), 1, true),
    null,
    row('eventfd signals', (m) => m.counters.eventfdSignals),
    row('VFIO unmasks', (m) => m.counters.unmasks),
    row('maintenance IRQs', (m) => m.counters.maintenanceIrqs),
    row('resamples', (m) => m.counters.resamples),
  );
  if (runs.some((m) => m.counters.lrOverflows > 0)) rows.push(row('LR overflows', (m) => m.counters.lrOverflows));
  const probeNames = PROBE_NAMES.filter((p) => runs.some((m) => m.probes[p]));
  if (probeNames.length > 0) rows.push(null);
  for (const p of probeNames) {
    rows.push(row(`${p}, cycles  mean`, (m) => m.probes[p]?.cycles?.mean, 0));
    rows.push(row(`${' '.repeat(p.length)}          p99`, (m) => m.probes[p]?.cycles?.p99, 0));
  }
  return `${renderTable(header, rows)}\n${DEACTIVATION_NOTE}\n`;
}

/** JSON with a trailing newline, keys in the record's own (stable) order. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
