import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../sim/prng.js';
import {
  type Choosable,
  type Chooser,
  Execution,
  independent,
  PrefixChooser,
  runSchedule,
  type Touch,
} from './execution.js';
import type { CheckableScenario, CheckInstance } from './model.js';
import { raceScenario } from './model.js';
import { scenarioFromYaml } from './scenarioCheck.js';

/**
 * The footprint API's soundness, tested the way DPOR relies on it: two adjacent steps of different agents whose
 * footprints are disjoint commute — swapping them in a schedule must be possible and must reach the same end state.
 * A step that touched something it did not declare shows up here as a swap that ends elsewhere.
 */

/** What the invariants and a user look at when the machine is quiescent. */
function endState(inst: CheckInstance): string {
  const out: string[] = [];
  const dist = inst.host.irq.gic.distributor;
  for (const d of inst.host.devices) {
    for (let i = 0; i < d.hw.lines.length; i++) {
      const intid = d.hw.lines[i]!.intid;
      const desc = d.descs[i]!;
      const vi = d.vdev.irqs[i]!;
      out.push(
        `${d.spec.name}/${i}: raised ${d.hw.raised[i]} acked ${d.hw.acked[i]} coalesced ${d.hw.coalesced[i]}`,
        `  desc depth ${desc.depth} fwd ${desc.forwardedToVcpu} vfio masked ${vi.masked} deliveries ${vi.deliveries}`,
        `  gic pending ${dist.isPending(intid)} active ${dist.isActive(intid)} line ${dist.lineLevel(intid)}`,
      );
    }
  }
  for (const drv of inst.guest.devices) out.push(`${drv.name}: handled ${drv.handled} noStatus ${drv.noStatus}`);
  for (const vm of inst.host.kvm.vms) {
    const vgic = vm.vgic;
    for (let i = 0; vgic !== null && i < vgic.nrSpis; i++) {
      const q = vgic.vgicGetIrq(32 + i)!;
      if (q.active || q.pendingLatch || q.lineLevel || q.hw) {
        out.push(`vm${vm.oid} vINTID ${q.intid}: a${+q.active} p${+q.pendingLatch} l${+q.lineLevel} hw${+q.hw}`);
      }
    }
  }
  for (const c of inst.control) {
    let r: string;
    try {
      r = String(c.handle.result());
    } catch (e) {
      r = e instanceof Error ? e.message : String(e);
    }
    out.push(`${c.what} → ${r}`);
  }
  return out.join('\n');
}

interface Recorded {
  readonly schedule: number[];
  readonly touches: Touch[];
  readonly end: string;
}

function record(scenario: CheckableScenario, chooser: Chooser): Recorded {
  const ex = new Execution(scenario, { teardown: false });
  const touches: Touch[] = [];
  const inner = chooser;
  const r = runSchedule(ex, {
    choose: (c, e) => inner.choose(c, e),
    stepped: (_x, _a, touch) => touches.push(touch),
  });
  expect(r.end).toBe('quiescent');
  return { schedule: [...r.schedule], touches, end: endState(ex.inst) };
}

/** A uniformly random choice at each point (seeded). */
function randomChooser(seed: number): Chooser {
  const rng = new Prng(seed);
  return { choose: (c: Choosable) => c.at(rng.below(c.size)) };
}

/** Swap each adjacent independent pair of `runs` random schedules in turn; each swap must end identically. */
function checkCommutation(scenario: CheckableScenario, runs: number, seed: number): number {
  let swaps = 0;
  for (let run = 0; run < runs; run++) {
    const base = record(scenario, randomChooser(seed + run));
    const candidates: number[] = [];
    for (let i = 0; i + 1 < base.schedule.length; i++) {
      if (base.schedule[i] === base.schedule[i + 1]) continue;
      if (independent(base.touches[i]!, base.touches[i + 1]!)) candidates.push(i);
    }
    for (const i of candidates) {
      const swapped = [...base.schedule];
      swapped[i] = base.schedule[i + 1]!;
      swapped[i + 1] = base.schedule[i]!;
      // lenient: a poll that re-reads unchanged state is not choosable (execution.ts spin detection), so a swap
      // that puts two polls of one agent next to each other skips the second — a read of nothing new
      const again = record(scenario, new PrefixChooser(swapped, true));
      expect(again.end, `swapping steps ${i} and ${i + 1} of run ${run} changed the end state`).toBe(base.end);
      swaps++;
    }
  }
  return swaps;
}

describe('footprints: steps declared independent commute', () => {
  it('assign-race (ASSIGN then DEASSIGN while the line fires and the vCPU runs), protocol', () => {
    expect(checkCommutation(raceScenario({ raises: 2 }), 12, 1)).toBeGreaterThan(40);
  });

  it('two VMs with their own devices (scenarios/check-two-vms.yaml)', () => {
    const file = join(import.meta.dirname, '../../scenarios/check-two-vms.yaml');
    const s = scenarioFromYaml(readFileSync(file, 'utf8'), file);
    expect(checkCommutation(s, 6, 7)).toBeGreaterThan(20);
  });
});
