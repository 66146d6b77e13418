/**
 * Kernel functions as explicit state machines (frames) instead of generators: the first step towards an execution
 * whose complete state can be copied (a suspended generator cannot be: its program counter and locals live in the
 * VM). A frame keeps its program counter (`pc`) and its locals in fields, so a frame is plain data.
 *
 * A frame is an iterator, and its own iterator result, so it composes with generators both ways: a generator calls it
 * with `yield* frame` (yield* reads `done`/`value` off the object next() returns, and a frame returns itself), and the
 * engine resumes a task whose body is a frame as it resumes a generator. Each call allocates the frame and nothing
 * else: no generator object, no result object per step.
 *
 * A subclass implements `step(sent)`: do the atomic code up to the next boundary, then either `yield_(op)` (advance
 * `pc` first) or `return_(value)`. `sent` is what the engine resumed the task with (e.g. a trap's result).
 */
import type { Op } from './task.js';

/** What step() returns: it ended at a boundary (yield_) or the function returned (return_). */
export type Boundary = { readonly boundary: true };
const BOUNDARY: Boundary = { boundary: true };

export abstract class Frame<R = void> implements Iterator<Op, R, unknown> {
  /** Iterator-result view of the frame: set by yield_/return_. */
  done = false;
  value: unknown = undefined;
  /** Where step() resumes. */
  protected pc = 0;

  next(sent?: unknown): IteratorResult<Op, R> {
    this.step(sent);
    return this as unknown as IteratorResult<Op, R>;
  }

  [Symbol.iterator](): this {
    return this;
  }

  /** Run from `pc` to the next boundary. */
  protected abstract step(sent: unknown): Boundary;

  /** End this step at a boundary yielding `op` (the caller set `pc` to where the next step resumes). */
  protected yield_(op: Op): Boundary {
    this.value = op;
    return BOUNDARY;
  }

  /** The function returns `v`. */
  protected return_(v: R): Boundary {
    this.done = true;
    this.value = v;
    return BOUNDARY;
  }
}
