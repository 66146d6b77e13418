import { afterEach, describe, expect, it } from 'vitest';
import { ErrnoError } from '../../abi/errno.js';
import { PlatformDevice } from '../../hw/platformDevice.js';
import { defineCost } from '../../sim/costs.js';
import { Engine, type TimerHandler } from '../../sim/engine.js';
import { ModelError } from '../../sim/errors.js';
import { current, op, type TaskGen } from '../../sim/task.js';
import { bootHostIrq } from './boot.js';
import {
  actionsOf,
  IRQ_HANDLED,
  IRQ_NOAUTOEN,
  IRQF_NO_AUTOEN,
  IRQF_ONESHOT,
  IRQF_SHARED,
  IRQS_PENDING,
  type IrqReturn,
} from './irqDesc.js';
import {
  disableIrq,
  disableIrqNosync,
  enableIrq,
  freeIrq,
  irqGetIrqchipState,
  irqModifyStatus,
  irqSetIrqchipState,
  irqSetVcpuAffinity,
  requestIrq,
  setPanicOnWarn,
} from './manage.js';

const C_WORK = defineCost('test_irq_work', 100, 'test');
const LEVEL = 80;
const EDGE = 81;

function setup() {
  const engine = new Engine({ cpus: 2, seed: 7 });
  const hi = bootHostIrq(engine);
  const dev = new PlatformDevice(
    'fff51000.ethernet',
    [
      { intid: LEVEL, trigger: 'level' },
      { intid: EDGE, trigger: 'edge' },
    ],
    hi.gic.distributor,
  );
  const level = hi.genirq.createMapping(LEVEL, 'level');
  const edge = hi.genirq.createMapping(EDGE, 'edge');
  hi.gic.distributor.setConfig(EDGE, 'edge');
  const log: string[] = [];
  /** Run a thread body to completion (it may block on nothing in these tests). */
  const thread = (name: string, body: () => TaskGen<void>, cpu = 1) => {
    const t = engine.spawn(name, cpu, body());
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
    return t;
  };
  const at = (time: number, name: string, fire: () => void): void => {
    const h: TimerHandler = { name, fire };
    engine.at(time, h);
  };
  return { engine, ...hi, dev, level, edge, log, thread, at };
}

afterEach(() => setPanicOnWarn(true));

