import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import { createHost, type Host } from '../machine.js';
import { C_NONE } from '../sim/costs.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op, type TaskGen } from '../sim/task.js';
import { Execution, FAIR_RUN, PrefixChooser, runSchedule } from './execution.js';
import { type ExploreOptions, explore, unboundedSearch } from './explore.js';
import {
  bypassRaceScenario,
  type CheckableScenario,
  type CheckInstance,
  type CheckOptions,
  raceScenario,
} from './model.js';
import { scenarioFromYaml } from './scenarioCheck.js';
import { stateKey } from './stateKey.js';

/**
 * The stateful search reaches the end states and the verdict of the stateless plain enumeration at `bound` (bounded
 * DPOR is no reference: at assign-race bound 1 it reaches 22 of the 29 end states, telling them apart by everything
 * the key holds — the invariants' view, dporScenario.test.ts, is the same). Every machine here can be copied and
 * keyed: their task bodies are frames (a generator or a closure in state would make the stateful search refuse).
 */
function sameAsEnumeration(make: () => CheckableScenario, bound: number): ReturnType<typeof ends> {
  const stateful = ends(make(), { bound, search: 'stateful' });
  const plain = ends(make(), { bound, reduction: 'none' });
  expect(stateful.verdict).toBe(plain.verdict);
  expect(stateful.keys).toEqual(plain.keys);
  return stateful;
}

/** A search's verdict and the keys of every end state it reached (taken before the end-of-run checks). */
function ends(scenario: CheckableScenario, opts: ExploreOptions) {
  const keys = new Set<string>();
  const r = explore(scenario, { ...opts, shrink: false, onEnd: (ex) => keys.add(stateKey(ex, false)) });
  const verdict = r.counterexample === null ? 'pass' : r.counterexample.violations[0]!.invariant;
  return { verdict, keys: [...keys].sort(), stats: r.stats };
}

describe('stateful search against the stateless search', () => {
  it('assign-race, bound 1: the end states and verdict of plain enumeration, each distinct end state judged once', () => {
    const r = sameAsEnumeration(() => raceScenario(), 1);
    expect(r.verdict).toBe('pass');
    // judged states: one per key (the key holds the bound's state: last agent, preemptions)
    expect(r.stats.complete).toBeLessThanOrEqual(r.stats.distinct);
    expect(r.stats.revisits).toBeGreaterThan(0);
  });

  it('bypass-race, bound 1: the end states and verdict of plain enumeration (irqbypass, vfio_set_trigger as frames)', () => {
    const r = sameAsEnumeration(() => bypassRaceScenario({}), 1);
    expect(r.verdict).toBe('pass');
    expect(r.keys.length).toBeGreaterThan(1);
  });

  it('the naive variant: both searches find a violation of the same invariant, and it shrinks', () => {
    const stateless = explore(raceScenario({ variant: 'naive' }), { bound: 1, shrink: false });
    const stateful = explore(raceScenario({ variant: 'naive' }), { bound: 1, search: 'stateful' });
    expect(stateful.search).toBe('stateful');
    expect(stateful.counterexample!.violations[0]!.invariant).toBe(stateless.counterexample!.violations[0]!.invariant);
    expect(stateful.counterexample!.schedule.length).toBeLessThan(stateful.counterexample!.found.length);
  });
});

// check-assign-race is the built-in race (above); check-two-vms and check-retarget are left out: plain enumeration
// at bound 1 runs for minutes there. These five take ≈ 4 s together (load 3).
const SHIPPED = [
  'check-enomem',
  'check-deassign-unassigned',
  'check-closed-fd',
  'check-bad-gsi',
  'check-assign-before-vcpu',
];

const shipped =
  (name: string, opts: CheckOptions = {}) =>
  () =>
    scenarioFromYaml(readFileSync(new URL(`../../scenarios/${name}.yaml`, import.meta.url), 'utf8'), name, opts);

