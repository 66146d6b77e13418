/** The naive variant: the corrected design without the critical-section protocol. */
import { describe, expect, it } from 'vitest';
import { devOf, expectForwardedLevelRun, fixture, teardownClean, totals } from '../../../test/fixtures/fwdFixture.js';

describe('naive: the happy path', () => {
  it('idle assign: 100 level IRQs handled once each, 0 maintenance exits, deassign, clean teardown', () => {
    const f = fixture({ forwarding: 'naive' });
    const desc = devOf(f).descs[0]!;
    expect(f.assign(0)).toBe(0);
    expect(desc.forwardedToVcpu).toBe(true);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hwintid).toBe(80); // the INTID, as in the default design
    expectForwardedLevelRun(f, 100);
    expect(f.deassign(0)).toBe(0);
    expect(desc.forwardedToVcpu).toBe(false);
    teardownClean(f);
  });
});

describe('naive: no critical section', () => {
  for (const protocol of [false, true]) {
    it(`assign while the level IRQ is in the VFIO handler (${protocol ? 'protocol: all delivered' : 'naive: 11 of 12 lost'})`, () => {
      const f = fixture({ forwarding: protocol ? 'protocol' : 'naive' });
      const desc = devOf(f).descs[0]!;
      const plat = devOf(f).vdev.irqs[0]!;
      f.raise(0, 12);
      f.host.engine.runUntil(() => desc.inprogress, 'in the VFIO handler');
      const h = f.assignAsync(0, true);
      f.host.settle(2_000_000);
      expect(h.result()).toBe(0);
      if (protocol) {
        expect(totals(f).handled[0]).toBe(12);
        expect(f.host.checkInvariants()).toEqual([]);
        return;
      }
      // The handler automasked the line and the host's EOI deactivated it before the switch; the vIRQ then went into
      // an LR with HW=1 naming an inactive INTID (hw-lr-names-active-intid), so the guest's EOI deactivated an
      // inactive INTID, and no resample ever unmasks the line.
      expect(totals(f).handled[0]).toBe(1);
      expect(plat.masked).toBe(true);
      expect(desc.depth).toBe(1);
      expect(f.host.irq.gic.vif(1).unpredictableCount).toBe(1);
      expect(f.host.checkInvariants()).toEqual([
        'GIC: 1 UNPREDICTABLE access(es) on CPU 1',
        'vGIC: 1 HW=1 list register(s) named an inactive physical INTID (vcpu0 LR0 vINTID 80 → inactive INTID 80)',
      ]);
    });
  }
});
