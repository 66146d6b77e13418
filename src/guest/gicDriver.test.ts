import { describe, expect, it, vi } from 'vitest';
import { bootRig, makeRig } from '../../test/fixtures/guestRig.js';
import { ESR_ELx_EC_WFx } from '../hw/esr.js';
import { LrState, lrState, makeLr } from '../hw/gic/listRegister.js';
import { GIC_CPU_CTRL_EOImodeNS, SPURIOUS_INTID } from '../hw/gic/regs.js';
import { ModelError } from '../sim/errors.js';

const pendingLr = (vintid: number, extra: { hw?: boolean; pintid?: number; eoi?: boolean } = {}): number =>
  makeLr({
    vintid,
    hw: extra.hw ?? false,
    pintid: extra.pintid,
    eoi: extra.eoi ?? false,
    state: LrState.Pending,
    priority: 0xa0,
    group1: false,
  });

describe('guest GIC driver: boot', () => {
  it('vCPU 0 initialises the distributor through trapped GICD accesses, in irq-gic.c order', () => {
    const r = makeRig({
      vcpus: 2,
      lines: [
        { intid: 40, trigger: 'level' },
        { intid: 41, trigger: 'edge' },
      ],
      deviceOpts: [{}, { target: 1 }],
    });
    expect(r.kernel.booted).toBe(false);
    bootRig(r);
    expect(r.kernel.booted).toBe(true);
    const seq = r.gicd.map((a) => `${a.vcpu} ${a.write ? 'W' : 'R'}${a.len} 0x${a.offset.toString(16)}=${a.data}`);
    expect(seq).toEqual([
      '0 W4 0x0=0', // GICD_CTLR: disable
      '0 R4 0x4=0', // GICD_TYPER
      '0 W4 0x184=256', // ICENABLER1: bit 8 (INTID 40)
      '0 R4 0xc08=0', // ICFGR2 read
      '0 W4 0xc08=0', // level: bit 17 clear
      '0 W1 0x428=160', // IPRIORITYR byte 40 = 0xa0
      '0 W1 0x828=1', // ITARGETSR byte 40 → vCPU 0
      '0 W4 0x184=512', // INTID 41
      '0 R4 0xc08=0',
      `0 W4 0xc08=${2 << 18}`, // edge: bit 2*9+1
      '0 W1 0x429=160',
      '0 W1 0x829=2', // → vCPU 1
      '0 W4 0x104=768', // ISENABLER1: INTIDs 40 and 41 in one write
      '0 W4 0x0=1', // GICD_CTLR: enable
    ]);
    expect(r.fakeRegs.get(0xc08)).toBe(2 << 18);
    expect(r.fakeRegs.get(0x828)).toBe(0x0201);
    expect(r.kernel.driver.nrIrqs).toBe(128);
    // both vCPUs brought up their own GICV: PMR 0xf0, CTLR Enable with EOImode 0
    for (const cpu of [0, 1]) {
      expect(r.gic.vif(cpu).pmrValue).toBe(0xf0);
      expect(r.gic.vif(cpu).ctlrValue).toBe(1);
    }
    expect(r.exits.filter((e) => e.reason === ESR_ELx_EC_WFx).map((e) => e.vcpu)).toEqual([1, 0]);
  });

  it('EOImode 1 sets GICV_CTLR.EOImode', () => {
    const r = makeRig({ kernel: { eoiMode: 1 } });
    bootRig(r);
    expect(r.gic.vif(0).ctlrValue).toBe(1 | GIC_CPU_CTRL_EOImodeNS);
    expect(r.gic.vif(0).eoiMode).toBe(true);
  });

  it('a GICD read resumed without a value (no trapTask.resumeValue) is a protocol error', () => {
    const r = makeRig();
    r.engine.runUntil(() => r.gicd.length >= 2, 'the GICD_TYPER read exit');
    expect(r.gicd[1]).toMatchObject({ write: false, offset: 0x4, len: 4 });
    r.guests[0]!.thread.resumeValue = undefined; // a run loop that forgot to hand the value back
    expect(() => r.engine.runUntil(() => r.kernel.booted, 'boot')).toThrow(ModelError);
  });
});

