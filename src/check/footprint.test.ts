import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../sim/engine.js';
import { Prng } from '../sim/prng.js';
import { copyState, findUncopyable } from '../sim/snapshot.js';
import { Execution, independent, runSchedule, type Touch } from './execution.js';
import type { CheckableScenario, CheckInstance } from './model.js';
import { bypassRaceScenario, raceScenario } from './model.js';
import { msiRaceScenario } from './msiRace.js';
import { scenarioFromYaml } from './scenarioCheck.js';
import { untimedStateHash } from './stateKey.js';

/**
 * The footprint API's soundness, tested the way DPOR relies on it: two adjacent steps of different agents whose
 * footprints do not conflict commute — from the state before them, either order is possible and both reach the same
 * state (the whole machine, fingerprinted without time: untimedStateHash). A step that read or wrote something it did
 * not declare shows up here as a swap that ends elsewhere, even when the run's end state would hide it.
 */

/** The agents the engine could step now (spin-loop filtering is the explorer's, not the model's). */
function enabled(engine: Engine): number[] {
  const out: number[] = [];
  for (let i = 0; i < engine.heap.size; i++) out.push(engine.heap.at(i));
  return out;
}

/** Step `agents` in order on the machine `inst`; fails when one of them is not enabled when its turn comes. */
function drive(inst: CheckInstance, agents: readonly number[]): CheckInstance {
  const e = inst.host.engine;
  for (const a of agents) {
    expect(enabled(e), `agent ${a} enabled`).toContain(a);
    e.stepAgent(a);
  }
  return inst;
}

/** A seeded random schedule and its footprints. */
function sample(scenario: CheckableScenario, seed: number): { schedule: number[]; touches: Touch[] } {
  const rng = new Prng(seed);
  const touches: Touch[] = [];
  const r = runSchedule(new Execution(scenario, { teardown: false }), {
    choose: (c) => c.at(rng.below(c.size)),
    stepped: (_x, _a, touch) => touches.push(touch),
  });
  expect(r.end).toBe('quiescent');
  return { schedule: [...r.schedule], touches };
}

/**
 * The untimed fingerprint after `pair` is run from the state `walk` is in (after `prefix`): on a copy of that
 * machine; or, where a task still runs as a generator (which neither a copy nor a fingerprint can read), on a machine
 * replayed to that point and settled in an order that is a function of its state alone (lowest agent not polling
 * first), so that equal states settle equally.
 */
function after(scenario: CheckableScenario, walk: Execution, prefix: readonly number[], pair: number[]): string {
  if (findUncopyable(walk.inst, 1).length === 0) {
    const inst = drive(copyState(walk.inst), pair);
    if (findUncopyable(inst, 1).length === 0) return untimedStateHash(inst, inst.host.engine);
  }
  const inst = drive(new Execution(scenario, { teardown: false }).inst, [...prefix, ...pair]);
  const e = inst.host.engine;
  for (let n = 0; e.heap.size > 0 && n < 20_000; n++) {
    const en = enabled(e).sort((x, y) => x - y);
    e.stepAgent(en.find((x) => e.nextPoll(x) < 0) ?? en[0]!);
  }
  return untimedStateHash(inst, e);
}

/**
 * Swap every adjacent independent pair of `runs` random schedules (the first `maxPairs` of each); both orders must
 * reach the same state.
 */
function checkCommutation(scenario: CheckableScenario, runs: number, seed: number, maxPairs = Infinity): number {
  let swaps = 0;
  for (let run = 0; run < runs; run++) {
    let pairs = 0;
    const { schedule, touches } = sample(scenario, seed + run);
    const walk = new Execution(scenario, { teardown: false });
    for (let i = 0; i + 1 < schedule.length; i++) {
      const a = schedule[i]!;
      const b = schedule[i + 1]!;
      if (a !== b && pairs < maxPairs && independent(touches[i]!, touches[i + 1]!)) {
        const prefix = schedule.slice(0, i);
        const ab = after(scenario, walk, prefix, [a, b]);
        const ba = after(scenario, walk, prefix, [b, a]);
        expect(ba, `run ${run}: steps ${i} (agent ${a}) and ${i + 1} (agent ${b}) declared independent`).toBe(ab);
        swaps++;
        pairs++;
      }
      walk.step(a, enabled(walk.engine));
    }
  }
  return swaps;
}

const file = (name: string): CheckableScenario => {
  const path = join(import.meta.dirname, `../../scenarios/${name}.yaml`);
  return scenarioFromYaml(readFileSync(path, 'utf8'), path);
};

describe('footprints: steps declared independent commute (the same untimed state in either order)', () => {
  it('assign-race (ASSIGN then DEASSIGN while the line fires twice and the vCPU runs), protocol', () => {
    // seed 28 puts the run loop's read of vcpu->arch.pause next to kvm_arm_halt_guest's write (once undeclared)
    expect(checkCommutation(raceScenario({ raises: 2 }), 3, 26)).toBeGreaterThan(60);
  });

  it('bypass-race (the trigger re-armed through irqbypass while the line fires twice)', () => {
    expect(checkCommutation(bypassRaceScenario({ raises: 2 }), 1, 1)).toBeGreaterThan(10);
  });

  it('msi-race (a GICv4.1 vLPI remapped while the function writes it twice and the vCPU halts), every MSI op', () => {
    const sc = msiRaceScenario({ raises: 2, msiOps: ['trigger', 'deassign', 'assign'] });
    expect(checkCommutation(sc, 2, 1)).toBeGreaterThan(10);
  });

  it("the irqfd re-added while its vector fires (check-msi-readd.yaml), 'vlpi-map-invalidates-its-cache'", () => {
    // the re-ASSIGN's kvm_vgic_v4_set_forwarding invalidates the vITS translation cache the VM's injections read
    const path = join(import.meta.dirname, '../../scenarios/check-msi-readd.yaml');
    const sc = scenarioFromYaml(readFileSync(path, 'utf8'), path, { variant: 'vlpi-map-invalidates-its-cache' });
    expect(checkCommutation(sc, 1, 1)).toBeGreaterThan(10);
  });

  it('two VMs with their own devices (scenarios/check-two-vms.yaml)', () => {
    expect(checkCommutation(file('check-two-vms'), 1, 7, 40)).toBe(40);
  });

  it('a guest retargeting its vIRQ while ASSIGN/DEASSIGN run (scenarios/check-retarget.yaml)', () => {
    expect(checkCommutation(file('check-retarget'), 1, 3, 40)).toBe(40);
  });
});
