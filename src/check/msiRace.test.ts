import { describe, expect, it } from 'vitest';
import { GICR_PROPBASER } from '../hw/gicv3/regs.js';
import { explore, replay } from './explore.js';
import { checkAfterTeardown, checkAtEnd } from './invariants.js';
import { checkScenario } from './model.js';
import { msiRaceScenario } from './msiRace.js';
import { formatReplayFile, parseReplayFile, replayFile, replayFileOf } from './replay.js';

/**
 * GICv4.1 direct injection against a VMM that rewires the MSI: VFIO_DEVICE_SET_IRQS re-arms vector 0 with the same
 * eventfd (vfio_msi_set_vector_signal: irq_bypass_unregister_producer → kvm_arch_irq_bypass_del_producer →
 * kvm_vgic_v4_unset_forwarding → its_unmap_vlpi; free_irq; request_irq; irq_bypass_register_producer →
 * add_producer → kvm_vgic_v4_set_forwarding → its_map_vlpi) while the function writes the message and the vCPU
 * halts in WFI (doorbell) or runs.
 */
describe('msi-race: a forwarded vfio-pci MSI re-armed while it fires', () => {
  it('the set-up ends forwarded: vLPI 8192 of the vCPU’s vPE, the vCPU in WFI; the default order delivers the MSI', () => {
    const sc = msiRaceScenario();
    const inst = sc.build();
    const irq = inst.host.kvm.vms[0]!.vgic!.lpis.get(8192)!;
    expect(irq.hw).toBe(true);
    expect(inst.host.kvm.vms[0]!.vcpus[0]!.inWfi).toBe(true);
    const r = replay(sc, []);
    expect(r.end).toBe('quiescent');
    expect(r.violations).toEqual([]);
  });

  it('no-gic-unpredictable: the set-up programs no redistributor out of spec; a PROPBASER write with LPIs on is one', () => {
    const inst = msiRaceScenario().build();
    expect(checkAtEnd(inst)).toEqual([]); // every CPU's its_cpu_init_lpis, the vPE table, vgic_v4_load
    const irq = inst.host.irq;
    if (irq.version !== 'v3') throw new Error('msi-race runs on a GICv3 host');
    const g = irq.gic;
    g.redistributor(0).write(GICR_PROPBASER, g.distributor.lpis!.propbaserLo); // EnableLPIs is set on PE 0
    expect(checkAtEnd(inst).map((v) => [v.invariant, v.message])).toEqual([
      ['no-gic-unpredictable', 'GIC: 1 UNPREDICTABLE redistributor register write(s)'],
    ]);
  });

  it('the end-of-run invariants see a lost MSI and a stale vLPI (not vacuous)', () => {
    const inst = msiRaceScenario().build();
    const m = inst.msis![0]!;
    m.fn.hw.fire(0); // written, straight into the vPE's table: pending, the driver has not run
    const names = checkAtEnd(inst).map((v) => v.invariant);
    expect(names).toContain('no-lost-irq'); // the driver never ran after the write
    expect(names).toContain('no-irq-left-pending'); // vLPI pending in the vPE table at quiescence
    m.fn.vdev.ctx[0]!.producer = null; // no irqbypass pair, yet the LPI is a vLPI
    expect(checkAtEnd(inst).map((v) => v.invariant)).toContain('no-irq-left-forwarded');
    inst.host.kernel.irqBypass.consumers.length = 0;
    expect(checkAfterTeardown(inst).map((v) => v.message)).toEqual(
      expect.arrayContaining([expect.stringContaining('irqbypass producer(s) still registered')]),
    );
  });

  it("'protocol': every schedule within preemption bound 1 satisfies every invariant (86 schedules)", () => {
    const r = explore(msiRaceScenario(), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.stats.schedules).toBe(86);
    expect(r.stats.budgetHit).toBe(0);
  });

  it("'vlpi-no-pending-transfer' (set_forwarding leaves pending_latch in the vGIC): a HW=1 LR names INTID 0, 21 choices", () => {
    const sc = checkScenario('msi-race', { variant: 'vlpi-no-pending-transfer' });
    const r = explore(sc, { bound: 1 });
    const cx = r.counterexample!;
    expect(r.stats.schedules).toBe(31);
    const names = cx.violations.map((v) => v.invariant);
    expect(names).toEqual(['no-gic-unpredictable', 'hw-lr-names-active-intid']);
    expect(cx.violations[1]!.message).toContain('vINTID 8192 → inactive INTID 0');
    expect(cx.schedule.length).toBe(21);
    expect(replay(sc, cx.schedule).violations).toEqual(cx.violations);
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, names[0]!, cx.schedule)));
    expect(f).toMatchObject({
      scenario: 'msi-race',
      variant: 'vlpi-no-pending-transfer',
      options: { msiOps: ['trigger'] },
    });
    expect(replayFile(f).violations).toEqual(cx.violations);
  });

  /** KVM_IRQFD DEASSIGN and re-ASSIGN of the irqfd (the stale vITS translation cache: docs/CHECKER.md). */
  const readd = { msiOps: ['deassign', 'assign'] as const };

  it("'protocol' (Linux 6.1): the re-ASSIGN's inject work hits the translation set_forwarding cached, 26 choices", () => {
    const r = explore(msiRaceScenario(readd), { bound: 1 });
    const cx = r.counterexample!;
    expect(r.stats.schedules).toBe(33);
    expect(cx.violations.map((v) => v.invariant)).toEqual(['no-gic-unpredictable', 'hw-lr-names-active-intid']);
    expect(cx.schedule.length).toBe(26);
  });

  it("'vlpi-map-invalidates-its-cache': set_forwarding drops the cache it filled; bound 1 passes (78 schedules)", () => {
    const r = explore(msiRaceScenario({ ...readd, variant: 'vlpi-map-invalidates-its-cache' }), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.stats.schedules).toBe(78);
  });
});
