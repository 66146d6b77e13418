/**
 * MSIs through the ITS under the generic IRQ layer: pci_alloc_irq_vectors (its_msi_prepare → MAPD, its_irq_domain_alloc,
 * early activation → MAPTI and the vector's message), request_irq (lpi_update_config: enable + INV), a fired vector
 * handled as an LPI by gic_handle_irq + handle_fasteoi_irq, its_set_affinity (MOVI), free_irq (DISCARD after
 * synchronize_hardirq), pci_free_irq_vectors (MAPD V = 0, the ITT and the LPIs back).
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../../abi/errno.js';
import { ITS_CMD_DISCARD, ITS_CMD_INV, ITS_CMD_MAPD, ITS_CMD_MAPTI, ITS_CMD_MOVI } from '../../../hw/gicv3/its.js';
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import { ItsMsiBus, MsiDevice } from '../../../hw/msiDevice.js';
import type { TimerHandler } from '../../../sim/engine.js';
import { Engine } from '../../../sim/engine.js';
import { current, type TaskGen } from '../../../sim/task.js';
import { irqSetAffinity } from '../affinity.js';
import { bootHostIrq, type HostIrqV3 } from '../boot.js';
import { IRQ_HANDLED, type IrqReturn } from '../irqDesc.js';
import { freeIrq, irqGetIrqchipState, requestIrq } from '../manage.js';
import { type PciMsiVectors, pciAllocIrqVectors, pciFreeIrqVectors } from './pciMsi.js';

function setup(cpus = 2, nrLpis = 64) {
  const engine = new Engine({ cpus, seed: 5 });
  const hi = bootHostIrq(engine, { gic: 'v3', nrLpis }) as HostIrqV3;
  const host = hi.its!;
  const domain = hi.msiDomain!;
  const bus = new ItsMsiBus(hi.gic.its!, host.its.physBase);
  const pdev = new MsiDevice('0000:01:00.0', 0x100, 8, bus);
  const thread = (body: () => TaskGen<void>) => {
    const t = engine.spawn('t', 1, body());
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
  };
  const ran: number[] = [];
  const handler = function* (irq: number): TaskGen<IrqReturn> {
    ran.push(irq * 100 + current().cpu);
    return IRQ_HANDLED;
  };
  const fireAt = (k: number) => {
    const h: TimerHandler = { name: `msi${k}`, fire: () => pdev.fire(k) };
    engine.at(engine.now + 500, h);
    engine.settle();
  };
  let vectors: PciMsiVectors | null = null;
  const alloc = (n: number, msix = false) =>
    thread(function* () {
      vectors = yield* pciAllocIrqVectors(domain, pdev, n, msix);
    });
  return { engine, hi, host, its: host.its, domain, pdev, thread, ran, handler, fireAt, alloc, v: () => vectors! };
}

describe('ITS MSI domain (its_msi_prepare, its_irq_domain_alloc/activate)', () => {
  it('allocates 4 vectors: one MAPD, a MAPTI per vector spread over the CPUs, messages programmed', () => {
    const s = setup();
    s.alloc(4);
    const hw = s.hi.gic.its!;
    expect(s.its.sent[ITS_CMD_MAPD]).toBe(1);
    expect(s.its.sent[ITS_CMD_MAPTI]).toBe(4);
    const descs = s.v().descs;
    expect(descs.map((d) => d.hwirq)).toEqual([LPI_BASE, LPI_BASE + 1, LPI_BASE + 2, LPI_BASE + 3]);
    // its_select_cpu: least loaded first → CPUs 0, 1, 0, 1
    expect([0, 1, 2, 3].map((ev) => hw.mapping(0x100, ev)?.pe)).toEqual([0, 1, 0, 1]);
    expect(s.pdev.msg(2)).toEqual({ address: 0x0808_0000 + 0x10040, data: 2 });
    expect(s.pdev.enabled).toBe(true);
    expect(descs.every((d) => d.activated && d.chip.name === 'ITS-MSI')).toBe(true);
  });

  it('request_irq enables the LPI (property byte + INV); a fired vector runs the handler once; EOI has no DIR', () => {
    const s = setup();
    s.alloc(2);
    const [d0, d1] = s.v().descs;
    s.thread(function* () {
      yield* requestIrq(s.hi.genirq, d0!.irq, s.handler, 0, 'vfio-msi[0]', 'a');
      yield* requestIrq(s.hi.genirq, d1!.irq, s.handler, 0, 'vfio-msi[1]', 'b');
    });
    expect(s.its.sent[ITS_CMD_INV]).toBe(2);
    expect(s.host.pages.memory.readU8(s.host.propTable + d1!.hwirq - LPI_BASE)).toBe(0xa3);
    s.fireAt(1);
    s.fireAt(1);
    s.fireAt(0);
    expect(s.ran).toEqual([d1!.irq * 100 + 1, d1!.irq * 100 + 1, d0!.irq * 100 + 0]);
    expect([d0!.count, d1!.count]).toEqual([1, 2]);
    expect(s.hi.genirq.badIrqs).toEqual([]);
    for (let cpu = 0; cpu < 2; cpu++) {
      expect(s.hi.gic.cpu(cpu).readRpr()).toBe(0xff); // ICC_EOIR1_EL1 dropped the priority
      expect(s.hi.gic.cpu(cpu).unpredictableCount).toBe(0);
    }
  });

  it('irq_set_affinity: MOVI to the new CPU; the LPI then runs there', () => {
    const s = setup();
    s.alloc(1);
    const d = s.v().descs[0]!;
    s.thread(function* () {
      yield* requestIrq(s.hi.genirq, d.irq, s.handler, 0, 'm', 'm');
      expect(yield* irqSetAffinity(s.hi.genirq, d.irq, 0b10)).toBe(1);
    });
    expect(s.its.sent[ITS_CMD_MOVI]).toBe(1);
    expect(s.hi.gic.its!.mapping(0x100, 0)?.pe).toBe(1);
    s.fireAt(0);
    expect(s.ran).toEqual([d.irq * 100 + 1]);
  });

  it('an LPI has no readable irqchip state (gic_irq_get_irqchip_state: -EINVAL for hwirq >= 8192)', () => {
    const s = setup();
    s.alloc(1);
    expect(() =>
      s.thread(function* () {
        yield* irqGetIrqchipState(s.hi.genirq, s.v().descs[0]!.irq, 'PENDING');
      }),
    ).toThrow(ErrnoError);
  });

  it('free_irq deactivates (DISCARD), request_irq re-activates (MAPTI); pci_free_irq_vectors unmaps the device', () => {
    const s = setup();
    s.alloc(4, true);
    const descs = s.v().descs;
    const irq0 = descs[0]!.irq;
    s.thread(function* () {
      yield* requestIrq(s.hi.genirq, irq0, s.handler, 0, 'x', 'x');
      yield* freeIrq(s.hi.genirq, irq0, 'x');
    });
    expect(s.its.sent[ITS_CMD_DISCARD]).toBe(1);
    expect(s.hi.gic.its!.mapping(0x100, 0)).toBeNull();
    // irq_shutdown masked the vector: the function latches the interrupt in its pending bit
    s.fireAt(0);
    expect([s.pdev.isPending(0), s.ran.length]).toEqual([true, 0]);
    s.thread(function* () {
      yield* requestIrq(s.hi.genirq, irq0, s.handler, 0, 'x', 'x');
    });
    // MAPTI again, then the unmask sends the latched message: handled once
    expect(s.ran.length).toBe(1);
    s.thread(function* () {
      yield* freeIrq(s.hi.genirq, irq0, 'x');
      yield* pciFreeIrqVectors(s.domain, s.v());
    });
    expect(s.its.sent[ITS_CMD_MAPTI]).toBe(5);
    expect(s.its.sent[ITS_CMD_DISCARD]).toBe(2 + 3);
    expect(s.its.sent[ITS_CMD_MAPD]).toBe(2);
    expect(s.its.devices).toEqual([]);
    expect(s.host.lpiRanges.freeCount).toBe(64);
    expect(Array.from(s.host.cpuLpiCount)).toEqual([0, 0]);
    expect(descs.every((d) => s.hi.genirq.domain.irqToDesc(d.irq) === undefined)).toBe(true);
    // the queue, the property table, two pending tables and two BASER tables remain; the ITT is gone
    expect(s.host.pages.liveCount).toBe(6);
    expect(s.hi.gic.its!.commandErrors).toBe(0);
    expect(s.its.log).toEqual([]);
  });

  it('its_msi_prepare refuses a DeviceID beyond GITS_TYPER.Devbits (ENOMEM) and leaves nothing behind', () => {
    const s = setup();
    const big = new MsiDevice('big', 2 ** 16, 1, new ItsMsiBus(s.hi.gic.its!, s.its.physBase));
    expect(() =>
      s.thread(function* () {
        yield* pciAllocIrqVectors(s.domain, big, 1, false);
      }),
    ).toThrow(/ENOMEM|DeviceID/);
    expect(s.its.devAllocLock.owner).toBeNull();
    expect(s.its.devices).toEqual([]);
  });
});
