/**
 * Checks the output against the Trace Event Format (Google, "Trace Event Format" document): a JSON object with a
 * traceEvents array; per phase the keys each event must carry; complete events nest per thread; flow phases
 * pair up; metadata names processes and threads. The flow keys follow what Perfetto's JSON importer reads
 * (src/trace_processor/importers/json/json_trace_parser_impl.cc: `id`, and `bp == "e"` on `f`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tracedVgicV4 } from '../../test/fixtures/vgicV4Trace.js';
import {
  DOORBELL_TID,
  FLOW_CAT,
  FLOW_NAME,
  INTID_GIC,
  INTID_LINE,
  ITS_TID,
  intidTid,
  lrTid,
  PID_HOST,
  PID_INTIDS,
  PID_ITS,
  PID_VCPUS,
  vcpuTid,
  vpeTid,
  writeChromeJson,
} from './chromeJsonWriter.js';
import * as E from './events.js';
import { Tracer } from './tracer.js';

const HZ = 1_000_000_000; // 1 cycle = 1 ns

interface Ev {
  name: string;
  ph: string;
  ts?: number;
  dur?: number;
  pid?: number;
  tid?: number;
  id?: number;
  cat?: string;
  s?: string;
  bp?: string;
  args?: Record<string, unknown>;
}

/** One forwarded level IRQ, device assert → host → eventfd → inject → LR → guest → HW deactivation. */
function journey(): Tracer {
  const t = new Tracer({ capacity: 256 });
  const VCPU_PID = 1300;
  t.comms.set(VCPU_PID, 'CPU 0/KVM');
  t.comms.setVcpu(VCPU_PID, 0);
  const dev = t.intern('fff51000.ethernet');
  const hname = t.intern('vfio-irq[0](fff51000.ethernet)');
  const r = t.ring;
  r.emitAt(50, E.EV_KVM_ENTRY, 1, VCPU_PID, 0x1000, 0);
  r.emitAt(100, E.EV_DEVICE_ASSERT, 0, 0, dev, 42, 1);
  r.emitAt(200, E.EV_KVM_EXIT, 1, VCPU_PID, E.ARM_EXCEPTION_IRQ, 0, 0x1004, 0);
  r.emitAt(210, E.EV_GIC_IAR, 1, VCPU_PID, 42, 1);
  r.emitAt(220, E.EV_IRQ_HANDLER_ENTRY, 1, VCPU_PID, 42, hname);
  r.emitAt(230, E.EV_VFIO_PLATFORM_IRQ, 1, VCPU_PID, dev, 0, 42, E.VFIO_IRQ_FORWARDED, 1);
  r.emitAt(240, E.EV_EVENTFD_SIGNAL, 1, VCPU_PID, 17, 1, 1);
  r.emitAt(250, E.EV_IRQ_HANDLER_EXIT, 1, VCPU_PID, 42, 1);
  r.emitAt(251, E.EV_GIC_EOIR, 1, VCPU_PID, 42, 1, 1);
  r.emitAt(300, E.EV_IRQFD_INJECT, 0, 0, 10, 42, 1, 1);
  r.emitAt(305, E.EV_KVM_SET_IRQ, 0, 0, 10, 1, 0);
  r.emitAt(390, E.EV_GIC_LR_WRITE, 1, VCPU_PID, 0, 0, 42, 42, 1, 0, E.LR_STATE_PENDING, 1);
  r.emitAt(400, E.EV_KVM_ENTRY, 1, VCPU_PID, 0x1004, 0);
  r.emitAt(500, E.EV_GUEST_IRQ_ENTRY, 1, VCPU_PID, 0, 42, 1);
  r.emitAt(550, E.EV_DEVICE_DEASSERT, 0, 0, dev, 42, 1);
  r.emitAt(600, E.EV_GUEST_EOI, 1, VCPU_PID, 0, 42, 1);
  r.emitAt(600, E.EV_VGIC_HW_DEACTIVATE, 1, VCPU_PID, 0, 42, 42, 1);
  return t;
}

