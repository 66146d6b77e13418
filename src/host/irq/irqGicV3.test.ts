/**
 * The host GICv3 driver (drivers/irqchip/irq-gic-v3.c) under the generic IRQ layer, on a machine whose GIC is a
 * GICv3: boot state, delivery to the routed CPU, EOImode=1, the management API, irq_set_affinity, IPIs, spurious.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../abi/errno.js';
import { GICD_IROUTER_IRM, ICC_CTLR_EOIMODE } from '../../hw/gicv3/regs.js';
import { PlatformDevice } from '../../hw/platformDevice.js';
import { defineCost } from '../../sim/costs.js';
import { Engine, type TimerHandler } from '../../sim/engine.js';
import { localIrqRestore, localIrqSave } from '../../sim/locks.js';
import { current, op, type TaskGen } from '../../sim/task.js';
import { irqSetAffinity } from './affinity.js';
import { bootHostIrq, gicIpiSend, type HostIrqV3 } from './boot.js';
import { IRQ_HANDLED, IrqAction, type IrqReturn } from './irqDesc.js';
import {
  disableIrq,
  enableIrq,
  freeIrq,
  irqGetIrqchipState,
  irqSetIrqchipState,
  irqSetVcpuAffinity,
  requestIrq,
} from './manage.js';

const C_WORK = defineCost('test_gicv3_work', 100, 'test');
const LEVEL = 80;
const EDGE = 81;

function setup(cpus = 2) {
  const engine = new Engine({ cpus, seed: 11 });
  const hi = bootHostIrq(engine, { gic: 'v3' }) as HostIrqV3;
  const dist = hi.gic.distributor;
  const dev = new PlatformDevice(
    'fff51000.ethernet',
    [
      { intid: LEVEL, trigger: 'level' },
      { intid: EDGE, trigger: 'edge' },
    ],
    dist,
  );
  const level = hi.genirq.createMapping(LEVEL, 'level');
  const edge = hi.genirq.createMapping(EDGE, 'edge');
  dist.setConfig(EDGE, 'edge');
  const thread = (name: string, body: () => TaskGen<void>, cpu = 1) => {
    const t = engine.spawn(name, cpu, body());
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
  };
  const at = (time: number, name: string, fire: () => void): void => {
    const h: TimerHandler = { name, fire };
    engine.at(time, h);
  };
  /** The CPUs the handler of `irq` ran on, in order. */
  const ranOn: number[] = [];
  const handler = function* (_irq: number): TaskGen<IrqReturn> {
    yield op(C_WORK);
    ranOn.push(current().cpu);
    return IRQ_HANDLED;
  };
  const request = (irq: number, devId: unknown = 'dev') =>
    thread('request', function* () {
      yield* requestIrq(hi.genirq, irq, handler, 0, 'eth', devId);
    });
  return { engine, ...hi, dist, dev, level, edge, thread, at, ranOn, handler, request };
}

/** The level line requested, forwarded to a vCPU (irq_set_vcpu_affinity), asserted and handled once on CPU 0. */
function forwardedAndDelivered(s: ReturnType<typeof setup>): void {
  s.request(s.level.irq);
  s.thread('fwd', function* () {
    yield* irqSetVcpuAffinity(s.genirq, s.level.irq, { vcpu: 0 });
  });
  s.dev.assert(0);
  s.engine.settle();
}

describe('GICv3 boot (gic_dist_init, gic_cpu_init, gic_cpu_sys_reg_init)', () => {
  it('every CPU runs EOImode=1 with PMR 0xf0 and Group 1 on; SPIs disabled, level, priority 0xa0, routed to CPU 0', () => {
    const s = setup(4);
    for (let cpu = 0; cpu < 4; cpu++) {
      const icc = s.gic.cpu(cpu);
      expect(icc.ctlrValue & ICC_CTLR_EOIMODE).toBe(ICC_CTLR_EOIMODE);
      expect(icc.pmrValue).toBe(0xf0);
      expect(icc.igrpen1Value).toBe(1);
      expect(s.dist.isProcessorAsleep(cpu)).toBe(false);
      expect(s.dist.isEnabled(27, cpu)).toBe(false); // PPIs and SGIs wait for request_percpu_irq
    }
    expect(s.dist.routeOf(LEVEL)).toBe(0);
    expect(s.dist.irouterLow(LEVEL) & GICD_IROUTER_IRM).toBe(0);
    expect(s.dist.isEnabled(LEVEL)).toBe(false);
    expect(s.dist.configOf(LEVEL)).toBe('level');
    expect(s.dist.priorityOf(LEVEL)).toBe(0xa0);
    expect(s.chip.name).toBe('GICv3');
    // the Linux IRQ numbering of the domain is the same as on GICv2: never the INTID
    expect(s.level.irq).not.toBe(LEVEL);
  });
});

