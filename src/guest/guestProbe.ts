/**
 * A probe the guest calls (a test's or the scenario runner's: a handler-entry latency, a vector entry, a trap round
 * trip): a function, or an object with a method of the option's name. A closure kept in model state makes the machine
 * uncopyable (sim/snapshot.ts findUncopyable), so model code passes the object form (a class instance holding plain
 * data); the guest keeps every probe in that form.
 */
export type Probe<K extends string, F extends (...args: never[]) => unknown> = F | ProbeObject<K, F>;

/** A probe's object form: `key` is the method. */
export type ProbeObject<K extends string, F> = { readonly [k in K]: F };

/** `p` in its object form (a function is wrapped once, at set-up). */
export function asProbe<K extends string, F extends (...args: never[]) => unknown>(
  key: K,
  p: Probe<K, F> | undefined,
): ProbeObject<K, F> | undefined {
  return typeof p === 'function' ? ({ [key]: p } as ProbeObject<K, F>) : p;
}
