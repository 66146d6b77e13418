/**
 * Allocation-failure injection for the kernel's allocations (kzalloc/kmalloc): the fail-nth interface of the
 * kernel's fault-injection framework (Documentation/fault-injection/fault-injection.rst, lib/fault-inject.c
 * should_fail_ex). A user thread writes N to /proc/thread-self/fail-nth (UserTask.failNth); each fault-injectable
 * call that thread makes from then on counts down, and the Nth one fails. Allocations outside a user thread (IRQ,
 * kernel threads) never fail here, as fail-nth only applies in task context.
 */
import { currentOrNull } from '../sim/task.js';
import type { Kernel } from './kernel.js';

/** should_failslab for `current`: true when this allocation is the Nth one of the thread's armed fail-nth. */
export function shouldFailslab(kernel: Kernel): boolean {
  const t = currentOrNull();
  const ut = t === null ? undefined : kernel.userTask(t);
  if (ut === undefined || ut.failNth === 0) return false;
  ut.failNth -= 1;
  return ut.failNth === 0;
}