function parse(json: string): Ev[] {
  const doc = JSON.parse(json) as { traceEvents: Ev[]; displayTimeUnit: string; otherData: Record<string, unknown> };
  expect(Array.isArray(doc.traceEvents)).toBe(true);
  expect(doc.displayTimeUnit).toBe('ns');
  expect(typeof doc.otherData).toBe('object');
  return doc.traceEvents;
}

/** The format checks every output must pass. */
function validate(evs: Ev[]): void {
  for (const e of evs) {
    expect(typeof e.name).toBe('string');
    expect(typeof e.pid).toBe('number');
    switch (e.ph) {
      case 'M':
        expect(['process_name', 'process_sort_index', 'thread_name', 'thread_sort_index']).toContain(e.name);
        expect(e.args).toBeTypeOf('object');
        if (e.name.startsWith('thread_')) expect(typeof e.tid).toBe('number');
        break;
      case 'X':
        expect(typeof e.ts).toBe('number');
        expect(typeof e.dur).toBe('number');
        expect(e.dur!).toBeGreaterThanOrEqual(0);
        expect(typeof e.tid).toBe('number');
        expect(typeof e.cat).toBe('string');
        break;
      case 'i':
        expect(typeof e.ts).toBe('number');
        expect(e.s).toBe('t');
        expect(typeof e.tid).toBe('number');
        break;
      case 's':
      case 't':
      case 'f':
        expect(typeof e.ts).toBe('number');
        expect(typeof e.id).toBe('number');
        expect(e.cat).toBe(FLOW_CAT);
        expect(e.name).toBe(FLOW_NAME);
        if (e.ph === 'f') expect(e.bp).toBe('e');
        break;
      default:
        throw new Error(`unexpected phase ${e.ph}`);
    }
  }
  // Complete events on one thread nest: each pair is disjoint or one contains the other (integer ns).
  const ns = (us: number): number => Math.round(us * 1000);
  const byTid = new Map<number, [number, number][]>();
  for (const e of evs) {
    if (e.ph !== 'X') continue;
    const l = byTid.get(e.tid!) ?? [];
    l.push([ns(e.ts!), ns(e.ts!) + ns(e.dur!)]);
    byTid.set(e.tid!, l);
  }
  for (const l of byTid.values()) {
    for (const [a0, a1] of l) {
      for (const [b0, b1] of l) {
        const disjoint = a1 <= b0 || b1 <= a0;
        const nested = (a0 <= b0 && b1 <= a1) || (b0 <= a0 && a1 <= b1);
        expect(disjoint || nested).toBe(true);
      }
    }
  }
  // Flows: one start and one finish per id, in time order, each phase inside a slice of its own thread.
  const flows = new Map<number, Ev[]>();
  for (const e of evs) {
    if (e.ph !== 's' && e.ph !== 't' && e.ph !== 'f') continue;
    const l = flows.get(e.id!) ?? [];
    l.push(e);
    flows.set(e.id!, l);
    const enclosing = (byTid.get(e.tid!) ?? []).some(([a, b]) => a <= ns(e.ts!) && ns(e.ts!) < b);
    expect(enclosing).toBe(true);
  }
  for (const l of flows.values()) {
    expect(l.filter((e) => e.ph === 's').length).toBe(1);
    expect(l.filter((e) => e.ph === 'f').length).toBe(1);
    expect(l[0]!.ph).toBe('s');
    expect(l[l.length - 1]!.ph).toBe('f');
    for (let k = 1; k < l.length; k++) expect(l[k]!.ts!).toBeGreaterThanOrEqual(l[k - 1]!.ts!);
  }
  // Every thread that carries events is named.
  const named = new Set(evs.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.tid));
  for (const e of evs) if (e.ph !== 'M') expect(named.has(e.tid)).toBe(true);
}

