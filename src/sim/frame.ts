/**
 * Kernel functions as explicit state machines (frames) instead of generators: the first step towards an execution
 * whose complete state can be copied (a suspended generator cannot be: its program counter and locals live in the
 * VM). A frame keeps its program counter (`pc`) and its locals in fields, so a frame is plain data.
 *
 * A frame is an iterator, and its own iterator result, so it composes with generators both ways: a generator calls it
 * with `yield* frame` (yield* reads `done`/`value` off the object next() returns, and a frame returns itself), and a
 * frame calls a generator with `call()`. The engine resumes a task's chain of frames with Frame.resume at its innermost
 * frame, not through next() (see there). Each call allocates the frame and nothing else: no generator object, no
 * result object per step.
 *
 * A subclass implements `step(sent)`: do the atomic code up to the next boundary, then either `yield_(op)` (advance
 * `pc` first), `return_(value)`, or `call(child)` — `yield* child` of a generator: the child (a frame or a generator)
 * runs at once, in the same step, its yields are this frame's, and when it returns `step` resumes at `pc` with the
 * child's return value as `sent`. `sent` is otherwise what the engine resumed the task with (e.g. a trap's result).
 * An exception thrown by the step or by a child goes to `catch_()` (a generator's `catch`: it may handle it and
 * resume the frame), else passes through `unwind()`: what a generator's `finally` did (both decide by `pc` where the
 * exception was thrown and which resources the frame holds).
 */
import type { Op } from './task.js';

/**
 * What step() returns, how it ended: YIELDED (yield_), RETURNED (return_), or the callee to run next (call()).
 * Frame.resume tells them apart by identity, so a step's end is reported without a store to shared state: storing a
 * young frame into an old object on every step took the write barrier's slow path (docs/PERFORMANCE.md).
 */
export type Boundary = { readonly boundary: true };
const YIELDED: Boundary = { boundary: true };
const RETURNED: Boundary = { boundary: true };

/**
 * What the step just run yielded or returned (set by yield_ and return_): what Frame.resume hands on. A field of one
 * constant object, not a module-level `let`: V8 stores to those cost several ns each (measured).
 */
const end: { value: unknown } = { value: undefined };

export abstract class Frame<R = void> implements Iterator<Op, R, unknown> {
  /** Iterator-result view of the frame: set by yield_/return_. */
  declare done: boolean;
  declare value: unknown;
  /** Where step() resumes. */
  declare protected pc: number;
  /** The function this frame called and is waiting for (call()). */
  declare private child: Frame<unknown> | null;
  /** The frame that called this one with call() (Frame.resume goes back to it when this one returns). */
  declare private parent: Frame<unknown> | null;

  // Plain assignments, not field definitions: every subclass reaches this code with its own object shape, and
  // defining fields at such a megamorphic site cost more than a third of a forwarded IRQ (bench/taskModel.ts).
  constructor() {
    this.done = false;
    this.value = undefined;
    this.pc = 0;
    this.child = null;
    this.parent = null;
  }

  next(sent?: unknown): IteratorResult<Op, R> {
    if (Frame.resume(this, null, sent) !== null) this.value = end.value;
    return this as unknown as IteratorResult<Op, R>;
  }

  /**
   * `f` as a frame Frame.resume may run without calling its next(): one whose class keeps Frame's next(). Null for
   * a generator, or a frame whose class overrides next() (to wrap it in a try), which must be called.
   */
  static plain(it: Iterator<Op, unknown, unknown>): Frame<unknown> | null {
    // only a Frame has Frame's next() (an `instanceof` test first walked the prototype chain of every callee again)
    return it.next === frameNext ? (it as Frame<unknown>) : null;
  }