describe('stateful search on the shipped check-*.yaml files (bound 1)', () => {
  for (const name of SHIPPED) {
    it(`${name}: the end states and verdict of plain enumeration`, () => {
      expect(sameAsEnumeration(shipped(name), 1).verdict).toBe('pass');
    });
  }

  // defect 8 (reach.test.ts): ASSIGN before any vCPU, KVM_CREATE_VCPU and kvm_vm_ioctl_create_vcpu's frame in the phase
  it.each(['linear', 'legacy'] as const)(
    'check-assign-before-vcpu, rfc-v1 %s: no-model-error (kvm_get_vcpu(kvm, 0) is NULL), as plain enumeration',
    (irqNumbering) => {
      const make = shipped('check-assign-before-vcpu', { variant: 'rfc-v1', irqNumbering });
      expect(sameAsEnumeration(make, 1).verdict).toBe('no-model-error');
      const r = explore(make(), { bound: 1, search: 'stateful', shrink: false });
      expect(r.counterexample!.violations[0]!.message).toMatch(/kvm_get_vcpu\(kvm, 0\) is NULL/);
    },
  );
});

// Unbounded, where sleep sets are on: small programs whose state is plain data (threads as frames), so that plain
// enumeration finishes. A step reads or writes one variable and touches its object; every value read is kept.
type Access = { readonly w: number; readonly v: number } | { readonly r: number };

class Memory {
  readonly vals: number[] = [0, 0];
  /** Each thread's values read, in its order (a list per thread: a shared list would be an undeclared access). */
  readonly reads: number[][] = [[], []];
}

class Thread extends Frame {
  private i = 0;
  constructor(
    private readonly steps: readonly Access[],
    private readonly mem: Memory,
    private readonly oids: readonly number[],
    private readonly me: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) {
      const a = this.steps[this.i++]!;
      if ('w' in a) this.mem.vals[a.w] = a.v;
      else this.mem.reads[this.me]!.push(this.mem.vals[a.r]!);
    }
    if (this.i === this.steps.length) return this.return_(undefined);
    const a = this.steps[this.i]!;
    this.pc = 1;
    return this.yield_(op(C_NONE, this.oids['w' in a ? a.w : a.r]!));
  }
}

class Program implements CheckInstance {
  readonly lines = [];
  readonly device = undefined as never;
  readonly line = 0;
  readonly raises = 0;
  readonly control = [];
  constructor(
    readonly host: Host,
    readonly guest: GuestKernel,
  ) {}
  teardown(): void {}
}

/** The accesses of a thread as a generator: what a guest program written as one is (no readable state). */
function* accesses(steps: readonly Access[], mem: Memory, oids: readonly number[], me: number): TaskGen<void> {
  for (const a of steps) {
    yield op(C_NONE, oids['w' in a ? a.w : a.r]!);
    if ('w' in a) mem.vals[a.w] = a.v;
    else mem.reads[me]!.push(mem.vals[a.r]!);
  }
}

/** A thread (a frame) that calls the generator of its accesses in its first step: one only after the set-up. */
class GeneratorCaller extends Frame {
  constructor(private readonly args: Parameters<typeof accesses>) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) return this.return_(undefined);
    this.pc = 1;
    return this.call(accesses(...this.args));
  }
}

function program(threads: readonly (readonly Access[])[], generators = false): CheckableScenario {
  return {
    ...raceScenario(),
    name: 'program',
    build() {
      const host = createHost({ cpus: threads.length, devices: [] });
      const e = host.engine;
      const guest = createGuestKernel({ engine: e, gic: host.irq.gic, vcpus: 1, devices: [] });
      const mem = new Memory();
      const oids = [e.newOid('x'), e.newOid('y')];
      for (let i = 0; i < threads.length; i++) {
        const args = [threads[i]!, mem, oids, i] as const;
        e.spawn(`t${i}`, i, generators ? new GeneratorCaller([...args]) : new Thread(...args));
      }
      return new Program(host, guest);
    },
  };
}

