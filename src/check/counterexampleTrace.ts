/**
 * A counterexample as a trace: the saved schedule is replayed exactly as `irqfwd check --replay` does (same
 * Execution, same strict prefix chooser, same teardown), with the tracepoints of the concurrent phase recorded into
 * a Tracer, and rendered with the writers `irqfwd trace` uses — text (tracefs) with a comment line at each schedule
 * step boundary, or Chrome JSON with one `check_step` instant per step and one `check_violation` instant.
 *
 * Which steps "matter" (are marked): an explicit choice of the saved prefix that differs from the default order's
 * choice (execution.ts defaultChoice) and whose replacement by the default choice — the rest of the prefix
 * replayed as far as it stays choosable — makes the saved invariant's violation disappear. Steps the default order
 * took, and explicit choices the violation does not depend on, are unmarked. An empty set means the default order
 * alone violates the invariant (no interleaving needed).
 */

import { HostTrace } from '../scenario/hostTrace.js';
import { oidOf, writes } from '../sim/footprint.js';
import { cpuTid, PID_HOST, writeChromeJson } from '../trace/chromeJsonWriter.js';
import { cyclesToNs, writeText } from '../trace/textWriter.js';
import { Tracer } from '../trace/tracer.js';
import {
  type Choosable,
  type Chooser,
  defaultChoice,
  Execution,
  PrefixChooser,
  type RunResult,
  runSchedule,
} from './execution.js';
import type { CheckableScenario } from './model.js';
import { type ReplayFile, scenarioOfReplay } from './replay.js';
import { stepMark } from './stepMark.js';

/** Category of the checker's own instants in the Chrome JSON (a viewer keys on it). */
export const CHECK_CAT = 'irqfwd.check';
/** Track (Host CPUs process) that carries the schedule's instants. */
export const CHECK_TID = 99;

export interface CheckStep {
  readonly index: number;
  readonly agent: number;
  /** The agent as the engine describes it before the step (`cpu0(ctl-7)`, `timer:device.raise`). */
  readonly agentName: string;
  /** What the step did: the agent and the objects it touched (`*`: a global step). */
  readonly what: string;
  readonly marked: boolean;
  /** Whether it was an explicit choice of the saved prefix (else the default order took it). */
  readonly explicit: boolean;
  /** Virtual time (cycles) when the step ran. */
  readonly at: number;
  /** Ring records written before this step. */
  readonly ringStart: number;
}

export interface CounterexampleRun {
  readonly tracer: Tracer;
  readonly hz: number;
  readonly cpus: number;
  readonly steps: readonly CheckStep[];
  readonly result: RunResult;
  readonly invariant: string;
}

export interface ChromeTraceEvent {
  readonly name: string;
  readonly ph: string;
  readonly [key: string]: unknown;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: string;
  otherData: Record<string, unknown>;
}

const RING_CAPACITY = 1 << 18;

/** Replays `prefix` but takes the default choice at step `flip`; later prefix choices that are not choosable fall back to the default order. */
class FlipChooser implements Chooser {
  private i = 0;
  constructor(
    private readonly prefix: readonly number[],
    private readonly flip: number,
  ) {}

  choose(c: Choosable): number {
    const k = this.i++;
    if (k >= this.prefix.length || k === this.flip) return defaultChoice(c);
    const a = this.prefix[k]!;
    return c.includes(a) ? a : defaultChoice(c);
  }
}

/** The indices of the prefix's choices that matter for `invariant` (see the file comment). */
export function markedSteps(scenario: CheckableScenario, prefix: readonly number[], invariant: string): Set<number> {
  const nonDefault: number[] = [];
  const probe = new Execution(scenario);
  const base = new PrefixChooser(prefix);
  runSchedule(probe, {
    choose: (c) => {
      const k = c.ex.steps;
      const a = base.choose(c);
      if (k < prefix.length && a !== defaultChoice(c)) nonDefault.push(k);
      return a;
    },
  });
  const out = new Set<number>();
  for (const k of nonDefault) {
    const r = runSchedule(new Execution(scenario), new FlipChooser(prefix, k));
    if (!r.violations.some((v) => v.invariant === invariant)) out.add(k);
  }
  return out;
}

