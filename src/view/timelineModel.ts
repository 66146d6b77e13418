/**
 * Chrome trace-event JSON → the view's timeline: one block of lanes per run (normal and forwarded stacked on one
 * time axis), items sorted for binary search, flow events turned into per-interrupt causal chains, and the checker's
 * schedule steps (`cat: "irqfwd.check"`) and violation collected for the counterexample panel.
 */
import { CHECK_CAT } from '../check/counterexampleTrace.js';
import { PID_HOST, PID_INTIDS, PID_ITS, PID_VCPUS, vcpuTid } from '../trace/chromeJsonWriter.js';
import type { ChromeEvent, ChromeTrace } from './chromeTrace.js';
import {
  ASSERT_EVENT,
  type CheckStep,
  LANE_ORDER,
  type Lane,
  type LaneKind,
  MAX_ROWS,
  MSI_EVENT,
  type RunInfo,
  STYLE_ACTIVE,
  STYLE_CHECK_MARKED,
  STYLE_CHECK_STEP,
  STYLE_DIRECT_VLPI,
  STYLE_DOORBELL,
  STYLE_GUEST,
  STYLE_HANDLER,
  STYLE_INSTANT,
  STYLE_LINE,
  STYLE_MARKER,
  STYLE_RESIDENT,
  STYLE_SLICE,
  STYLE_VIOLATION,
  STYLE_VIRQ,
  type TimelineData,
  type Violation,
} from './timelineData.js';

export interface TimelineRun {
  readonly label: string;
  readonly source: string;
  readonly trace: ChromeTrace;
}

const CHECK_TRACK = -1;

interface RawItem {
  lane: number;
  start: number;
  dur: number;
  name: number;
  style: number;
  seq: number;
  args: string;
  order: number;
  depth: number;
  check?: { index: number; agent: string; marked: boolean; what: string };
  violation?: { invariant: string; message: string };
}

interface RawLane {
  run: number;
  key: string;
  kind: LaneKind;
  label: string;
  tid: number;
  items: RawItem[];
}

const ns = (us: number | undefined): number => Math.round((us ?? 0) * 1000);

function newLane(run: number, key: string, kind: LaneKind, label: string, tid: number): RawLane {
  return { run, key, kind, label, tid, items: [] };
}

const vcpuOf = (label: string): number => Number(/^vCPU (\d+)/.exec(label)?.[1] ?? -1);

/** Kind order (LANE_ORDER), but each vCPU's vPE and list registers right under it; then by track id. */
function laneOrder(a: RawLane, b: RawLane): number {
  const rank = (l: RawLane): number => LANE_ORDER.indexOf(l.kind === 'lr' || l.kind === 'vpe' ? 'vcpu' : l.kind);
  return (
    rank(a) - rank(b) ||
    vcpuOf(a.label) - vcpuOf(b.label) ||
    LANE_ORDER.indexOf(a.kind) - LANE_ORDER.indexOf(b.kind) ||
    a.tid - b.tid
  );
}

/**
 * A lane for every vCPU the run mentions (its list registers, or guest mode on a CPU: `guest (vCPU n)`), even one
 * that took no interrupt, so a vCPU never loses its lane.
 */
function keepVcpuLanes(byKey: Map<string, RawLane>, run: number, names: readonly string[]): void {
  const seen = new Set<number>();
  for (const l of byKey.values()) {
    if (l.kind === 'vcpu' || l.kind === 'vpe' || l.kind === 'lr') seen.add(vcpuOf(l.label));
    if (l.kind === 'cpu')
      for (const it of l.items) {
        const m = /^guest \(vCPU (\d+)\)/.exec(names[it.name]!);
        if (m !== null) seen.add(Number(m[1]));
      }
  }
  for (const v of [...seen].sort((a, b) => a - b)) {
    const key = `${PID_VCPUS}:${vcpuTid(v)}`;
    if (v >= 0 && !byKey.has(key)) byKey.set(key, newLane(run, key, 'vcpu', `vCPU ${v}`, vcpuTid(v)));
  }
}

function laneKind(pid: number | undefined, name: string): LaneKind {
  if (/check/i.test(name)) return 'check'; // the counterexample's schedule track
  if (pid === PID_HOST) return name.startsWith('CPU') ? 'cpu' : 'other';
  if (pid === PID_VCPUS) return / LR\d+$/.test(name) ? 'lr' : / vPE$/.test(name) ? 'vpe' : 'vcpu';
  if (pid === PID_INTIDS) return / line$/.test(name) ? 'line' : 'gic';
  if (pid === PID_ITS) return name === 'ITS' ? 'its' : 'doorbell';
  return 'other';
}

