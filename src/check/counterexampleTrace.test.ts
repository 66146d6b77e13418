import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type CliIo, EXIT_FAIL, main } from '../cli/commands.js';
import type { ScenarioRunner } from '../scenario/runnerApi.js';
import {
  CHECK_CAT,
  counterexampleChrome,
  counterexampleText,
  markedSteps,
  replayToChromeTrace,
  replayToText,
  traceCounterexample,
} from './counterexampleTrace.js';
import { replay } from './explore.js';
import { raceScenario } from './model.js';
import { parseReplayFile } from './replay.js';
import { scenarioFromYaml } from './scenarioCheck.js';

function captureIo(files: Map<string, string>): CliIo & { out: () => string } {
  let out = '';
  let t = 0;
  return {
    out: () => out,
    stdout: (s) => {
      out += s;
    },
    stderr: () => {},
    stderrIsTTY: false,
    now: () => ++t,
    readFile: (p) => files.get(p) ?? readFileSync(p, 'utf8'),
    writeFile: (p, d) => {
      files.set(p, d);
    },
    exists: (p) => files.has(p),
    tmpdir: () => '/tmp/test',
  };
}

const noRunner: ScenarioRunner = {
  run: () => {
    throw new Error('not used');
  },
};

/** The naive race's counterexample, found and saved by `irqfwd check` (one search for the whole file). */
const saved = (async () => {
  const files = new Map<string, string>();
  const io = captureIo(files);
  const code = await main(['check', '--variant', 'naive', '-q', '-o', '/tmp/test/cx.json'], noRunner, io);
  return { code, out: io.out(), files, file: parseReplayFile(files.get('/tmp/test/cx.json')!) };
})();