describe('guest GIC driver: the IRQ vector', () => {
  it('EOImode 0: IAR → device handler silences the level line → EOIR deactivates the LR', () => {
    const r = makeRig();
    bootRig(r);
    const vif = r.gic.vif(0);
    const dir = vi.spyOn(vif, 'writeDir');
    r.dev.assert(0);
    expect(r.gic.distributor.lineLevel(40)).toBe(true);
    vif.writeLr(0, pendingLr(40));
    r.engine.runUntil(() => r.kernel.devices[0]!.handled === 1, 'handled');
    r.engine.run(2000);
    expect(r.dev.isAsserted(0)).toBe(false);
    expect(r.dev.acked[0]).toBe(1);
    expect(r.gic.distributor.lineLevel(40)).toBe(false);
    expect(lrState(vif.readLr(0))).toBe(LrState.Invalid);
    expect(vif.readRpr()).toBe(0xff);
    expect(dir).not.toHaveBeenCalled();
    const st = r.kernel.driver.cpuStats[0]!;
    expect(st).toMatchObject({ irqs: 1, iarReads: 2, eoirWrites: 1, dirWrites: 0, spurious: 0, unhandled: 0 });
    expect(r.kernel.stats().handledByIntid.get(40)).toBe(1);
    expect(r.kernel.vcpus[0]!.stats.wfis).toBe(2); // back to WFI after the interrupt
  });

  it('EOImode 1: EOIR (priority drop) before the handler, DIR after it', () => {
    const r = makeRig({ kernel: { eoiMode: 1 } });
    bootRig(r);
    const vif = r.gic.vif(0);
    const order: string[] = [];
    const eoir = vif.writeEoir.bind(vif);
    const dirw = vif.writeDir.bind(vif);
    const wreg = r.dev.writeReg.bind(r.dev);
    vi.spyOn(vif, 'writeEoir').mockImplementation((v) => {
      order.push(`eoir ${v}`);
      eoir(v);
      order.push(`lr ${lrState(vif.readLr(0))} rpr ${vif.readRpr()}`);
    });
    vi.spyOn(vif, 'writeDir').mockImplementation((v) => {
      order.push(`dir ${v}`);
      dirw(v);
      order.push(`lr ${lrState(vif.readLr(0))}`);
    });
    vi.spyOn(r.dev, 'writeReg').mockImplementation((o, v) => {
      order.push(`ack ${o}:${v}`);
      wreg(o, v);
    });
    r.dev.assert(0);
    vif.writeLr(0, pendingLr(40));
    r.engine.runUntil(() => r.kernel.driver.cpuStats[0]!.dirWrites === 1, 'DIR');
    expect(order).toEqual([
      'eoir 40',
      `lr ${LrState.Active} rpr 255`, // priority dropped, still active
      'ack 4:1',
      'dir 40',
      `lr ${LrState.Invalid}`,
    ]);
    expect(r.dev.isAsserted(0)).toBe(false);
  });

  it('a HW=1 LR: the guest EOI deactivates the physical INTID (the forwarded path)', () => {
    const r = makeRig();
    bootRig(r);
    const dist = r.gic.distributor;
    dist.setActive(40, true);
    r.dev.assert(0);
    r.gic.vif(0).writeLr(0, pendingLr(40, { hw: true, pintid: 40 }));
    r.engine.runUntil(() => r.kernel.devices[0]!.handled === 1, 'handled');
    r.engine.run(2000);
    expect(dist.isActive(40)).toBe(false);
    expect(r.gic.vif(0).unpredictableCount).toBe(0);
  });

  it('handles every pending LR in one exception, highest priority first', () => {
    const r = makeRig({
      lines: [
        { intid: 40, trigger: 'level' },
        { intid: 41, trigger: 'edge' },
      ],
    });
    bootRig(r);
    const handledOrder: number[] = [];
    const vif = r.gic.vif(0);
    const eoir = vif.writeEoir.bind(vif);
    vi.spyOn(vif, 'writeEoir').mockImplementation((v) => {
      handledOrder.push(v);
      eoir(v);
    });
    r.dev.assert(0);
    r.dev.pulse(1);
    vif.writeLr(0, pendingLr(40));
    vif.writeLr(
      1,
      makeLr({ vintid: 41, hw: false, eoi: false, state: LrState.Pending, priority: 0x80, group1: false }),
    );
    r.engine.runUntil(() => r.kernel.driver.cpuStats[0]!.eoirWrites === 2, 'both');
    r.engine.run(2000);
    expect(handledOrder).toEqual([41, 40]);
    expect(r.kernel.driver.cpuStats[0]).toMatchObject({ irqs: 1, iarReads: 3, eoirWrites: 2 });
    expect(r.dev.acked[0]).toBe(1);
    expect(r.dev.acked[1]).toBe(1);
  });

  it('a spurious exception (nVIRQ high, IAR returns 1023) is counted and returns without EOI', () => {
    const r = makeRig({ kernel: { workload: { stepCycles: 500 } } }); // CPU-bound: the vCPU stays in the guest
    r.engine.runUntil(() => r.kernel.booted, 'boot');
    const vif = r.gic.vif(0);
    const eoir = vi.spyOn(vif, 'writeEoir');
    expect(vif.readHppir()).toBe(SPURIOUS_INTID);
    r.engine.setVirqLine(0, true); // the line, with nothing in the LRs to acknowledge
    r.engine.runUntil(() => r.kernel.driver.cpuStats[0]!.spurious >= 1, 'spurious');
    r.engine.setVirqLine(0, false);
    r.engine.run(5000);
    const st = r.kernel.driver.cpuStats[0]!;
    expect(st.spurious).toBe(st.irqs);
    expect(st.iarReads).toBe(st.irqs);
    expect(eoir).not.toHaveBeenCalled();
    expect(r.kernel.stats().spurious).toBeGreaterThanOrEqual(1);
    const steps = r.kernel.vcpus[0]!.stats.computeSteps;
    r.engine.run(5000);
    expect(r.kernel.vcpus[0]!.stats.computeSteps).toBe(steps + 10); // the thread resumed its work
    expect(r.kernel.vcpus[0]!.stats.wfis).toBe(0);
  });

  it('an INTID without a handler is still completed, and counted as unhandled', () => {
    const r = makeRig();
    bootRig(r);
    const vif = r.gic.vif(0);
    vif.writeLr(0, pendingLr(50));
    r.engine.runUntil(() => r.kernel.driver.cpuStats[0]!.unhandled === 1, 'unhandled');
    r.engine.run(2000);
    expect(lrState(vif.readLr(0))).toBe(LrState.Invalid);
    expect(r.kernel.stats().handledByIntid.get(40)).toBe(0);
    expect(r.kernel.driver.cpuStats[0]).toMatchObject({ irqs: 1, eoirWrites: 1, spurious: 0 });
  });

  it('a handler finding no status bit returns IRQ_NONE (unhandled) and does not ack the device', () => {
    const r = makeRig();
    bootRig(r);
    r.gic.vif(0).writeLr(0, pendingLr(40)); // the device never asserted
    r.engine.runUntil(() => r.kernel.driver.cpuStats[0]!.unhandled === 1, 'unhandled');
    expect(r.kernel.devices[0]!.noStatus).toBe(1);
    expect(r.kernel.devices[0]!.handled).toBe(0);
    expect(r.dev.acked[0]).toBe(0);
  });
});
