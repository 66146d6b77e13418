import { describe, expect, it } from 'vitest';
import { type Fixture, fixture, teardownClean, totals } from '../../../../test/fixtures/fwdFixture.js';

/** Where in its life an interrupt can be when the forwarded state changes (docs/ARCHITECTURE.md). */
type State =
  | 'pending at the GIC'
  | 'active on the host'
  | 'in the VFIO handler'
  | 'queued in the vGIC'
  | 'in a list register'
  | 'active in the guest'
  | 'masked by VFIO'
  | 'unmask in flight';

function predicate(f: Fixture, line: number, state: State): () => boolean {
  const intid = 80 + line;
  const dist = f.host.irq.gic.distributor;
  const desc = f.host.devices[0]!.descs[line]!;
  const plat = () => f.host.devices[0]!.vdev.irqs[line]!;
  const vm = () => f.host.kvm.vms[0]!;
  const virq = () => vm().vgic!.vgicGetIrq(intid)!;
  const handled = f.guest.devices[line]!.handled;
  switch (state) {
    case 'pending at the GIC':
      return () => dist.isPending(intid) && !dist.isActive(intid);
    case 'active on the host':
      return () =>
        dist.isActive(intid) && !desc.inprogress && virq().vcpu === null && f.guest.devices[line]!.handled === handled;
    case 'in the VFIO handler':
      return () => desc.inprogress;
    case 'queued in the vGIC':
      return () => virq().vcpu !== null && !virq().onLr && !virq().active;
    case 'in a list register':
      return () => virq().onLr && f.guest.devices[line]!.handled === handled;
    case 'active in the guest':
      return () => vm().vcpus[0]!.guest?.inIrq === true;
    case 'masked by VFIO':
      return () => plat().masked && !desc.inprogress && f.guest.devices[line]!.handled > handled;
    case 'unmask in flight':
      // the resamplefd's virqfd is inside vfio_platform_unmask (irq->lock held, enable_irq under way)
      return () => plat().masked && plat().lock.owner !== null && f.guest.devices[line]!.handled > handled;
  }
}

const RAISES = 12;

function switchAt(line: number, state: State, to: 'forwarded' | 'normal'): void {
  const f = fixture();
  if (to === 'normal') f.assign(line);
  const before = totals(f);
  f.raise(line, RAISES);
  f.host.engine.runUntil(predicate(f, line, state), `${state}`);
  const h = f.assignAsync(line, to === 'forwarded');
  f.host.settle();
  expect(h.result()).toBe(0);
  const t = totals(f);
  // nothing lost, nothing delivered twice
  expect(t.handled[line]! - before.handled[line]!).toBe(RAISES);
  expect(t.noStatus[line]).toBe(0);
  // nothing left active or masked, no WARN, no UNPREDICTABLE GIC access
  const dist = f.host.irq.gic.distributor;
  expect(dist.isActive(80 + line)).toBe(false);
  expect(f.host.devices[0]!.vdev.irqs[line]!.masked).toBe(false);
  expect(f.host.checkInvariants()).toEqual([]);
  expect(f.host.devices[0]!.descs[line]!.forwardedToVcpu).toBe(to === 'forwarded');
  teardownClean(f);
}

describe('switching the forwarded state at every state of a level IRQ', () => {
  const normalStates: State[] = [
    'pending at the GIC',
    'active on the host',
    'in the VFIO handler',
    'queued in the vGIC',
    'in a list register',
    'active in the guest',
    'masked by VFIO',
    'unmask in flight',
  ];
  for (const st of normalStates) it(`assign while ${st}`, () => switchAt(0, st, 'forwarded'));
  const fwdStates: State[] = [
    'pending at the GIC',
    'in the VFIO handler',
    'queued in the vGIC',
    'in a list register',
    'active in the guest',
  ];
  for (const st of fwdStates) it(`deassign while ${st}`, () => switchAt(0, st, 'normal'));
});

describe('switching the forwarded state at every state of an edge IRQ', () => {
  const states: State[] = [
    'pending at the GIC',
    'in the VFIO handler',
    'queued in the vGIC',
    'in a list register',
    'active in the guest',
  ];
  for (const st of states) {
    it(`assign while ${st}`, () => switchAt(1, st, 'forwarded'));
    it(`deassign while ${st}`, () => switchAt(1, st, 'normal'));
  }
});
