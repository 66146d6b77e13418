/**
 * The footprint of the step being executed: the shared objects (oids) it touched, and whether it only read them. Any
 * code that runs inside a step — a task's body, a hardware timer's fire(), synchronous helpers they call — declares
 * what it accesses, and shared objects declare their own accesses (as loom's runtime objects do): the GIC distributor
 * touches the INTID it changes, a wait queue touches itself when woken, a lock when released, the engine the CPU whose
 * run state a step changed. `touch(oid)` declares an access that may write; `touchRead(oid)` one that only reads — two
 * steps that only read an object do not conflict on it. A step that cannot say what it touched calls `touchAll()` and
 * is dependent with every other step. A checker reads the footprint after each step (Engine.footprint); the timed
 * simulator leaves recording off, and then `touch` is a single test.
 *
 * A footprint is a sorted array of entries `oid * 2 + w` (w = 1: written, 0: only read), one per object: `oidOf` and
 * `writes` read an entry, `conflicts` is the dependence of two footprints.
 *
 * Nothing here allocates per step: the buffer grows once to the largest footprint seen.
 */

/** The recorder's state, in a constant object's fields (stores to module-level `let`s are slower: frame.ts). */
const fp = { recording: false, buf: new Int32Array(64), n: 0, all: false };

/** The step being executed reads and may write shared object `oid` (negative: an object no checker tracks; ignored). */
export function touch(oid: number): void {
  if (fp.recording && oid >= 0) record(oid * 2 + 1);
}

/** The step being executed reads shared object `oid` and does not change it. */
export function touchRead(oid: number): void {
  if (fp.recording && oid >= 0) record(oid * 2);
}

function record(entry: number): void {
  if (fp.n === fp.buf.length) {
    const b = new Int32Array(fp.n * 2);
    b.set(fp.buf);
    fp.buf = b;
  }
  fp.buf[fp.n++] = entry;
}

/** The step being executed may touch anything: it is dependent with every other step. */
export function touchAll(): void {
  if (fp.recording) fp.all = true;
}

/** Whether a checker records footprints now (code may skip work that only feeds touch()). */
export function recordingFootprint(): boolean {
  return fp.recording;
}

/** Engine side: start recording the footprint of a new step (or stop recording). */
export function beginFootprint(on: boolean): void {
  // while nothing records, n and all stay as the last reset left them: every step under the simulator is one test
  if (!on && !fp.recording) return;
  fp.recording = on;
  fp.n = 0;
  fp.all = false;
}

/**
 * The footprint recorded since beginFootprint: `null` for a step that touched everything, else its entries sorted by
 * object, one per object (written, if any access of it may write).
 */
export function footprintSet(): number[] | null {
  if (fp.all) return null;
  const n = fp.n;
  const s = fp.buf.subarray(0, n).sort();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const e = s[i]!;
    // a read sorts just before the write of the same object: the write replaces it
    if (out.length > 0 && out[out.length - 1]! >> 1 === e >> 1) out[out.length - 1] = e;
    else out.push(e);
  }
  return out;
}

/** The object of a footprint entry. */
export function oidOf(entry: number): number {
  return entry >> 1;
}

/** Whether a footprint entry may write its object. */
export function writes(entry: number): boolean {
  return (entry & 1) === 1;
}

/**
 * Whether two footprints conflict: an object both touch, and at least one of them may write it (`null`: touched
 * everything). Steps whose footprints do not conflict commute.
 */
export function conflicts(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return true;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const ox = x >> 1;
    const oy = y >> 1;
    if (ox === oy) {
      if (((x | y) & 1) === 1) return true;
      i++;
      j++;
    } else if (ox < oy) i++;
    else j++;
  }
  return false;
}
