import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/fixtures/fwdFixture.js';
import { defineCost } from './costs.js';
import { Engine, type Scheduler, type TimerHandler } from './engine.js';
import { Spinlock, spinLock } from './locks.js';
import { eret, op, type TaskGen } from './task.js';
import { WaitQueue, wait } from './waitqueue.js';

// The TimedScheduler's loop keeps a CPU out of the heap while its next step still sorts first; these tests pin that
// it takes exactly the steps, in exactly the order and at exactly the times, that picking the heap's minimum takes.

const C_A = defineCost('timed_test_a', 70, 'test');
const C_B = defineCost('timed_test_b', 130, 'test');

/** Chooses what the TimedScheduler chooses without declaring earliestFirst: the engine asks it every step. */
const heapOrder: Scheduler = { choose: (enabled) => enabled.earliest() };

function record(e: Engine): string[] {
  const log: string[] = [];
  e.observer = {
    onStep(en, agent) {
      const c = agent < en.cpus.length ? en.cpus[agent]! : null;
      log.push(`${agent}@${en.now}${c ? `→${c.readyAt}` : ''}`);
    },
  };
  return log;
}

/** Three CPUs: workers with mixed costs and a contended spinlock, a producer/consumer pair, a device raising IRQs. */
function workload(e: Engine, events: string[]): void {
  const lock = new Spinlock(e, 'timed.lock');
  const wq = new WaitQueue(e, 'timed.wq');
  let items = 0;
  let line = false;
  for (let c = 0; c < 3; c++) {
    e.spawn(
      `worker/${c}`,
      c,
      (function* (): TaskGen<void> {
        for (let i = 0; i < 40; i++) {
          yield op(i % 3 === c ? C_B : C_A);
          if (i % 5 === 0) {
            yield* spinLock(lock);
            yield op(C_A, lock.oid);
            lock.unlock();
            items++;
            wq.wakeUpAll();
          }
        }
      })(),
    );
  }
  e.spawn(
    'consumer',
    2,
    (function* (): TaskGen<void> {
      for (let got = 0; got < 20; got++) {
        while (items === 0) yield wait(wq);
        items--;
        yield op(C_B);
        events.push(`consumed@${e.now}`);
      }
    })(),
  );
  e.setIrqVector(
    1,
    'irq/1',
    (function* (): TaskGen<void> {
      for (;;) {
        yield op(C_A);
        if (line) {
          line = false;
          e.setIrqLine(1, false);
          events.push(`irq@${e.now}`);
        }
        yield eret();
      }
    })(),
  );
  let raised = 0;
  const dev: TimerHandler = {
    name: 'dev',
    fire() {
      line = true;
      e.setIrqLine(1, true);
      if (++raised < 12) e.after(450 + 37 * raised, dev);
    },
  };
  e.at(300, dev);
}

function runSim(
  scheduler: Scheduler | null,
  drive: (e: Engine, events: string[]) => void,
): { log: string[]; events: string[] } {
  const e = new Engine({ cpus: 3, seed: 3 });
  if (scheduler) e.scheduler = scheduler;
  const log = record(e);
  const events: string[] = [];
  workload(e, events);
  drive(e, events);
  return { log, events };
}

describe('timed loop without heap round trips', () => {
  it('settle takes the same steps at the same times as picking the heap minimum', () => {
    const fast = runSim(null, (e) => e.settle());
    const slow = runSim(heapOrder, (e) => e.settle());
    expect(fast.log.length).toBeGreaterThan(200);
    expect(fast.log).toEqual(slow.log);
    expect(fast.events).toEqual(slow.events);
    expect(fast.events.filter((x) => x.startsWith('irq@')).length).toBeGreaterThanOrEqual(8);
  });

  it('run(cycles) stops at the same step for every horizon, and runUntil at the same predicate', () => {
    for (const horizon of [1, 299, 300, 301, 777, 2_000, 5_001]) {
      const fast = runSim(null, (e) => {
        e.run(horizon);
        e.run(horizon);
      });
      const slow = runSim(heapOrder, (e) => {
        e.run(horizon);
        e.run(horizon);
      });
      expect(fast.log).toEqual(slow.log);
    }
    const until = (e: Engine, events: string[]) => e.runUntil(() => events.length >= 7, 'seven events');
    const fast = runSim(null, until);
    const slow = runSim(heapOrder, until);
    expect(fast.events).toHaveLength(7);
    expect(fast.log).toEqual(slow.log);
  });

  it('settle(maxSteps) gives up after the same number of steps', () => {
    const limit = (e: Engine) => expect(() => e.settle(57)).toThrow(/did not quiesce within 57 steps/);
    const fast = runSim(null, limit);
    const slow = runSim(heapOrder, limit);
    expect(fast.log).toHaveLength(57);
    expect(fast.log).toEqual(slow.log);
  });

  it('beforeStep sees every step, shortcut ones included, with the state a wrapping pick() would have seen', () => {
    const traces = [null, heapOrder].map((sched) => {
      const e = new Engine({ cpus: 3, seed: 3 });
      if (sched) e.scheduler = sched;
      const log: string[] = [];
      let pending = -1;
      e.observer = {
        beforeStep(en, agent) {
          expect(pending).toBe(-1);
          pending = agent;
          const c = agent < en.cpus.length ? en.cpus[agent]! : null;
          log.push(`pre ${agent} ${c ? `${c.current.comm}/${c.inIrq}/${c.irqLine}` : 'timer'}`);
        },
        onStep(en, agent) {
          expect(agent).toBe(pending);
          pending = -1;
          log.push(`${agent}@${en.now}`);
        },
      };
      workload(e, []);
      e.settle();
      return { log, steps: e.steps };
    });
    expect(traces[0]!.log).toHaveLength(2 * traces[0]!.steps);
    expect(traces[0]!.log).toEqual(traces[1]!.log);
  });

  it('a forwarded-IRQ machine (3 CPUs, VFIO, irqfd, vGIC, guest) steps identically both ways', () => {
    const traces = [null, heapOrder].map((sched) => {
      const f = fixture({ vcpus: 2 });
      expect(f.assign(0)).toBe(0);
      if (sched) f.host.engine.scheduler = sched;
      const log = record(f.host.engine);
      f.raise(0, 30);
      f.raise(1, 10);
      f.host.settle();
      return { log, handled: f.guest.devices.map((d) => d.handled) };
    });
    expect(traces[0]!.handled).toEqual([30, 10]);
    expect(traces[0]!.log.length).toBeGreaterThan(1000);
    expect(traces[0]!.log).toEqual(traces[1]!.log);
  });
});