function styleOf(e: ChromeEvent, seq: number): number {
  if (e.cat === CHECK_CAT)
    return e.name === 'check_violation'
      ? STYLE_VIOLATION
      : e.args?.marked === true
        ? STYLE_CHECK_MARKED
        : STYLE_CHECK_STEP;
  if (e.name === 'gic_unpredictable') return STYLE_VIOLATION; // what no-gic-unpredictable counts, where it happened
  if (e.name === 'gic_vlpi_iar') return STYLE_DIRECT_VLPI;
  if (e.name === 'gic_vpe_doorbell' || e.name === 'vgic_v4_doorbell') return STYLE_DOORBELL;
  if (e.ph !== 'X' && e.ph !== 'B') return seq > 0 ? STYLE_MARKER : STYLE_INSTANT;
  // an INTID's active slice starts with gic_iar and carries its seq, but it is a slice, not a marker
  if (e.name === 'active') return STYLE_ACTIVE;
  // the writer's point events with a seq are short "marker" slices named after the event (chromeJsonWriter.ts)
  if (seq > 0 && !e.name.includes(' ')) return STYLE_MARKER;
  if (e.name.startsWith('guest')) return STYLE_GUEST;
  if (e.name.startsWith('IRQ ')) return STYLE_HANDLER;
  if (e.name === 'line high') return STYLE_LINE;
  if (e.name.startsWith('vIRQ')) return STYLE_VIRQ;
  if (e.name === 'vPE resident') return STYLE_RESIDENT;
  return STYLE_SLICE;
}

