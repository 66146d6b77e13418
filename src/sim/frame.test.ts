import { describe, expect, it } from 'vitest';
import { defineCost } from './costs.js';
import { Engine } from './engine.js';
import { type Boundary, Frame, returnNow } from './frame.js';
import { Mutex, mutexLock, Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from './locks.js';
import { current, OP_STEP, op, TASK_BLOCKED, TASK_SPINNING, type TaskGen } from './task.js';

const C_FRAME = defineCost('frame_test', 50, 'test');

/** Two steps, each logging, then returns the sum of what the engine resumed it with and its argument. */
class TwoSteps extends Frame<number> {
  constructor(
    private readonly log: string[],
    private readonly add: number,
  ) {
    super();
  }

  protected step(): Boundary {
    this.log.push(`step${this.pc}@${current().comm}`);
    if (this.pc < 2) {
      this.pc++;
      return this.yield_(op(C_FRAME));
    }
    return this.return_(this.pc + this.add);
  }
}

/** Calls `callee` and returns what it returned, plus one. */
class PlusOne extends Frame<number> {
  constructor(private readonly callee: Frame<number>) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(this.callee);
    }
    return this.return_((sent as number) + 1);
  }
}

describe('Frame: a kernel function as an explicit state machine', () => {
  it('composes with a generator through yield*: each boundary is one engine step, the return value arrives', () => {
    const e = new Engine({ cpus: 1 });
    const log: string[] = [];
    let got = -1;
    e.spawn(
      't',
      0,
      (function* (): TaskGen<void> {
        got = yield* new TwoSteps(log, 40);
      })(),
    );
    const before = e.steps;
    e.settle();
    expect(got).toBe(42);
    expect(log).toEqual(['step0@t', 'step1@t', 'step2@t']);
    // 3 resumes of the body, and the thread's exit switching to idle
    expect(e.steps - before).toBeGreaterThanOrEqual(3);
    expect(e.now).toBeGreaterThanOrEqual(2 * 50);
  });

  it('runs as a task body directly, and an exception thrown in a step fails the task', () => {
    const e = new Engine({ cpus: 1 });
    const log: string[] = [];
    const t = e.spawn('direct', 0, new TwoSteps(log, 0));
    e.settle();
    expect(t.done).toBe(true);
    expect(log).toHaveLength(3);

    class Throws extends Frame {
      protected step(): Boundary {
        throw new Error('boom in a frame');
      }
    }
    const f = new Engine({ cpus: 1 });
    f.spawn('bad', 0, new Throws());
    expect(() => f.settle()).toThrow(/boom in a frame/);
  });

  it('spin_lock_irqsave as a frame: a contender spins until the holder unlocks, then returns its saved mask', () => {
    const e = new Engine({ cpus: 2 });
    const l = new Spinlock(e, 'test.lock');
    const order: string[] = [];
    let released = false;
    const holder = e.spawn(
      'holder',
      0,
      (function* (): TaskGen<void> {
        const f = yield* spinLockIrqsave(l);
        order.push('holder has it');
        for (let i = 0; i < 5; i++) yield op(C_FRAME);
        released = true;
        spinUnlockIrqrestore(l, f);
      })(),
    );
    let contenderState = -1;
    let saved: boolean | null = null;
    e.spawn(
      'contender',
      1,
      (function* (): TaskGen<void> {
        yield op(C_FRAME); // let the holder take it first
        const f = yield* spinLockIrqsave(l);
        saved = f;
        order.push(released ? 'contender after release' : 'contender too early');
        spinUnlockIrqrestore(l, f);
      })(),
    );
    e.runUntil(() => l.owner === holder && e.cpus[1]!.current.state === TASK_SPINNING, 'the contender spinning');
    contenderState = e.cpus[1]!.current.state;
    e.settle();
    expect(contenderState).toBe(TASK_SPINNING);
    expect(order).toEqual(['holder has it', 'contender after release']);
    expect(saved).toBe(false);
    expect(e.cpus[1]!.irqMasked).toBe(false);
  });

  it('mutex_lock as a frame: a contender sleeps on the mutex and the unlock hands it over', () => {
    const e = new Engine({ cpus: 2 });
    const m = new Mutex(e, 'test.mutex');
    const order: string[] = [];
    e.spawn(
      'a',
      0,
      (function* (): TaskGen<void> {
        yield* mutexLock(m);
        order.push('a locked');
        yield op(C_FRAME);
        yield op(C_FRAME);
        m.unlock();
        order.push('a unlocked');
      })(),
    );
    const b = e.spawn(
      'b',
      1,
      (function* (): TaskGen<void> {
        yield op(C_FRAME); // let a take it first
        yield* mutexLock(m);
        order.push('b locked');
        m.unlock();
      })(),
    );
    e.runUntil(() => b.state === TASK_BLOCKED, 'b asleep on the mutex');
    e.settle();
    expect(order).toEqual(['a locked', 'a unlocked', 'b locked']);
    expect(m.owner).toBeNull();
  });

  it('call(): a child generator runs in the same step, its yields are the frame’s, its return value resumes it; unwind() runs when it throws', () => {
    const e = new Engine({ cpus: 1 });
    const log: string[] = [];
    function* child(fail: boolean): TaskGen<number> {
      log.push('child start');
      yield op(C_FRAME);
      if (fail) throw new Error('child failed');
      log.push('child end');
      return 7;
    }
    class Caller extends Frame<number> {
      constructor(private readonly fail: boolean) {
        super();
      }
      protected step(sent: unknown): Boundary {
        if (this.pc === 0) {
          log.push('caller calls');
          this.pc = 1;
          return this.call(child(this.fail));
        }
        log.push(`caller got ${String(sent)}`);
        return this.return_((sent as number) * 6);
      }
      protected override unwind(): void {
        log.push(`unwind at pc ${this.pc}`);
      }
    }
    let got = 0;
    e.spawn(
      'ok',
      0,
      (function* (): TaskGen<void> {
        got = yield* new Caller(false);
      })(),
    );
    e.settle();
    expect(got).toBe(42);
    expect(log).toEqual(['caller calls', 'child start', 'child end', 'caller got 7']);

    log.length = 0;
    const f = new Engine({ cpus: 1 });
    f.spawn('bad', 0, new Caller(true));
    expect(() => f.settle()).toThrow(/child failed/);
    expect(log).toEqual(['caller calls', 'child start', 'unwind at pc 1']);
  });

  it('catch_(): a child’s exception is handled and the frame goes on in the same step, or replaced, or passes through unwind()', () => {
    const log: string[] = [];
    function* child(): TaskGen<number> {
      yield op(C_FRAME);
      throw new Error('EIO in child');
    }
    /** try { r = yield* child(); } catch (e) { mode decides } ; one more step; return */
    class Catcher extends Frame<string> {
      private caught = '';
      constructor(private readonly mode: 'handle' | 'replace' | 'pass') {
        super();
      }
      protected step(): Boundary {
        switch (this.pc) {
          case 0:
            this.pc = 1;
            return this.call(child());
          case 2:
            log.push(`after catch: ${this.caught}`);
            this.pc = 3;
            return this.yield_(op(C_FRAME));
          default:
            return this.return_(this.caught);
        }
      }
      protected override catch_(e: unknown): boolean {
        if (this.pc !== 1) return false;
        if (this.mode === 'replace') throw new Error(`wrapped: ${(e as Error).message}`);
        if (this.mode === 'pass') return false;
        this.caught = (e as Error).message;
        this.pc = 2;
        return true;
      }
      protected override unwind(): void {
        log.push(`unwind at pc ${this.pc}`);
      }
    }
    const e = new Engine({ cpus: 1 });
    let got = '';
    e.spawn(
      'handle',
      0,
      (function* (): TaskGen<void> {
        got = yield* new Catcher('handle');
      })(),
    );
    e.settle();
    expect(got).toBe('EIO in child');
    expect(log).toEqual(['after catch: EIO in child']);

    log.length = 0;
    const f = new Engine({ cpus: 1 });
    f.spawn('replace', 0, new Catcher('replace'));
    expect(() => f.settle()).toThrow(/wrapped: EIO in child/);
    expect(log).toEqual(['unwind at pc 1']);

    log.length = 0;
    const g = new Engine({ cpus: 1 });
    g.spawn('pass', 0, new Catcher('pass'));
    expect(() => g.settle()).toThrow(/EIO in child/);
    expect(log).toEqual(['unwind at pc 1']);
  });

  it('a frame whose class overrides next() is called through it: as a callee of a frame and as a task body', () => {
    const log: string[] = [];
    /** Fails in its second step; its next() override turns the failure into a return of -5 (vcpuRun.ts's pattern). */
    class Wrapped extends Frame<number> {
      override next(sent?: unknown): IteratorResult<number, number> {
        try {
          return super.next(sent);
        } catch (e) {
          log.push(`next() caught ${(e as Error).message}`);
          this.pc = 2;
          return super.next(undefined);
        }
      }
      protected step(): Boundary {
        if (this.pc === 0) {
          this.pc = 1;
          return this.yield_(op(C_FRAME));
        }
        if (this.pc === 1) throw new Error('EIO');
        return this.return_(-5);
      }
    }
    class Caller extends Frame<number> {
      protected step(sent: unknown): Boundary {
        if (this.pc === 0) {
          this.pc = 1;
          return this.call(new Wrapped());
        }
        return this.return_(sent as number);
      }
    }
    const e = new Engine({ cpus: 1 });
    const called = e.spawn('caller', 0, new Caller());
    const body = e.spawn('body', 0, new Wrapped());
    e.settle();
    expect(called.result).toBe(-5);
    expect(body.result).toBe(-5);
    expect(log).toEqual(['next() caught EIO', 'next() caught EIO']);
  });

  it('a chain of frames: each yield of the innermost is one step of the task, and each return resumes its caller', () => {
    const e = new Engine({ cpus: 1 });
    const log: string[] = [];
    const at: number[] = [];
    /** Depth d calls depth d - 1 between two yields; depth 0 yields once and returns 1. Returns the sum + d. */
    class Nest extends Frame<number> {
      private got = 0;
      constructor(private readonly d: number) {
        super();
      }
      protected step(sent: unknown): Boundary {
        switch (this.pc) {
          case 0:
            log.push(`enter ${this.d}`);
            at.push(e.steps);
            this.pc = this.d === 0 ? 3 : 1;
            return this.yield_(op(C_FRAME));
          case 1:
            this.pc = 2;
            return this.call(new Nest(this.d - 1));
          case 2:
            this.got = sent as number;
            this.pc = 3;
            return this.yield_(op(C_FRAME));
          default:
            return this.return_(this.got + this.d + (this.d === 0 ? 1 : 0));
        }
      }
    }
    const t = e.spawn('nest', 0, new Nest(3));
    e.settle();
    expect(t.result).toBe(1 + 1 + 2 + 3);
    // depth d enters one step after depth d + 1: its first step runs in the step that resumed its caller
    expect(log).toEqual(['enter 3', 'enter 2', 'enter 1', 'enter 0']);
    expect(at.map((x) => x - at[0]!)).toEqual([0, 1, 2, 3]);
  });

  it('an exception deep in a chain passes each caller innermost first (catch_, then unwind); a caller that handles it goes on in that step', () => {
    const log: string[] = [];
    /** Level d calls level d - 1; level 0 fails in its second step. Level `handles` catches and returns -d. */
    class Level extends Frame<number> {
      constructor(
        private readonly d: number,
        private readonly handles: number,
      ) {
        super();
      }
      protected step(sent: unknown): Boundary {
        if (this.pc === 0) {
          this.pc = 1;
          if (this.d > 0) return this.call(new Level(this.d - 1, this.handles));
          return this.yield_(op(C_FRAME));
        }
        if (this.pc === 1) {
          if (this.d === 0) throw new Error('EIO at level 0');
          return this.return_(sent as number);
        }
        return this.return_(-this.d);
      }
      protected override catch_(e: unknown): boolean {
        log.push(`catch ${this.d}: ${(e as Error).message}`);
        if (this.d !== this.handles) return false;
        this.pc = 2;
        return true;
      }
      protected override unwind(): void {
        log.push(`unwind ${this.d}`);
      }
    }
    /** What levels 0 … n - 1 log as the exception passes them. */
    const passes = (n: number) =>
      Array.from({ length: n }, (_, d) => [`catch ${d}: EIO at level 0`, `unwind ${d}`]).flat();
    const e = new Engine({ cpus: 1 });
    const t = e.spawn('handled', 0, new Level(3, 2));
    e.settle();
    expect(t.result).toBe(-2);
    expect(log).toEqual([...passes(2), 'catch 2: EIO at level 0']);
    log.length = 0;
    const f = new Engine({ cpus: 1 });
    f.spawn('passes', 0, new Level(2, -1));
    expect(() => f.settle()).toThrow(/EIO at level 0/);
    expect(log).toEqual(passes(3));
  });

  it('a catch_ that calls a child and goes on to yield: the child runs when the chain is next resumed, then the frame gets its value (Syscall: task_work after an errno)', () => {
    const log: string[] = [];
    class Work extends Frame<number> {
      protected step(): Boundary {
        log.push(`work@${current().comm}`);
        return this.return_(5);
      }
    }
    class Fails extends Frame {
      protected step(): Boundary {
        throw new Error('EIO');
      }
    }
    /** pc 0: call Fails; its catch_ calls Work and resumes at pc 1, which yields; pc 2 returns what Work returned. */
    class Sys extends Frame<number> {
      protected step(sent: unknown): Boundary {
        if (this.pc === 0) {
          return this.call(new Fails());
        }
        if (this.pc === 1) {
          log.push('exit step');
          this.pc = 2;
          return this.yield_(op(C_FRAME));
        }
        log.push(`returned ${String(sent)}`);
        return this.return_(sent as number);
      }
      protected override catch_(): boolean {
        this.pc = 1;
        this.call(new Work());
        return true;
      }
    }
    const e = new Engine({ cpus: 1 });
    // one level down, so the engine resumes a chain whose innermost frame it had noted
    const t = e.spawn('sys', 0, new PlusOne(new Sys()));
    e.settle();
    expect(log).toEqual(['exit step', 'work@sys', 'returned 5']);
    expect(t.result).toBe(6);
  });

  it('iterator-result view: a suspended chain shows the yielded op on its outermost next() and on the frame that yielded it, its callers show undefined', () => {
    class Leaf extends Frame<number> {
      protected step(): Boundary {
        if (this.pc === 0) {
          this.pc = 1;
          return this.yield_(op(C_FRAME));
        }
        return this.return_(7);
      }
    }
    const leaf = new Leaf();
    const mid = new PlusOne(leaf);
    const top = new PlusOne(mid);
    const e = new Engine({ cpus: 1 });
    let views: unknown[] = [];
    e.spawn(
      'gen',
      0,
      (function* (): TaskGen<number> {
        const first = top.next();
        views = [first.done, first.value, mid.value, leaf.value];
        yield first.value as number;
        const r = top.next();
        return r.value;
      })(),
    );
    e.settle();
    // the leaf yielded op() (OP_STEP); next() shows it on the outermost frame; Mid, a caller, shows undefined
    expect(views).toEqual([false, OP_STEP, undefined, OP_STEP]);
    expect(top.done).toBe(true);
    expect(top.value).toBe(9);
  });

  it('returnNow(): a function that returns without a step (a generator with no yield)', () => {
    const e = new Engine({ cpus: 1 });
    let got = 0;
    let stepsInBody = -1;
    e.spawn(
      'now',
      0,
      (function* (): TaskGen<void> {
        const before = e.steps;
        got = yield* returnNow(42);
        stepsInBody = e.steps - before;
      })(),
    );
    e.settle();
    expect(got).toBe(42);
    expect(stepsInBody).toBe(0);
  });
});
