import { describe, expect, it } from 'vitest';
import { C_NONE } from './costs.js';
import { Engine } from './engine.js';
import { Lockdep } from './lockdep.js';
import { Spinlock, spinLock, spinLockIrqsave, spinUnlockIrqrestore } from './locks.js';
import { eret, op, type TaskGen } from './task.js';

describe('lockdep', () => {
  it('reports ABBA with both task names and both lock names', () => {
    const e = new Engine({ cpus: 2 });
    const a = new Spinlock(e, 'lock_A');
    const b = new Spinlock(e, 'lock_B');
    e.spawn(
      'first',
      0,
      (function* (): TaskGen<void> {
        yield* spinLock(a);
        yield* spinLock(b);
        b.unlock();
        a.unlock();
      })(),
    );
    e.settle();
    e.spawn(
      'second',
      1,
      (function* (): TaskGen<void> {
        yield* spinLock(b);
        yield* spinLock(a);
        a.unlock();
        b.unlock();
      })(),
    );
    e.settle();
    const r = e.lockdep.reports;
    expect(r).toHaveLength(1);
    expect(r[0]!.kind).toBe('ABBA');
    expect(r[0]!.locks).toEqual(['lock_B', 'lock_A']);
    expect(r[0]!.tasks[0]).toMatch(/^second-/);
    expect(r[0]!.tasks[1]).toMatch(/^first-/);
  });

  it('reports AA and refuses to spin on a lock the task already holds', () => {
    const e = new Engine({ cpus: 1 });
    const a = new Spinlock(e, 'lock_A');
    e.spawn(
      'twice',
      0,
      (function* (): TaskGen<void> {
        yield* spinLock(a);
        yield* spinLock(a);
      })(),
    );
    expect(() => e.settle()).toThrow(/deadlock: twice-\d+ acquires lock_A which it already holds/);
    expect(e.lockdep.reports.map((r) => r.kind)).toEqual(['AA']);
  });

  it('reports a lock taken in hardirq context and with interrupts enabled in process context', () => {
    const e = new Engine({ cpus: 1 });
    const l = new Spinlock(e, 'shared_with_irq');
    e.setIrqVector(
      0,
      'vec',
      (function* (): TaskGen<void> {
        for (;;) {
          yield* spinLock(l);
          l.unlock();
          e.setIrqLine(0, false);
          yield eret();
        }
      })(),
    );
    e.spawn(
      'proc',
      0,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        e.setIrqLine(0, true);
        yield op(C_NONE);
        yield* spinLock(l); // interrupts enabled: the IRQ above could have hit while held
        l.unlock();
      })(),
    );
    e.settle();
    expect(e.lockdep.reports.map((r) => r.kind)).toEqual(['IRQ_INVERSION']);
    expect(e.lockdep.reports[0]!.message).toMatch(/IN-HARDIRQ-W.*HARDIRQ-ON-W/);
  });

  it('accepts the same lock taken with irqsave in process context', () => {
    const e = new Engine({ cpus: 1 });
    const l = new Spinlock(e, 'irqsafe');
    e.setIrqVector(
      0,
      'vec',
      (function* (): TaskGen<void> {
        for (;;) {
          yield* spinLock(l);
          l.unlock();
          e.setIrqLine(0, false);
          yield eret();
        }
      })(),
    );
    e.spawn(
      'proc',
      0,
      (function* (): TaskGen<void> {
        e.setIrqLine(0, true);
        yield op(C_NONE);
        const flags = yield* spinLockIrqsave(l);
        spinUnlockIrqrestore(l, flags);
      })(),
    );
    e.settle();
    expect(e.lockdep.reports).toEqual([]);
  });
});

describe('Lockdep.canonical', () => {
  it('is the same whichever task established an edge or closed a cycle first, and differs with the edges', () => {
    const run = (order: readonly [string, number, number][]) => {
      const l = new Lockdep();
      const a = l.classId('lock_A');
      const b = l.classId('lock_B');
      const ids = [a, b];
      for (const [task, held, next] of order) l.acquire(ids[next]!, [{ cls: ids[held]! }], task, false, true);
      return l;
    };
    const ab = run([
      ['t1', 0, 1],
      ['t2', 1, 0],
    ]);
    const ba = run([
      ['t2', 1, 0],
      ['t1', 0, 1],
    ]);
    expect(ab.reports[0]!.tasks).not.toEqual(ba.reports[0]!.tasks);
    expect(ab.canonical()).toEqual(ba.canonical());
    expect(ab.canonical().reports).toEqual(['ABBA:lock_A,lock_B']);
    expect(run([['t1', 0, 1]]).canonical()).not.toEqual(ab.canonical());
  });
});
