import { describe, expect, it } from 'vitest';
import { Gic } from '../hw/gic/gic.js';
import { ModelError } from './errors.js';
import { Frame } from './frame.js';
import { copyState, findUncopyable, markImmutable, markShared, stateHash } from './snapshot.js';
import { declareStatistics } from './statistics.js';
import { OP_STEP } from './task.js';

class Node_ {
  next: Node_ | null = null;
  constructor(
    public value: number,
    readonly tags: Set<string> = new Set(),
  ) {}
}

/** A frame two steps long whose local is a field: copyable mid-run. */
class Count extends Frame<number> {
  private n = 0;
  protected step() {
    this.n++;
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(OP_STEP);
    }
    return this.return_(this.n);
  }
}

describe('copyState', () => {
  it('keeps identity, cycles and prototypes, and copies collections and typed arrays', () => {
    const a = new Node_(1, new Set(['x']));
    const b = new Node_(2);
    a.next = b;
    b.next = a;
    const root = { a, b, both: [a, b], map: new Map([[a, new Uint32Array([7, 8])]]) };
    const c = copyState(root);
    expect(c.a).not.toBe(a);
    expect(c.a).toBeInstanceOf(Node_);
    expect(c.a.next).toBe(c.b);
    expect(c.b.next).toBe(c.a);
    expect(c.both[0]).toBe(c.a);
    expect(c.a.tags).not.toBe(a.tags);
    expect([...c.a.tags]).toEqual(['x']);
    const arr = c.map.get(c.a)!;
    expect([...arr]).toEqual([7, 8]);
    arr[0] = 9;
    expect(root.map.get(a)![0]).toBe(7);
  });

  it('shares what is marked shared and refuses a suspended generator', () => {
    const table = markShared({ cost: 3 });
    const c = copyState({ table });
    expect(c.table).toBe(table);
    function* g() {
      yield 1;
    }
    const it = g();
    it.next();
    expect(() => copyState({ it })).toThrow(ModelError);
  });

  it('an object whose fields differ from its class’s usual shape gets its own fields, in its own order', () => {
    const usual = new Node_(1);
    const odd = Object.assign(new Node_(2), { extra: 5 });
    const reordered = Object.create(Node_.prototype) as Node_;
    Object.assign(reordered, { value: 3, next: usual, tags: new Set<string>() });
    const c = copyState([usual, odd, reordered, usual]);
    expect(Object.keys(c[0]!)).toEqual(['value', 'tags', 'next']);
    expect(c[1]).toEqual(odd);
    expect(Object.keys(c[1]!)).toEqual(['value', 'tags', 'next', 'extra']);
    expect(Object.keys(c[2]!)).toEqual(['value', 'next', 'tags']);
    expect(c[2]!.next).toBe(c[0]);
    expect(c[3]).toBe(c[0]);
    expect(Object.keys(copyState(usual))).toEqual(['value', 'tags', 'next']);
  });

  it('a class with many shapes: past the cached ones (64), objects are still copied whole, in order, with aliasing', () => {
    class Bag {}
    const shared = { n: 1 };
    const bags = Array.from({ length: 80 }, (_, i) => {
      const b = new Bag() as Record<string, unknown>;
      for (let j = i; j >= 0; j--) b[`f${j}`] = j === 0 ? shared : j;
      return b;
    });
    const c = copyState(bags);
    for (let i = 0; i < bags.length; i++) {
      expect(c[i]).toBeInstanceOf(Bag);
      expect(Object.keys(c[i]!)).toEqual(Object.keys(bags[i]!));
      expect(c[i]).toEqual(bags[i]);
      expect(c[i]!.f0).toBe(c[0]!.f0);
    }
    expect(c[0]!.f0).not.toBe(shared);
    expect(stateHash(c)).toBe(stateHash(bags));
  });

  it('copies an object without a prototype and keeps functions as they are', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, code: Math.max, inner: [2] });
    const c = copyState(o);
    expect(Object.getPrototypeOf(c)).toBe(null);
    expect(c.code).toBe(Math.max);
    expect(c.inner).not.toBe(o.inner);
    expect(c.inner).toEqual([2]);
  });

  it('a frame copied mid-run resumes on its own: the copy and the original step independently', () => {
    const f = new Count();
    f.next();
    const c = copyState(f);
    expect(c.next().done).toBe(true);
    expect(c.value).toBe(2);
    expect(f.done).toBe(false);
    expect(f.next().value).toBe(2);
  });

  it('a GIC distributor copy answers like the original and diverges only by later writes', () => {
    const gic = new Gic({ nrCpus: 2, nrIrqs: 64 });
    gic.distributor.enable(40);
    gic.distributor.setLine(40, true);
    const c = copyState(gic);
    expect(c.distributor.isPending(40)).toBe(true);
    c.distributor.setLine(40, false);
    c.distributor.clearPending(40);
    expect(c.distributor.isPending(40)).toBe(false);
    expect(gic.distributor.isPending(40)).toBe(true);
  });
});

