/**
 * Scenario files: YAML (or JSON, which is YAML) parsed with node positions kept, validated with the zod schema, and
 * every problem reported as `file:line:col: path: what was expected` — the line and column of the offending value in
 * the file, the path in the document (`vms[0].guest.eoiMode`) and the schema's message.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { isProfileName, type ProfileName } from '../sim/profiles.js';
import { issueMessage } from './issueMessages.js';
import { type ComparePathSpec, type Mode, Scenario } from './schema.js';

export interface ScenarioProblem {
  /** Path in the document, e.g. `vms[0].guest.eoiMode` (empty for the document itself). */
  path: string;
  /** 1-based line and column of the offending node (or of its nearest existing parent); 0 when unknown. */
  line: number;
  col: number;
  message: string;
}

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  constructor(
    readonly file: string,
    readonly problems: readonly ScenarioProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
  }
}

function formatProblem(file: string, p: ScenarioProblem): string {
  const where = p.line > 0 ? `${file}:${p.line}:${p.col}` : file;
  return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** `['vms', 0, 'guest', 'eoiMode']` → `vms[0].guest.eoiMode`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else s += s ? `.${String(k)}` : String(k);
  }
  return s;
}

export interface LoadOptions {
  /** Overrides `seed` (the CLI's --seed). */
  seed?: number;
  /** Overrides `host.costProfile` before durations are converted (the CLI's --profile). */
  profile?: ProfileName;
  /** When given, `host.costs` names outside this list are errors (with a suggestion). */
  knownCosts?: readonly string[];
}

/**
 * The embedded default scenario: a level-triggered platform device IRQ (INTID 80, IOMMU group 7) passed through to a
 * one-vCPU VM, ~1000 periodic IRQs, run on both paths and compared. Identical to scenarios/default.yaml (a test
 * checks it).
 */
export const DEFAULT_SCENARIO = `# The default scenario: level passthrough of one platform device IRQ, normal vs forwarded.
name: default
description: >-
  A level-triggered platform device IRQ (INTID 80, IOMMU group 7) passed through to a one-vCPU VM pinned on CPU 1;
  the device raises it every 10 us (~1000 IRQs) while the guest computes, so the vCPU is running when it arrives.
  The guest driver silences the device in its handler. Run on the normal (irqfd + resample) path and the forwarded path.
seed: 1
duration: 11ms
mode: both
host:
  cpus: 2
  costProfile: xgene
  gic: { nrIrqs: 256, nrLrs: 4 }
devices:
  - name: fff51000.ethernet
    iommuGroup: 7
    irqs:
      - { intid: 80, trigger: level, hold: until-ack, clear: driver-ack }
vms:
  - name: vm0
    vcpus: 1
    pinning: [1]
    guest: { eoiMode: 0, handlerCycles: 1000, workload: busy }
vmm:
  - { step: open-device, device: fff51000.ethernet }
  - { step: irqfd, device: fff51000.ethernet, index: 0, resample: true }
  - { step: assign, device: fff51000.ethernet, index: 0 }
workloads:
  - { device: fff51000.ethernet, index: 0, kind: periodic, period: 10us, start: 5us, count: 1000 }
`;

export const DEFAULT_SCENARIO_FILE = '<default scenario>';