const w = (x: number, v: number): Access => ({ w: x, v });
const r = (x: number): Access => ({ r: x });

// the forced states (at most one agent to take, followed without a key) on a shipped file: nothing the verdict sees changes
it('check-deassign-unassigned, unbounded: the end states and verdict of the stateless DPOR, with forced states unkeyed', () => {
  const file = new URL('../../scenarios/check-deassign-unassigned.yaml', import.meta.url);
  const make = () => scenarioFromYaml(readFileSync(file, 'utf8'), 'check-deassign-unassigned');
  const dpor = ends(make(), {});
  const stateful = ends(make(), { search: 'stateful' });
  expect(stateful.verdict).toBe(dpor.verdict);
  expect(stateful.keys).toEqual(dpor.keys);
  expect(stateful.stats.forced).toBeGreaterThan(0);
  expect(stateful.stats.states).toBeGreaterThanOrEqual(stateful.stats.distinct + stateful.stats.forced);
});

// A task body that is still a generator (a guest program written as one; no shipped scenario has one since KVM's code is
// frames): its state can be neither copied nor keyed, so the stateful search refuses it and --bound none keeps DPOR.
it('a generator met after the set-up: the stateful search refuses the machine, the stateless DPOR checks it', () => {
  const threads = [[w(0, 1)], [r(0)]];
  expect(unboundedSearch(program(threads, true))).toBe('stateful'); // copyable at the start of the phase
  expect(() => explore(program(threads, true), { search: 'stateful', teardown: false })).toThrow(
    /the machine of program cannot be copied: stateHash: a suspended generator has no readable state/,
  );
  const dpor = ends(program(threads, true), { teardown: false });
  expect(dpor.verdict).toBe('pass');
  expect(dpor.keys.length).toBe(2); // the reader sees 0 or 1
});

/** A thread that counts until the flag (variable 1) is set: alone it never stops, and every state it passes is new. */
class Counter extends Frame {
  constructor(
    private readonly mem: Memory,
    private readonly oids: readonly number[],
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.mem.vals[1] === 1) return this.return_(undefined);
    this.mem.vals[0]!++;
    return this.yield_(op(C_NONE, this.oids[0]!));
  }
}

/** A counter (CPU 0) and a thread that sets its flag (CPU 1). */
function counterProgram(): CheckableScenario {
  return {
    ...raceScenario(),
    name: 'counter',
    build() {
      const host = createHost({ cpus: 2, devices: [] });
      const e = host.engine;
      const guest = createGuestKernel({ engine: e, gic: host.irq.gic, vcpus: 1, devices: [] });
      const mem = new Memory();
      const oids = [e.newOid('x'), e.newOid('y')];
      e.spawn('count', 0, new Counter(mem, oids));
      e.spawn('stop', 1, new Thread([w(1, 1)], mem, oids, 1));
      return new Program(host, guest);
    },
  };
}