  /**
   * `f.next(sent)` for a plain frame (Frame.plain): null when it returned, else the innermost frame of the chain
   * f → child → … where it is suspended; Frame.lastValue() is what it yielded or returned. The engine resumes a task's
   * frames, and next() a frame a generator drives, through this: looking up `next` on frames of every class at one
   * call site, and reading `done`/`value` off them, are megamorphic accesses that were the largest cost of a step
   * (docs/PERFORMANCE.md). A step reports how it ended through what it returns (Boundary) instead.
   *
   * `leaf` is the innermost frame of the chain (what the previous resume of `f` returned), or null to find it: the
   * step runs there directly, and a returning frame hands its value to its caller through `parent`, so the callers in
   * between are not walked on every step (each access to a field of frames of many classes is a megamorphic lookup). A
   * caller's `value` therefore stays as call() left it (undefined) while its callee runs: the iterator-result view is
   * what the outermost next() returns.
   */
  static resume(f: Frame<unknown>, leaf: Frame<unknown> | null, sent: unknown): Frame<unknown> | null {
    let x = leaf ?? Frame.innermost(f);
    let v = sent;
    // a catch_ that handled an exception may have called a child without running it (Syscall's does, to run task_work):
    // it runs when the chain is next resumed, so the chain is suspended at the innermost frame below the one that yields
    let caught = false;
    for (;;) {
      let b: Boundary;
      try {
        b = x.step(v);
      } catch (e) {
        x = Frame.raise(f, x, e);
        caught = true;
        v = undefined;
        continue;
      }
      if (b === YIELDED) return caught ? Frame.innermost(x) : x;
      if (b !== RETURNED) {
        x = b as unknown as Frame<unknown>; // call(): the callee runs at once
        v = undefined;
        continue;
      }
      if (x === f) return null;
      x = x.parent!;
      x.child = null;
      v = end.value;
    }
  }

  /** The innermost frame of the chain x → child → …. */
  private static innermost(f: Frame<unknown>): Frame<unknown> {
    let x = f;
    for (let c = x.child; c !== null; c = x.child) x = c;
    return x;
  }

  /**
   * An exception thrown in the step of `x` passes up its callers to `f`, each one's catch_() (a generator's catch)
   * then unwind() (its finally) as a try per level would: returns the frame whose catch_ handled it (it goes on in
   * the same step), or throws it out of `f`.
   */
  private static raise(f: Frame<unknown>, at: Frame<unknown>, e: unknown): Frame<unknown> {
    let x = at;
    let err = e;
    for (;;) {
      x.child = null;
      let handled = false;
      try {
        handled = x.catch_(err);
      } catch (replaced) {
        err = replaced;
      }
      if (handled) return x;
      try {
        x.unwind();
      } catch (replaced) {
        err = replaced;
      }
      if (x === f) throw err;
      x = x.parent!;
    }
  }

  /** What the last Frame.resume yielded (it returned a frame) or returned (null). */
  static lastValue(): unknown {
    return end.value;
  }

  [Symbol.iterator](): this {
    return this;
  }

  /** Run from `pc` to the next boundary. */
  protected abstract step(sent: unknown): Boundary;

  /** End this step at a boundary yielding `op` (the caller set `pc` to where the next step resumes). */
  protected yield_(op: Op): Boundary {
    this.value = op;
    end.value = op;
    return YIELDED;
  }

  /** Call `child` (`yield* child`); step() resumes at `pc` with its return value. */
  protected call(child: Iterator<Op, unknown, unknown>): Boundary {
    // small enough to be inlined into each step, where `child.next` and `this.child` see few classes, not all
    const c = child.next === frameNext ? (child as Frame<unknown>) : nextCall(child);
    c.parent = this;
    this.child = c;
    this.value = undefined;
    return c as unknown as Boundary;
  }

  /**
   * An exception passes through the frame at `pc` (thrown by the step or by a child): a generator's `catch`. Return
   * true when handled — the handler stored what it needs and set `pc`, and step() resumes there in the same step —
   * or false to let it pass (then unwind() runs); throwing replaces the exception (`catch (e) { throw f(e); }`).
   */
  protected catch_(_e: unknown): boolean {
    return false;
  }

  /** An exception leaves the frame: release what the frame holds at `pc` (a generator's finally). */
  protected unwind(): void {}

  /** The function returns `v`. */
  protected return_(v: R): Boundary {
    this.done = true;
    this.value = v;
    end.value = v;
    return RETURNED;
  }
}

const frameNext = Frame.prototype.next;

/** A callee that is not a plain frame (a generator, or a frame that overrides next()): each step is one next(). */
class NextCall extends Frame<unknown> {
  constructor(private readonly it: Iterator<Op, unknown, unknown>) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const r = this.it.next(sent);
    return r.done === true ? this.return_(r.value) : this.yield_(r.value as Op);
  }
}

function nextCall(it: Iterator<Op, unknown, unknown>): Frame<unknown> {
  return new NextCall(it);
}

/** A function that returns `v` without a step (what a generator with no yield was): a frame of one return. */
class ReturnNow<R> extends Frame<R> {
  constructor(private readonly v: R) {
    super();
  }

  protected step(): Boundary {
    return this.return_(this.v);
  }
}

export function returnNow<R>(v: R): Frame<R> {
  return new ReturnNow(v);
}
