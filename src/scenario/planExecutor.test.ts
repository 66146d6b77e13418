import { describe, expect, it } from 'vitest';
import { createHost } from '../machine.js';
import { loadScenario } from './loader.js';
import { PlanExecutor } from './planExecutor.js';
import { type ScenarioStep, stepsForMode } from './schema.js';

const YAML = `
name: plan
duration: 100000
host: { hz: 1e9 }
devices:
  - { name: dev0, iommuGroup: 3, irqs: [{ intid: 70 }] }
vms: [{ vcpus: 1 }]
vmm:
  - { step: open-device, device: dev0 }
  - { step: irqfd, device: dev0, index: 0 }
  - { step: assign, device: dev0, index: 0, at: 1000, id: on }
  - { step: deassign, device: dev0, index: 0, after: on, delay: 500 }
  - { step: assign, device: dev0, index: 0, after: "delivered:dev0/0#1" }
  - { step: close, what: device, device: dev0, at: 200000 }
`;

/** The executor over the plan, with a VMM that only records when each step ran. */
function executor(delivered: () => boolean) {
  const s = loadScenario(YAML, 'plan.yaml');
  const engine = createHost({ cpus: 1 }).engine;
  const ran: string[] = [];
  const notes: string[] = [];
  const plan = new PlanExecutor(engine, stepsForMode(s, 'forwarded'), { happened: () => delivered() }, notes);
  const exec = (st: ScenarioStep) => {
    ran.push(`${st.step}@${engine.now}`);
  };
  return { engine, plan, exec, ran, notes };
}

describe('PlanExecutor', () => {
  it('leading steps first; then each step at its time, after its event and delay; the unreachable ones skipped', () => {
    const { engine, plan, exec, ran, notes } = executor(() => false);
    plan.runLeading(exec);
    expect(ran).toEqual(['open-device@0', 'irqfd@0']);
    engine.run(300); // the scenario clock starts later than the machine's
    plan.runRest(300, 100_000, exec);
    expect(ran.slice(2)).toEqual(['assign@1300', 'deassign@1800']);
    expect(notes).toEqual([
      'vmm[4] (assign) waits for an event that did not happen before the end: skipped',
      'vmm[5] (close) is due after the duration: skipped',
    ]);
  });

  it('a listener fires once, at the first notify that finds its event happened', () => {
    let delivered = false;
    const { plan, exec } = executor(() => delivered);
    let fired = 0;
    const listener = { eventHappened: () => fired++ };
    plan.on({ kind: 'delivered', device: 'dev0', index: 0, n: 1 }, listener);
    plan.on({ kind: 'step', id: 'on' }, listener);
    plan.notify();
    expect(fired).toBe(0);
    delivered = true;
    plan.notify();
    plan.notify();
    expect(fired).toBe(1);
    plan.runLeading(exec);
    plan.runRest(0, 100_000, exec); // the step with id 'on' runs: its listener fires
    expect(fired).toBe(2);
  });
});
