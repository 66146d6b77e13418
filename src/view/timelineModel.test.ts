import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tracedVgicV4 } from '../../test/fixtures/vgicV4Trace.js';
import { formatReplayFile, replayFileOf } from '../check/replay.js';
import { scenarioFromYaml } from '../check/scenarioCheck.js';
import { writeChromeJson } from '../trace/chromeJsonWriter.js';
import { GICC_DIR, INACTIVE } from '../trace/gicUnpredictable.js';
import type { ChromeTrace } from './chromeTrace.js';
import { syntheticChromeTrace } from './syntheticTrace.js';
import {
  STYLE_ACTIVE,
  STYLE_CHECK_MARKED,
  STYLE_CHECK_STEP,
  STYLE_DIRECT_VLPI,
  STYLE_DOORBELL,
  STYLE_GUEST,
  STYLE_HANDLER,
  STYLE_INSTANT,
  STYLE_MARKER,
  STYLE_RESIDENT,
  STYLE_VIOLATION,
  STYLE_VIRQ,
} from './timelineData.js';
import { buildTimeline } from './timelineModel.js';
import { viewOfReplayFile } from './viewInput.js';

const meta = (pid: number, tid: number, name: string) => ({ name: 'thread_name', ph: 'M', pid, tid, args: { name } });

/** One level IRQ on the normal path, in the writer's layout. */
const small: ChromeTrace = {
  traceEvents: [
    meta(1, 100, 'CPU 0'),
    meta(1, 101, 'CPU 1'),
    meta(2, 10000, 'vCPU 0'),
    meta(2, 20000, 'vCPU 0 LR0'),
    meta(3, 100320, 'INTID 80 line'),
    meta(3, 100321, 'INTID 80 GIC'),
    { name: 'guest (vCPU 0)', cat: 'kvm', ph: 'X', ts: 1, dur: 2, pid: 1, tid: 101, args: { vcpu_pc: '0x0' } },
    { name: 'line high', cat: 'irqfwd', ph: 'X', ts: 2, dur: 3, pid: 3, tid: 100320, args: { dev: 'eth0', seq: 7 } },
    {
      name: 'device_assert',
      cat: 'irqfwd',
      ph: 'X',
      ts: 2,
      dur: 0.02,
      pid: 3,
      tid: 100320,
      args: { dev: 'eth0', intid: 80, seq: 7 },
    },
    { name: 'kvm_exit', cat: 'kvm', ph: 'i', s: 't', ts: 3, pid: 1, tid: 101, args: { ret: 0 } },
    { name: 'IRQ 3 vfio-irq', cat: 'irq', ph: 'X', ts: 3.1, dur: 0.5, pid: 1, tid: 101, args: { irq: 3 } },
    { name: 'gic_dir', cat: 'irqfwd', ph: 'X', ts: 3.5, dur: 0.02, pid: 1, tid: 101, args: { intid: 80, seq: 7 } },
    { name: 'gic_lr_write', cat: 'irqfwd', ph: 'X', ts: 3.8, dur: 0.02, pid: 2, tid: 20000, args: { lr: 0, seq: 7 } },
    {
      name: 'guest_irq_entry',
      cat: 'irqfwd',
      ph: 'X',
      ts: 4,
      dur: 0.02,
      pid: 2,
      tid: 10000,
      args: { vcpu: 0, intid: 80, seq: 7 },
    },
    { name: 'irq', cat: 'irqfwd.flow', ph: 's', id: 7, ts: 2, pid: 3, tid: 100320 },
    { name: 'irq', cat: 'irqfwd.flow', ph: 't', id: 7, ts: 3.5, pid: 1, tid: 101 },
    { name: 'irq', cat: 'irqfwd.flow', ph: 't', id: 7, ts: 3.8, pid: 2, tid: 20000 },
    { name: 'irq', cat: 'irqfwd.flow', ph: 'f', id: 7, ts: 4, pid: 2, tid: 10000, bp: 'e' },
  ],
};

