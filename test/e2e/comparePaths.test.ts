// scenarios/compare-paths.yaml as `irqfwd compare` runs it: each path is the scenario with its parameters set, in its
// own mode — so the GICv2 columns are the default scenario's two runs and the GICv3 column is gicv3-default's
// forwarded run, figure for figure.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandPaths, loadScenarioFile } from '../../src/scenario/loader.js';
import { runScenario } from '../../src/scenario/runner.js';

const DIR = join(import.meta.dirname, '../../scenarios');

describe('scenarios/compare-paths.yaml: irqfd, HW-bit on GICv2, HW-bit on GICv3', () => {
  const paths = expandPaths(loadScenarioFile(join(DIR, 'compare-paths.yaml')));
  const runs = paths.map((p) => runScenario(p.scenario, { modes: [p.mode] }).runs[0]!);
  const v2 = runScenario(loadScenarioFile(join(DIR, 'default.yaml')), { modes: ['normal', 'forwarded'] }).runs;
  const v3 = runScenario(loadScenarioFile(join(DIR, 'gicv3-default.yaml')), { modes: ['forwarded'] }).runs[0]!;

  it('delivers every IRQ on every path with no invariant violated; forwarding saves the maintenance exit on both GICs', () => {
    expect(paths.map((p) => p.name)).toEqual(['irqfd-v2', 'hwbit-v2', 'hwbit-v3']);
    for (const r of runs) {
      expect(r.violations).toEqual([]);
      expect(r.metrics.irqs).toMatchObject({ raised: 1000, delivered: 1000, lost: 0, leftActive: 0, leftMasked: 0 });
    }
    expect(runs.map((r) => r.metrics.exits.perIrq.total)).toEqual([2, 1, 1]);
  });

  it('each column is the machine it names: the default scenario on GICv2, gicv3-default on GICv3', () => {
    expect(runs[0]!.metrics).toEqual(v2[0]!.metrics);
    expect(runs[1]!.metrics).toEqual(v2[1]!.metrics);
    expect(runs[2]!.metrics).toEqual(v3.metrics);
  });
});
