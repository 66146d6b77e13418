/**
 * What the state key walks (issue 13): assign-race's machine at the start of its concurrent phase (the one every
 * schedule is copied from), counted per class — objects, field values (array elements, Map entries, typed-array
 * words) and typed-array bytes — as stateHash meets them: every object reachable from the machine but the shared and
 * immutable ones (told apart as the objects a copyState leaves the same). Then what keying and copying the whole
 * machine cost, and per class what keying its objects costs on their own (copies of them with their object fields
 * nulled: the same shapes and values, nothing followed), best of 15 batches. Last, the checker's own figures on a warm
 * machine: assign-race after 30 steps (the first choosable agent each time), the lowest of 7 × 1,000 state keys
 * (check/stateKey.ts) and of 7 × 200 forks (a copy of the machine and of the run's bookkeeping).
 *
 *   node --expose-gc --import tsx bench/stateCensus.ts [scenario.yaml]
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Execution } from '../src/check/execution.js';
import { scenarioFromYaml } from '../src/check/scenarioCheck.js';
import { stateKey } from '../src/check/stateKey.js';
import { copyState, stateHash } from '../src/sim/snapshot.js';

interface Family {
  objects: number;
  values: number;
  bytes: number;
  /** Up to 512 stand-ins of its objects for the per-class key time. */
  standIns: object[];
}

function nameOf(o: object): string {
  if (Array.isArray(o)) return 'Array';
  const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null;
  return proto?.constructor?.name ?? '(null prototype)';
}

/** The object with its object fields nulled: same prototype, keys and scalar values. */
function standIn(o: object): object {
  if (ArrayBuffer.isView(o)) return (o as unknown as { slice(): object }).slice();
  if (o instanceof Map) {
    return new Map([...o].map(([k, v], i) => [typeof k === 'object' ? i : k, typeof v === 'object' ? null : v]));
  }
  if (o instanceof Set) return new Set([...o].map((v) => (typeof v === 'object' ? null : v)));
  const src = o as Record<string, unknown>;
  const c = (Array.isArray(o) ? new Array(src.length) : Object.create(Object.getPrototypeOf(o))) as Record<
    string,
    unknown
  >;
  for (const k of Object.keys(src)) {
    const v = src[k];
    c[k] = typeof v === 'object' || typeof v === 'function' ? null : v;
  }
  return c;
}

/** Walks `root` and its copy side by side: what the copy shares is not state the key walks object by object. */
function census(root: object): Map<string, Family> {
  const copy = copyState(root);
  const out = new Map<string, Family>();
  const seen = new Set<object>();
  const walk = (v: unknown, c: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v === c) return; // shared or immutable
    const name = nameOf(v);
    let f = out.get(name);
    if (f === undefined) {
      f = { objects: 0, values: 0, bytes: 0, standIns: [] };
      out.set(name, f);
    }
    f.objects++;
    if (f.standIns.length < 512) f.standIns.push(standIn(v));
    if (ArrayBuffer.isView(v)) {
      f.bytes += v.byteLength;
      f.values += Math.ceil(v.byteLength / 4);
      return;
    }
    if (v instanceof Map) {
      const cm = c as Map<unknown, unknown>;
      f.values += 2 * v.size;
      for (const [k, x] of v) walk(x, cm.get(k));
      return;
    }
    if (v instanceof Set) {
      f.values += v.size;
      const cs = [...(c as Set<unknown>)];
      let i = 0;
      for (const x of v) walk(x, cs[i++]);
      return;
    }
    const o = v as Record<string, unknown>;
    const co = c as Record<string, unknown>;
    const keys = Object.keys(o);
    f.values += keys.length;
    for (const k of keys) walk(o[k], co[k]);
  };
  walk(root, copy);
  return out;
}

function bestUs(f: () => void, inner = 20, batches = 5): number {
  for (let i = 0; i < inner; i++) f();
  let best = Number.POSITIVE_INFINITY;
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) f();
    best = Math.min(best, ((performance.now() - t0) * 1000) / inner);
  }
  return best;
}

const file = process.argv[2] ?? 'scenarios/check-assign-race.yaml';
const scenario = scenarioFromYaml(readFileSync(file, 'utf8'), file, { variant: 'protocol' });
const machine = scenario.build();
const families = [...census(machine)].sort((a, b) => b[1].values - a[1].values);
const total = families.reduce(
  (t, [, f]) => ({ objects: t.objects + f.objects, values: t.values + f.values, bytes: t.bytes + f.bytes }),
  { objects: 0, values: 0, bytes: 0 },
);
const keyUs = bestUs(() => stateHash(machine), 20, 15);
const copyUs = bestUs(() => copyState(machine), 20, 15);
console.log(`${file}: state at the start of the concurrent phase; load average ${os.loadavg()[0]!.toFixed(2)}`);
console.log(
  `whole machine: ${total.objects} objects, ${total.values} values, ${total.bytes} typed-array bytes; key ${keyUs.toFixed(0)} µs, copy ${copyUs.toFixed(0)} µs`,
);
console.log('| class | objects | values | bytes | key µs (alone) |');
console.log('|---|---:|---:|---:|---:|');
const empty = bestUs(() => stateHash([]), 200);
for (const [name, f] of families) {
  if (f.values < 40 && f.objects < 10) continue;
  const scale = f.objects / f.standIns.length;
  const us = (bestUs(() => stateHash(f.standIns), 20, 15) - empty) * scale;
  console.log(`| ${name} | ${f.objects} | ${f.values} | ${f.bytes} | ${us.toFixed(1)} |`);
}
const rest = families.filter(([, f]) => f.values < 40 && f.objects < 10);
console.log(
  `| ${rest.length} other classes | ${rest.reduce((n, [, f]) => n + f.objects, 0)} | ${rest.reduce((n, [, f]) => n + f.values, 0)} | ${rest.reduce((n, [, f]) => n + f.bytes, 0)} | |`,
);

const ex = new Execution(scenario);
for (let i = 0; i < 30; i++) {
  const c = ex.choosable();
  if (c.length === 0) break;
  ex.step(c[0]!, c);
}
const warmKey = bestUs(() => stateKey(ex, false), 1000, 7);
const warmFork = bestUs(() => ex.fork(), 200, 7);
console.log(
  `warm machine (${ex.steps} steps): key ${warmKey.toFixed(0)} µs, fork ${warmFork.toFixed(0)} µs; load average ${os.loadavg()[0]!.toFixed(2)}`,
);