const itemsNamed = (d: ReturnType<typeof buildTimeline>, name: string): number[] =>
  d.itemName.flatMap((n, i) => (d.names[n] === name ? [i] : []));

describe('buildTimeline', () => {
  it('orders lanes line, GIC, CPUs, vCPUs, LRs and names the device behind a line', () => {
    const d = buildTimeline('t', [{ label: 'normal', source: 's', trace: small }]);
    expect(d.lanes.map((l) => `${l.kind}:${l.label}`)).toEqual([
      'line:INTID 80 line (eth0)',
      'gic:INTID 80 GIC state',
      'cpu:CPU 0',
      'cpu:CPU 1',
      'vcpu:vCPU 0',
      'lr:vCPU 0 LR0',
    ]);
    expect(d.runs).toEqual([
      { label: 'normal', source: 's', firstLane: 0, endLane: 6, originNs: 2000, originIsIrq: true },
    ]);
  });

  it('sorts items by lane then start, converts µs to ns relative to the first IRQ and styles them', () => {
    const d = buildTimeline('t', [{ label: 'normal', source: 's', trace: small }]);
    expect(d.itemStart.length).toBe(8);
    const cpu1 = 3;
    const a = d.laneFirst[cpu1]!;
    const b = d.laneFirst[cpu1 + 1]!;
    expect(d.itemStart.slice(a, b)).toEqual([-1000, 1000, 1100, 1500]); // device_assert at 2 µs is time 0
    expect(d.itemStyle.slice(a, b)).toEqual([STYLE_GUEST, STYLE_INSTANT, STYLE_HANDLER, STYLE_MARKER]);
    expect(d.itemDur[a]).toBe(2000);
    expect(d.itemArgs[itemsNamed(d, 'gic_dir')[0]!]).toBe('intid=80\nseq=7');
  });

  it('nests slices: the marker inside "line high" gets depth 0 only among slices', () => {
    const d = buildTimeline('t', [{ label: 'normal', source: 's', trace: small }]);
    const line = itemsNamed(d, 'line high')[0]!;
    expect(d.itemDepth[line]).toBe(0);
    expect(d.lanes[0]).toMatchObject({ rows: 1, slices: true });
    expect(d.lanes[1]).toMatchObject({ slices: false });
  });

  it('turns flow events into one causal chain bound to the marker events', () => {
    const d = buildTimeline('t', [{ label: 'normal', source: 's', trace: small }]);
    expect(d.flowFirst).toEqual([0, 4]);
    expect(d.flowItems.map((i) => d.names[d.itemName[i]!])).toEqual([
      'device_assert',
      'gic_dir',
      'gic_lr_write',
      'guest_irq_entry',
    ]);
    expect([d.flowStart[0], d.flowEnd[0]]).toEqual([0, 2020]);
  });

  it('stacks two runs on one time axis, each with its own lanes', () => {
    const d = buildTimeline('t', [
      { label: 'normal', source: 's', trace: small },
      { label: 'forwarded', source: 's', trace: small },
    ]);
    expect(d.runs.map((r) => [r.label, r.firstLane, r.endLane])).toEqual([
      ['normal', 0, 6],
      ['forwarded', 6, 12],
    ]);
    expect(d.flowStart).toEqual([0, 0]);
    expect(new Set(d.flowItems).size).toBe(8);
    expect([d.startNs, d.endNs]).toEqual([-1000, 3000]);
  });

  it('collects checker steps (marked ones styled apart) and the violation', () => {
    const trace: ChromeTrace = {
      traceEvents: [
        meta(1, 99, 'check schedule'),
        meta(1, 100, 'CPU 0'),
        {
          name: 'check_step',
          cat: 'irqfwd.check',
          ph: 'i',
          ts: 1,
          pid: 1,
          tid: 100,
          args: { index: 1, agent: 'cpu0', marked: false, what: 'a' },
        },
        {
          name: 'check_step',
          cat: 'irqfwd.check',
          ph: 'i',
          ts: 2,
          pid: 1,
          tid: 99,
          args: { index: 2, agent: 'timer', marked: true, what: 'raise' },
        },
        {
          name: 'check_violation',
          cat: 'irqfwd.check',
          ph: 'i',
          s: 'g',
          ts: 3,
          pid: 1,
          tid: 99,
          args: { invariant: 'no-lost-irq', message: 'lost' },
        },
        {
          name: 'check_step',
          cat: 'irqfwd.check',
          ph: 'i',
          ts: 0.5,
          args: { index: 0, agent: 'x', marked: false, what: 'b' },
        },
      ],
    };
    const d = buildTimeline('cx', [{ label: 'counterexample', source: 'f', trace }]);
    expect(d.lanes.map((l) => `${l.kind}:${l.label}`)).toEqual([
      'check:checker schedule',
      'check:check schedule',
      'cpu:CPU 0',
    ]);
    expect(d.checkSteps.map((s) => [s.index, s.agent, s.marked, s.what])).toEqual([
      [0, 'x', false, 'b'],
      [1, 'cpu0', false, 'a'],
      [2, 'timer', true, 'raise'],
    ]);
    expect(d.itemStyle[d.checkSteps[2]!.item]).toBe(STYLE_CHECK_MARKED);
    expect(d.itemStyle[d.checkSteps[1]!.item]).toBe(STYLE_CHECK_STEP);
    expect(d.violations.map((v) => [v.run, v.invariant, v.message])).toEqual([[0, 'no-lost-irq', 'lost']]);
    expect(d.itemStyle[d.violations[0]!.item]).toBe(STYLE_VIOLATION);
  });

  it("a checker counterexample shows the guest's side: its vIRQ handler and EOI on the vCPU lane, in the raise's flow", () => {
    // rfc-v1's defect 3 in the default order (check-enomem, legacy numbering): the raise reaches the guest forwarded
    const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
    const sc = scenarioFromYaml(readFileSync(`${dir}check-enomem.yaml`, 'utf8'), 'check-enomem', {
      variant: 'rfc-v1',
      irqNumbering: 'legacy',
    });
    const src = viewOfReplayFile('cx.json', formatReplayFile(replayFileOf(sc, 'no-irq-left-forwarded', [])));
    const d = buildTimeline(src.title, src.runs);
    const lane = d.lanes.findIndex((l) => l.kind === 'vcpu' && l.label === 'vCPU 0');
    const onLane = (name: string) => itemsNamed(d, name).filter((i) => d.itemLane[i] === lane);
    const [virq] = onLane('vIRQ 80');
    expect(d.itemStyle[virq!]).toBe(STYLE_VIRQ);
    const [entry] = onLane('guest_irq_entry');
    const [eoi] = onLane('guest_eoi');
    expect([d.itemStyle[entry!], d.itemStyle[eoi!]]).toEqual([STYLE_MARKER, STYLE_MARKER]);
    expect(d.itemStart[virq!]).toBe(d.itemStart[entry!]);
    expect(d.itemStart[virq!]! + d.itemDur[virq!]!).toBe(d.itemStart[eoi!]);
    expect(d.itemSeq[entry!]).toBe(1);
    expect(d.flowItems).toEqual(expect.arrayContaining([entry, eoi]));
    expect(d.violations.map((v) => v.invariant)).toEqual(['no-irq-left-forwarded']);
  });

  it('a counterexample of no-gic-unpredictable shows the access itself on its CPU lane, styled as the violation', () => {
    // check-two-vms under rfc-v1 (legacy numbering): vm1's destroy runs the seed's CLEANUP, a GICC_DIR of inactive 80
    const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
    const sc = scenarioFromYaml(readFileSync(`${dir}check-two-vms.yaml`, 'utf8'), 'check-two-vms', {
      variant: 'rfc-v1',
      irqNumbering: 'legacy',
    });
    const src = viewOfReplayFile('cx.json', formatReplayFile(replayFileOf(sc, 'no-gic-unpredictable', [])));
    const d = buildTimeline(src.title, src.runs);
    const [access] = itemsNamed(d, 'gic_unpredictable');
    expect(d.lanes[d.itemLane[access!]!]!.label).toBe('CPU 0');
    expect(d.itemStyle[access!]).toBe(STYLE_VIOLATION);
    // the record's raw fields, as every Chrome JSON event carries them (the text trace prints the names)
    expect(d.itemArgs[access!]!.split('\n').slice(1)).toEqual([`reg=${GICC_DIR}`, `why=${INACTIVE}`, 'intid=80']);
    expect(d.violations.map((v) => v.invariant)).toEqual(['no-gic-unpredictable']);
  });

  it('pairs B/E events into slices', () => {
    const trace: ChromeTrace = {
      traceEvents: [
        { name: 'work', ph: 'B', ts: 1, pid: 9, tid: 1 },
        { name: 'work', ph: 'E', ts: 4, pid: 9, tid: 1 },
      ],
    };
    const d = buildTimeline('t', [{ label: 'r', source: 's', trace }]);
    // no IRQ: time 0 is the run's first event
    expect([d.itemStart[0], d.itemDur[0], d.lanes[0]!.kind]).toEqual([0, 3000, 'other']);
    expect([d.runs[0]!.originNs, d.runs[0]!.originIsIrq]).toEqual([1000, false]);
  });

  it('lines up the runs on their first IRQs: the forwarded run asserted later is shifted onto the normal one', () => {
    const later: ChromeTrace = {
      traceEvents: small.traceEvents.map((e) => (e.ts === undefined ? e : { ...e, ts: e.ts + 5 })),
    };
    const d = buildTimeline('t', [
      { label: 'normal', source: 's', trace: small },
      { label: 'forwarded', source: 's', trace: later },
    ]);
    expect(d.runs.map((r) => r.originNs)).toEqual([2000, 7000]);
    const asserts = itemsNamed(d, 'device_assert');
    expect(asserts.map((i) => d.itemStart[i])).toEqual([0, 0]);
    expect(d.itemArgs[asserts[0]!]).toContain('seq=7');
  });

  it('keeps a lane for every vCPU, in every run, each vCPU with its list registers under it', () => {
    const vcpu1: ChromeTrace = {
      traceEvents: [
        ...small.traceEvents,
        meta(2, 20064, 'vCPU 1 LR0'),
        meta(1, 102, 'CPU 2'),
        // vCPU 2 ran in guest mode but took no interrupt: it still gets its lane
        { name: 'guest (vCPU 2)', cat: 'kvm', ph: 'X', ts: 1, dur: 2, pid: 1, tid: 102, args: {} },
      ],
    };
    const d = buildTimeline('t', [
      { label: 'normal', source: 's', trace: vcpu1 },
      { label: 'forwarded', source: 's', trace: small },
    ]);
    const lanesOf = (r: number): string[] =>
      d.lanes.slice(d.runs[r]!.firstLane, d.runs[r]!.endLane).map((l) => `${l.kind}:${l.label}`);
    const expected = [
      'line:INTID 80 line (eth0)',
      'gic:INTID 80 GIC state',
      'cpu:CPU 0',
      'cpu:CPU 1',
      'cpu:CPU 2',
      'vcpu:vCPU 0',
      'lr:vCPU 0 LR0',
      'vcpu:vCPU 1',
      'lr:vCPU 1 LR0',
      'vcpu:vCPU 2',
    ];
    expect(lanesOf(0)).toEqual(expected);
    expect(lanesOf(1).map((l) => l.replace(' (eth0)', ''))).toEqual(expected.map((l) => l.replace(' (eth0)', '')));
  });

  it('labels SGIs as IPIs and PPIs as such (GICv2: INTIDs 0–15 and 16–31)', () => {
    const trace: ChromeTrace = {
      traceEvents: [meta(3, 100001, 'INTID 0 GIC'), meta(3, 100053, 'INTID 26 GIC'), meta(3, 100321, 'INTID 80 GIC')],
    };
    const d = buildTimeline('t', [{ label: 'r', source: 's', trace }]);
    expect(d.lanes.map((l) => l.label)).toEqual([
      'INTID 0 (SGI: IPI) GIC state',
      'INTID 26 (PPI) GIC state',
      'INTID 80 GIC state',
    ]);
  });

  it("draws an INTID's active slice as a slice, though it carries the IRQ's seq", () => {
    const trace: ChromeTrace = {
      traceEvents: [
        meta(3, 100321, 'INTID 80 GIC'),
        { name: 'active', cat: 'irqfwd', ph: 'X', ts: 1, dur: 2, pid: 3, tid: 100321, args: { intid: 80, seq: 3 } },
      ],
    };
    const d = buildTimeline('t', [{ label: 'r', source: 's', trace }]);
    expect(d.itemStyle[0]).toBe(STYLE_ACTIVE);
    expect(d.lanes[0]).toMatchObject({ slices: true });
  });

  it('keeps every event of a large trace: 100 000 items, one chain per interrupt', () => {
    const d = buildTimeline('big', [{ label: 'synthetic', source: 's', trace: syntheticChromeTrace(100_000) }]);
    expect(d.itemStart.length).toBe(100_000);
    expect(d.flowStart.length).toBe(20_000);
    for (let l = 0; l < d.lanes.length; l++)
      for (let i = d.laneFirst[l]! + 1; i < d.laneFirst[l + 1]!; i++)
        if (d.itemStart[i]! < d.itemStart[i - 1]!) throw new Error(`lane ${l} unsorted at ${i}`);
  });
});

