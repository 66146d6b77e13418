import { describe, expect, it } from 'vitest';
import { bootRig, makeRig } from '../../test/fixtures/guestRig.js';
import { LrState, makeLr } from '../hw/gic/listRegister.js';
import type { TimerHandler } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { GuestDeviceDriver } from './deviceDriver.js';

const lr = (vintid: number) =>
  makeLr({ vintid, hw: false, eoi: false, state: LrState.Pending, priority: 0xa0, group1: false });

describe('guest device driver', () => {
  it('reads IRQ_STATUS, works handlerCycles, acks; latency is measured from the assertion time it is given', () => {
    const assertedAt: (number | undefined)[] = [undefined];
    const samples: number[] = [];
    const r = makeRig({
      deviceOpts: [
        {
          handlerCycles: 7000,
          assertedAt: (line) => assertedAt[line],
          onLatency: (c) => samples.push(c),
        },
      ],
    });
    r.dev.onLineChange = (_d, i, level) => {
      if (level) assertedAt[i] = r.engine.now;
    };
    bootRig(r);
    const t0 = r.engine.now + 10_000;
    let ackAt = -1;
    const write = r.dev.writeReg.bind(r.dev);
    r.dev.writeReg = (o, v) => {
      ackAt = r.engine.now;
      write(o, v);
    };
    const fire: TimerHandler = {
      name: 'device',
      fire: () => {
        r.dev.assert(0);
        r.gic.vif(0).writeLr(0, lr(40));
      },
    };
    r.engine.at(t0, fire);
    const drv = r.kernel.devices[0]!;
    r.engine.runUntil(() => drv.handled === 1, 'handled');
    expect(drv.latencyCount).toBe(1);
    expect(samples).toEqual([drv.latencyMax]);
    expect(drv.latencyMin).toBe(drv.latencyMax);
    expect(drv.latencySum).toBe(drv.latencyMax);
    expect(drv.latencyMax).toBeGreaterThan(0);
    // status read → (7000 cycles of work) → ack
    expect(ackAt - (t0 + drv.latencyMax)).toBe(
      r.engine.costs.byName('guest_pdev_read') + r.engine.costs.byName('guest_work_7000'),
    );
    expect(r.dev.isAsserted(0)).toBe(false);
  });

  it('an edge line is acknowledged through IRQ_ACK as well (its status bit clears)', () => {
    const r = makeRig({ lines: [{ intid: 41, trigger: 'edge' }] });
    bootRig(r);
    r.dev.pulse(0);
    expect(r.dev.readReg(0)).toBe(1);
    r.gic.vif(0).writeLr(0, lr(41));
    r.engine.runUntil(() => r.kernel.devices[0]!.handled === 1, 'handled');
    expect(r.dev.readReg(0)).toBe(0);
    expect(r.dev.acked[0]).toBe(1);
  });

  it('the guest INTID may differ from the physical one (the VMM picks guest_irq)', () => {
    const r = makeRig({ deviceOpts: [{ intid: 70 }] });
    bootRig(r);
    expect(r.gicd.some((a) => a.offset === 0x800 + 70 && a.write)).toBe(true);
    r.dev.assert(0);
    r.gic.vif(0).writeLr(0, lr(70));
    r.engine.runUntil(() => r.kernel.devices[0]!.handled === 1, 'handled');
    expect(r.kernel.stats().handledByIntid.get(70)).toBe(1);
  });

  it('tracepoints: guest_irq_entry when the status read finds the condition (not for IRQ_NONE), then guest_eoi', () => {
    const r = makeRig();
    bootRig(r);
    const seen: string[] = [];
    r.kernel.setTrace({
      deviceIrq: (vcpu, drv) => seen.push(`irq vcpu${vcpu} ${drv.name} status=${r.dev.readReg(0)}`),
      lpiIrq: (vcpu, intid) => seen.push(`lpi vcpu${vcpu} ${intid}`),
      eoi: (vcpu, intid) => seen.push(`eoi vcpu${vcpu} ${intid}`),
    });
    const drv = r.kernel.devices[0]!;
    // vINTID 40 with the line low: the handler finds nothing (IRQ_NONE), the guest still completes it
    r.gic.vif(0).writeLr(0, lr(40));
    r.engine.runUntil(() => drv.noStatus === 1, 'IRQ_NONE');
    r.engine.runUntil(() => seen.length === 1, 'EOI');
    r.dev.assert(0);
    r.gic.vif(0).writeLr(0, lr(40));
    r.engine.runUntil(() => drv.handled === 1, 'handled');
    r.engine.runUntil(() => seen.length === 3, 'EOI');
    // the entry is at the status read, before the IRQ_ACK write drops the condition
    expect(seen).toEqual(['eoi vcpu0 40', 'irq vcpu0 dev0.0 status=1', 'eoi vcpu0 40']);
    r.kernel.setTrace(null);
    expect([r.kernel.driver.trace, drv.trace]).toEqual([null, null]);
  });

  it('rejects a line the device does not have, and two drivers on one INTID', () => {
    const r = makeRig();
    expect(
      () => new GuestDeviceDriver(r.engine, { device: r.dev, line: 1 }), // dev0 has one line
    ).toThrow(ModelError);
    expect(() =>
      makeRig({
        lines: [
          { intid: 40, trigger: 'level' },
          { intid: 41, trigger: 'level' },
        ],
        deviceOpts: [{}, { intid: 40 }],
      }),
    ).toThrow(ModelError);
  });
});
