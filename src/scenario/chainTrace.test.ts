import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, loadScenario } from './loader.js';
import { runScenario } from './runner.js';
import type { Mode } from './schema.js';

/** The event names carrying `seq=<seq>` in a text trace, in trace order. */
function chainOf(mode: Mode, seq: number): string[] {
  const s = { ...loadScenario(DEFAULT_SCENARIO, 'default'), duration: 2_000_000 };
  const text = String(runScenario(s, { modes: [mode], trace: 'text' }).runs[0]!.trace!.data);
  const re = new RegExp(`: ([a-z_]+): [^\\n]*seq=${seq}$`, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]!);
}

describe('an IRQ causal chain in the trace (every step carries the raise seq)', () => {
  it('normal: assert → host IAR → VFIO automask → eventfd → irqfd → guest → EOI → resample → unmask → DIR', () => {
    const c = chainOf('normal', 3);
    const want = [
      'device_assert',
      'gic_iar',
      'gic_eoir',
      'vfio_platform_irq',
      'eventfd_signal',
      'irqfd_inject',
      'guest_irq_entry',
      'guest_eoi',
      'irqfd_resample',
      'eventfd_signal',
      'vfio_unmask',
    ];
    // the order of first occurrences is the causal order; the host DIR comes right after the priority drop
    // (EOImode=1: the line stays masked by VFIO, not active, while the guest runs)
    const firsts = want.map((n, i) => c.indexOf(n, i === 0 ? 0 : c.indexOf(want[i - 1]!)));
    expect(firsts.every((x) => x >= 0)).toBe(true);
    expect([...firsts].sort((a, b) => a - b)).toEqual(firsts);
    expect(c).toContain('gic_dir');
    expect(c).not.toContain('vgic_hw_deactivate');
  });

  it('forwarded: assert → host IAR → VFIO (forwarded) → eventfd → irqfd → guest → EOI → HW deactivation, no DIR', () => {
    const c = chainOf('forwarded', 3);
    expect(c.filter((n) => n !== 'kvm_entry' && n !== 'kvm_exit')).toEqual([
      'device_assert',
      'gic_iar',
      'gic_eoir',
      'vfio_platform_irq',
      'eventfd_signal',
      'irqfd_inject',
      'guest_irq_entry',
      'device_deassert',
      'guest_eoi',
      'vgic_hw_deactivate',
    ]);
  });
});
