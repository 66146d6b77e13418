/**
 * Chrome trace-event JSON (the "Trace Event Format" that chrome://tracing and ui.perfetto.dev open):
 * `{"traceEvents":[...],"displayTimeUnit":"ns","otherData":{...}}`, timestamps in microseconds.
 *
 * Tracks (metadata events name them and fix their order):
 * - process 1 "Host CPUs": a thread per CPU. Host IRQ handler slices (irq_handler_entry → exit), guest-mode slices
 *   (kvm_entry → kvm_exit), and the host-side events as instants.
 * - process 2 "vCPUs": a thread per vCPU (guest IRQ slices guest_irq_entry → guest_eoi, maintenance, HW
 *   deactivation) and a thread per list register (gic_lr_write).
 * - process 3 "INTIDs": per INTID a "line" thread (device_assert → device_deassert), a "GIC" thread (active from
 *   gic_iar to gic_dir or to the guest's HW deactivation).
 * - GICv4.1: per vCPU a "vPE" thread in process 2 ("vPE resident" slices from gic_vpendbaser Valid 1 to Valid 0, the
 *   direct vLPIs it acknowledged as gic_vlpi_iar), and process 4 "GIC ITS" with an "ITS" thread (its_cmd,
 *   its_translate) and a "vPE doorbells" thread (gic_vpe_doorbell, vgic_v4_doorbell); only when such events exist.
 *
 * Slices are written as complete events (`ph:"X"` with `dur`); the writer pairs begins and ends per track with a
 * stack, so slices on a track always nest (an end closes anything opened above its begin; what is still open at
 * the end of the trace closes there). An event carrying an interrupt sequence number (`seq` > 0) becomes a short
 * "marker" slice on its track, clamped so it ends before anything else happens on that track, and all markers of
 * one seq are chained by flow events (`ph:"s"`, `"t"`, `"f"` with `"bp":"e"`, one `id`, one name and category —
 * Perfetto keys v1 flows on all three) so the viewer draws the interrupt's journey as arrows.
 */
import { type EventDef, type FieldValue, MAX_ARGS } from './events.js';
import { cyclesToNs, type TraceSource } from './textWriter.js';

export interface ChromeJsonOptions {
  /** Clock rate in Hz: cycles → ns. */
  hz: number;
  /** Host CPUs to create tracks for even when idle; default: highest CPU in the records + 1. */
  cpus?: number;
  /** Longest duration of a marker slice, in ns (default 20). */
  markerNs?: number;
}

export const PID_HOST = 1;
export const PID_VCPUS = 2;
export const PID_INTIDS = 3;
export const PID_ITS = 4;

export const cpuTid = (cpu: number): number => 100 + cpu;
export const vcpuTid = (vcpu: number): number => 10000 + vcpu;
export const lrTid = (vcpu: number, lr: number): number => 20000 + vcpu * 64 + lr;
/** Above every LR track (KVM_MAX_VCPUS 512 × 64), below the INTID tracks. */
export const vpeTid = (vcpu: number): number => 60000 + vcpu;
export const ITS_TID = 1000;
export const DOORBELL_TID = 1001;
export const INTID_LINE = 0;
export const INTID_GIC = 1;
export const intidTid = (intid: number, kind: number): number => 100000 + intid * 4 + kind;

/** Category and name shared by every flow event (Perfetto matches v1 flow phases on id, cat and name). */
export const FLOW_CAT = 'irqfwd.flow';
export const FLOW_NAME = 'irq';

const GIC_SPURIOUS = 1023;

interface Track {
  readonly pid: number;
  readonly tid: number;
  readonly name: string;
}

interface Open {
  readonly key: string;
  readonly name: string;
  readonly cat: string;
  readonly start: bigint;
  readonly args: Record<string, unknown>;
}

interface Out {
  readonly ts: bigint;
  /** 0 slices, 1 instants, 2 flows: at equal times a flow follows the slice it binds to. */
  readonly rank: number;
  readonly dur: bigint;
  readonly order: number;
  readonly obj: Record<string, unknown>;
}

