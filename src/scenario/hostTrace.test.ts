import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, loadScenario } from './loader.js';
import { runScenario } from './runner.js';
import type { Mode } from './schema.js';

function traceOf(mode: Mode): string {
  const s = { ...loadScenario(DEFAULT_SCENARIO, 'default'), duration: 2_000_000 };
  return String(runScenario(s, { modes: [mode], trace: 'text' }).runs[0]!.trace!.data);
}

/** The gic_lr_write line of raise `seq`. */
function lrOf(mode: Mode, seq: number): string {
  return traceOf(mode).match(new RegExp(`gic_lr_write: [^\\n]*seq=${seq}$`, 'm'))?.[0] ?? '';
}

/** The event names carrying `seq=<seq>` in a text trace, in trace order. */
function chainOf(mode: Mode, seq: number): string[] {
  const text = traceOf(mode);
  const re = new RegExp(`: ([a-z_]+): [^\\n]*seq=${seq}$`, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]!);
}

describe('an IRQ causal chain in the trace (every step carries the raise seq)', () => {
  it('normal: assert → IAR → VFIO automask → eventfd → irqfd → LR (EOI bit) → guest → EOI → maintenance → resample → unmask', () => {
    const c = chainOf('normal', 3);
    const want = [
      'device_assert',
      'gic_iar',
      'gic_eoir',
      'vfio_platform_irq',
      'eventfd_signal',
      'irqfd_inject',
      'gic_lr_write',
      'guest_irq_entry',
      'guest_eoi',
      'vgic_maintenance',
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
    expect(lrOf('normal', 3)).toMatch(/vintid=80 pintid=0 hw=0 eoi=1 state=pending/);
  });

  it('forwarded: assert → IAR → VFIO (forwarded) → direct inject, no eventfd → LR (HW bit) → guest → EOI → HW deactivation', () => {
    const c = chainOf('forwarded', 3);
    // VFIO's handler calls its kvm-vfio consumer (KvmVfioFwdIrq.inject), traced as irqfd_inject: no eventfd_signal
    expect(c.filter((n) => n !== 'kvm_entry' && n !== 'kvm_exit')).toEqual([
      'device_assert',
      'gic_iar',
      'gic_eoir',
      'vfio_platform_irq',
      'irqfd_inject',
      'gic_lr_write',
      'guest_irq_entry',
      'device_deassert',
      'guest_eoi',
      'vgic_hw_deactivate',
    ]);
    expect(lrOf('forwarded', 3)).toMatch(/vintid=80 pintid=80 hw=1 eoi=0 state=pending/);
  });
});

describe('kvm_entry / kvm_exit as arm64 traces them (arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run)', () => {
  const lines = traceOf('forwarded').split('\n');
  const kvm = lines.filter((l) => / kvm_(entry|exit): /.test(l));
  const pc = (l: string) => BigInt(l.slice(l.lastIndexOf('0x')));

  it('an IRQ exit is traced after the host handler ran (trace_kvm_exit follows local_irq_enable)', () => {
    const i = lines.findIndex((l) => l.includes('kvm_exit: IRQ'));
    expect(i).toBeGreaterThan(0);
    const before = lines.slice(0, i).reverse();
    const handlerExit = before.findIndex((l) => l.includes('irq_handler_exit'));
    const entry = before.findIndex((l) => l.includes('kvm_entry'));
    expect(handlerExit).toBeGreaterThanOrEqual(0);
    expect(handlerExit).toBeLessThan(entry);
  });

  it('PCs: the first entry at the kernel load address; after an emulated data abort the next instruction (kvm_incr_pc); an IRQ exit resumes where it was taken', () => {
    expect(pc(kvm[0]!)).toBe(0x4020_0000n);
    for (let i = 1; i + 1 < kvm.length; i++) {
      const exit = kvm[i]!;
      if (!exit.includes('kvm_exit')) continue;
      const next = kvm[i + 1]!;
      expect(next).toContain('kvm_entry');
      expect(pc(exit) >> 32n).toBe(0xffff_8000n);
      expect(pc(next) - pc(exit)).toBe(exit.includes('DABT_LOW') ? 4n : 0n);
    }
  });
});