/** Parses and validates a scenario document. Throws ScenarioError naming the file, line, path and expectation. */
export function loadScenario(text: string, fileName: string, opts: LoadOptions = {}): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (extname(fileName).toLowerCase() === '.json') checkJsonSyntax(text, fileName, pos);
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      fileName,
      doc.errors.map((e) => ({ path: '', ...pos(e.pos[0]), message: `YAML: ${firstLine(e.message)}` })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ScenarioError(fileName, [{ path: '', line: 0, col: 0, message: `YAML: ${(e as Error).message}` }]);
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ScenarioError(fileName, [
      { path: '', line: 1, col: 1, message: 'expected a mapping (name:, devices:, vms:, ...) at the top level' },
    ]);
  }
  const raw = data as Record<string, unknown>;
  if (raw.name === undefined) raw.name = defaultName(fileName);
  applyOverrides(raw, opts);

  const locate = (path: readonly PropertyKey[], keyOf?: string): { line: number; col: number } => {
    // The deepest node of the path that exists in the file (a missing key points at its parent mapping).
    const keys = path.filter((k): k is string | number => typeof k === 'string' || typeof k === 'number');
    for (let n = keys.length; n >= 0; n--) {
      const node = doc.getIn(keys.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        if (n === keys.length && keyOf !== undefined && isMap(node)) {
          const pair = node.items.find((it) => isScalar(it.key) && it.key.value === keyOf);
          const k = pair?.key as Node | undefined;
          if (k?.range) return pos(k.range[0]);
        }
        return pos(node.range[0]);
      }
      // a missing key of an existing map: point at the map (its first key), not at the document
    }
    return doc.contents?.range ? pos(doc.contents.range[0]) : { line: 1, col: 1 };
  };

  const valueAt = (path: readonly PropertyKey[]): string | undefined => {
    const keys = path.filter((k): k is string | number => typeof k === 'string' || typeof k === 'number');
    const node = doc.getIn(keys, true);
    if (isScalar(node)) return JSON.stringify(node.value);
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    return undefined;
  };

  const problems: ScenarioProblem[] = [];
  // host.costs names (the schema cannot know which costs the model defines)
  const costs = (raw.host as Record<string, unknown> | undefined)?.costs;
  if (opts.knownCosts && costs && typeof costs === 'object' && !Array.isArray(costs)) {
    const known = new Set(opts.knownCosts);
    for (const name of Object.keys(costs)) {
      if (known.has(name)) continue;
      const hint = closest(name, opts.knownCosts);
      problems.push({
        path: formatPath(['host', 'costs', name]),
        ...locate(['host', 'costs'], name),
        message: `unknown cost '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; see \`irqfwd help costs\``,
      });
    }
  }

  const result = Scenario.safeParse(raw, { error: issueMessage });
  if (!result.success) {
    for (const iss of result.error.issues) problems.push(toProblem(iss, locate, valueAt));
  }
  if (problems.length > 0) throw new ScenarioError(fileName, sortProblems(problems));
  const scenario = result.data!;

  // Every sweep point must validate too; report a failing value at sweep.values[i].
  if (scenario.sweep) {
    scenario.sweep.values.forEach((v, i) => {
      try {
        sweepPoint(scenario, scenario.sweep!.param, v);
      } catch (e) {
        const msg = e instanceof SweepError ? e.message : String(e);
        problems.push({ path: formatPath(['sweep', 'values', i]), ...locate(['sweep', 'values', i]), message: msg });
      }
    });
    if (problems.length > 0) throw new ScenarioError(fileName, problems);
  }
  // Every compare path must validate too; report a failing path at paths[i].set.
  scenario.paths?.forEach((cp, i) => {
    try {
      comparePoint(scenario, cp);
    } catch (e) {
      const msg = e instanceof SweepError ? e.message : String(e);
      problems.push({ path: formatPath(['paths', i, 'set']), ...locate(['paths', i, 'set']), message: msg });
    }
  });
  if (problems.length > 0) throw new ScenarioError(fileName, problems);
  return scenario;
}

/** Reads and loads a scenario file. */
export function loadScenarioFile(path: string, opts: LoadOptions = {}): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ScenarioError(path, [{ path: '', line: 0, col: 0, message: `cannot read: ${why}` }]);
  }
  return loadScenario(text, path, opts);
}

/**
 * A .json file is parsed by the YAML parser too (JSON is YAML, and it keeps positions), but a syntax error is
 * reported the JSON way: the YAML parser's words ("flow map") would only puzzle its author.
 */
function checkJsonSyntax(text: string, fileName: string, pos: (offset: number) => { line: number; col: number }): void {
  try {
    JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /at position (\d+)/.exec(msg);
    const where = at ? pos(Number(at[1])) : pos(text.length);
    const what = msg.replace(/ in JSON at position \d+.*$/, '').replace(/ after JSON at position \d+.*$/, '');
    throw new ScenarioError(fileName, [{ path: '', ...where, message: `JSON: ${what}` }]);
  }
}

function defaultName(fileName: string): string {
  const b = basename(fileName, extname(fileName)).replace(/[^A-Za-z0-9_.:-]/g, '-');
  return b && /^[A-Za-z0-9_]/.test(b) ? b : 'scenario';
}

function applyOverrides(raw: Record<string, unknown>, opts: LoadOptions): void {
  if (opts.seed !== undefined) raw.seed = opts.seed;
  if (opts.profile !== undefined) {
    if (!isProfileName(opts.profile)) throw new RangeError(`unknown profile '${String(opts.profile)}'`);
    const host = raw.host && typeof raw.host === 'object' && !Array.isArray(raw.host) ? raw.host : {};
    (host as Record<string, unknown>).costProfile = opts.profile;
    raw.host = host;
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function toProblem(
  iss: z.core.$ZodIssue,
  locate: (path: readonly PropertyKey[], keyOf?: string) => { line: number; col: number },
  valueAt: (path: readonly PropertyKey[]) => string | undefined,
): ScenarioProblem {
  const path = iss.path;
  if (iss.code === 'unrecognized_keys') {
    const key = iss.keys[0] ?? '';
    const more = iss.keys.length > 1 ? ` (and ${iss.keys.slice(1).join(', ')})` : '';
    return {
      path: formatPath([...path, key]),
      ...locate(path, key),
      message: `unknown field '${key}'${more}`,
    };
  }
  let message = iss.message.replace(/^Invalid input: /, '');
  const got = valueAt(path);
  const last = path[path.length - 1];
  if (got === undefined && iss.code !== 'custom' && typeof last === 'string') {
    message = `missing required field '${last}': ${message.replace(/, received undefined$/, '')}`;
  } else if (got !== undefined && iss.code !== 'custom') {
    message = message.replace(/, received \w+$/, '');
    const scalar = got !== 'a mapping' && got !== 'a list';
    if (scalar || iss.code === 'invalid_type' || iss.code === 'invalid_union') message = `${message}, got ${got}`;
  }
  return { path: formatPath(path), ...locate(path), message };
}

function sortProblems(ps: ScenarioProblem[]): ScenarioProblem[] {
  return ps
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map((x) => x.p);
}

/** The known name nearest to `name` by edit distance, if it is close enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Sweeps

export class SweepError extends Error {
  override readonly name = 'SweepError';
}

export interface SweepPoint {
  /** The value as written in `sweep.values`. */
  value: number | string;
  /** The scenario with the value substituted (no `sweep`), validated. */
  scenario: Scenario;
}

const PATH_RE = /[^.[\]]+|\[(\d+)\]/g;

function parseParamPath(param: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of param.matchAll(PATH_RE)) out.push(m[1] !== undefined ? Number(m[1]) : m[0]);
  return out;
}

