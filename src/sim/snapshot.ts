/**
 * Copies and fingerprints of model state: what lets a checker save a machine once and fork from it, and recognise a
 * state it has seen. Model state is a graph of plain objects — class instances (prototypes kept), arrays, typed
 * arrays, Maps and Sets — and frames (sim/frame.ts), whose program counter and locals are fields. Functions are
 * shared by every copy: code, not state. What cannot be copied is a suspended generator (its pc and locals live in
 * the VM) or a function that captured a model object (an arrow function, a bound method, an object literal's method
 * made in a factory): a copy would still act on the original. `copyState` refuses the first; `findUncopyable` lists
 * both, counting every function kept in state that is not registered as code with markShared.
 *
 * Objects that never change after the machine is built (cost tables, file-operation tables, the lockdep class list)
 * may be marked shared: every copy then refers to the same object, and the fingerprint reads it once.
 */
import { ModelError } from './errors.js';

const sharedObjects = new WeakSet<object>();

/**
 * Every copy of a state refers to `o` itself: an object that never changes after the machine is built, or a function
 * that is code only (a module-level function, a table of them) and may be kept in state.
 */
export function markShared<T extends object>(o: T): T {
  sharedObjects.add(o);
  return o;
}

const GENERATOR_TAG = '[object Generator]';

function isGenerator(o: object): boolean {
  return Object.prototype.toString.call(o) === GENERATOR_TAG;
}

/**
 * A copy of everything reachable from `root` that is state: identity and cycles kept (two paths to one object lead to
 * one copy), prototypes kept, typed arrays, Maps and Sets copied, functions and shared objects not copied.
 */
export function copyState<T>(root: T): T {
  const copies = new Map<object, unknown>();
  const copy = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const seen = copies.get(o);
    if (seen !== undefined) return seen;
    if (sharedObjects.has(o)) return o;
    if (Array.isArray(o)) {
      const c: unknown[] = new Array(o.length);
      copies.set(o, c);
      for (let i = 0; i < o.length; i++) c[i] = copy(o[i], depth + 1);
      return c;
    }
    if (ArrayBuffer.isView(o)) {
      const c = (o as unknown as { slice(): object }).slice();
      copies.set(o, c);
      return c;
    }
    if (o instanceof Map) {
      const c = new Map<unknown, unknown>();
      copies.set(o, c);
      for (const [k, x] of o) c.set(copy(k, depth + 1), copy(x, depth + 1));
      return c;
    }
    if (o instanceof Set) {
      const c = new Set<unknown>();
      copies.set(o, c);
      for (const x of o) c.add(copy(x, depth + 1));
      return c;
    }
    if (isGenerator(o)) throw new ModelError(`copyState: a suspended generator is not copyable (${depth} levels deep)`);
    const proto = Object.getPrototypeOf(o) as object | null;
    const keys = Object.keys(o);
    const c = shallowCopy(o, proto, keys);
    copies.set(o, c);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const x = c[k];
      if (x !== null && typeof x === 'object') c[k] = copy(x, depth + 1);
    }
    return c;
  };
  return copy(root, 0) as T;
}

type Cloner = (o: object, proto: object | null) => Record<string, unknown>;
type FieldWalker = (o: object, walk: (v: unknown) => void) => void;

/** One exact own-key list met on objects of a prototype, and what is made for it on first use. */
interface Shape {
  readonly keys: readonly string[];
  /** Of the class name and the field names: what the fingerprint reads for the layout. */
  readonly hash: number;
  clone?: Cloner;
  /** Per list of fields a fingerprint leaves out (its identity; `undefined`: none). */
  walkers?: Map<readonly string[] | undefined, FieldWalker>;
}

/** The shapes met so far per prototype; a class nearly always has one. */
const shapes = new WeakMap<object, Shape[]>();
const NO_PROTO = {};
/** Shapes per prototype past which objects are read field by field (a prototype whose objects vary without bound). */
const MAX_SHAPES = 8;

/** The cached shape of an object with `proto` and own `keys`, made on first meeting; undefined past MAX_SHAPES. */
function shapeOf(proto: object | null, keys: readonly string[]): Shape | undefined {
  const p = proto ?? NO_PROTO;
  let known = shapes.get(p);
  if (known === undefined) {
    known = [];
    shapes.set(p, known);
  }
  for (let i = 0; i < known.length; i++) {
    const s = known[i]!;
    if (sameKeys(s.keys, keys)) return s;
  }
  if (known.length >= MAX_SHAPES) return undefined;
  const s: Shape = { keys, hash: layoutHash(proto, keys) };
  known.push(s);
  return s;
}