describe('writeChromeJson', () => {
  const json = writeChromeJson(journey(), { hz: HZ, cpus: 2 });
  const evs = parse(json);

  it('is valid trace-event JSON with the keys each phase requires', () => {
    validate(evs);
  });

  it('names the three processes and the CPU, vCPU, LR and INTID tracks', () => {
    const procs = evs.filter((e) => e.name === 'process_name').map((e) => [e.pid, e.args?.name]);
    expect(procs).toEqual([
      [PID_HOST, 'Host CPUs'],
      [PID_VCPUS, 'vCPUs'],
      [PID_INTIDS, 'INTIDs'],
    ]);
    const threads = new Map(evs.filter((e) => e.name === 'thread_name').map((e) => [e.tid, e.args?.name]));
    expect(threads.get(100)).toBe('CPU 0');
    expect(threads.get(101)).toBe('CPU 1');
    expect(threads.get(vcpuTid(0))).toBe('vCPU 0');
    expect(threads.get(lrTid(0, 0))).toBe('vCPU 0 LR0');
    expect(threads.get(intidTid(42, INTID_LINE))).toBe('INTID 42 line');
    expect(threads.get(intidTid(42, INTID_GIC))).toBe('INTID 42 GIC');
    expect(evs.filter((e) => e.name === 'thread_sort_index').length).toBe(threads.size);
  });

  it('draws handler, guest-mode, guest IRQ, line and active slices in microseconds', () => {
    const slice = (name: string) => evs.find((e) => e.ph === 'X' && e.name === name);
    expect(slice('IRQ 42 vfio-irq[0](fff51000.ethernet)')).toMatchObject({ ts: 0.22, dur: 0.03, tid: 101 });
    expect(slice('vIRQ 42')).toMatchObject({ ts: 0.5, dur: 0.1, tid: vcpuTid(0) });
    expect(slice('line high')).toMatchObject({ ts: 0.1, dur: 0.45, tid: intidTid(42, INTID_LINE) });
    expect(slice('active')).toMatchObject({ ts: 0.21, dur: 0.39, tid: intidTid(42, INTID_GIC) });
    const guest = evs.filter((e) => e.ph === 'X' && e.name === 'guest (vCPU 0)');
    expect(guest.map((e) => [e.ts, e.dur])).toEqual([
      [0.05, 0.15],
      [0.4, 0.2], // still in the guest when the trace ends: closed at the last record
    ]);
    const inst = evs.find((e) => e.ph === 'i' && e.name === 'kvm_set_irq');
    expect(inst?.args).toMatchObject({ gsi: 10, level: 1, irq_source_id: 0, task: '<idle>-0' });
  });

  it('links the interrupt journey with one flow, assert to deactivation', () => {
    const flow = evs.filter((e) => e.id === 1 && ['s', 't', 'f'].includes(e.ph));
    expect(flow[0]).toMatchObject({ ph: 's', ts: 0.1, tid: intidTid(42, INTID_LINE) });
    expect(flow[flow.length - 1]).toMatchObject({ ph: 'f', ts: 0.6, bp: 'e', tid: vcpuTid(0) });
    // assert, iar, vfio, eventfd, eoir, inject, lr write, guest entry, deassert, guest eoi, hw deactivate
    expect(flow.length).toBe(11);
  });

  it('is deterministic', () => {
    expect(writeChromeJson(journey(), { hz: HZ, cpus: 2 })).toBe(json);
  });

  it('keeps slices nested and flows paired for arbitrary event soups', () => {
    const kinds = [
      E.EV_IRQ_HANDLER_ENTRY,
      E.EV_IRQ_HANDLER_EXIT,
      E.EV_KVM_ENTRY,
      E.EV_KVM_EXIT,
      E.EV_GUEST_IRQ_ENTRY,
      E.EV_GUEST_EOI,
      E.EV_DEVICE_ASSERT,
      E.EV_DEVICE_DEASSERT,
      E.EV_GIC_IAR,
      E.EV_GIC_DIR,
      E.EV_GIC_LR_WRITE,
      E.EV_VGIC_HW_DEACTIVATE,
      E.EV_IRQFD_INJECT,
    ];
    const rec = fc.record({
      dt: fc.integer({ min: 0, max: 30 }),
      kind: fc.constantFrom(...kinds),
      cpu: fc.integer({ min: 0, max: 1 }),
      a: fc.integer({ min: 0, max: 2 }),
      seq: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 60 }), (recs) => {
        const t = new Tracer({ capacity: 128 });
        const dev = t.intern('d');
        let now = 0;
        for (const r of recs) {
          now += r.dt;
          const intid = 40 + r.a;
          switch (r.kind) {
            case E.EV_IRQ_HANDLER_ENTRY:
            case E.EV_IRQ_HANDLER_EXIT:
              t.ring.emitAt(now, r.kind, r.cpu, 1, intid, r.kind === E.EV_IRQ_HANDLER_ENTRY ? dev : 1);
              break;
            case E.EV_DEVICE_ASSERT:
            case E.EV_DEVICE_DEASSERT:
              t.ring.emitAt(now, r.kind, r.cpu, 0, dev, intid, r.seq);
              break;
            case E.EV_GIC_LR_WRITE:
              t.ring.emitAt(now, r.kind, r.cpu, 1, r.a, 0, intid, intid, 1, 0, 1, r.seq);
              break;
            case E.EV_VGIC_HW_DEACTIVATE:
              t.ring.emitAt(now, r.kind, r.cpu, 1, r.a, intid, intid, r.seq);
              break;
            case E.EV_GUEST_IRQ_ENTRY:
            case E.EV_GUEST_EOI:
            case E.EV_IRQFD_INJECT:
              t.ring.emitAt(now, r.kind, r.cpu, 1, r.a, intid, r.seq, r.seq);
              break;
            default:
              t.ring.emitAt(now, r.kind, r.cpu, 1, intid, r.seq);
          }
        }
        validate(parse(writeChromeJson(t, { hz: HZ, markerNs: 5 })));
      }),
      { numRuns: 200, seed: 1 },
    );
  });
});

