import { describe, expect, it } from 'vitest';
import { explore, type Reduction } from './explore.js';
import { bypassRaceScenario, type CheckableScenario, type RaceOptions, raceScenario } from './model.js';

/**
 * DPOR against plain enumeration on the real machine: device events (hardware timers whose footprint the GIC and the
 * device declare themselves), the vCPU's guest entries and exits and synchronize_irq's polls all occur.
 * Each end state is a signature of what the invariants look at, taken at quiescence before teardown.
 */
function recording(opts: RaceOptions, ends: Set<string>, make = raceScenario): CheckableScenario {
  const base = make(opts);
  return {
    ...base,
    build() {
      const inst = base.build();
      return {
        ...inst,
        teardown() {
          const hw = inst.device!.hw;
          const desc = inst.device!.descs[0]!;
          const dist = inst.host.irq.gic.distributor;
          const intid = hw.lines[0]!.intid;
          let result = '';
          try {
            result = String(inst.control[0]!.handle.result());
          } catch (err) {
            result = err instanceof Error ? err.message : String(err);
          }
          ends.add(
            [
              `raised=${hw.raised[0]} acked=${hw.acked[0]} coalesced=${hw.coalesced[0]}`,
              `handled=${inst.guest.devices[0]!.handled} noStatus=${inst.guest.devices[0]!.noStatus}`,
              `depth=${desc.depth} fwd=${desc.forwardedToVcpu}`,
              `pending=${dist.isPending(intid)} active=${dist.isActive(intid)} line=${dist.lineLevel(intid)}`,
              `ctl=${result}`,
            ].join(' '),
          );
          inst.teardown();
        },
      };
    },
  };
}

function run(opts: RaceOptions, bound: number, reduction: Reduction, make = raceScenario) {
  const ends = new Set<string>();
  const r = explore(recording(opts, ends, make), { bound, reduction, shrink: false });
  return { r, ends: [...ends].sort() };
}

describe('DPOR with device events, polls and guest entry/exit: the end states of plain enumeration', () => {
  it('assign-race (ASSIGN then DEASSIGN, one raise) at bound 1: the same end states, fewer schedules', () => {
    const d = run({}, 1, 'dpor');
    const n = run({}, 1, 'none');
    expect(d.r.counterexample).toBeNull();
    expect(n.r.counterexample).toBeNull();
    expect(d.ends).toEqual(n.ends);
    expect(d.ends.length).toBeGreaterThan(1);
    expect(d.r.stats.schedules).toBe(60);
    expect(n.r.stats.schedules).toBe(258);
  });

  it('bypass-race (del_producer + add_producer against a raise) at bound 1: the same end states, fewer schedules', () => {
    const d = run({}, 1, 'dpor', bypassRaceScenario);
    const n = run({}, 1, 'none', bypassRaceScenario);
    expect(d.r.counterexample).toBeNull();
    expect(d.ends).toEqual(n.ends); // every order ends in the same observed state
    expect(d.r.stats.schedules).toBe(49);
    expect(n.r.stats.schedules).toBe(262);
  });

  it('ASSIGN only with two raises at bound 1: the same end states', () => {
    const opts: RaceOptions = { ops: ['assign'], raises: 2 };
    const d = run(opts, 1, 'dpor');
    const n = run(opts, 1, 'none');
    expect(d.ends).toEqual(n.ends);
    expect(d.ends.length).toBeGreaterThan(1);
    expect(d.r.stats.schedules).toBeLessThan(n.r.stats.schedules);
  });
});