/** Replay `prefix` on `scenario` with tracing on, recording each step. */
export function traceCounterexample(
  scenario: CheckableScenario,
  prefix: readonly number[],
  invariant = '',
): CounterexampleRun {
  const ex = new Execution(scenario);
  const e = ex.engine;
  const tracer = new Tracer({ capacity: RING_CAPACITY, mode: 'stop', time: e });
  // the tracepoints of `irqfwd trace`, from the end of the set-up on (the concurrent phase only)
  new HostTrace(tracer, ex.inst.host).install(ex.inst.guests ?? [ex.inst.guest]);
  const chooser = new PrefixChooser(prefix);
  const steps: CheckStep[] = [];
  const pending: { agent: number; name: string; at: number; ringStart: number }[] = [];
  const result = runSchedule(ex, {
    choose: (c) => {
      const a = chooser.choose(c);
      pending.push({ agent: a, name: e.describeAgent(a), at: e.now, ringStart: tracer.ring.size });
      return a;
    },
    stepped: (_x, a, touch) => {
      const p = pending.pop()!;
      const objs = touch === null ? '*' : touch.map((o) => `${e.oidName(oidOf(o))}${writes(o) ? '' : ':r'}`).join(' ');
      steps.push({
        index: steps.length,
        agent: a,
        agentName: p.name,
        what: `${p.name} [${objs}]`,
        marked: false,
        explicit: steps.length < prefix.length,
        at: p.at,
        ringStart: p.ringStart,
      });
    },
  });
  // a step that threw (a model error) never reached stepped(): record it too, it is where the violation happened
  const thrown = pending.pop();
  if (thrown !== undefined) {
    steps.push({
      index: steps.length,
      agent: thrown.agent,
      agentName: thrown.name,
      what: `${thrown.name} [threw]`,
      marked: false,
      explicit: steps.length < prefix.length,
      at: thrown.at,
      ringStart: thrown.ringStart,
    });
  }
  const inv = invariant !== '' ? invariant : (result.violations[0]?.invariant ?? '');
  const marks = inv !== '' && result.violations.length > 0 ? markedSteps(scenario, prefix, inv) : new Set<number>();
  const marked = steps.map((s) => (marks.has(s.index) ? { ...s, marked: true } : s));
  return { tracer, hz: e.clock.hz, cpus: e.cpus.length, steps: marked, result, invariant: inv };
}

function violationLines(run: CounterexampleRun): string[] {
  if (run.result.violations.length === 0)
    return [`# no violation: the schedule ran to quiescence with every invariant holding (saved: ${run.invariant})`];
  return run.result.violations.map((v) => `# violated: ${v.invariant}: ${v.message}`);
}

/**
 * The counterexample in the text format of `irqfwd trace` (tracefs), with a `# step N` comment line before each
 * schedule step's records (`*` after the number: the step matters) and the violated invariants at the end.
 */
export function counterexampleText(run: CounterexampleRun): string {
  const text = writeText(run.tracer, { hz: run.hz, cpus: run.cpus });
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const size = run.tracer.ring.size;
  const header = lines.slice(0, lines.length - size);
  const records = lines.slice(lines.length - size);
  const out = [...header];
  const marked = run.steps.filter((s) => s.marked).map((s) => s.index);
  const none = run.result.violations.length > 0 ? 'none: the default order alone violates' : 'none: nothing violated';
  out.push(
    `# check: ${run.steps.length} step(s); '# step N*' marks a step that matters (${marked.length > 0 ? marked.join(', ') : none}); '(default)' a step of the default order`,
  );
  let r = 0;
  for (const s of run.steps) {
    while (r < s.ringStart && r < records.length) out.push(records[r++]!);
    out.push(`# ${stepMark(s.index, s.marked)} ${s.what}${s.explicit ? '' : ' (default)'}`);
  }
  while (r < records.length) out.push(records[r++]!);
  out.push(...violationLines(run));
  return `${out.join('\n')}\n`;
}

