import { describe, expect, it } from 'vitest';
import { COST_PROFILES, PROFILE_NAMES, resolveCosts, VIRQ_COMPLETION_STEPS, WORLD_SWITCH_STEPS } from './profiles.js';

const sum = (profile: keyof typeof COST_PROFILES, names: readonly string[]) =>
  names.reduce((a, n) => a + (COST_PROFILES[profile].costs[n] ?? Number.NaN), 0);

describe('cost profiles', () => {
  it('the X-Gene world-switch steps add up to the ISCA 2016 hypercall figure', () => {
    expect(sum('xgene', WORLD_SWITCH_STEPS)).toBe(6500);
    expect(COST_PROFILES.xgene.anchors.hypercall!.cycles).toBe(6500);
    expect(COST_PROFILES.xgene.hz).toBe(2.4e9);
  });

  it('the X-Gene VM switch is the hypercall steps plus one thread switch (ctx_switch derived from it)', () => {
    expect(sum('xgene', [...WORLD_SWITCH_STEPS, 'ctx_switch'])).toBe(COST_PROFILES.xgene.anchors.vmSwitch!.cycles);
    expect(COST_PROFILES.xgene.anchors.vmSwitch!.cycles).toBe(10387);
  });

  it('the A15 world-switch steps add up to the ASPLOS 2014 hypercall figure', () => {
    expect(sum('a15', WORLD_SWITCH_STEPS)).toBe(5326);
    expect(COST_PROFILES.a15.hz).toBe(1.7e9);
  });

  it('virtual IRQ completion (ack + EOI) reproduces 71 (X-Gene) and 427 (A15) cycles', () => {
    expect(sum('xgene', VIRQ_COMPLETION_STEPS)).toBe(71);
    expect(sum('a15', VIRQ_COMPLETION_STEPS)).toBe(427);
  });

  it('every figure of every profile has a source', () => {
    for (const p of PROFILE_NAMES) {
      for (const name of Object.keys(COST_PROFILES[p].costs))
        expect(COST_PROFILES[p].sources[name], `${p}.${name}`).toBeTruthy();
    }
  });

  it('resolveCosts skips names the model does not define and lets scenario overrides win', () => {
    const known = new Set(['guest_exit', 'vgic_sync_hwstate', 'gicd_write']);
    const r = resolveCosts('xgene', { gicd_write: 123, vgic_sync_hwstate: 1 }, (n) => known.has(n));
    expect(r.costs).toEqual({ guest_exit: 30, vgic_sync_hwstate: 1, gicd_write: 123 });
    expect(r.skipped).toContain('kvm_exit');
    expect(r.skipped).not.toContain('guest_exit');
  });

  it('the default profile overrides nothing', () => {
    expect(resolveCosts('default', {}, () => true).costs).toEqual({});
  });
});