describe('GICv4.1 tracks (test/e2e/vgicV4.test.ts traced: one MSI to a resident vPE, one through the doorbell)', () => {
  const t = tracedVgicV4();
  const evs = parse(writeChromeJson(t.tracer, { hz: t.hz, cpus: t.cpus }));

  it('is valid trace-event JSON, with process 4 "GIC ITS" holding the ITS and doorbell threads', () => {
    validate(evs);
    const procs = evs.filter((e) => e.name === 'process_name').map((e) => [e.pid, e.args?.name]);
    expect(procs).toContainEqual([PID_ITS, 'GIC ITS']);
    const threads = evs.filter((e) => e.name === 'thread_name').map((e) => [e.pid, e.tid, e.args?.name]);
    expect(threads).toContainEqual([PID_ITS, ITS_TID, 'ITS']);
    expect(threads).toContainEqual([PID_ITS, DOORBELL_TID, 'vPE doorbells']);
    expect(threads).toContainEqual([PID_VCPUS, vpeTid(0), 'vCPU 0 vPE']);
  });

  it('draws the residency of vCPU 0 as "vPE resident" slices (GICR_VPENDBASER.Valid 1 → 0) with its direct vLPIs inside', () => {
    const resident = evs.filter((e) => e.tid === vpeTid(0) && e.ph === 'X' && e.name === 'vPE resident');
    expect(resident.length).toBeGreaterThanOrEqual(3); // boot, the workload, the doorbell's wake-up
    const iars = evs.filter((e) => e.name === 'gic_vlpi_iar');
    expect(iars).toHaveLength(2);
    for (const i of iars) {
      expect(i.tid).toBe(vpeTid(0));
      expect(resident.some((r) => r.ts! <= i.ts! && i.ts! < r.ts! + r.dur!)).toBe(true);
    }
    // each descheduling stays visible as an instant: the last one asked for the doorbell
    const puts = evs.filter((e) => e.tid === vpeTid(0) && e.name === 'gic_vpendbaser');
    expect(puts.at(-1)?.args).toMatchObject({ valid: false, doorbell: true });
  });

  it('puts the commands and translations on the ITS thread and the doorbell on its own', () => {
    const its = evs.filter((e) => e.tid === ITS_TID && e.ph === 'i').map((e) => e.name);
    expect(its).toContain('its_cmd');
    expect(its.filter((n) => n === 'its_translate')).toHaveLength(2);
    const db = evs.filter((e) => e.tid === DOORBELL_TID && e.ph === 'i').map((e) => e.name);
    expect(db).toEqual(['gic_vpe_doorbell', 'vgic_v4_doorbell']);
  });
});