describe('the default order is fair: an agent that never stops yields after FAIR_RUN steps in a row', () => {
  it('a counter run in the default order lets the other thread set its flag after FAIR_RUN steps, and the run ends', () => {
    const ex = new Execution(counterProgram(), { teardown: false });
    const r = runSchedule(ex, new PrefixChooser([]));
    expect(r.end).toBe('quiescent');
    expect(r.schedule.slice(0, FAIR_RUN).every((a) => a === 0)).toBe(true);
    expect(r.schedule[FAIR_RUN]).toBe(1);
  });

  it('the stateful search continues a run cut at the step budget in the default order and judges its end', () => {
    // budget below FAIR_RUN: the first path (the counter alone) is cut; continued fairly, it ends
    const judged: number[] = [];
    const r = explore(counterProgram(), {
      search: 'stateful',
      teardown: false,
      budget: 500,
      onEnd: (ex) => judged.push(ex.steps),
    });
    expect(r.stats.budgetHit).toBeGreaterThan(0);
    expect(Math.max(...judged)).toBeGreaterThan(FAIR_RUN); // a cut path's end: the counter FAIR_RUN steps in a row, then the flag
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('cut');
  });

  it('the stateless DPOR search does the same with its runs cut at the budget', () => {
    const judged: number[] = [];
    const r = explore(counterProgram(), { teardown: false, budget: 500, onEnd: (ex) => judged.push(ex.steps) });
    expect(r.stats.budgetHit).toBeGreaterThan(0);
    expect(Math.max(...judged)).toBeGreaterThan(FAIR_RUN);
    expect(r.counterexample).toBeNull();
  });

  // irqfd_resampler_shutdown unregisters the ack notifier before it lowers the line (virt/kvm/eventfd.c): a guest EOI
  // in between leaves the level vIRQ pending, and the vCPU takes it again, finding nothing, until the worker lowers
  // it. Runs in which the vCPU alone runs meanwhile are cut at the budget; continued fairly, the worker runs and one ends.
  it('teardown-inflight, unbounded: the level vIRQ re-delivered while its irqfd resampler shuts down, found past the budget (no-duplicate-irq)', () => {
    const file = new URL('../../scenarios/teardown-inflight.yaml', import.meta.url);
    const r = explore(scenarioFromYaml(readFileSync(file, 'utf8'), 'teardown-inflight'), { search: 'stateful' });
    expect(r.counterexample?.violations[0]?.invariant).toBe('no-duplicate-irq');
    expect(r.counterexample?.violations[0]?.message).toMatch(/with no condition pending\) for 1 host delivery/);
    expect(r.counterexample!.schedule.length).toBeLessThan(200);
  });
});

describe('unbounded stateful search (sleep sets + state caching) against plain enumeration', () => {
  for (const [name, threads] of [
    [
      'store buffering',
      [
        [w(0, 1), r(1)],
        [w(1, 1), r(0)],
      ],
    ],
    [
      'two writers and a reader of one variable',
      [
        [w(0, 1), w(0, 2), w(1, 3)],
        [r(0), r(1), r(0)],
      ],
    ],
  ] as const) {
    it(`${name}: the same end states, each judged once, with fewer transitions than plain enumeration`, () => {
      const plain = ends(program(threads), { reduction: 'none', teardown: false });
      const sleep = ends(program(threads), { search: 'stateful', teardown: false });
      const cached = ends(program(threads), { search: 'stateful', reduction: 'none', teardown: false });
      expect(plain.verdict).toBe('pass');
      expect(plain.keys.length).toBeGreaterThan(2);
      expect(sleep.keys).toEqual(plain.keys);
      expect(cached.keys).toEqual(plain.keys);
      expect(sleep.stats.complete).toBe(plain.keys.length);
      expect(sleep.stats.forced).toBeGreaterThan(0); // a thread alone after the other ended: followed unkeyed
      expect(sleep.stats.steps).toBeLessThan(cached.stats.steps);
      expect(cached.stats.steps).toBeLessThan(plain.stats.steps);
    });

    it(`${name}: unbounded, the verdict and end states of the stateless DPOR, with a complete verdict`, () => {
      const dpor = ends(program(threads), { teardown: false });
      const stateful = explore(program(threads), { search: 'stateful', teardown: false });
      const keys = ends(program(threads), { search: 'stateful', teardown: false }).keys;
      expect(stateful.completeness).toBe('exhaustive');
      expect(stateful.counterexample).toBeNull();
      expect(dpor.verdict).toBe('pass');
      expect(keys).toEqual(dpor.keys);
      // every distinct state explored once, each end state judged once
      expect(stateful.stats.distinct).toBeLessThanOrEqual(stateful.stats.states);
      expect(stateful.stats.complete).toBe(dpor.keys.length);
    });
  }
});