describe('stateHash', () => {
  it('a view leaves fields of a class out, or reads a canonical form of its objects', () => {
    class Bag {
      constructor(readonly items: number[]) {}
    }
    const view = {
      omit: new Map<object, readonly string[]>([[Node_.prototype, ['value']]]),
      canonical: new Map<object, (o: object) => unknown>([[Bag.prototype, (o) => [...(o as Bag).items].sort()]]),
    };
    const a = { n: new Node_(1), bag: new Bag([1, 2]) };
    const b = { n: new Node_(2), bag: new Bag([2, 1]) };
    expect(stateHash(a)).not.toBe(stateHash(b));
    expect(stateHash(a, view)).toBe(stateHash(b, view));
    b.bag.items.push(3);
    expect(stateHash(a, view)).not.toBe(stateHash(b, view));
  });

  it('is equal for a copy, and changes with a field, an element or which object a field refers to', () => {
    const a = new Node_(1);
    const b = new Node_(1);
    const root = { a, b, x: [1.5, 'two', null, undefined, 3n] as unknown[] };
    const h = stateHash(root);
    expect(stateHash(copyState(root))).toBe(h);
    a.value = 2;
    expect(stateHash(root)).not.toBe(h);
    a.value = 1;
    expect(stateHash(root)).toBe(h);
    a.next = b;
    const linked = stateHash(root);
    a.next = a;
    expect(stateHash(root)).not.toBe(linked);
    a.next = null;
    root.x[0] = 1.25;
    expect(stateHash(root)).not.toBe(h);
  });

  it('an object met again after many walks (past the numbers its mark holds, 1,023) is not taken for one seen in this walk', () => {
    const x = new Node_(7);
    const shared = { p: x, q: x };
    const apart = { p: x, q: new Node_(7) };
    const hShared = stateHash(shared);
    const hApart = stateHash(apart);
    expect(hApart).not.toBe(hShared);
    const other = { n: new Node_(1) };
    for (let i = 0; i < 1_100; i++) stateHash(other); // x is in none of these walks
    expect(stateHash(apart)).toBe(hApart);
    expect(stateHash(shared)).toBe(hShared);
  });

  it('per-shape readers and, past the cached shapes (64 per class), the field-by-field walk: every field counts, omitted ones do not', () => {
    class P {
      [k: string]: unknown;
      a: number;
      clock: number;
      list: unknown[];
      constructor(i: number) {
        this.a = i;
        this.clock = i * 7;
        this.list = [i, 'x', null];
      }
    }
    const make = () => {
      const objs: P[] = [];
      for (let i = 0; i < 80; i++) {
        const p = new P(i);
        for (let j = 0; j < i; j++) p[`e${j}`] = j;
        objs.push(p);
      }
      return { objs, m: new Map([[1, objs[0]]]), t: new Uint8Array([1, 2, 3]) };
    };
    const root = make();
    const omitClock = { omit: new Map([[P.prototype, ['clock']]]) };
    const h = stateHash(root);
    const hOmit = stateHash(root, omitClock);
    // pinned: a change of the encoding shows here (these values changed with the walker of 2026-12-06)
    expect(h).toBe('064c6c9dab163ee3');
    expect(hOmit).toBe('fa46fd8b794601ea');
    expect(stateHash(make())).toBe(h);
    for (const i of [3, 70]) {
      root.objs[i]!.clock++;
      expect(stateHash(root)).not.toBe(h);
      expect(stateHash(root, omitClock)).toBe(hOmit);
      root.objs[i]!.clock--;
      root.objs[i]![`e${i - 1}`] = -1;
      expect(stateHash(root, omitClock)).not.toBe(hOmit);
      root.objs[i]![`e${i - 1}`] = i - 1;
    }
    expect(stateHash(root)).toBe(h);
  });

  it('a value’s type counts: an integer is not the tag of another type, nor one field’s value another’s', () => {
    const hs = [1, 2, 3, 1.5, '1', true, false, null, undefined, 1n, [], {}].map((x) => stateHash({ x }));
    expect(new Set(hs).size).toBe(hs.length);
    expect(stateHash({ a: 1, b: 2 })).not.toBe(stateHash({ a: 2, b: 1 }));
  });

  it('a view with statistics leaves out the declared statistic fields (inherited by subclasses) and reads a statistics-only object as 0', () => {
    class Counted {
      state = 1;
      hits = 0;
    }
    class CountedMore extends Counted {
      misses = 0;
    }
    class Tally {
      a = 0;
      b = new Uint32Array(2);
    }
    declareStatistics(Counted, ['hits']);
    declareStatistics(Tally);
    const view = { statistics: true };
    const x = { c: new Counted(), m: new CountedMore(), t: new Tally() };
    const h = stateHash(x, view);
    const full = stateHash(x);
    x.c.hits = 5;
    x.m.hits = 6;
    x.t.a = 7;
    x.t.b[1] = 8;
    expect(stateHash(x, view)).toBe(h);
    expect(stateHash(x)).not.toBe(full);
    x.m.misses = 1; // not declared: state
    expect(stateHash(x, view)).not.toBe(h);
    x.m.misses = 0;
    x.c.state = 2;
    expect(stateHash(x, view)).not.toBe(h);
  });

  it('refuses a walk inside a walk (a canonical reader that hashes would renumber the outer walk’s objects)', () => {
    class Box {}
    const view = { canonical: new Map<object, (o: object) => unknown>([[Box.prototype, (o) => stateHash([o])]]) };
    expect(() => stateHash({ b: new Box() }, view)).toThrow(ModelError);
    expect(stateHash({ b: 1 })).toBe(stateHash({ b: 1 }));
  });

  it('reads typed arrays, including ones not a multiple of 4 bytes long', () => {
    const root = { w: new Uint32Array(4), b: new Uint8Array(3) };
    const h = stateHash(root);
    root.b[2] = 1;
    const h2 = stateHash(root);
    expect(h2).not.toBe(h);
    root.w[3] = 1;
    expect(stateHash(root)).not.toBe(h2);
  });
});

