/**
 * KVM code that runs as steps is a generator or a frame (sim/frame.ts): both are iterators a caller runs with
 * `yield*` or a frame's call().
 */
import type { Frame } from '../sim/frame.js';
import type { Op, TaskGen } from '../sim/task.js';

export type KvmBody<R = void> = Generator<Op, R, unknown> | Frame<R>;

/**
 * A frame handed to a host interface still typed as a generator (FileOperations, WorkFn, WaitQueueEntry.wake): the
 * host only ever runs it with `yield*` (never .return or .throw), which a frame supports. Remove once those
 * interfaces take a KvmBody.
 */
export function hostBody<R>(f: Frame<R>): TaskGen<R> {
  return f as unknown as TaskGen<R>;
}
