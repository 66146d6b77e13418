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
 * may be marked shared: every copy then refers to the same object, and the fingerprint reads it once. Data the model
 * publishes and never writes again (a table published under RCU) may be marked immutable: frozen, shared by every
 * copy, and read by the fingerprint by its content, hashed once.
 *
 * Both walks decide per prototype what its objects are (kindOf: an object's kind follows from its prototype chain)
 * and run code generated per shape (an exact own-key list met on objects of a prototype): only a load or a store
 * under a constant name stays fast across the model's many classes; each generated function first checks that the
 * object's keys are its shape's.
 */
import { ModelError } from './errors.js';
import { statisticsOf } from './statistics.js';

const sharedObjects = new WeakSet<object>();
/**
 * An immutable object's brand (markImmutable): the object itself under a module-private symbol, so that an object
 * made with an immutable one as its prototype is not immutable (weak sets of them made markImmutable ≈ 3× slower).
 */
const IMMUTABLE = Symbol('immutable');

function isImmutable(o: object): boolean {
  return (o as { [IMMUTABLE]?: object })[IMMUTABLE] === o;
}

/** Prototypes of the objects marked shared, of those marked immutable, and a count of marks (a Proto's flags' age). */
const sharedProtos = new WeakSet<object>();
const immutableProtos = new WeakSet<object>();
let sharedEpoch = 0;
const NO_PROTO = {};

/**
 * Every copy of a state refers to `o` itself: an object that never changes after the machine is built, or a function
 * that is code only (a module-level function, a table of them) and may be kept in state.
 */
export function markShared<T extends object>(o: T): T {
  sharedObjects.add(o);
  sharedProtos.add(Object.getPrototypeOf(o) ?? NO_PROTO);
  sharedEpoch++;
  return o;
}

/**
 * Deep-immutable published data: `root` and every object and array it reaches are frozen (a write then throws in
 * strict-mode code, which every ES module is) and shared by every copy of a state. A fingerprint reads such an object
 * by its content — hashed once per view and cached — wherever a mutable object points at it, numbered like every other
 * object where it is first met; the objects inside it are not numbered, so which of two equal-content immutable objects a
 * field points at does not count: code must not compare immutable objects by identity (===, Map or Set keys).
 * ModelError if the graph reaches what could still change or cannot be a value: a Map, a Set, a typed array, a
 * generator, an object marked shared but not immutable, one frozen or sealed by other code (whose interior nothing
 * checked), or a function not registered as code (markShared). Nothing is frozen then.
 */
export function markImmutable<T extends object>(root: T): T {
  const found: object[] = [];
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'function') {
      if (!sharedObjects.has(v)) throw new ModelError(`markImmutable: function ${v.name || '(anonymous)'} is not code`);
      continue;
    }
    if (v === null || typeof v !== 'object' || seen.has(v) || isImmutable(v)) continue;
    seen.add(v);
    const kind = kindOf(v);
    if (kind !== PLAIN && kind !== ARRAY)
      throw new ModelError('markImmutable: reaches a Map, Set, typed array or generator');
    if (sharedObjects.has(v)) throw new ModelError('markImmutable: reaches an object marked shared, not immutable');
    if (!Object.isExtensible(v)) throw new ModelError('markImmutable: reaches an object frozen or sealed elsewhere');
    found.push(v);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) stack.push(o[k]);
  }
  for (const o of found) {
    Object.defineProperty(o, IMMUTABLE, { value: o });
    Object.freeze(o);
    immutableProtos.add(Object.getPrototypeOf(o) ?? NO_PROTO);
  }
  sharedEpoch++;
  return root;
}

const GENERATOR_TAG = '[object Generator]';

function isGenerator(o: object): boolean {
  return Object.prototype.toString.call(o) === GENERATOR_TAG;
}

// What the objects of a prototype are, decided on the first one met.
const PLAIN = 0;
const ARRAY = 1;
const WORDS = 2; // Int32Array, Uint32Array: read element by element
const BYTES = 3; // Uint8Array
const TYPED = 4; // every other typed array and DataView: read through a view of its bytes
const MAP = 5;
const SET = 6;
const GENERATOR = 7;
const CANONICAL = 8; // a fingerprint's view reads a canonical value in place of the object