describe('GICv3 delivery (gic_handle_irq, gic_eoimode1_eoi_irq)', () => {
  it('request_irq of an SPI: the device asserts, the handler runs on the routed CPU, ICC_DIR_EL1 deactivates', () => {
    const s = setup();
    s.request(s.edge.irq);
    expect(s.dist.isEnabled(EDGE)).toBe(true);
    s.at(s.engine.now + 1000, 'pulse', () => s.dev.pulse(1));
    s.engine.settle();
    expect(s.ranOn).toEqual([0]);
    expect(s.dist.isActive(EDGE)).toBe(false); // gic_eoimode1_eoi_irq wrote ICC_DIR_EL1
    expect(s.gic.cpu(0).readRpr()).toBe(0xff); // gic_complete_ack's ICC_EOIR1_EL1 dropped the priority
    expect(s.gic.cpu(0).unpredictableCount).toBe(0);
    expect(s.edge.kstat[0]).toBe(1);
  });

  it('reads ICC_IAR1_EL1 once per exception: two pending SPIs take two exceptions', () => {
    const s = setup();
    s.request(s.edge.irq);
    s.thread('level', function* () {
      yield* requestIrq(
        s.genirq,
        s.level.irq,
        function* (): TaskGen<IrqReturn> {
          s.dev.writeReg(0x4, 1); // the driver silences the device
          return IRQ_HANDLED;
        },
        0,
        'lvl',
        'lvl',
      );
    });
    // both lines rise while CPU 0 runs with interrupts masked; then both are pending when it unmasks
    s.thread(
      'irqs-off',
      function* () {
        const flags = localIrqSave();
        s.dev.assert(0);
        s.dev.pulse(1);
        yield op(C_WORK);
        localIrqRestore(flags);
      },
      0,
    );
    expect(s.level.count).toBe(1);
    expect(s.edge.count).toBe(1);
    expect(s.engine.cpus[0]!.irqs).toBe(2);
  });

  it('EOImode=1: a forwarded INTID stays active after the priority drop; GICD_ISACTIVER reports it', () => {
    const s = setup();
    forwardedAndDelivered(s);
    expect(s.ranOn).toEqual([0]);
    expect(s.dist.isActive(LEVEL)).toBe(true); // no ICC_DIR_EL1: the guest deactivates through a HW LR
    expect(s.gic.cpu(0).readRpr()).toBe(0xff);
    expect(s.engine.cpus[0]!.irqLine).toBe(false);
    let active = false;
    s.thread('query', function* () {
      active = yield* irqGetIrqchipState(s.genirq, s.level.irq, 'ACTIVE');
    });
    expect(active).toBe(true);
    s.thread('deactivate', function* () {
      yield* irqSetIrqchipState(s.genirq, s.level.irq, 'ACTIVE', false); // what the guest's EOI does
    });
    expect(s.ranOn).toEqual([0, 0]); // the line is still high: delivered again
  });

  it('disable_irq waits in synchronize_irq until the forwarded INTID is deactivated; enable_irq re-arms', () => {
    const s = setup();
    forwardedAndDelivered(s);
    const deactivateAt = s.engine.now + 50_000;
    s.at(deactivateAt, 'guest-eoi', () => {
      s.dev.writeReg(0x4, 1);
      s.dist.setActive(LEVEL, false);
    });
    let doneAt = -1;
    s.thread('disabler', function* () {
      yield* disableIrq(s.genirq, s.level.irq);
      doneAt = s.engine.now;
    });
    expect(doneAt).toBeGreaterThanOrEqual(deactivateAt); // __synchronize_hardirq polled GICD_ISACTIVER
    expect(s.level.depth).toBe(1);
    s.dev.assert(0);
    s.engine.settle();
    expect(s.ranOn).toEqual([0]); // disabled (lazily: masked at the next delivery)
    s.thread('enable', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(s.ranOn).toEqual([0, 0]);
  });

  it('free_irq of a forwarded, guest-active INTID masks and deactivates it (gic_eoimode1_mask_irq)', () => {
    const s = setup();
    forwardedAndDelivered(s);
    s.thread('free', function* () {
      yield* freeIrq(s.genirq, s.level.irq, 'dev');
    });
    expect(s.dist.isActive(LEVEL)).toBe(false);
    expect(s.dist.isEnabled(LEVEL)).toBe(false);
  });

  it('refuses to forward an SGI (gic_irq_set_vcpu_affinity) and has no LINE_LEVEL state (gic_irq_get_irqchip_state)', () => {
    const s = setup();
    const sgi = s.genirq.createMapping(1, 'edge');
    expect(() =>
      s.thread('fwd-sgi', function* () {
        yield* irqSetVcpuAffinity(s.genirq, sgi.irq, {});
      }),
    ).toThrow(ErrnoError);
    expect(() =>
      s.thread('line', function* () {
        yield* irqGetIrqchipState(s.genirq, s.level.irq, 'LINE_LEVEL');
      }),
    ).toThrow(/GICv3 cannot report LINE_LEVEL/);
  });

  it('an INTID nobody mapped is reported and deactivated (gic_deactivate_unhandled)', () => {
    const s = setup();
    s.dist.enable(90);
    s.dist.setPending(90);
    s.engine.settle();
    expect(s.genirq.badIrqs).toEqual(['cpu0: unexpected IRQ, INTID 90']);
    expect(s.dist.isActive(90)).toBe(false);
  });
});

describe('GICv3 routing (gic_set_affinity through GICD_IROUTER)', () => {
  it('irq_set_affinity moves delivery to the first CPU of the mask, with the SPI masked around the IROUTER write', () => {
    const s = setup(4);
    s.request(s.edge.irq);
    let chosen = -1;
    s.thread('affinity', function* () {
      chosen = yield* irqSetAffinity(s.genirq, s.edge.irq, 0b1100);
    });
    expect(chosen).toBe(2);
    expect(s.dist.routeOf(EDGE)).toBe(2);
    expect(s.dist.isEnabled(EDGE)).toBe(true); // re-enabled after the write
    s.dev.pulse(1);
    s.engine.settle();
    expect(s.ranOn).toEqual([2]);
    expect(s.edge.kstat[2]).toBe(1);
  });

  it('refuses a mask of no online CPU, and a per-CPU interrupt (gic_irq_in_rdist): EINVAL', () => {
    const s = setup(2);
    const ppi = s.genirq.createMapping(27, 'level');
    for (const [irq, mask, why] of [
      [s.edge.irq, 0b100, /no online CPU/],
      [ppi.irq, 0b1, /GICv3 refused INTID 27/],
    ] as const) {
      expect(() =>
        s.thread('affinity', function* () {
          yield* irqSetAffinity(s.genirq, irq, mask);
        }),
      ).toThrow(why);
    }
    expect(s.dist.routeOf(EDGE)).toBe(0);
    expect(s.level.lock.owner).toBeNull();
  });
});

describe('GICv3 IPIs (gic_ipi_send_mask through ICC_SGI1R_EL1)', () => {
  it('one ICC_SGI1R_EL1 write per cluster: CPUs 3 and 17 (clusters 0.0.0 and 0.0.1) get the SGI, nobody else', () => {
    const s = setup(20);
    gicIpiSend(s, 0, 1, (1 << 3) | (1 << 17));
    for (let cpu = 0; cpu < 20; cpu++) expect(s.dist.isPending(1, cpu)).toBe(cpu === 3 || cpu === 17);
  });

  it('property: every target mask from every CPU makes the SGI pending on exactly the CPUs of the mask', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 15 }),
        (n, m, f, sgi) => {
          const engine = new Engine({ cpus: n, seed: 1 });
          const hi = bootHostIrq(engine, { gic: 'v3' });
          const mask = m % 2 ** n;
          gicIpiSend(hi, f % n, sgi, mask);
          for (let cpu = 0; cpu < n; cpu++) {
            expect(hi.gic.distributor.isPending(sgi, cpu)).toBe((mask & (1 << cpu)) !== 0);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('an IPI is taken by the target CPU through its per-CPU descriptor and deactivated by ICC_DIR_EL1', () => {
    const s = setup(2);
    const ipi = s.genirq.createMapping(0, 'edge');
    ipi.action = new IrqAction(s.handler, null, 'IPI', 0); // request_percpu_irq
    for (let cpu = 0; cpu < 2; cpu++) s.dist.enable(0, cpu);
    gicIpiSend(s, 0, 0, 1 << 1);
    s.engine.settle();
    expect(s.ranOn).toEqual([1]);
    expect(s.dist.isActive(0, 1)).toBe(false);
    expect(ipi.kstat[1]).toBe(1);
  });
});

describe('GICv3 spurious interrupts', () => {
  it('a 1-of-N SPI signalled to two CPUs: one acknowledges it, the other reads 1023 and returns', () => {
    const s = setup(2);
    s.request(s.edge.irq);
    s.dist.setRoute(EDGE, 'any'); // Linux never programs 1 of N; firmware or a test can
    s.dev.pulse(1);
    s.engine.settle();
    expect(s.ranOn).toHaveLength(1);
    expect(s.chip.spurious[0]! + s.chip.spurious[1]!).toBe(1);
  });
});
