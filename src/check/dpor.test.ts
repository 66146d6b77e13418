import { describe, expect, it } from 'vitest';
import { createGuestKernel } from '../guest/guestKernel.js';
import { createHost } from '../machine.js';
import { C_NONE } from '../sim/costs.js';
import { op, type TaskGen } from '../sim/task.js';
import { explore, type Reduction } from './explore.js';
import { type CheckableScenario, raceScenario } from './model.js';

// Plain enumeration ('none') is only affordable with two threads: each thread also takes three scheduling steps
// of its own CPU (the switch from the idle task, ...), so three threads of two accesses already have 756,756 orders.

/**
 * A synthetic checkable scenario: one thread per CPU, each a list of steps over shared variables (a step reads or
 * writes one variable and touches its object). The last thread to finish records the final state — every
 * variable and every value read — so that the set of end states of an exploration can be compared.
 */
type Access = { readonly w: string; readonly v: number } | { readonly r: string };

function program(name: string, threads: readonly (readonly Access[])[], ends: Set<string>): CheckableScenario {
  const base = raceScenario();
  return {
    ...base,
    name,
    build() {
      const host = createHost({ cpus: threads.length, devices: [] });
      const e = host.engine;
      const guest = createGuestKernel({ engine: e, gic: host.irq.gic, vcpus: 1, devices: [] });
      const mem = new Map<string, number>();
      const oid = new Map<string, number>();
      const reads: string[] = threads.map(() => '');
      let running = threads.length;
      for (const t of threads)
        for (const a of t) {
          const x = 'w' in a ? a.w : a.r;
          if (!oid.has(x)) {
            oid.set(x, e.newOid(x));
            mem.set(x, 0);
          }
        }
      threads.forEach((steps, i) => {
        function* body(): TaskGen<void> {
          for (const a of steps) {
            yield op(C_NONE, oid.get('w' in a ? a.w : a.r)!);
            if ('w' in a) mem.set(a.w, a.v);
            else reads[i] += `${a.r}=${mem.get(a.r)} `;
          }
          if (--running === 0) ends.add(`${[...mem].map(([k, v]) => `${k}=${v}`).join(',')} | ${reads.join('| ')}`);
        }
        e.spawn(`t${i}`, i, body());
      });
      return {
        host,
        guest,
        device: undefined as never,
        line: 0,
        raises: 0,
        lines: [],
        control: [],
        teardown: () => {},
      };
    },
  };
}

function run(threads: readonly (readonly Access[])[], reduction: Reduction) {
  const ends = new Set<string>();
  const r = explore(program('synthetic', threads, ends), { reduction, teardown: false });
  expect(r.counterexample).toBeNull();
  expect(r.completeness).toBe('exhaustive');
  return { complete: r.stats.complete, schedules: r.stats.schedules, ends: [...ends].sort() };
}

const w = (x: string, v: number): Access => ({ w: x, v });
const r = (x: string): Access => ({ r: x });

describe('source-set DPOR on programs with a known number of Mazurkiewicz traces', () => {
  it('two independent writers: one trace; plain enumeration runs every interleaving', () => {
    const p = [
      [w('x', 1), w('x', 2)],
      [w('y', 1), w('y', 2)],
    ];
    const d = run(p, 'dpor');
    expect(d.complete).toBe(1);
    expect(d.ends).toEqual(['x=2,y=2 | | ']);
    expect(run(p, 'none').complete).toBeGreaterThan(1);
  });

  it('n writers to one object, each reading it back: every write order is an end state, as sleep sets find', () => {
    for (const n of [2, 3]) {
      const p = Array.from({ length: n }, (_, i) => [w('x', i + 1), r('x')]);
      const d = run(p, 'dpor');
      const sleep = run(p, 'sleep');
      expect(d.ends).toEqual(sleep.ends);
      if (n === 2) expect(d.ends).toEqual(run(p, 'none').ends);
      // the last writer decides x: n outcomes; the reads distinguish more traces
      expect(new Set(d.ends.map((s) => s.split(' | ')[0])).size).toBe(n);
      expect(d.complete).toBeGreaterThanOrEqual(d.ends.length);
      expect(d.schedules).toBeLessThan(sleep.schedules);
    }
  });

  it('single writes only: n writers of one object give exactly n! complete schedules', () => {
    for (const [n, fact] of [
      [2, 2],
      [3, 6],
      [4, 24],
    ] as const) {
      expect(
        run(
          Array.from({ length: n }, (_, i) => [w('x', i + 1)]),
          'dpor',
        ).complete,
      ).toBe(fact);
    }
  });

  it('x=1 | y=1 | r1=x; r2=y: four traces, the same end states as sleep-set enumeration', () => {
    const p = [[w('x', 1)], [w('y', 1)], [r('x'), r('y')]];
    const d = run(p, 'dpor');
    const sleep = run(p, 'sleep');
    expect(d.complete).toBe(4);
    expect(d.ends).toEqual(sleep.ends);
    expect(d.ends).toHaveLength(4);
    expect(sleep.schedules).toBeGreaterThan(d.schedules);
  });

  it('store buffering shape (x=1; r=y | y=1; s=x): the three reachable outcomes, not the fourth', () => {
    const p = [
      [w('x', 1), r('y')],
      [w('y', 1), r('x')],
    ];
    const d = run(p, 'dpor');
    expect(d.ends).toEqual(run(p, 'none').ends);
    expect(d.ends.map((s) => s.split(' | ').slice(1).join(' | ')).sort()).toEqual([
      'y=0 | x=1 ',
      'y=1 | x=0 ',
      'y=1 | x=1 ',
    ]);
    expect(d.complete).toBe(3);
  });
});