describe('counterexample traces', () => {
  it('irqfwd check prints the trace: step boundaries, the marked steps, then the violated invariant', async () => {
    const { code, out } = await saved;
    expect(code).toBe(EXIT_FAIL);
    expect(out).toMatch(/^# tracer: nop\n/);
    expect(out).toMatch(/\n# check: \d+ step\(s\); '# step N\*' marks a step that matters \(\d+/);
    expect(out).toMatch(/\n# step 0 cpu\d/);
    expect(out).toMatch(/\n# step \d+\* /);
    expect(out).toMatch(/: device_assert: dev=fff51000\.ethernet intid=80/);
    expect(out).toMatch(/\n# violated: no-irq-left-active: INTID 80 left active at quiescence\n/);
  });

  it('marked steps are explicit choices off the default order; taking the default there loses the violation', async () => {
    const { file } = await saved;
    const sc = raceScenario({ variant: 'naive' });
    const run = traceCounterexample(sc, file.schedule, file.invariant);
    const marked = run.steps.filter((s) => s.marked);
    expect(marked.length).toBeGreaterThan(0);
    for (const s of marked) {
      expect(s.explicit).toBe(true);
      expect(s.index).toBeLessThan(file.schedule.length);
    }
    expect([...markedSteps(sc, file.schedule, file.invariant)].sort()).toEqual(marked.map((s) => s.index).sort());
    // the traced replay takes the very same steps as the plain replay
    expect(run.steps.map((s) => s.agent)).toEqual([...replay(sc, file.schedule).schedule]);
  });

  it('Chrome JSON: one check_step instant per step (index, agent, marked, what), one check_violation', async () => {
    const { file } = await saved;
    const t = replayToChromeTrace(file);
    const steps = t.traceEvents.filter((e) => e.name === 'check_step');
    const run = traceCounterexample(raceScenario({ variant: 'naive' }), file.schedule, file.invariant);
    expect(steps).toHaveLength(run.steps.length);
    for (const [i, e] of steps.entries()) {
      expect(e).toMatchObject({ cat: CHECK_CAT, ph: 'i' });
      expect(Object.keys(e.args as object).sort()).toEqual(['agent', 'index', 'marked', 'what']);
      expect((e.args as { index: number }).index).toBe(i);
    }
    expect(steps.filter((e) => (e.args as { marked: boolean }).marked).length).toBe(
      run.steps.filter((s) => s.marked).length,
    );
    const v = t.traceEvents.filter((e) => e.name === 'check_violation');
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ cat: CHECK_CAT, args: { invariant: 'no-irq-left-active' } });
    expect(t.traceEvents.some((e) => e.name === 'device_assert')).toBe(true);
  });

  it('trace --replay prints what check --replay prints, byte-identical on every run', async () => {
    const { files } = await saved;
    const io1 = captureIo(files);
    const io2 = captureIo(files);
    const io3 = captureIo(files);
    expect(await main(['check', '--replay', '/tmp/test/cx.json'], noRunner, io1)).toBe(EXIT_FAIL);
    expect(await main(['trace', '--replay', '/tmp/test/cx.json'], noRunner, io2)).toBe(EXIT_FAIL);
    expect(await main(['trace', '--replay', '/tmp/test/cx.json'], noRunner, io3)).toBe(EXIT_FAIL);
    expect(io2.out()).toBe(io3.out());
    expect(io2.out()).toBe(replayToText(parseReplayFile(files.get('/tmp/test/cx.json')!)));
    expect(io1.out()).toContain(io2.out());
    const p1 = captureIo(files);
    const p2 = captureIo(files);
    await main(['trace', '--replay', '/tmp/test/cx.json', '--format', 'perfetto'], noRunner, p1);
    await main(['trace', '--replay', '/tmp/test/cx.json', '--format', 'perfetto'], noRunner, p2);
    expect(p1.out()).toBe(p2.out());
    const parsed = JSON.parse(p1.out()) as { traceEvents: { name: string }[] };
    expect(parsed.traceEvents.filter((e) => e.name === 'check_violation')).toHaveLength(1);
  });
});

/**
 * The seed's defect 3 (check-enomem, rfc-v1, legacy numbering) in the default order: the second ASSIGN fails with
 * ENOMEM after its OOM undo set the line forwarded again (insert_and_forward's set_fwd_state(pfwd, false) is
 * SET_FORWARD), so the raise reaches the guest through a HW=1 list register and the guest's EOI deactivates INTID 80.
 */
const enomem = (() => {
  const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
  const yaml = readFileSync(`${dir}check-enomem.yaml`, 'utf8');
  const sc = scenarioFromYaml(yaml, 'check-enomem', { variant: 'rfc-v1', irqNumbering: 'legacy' });
  return traceCounterexample(sc, [], 'no-irq-left-forwarded');
})();

/** check-msi-readd (GICv4.1, two MSI-X vectors forwarded as vLPIs) replayed in the default order, which passes. */
const msiDefault = (() => {
  const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
  const sc = scenarioFromYaml(readFileSync(`${dir}check-msi-readd.yaml`, 'utf8'), 'check-msi-readd');
  return traceCounterexample(sc, []);
})();

/** `event: fields` of each record line of a tracefs text, in order (the task, CPU, flags and time cut off). */
function events(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => /^\s*\S+\s+\[\d+\] \S+\s+[\d.]+: (.*)$/.exec(l)?.[1])
    .filter((e): e is string => e !== undefined);
}

describe('counterexample traces carry what a trace of the same scenario carries', () => {
  // defect 9's ownership half: vm1 forwarded vm0's device, and its destroy runs the seed's CLEANUP (free_all_fwd_irq),
  // whose blind chip->irq_eoi reaches GICC_DIR (EOImode 1) for INTID 80, which nothing made active
  it('the UNPREDICTABLE access itself: gic_unpredictable on the CPU and task that made it, before the violation', () => {
    const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
    const yaml = readFileSync(`${dir}check-two-vms.yaml`, 'utf8');
    const sc = scenarioFromYaml(yaml, 'check-two-vms', { variant: 'rfc-v1', irqNumbering: 'legacy' });
    const cx = traceCounterexample(sc, []);
    expect(cx.result.violations.map((v) => v.invariant)).toEqual(['no-gic-unpredictable']);
    const lines = counterexampleText(cx).split('\n');
    const at = lines.findIndex((l) => l.includes('gic_unpredictable:'));
    expect(lines[at]).toMatch(
      /^\s*vmm-\d+\s+\[000\] \S+\s+[\d.]+: gic_unpredictable: reg=GICC_DIR why=inactive intid=80$/,
    );
    expect(lines.filter((l) => l.includes('gic_unpredictable:'))).toHaveLength(1);
    expect(lines.findIndex((l) => l.startsWith('# violated: no-gic-unpredictable: after teardown'))).toBeGreaterThan(
      at,
    );
  });

  it('text: the switches, the raise through the host, the LR the vGIC loaded, the guest handler and its EOI', () => {
    const text = counterexampleText(enomem);
    expect(enomem.result.violations.map((v) => v.invariant)).toContain('no-irq-left-forwarded');
    const ev = events(text);
    const want = [
      'kvm_vfio_assign_irq: dev=fff51000.ethernet index=0 gsi=48 hwintid=80 ret=-12',
      'irq_forward_set: irq=80 forwarded=1 vcpu=0',
      'kvm_vfio_assign_irq: dev=fff51000.ethernet index=0 gsi=48 hwintid=80 ret=-12',
      'device_assert: dev=fff51000.ethernet intid=80 seq=1',
      'vfio_platform_irq: dev=fff51000.ethernet index=0 irq=80 action=forwarded seq=1',
      'irqfd_inject: gsi=48 vintid=80 level=1 seq=1',
      'gic_lr_write: vcpu=0 lr=0 vintid=80 pintid=80 hw=1 eoi=0 state=pending seq=1',
      'guest_irq_entry: vcpu=0 intid=80 seq=1',
      'device_deassert: dev=fff51000.ethernet intid=80 seq=1',
      'guest_eoi: vcpu=0 intid=80 seq=1',
      'vgic_hw_deactivate: vcpu=0 vintid=80 pintid=80 seq=1',
    ];
    // each in this order (other records between them)
    let at = -1;
    for (const w of want) {
      const i = ev.indexOf(w, at + 1);
      expect(i, w).toBeGreaterThan(at);
      at = i;
    }
    // the VFIO handler signals the irqfd's eventfd, under the fd the VMM holds it at
    expect(ev).toContainEqual(expect.stringMatching(/^eventfd_signal: fd=([0-9]+) count=1 seq=1$/));
    // the guest's records are on the vCPU's CPU, inside the step of the vCPU agent that ran it
    const lines = text.split('\n');
    const entry = lines.findIndex((l) => l.includes('guest_irq_entry:'));
    const eoi = lines.findIndex((l) => l.includes('guest_eoi:'));
    expect(lines[entry]).toMatch(/^\s*vcpu0-\d+\s+\[001\] d\.\.\.\. /);
    expect(lines[eoi]).toMatch(/^\s*guest\/vcpu0-\d+\s+\[001\] \.\.\.\.\. /);
    const stepOf = (i: number) => lines.slice(0, i).findLast((l) => l.startsWith('# step '));
    expect(stepOf(entry)).toMatch(/^# step \d+ cpu1\(/);
    expect(stepOf(eoi)).toMatch(/^# step \d+ cpu1\(/);
  });

  it("MSIs: the guest's handler of each vLPI (guest_irq_entry from the GICv3 driver) after its translation", () => {
    const text = counterexampleText(msiDefault);
    expect(text).toContain('(none: nothing violated)');
    expect(text).toMatch(/\n# no violation: /);
    const ev = events(text);
    for (const [event, lpi] of [
      [0, 8192],
      [1, 8193],
    ]) {
      const tr = ev.findIndex((e) => e.startsWith(`its_translate: devid=256 eventid=${event} intid=${lpi} `));
      const entry = ev.indexOf(`guest_irq_entry: vcpu=0 intid=${lpi} seq=0`);
      const eoi = ev.indexOf(`guest_eoi: vcpu=0 intid=${lpi} seq=0`);
      expect([tr >= 0, entry > tr, eoi > entry]).toEqual([true, true, true]);
    }
  });

  it("Chrome JSON: the guest handler as a vIRQ slice on the vCPU track, in the interrupt's flow", () => {
    const t = counterexampleChrome(enomem);
    const vcpu0 = { pid: 2, tid: 10000 };
    const slice = t.traceEvents.find((e) => e.name === 'vIRQ 80');
    expect(slice).toMatchObject({ ph: 'X', ...vcpu0, args: { vcpu: 0, intid: 80, seq: 1 } });
    const entry = t.traceEvents.find((e) => e.name === 'guest_irq_entry')!;
    const eoi = t.traceEvents.find((e) => e.name === 'guest_eoi')!;
    expect(entry).toMatchObject({ ...vcpu0, args: { seq: 1 } });
    expect(eoi).toMatchObject({ ...vcpu0, args: { seq: 1 } });
    expect(slice!.ts).toBe(entry.ts);
    expect((slice!.ts as number) + (slice!.dur as number)).toBeCloseTo(eoi.ts as number, 6);
    const lr = t.traceEvents.find((e) => e.name === 'gic_lr_write');
    expect(lr).toMatchObject({ pid: 2, tid: 20000, args: { vintid: 80, pintid: 80, hw: true, seq: 1 } });
    // raise 1's flow reaches the guest: a flow step on the vCPU track
    const flow = t.traceEvents.filter((e) => e.cat === 'irqfwd.flow' && e.id === 1);
    expect(flow[0]).toMatchObject({ ph: 's' });
    expect(flow.some((e) => e.pid === vcpu0.pid && e.tid === vcpu0.tid)).toBe(true);
  });
});
