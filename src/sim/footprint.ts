/**
 * The footprint of the step being executed: the shared objects (oids) it touched. Any code that runs inside a step —
 * a task's body, a hardware timer's fire(), synchronous helpers they call — declares what it reads or writes with
 * `touch(oid)`, and shared objects declare their own accesses (as loom's runtime objects do): the GIC distributor
 * touches the INTID it changes, a wait queue touches itself when woken, a lock when released, the engine the CPU whose
 * run state a step changed. A step that cannot say what it touched calls `touchAll()` and is dependent with every
 * other step. A checker reads the footprint after each step (Engine.footprint); the timed simulator leaves recording
 * off, and then `touch` is a single test.
 *
 * Nothing here allocates per step: the buffer grows once to the largest footprint seen.
 */

let recording = false;
let buf = new Int32Array(64);
let n = 0;
let all = false;

/** The step being executed touches shared object `oid` (negative: an object no checker tracks; ignored). */
export function touch(oid: number): void {
  if (!recording || oid < 0) return;
  if (n === buf.length) {
    const b = new Int32Array(n * 2);
    b.set(buf);
    buf = b;
  }
  buf[n++] = oid;
}

/** The step being executed may touch anything: it is dependent with every other step. */
export function touchAll(): void {
  if (recording) all = true;
}

/** Whether a checker records footprints now (code may skip work that only feeds touch()). */
export function recordingFootprint(): boolean {
  return recording;
}

/** Engine side: start recording the footprint of a new step (or stop recording). */
export function beginFootprint(on: boolean): void {
  recording = on;
  n = 0;
  all = false;
}

/** The footprint recorded since beginFootprint: `null` for a step that touched everything, else the sorted set. */
export function footprintSet(): number[] | null {
  if (all) return null;
  const s = buf.subarray(0, n).sort();
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (i === 0 || s[i] !== s[i - 1]) out.push(s[i]!);
  return out;
}