/**
 * An object with `proto` and the own fields of `o` in the same order, the values themselves (not yet copied). Objects
 * made by adding fields under computed names turn into slow dictionary objects in V8 past a dozen or so fields, and so
 * does everything later read from them; a cloner made per shape adds them under constant names and keeps them fast.
 */
function shallowCopy(
  o: Record<string, unknown>,
  proto: object | null,
  keys: readonly string[],
): Record<string, unknown> {
  const s = shapeOf(proto, keys);
  if (s !== undefined) {
    s.clone ??= makeCloner(keys);
    return s.clone(o, proto);
  }
  const c = Object.create(proto) as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) c[keys[i]!] = o[keys[i]!];
  return c;
}

/**
 * Generated code, because only a store under a constant name keeps a large object fast and each cloner's stores then
 * see one shape (measured: 256 VgicIrq copied in 28 µs against 340 µs by computed names; a spread plus setPrototypeOf,
 * or Object.assign, were 2× slower than computed names across the model's many shapes). The code is built only from
 * property names quoted by JSON.stringify.
 */
function makeCloner(keys: readonly string[]): Cloner {
  const stores = keys.map((k) => `c[${JSON.stringify(k)}] = o[${JSON.stringify(k)}];`).join('\n');
  return new Function('o', 'proto', `const c = Object.create(proto);\n${stores}\nreturn c;`) as Cloner;
}

/** Reads the fields of `keys` not in `omit`, in order, each under a constant name (as makeCloner, and for its reason). */
function makeFieldWalker(keys: readonly string[], omit: readonly string[] | undefined): FieldWalker {
  const reads = keys
    .filter((k) => omit === undefined || !omit.includes(k))
    .map((k) => `walk(o[${JSON.stringify(k)}]);`);
  return new Function('o', 'walk', reads.join('\n')) as FieldWalker;
}

/**
 * How a fingerprint reads objects of some classes (keyed by prototype): fields it leaves out (a clock, a statistics
 * counter that nothing reads back), or a canonical value read in place of the object (a heap's layout replaced by the
 * set it holds). Whoever leaves something out must show it decides nothing (src/check/stateKey.ts). A field reader is
 * made per omitted-field list, by identity: keep a view's lists for the life of the process (module constants).
 */
export interface HashView {
  readonly omit?: ReadonlyMap<object, readonly string[]>;
  readonly canonical?: ReadonlyMap<object, (o: object) => unknown>;
}

/**
 * A 64-bit fingerprint of the state reachable from `root`, as 16 hex digits: equal states give equal fingerprints.
 * Objects are numbered in the order a depth-first walk first meets them, so the fingerprint sees which fields refer to
 * the same object; a Map or Set is read in its insertion order (the model fills them in a deterministic order).
 * Functions count by name only (code, not state); a shared object counts by its place in the walk (it never changes).
 * `view` leaves fields of some classes out or reads a canonical form of them.
 */
