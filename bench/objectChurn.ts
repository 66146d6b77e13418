/**
 * Which objects of the start machine ever change (issue 13): explores the first N states of assign-race's unbounded
 * search depth first (state caching by stateKey) plus R random schedules, and per object of the start machine —
 * matched by the first path a walk from the machine meets it at — and per field, whether its content ever differs
 * from the start. Prints, per class, objects never changed / changed, and the never-changed string fields of changed
 * objects (names a key rehashes per state).
 *
 *   node --import tsx bench/objectChurn.ts [states=20000] [random=500]
 *
 * PATHS=1 also lists the never-changed objects by path, FIELDS=1 the constant string fields of changed objects.
 * Never changing here does not make an object constant: read the code that writes it before marking it immutable.
 */
import { readFileSync } from 'node:fs';
import { Execution } from '../src/check/execution.js';
import { scenarioFromYaml } from '../src/check/scenarioCheck.js';
import { stateKey } from '../src/check/stateKey.js';
import { copyState } from '../src/sim/snapshot.js';

const file = 'scenarios/check-assign-race.yaml';
const maxStates = Number(process.argv[2] ?? 20000);
const randoms = Number(process.argv[3] ?? 500);
const scenario = scenarioFromYaml(readFileSync(file, 'utf8'), file, { variant: 'protocol' });

function nameOf(o: object): string {
  if (Array.isArray(o)) return 'Array';
  const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null;
  return proto?.constructor?.name ?? '(null prototype)';
}

/** The start-machine object each object descends from (kept in place by steps, or copied by forks). */
const origin = new WeakMap<object, number>();
const classOf: string[] = [];
const firstPath: string[] = [];

/** Calls `f` on each pair of corresponding objects of two structurally equal graphs (a state and its copy). */
function pairWalk(a: unknown, b: unknown, f: (a: object, b: object) => void, seen = new Set<object>()): void {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    if (x === null || typeof x !== 'object' || seen.has(x)) continue;
    seen.add(x);
    f(x, y as object);
    if (x === y || ArrayBuffer.isView(x)) continue;
    if (x instanceof Map) {
      const ys = [...(y as Map<unknown, unknown>)];
      let i = 0;
      for (const [k, v] of x) {
        stack.push([k, ys[i]![0]], [v, ys[i++]![1]]);
      }
      continue;
    }
    if (x instanceof Set) {
      const ys = [...(y as Set<unknown>)];
      let i = 0;
      for (const v of x) stack.push([v, ys[i++]]);
      continue;
    }
    for (const k of Object.keys(x)) stack.push([(x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]]);
  }
}

/** Per object of `root` descended from the start: its fields, references given as origin ids. */
function signatures(root: object): Map<number, Map<string, string>> {
  const out = new Map<number, Map<string, string>>();
  const ref = (x: unknown): string => {
    if (x !== null && typeof x === 'object') {
      if (sharedSet.has(x)) return 'shared';
      const id = origin.get(x);
      return id === undefined ? 'new' : `#${id}`;
    }
    if (typeof x === 'function') return `fn ${x.name}`;
    return typeof x === 'string' ? `'${x}'` : String(x);
  };
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || seen.has(v) || sharedSet.has(v)) continue;
    seen.add(v);
    const id = origin.get(v);
    const fields = new Map<string, string>();
    if (id !== undefined) out.set(id, fields);
    if (ArrayBuffer.isView(v)) {
      fields.set('bytes', Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).join(','));
      continue;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) {
        fields.set(`[${ref(k)}]`, ref(x));
        stack.push(x);
      }
      continue;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const x of v) {
        fields.set(`{${i++}}`, ref(x));
        stack.push(x);
      }
      continue;
    }
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      fields.set(k, ref(x));
      stack.push(x);
    }
  }
  return out;
}

