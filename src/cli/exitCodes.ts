/** The exit codes of every `irqfwd` command (docs/CLI.md "Exit codes"). */

export const EXIT_OK = 0;
/** An invariant was violated, an IRQ was lost or left active/masked, or an expectation failed. */
export const EXIT_FAIL = 1;
/** Bad input or environment: arguments, a scenario that does not load, an output that cannot be written safely, a busy port. */
export const EXIT_USAGE = 2;
/** A bug in irqfwd itself (an unexpected exception). */
export const EXIT_INTERNAL = 3;
/** The checker's search stopped before it finished (--max-schedules, its budget): no violation found, nothing proven. */
export const EXIT_INCONCLUSIVE = 4;