describe('markImmutable', () => {
  class Entry {
    constructor(
      readonly value: number,
      readonly next: Entry | null = null,
    ) {}
  }
  const table = (pin: number) => {
    const first = new Entry(pin);
    return { map: [[first], [new Entry(pin + 1, first)]] };
  };

  it('freezes the whole graph (a write throws), and every copy of a state shares it', () => {
    const t = markImmutable(table(1));
    expect(() => t.map.push([])).toThrow(TypeError);
    expect(() => t.map[0]!.pop()).toThrow(TypeError);
    expect(() => Object.assign(t.map[1]![0]!, { value: 5 })).toThrow(TypeError);
    const state = { t, e: t.map[0]![0]!, n: 1 };
    const c = copyState(state);
    expect(c.t).toBe(t);
    expect(c.e).toBe(t.map[0]![0]);
  });

  it('counts by content, read once: equal tables key equal wherever they are held, different ones differ', () => {
    const a = markImmutable(table(1));
    const b = markImmutable(table(1));
    const h = stateHash({ t: a, e: a.map[0]![0]! });
    expect(stateHash({ t: b, e: b.map[0]![0]! })).toBe(h);
    expect(stateHash({ t: b, e: a.map[0]![0]! })).toBe(h); // an older equal table's entry: nothing tells them apart
    expect(stateHash({ t: markImmutable(table(2)), e: a.map[0]![0]! })).not.toBe(h);
    expect(stateHash({ t: a, e: a.map[1]![0]! })).not.toBe(h);
    expect(stateHash({ t: a, e: null })).not.toBe(h);
    // which mutable fields point at one immutable object still counts, as for any object
    expect(stateHash({ t: a, u: a })).not.toBe(stateHash({ t: a, u: b }));
    // the content is the same as the graph's own walk, not the object's identity
    expect(stateHash({ t: a })).toBe(stateHash({ t: b }));
  });

  it('refuses a graph that reaches what could still change, and freezes nothing then', () => {
    for (const bad of [new Map(), new Set(), new Uint8Array(2), markShared({ cost: 1 }), () => 1, Object.freeze({})]) {
      const t = { ok: { n: 1 }, list: [bad] };
      expect(() => markImmutable(t)).toThrow(ModelError);
      expect(Object.isFrozen(t) || Object.isFrozen(t.ok) || Object.isFrozen(t.list)).toBe(false);
    }
    // an object made with an immutable one as its prototype is not immutable: a copy copies it
    const child = Object.create(markImmutable({ n: 1 })) as { n: number };
    expect(copyState({ child }).child).not.toBe(child);
    const code = markShared(function handler() {});
    expect(Object.isFrozen(markImmutable({ code }))).toBe(true);
  });
});

describe('findUncopyable', () => {
  it('names the path of a suspended generator and of every function in state not registered as code', () => {
    function* g() {
      yield 1;
    }
    const n = new Node_(1);
    const literal = {
      value() {
        return n.value; // an object literal's method made here captures n like an arrow function
      },
    };
    const root = {
      tasks: [{ gen: g() }],
      hooks: { onExit: () => n.value, bound: n.toString.bind(n), method: literal.value, code: markShared(stateHash) },
    };
    expect(findUncopyable(root)).toEqual([
      'root.tasks[0].gen: suspended generator',
      'root.hooks.onExit: function onExit',
      'root.hooks.bound: function bound toString',
      'root.hooks.method: function value',
    ]);
  });
});