describe('host IRQ layer: level line through the GIC and the fasteoi flow', () => {
  it('gives Linux IRQ numbers that differ from the INTIDs they map', () => {
    const s = setup();
    expect(s.level.irq).not.toBe(LEVEL);
    expect(s.edge.irq).not.toBe(EDGE);
    expect(s.genirq.findMapping(LEVEL)).toBe(s.level.irq);
    // Code that confuses an INTID with a Linux IRQ number gets EINVAL, not a silent hit.
    expect(() =>
      s.thread('confused', function* () {
        yield* requestIrq(
          s.genirq,
          LEVEL,
          function* (): TaskGen<IrqReturn> {
            return IRQ_HANDLED;
          },
          0,
          'x',
          null,
        );
      }),
    ).toThrow(/Linux IRQ 80 has no descriptor/);
  });

  it('reaches the handler on CPU 0; an automasked line does not fire again until enable_irq', () => {
    const s = setup();
    let runs = 0;
    function* automask(irq: number): TaskGen<IrqReturn> {
      yield op(C_WORK);
      runs++;
      s.log.push(`handler irq=${irq} cpu=${current().cpu} kind=${current().kind}`);
      yield* disableIrqNosync(s.genirq, irq); // like vfio_automasked_irq_handler
      return IRQ_HANDLED;
    }
    s.thread('setup', function* () {
      yield* requestIrq(s.genirq, s.level.irq, automask, 0, 'vfio-irq[0]', null);
    });
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(true);
    s.at(s.engine.now + 1000, 'assert', () => s.dev.assert(0));
    s.engine.settle();
    expect(runs).toBe(1);
    expect(s.log[0]).toBe(`handler irq=${s.level.irq} cpu=0 kind=hardirq`);
    // Lazy disable: after DIR the still-high line fired once more, found the IRQ disabled, masked it.
    expect(s.level.istate & IRQS_PENDING).toBe(IRQS_PENDING);
    expect(s.level.masked).toBe(true);
    expect(s.level.depth).toBe(1);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(false);
    expect(s.gic.distributor.isActive(LEVEL)).toBe(false);
    // Both deliveries came in one exception: gic_handle_irq reads IAR again after the first flow's DIR.
    expect(s.engine.cpus[0]!.irqs).toBe(1);
    expect(s.level.count).toBe(1);

    // enable_irq with the line still high: unmask, and it fires again (level lines are not replayed, they re-assert).
    s.thread('unmask', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(runs).toBe(2);
    expect(s.level.depth).toBe(1);

    // The device is silenced before the next enable: no further run.
    s.dev.writeReg(0x4, 1);
    s.thread('unmask2', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(runs).toBe(2);
    expect(s.level.depth).toBe(0);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(true);
    expect(s.dev.acked[0]).toBe(1);
  });

  it('keeps a forwarded INTID active after the host EOI, and deactivation makes it deliverable again', () => {
    const s = setup();
    let runs = 0;
    s.thread('setup', function* () {
      yield* requestIrq(
        s.genirq,
        s.level.irq,
        function* (): TaskGen<IrqReturn> {
          runs++;
          yield op(C_WORK);
          return IRQ_HANDLED;
        },
        0,
        'fwd',
        null,
      );
      yield* irqSetVcpuAffinity(s.genirq, s.level.irq, { vcpu: 0 });
    });
    s.dev.assert(0);
    s.engine.settle();
    expect(runs).toBe(1);
    const d = s.gic.distributor;
    // EOImode=1: EOIR dropped the priority, DIR was skipped: active, and (line high) pending too, but not delivered.
    expect(d.isActive(LEVEL)).toBe(true);
    expect(s.gic.cpu(0).readRpr()).toBe(0xff);
    expect(s.engine.cpus[0]!.irqLine).toBe(false);
    let active = false;
    s.thread('query', function* () {
      active = yield* irqGetIrqchipState(s.genirq, s.level.irq, 'ACTIVE');
    });
    expect(active).toBe(true);
    // What a guest EOI through a HW list register would do: deactivate the physical INTID.
    s.thread('deactivate', function* () {
      yield* irqSetIrqchipState(s.genirq, s.level.irq, 'ACTIVE', false);
    });
    expect(runs).toBe(2);
    expect(d.isActive(LEVEL)).toBe(true); // fired again: the line is still high
  });

  it('refuses to forward an SGI (gic_irq_set_vcpu_affinity) and reports LINE_LEVEL as unsupported', () => {
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
    ).toThrow(/cannot report LINE_LEVEL/);
  });

  it('synchronize_irq (via disable_irq) spins until a guest-held forwarded INTID is deactivated', () => {
    const s = setup();
    s.thread('setup', function* () {
      yield* requestIrq(
        s.genirq,
        s.level.irq,
        function* (): TaskGen<IrqReturn> {
          yield op(C_WORK);
          return IRQ_HANDLED;
        },
        0,
        'fwd',
        null,
      );
      yield* irqSetVcpuAffinity(s.genirq, s.level.irq, { vcpu: 0 });
    });
    s.dev.assert(0);
    s.engine.settle();
    const deactivateAt = s.engine.now + 50_000;
    s.at(deactivateAt, 'guest-eoi', () => {
      s.dev.writeReg(0x4, 1);
      s.gic.distributor.setActive(LEVEL, false);
    });
    let doneAt = -1;
    s.thread('disabler', function* () {
      yield* disableIrq(s.genirq, s.level.irq);
      doneAt = s.engine.now;
    });
    expect(doneAt).toBeGreaterThanOrEqual(deactivateAt);
    expect(s.level.depth).toBe(1);
  });

  it('free_irq of a forwarded, guest-active INTID masks and deactivates it (gic_eoimode1_mask_irq)', () => {
    const s = setup();
    s.thread('setup', function* () {
      yield* requestIrq(
        s.genirq,
        s.level.irq,
        function* (): TaskGen<IrqReturn> {
          return IRQ_HANDLED;
        },
        0,
        'fwd',
        'dev',
      );
      yield* irqSetVcpuAffinity(s.genirq, s.level.irq, { vcpu: 0 });
    });
    s.dev.assert(0);
    s.engine.settle();
    expect(s.gic.distributor.isActive(LEVEL)).toBe(true);
    s.thread('free', function* () {
      yield* freeIrq(s.genirq, s.level.irq, 'dev');
    });
    expect(s.gic.distributor.isActive(LEVEL)).toBe(false);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(false);
    expect(s.level.action).toBeNull();
    expect(s.level.depth).toBe(1);
  });
});

describe('host IRQ layer: edge lines', () => {
  function edgeSetup() {
    const s = setup();
    let runs = 0;
    let pulseInHandler = false;
    s.thread('setup', function* () {
      yield* requestIrq(
        s.genirq,
        s.edge.irq,
        function* (): TaskGen<IrqReturn> {
          runs++;
          yield op(C_WORK);
          if (pulseInHandler) {
            pulseInHandler = false;
            s.dev.pulse(1); // a second edge while the first is active
          }
          return IRQ_HANDLED;
        },
        0,
        'edge',
        null,
      );
    });
    return {
      s,
      runs: () => runs,
      pulseDuring: () => {
        pulseInHandler = true;
      },
    };
  }

  it('runs the handler once per edge', () => {
    const { s, runs } = edgeSetup();
    s.at(s.engine.now + 100, 'e1', () => s.dev.pulse(1));
    s.at(s.engine.now + 100_000, 'e2', () => s.dev.pulse(1));
    s.engine.settle();
    expect(runs()).toBe(2);
    expect(s.edge.count).toBe(2);
  });

  it("runs a shared line's actions in request order, and the rest of the chain after free_irq of the first", () => {
    // __setup_irq appends to the desc->action chain; __free_irq unlinks by dev_id; __handle_irq_event_percpu walks it
    const s = setup();
    const ran: string[] = [];
    const handler = (_irq: number, devId: unknown): IrqReturn => {
      ran.push(devId as string);
      return IRQ_HANDLED;
    };
    s.thread('setup', function* () {
      for (const dev of ['a', 'b', 'c']) yield* requestIrq(s.genirq, s.edge.irq, handler, IRQF_SHARED, dev, dev);
    });
    s.dev.pulse(1);
    s.engine.settle();
    expect(ran).toEqual(['a', 'b', 'c']);
    s.thread('free', function* () {
      yield* freeIrq(s.genirq, s.edge.irq, 'a');
      yield* freeIrq(s.genirq, s.edge.irq, 'c');
    });
    expect(actionsOf(s.edge).map((a) => a.name)).toEqual(['b']);
    expect(s.edge.actionName).toBe('b');
    ran.length = 0;
    s.dev.pulse(1);
    s.engine.settle();
    expect(ran).toEqual(['b']);
    expect(s.edge.count).toBe(2);
  });

  it('delivers an edge that arrived while active (active-and-pending) after the deactivation', () => {
    const { s, runs, pulseDuring } = edgeSetup();
    pulseDuring();
    s.dev.pulse(1);
    s.engine.settle();
    expect(runs()).toBe(2);
    expect(s.gic.distributor.isPending(EDGE)).toBe(false);
    expect(s.gic.distributor.isActive(EDGE)).toBe(false);
  });

  it('replays an edge that fired while disabled once enable_irq runs (check_irq_resend → ISPENDR)', () => {
    const { s, runs } = edgeSetup();
    s.thread('disable', function* () {
      yield* disableIrq(s.genirq, s.edge.irq);
    });
    s.dev.pulse(1);
    s.engine.settle();
    expect(runs()).toBe(0);
    expect(s.edge.istate & IRQS_PENDING).toBe(IRQS_PENDING);
    expect(s.edge.masked).toBe(true);
    s.thread('enable', function* () {
      yield* enableIrq(s.genirq, s.edge.irq);
    });
    expect(runs()).toBe(1);
    expect(s.edge.istate & IRQS_PENDING).toBe(0);
  });
});

describe('host IRQ layer: disable depth, NOAUTOEN, request/free errors', () => {
  function noop(): TaskGen<IrqReturn> {
    return (function* (): TaskGen<IrqReturn> {
      return IRQ_HANDLED;
    })();
  }

  it('nests disables and reports an unbalanced enable as a model error', () => {
    const s = setup();
    s.thread('t', function* () {
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'x', null);
      yield* disableIrq(s.genirq, s.level.irq);
      yield* disableIrqNosync(s.genirq, s.level.irq);
    });
    expect(s.level.depth).toBe(2);
    s.thread('e1', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(s.level.depth).toBe(1);
    expect(s.level.disabled).toBe(true);
    s.thread('e2', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(s.level.depth).toBe(0);
    expect(s.level.disabled).toBe(false);
    expect(() =>
      s.thread('e3', function* () {
        yield* enableIrq(s.genirq, s.level.irq);
      }),
    ).toThrow(ModelError);
    expect(s.level.warnings).toEqual([`Unbalanced enable for IRQ ${s.level.irq}`]);
    expect(s.level.depth).toBe(0);
    expect(s.level.lock.owner).toBeNull();
  });

  it('collects the WARN instead of stopping when panic_on_warn is off', () => {
    const s = setup();
    setPanicOnWarn(false);
    s.thread('t', function* () {
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'x', null);
      yield* enableIrq(s.genirq, s.level.irq);
      yield* freeIrq(s.genirq, s.level.irq, 'not-the-dev-id');
    });
    expect(s.genirq.warnings()).toEqual([
      `Unbalanced enable for IRQ ${s.level.irq}`,
      `Trying to free already-free IRQ ${s.level.irq}`,
    ]);
  });

  it('leaves an IRQF_NO_AUTOEN line disabled (depth 1) until enable_irq', () => {
    const s = setup();
    let runs = 0;
    s.thread('t', function* () {
      yield* requestIrq(
        s.genirq,
        s.level.irq,
        function* (): TaskGen<IrqReturn> {
          runs++;
          s.dev.writeReg(0x4, 1);
          return IRQ_HANDLED;
        },
        IRQF_NO_AUTOEN,
        'x',
        null,
      );
    });
    expect(s.level.depth).toBe(1);
    s.dev.assert(0);
    s.engine.settle();
    expect(runs).toBe(0);
    s.thread('en', function* () {
      yield* enableIrq(s.genirq, s.level.irq);
    });
    expect(runs).toBe(1);
    expect(s.level.depth).toBe(0);
  });

  it('applies IRQF_NO_AUTOEN to that request only: the next request starts the line (__setup_irq)', () => {
    const s = setup();
    s.thread('off', function* () {
      yield* requestIrq(s.genirq, s.level.irq, noop, IRQF_NO_AUTOEN, 'x', null);
    });
    expect(s.level.depth).toBe(1);
    expect(s.level.settings & IRQ_NOAUTOEN).toBe(0);
    s.thread('again', function* () {
      yield* freeIrq(s.genirq, s.level.irq, null);
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'y', null);
    });
    expect(s.level.depth).toBe(0);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(true);
  });

  it('keeps the IRQ_NOAUTOEN status flag across free_irq (__free_irq does not clear it)', () => {
    const s = setup();
    s.thread('t', function* () {
      yield* irqModifyStatus(s.genirq, s.level.irq, 0, IRQ_NOAUTOEN);
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'x', null);
      yield* freeIrq(s.genirq, s.level.irq, null);
    });
    expect(s.level.settings & IRQ_NOAUTOEN).toBe(IRQ_NOAUTOEN);
    s.thread('t2', function* () {
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'y', null);
    });
    expect(s.level.depth).toBe(1);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(false);
  });

  it('refuses IRQF_SHARED with IRQF_NO_AUTOEN (EINVAL) and sharers disagreeing on IRQF_ONESHOT (EBUSY)', () => {
    const s = setup();
    const req = (flags: number, name: string) => () =>
      s.thread(name, function* () {
        yield* requestIrq(s.genirq, s.level.irq, noop, flags, name, name);
      });
    // request_threaded_irq
    expect(req(IRQF_SHARED | IRQF_NO_AUTOEN, 'a')).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    req(IRQF_SHARED, 'b')();
    // __setup_irq: every sharer must agree on IRQF_ONESHOT
    expect(req(IRQF_SHARED | IRQF_ONESHOT, 'c')).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    req(IRQF_SHARED, 'd')();
    expect(actionsOf(s.level).map((a) => a.name)).toEqual(['b', 'd']);
  });

  it('returns EBUSY for a second non-shared request and EINVAL for triggers a GIC lacks', () => {
    const s = setup();
    s.thread('t', function* () {
      yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'first', null);
    });
    const second = () =>
      s.thread('t2', function* () {
        yield* requestIrq(s.genirq, s.level.irq, noop, 0, 'second', null);
      });
    expect(second).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    const low = () =>
      s.thread('t3', function* () {
        yield* requestIrq(s.genirq, s.edge.irq, noop, 0x8 /* IRQF_TRIGGER_LOW */, 'low', null);
      });
    expect(low).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(actionsOf(s.level).map((a) => a.name)).toEqual(['first']);
    expect(s.level.requestMutex.owner).toBeNull();
  });
});

describe('host IRQ layer: determinism', () => {
  it('gives the same handler timeline for the same seed', () => {
    const runOnce = () => {
      const s = setup();
      const times: number[] = [];
      s.thread('t', function* () {
        yield* requestIrq(
          s.genirq,
          s.edge.irq,
          function* (): TaskGen<IrqReturn> {
            times.push(s.engine.now);
            yield op(C_WORK);
            return IRQ_HANDLED;
          },
          0,
          'e',
          null,
        );
      });
      for (let i = 0; i < 20; i++) s.at(1000 + i * 3333, `e${i}`, () => s.dev.pulse(1));
      s.engine.settle();
      return times;
    };
    const a = runOnce();
    expect(a).toHaveLength(20);
    expect(runOnce()).toEqual(a);
  });
});