export function stateHash(root: unknown, view: HashView = {}): string {
  const omitOf = view.omit;
  const canonicalOf = view.canonical;
  const ids = new Map<object, number>();
  // two independent 32-bit FNV-1a lanes
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  const mix = (x: number): void => {
    h1 = Math.imul(h1 ^ (x & 0xffff), 0x01000193);
    h1 = Math.imul(h1 ^ (x >>> 16), 0x01000193);
    h2 = Math.imul(h2 ^ (x & 0xffff), 0x5bd1e995);
    h2 = Math.imul(h2 ^ (h2 >>> 15) ^ (x >>> 16), 0x27d4eb2d);
  };
  const f64 = new Float64Array(1);
  const u32 = new Uint32Array(f64.buffer);
  const mixString = (s: string): void => {
    mix(s.length);
    for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i));
  };
  const walk = (v: unknown): void => {
    switch (typeof v) {
      case 'undefined':
        mix(1);
        return;
      case 'boolean':
        mix(v ? 2 : 3);
        return;
      case 'number':
        if ((v | 0) === v) {
          mix(4);
          mix(v);
        } else {
          f64[0] = v;
          mix(5);
          mix(u32[0]!);
          mix(u32[1]!);
        }
        return;
      case 'string':
        mix(6);
        mixString(v);
        return;
      case 'bigint':
        mix(7);
        mixString(v.toString(16));
        return;
      case 'function':
        mix(8);
        mixString(v.name);
        return;
      case 'symbol':
        mix(9);
        mixString(v.description ?? '');
        return;
    }
    if (v === null) {
      mix(10);
      return;
    }
    const o = v as Record<string, unknown>;
    const id = ids.get(o);
    if (id !== undefined) {
      mix(11);
      mix(id);
      return;
    }
    ids.set(o, ids.size);
    if (sharedObjects.has(o)) {
      mix(17);
      return;
    }
    if (Array.isArray(o)) {
      mix(12);
      mix(o.length);
      for (let i = 0; i < o.length; i++) walk(o[i]);
      return;
    }
    if (ArrayBuffer.isView(o)) {
      mix(13);
      mix(o.byteLength);
      const whole = o.byteOffset % 4 === 0 && o.byteLength % 4 === 0;
      const words = whole
        ? new Int32Array(o.buffer, o.byteOffset, o.byteLength / 4)
        : new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
      for (let i = 0; i < words.length; i++) mix(words[i]!);
      return;
    }
    if (o instanceof Map) {
      mix(14);
      mix(o.size);
      for (const [k, x] of o) {
        walk(k);
        walk(x);
      }
      return;
    }
    if (o instanceof Set) {
      mix(15);
      mix(o.size);
      for (const x of o) walk(x);
      return;
    }
    if (isGenerator(o)) throw new ModelError('stateHash: a suspended generator has no readable state');
    const proto = Object.getPrototypeOf(o) as object | null;
    const canonical = proto !== null ? canonicalOf?.get(proto) : undefined;
    if (canonical !== undefined) {
      mix(18);
      walk(canonical(o));
      return;
    }
    mix(16);
    const keys = Object.keys(o);
    const omit = proto !== null ? omitOf?.get(proto) : undefined;
    const shape = shapeOf(proto, keys);
    if (shape === undefined) {
      mix(layoutHash(proto, keys));
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (omit === undefined || !omit.includes(k)) walk(o[k]);
      }
      return;
    }
    mix(shape.hash);
    shape.walkers ??= new Map();
    let fields = shape.walkers.get(omit);
    if (fields === undefined) {
      fields = makeFieldWalker(keys, omit);
      shape.walkers.set(omit, fields);
    }
    fields(o, walk);
  };
  walk(root);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** A hash of an object's class name and field names. */
function layoutHash(proto: object | null, keys: readonly string[]): number {
  let h = 0x811c9dc5;
  const name = (proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? '';
  for (const s of [name, ...keys]) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0xff, 0x01000193);
  }
  return h;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Where the graph from `root` holds something a copy cannot carry: a suspended generator, or a function that is not
 * registered as code (markShared). JavaScript cannot tell a module-level function or a class method from a closure
 * that captured model objects (an arrow function, a bound method, an object literal's method made inside a factory
 * all can), so a function in state must be registered — as a kernel's function pointers point only at code.
 */
export function findUncopyable(root: unknown, limit = 100): string[] {
  const seen = new Set<object>();
  const out: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (out.length >= limit) return;
    if (typeof v === 'function') {
      if (!sharedObjects.has(v)) out.push(`${path}: function ${v.name || '(anonymous)'}`);
      return;
    }
    if (v === null || typeof v !== 'object' || seen.has(v) || sharedObjects.has(v)) return;
    seen.add(v);
    if (isGenerator(v)) {
      out.push(`${path}: suspended generator`);
      return;
    }
    if (ArrayBuffer.isView(v)) return;
    if (v instanceof Map) {
      for (const [k, x] of v) {
        walk(k, `${path}.<key>`);
        walk(x, `${path}.get(${typeof k === 'object' ? '…' : String(k)})`);
      }
      return;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const x of v) walk(x, `${path}.<${i++}>`);
      return;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) walk(o[k], Array.isArray(o) ? `${path}[${k}]` : `${path}.${k}`);
  };
  walk(root, 'root');
  return out;
}
