import { describe, expect, it } from 'vitest';
import { explore, replay } from './explore.js';
import { bypassRaceScenario, checkScenario } from './model.js';
import { formatReplayFile, parseReplayFile, replayFile, replayFileOf } from './replay.js';

/**
 * The IRQ bypass manager's stop/start bracket (virt/lib/irqbypass.c __connect/__disconnect) against in-flight IRQs:
 * VFIO re-arms its trigger (vfio_set_trigger: unregister the old producer, register the new one), so the irqfd
 * consumer's del_producer then add_producer switch the forwarded SPI while the device fires and the vCPU runs.
 */
describe('bypass-race: irqbypass del_producer + add_producer while the line fires', () => {
  it("'bypass': every schedule within preemption bound 2 satisfies every invariant", () => {
    const r = explore(bypassRaceScenario({ variant: 'bypass' }), { bound: 2 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.limits).toBe('preemption bound 2');
    expect(r.stats.schedules).toBe(445);
    expect(r.stats.budgetHit).toBe(0);
  });

  it("'bypass-no-bracket' (no prod/cons stop/start): a HW=1 LR names an inactive INTID, shrunk and replayable", () => {
    const sc = checkScenario('bypass-race', { variant: 'bypass-no-bracket' });
    const cx = explore(sc, { bound: 1 }).counterexample;
    expect(cx).not.toBeNull();
    const names = cx!.violations.map((v) => v.invariant);
    expect(names).toContain('hw-lr-names-active-intid');
    expect(names).toContain('no-gic-unpredictable');
    expect(cx!.schedule.length).toBeLessThan(30);
    expect(cx!.schedule.length).toBeLessThan(cx!.found.length);
    expect(replay(sc, cx!.schedule).violations).toEqual(cx!.violations);
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, names[0]!, cx!.schedule)));
    expect(f).toMatchObject({ scenario: 'bypass-race', variant: 'bypass-no-bracket' });
    expect(replayFile(f).violations[0]!.invariant).toBe(names[0]);
  });
});
