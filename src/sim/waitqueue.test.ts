import { describe, expect, it } from 'vitest';
import { defineCost } from './costs.js';
import { Engine } from './engine.js';
import { Spinlock, spinLock } from './locks.js';
import { op, type TaskGen } from './task.js';
import { WaitQueue, wait } from './waitqueue.js';

const C_WORK = defineCost('wq_test_work', 100, 'test');

describe('wait queues and spinlocks keep their arrays across wakeups', () => {
  it('a queue refilled after wakeUpAll wakes the new sleepers only, and wakeUpOne wakes in FIFO order', () => {
    const e = new Engine({ cpus: 3 });
    const wq = new WaitQueue(e, 'test.wq');
    let gate = 0;
    const woke: string[] = [];
    for (let c = 0; c < 3; c++) {
      e.spawn(
        `sleeper${c}`,
        c,
        (function* (): TaskGen<void> {
          for (let round = 1; round <= 3; round++) {
            while (gate < round) yield wait(wq);
            woke.push(`${round}:${c}`);
          }
        })(),
      );
    }
    e.settle();
    expect(wq.length).toBe(3);
    gate = 1;
    expect(wq.wakeUpAll()).toBe(3);
    expect(wq.length).toBe(0);
    e.settle();
    expect(woke).toEqual(['1:0', '1:1', '1:2']);
    expect(wq.length).toBe(3);
    expect(wq.has(e.tasks.find((t) => t.comm === 'sleeper1')!)).toBe(true);
    gate = 3;
    // FIFO: the sleepers queued in the order they re-slept (cpu0, cpu1, cpu2)
    expect(wq.wakeUpOne()).toBe(true);
    expect(wq.length).toBe(2);
    expect(wq.has(e.tasks.find((t) => t.comm === 'sleeper0')!)).toBe(false);
    e.settle();
    expect(woke.slice(3)).toEqual(['2:0', '3:0']);
    expect(wq.wakeUpOne()).toBe(true);
    expect(wq.wakeUpOne()).toBe(true);
    expect(wq.wakeUpOne()).toBe(false);
    e.settle();
    expect(woke).toHaveLength(9);
  });

  it('a contended spinlock is taken by its spinner after each release, and out-of-order unlocks drop the right lock', () => {
    const e = new Engine({ cpus: 2 });
    const a = new Spinlock(e, 'test.a');
    const b = new Spinlock(e, 'test.b');
    const order: string[] = [];
    for (let c = 0; c < 2; c++) {
      e.spawn(
        `locker${c}`,
        c,
        (function* (): TaskGen<void> {
          for (let i = 0; i < 3; i++) {
            yield* spinLock(a);
            yield* spinLock(b);
            order.push(`${c}`);
            yield op(C_WORK, a.oid);
            a.unlock(); // not the last one taken
            b.unlock();
          }
        })(),
      );
    }
    e.settle();
    expect(order).toHaveLength(6);
    expect(order.filter((x) => x === '0')).toHaveLength(3);
    expect(e.tasks.every((t) => t.held.length === 0)).toBe(true);
    expect(a.owner).toBeNull();
    expect(b.owner).toBeNull();
    expect(e.lockdep.reports).toEqual([]);
  });
});
