import { describe, expect, it } from 'vitest';
import { stateHash } from '../sim/snapshot.js';
import { startingMachine, startsFromCopy } from './machineCopy.js';
import type { CheckableScenario, CheckInstance } from './model.js';

/** A scenario whose machine is `make()`'s plain data; counts its builds. */
function counting(make: () => object): { scenario: CheckableScenario; builds: () => number } {
  let n = 0;
  const scenario = {
    name: 'plain',
    build() {
      n++;
      return make() as unknown as CheckInstance;
    },
  } as unknown as CheckableScenario;
  return { scenario, builds: () => n };
}

describe('startingMachine: build once, start every schedule from a copy', () => {
  it('a copyable machine is built once; each schedule gets its own copy of it', () => {
    const { scenario, builds } = counting(() => ({ cpus: [{ pc: 3, regs: new Uint32Array(4) }] }));
    const a = startingMachine(scenario) as unknown as { cpus: { pc: number; regs: Uint32Array }[] };
    const b = startingMachine(scenario) as unknown as { cpus: { pc: number; regs: Uint32Array }[] };
    expect(builds()).toBe(1);
    expect(startsFromCopy(scenario)).toBe(true);
    expect(a).not.toBe(b);
    expect(stateHash(a)).toBe(stateHash(b));
    a.cpus[0]!.regs[0] = 1;
    expect(b.cpus[0]!.regs[0]).toBe(0);
  });

  it('a machine holding a capturing function (a teardown closure) is rebuilt for each schedule', () => {
    const { scenario, builds } = counting(() => {
      const state = { done: false };
      return { state, teardown: () => Object.assign(state, { done: true }) };
    });
    startingMachine(scenario);
    startingMachine(scenario);
    expect(builds()).toBe(2);
    expect(startsFromCopy(scenario)).toBe(false);
  });

  it('copyMachine false always builds', () => {
    const { scenario, builds } = counting(() => ({ x: 1 }));
    startingMachine(scenario, false);
    startingMachine(scenario, false);
    expect(builds()).toBe(2);
  });
});
