import { describe, expect, it } from 'vitest';
import { C_NONE } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { op, type TaskGen } from '../sim/task.js';
import { Kernel } from './kernel.js';
import { cancelWorkSync, flushWork, type WorkStruct } from './kthread.js';

function setup() {
  const k = new Kernel({ cpus: 2 });
  const log: string[] = [];
  return { k, log };
}

describe('workqueue (kernel/workqueue.c semantics)', () => {
  it('a work item queued twice before it runs runs once', () => {
    const { k, log } = setup();
    const w = k.initWork('w', function* () {
      yield op(C_NONE);
      log.push('run');
    });
    expect(k.scheduleWork(w)).toBe(true);
    expect(k.scheduleWork(w)).toBe(false);
    k.settle();
    expect(log).toEqual(['run']);
    expect(w.runs).toBe(1);
    expect(k.scheduleWork(w)).toBe(true);
    k.settle();
    expect(w.runs).toBe(2);
  });

  it('an item requeued while it runs runs again afterwards, never concurrently', () => {
    const { k, log } = setup();
    let requeue = true;
    let running = 0;
    const w: WorkStruct = k.initWork('self', function* (work) {
      running++;
      expect(running).toBe(1);
      yield op(C_NONE);
      log.push(`run ${work.runs}`);
      if (requeue) {
        requeue = false;
        expect(k.scheduleWork(work)).toBe(true);
      }
      yield op(C_NONE);
      running--;
    });
    k.scheduleWork(w);
    k.settle();
    expect(log).toEqual(['run 1', 'run 2']);
  });

  it('flush_work waits for the queued instance; a requeue after the flush is not waited for', () => {
    const { k, log } = setup();
    const w = k.initWork('slow', function* () {
      for (let i = 0; i < 10; i++) yield op(C_NONE);
      log.push('work done');
    });
    k.kthreadRun(
      'flusher',
      1,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        k.scheduleWork(w);
        const waited = yield* flushWork(w);
        log.push(`flushed ${waited}`);
        expect(yield* flushWork(w)).toBe(false);
      })(),
    );
    k.settle();
    expect(log).toEqual(['work done', 'flushed true']);
  });

  it('cancel_work_sync drops a pending instance', () => {
    const { k, log } = setup();
    const w = k.initWork('never', function* () {
      yield op(C_NONE);
      log.push('ran');
    });
    k.kthreadRun(
      'canceller',
      0,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        k.scheduleWork(w);
        log.push(`cancelled ${yield* cancelWorkSync(w)}`);
      })(),
    );
    k.settle();
    expect(log).toEqual(['cancelled true']);
    expect(w.busy).toBe(false);
  });

  it('flush_workqueue waits for every item queued before it, on every CPU', () => {
    const { k, log } = setup();
    const wq = k.createWorkqueue('cleanup');
    const mk = (n: string, steps: number) =>
      k.initWork(n, function* () {
        for (let i = 0; i < steps; i++) yield op(C_NONE);
        log.push(n);
      });
    const a = mk('a', 5);
    const b = mk('b', 20);
    wq.queueWorkOn(0, a);
    wq.queueWorkOn(1, b);
    k.kthreadRun(
      'flusher',
      0,
      (function* (): TaskGen<void> {
        yield* wq.flush();
        log.push('flushed');
      })(),
    );
    k.settle();
    expect(log).toEqual(['a', 'b', 'flushed']);
  });

  it('a work item flushing itself is a deadlock', () => {
    const { k } = setup();
    const w: WorkStruct = k.initWork('selfflush', function* (work) {
      yield op(C_NONE);
      yield* flushWork(work);
    });
    k.scheduleWork(w);
    expect(() => k.settle()).toThrow(ModelError);
  });
});
