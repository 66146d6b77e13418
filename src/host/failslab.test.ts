import { describe, expect, it } from 'vitest';
import { devOf, fixture } from '../../test/fixtures/fwdFixture.js';
import { errnoOf } from '../../test/fixtures/kvmSetup.js';

/** fail-nth (lib/fault-inject.c should_fail_ex): the thread's Nth fault-injectable allocation fails, once. */
describe('fail-nth allocation failure (should_failslab)', () => {
  const vfioRefs = (f: ReturnType<typeof fixture>) =>
    f.s.kernel.refs.list('vfio_device').find((r) => r.name.includes('ethernet'))!.refs;

  it.each([1, 2])('kvm-vfio ASSIGN_IRQ with fail-nth %i: ENOMEM, nothing forwarded, no reference kept', (n) => {
    const f = fixture();
    const refs0 = vfioRefs(f);
    f.s.p.main.ut.failNth = n;
    expect(errnoOf(() => f.assign(0))).toBe('ENOMEM');
    expect(f.s.p.main.ut.failNth).toBe(0);
    expect(vfioRefs(f)).toBe(refs0);
    expect(devOf(f).descs[0]!.forwardedToVcpu).toBe(false);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hw).toBe(false);
    expect(f.assign(0)).toBe(0); // the next call is not armed
  });

  it('fail-nth past the call’s allocations: the call succeeds and the countdown is left (the VMM resets it)', () => {
    const f = fixture();
    f.s.p.main.ut.failNth = 3;
    expect(f.assign(0)).toBe(0);
    expect(f.s.p.main.ut.failNth).toBe(1);
  });
});