/** The counterexample as Chrome JSON: the trace writer's events plus the checker's instants. */
export function counterexampleChrome(run: CounterexampleRun): ChromeTrace {
  const base = JSON.parse(writeChromeJson(run.tracer, { hz: run.hz, cpus: run.cpus })) as ChromeTrace;
  const us = (cycles: number): number => Number(cyclesToNs(cycles, run.hz)) / 1000;
  const events: ChromeTraceEvent[] = [
    { name: 'thread_name', ph: 'M', pid: PID_HOST, tid: CHECK_TID, args: { name: 'check schedule' } },
    { name: 'thread_sort_index', ph: 'M', pid: PID_HOST, tid: CHECK_TID, args: { sort_index: CHECK_TID } },
  ];
  for (const s of run.steps) {
    events.push({
      name: 'check_step',
      cat: CHECK_CAT,
      ph: 'i',
      s: 't',
      ts: us(s.at),
      pid: PID_HOST,
      tid: s.agent < run.cpus ? cpuTid(s.agent) : CHECK_TID,
      args: { index: s.index, agent: s.agentName, marked: s.marked, what: s.what },
    });
  }
  const last = run.steps.at(-1)?.at ?? 0;
  const v = run.result.violations[0];
  events.push({
    name: 'check_violation',
    cat: CHECK_CAT,
    ph: 'i',
    s: 'g',
    ts: us(last),
    pid: PID_HOST,
    tid: CHECK_TID,
    args: v
      ? {
          invariant: v.invariant,
          message: [v.message, ...run.result.violations.slice(1).map((x) => `${x.invariant}: ${x.message}`)].join('\n'),
        }
      : { invariant: 'none', message: `not reproduced (saved: ${run.invariant})` },
  });
  // keep metadata first, then everything by time (stable: the writer's order, then the checker's)
  const meta = base.traceEvents.filter((x) => x.ph === 'M');
  const rest = base.traceEvents.filter((x) => x.ph !== 'M');
  const merged = [...rest, ...events.filter((x) => x.ph !== 'M')]
    .map((x, i) => ({ x, i }))
    .sort((a, b) => ((a.x.ts as number) ?? 0) - ((b.x.ts as number) ?? 0) || a.i - b.i)
    .map((o) => o.x);
  return {
    traceEvents: [...meta, ...events.filter((x) => x.ph === 'M'), ...merged],
    displayTimeUnit: base.displayTimeUnit,
    otherData: { ...base.otherData, check: { steps: run.steps.length, invariant: v?.invariant ?? 'none' } },
  };
}

/** Chrome JSON text in the trace writer's layout (one event a line). */
export function formatChromeTrace(t: ChromeTrace): string {
  const lines = t.traceEvents.map((o) => JSON.stringify(o));
  return `{"traceEvents":[\n${lines.join(',\n')}\n],\n"displayTimeUnit":${JSON.stringify(t.displayTimeUnit)},\n"otherData":${JSON.stringify(t.otherData)}}\n`;
}

/** A replay file's counterexample as Chrome JSON (what `irqfwd trace --replay FILE --format perfetto` writes). */
export function replayToChromeTrace(file: ReplayFile): ChromeTrace {
  return counterexampleChrome(traceCounterexample(scenarioOfReplay(file), file.schedule, file.invariant));
}

/** A replay file's counterexample as text (what `irqfwd trace --replay FILE` prints). */
export function replayToText(file: ReplayFile): string {
  return counterexampleText(traceCounterexample(scenarioOfReplay(file), file.schedule, file.invariant));
}