describe('buildTimeline: GICv4.1 lanes (test/e2e/vgicV4.test.ts traced)', () => {
  const t = tracedVgicV4();
  const trace = JSON.parse(writeChromeJson(t.tracer, { hz: t.hz, cpus: t.cpus })) as ChromeTrace;
  const d = buildTimeline('v41', [{ label: 'vlpi-v41', source: 'tracedVgicV4', trace }]);
  const styleOf = (name: string): number[] => [...new Set(itemsNamed(d, name).map((i) => d.itemStyle[i]!))];

  it('orders the ITS lane first, the doorbell lane before the CPUs, and the vPE lane under its vCPU', () => {
    expect(d.lanes.map((l) => `${l.kind}:${l.label}`)).toEqual([
      'its:ITS',
      'gic:INTID 0 (SGI: IPI) GIC state',
      'doorbell:vPE doorbells',
      'cpu:CPU 0',
      'cpu:CPU 1',
      'vcpu:vCPU 0',
      'vpe:vCPU 0 vPE',
    ]);
    const vpe = d.lanes.find((l) => l.kind === 'vpe')!;
    expect(vpe.slices).toBe(true);
  });

  it('styles the residency band, the direct vLPIs and the doorbells', () => {
    expect(styleOf('vPE resident')).toEqual([STYLE_RESIDENT]);
    expect(styleOf('gic_vlpi_iar')).toEqual([STYLE_DIRECT_VLPI]);
    expect(styleOf('gic_vpe_doorbell')).toEqual([STYLE_DOORBELL]);
    expect(styleOf('vgic_v4_doorbell')).toEqual([STYLE_DOORBELL]);
    expect(itemsNamed(d, 'vPE resident').length).toBe(3);
    expect(itemsNamed(d, 'gic_vlpi_iar').length).toBe(2);
  });

  it('starts the run at its first MSI (the first its_translate), as a line-less run has no device_assert', () => {
    expect(d.runs[0]!.originIsIrq).toBe(true);
    const first = itemsNamed(d, 'its_translate').map((i) => d.itemStart[i]!);
    expect(Math.min(...first)).toBe(0);
    expect(d.startNs).toBeLessThan(0); // the boot and the ITS commands before it
  });
});