function formatArgs(args: Readonly<Record<string, unknown>> | undefined): string {
  if (args === undefined) return '';
  const lines: string[] = [];
  for (const k of Object.keys(args)) {
    const v = args[k];
    lines.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return lines.join('\n');
}

function seqOf(e: ChromeEvent): number {
  const s = e.args?.seq;
  return typeof s === 'number' && s > 0 ? s : 0;
}

export function buildTimeline(title: string, runs: readonly TimelineRun[]): TimelineData {
  const names: string[] = [];
  const nameIds = new Map<string, number>();
  const intern = (s: string): number => {
    let id = nameIds.get(s);
    if (id === undefined) {
      id = names.length;
      names.push(s);
      nameIds.set(s, id);
    }
    return id;
  };
  const lanes: RawLane[] = [];
  const runInfos: RunInfo[] = [];
  interface RawFlow {
    run: number;
    seq: number;
    points: { lane: RawLane; ts: number }[];
  }
  const flows: RawFlow[] = [];
  let order = 0;

  const runLanes: Map<string, RawLane>[] = [];
  const origins: { ns: number; irq: boolean }[] = [];
  runs.forEach((run, r) => {
    const threadNames = new Map<string, string>();
    for (const e of run.trace.traceEvents)
      if (e.ph === 'M' && e.name === 'thread_name' && typeof e.args?.name === 'string')
        threadNames.set(`${e.pid}:${e.tid}`, e.args.name);
    const byKey = new Map<string, RawLane>();
    const laneOf = (e: ChromeEvent): RawLane => {
      // checker events without a track of their own go to one schedule lane
      const check = e.cat === CHECK_CAT && (e.pid === undefined || e.tid === undefined);
      const key = check ? 'check' : `${e.pid}:${e.tid}`;
      let l = byKey.get(key);
      if (l === undefined) {
        const label = check ? 'checker schedule' : (threadNames.get(key) ?? `pid ${e.pid} tid ${e.tid}`);
        l = newLane(r, key, check ? 'check' : laneKind(e.pid, label), label, check ? CHECK_TRACK : (e.tid ?? 0));
        byKey.set(key, l);
      }
      return l;
    };
    // tracks named by metadata get a lane even when empty (idle CPUs)
    for (const e of run.trace.traceEvents) if (e.ph === 'M' && e.name === 'thread_name') laneOf(e);
    const flowByKey = new Map<string, RawFlow>();
    const openB = new Map<RawLane, RawItem[]>();
    for (const e of run.trace.traceEvents) {
      switch (e.ph) {
        case 'X':
        case 'B':
        case 'i':
        case 'I':
        case 'n': {
          const lane = laneOf(e);
          const seq = seqOf(e);
          const item: RawItem = {
            lane: 0,
            start: ns(e.ts),
            dur: e.ph === 'X' ? Math.max(0, ns(e.dur)) : 0,
            name: intern(e.name),
            style: styleOf(e, seq),
            seq,
            args: formatArgs(e.args),
            order: order++,
            depth: 0,
          };
          if (e.cat === CHECK_CAT && e.name === 'check_step') {
            const a = e.args ?? {};
            item.check = {
              index: typeof a.index === 'number' ? a.index : 0,
              agent: String(a.agent ?? ''),
              marked: a.marked === true,
              what: String(a.what ?? ''),
            };
          } else if (e.cat === CHECK_CAT && e.name === 'check_violation') {
            const a = e.args ?? {};
            item.violation = { invariant: String(a.invariant ?? ''), message: String(a.message ?? '') };
          }
          lane.items.push(item);
          if (e.ph === 'B') {
            let s = openB.get(lane);
            if (s === undefined) {
              s = [];
              openB.set(lane, s);
            }
            s.push(item);
          }
          break;
        }
        case 'E': {
          const s = openB.get(laneOf(e));
          const b = s?.pop();
          if (b !== undefined) b.dur = Math.max(0, ns(e.ts) - b.start);
          break;
        }
        case 's':
        case 't':
        case 'f': {
          const key = `${e.cat}:${e.name}:${String(e.id)}`;
          let f = flowByKey.get(key);
          if (f === undefined) {
            f = { run: r, seq: typeof e.id === 'number' ? e.id : 0, points: [] };
            flowByKey.set(key, f);
            flows.push(f);
          }
          f.points.push({ lane: laneOf(e), ts: ns(e.ts) });
          break;
        }
        default:
      }
    }
    // the run's time 0: its first IRQ (the first device assertion or MSI translation, else the first causal chain),
    // else its first event
    const assert = intern(ASSERT_EVENT);
    const msi = intern(MSI_EVENT);
    let origin = Number.POSITIVE_INFINITY;
    for (const l of byKey.values())
      for (const it of l.items) if (it.name === assert || it.name === msi) origin = Math.min(origin, it.start);
    for (const f of flowByKey.values()) if (f.points.length > 1) origin = Math.min(origin, f.points[0]!.ts);
    const originIsIrq = origin !== Number.POSITIVE_INFINITY;
    if (!originIsIrq) for (const l of byKey.values()) for (const it of l.items) origin = Math.min(origin, it.start);
    if (origin === Number.POSITIVE_INFINITY) origin = 0;
    for (const l of byKey.values()) for (const it of l.items) it.start -= origin;
    for (const f of flowByKey.values()) for (const p of f.points) p.ts -= origin;
    origins.push({ ns: origin, irq: originIsIrq });
    keepVcpuLanes(byKey, r, names);
    runLanes.push(byKey);
  });
  // every run shows the union of the runs' tracks, so lanes line up between normal and forwarded
  for (const [r, byKey] of runLanes.entries())
    for (const other of runLanes)
      for (const [key, l] of other)
        if (l.kind !== 'check' && !byKey.has(key)) byKey.set(key, newLane(r, key, l.kind, l.label, l.tid));
  runLanes.forEach((byKey, r) => {
    const mine = [...byKey.values()].sort(laneOrder);
    const firstLane = lanes.length;
    lanes.push(...mine);
    const run = runs[r]!;
    runInfos.push({
      label: run.label,
      source: run.source,
      firstLane,
      endLane: lanes.length,
      originNs: origins[r]!.ns,
      originIsIrq: origins[r]!.irq,
    });
  });

  // items, lane by lane, sorted by start (longer first, so a parent precedes what it contains)
  const laneFirst: number[] = [];
  const items: RawItem[] = [];
  const outLanes: Lane[] = [];
  const laneIndex = new Map<RawLane, number>();
  lanes.forEach((l, li) => {
    laneIndex.set(l, li);
    laneFirst.push(items.length);
    l.items.sort((a, b) => a.start - b.start || b.dur - a.dur || a.order - b.order);
    const openEnds: number[] = [];
    let maxDepth = 0;
    let slices = false;
    for (const it of l.items) {
      it.lane = li;
      if (it.style < STYLE_MARKER) {
        while (openEnds.length > 0 && openEnds[openEnds.length - 1]! <= it.start) openEnds.pop();
        it.depth = openEnds.length;
        if (it.depth > maxDepth) maxDepth = it.depth;
        if (it.dur > 0) openEnds.push(it.start + it.dur);
        slices = true;
      }
      items.push(it);
    }
    outLanes.push({ run: l.run, kind: l.kind, label: laneLabel(l), rows: Math.min(maxDepth + 1, MAX_ROWS), slices });
  });
  laneFirst.push(items.length);

  // causal chains: each flow point binds to the item starting at its time on its lane (preferably a marker)
  const itemIndex = new Map<RawItem, number>();
  items.forEach((it, i) => {
    itemIndex.set(it, i);
  });
  const atTime = (lane: number, ts: number): number => {
    let lo = laneFirst[lane]!;
    let hi = laneFirst[lane + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (items[mid]!.start < ts) lo = mid + 1;
      else hi = mid;
    }
    let best = -1;
    for (let i = lo; i < laneFirst[lane + 1]! && items[i]!.start === ts; i++)
      if (best < 0 || items[i]!.style === STYLE_MARKER) best = i;
    return best;
  };
  const chains: { items: number[]; start: number; end: number }[] = [];
  for (const f of flows) {
    const chain: number[] = [];
    for (const p of f.points) {
      const i = atTime(laneIndex.get(p.lane)!, p.ts);
      if (i >= 0) chain.push(i);
    }
    if (chain.length < 2) continue;
    let start = Number.POSITIVE_INFINITY;
    let end = Number.NEGATIVE_INFINITY;
    for (const i of chain) {
      start = Math.min(start, items[i]!.start);
      end = Math.max(end, items[i]!.start + items[i]!.dur);
    }
    chains.push({ items: chain, start, end });
  }
  chains.sort((a, b) => a.start - b.start);
  const flowFirst: number[] = [];
  const flowItems: number[] = [];
  for (const c of chains) {
    flowFirst.push(flowItems.length);
    flowItems.push(...c.items);
  }
  flowFirst.push(flowItems.length);

  const checkSteps: CheckStep[] = [];
  const violations: Violation[] = [];
  let startNs = Number.POSITIVE_INFINITY;
  let endNs = Number.NEGATIVE_INFINITY;
  items.forEach((it, i) => {
    startNs = Math.min(startNs, it.start);
    endNs = Math.max(endNs, it.start + it.dur);
    if (it.check !== undefined) checkSteps.push({ item: i, ...it.check });
    if (it.violation !== undefined) violations.push({ run: outLanes[it.lane]!.run, item: i, ...it.violation });
  });
  checkSteps.sort((a, b) => a.index - b.index);
  if (items.length === 0) {
    startNs = 0;
    endNs = 1000;
  }
  if (endNs <= startNs) endNs = startNs + 1000;

  return {
    version: 1,
    title,
    runs: runInfos,
    lanes: outLanes,
    names,
    laneFirst,
    itemLane: items.map((it) => it.lane),
    itemStart: items.map((it) => it.start),
    itemDur: items.map((it) => it.dur),
    itemName: items.map((it) => it.name),
    itemStyle: items.map((it) => it.style),
    itemDepth: items.map((it) => it.depth),
    itemSeq: items.map((it) => it.seq),
    itemArgs: items.map((it) => it.args),
    flowFirst,
    flowItems,
    flowStart: chains.map((c) => c.start),
    flowEnd: chains.map((c) => c.end),
    checkSteps,
    violations,
    startNs,
    endNs,
  };
}

/** Lane labels a kernel engineer reads at a glance: the device behind a line, what a GIC lane shows. */
function laneLabel(l: RawLane): string {
  if (l.kind === 'line') {
    const dev = l.items.find((it) => it.args.includes('dev='))?.args.match(/^dev=(.*)$/m)?.[1];
    const label = intidClass(l.label);
    return dev !== undefined ? `${label} (${dev})` : label;
  }
  if (l.kind === 'gic') return `${intidClass(l.label)} state`;
  return l.label;
}

/** Names the class of a software-generated or private INTID in a lane label (GICv2: SGIs 0–15, PPIs 16–31). */
function intidClass(label: string): string {
  const m = /^INTID (\d+)/.exec(label);
  if (m === null) return label;
  const n = Number(m[1]);
  if (n < 16) return label.replace(m[0], `${m[0]} (SGI: IPI)`);
  if (n < 32) return label.replace(m[0], `${m[0]} (PPI)`);
  return label;
}
