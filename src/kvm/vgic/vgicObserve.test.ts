import { describe, expect, it } from 'vitest';
import {
  guestConfig,
  guestEnable,
  guestPriority,
  HOST_IRQ_BASE,
  makeHarness,
} from '../../../test/fixtures/vgicHarness.js';
import { LrState } from '../../hw/gic/listRegister.js';
import { vgicApList, vgicIrqState, vgicListRegisters } from './vgicObserve.js';

describe('vGIC observers (read-only views of struct vgic_irq, the ap-list and the LRs)', () => {
  it('follow a level SPI from injection (ap-list) through flush (live LR) to the fold after the guest acknowledged it', () => {
    const h = makeHarness({ resampler: false });
    const v = h.vcpus[0]!;
    guestConfig(v, 40, false);
    guestPriority(v, 40, 0x20);
    guestEnable(v, 40);
    expect(h.vgic.kvmVgicInjectIrq(null, 40, true)).toBe(1);
    expect(vgicIrqState(h.vgic, 40)).toMatchObject({
      pending: true,
      lineLevel: true,
      pendingLatch: false,
      active: false,
      config: 'level',
      priority: 0x20,
      hw: false,
      owned: false,
      apVcpu: 0,
      apPos: 0,
      onLr: false,
    });
    expect(vgicApList(h.vgic, 0)).toEqual([40]);
    expect(vgicListRegisters(h.vgic, 0)).toEqual([]);
    h.vgic.kvmVgicFlushHwstate(v);
    const lrs = vgicListRegisters(h.vgic, 0);
    expect(lrs.map((l) => [l.index, l.vintid, l.state, l.eoi, l.priority])).toEqual([
      [0, 40, LrState.Pending, true, 0x20],
    ]);
    expect(h.gic.vif(0).readIar() & 0x3ff).toBe(40); // the guest acknowledges: the live LR turns active
    expect(vgicListRegisters(h.vgic, 0)[0]!.state).toBe(LrState.Active);
    h.vgic.kvmVgicSyncHwstate(v);
    expect(vgicIrqState(h.vgic, 40)).toMatchObject({ active: true, pending: true, apVcpu: 0, onLr: false });
    expect(vgicListRegisters(h.vgic, 0)).toEqual([]);
  });

  it('report the mapping of a HW vIRQ and refuse INTIDs and vCPUs the vGIC does not have', () => {
    const h = makeHarness();
    const v = h.vcpus[0]!;
    expect(h.vgic.kvmVgicMapPhysIrq(v, HOST_IRQ_BASE + 80, 48)).toBe(0);
    expect(vgicIrqState(h.vgic, 48)).toMatchObject({ hw: true, hwintid: 80, apVcpu: -1, apPos: -1 });
    expect(() => vgicIrqState(h.vgic, 5000)).toThrow(/no INTID 5000/);
    expect(() => vgicListRegisters(h.vgic, 3)).toThrow(/no vCPU 3/);
  });
});
