import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CliIo, EXIT_FAIL, main } from '../cli/commands.js';
import type { ScenarioRunner } from '../scenario/runnerApi.js';
import {
  CHECK_CAT,
  markedSteps,
  replayToChromeTrace,
  replayToText,
  traceCounterexample,
} from './counterexampleTrace.js';
import { replay } from './explore.js';
import { raceScenario } from './model.js';
import { parseReplayFile } from './replay.js';

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
