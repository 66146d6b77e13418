import { describe, expect, it } from 'vitest';
import { defineCost } from './costs.js';
import { Engine, type TimerHandler } from './engine.js';
import { ModelError } from './errors.js';
import { Mutex, mutexLock, Spinlock, spinLock } from './locks.js';
import { latestFirst, ScriptedScheduler } from './scriptedScheduler.js';
import { current, eret, op, type TaskGen } from './task.js';
import { WaitQueue, wait } from './waitqueue.js';

const C_WORK = defineCost('test_work', 100, 'test');

/** A tiny causal chain: a device timer raises a line; the CPU's IRQ vector handles it and wakes a thread. */
function pipeline(scheduler?: 'latest') {
  const e = new Engine({ cpus: 2, seed: 7 });
  if (scheduler) e.scheduler = new ScriptedScheduler([], latestFirst);
  const log: string[] = [];
  const wq = new WaitQueue(e, 'data');
  let data = 0;
  let line = false;
  const dev: TimerHandler = {
    name: 'dev',
    fire() {
      line = true;
      log.push('assert');
      e.setIrqLine(1, true);
    },
  };
  e.setIrqVector(
    1,
    'irq/1',
    (function* (): TaskGen<void> {
      for (;;) {
        yield op(C_WORK);
        if (line) {
          line = false;
          e.setIrqLine(1, false);
          data++;
          log.push('handled');
          wq.wakeUpAll();
        }
        yield eret();
      }
    })(),
  );
  e.spawn(
    'consumer',
    0,
    (function* (): TaskGen<void> {
      while (data === 0) yield wait(wq);
      yield op(C_WORK);
      log.push(`consumed by ${current().comm}`);
    })(),
  );
  e.at(500, dev);
  e.settle();
  return { e, log };
}

describe('engine', () => {
  it('runs a device → IRQ → wakeup chain in causal order under the timed scheduler', () => {
    const { e, log } = pipeline();
    expect(log).toEqual(['assert', 'handled', 'consumed by consumer']);
    expect(e.cpus[1]!.irqs).toBe(1);
    expect(e.now).toBeGreaterThanOrEqual(500);
  });

  it('satisfies the same causality when the latest-first scheduler picks orders time never would', () => {
    const { e, log } = pipeline('latest');
    expect(log).toEqual(['assert', 'handled', 'consumed by consumer']);
    expect(e.cpus[1]!.irqs).toBe(1);
  });

  it('does not take an IRQ while the CPU masks interrupts, and takes it once unmasked', () => {
    const e = new Engine({ cpus: 1 });
    const seen: string[] = [];
    e.setIrqVector(
      0,
      'vec',
      (function* (): TaskGen<void> {
        for (;;) {
          yield op(C_WORK);
          seen.push('irq');
          e.setIrqLine(0, false);
          yield eret();
        }
      })(),
    );
    e.spawn(
      'masker',
      0,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        current().maskCtx!.irqMasked = true;
        e.setIrqLine(0, true);
        yield op(C_WORK);
        seen.push('still masked');
        current().maskCtx!.irqMasked = false;
        yield op(C_WORK);
        seen.push('after unmask');
      })(),
    );
    e.settle();
    expect(seen).toEqual(['still masked', 'irq', 'after unmask']);
  });

  it('charges each step its named cost', () => {
    const e = new Engine({ cpus: 1, costs: { test_work: 1000 } });
    const t = e.spawn(
      'w',
      0,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        yield op(C_WORK);
        yield op(C_WORK);
      })(),
    );
    e.settle();
    expect(t.done).toBe(true);
    expect(e.cpus[0]!.readyAt).toBeGreaterThanOrEqual(3000);
  });

  it('a contended spinlock keeps its CPU spinning until the owner releases it', () => {
    const e = new Engine({ cpus: 2 });
    const l = new Spinlock(e, 'test.lock');
    const order: string[] = [];
    e.spawn(
      'a',
      0,
      (function* (): TaskGen<void> {
        yield* spinLock(l);
        yield op(C_WORK);
        yield op(C_WORK);
        order.push('a releases');
        l.unlock();
      })(),
    );
    e.spawn(
      'b',
      1,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        yield* spinLock(l);
        order.push('b acquires');
        l.unlock();
      })(),
    );
    e.settle();
    expect(order).toEqual(['a releases', 'b acquires']);
    expect(e.lockdep.reports).toEqual([]);
  });

  it('a mutex sleeper lets another thread use its CPU', () => {
    const e = new Engine({ cpus: 1 });
    const m = new Mutex(e, 'test.mutex');
    const order: string[] = [];
    const wq = new WaitQueue(e, 'gate');
    let open = false;
    e.spawn(
      'holder',
      0,
      (function* (): TaskGen<void> {
        yield* mutexLock(m);
        while (!open) yield wait(wq);
        order.push('holder done');
        m.unlock();
      })(),
    );
    e.spawn(
      'waiter',
      0,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        yield* mutexLock(m);
        order.push('waiter got it');
        m.unlock();
      })(),
    );
    e.spawn(
      'opener',
      0,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        open = true;
        wq.wakeUpAll();
        order.push('opened');
      })(),
    );
    e.settle();
    expect(order).toEqual(['opened', 'holder done', 'waiter got it']);
  });

  it('settle gives up with a clear error when the model never quiesces', () => {
    const e = new Engine({ cpus: 1 });
    const tick: TimerHandler = {
      name: 'forever',
      fire() {
        e.after(10, tick);
      },
    };
    e.after(10, tick);
    expect(() => e.settle(1000)).toThrow(/did not quiesce within 1000 steps.*timer:forever/);
  });

  it('a model exception names the task and the cycle', () => {
    const e = new Engine({ cpus: 1 });
    e.spawn(
      'bad',
      0,
      (function* (): TaskGen<void> {
        yield op(C_WORK);
        throw new Error('boom');
      })(),
    );
    expect(() => e.settle()).toThrow(ModelError);
  });

  it('blocking in hardirq context is reported as scheduling while atomic', () => {
    const e = new Engine({ cpus: 1 });
    const wq = new WaitQueue(e, 'never');
    e.setIrqVector(
      0,
      'vec',
      (function* (): TaskGen<void> {
        for (;;) {
          yield op(C_WORK);
          wq.add(current());
          yield 1; // OP_BLOCK
        }
      })(),
    );
    e.setIrqLine(0, true);
    expect(() => e.settle()).toThrow(/hardirq|scheduling while atomic|cannot sleep/);
  });

  it('a scripted choice that is not enabled is reported with what was enabled', () => {
    const e = new Engine({ cpus: 2 });
    e.scheduler = new ScriptedScheduler([5]);
    expect(() => e.settle()).toThrow(/scripted choice #0 \(agent 5\) is not enabled; enabled: cpu0/);
  });
});