/** One sweep point: the resolved scenario with `param` set to `value`, re-validated (durations at its clock). */
export function sweepPoint(s: Scenario, param: string, value: number | string): Scenario {
  return withParams(s, [[param, value]], 'sweep.param', ['sweep']);
}

/**
 * The resolved scenario with each `param` set to its value (paths as in sweep.param), the fields named in `drop`
 * removed, re-validated (durations at its clock). `what` names the source of the params in error messages. A param
 * naming a field the scenario leaves out (an optional one, `host.gic.nrVpes`) adds it, if the schema knows it.
 */
function withParams(
  s: Scenario,
  params: readonly (readonly [string, unknown])[],
  what: string,
  drop: readonly string[],
  extra: Record<string, unknown> = {},
): Scenario {
  const copy = structuredClone(s) as unknown as Record<string, unknown>;
  for (const k of drop) delete copy[k];
  Object.assign(copy, extra);
  const added = params.filter(([param, value]) => setParam(copy, param, value, what)).map(([param]) => param);
  const r = Scenario.safeParse(copy, { error: issueMessage });
  if (!r.success) {
    const iss = r.error.issues[0]!;
    const at = (k: string) => formatPath([...iss.path, k]);
    const unknown = iss.code === 'unrecognized_keys' ? added.find((p) => iss.keys.some((k) => at(k) === p)) : undefined;
    if (unknown !== undefined) throw new SweepError(`${what} '${unknown}' does not exist in the scenario`);
    const set = params.map(([p, v]) => `${p} = ${JSON.stringify(v)}`).join(', ');
    throw new SweepError(`with ${set}: ${formatPath(iss.path)}: ${iss.message}`);
  }
  return r.data;
}

/** Sets `param` to `value`; returns whether that added a field the scenario did not have. */
function setParam(doc: Record<string, unknown>, param: string, value: unknown, what: string): boolean {
  const path = parseParamPath(param);
  if (path.length === 0) throw new SweepError(`${what} '${param}' is not a path`);
  let obj: unknown = doc;
  for (let i = 0; i < path.length - 1; i++) {
    obj = (obj as Record<string | number, unknown> | undefined)?.[path[i]!];
    if (obj === null || typeof obj !== 'object')
      throw new SweepError(`${what} '${param}': ${formatPath(path.slice(0, i + 1))} does not exist in the scenario`);
  }
  const last = path[path.length - 1]!;
  const target = obj as Record<string | number, unknown>;
  const added = !(last in target);
  if (added && (Array.isArray(target) || typeof last === 'number'))
    throw new SweepError(`${what} '${param}' does not exist in the scenario`);
  target[last] = structuredClone(value);
  return added;
}

/** The sweep points of a scenario (one per value), or a single point of the scenario itself when it has no sweep. */
export function expandSweep(s: Scenario): SweepPoint[] {
  if (!s.sweep) return [{ value: '', scenario: s }];
  const param = s.sweep.param;
  return s.sweep.values.map((value) => ({ value, scenario: sweepPoint(s, param, value) }));
}

// ---------------------------------------------------------------------------------------------------------------
// Compare paths

export interface ComparePoint {
  name: string;
  mode: Mode;
  /** The scenario with the path's parameters set and its mode as the only one (no `paths`), validated. */
  scenario: Scenario;
}

/** The scenario as each of its compare paths runs it. */
export function comparePoint(s: Scenario, cp: ComparePathSpec): ComparePoint {
  // Its expectations: those for every path, and those for this one (a standalone scenario names no paths).
  const expect = s.expect.filter((e) => e.path === undefined || e.path === cp.name).map(({ path: _, ...e }) => e);
  const scenario = withParams(s, Object.entries(cp.set), `paths.${cp.name}.set`, ['paths'], { mode: cp.mode, expect });
  return { name: cp.name, mode: cp.mode, scenario };
}

/** The compare paths of a scenario, or none when it has no `paths`. */
export function expandPaths(s: Scenario): ComparePoint[] {
  return (s.paths ?? []).map((cp) => comparePoint(s, cp));
}