const start = new Execution(scenario);
const sharedSet = new Set<object>();
pairWalk(start.inst, copyState(start.inst), (a, b) => {
  if (a === b) sharedSet.add(a);
});
{
  // number the start machine's objects by the first path a depth-first walk in key order meets them at
  const seen = new Set<object>();
  const visit = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object' || seen.has(v) || sharedSet.has(v)) return;
    seen.add(v);
    origin.set(v, classOf.length);
    classOf.push(nameOf(v));
    firstPath.push(path);
    if (ArrayBuffer.isView(v)) return;
    if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) visit(x, `${path}[${typeof k === 'object' ? `#${i++}` : String(k)}]`);
      return;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const x of v) visit(x, `${path}{${i++}}`);
      return;
    }
    for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], `${path}.${k}`);
  };
  visit(start.inst, '');
}
const base = signatures(start.inst);
/** Start objects a copy of `from` inherits: `to` is its copy. */
const inherit = (from: Execution, to: Execution): void =>
  pairWalk(from.inst, to.inst, (a, b) => {
    const id = origin.get(a);
    if (id !== undefined && a !== b) origin.set(b, id);
  });
const changedFields = new Map<number, Set<string>>();
const observe = (ex: Execution): void => {
  const now = signatures(ex.inst);
  for (const [id, b] of base) {
    const n = now.get(id);
    if (n === undefined) continue; // dropped (freed) in this state
    for (const k of new Set([...b.keys(), ...n.keys()])) {
      if (n.get(k) !== b.get(k)) {
        const s = changedFields.get(id) ?? new Set<string>();
        changedFields.set(id, s);
        s.add(k);
      }
    }
  }
};

// depth-first with state caching
const visited = new Set<string>();
const first = start.fork();
inherit(start, first);
const stack: Execution[] = [first];
let states = 0;
while (stack.length > 0 && states < maxStates) {
  const ex = stack.pop()!;
  const key = stateKey(ex, false);
  if (visited.has(key)) continue;
  visited.add(key);
  states++;
  observe(ex);
  const c = ex.choosable();
  for (let i = c.length - 1; i >= 0; i--) {
    const f = i === 0 ? ex : ex.fork();
    if (f !== ex) inherit(ex, f);
    try {
      f.step(c[i]!, c);
      stack.push(f);
    } catch {
      // a step that throws ends the branch (the checker reports it; here only the states before it count)
    }
  }
}
// random schedules to the end (a simple LCG: deterministic)
let seed = 12345;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
for (let r = 0; r < randoms; r++) {
  const ex = new Execution(scenario);
  inherit(start, ex);
  for (;;) {
    const c = ex.choosable();
    if (c.length === 0) break;
    try {
      ex.step(c[rnd(c.length)]!, c);
    } catch {
      break;
    }
    if (ex.steps % 4 === 0) observe(ex);
  }
  observe(ex);
}
const perClass = new Map<string, { same: number[]; changed: number[] }>();
for (const id of base.keys()) {
  const n = classOf[id]!;
  const c = perClass.get(n) ?? { same: [], changed: [] };
  perClass.set(n, c);
  (changedFields.has(id) ? c.changed : c.same).push(id);
}
console.log(`${states} DFS states + ${randoms} random schedules; ${base.size} objects at the start`);
const rows = [...perClass].sort((a, b) => b[1].same.length - a[1].same.length);
console.log('class\tnever changed\tchanged');
for (const [n, c] of rows) console.log(`${n}\t${c.same.length}\t${c.changed.length}`);
if (process.env.PATHS) {
  for (const [n, c] of rows) {
    if (c.same.length === 0) continue;
    console.log(`\n== ${n} never changed:`);
    for (const id of c.same) console.log(`  ${firstPath[id]}  {${[...base.get(id)!.keys()].slice(0, 12).join(',')}}`);
  }
}
if (process.env.FIELDS) {
  console.log('\n== constant string fields of changed objects:');
  for (const [id, s] of changedFields) {
    const b = base.get(id)!;
    const consts = [...b].filter(([k, x]) => !s.has(k) && x.startsWith("'"));
    if (consts.length > 0)
      console.log(
        `  ${classOf[id]} ${firstPath[id]}: ${consts.map(([k, x]) => `${k}=${x}`).join(' ')}  (changed: ${[...s].join(',')})`,
      );
  }
}