interface Marker {
  readonly tid: number;
  readonly ts: bigint;
  readonly seq: number;
  readonly name: string;
  readonly cat: string;
  readonly args: Record<string, unknown>;
}

function usFromNs(ns: bigint): number {
  return Number(ns) / 1000;
}

function jsonValue(v: FieldValue): unknown {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}

export function writeChromeJson(src: TraceSource, opts: ChromeJsonOptions): string {
  const { ring, events } = src;
  const markerNs = BigInt(opts.markerNs ?? 20);
  const tracks = new Map<number, Track>();
  const stacks = new Map<number, Open[]>();
  const boundaries = new Map<number, bigint[]>();
  const outs: Out[] = [];
  const markers: Marker[] = [];
  let order = 0;

  const track = (pid: number, tid: number, name: string): number => {
    if (!tracks.has(tid)) tracks.set(tid, { pid, tid, name });
    return tid;
  };
  const cpuTrack = (cpu: number): number => track(PID_HOST, cpuTid(cpu), `CPU ${cpu}`);
  const vcpuTrack = (v: number): number => track(PID_VCPUS, vcpuTid(v), `vCPU ${v}`);
  const lrTrack = (v: number, lr: number): number => track(PID_VCPUS, lrTid(v, lr), `vCPU ${v} LR${lr}`);
  const vpeTrack = (v: number): number => track(PID_VCPUS, vpeTid(v), `vCPU ${v} vPE`);
  const itsTrack = (): number => track(PID_ITS, ITS_TID, 'ITS');
  const doorbellTrack = (): number => track(PID_ITS, DOORBELL_TID, 'vPE doorbells');
  const intidTrack = (intid: number, kind: number): number =>
    track(PID_INTIDS, intidTid(intid, kind), `INTID ${intid} ${kind === INTID_LINE ? 'line' : 'GIC'}`);
  const boundary = (tid: number, ts: bigint): void => {
    let b = boundaries.get(tid);
    if (b === undefined) {
      b = [];
      boundaries.set(tid, b);
    }
    b.push(ts);
  };
  const emitSlice = (tid: number, o: Open, end: bigint): void => {
    const t = tracks.get(tid)!;
    const dur = end - o.start;
    outs.push({
      ts: o.start,
      rank: 0,
      dur,
      order: order++,
      obj: {
        name: o.name,
        cat: o.cat,
        ph: 'X',
        ts: usFromNs(o.start),
        dur: usFromNs(dur),
        pid: t.pid,
        tid,
        args: o.args,
      },
    });
    boundary(tid, o.start);
    boundary(tid, end);
  };
  const begin = (tid: number, key: string, name: string, cat: string, ts: bigint, args: Record<string, unknown>) => {
    let s = stacks.get(tid);
    if (s === undefined) {
      s = [];
      stacks.set(tid, s);
    }
    if (key === 'line' && s.some((o) => o.key === key)) return; // the line is already high
    s.push({ key, name, cat, start: ts, args });
  };
  const end = (tid: number, key: string, ts: bigint): void => {
    const s = stacks.get(tid);
    if (s === undefined) return;
    let j = s.length - 1;
    while (j >= 0 && s[j]!.key !== key) j--;
    if (j < 0) return;
    while (s.length > j) emitSlice(tid, s.pop()!, ts);
  };
  const point = (tid: number, ts: bigint, def: EventDef, seq: number, args: Record<string, unknown>): void => {
    if (seq > 0) {
      markers.push({ tid, ts, seq, name: def.name, cat: def.system, args });
      return;
    }
    const t = tracks.get(tid)!;
    outs.push({
      ts,
      rank: 1,
      dur: 0n,
      order: order++,
      obj: { name: def.name, cat: def.system, ph: 'i', s: 't', ts: usFromNs(ts), pid: t.pid, tid, args },
    });
    boundary(tid, ts);
  };

  let maxCpu = -1;
  let lastNs = 0n;
  for (let i = 0; i < ring.size; i++) {
    const p = ring.slot(i);
    const cpu = ring.cpu[p]!;
    const pid = ring.pid[p]!;
    maxCpu = Math.max(maxCpu, cpu);
    const def = events.byId(ring.event[p]!);
    const v = events.decode(def, ring.args, p * MAX_ARGS, ring.strings);
    const ts = cyclesToNs(ring.ts[p]!, opts.hz);
    if (ts > lastNs) lastNs = ts;
    const args: Record<string, unknown> = { task: `${ring.comms.get(pid)}-${pid}` };
    for (const k of Object.keys(v)) args[k] = jsonValue(v[k]!);
    const seq = typeof v.seq === 'number' ? v.seq : 0;
    const num = (k: string): number => Number(v[k]);
    const cpuT = cpuTrack(cpu);
    switch (def.name) {
      case 'irq_handler_entry':
        begin(cpuT, `irq:${num('irq')}`, `IRQ ${num('irq')} ${String(v.name)}`, def.system, ts, args);
        break;
      case 'irq_handler_exit':
        end(cpuT, `irq:${num('irq')}`, ts);
        break;
      case 'kvm_entry': {
        const vc = ring.comms.vcpuOf(pid);
        begin(cpuT, 'guest', vc >= 0 ? `guest (vCPU ${vc})` : 'guest', def.system, ts, args);
        break;
      }
      case 'kvm_exit':
        end(cpuT, 'guest', ts);
        point(cpuT, ts, def, seq, args);
        break;
      case 'guest_irq_entry': {
        const t = vcpuTrack(num('vcpu'));
        begin(t, `virq:${num('intid')}`, `vIRQ ${num('intid')}`, def.system, ts, args);
        point(t, ts, def, seq, args);
        break;
      }
      case 'guest_eoi': {
        const t = vcpuTrack(num('vcpu'));
        end(t, `virq:${num('intid')}`, ts);
        point(t, ts, def, seq, args);
        break;
      }
      case 'device_assert': {
        const t = intidTrack(num('intid'), INTID_LINE);
        begin(t, 'line', 'line high', def.system, ts, args);
        point(t, ts, def, seq, args);
        break;
      }
      case 'device_deassert': {
        const t = intidTrack(num('intid'), INTID_LINE);
        end(t, 'line', ts);
        point(t, ts, def, seq, args);
        break;
      }
      case 'gic_iar':
        if (num('intid') < 1020) begin(intidTrack(num('intid'), INTID_GIC), 'active', 'active', def.system, ts, args);
        point(cpuT, ts, def, seq, args);
        break;
      case 'gic_dir':
        if (num('intid') !== GIC_SPURIOUS) end(intidTrack(num('intid'), INTID_GIC), 'active', ts);
        point(cpuT, ts, def, seq, args);
        break;
      case 'vgic_hw_deactivate':
        end(intidTrack(num('pintid'), INTID_GIC), 'active', ts);
        point(vcpuTrack(num('vcpu')), ts, def, seq, args);
        break;
      case 'gic_lr_write':
        point(lrTrack(num('vcpu'), num('lr')), ts, def, seq, args);
        break;
      case 'vgic_maintenance':
        point(vcpuTrack(num('vcpu')), ts, def, seq, args);
        break;
      case 'vgic_update_irq_pending':
        point(vcpuTrack(num('vcpu_id')), ts, def, seq, args);
        break;
      case 'its_cmd':
      case 'its_translate':
        point(itsTrack(), ts, def, seq, args);
        break;
      case 'gic_vpe_doorbell':
      case 'vgic_v4_doorbell':
        point(doorbellTrack(), ts, def, seq, args);
        break;
      case 'gic_vpendbaser':
        if (num('vcpu') < 0) point(cpuT, ts, def, seq, args);
        else if (v.valid === true) begin(vpeTrack(num('vcpu')), 'vpe', 'vPE resident', def.system, ts, args);
        else {
          // the descheduling itself stays visible: whether it asked for a doorbell, what PendingLast read back
          end(vpeTrack(num('vcpu')), 'vpe', ts);
          point(vpeTrack(num('vcpu')), ts, def, seq, args);
        }
        break;
      case 'gic_vlpi_iar':
        point(num('vcpu') < 0 ? cpuT : vpeTrack(num('vcpu')), ts, def, seq, args);
        break;
      case 'vgic_its_inject':
        point(num('vcpu') < 0 ? cpuT : vcpuTrack(num('vcpu')), ts, def, seq, args);
        break;
      default:
        point(cpuT, ts, def, seq, args);
    }
  }
  // Whatever is still open ends with the trace.
  for (const [tid, s] of stacks) while (s.length > 0) emitSlice(tid, s.pop()!, lastNs);
  for (const m of markers) boundary(m.tid, m.ts);

  // Markers: as long as markerNs, but ending before the next thing that happens on their track.
  for (const b of boundaries.values()) b.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const bySeq = new Map<number, { tid: number; ts: bigint }[]>();
  for (const m of markers) {
    const b = boundaries.get(m.tid)!;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]! <= m.ts) lo = mid + 1;
      else hi = mid;
    }
    const next = lo < b.length ? b[lo]! : m.ts + markerNs;
    const dur = next - m.ts < markerNs ? next - m.ts : markerNs;
    const t = tracks.get(m.tid)!;
    outs.push({
      ts: m.ts,
      rank: 0,
      dur,
      order: order++,
      obj: {
        name: m.name,
        cat: m.cat,
        ph: 'X',
        ts: usFromNs(m.ts),
        dur: usFromNs(dur),
        pid: t.pid,
        tid: m.tid,
        args: m.args,
      },
    });
    let chain = bySeq.get(m.seq);
    if (chain === undefined) {
      chain = [];
      bySeq.set(m.seq, chain);
    }
    chain.push({ tid: m.tid, ts: m.ts });
  }
  for (const [seq, chain] of bySeq) {
    if (chain.length < 2) continue;
    chain.forEach((c, k) => {
      const t = tracks.get(c.tid)!;
      const ph = k === 0 ? 's' : k === chain.length - 1 ? 'f' : 't';
      const obj: Record<string, unknown> = {
        name: FLOW_NAME,
        cat: FLOW_CAT,
        ph,
        id: seq,
        ts: usFromNs(c.ts),
        pid: t.pid,
        tid: c.tid,
      };
      if (ph === 'f') obj.bp = 'e';
      outs.push({ ts: c.ts, rank: 2, dur: 0n, order: order++, obj });
    });
  }

  outs.sort((a, b) =>
    a.ts !== b.ts
      ? a.ts < b.ts
        ? -1
        : 1
      : a.rank !== b.rank
        ? a.rank - b.rank
        : a.dur !== b.dur
          ? a.dur > b.dur
            ? -1
            : 1
          : a.order - b.order,
  );

  // Metadata: processes in a fixed order, every host CPU, then the tracks that saw events, by tid.
  const cpus = opts.cpus ?? Math.max(1, maxCpu + 1);
  for (let c = 0; c < cpus; c++) cpuTrack(c);
  const meta: Record<string, unknown>[] = [];
  const procs: [number, string][] = [
    [PID_HOST, 'Host CPUs'],
    [PID_VCPUS, 'vCPUs'],
    [PID_INTIDS, 'INTIDs'],
  ];
  if (tracks.has(ITS_TID) || tracks.has(DOORBELL_TID)) procs.push([PID_ITS, 'GIC ITS']);
  for (const [pid, name] of procs) {
    meta.push({ name: 'process_name', ph: 'M', pid, args: { name } });
    meta.push({ name: 'process_sort_index', ph: 'M', pid, args: { sort_index: pid } });
  }
  const sortedTracks = [...tracks.values()].sort((a, b) => a.tid - b.tid);
  for (const t of sortedTracks) {
    meta.push({ name: 'thread_name', ph: 'M', pid: t.pid, tid: t.tid, args: { name: t.name } });
    meta.push({ name: 'thread_sort_index', ph: 'M', pid: t.pid, tid: t.tid, args: { sort_index: t.tid } });
  }

  const lines = [...meta, ...outs.map((o) => o.obj)].map((o) => JSON.stringify(o));
  const other = {
    source: 'irqfwd',
    clock_hz: opts.hz,
    records: ring.size,
    lost_events: ring.lost,
  };
  return `{"traceEvents":[\n${lines.join(',\n')}\n],\n"displayTimeUnit":"ns",\n"otherData":${JSON.stringify(other)}}\n`;
}