function kindOf(o: object): number {
  if (Array.isArray(o)) return ARRAY;
  if (o instanceof Int32Array || o instanceof Uint32Array) return WORDS;
  if (o instanceof Uint8Array) return BYTES;
  if (ArrayBuffer.isView(o)) return TYPED;
  if (o instanceof Map) return MAP;
  if (o instanceof Set) return SET;
  if (isGenerator(o)) return GENERATOR;
  return PLAIN;
}

/** What a walk knows of one prototype's objects. */
interface Proto {
  readonly kind: number;
  /** Whether some object of the prototype was marked shared, as of `sharedEpoch` (then each one is looked up). */
  mayBeShared: boolean;
  /** Whether some object of the prototype was marked immutable, as of `sharedEpoch` (then each one's brand is read). */
  mayBeImmutable: boolean;
  sharedEpoch: number;
}

/** Whether `o`, of prototype key `p` (NO_PROTO for none), was marked shared or immutable. */
function isShared(o: object, p: object, info: Proto): boolean {
  if (info.sharedEpoch !== sharedEpoch) {
    info.mayBeShared = sharedProtos.has(p);
    info.mayBeImmutable = immutableProtos.has(p);
    info.sharedEpoch = sharedEpoch;
  }
  return (info.mayBeImmutable && isImmutable(o)) || (info.mayBeShared && sharedObjects.has(o));
}

/** One exact own-key list met on objects of a prototype. */
interface Shape {
  readonly keys: readonly string[];
  /** Of the class name and the field names: what the fingerprint reads for the layout. */
  readonly hash: number;
}

/** The shapes met so far per prototype; a class nearly always has one. */
const shapes = new WeakMap<object, Shape[]>();
/** Shapes per prototype past which objects are walked field by field (a prototype whose objects vary without bound). */
const MAX_SHAPES = 64;

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

