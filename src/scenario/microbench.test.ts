/**
 * The microbenchmark scenarios reproduce the cost profiles' published figures (ISCA 2016 Table II for xgene, ASPLOS
 * 2014 Table 3 for a15) within ±10 % — hypercall, virq-completion, io-latency-out — and the CLI exits 0 on them.
 * io-latency-in is informational: the model's sourced steps give about half the paper's figure (its scenario says
 * which steps are missing).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliIo, EXIT_OK, main } from '../cli/commands.js';
import { costDefs } from '../sim/costs.js';
import { COST_PROFILES, type ProfileName } from '../sim/profiles.js';
import { loadScenarioFile } from './loader.js';
import type { Metrics, ProbeName } from './metrics.js';
import { runScenario } from './runner.js';

const DIR = join(import.meta.dirname, '../../scenarios');

function run(name: string, profile: ProfileName) {
  const s = loadScenarioFile(join(DIR, `${name}.yaml`), { profile });
  const modes = s.mode === 'both' ? (['normal', 'forwarded'] as const) : ([s.mode] as const);
  return runScenario(s, { modes });
}

function probeMean(m: Metrics, p: ProbeName): number {
  const x = m.probes[p];
  if (x?.cycles == null) throw new Error(`probe ${p} recorded no sample in the ${m.mode} run`);
  return x.cycles.mean;
}

function within10(actual: number, anchor: number): void {
  expect(Math.abs(actual - anchor)).toBeLessThanOrEqual(0.1 * anchor);
}

describe('microbenchmark scenarios vs the papers', () => {
  it.each(['xgene', 'a15'] as const)(
    'hypercall (%s): HVC round trip = the anchor, one hvc exit per iteration',
    (pr) => {
      const r = run('hypercall', pr);
      const run0 = r.runs[0]!;
      expect(run0.violations).toEqual([]);
      const m = run0.metrics;
      within10(probeMean(m, 'hypercall'), COST_PROFILES[pr].anchors.hypercall!.cycles);
      expect(m.probes.hypercall!.count).toBeGreaterThan(100);
      expect(m.exits.byReason.hvc).toBeGreaterThanOrEqual(m.probes.hypercall!.count);
    },
  );

  it.each(['xgene', 'a15'] as const)('virq-completion (%s): IAR + EOIR = the anchor on both paths', (pr) => {
    const r = run('virq-completion', pr);
    expect(r.runs.map((x) => x.mode)).toEqual(['normal', 'forwarded']);
    for (const x of r.runs) {
      expect(x.violations).toEqual([]);
      expect(x.metrics.irqs.lost).toBe(0);
      within10(probeMean(x.metrics, 'virqCompletion'), COST_PROFILES[pr].anchors.virqCompletion!.cycles);
      expect(x.metrics.probes.virqCompletion!.count).toBe(x.metrics.irqs.delivered);
    }
  });

  it('io-latency-out (xgene): guest doorbell store → VMM sees KVM_EXIT_MMIO = 6,024 ±10 %', () => {
    const r = run('io-latency-out', 'xgene');
    const m = r.runs[0]!.metrics;
    expect(r.runs[0]!.violations).toEqual([]);
    within10(probeMean(m, 'ioLatencyOut'), COST_PROFILES.xgene.anchors.ioLatencyOut!.cycles);
    expect(m.exits.byReason.dabt).toBe(m.exits.total);
  });

  it('io-latency-in (xgene): eventfd write → blocked vCPU vector has the sourced steps; anchor informational', () => {
    const r = run('io-latency-in', 'xgene');
    const x = r.runs[0]!;
    expect(x.violations).toEqual([]);
    const m = x.metrics;
    expect(m.irqs).toMatchObject({ raised: 50, delivered: 50, lost: 0, duplicates: 0 });
    expect(m.probes.ioLatencyIn!.count).toBe(50);
    expect(m.exits.byReason.wfx).toBeGreaterThanOrEqual(50); // the vCPU blocks in WFI before each signal
    // the wakeup's thread switch and the entry are on the path, so the probe is at least their sum; the paper's
    // 13,872 is not reached (the scenario description lists the unmodelled steps): not an expectation
    const c = COST_PROFILES.xgene.costs;
    const sourced = c.ctx_switch! + c.kvm_run_check! + c.vgic_flush_hwstate! + c.kvm_entry!;
    const mean = probeMean(m, 'ioLatencyIn');
    expect(mean).toBeGreaterThan(sourced);
    expect(mean).toBeLessThan(COST_PROFILES.xgene.anchors.ioLatencyIn!.cycles);
  });

  it('a probe expectation without samples is a violation, not a vacuous pass', () => {
    const s = loadScenarioFile(join(DIR, 'hypercall.yaml'));
    const bad = { ...s, expect: [{ metric: 'probes.ioLatencyOut.cycles.mean', value: 1, tolerance: 0 }] };
    const r = runScenario(bad, { modes: ['normal'] });
    expect(r.runs[0]!.violations.map((v) => v.invariant)).toEqual(['expect-no-samples']);
  });
});

describe('irqfwd run on the microbenchmark scenarios', () => {
  function io(): CliIo & { out: string; err: string } {
    const o = {
      out: '',
      err: '',
      stdout: (s: string) => {
        o.out += s;
      },
      stderr: (s: string) => {
        o.err += s;
      },
      stderrIsTTY: false,
      columns: 80,
      now: () => 0,
      readFile: (p: string) => readFileSync(p, 'utf8'),
      writeFile: () => {},
      exists: (p: string) => existsSync(p),
      tmpdir: () => '/tmp/test',
    };
    return o;
  }
  const cases = [
    ['hypercall', 'xgene'],
    ['hypercall', 'a15'],
    ['virq-completion', 'xgene'],
    ['virq-completion', 'a15'],
    ['io-latency-in', 'xgene'],
    ['io-latency-out', 'xgene'],
  ] as const;
  it.each(cases)('%s --profile %s exits 0 with every expectation met', async (name, pr) => {
    const c = io();
    const code = await main(
      ['run', join(DIR, `${name}.yaml`), '--profile', pr, '--no-trace', '--json'],
      { run: runScenario, costNames: () => costDefs().map((d) => d.name) },
      c,
    );
    expect(c.err).toBe('');
    expect(code).toBe(EXIT_OK);
    const j = JSON.parse(c.out) as { ok: boolean; runs: { expectations: { ok: boolean; skipped?: string }[] }[] };
    expect(j.ok).toBe(true);
    for (const r of j.runs) for (const e of r.expectations) expect(e).toMatchObject({ ok: true });
    if (name !== 'io-latency-in') expect(j.runs[0]!.expectations.some((e) => e.skipped === undefined)).toBe(true);
  });
});