/** Generated code's test that `k` (an object's own keys) is `keys`: a comparison with each constant name. */
function keysTest(keys: readonly string[]): string {
  return `k.length !== ${keys.length}${keys.map((key, i) => ` || k[${i}] !== ${JSON.stringify(key)}`).join('')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Copies

/** Copies an object of one shape (undefined: its keys are not the shape's). Generated: makeShapeCopier. */
type ShapeCopier = (o: object, k: readonly string[], proto: object | null, w: Copier) => object | undefined;

interface CopyProto extends Proto {
  readonly copiers: ShapeCopier[];
}

/** Per prototype met (NO_PROTO for objects without one): how copies are made. */
const copyProtos = new Map<object, CopyProto>();

/**
 * A copy of one shape: a new object with the prototype, registered before its fields are copied (cycles), then each
 * field under a constant name and in order — an object made by stores under computed names turns into a slow
 * dictionary object in V8 past a dozen or so fields, and so does everything later read from it (measured: 256 VgicIrq
 * copied in 28 µs against 340 µs by computed names; a spread plus setPrototypeOf, or Object.assign, were 2× slower
 * across the model's many shapes). The code is built only from property names quoted by JSON.stringify.
 */
function makeShapeCopier(keys: readonly string[]): ShapeCopier {
  const stores = keys.map((key) => {
    const k = JSON.stringify(key);
    return `x = o[${k}];\nc[${k}] = typeof x === 'object' && x !== null ? w.copy(x) : x;`;
  });
  const body = [`if (${keysTest(keys)}) return undefined;`, 'const c = Object.create(proto);', 'w.copies.set(o, c);'];
  return new Function('o', 'k', 'proto', 'w', [...body, 'let x;', ...stores, 'return c;'].join('\n')) as ShapeCopier;
}

class Copier {
  readonly copies = new Map<object, object>();
  private lastProto: object | null = null;
  private lastInfo: CopyProto | undefined;

  copy(o: object): object {
    const seen = this.copies.get(o);
    if (seen !== undefined) return seen;
    const proto = Object.getPrototypeOf(o) as object | null;
    const p = proto ?? NO_PROTO;
    let info = this.lastInfo;
    if (proto !== this.lastProto || info === undefined) {
      info = copyProtos.get(p);
      if (info === undefined) {
        info = { kind: kindOf(o), mayBeShared: false, mayBeImmutable: false, sharedEpoch: -1, copiers: [] };
        copyProtos.set(p, info);
      }
      this.lastProto = proto;
      this.lastInfo = info;
    }
    if (isShared(o, p, info)) return o;
    switch (info.kind) {
      case ARRAY: {
        const a = o as unknown[];
        const c: unknown[] = new Array(a.length);
        this.copies.set(o, c);
        for (let i = 0; i < a.length; i++) {
          const x = a[i];
          c[i] = typeof x === 'object' && x !== null ? this.copy(x) : x;
        }
        return c;
      }
      case MAP: {
        const c = new Map<unknown, unknown>();
        this.copies.set(o, c);
        for (const [k, x] of o as Map<unknown, unknown>) c.set(this.value(k), this.value(x));
        return c;
      }
      case SET: {
        const c = new Set<unknown>();
        this.copies.set(o, c);
        for (const x of o as Set<unknown>) c.add(this.value(x));
        return c;
      }
      case WORDS:
      case BYTES:
      case TYPED: {
        const c = (o as unknown as { slice(): object }).slice();
        this.copies.set(o, c);
        return c;
      }
      case GENERATOR:
        throw new ModelError('copyState: a suspended generator is not copyable');
      default:
        return this.fields(o as Record<string, unknown>, proto, info);
    }
  }

  value(v: unknown): unknown {
    return typeof v === 'object' && v !== null ? this.copy(v) : v;
  }

  private fields(o: Record<string, unknown>, proto: object | null, info: CopyProto): object {
    const keys = Object.keys(o);
    const copiers = info.copiers;
    for (let i = 0; i < copiers.length; i++) {
      const c = copiers[i]!(o, keys, proto, this);
      if (c !== undefined) return c;
    }
    if (shapeOf(proto, keys) !== undefined) {
      const copier = makeShapeCopier(keys);
      copiers.push(copier);
      return copier(o, keys, proto, this)!;
    }
    // a prototype whose objects vary without bound: by computed names
    const c = Object.create(proto) as Record<string, unknown>;
    this.copies.set(o, c);
    for (let i = 0; i < keys.length; i++) c[keys[i]!] = o[keys[i]!];
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const x = c[k];
      if (typeof x === 'object' && x !== null) c[k] = this.copy(x);
    }
    return c;
  }
}

/**
 * A copy of everything reachable from `root` that is state: identity and cycles kept (two paths to one object lead to
 * one copy), prototypes kept, typed arrays, Maps and Sets copied, functions and shared objects not copied.
 */
export function copyState<T>(root: T): T {
  return new Copier().value(root) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// Fingerprints

/** Reads an object of one shape into a fingerprint, or says it has other keys (generated: makeShapeReader). */
type ShapeReader = (o: object, f: Fingerprint, k: readonly string[]) => boolean;

/**
 * The reader of one shape: false unless `k` (the object's own keys) are the shape's, else the layout and the fields
 * not in `omit`, each under a constant name (as makeShapeCopier, and for its reason); an integer or boolean field is
 * mixed in place, the rest through Fingerprint.value (which mixes integers and booleans the same way). The code is
 * built only from property names quoted by JSON.stringify and integers.
 */
function makeShapeReader(keys: readonly string[], omit: readonly string[] | undefined, layout: number): ShapeReader {
  const reads = keys
    .filter((k) => omit === undefined || !omit.includes(k))
    .map(
      (k) =>
        `v = o[${JSON.stringify(k)}];\n` +
        `if (typeof v === 'number' && (v | 0) === v) f.word(v);\n` +
        `else if (typeof v === 'boolean') f.tag(v ? ${T_TRUE} : ${T_FALSE});\n` +
        'else f.value(v);',
    );
  const body = [`if (${keysTest(keys)}) return false;`, `f.word(${layout});`, 'let v;', ...reads, 'return true;'];
  return new Function('o', 'f', 'k', body.join('\n')) as ShapeReader;
}

/**
 * How a fingerprint reads objects of some classes (keyed by prototype): fields it leaves out (a clock, a statistics
 * counter that nothing reads back), or a canonical value read in place of the object (a heap's layout replaced by the
 * set it holds). Whoever leaves something out must show it decides nothing (src/check/stateKey.ts). What a view says
 * is read once per prototype and kept for the life of the view: keep views as module constants.
 */
export interface HashView {
  readonly omit?: ReadonlyMap<object, readonly string[]>;
  readonly canonical?: ReadonlyMap<object, (o: object) => unknown>;
  /** Leave out the fields declared statistics (sim/statistics.ts); an object that is statistics only reads as 0. */
  readonly statistics?: boolean;
}

/** How a fingerprint reads the objects of one prototype under one view. */
interface Plan extends Proto {
  readonly canonical: ((o: object) => unknown) | undefined;
  readonly omit: readonly string[] | undefined;
  /** A reader per shape met so far (shapeOf's, at most MAX_SHAPES). */
  readonly readers: ShapeReader[];
}

/** What an object that is statistics only reads as. */
const statisticsOnly = (): number => 0;

function planOf(o: object, proto: object | null, view: HashView): Plan {
  const stats = view.statistics === true && proto !== null ? statisticsOf(proto) : undefined;
  const canonical = stats === 'all' ? statisticsOnly : proto !== null ? view.canonical?.get(proto) : undefined;
  const kind = kindOf(o);
  let omit = proto !== null ? view.omit?.get(proto) : undefined;
  if (stats !== undefined && stats !== 'all') omit = [...(omit ?? []), ...stats];
  return {
    kind: kind === PLAIN && canonical !== undefined ? CANONICAL : kind,
    canonical,
    omit,
    readers: [],
    mayBeShared: false,
    mayBeImmutable: false,
    sharedEpoch: -1,
  };
}

/**
 * Object numbers, kept from walk to walk: a checker keys one machine after each step, and re-numbering an object
 * already in the table is several times cheaper than adding it to a new table. An object's mark is one small integer,
 * `walk * MARK_SPAN + id` (the walk that met it last and its number there), so a walk allocates nothing per object
 * (a mark object per entry was ≈ 30 M short-lived objects in an unbounded assign-race). The table keeps the objects it
 * holds alive: it is emptied when it holds more than four times the objects of the last walk (the machines of a few
 * forks), and when the walk numbers run out — so a mark at least the current walk's base is from the current walk.
 */
const marks = new Map<object, number>();
/** Objects one walk can number (a mark stays below 2³⁰: a small integer of V8 with or without pointer compression). */
const MARK_SPAN = 1 << 20;
/** Walks numbered before the table is emptied. */
const MAX_WALKS = (1 << 30) / MARK_SPAN - 1;
let walks = 0;
/** Objects the last walk numbered. */
let lastCount = 0;

let walking = false;

/** The number of a new walk (one at a time: stateHash). */
function nextWalk(): number {
  if (marks.size > 4 * lastCount + 256 || walks >= MAX_WALKS) {
    marks.clear();
    walks = 0;
  }
  return ++walks;
}

/** Per view: the plan of each prototype met (NO_PROTO for objects without one). */
const plansOf = new WeakMap<HashView, Map<object, Plan>>();
/** Per view: the content hash of each immutable object met (markImmutable). */
const contentsOf = new WeakMap<HashView, WeakMap<object, readonly [number, number]>>();
const NO_VIEW: HashView = {};

// Tags of what is not a 32-bit integer (an integer is mixed as itself, through `word`, which mixes differently)
const T_UNDEFINED = 1;
const T_TRUE = 2;
const T_FALSE = 3;
const T_DOUBLE = 5;
const T_STRING = 6;
const T_BIGINT = 7;
const T_FUNCTION = 8;
const T_SYMBOL = 9;
const T_NULL = 10;
const T_SEEN = 11;
const T_ARRAY = 12;
const T_TYPED = 13;
const T_MAP = 14;
const T_SET = 15;
const T_OBJECT = 16;
const T_SHARED = 17;
const T_CANONICAL = 18;
const T_IMMUTABLE = 19;

/** 64-bit hashes of the strings met so far (names, mostly: a state holds few distinct strings). */
const textHashes = new Map<string, readonly [number, number]>();
const MAX_TEXTS = 1 << 16;

function textHash(s: string): readonly [number, number] {
  let h = textHashes.get(s);
  if (h !== undefined) return h;
  let a = 0x811c9dc5 ^ s.length;
  let b = Math.imul(s.length, 0x9e3779b1);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(((b << 7) | (b >>> 25)) ^ c, 0x85ebca77);
  }
  h = [fmix(a), fmix(b)];
  if (textHashes.size >= MAX_TEXTS) textHashes.clear();
  textHashes.set(s, h);
  return h;
}

/** murmur3's finalizer: every input bit reaches every output bit. */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/**
 * One walk of stateHash. The state is read as a sequence of 32-bit words, each mixed into two independent 32-bit
 * lanes by a rotate, an xor and a multiply (a bijection of the lane for a given word, so two sequences that differ in
 * one word never collide); integers are mixed as themselves, everything else behind a tag mixed with other
 * multipliers. Both lanes are finalized with murmur3's mixer.
 */
class Fingerprint {
  h1 = 0x811c9dc5;
  h2 = 0x5bd1e995;
  /** Objects numbered so far in this walk. */
  private count = 0;
  /** The last prototype met and its plan (objects of one class often come in a row: a table's entries). */
  private lastProto: object | null = null;
  private lastPlan: Plan | undefined;

  /**
   * `marks`, `walk`: the object numbers (the table kept from walk to walk, or a fresh one for the content of an
   * immutable object); `contents`: the content hashes of immutable objects, or null inside one (where the objects are
   * read like every other object).
   */
  constructor(
    private readonly plans: Map<object, Plan>,
    private readonly view: HashView,
    private readonly contents: WeakMap<object, readonly [number, number]> | null,
    private readonly marks: Map<object, number>,
    private readonly walk: number,
  ) {}

  word(x: number): void {
    this.h1 = Math.imul(((this.h1 << 5) | (this.h1 >>> 27)) ^ x, 0x9e3779b1);
    this.h2 = Math.imul(((this.h2 << 11) | (this.h2 >>> 21)) ^ x, 0x85ebca77);
  }

  tag(t: number): void {
    this.h1 = Math.imul(((this.h1 << 5) | (this.h1 >>> 27)) ^ t, 0xc2b2ae3d);
    this.h2 = Math.imul(((this.h2 << 11) | (this.h2 >>> 21)) ^ t, 0x27d4eb2f);
  }

  text(s: string): void {
    const h = textHash(s);
    this.word(h[0]);
    this.word(h[1]);
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        if ((v | 0) === v) this.word(v);
        else {
          f64[0] = v;
          this.tag(T_DOUBLE);
          this.word(u32[0]!);
          this.word(u32[1]!);
        }
        return;
      case 'object':
        if (v === null) this.tag(T_NULL);
        else this.object(v);
        return;
      case 'undefined':
        this.tag(T_UNDEFINED);
        return;
      case 'boolean':
        this.tag(v ? T_TRUE : T_FALSE);
        return;
      case 'string':
        this.tag(T_STRING);
        this.text(v);
        return;
      case 'bigint':
        this.tag(T_BIGINT);
        this.text(v.toString(16));
        return;
      case 'function':
        this.tag(T_FUNCTION);
        this.text(v.name);
        return;
      case 'symbol':
        this.tag(T_SYMBOL);
        this.text(v.description ?? '');
        return;
    }
  }

  object(o: object): void {
    const m = this.marks.get(o);
    const base = this.walk * MARK_SPAN;
    if (m !== undefined && m >= base) {
      this.tag(T_SEEN);
      this.word(m - base);
      return;
    }
    if (this.count === MARK_SPAN) throw new ModelError(`stateHash: more than ${MARK_SPAN} objects in one state`);
    this.marks.set(o, base + this.count++);
    const proto = Object.getPrototypeOf(o) as object | null;
    const p = proto ?? NO_PROTO;
    let plan = this.lastPlan;
    if (proto !== this.lastProto || plan === undefined) {
      plan = this.plans.get(p);
      if (plan === undefined) {
        plan = planOf(o, proto, this.view);
        this.plans.set(p, plan);
      }
      this.lastProto = proto;
      this.lastPlan = plan;
    }
    if (isShared(o, p, plan)) {
      if (!isImmutable(o)) {
        this.tag(T_SHARED);
        return;
      }
      if (this.contents !== null) {
        this.immutable(o, this.contents);
        return;
      }
    }
    switch (plan.kind) {
      case PLAIN:
        this.fields(o as Record<string, unknown>, proto, plan);
        return;
      case ARRAY: {
        const a = o as unknown[];
        this.tag(T_ARRAY);
        this.word(a.length);
        for (let i = 0; i < a.length; i++) this.value(a[i]);
        return;
      }
      case WORDS: {
        const a = o as Int32Array;
        this.tag(T_TYPED);
        this.word(a.byteLength);
        for (let i = 0; i < a.length; i++) this.word(a[i]! | 0);
        return;
      }
      case BYTES: {
        const a = o as Uint8Array;
        this.tag(T_TYPED);
        this.word(a.length);
        let i = 0;
        for (; i + 4 <= a.length; i += 4) this.word(a[i]! | (a[i + 1]! << 8) | (a[i + 2]! << 16) | (a[i + 3]! << 24));
        for (; i < a.length; i++) this.word(a[i]!);
        return;
      }
      case TYPED: {
        const t = o as ArrayBufferView;
        this.tag(T_TYPED);
        this.word(t.byteLength);
        const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
        for (let i = 0; i < bytes.length; i++) this.word(bytes[i]!);
        return;
      }
      case MAP:
        this.tag(T_MAP);
        this.word((o as Map<unknown, unknown>).size);
        for (const [k, x] of o as Map<unknown, unknown>) {
          this.value(k);
          this.value(x);
        }
        return;
      case SET:
        this.tag(T_SET);
        this.word((o as Set<unknown>).size);
        for (const x of o as Set<unknown>) this.value(x);
        return;
      case GENERATOR:
        throw new ModelError('stateHash: a suspended generator has no readable state');
      case CANONICAL:
        this.tag(T_CANONICAL);
        this.value(plan.canonical!(o));
        return;
    }
  }

  /** An immutable object by its content, read by a walk of its own the first time (markImmutable). */
  private immutable(o: object, contents: WeakMap<object, readonly [number, number]>): void {
    let h = contents.get(o);
    if (h === undefined) {
      const f = new Fingerprint(this.plans, this.view, null, new Map(), 1);
      f.object(o);
      h = [fmix(f.h1), fmix(f.h2)];
      contents.set(o, h);
    }
    this.tag(T_IMMUTABLE);
    this.word(h[0]);
    this.word(h[1]);
  }

  /** A plain object: its layout (class and field names), then its fields but the omitted ones, in order. */
  private fields(o: Record<string, unknown>, proto: object | null, plan: Plan): void {
    this.tag(T_OBJECT);
    const keys = Object.keys(o);
    const readers = plan.readers;
    for (let i = 0; i < readers.length; i++) if (readers[i]!(o, this, keys)) return;
    const s = shapeOf(proto, keys);
    if (s !== undefined) {
      const read = makeShapeReader(keys, plan.omit, s.hash);
      readers.push(read);
      read(o, this, keys);
      return;
    }
    // a prototype whose objects vary without bound: field by field
    this.word(layoutHash(proto, keys));
    const omit = plan.omit;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (omit === undefined || !omit.includes(k)) this.value(o[k]);
    }
  }

  digest(): string {
    lastCount = this.count;
    return fmix(this.h1).toString(16).padStart(8, '0') + fmix(this.h2).toString(16).padStart(8, '0');
  }
}

/**
 * A 64-bit fingerprint of the state reachable from `root`, as 16 hex digits: equal states give equal fingerprints.
 * Objects are numbered in the order a depth-first walk first meets them, so the fingerprint sees which fields refer to
 * the same object; a Map or Set is read in its insertion order (the model fills them in a deterministic order).
 * Functions count by name only (code, not state); a shared object counts by its place in the walk (it never changes),
 * an immutable one by its content (markImmutable).
 * `view` leaves fields of some classes out or reads a canonical form of them.
 */
export function stateHash(root: unknown, view: HashView = NO_VIEW): string {
  let plans = plansOf.get(view);
  let contents = contentsOf.get(view);
  if (plans === undefined || contents === undefined) {
    plans = new Map();
    plansOf.set(view, plans);
    contents = new WeakMap();
    contentsOf.set(view, contents);
  }
  // one walk at a time: a nested one (a view's canonical reader hashing) would renumber the objects of this one
  if (walking) throw new ModelError('stateHash: called from a canonical reader of a walk');
  walking = true;
  try {
    const f = new Fingerprint(plans, view, contents, marks, nextWalk());
    f.value(root);
    return f.digest();
  } finally {
    walking = false;
  }
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
