/**
 * kernel/irq/spurious.c note_interrupt: a line nobody claims is disabled after 99,900 unhandled of 100,000 runs,
 * and an odd unhandled run is aged out after HZ/10.
 */
import { describe, expect, it } from 'vitest';
import { PlatformDevice } from '../../hw/platformDevice.js';
import { Engine } from '../../sim/engine.js';
import type { TaskGen } from '../../sim/task.js';
import { bootHostIrq } from './boot.js';
import { IRQ_HANDLED, IRQ_NONE, IRQS_PENDING, IRQS_SPURIOUS_DISABLED, type IrqReturn } from './irqDesc.js';
import { enableIrq, freeIrq, requestIrq } from './manage.js';
import { HZ, jiffies } from './spurious.js';

const LEVEL = 80;
const EDGE = 81;

function setup() {
  const engine = new Engine({ cpus: 1, seed: 3 });
  const hi = bootHostIrq(engine);
  const dev = new PlatformDevice(
    'fff52000.uart',
    [
      { intid: LEVEL, trigger: 'level' },
      { intid: EDGE, trigger: 'edge' },
    ],
    hi.gic.distributor,
  );
  const desc = hi.genirq.createMapping(LEVEL, 'level');
  const thread = (body: () => TaskGen<void>) => {
    const t = engine.spawn('t', 0, body());
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
  };
  /** Request the line with a handler whose answer for its n-th run (1-based) `answer` decides. */
  const request = (answer: (n: number) => IrqReturn, name = 'uart') => {
    let n = 0;
    thread(function* () {
      yield* requestIrq(
        hi.genirq,
        desc.irq,
        function* () {
          return answer(++n);
        },
        0,
        name,
        name,
      );
    });
    return () => n;
  };
  return { engine, ...hi, dev, desc, thread, request };
}

describe('note_interrupt (kernel/irq/spurious.c)', () => {
  it('disables a level line stuck high with nobody claiming it after 100,000 runs, and logs "nobody cared"', () => {
    const s = setup();
    const runs = s.request(() => IRQ_NONE);
    s.dev.assert(0); // the device holds its line; the handler never silences it
    s.engine.settle(2_000_000);
    expect(runs()).toBe(100_000);
    expect(s.desc.istate & IRQS_SPURIOUS_DISABLED).toBe(IRQS_SPURIOUS_DISABLED);
    expect(s.desc.depth).toBe(1);
    // irq_disable is lazy: the next delivery found the line disabled and masked it
    expect(s.desc.masked).toBe(true);
    expect(s.desc.istate & IRQS_PENDING).toBe(IRQS_PENDING);
    expect(s.gic.distributor.isEnabled(LEVEL)).toBe(false);
    expect(s.genirq.log).toEqual([
      `irq ${s.desc.irq}: nobody cared (try booting with the "irqpoll" option)`,
      'handlers:',
      '[<uart>]',
      `Disabling IRQ #${s.desc.irq}`,
    ]);
    // the disable is a depth of its own, which enable_irq undoes; the mark stays until a new action is installed
    s.dev.writeReg(0x4, 1);
    s.thread(function* () {
      yield* enableIrq(s.genirq, s.desc.irq);
    });
    expect(s.desc.depth).toBe(0);
    expect(s.desc.masked).toBe(false);
    expect(s.desc.istate & IRQS_SPURIOUS_DISABLED).toBe(IRQS_SPURIOUS_DISABLED);
    expect(runs()).toBe(100_000);
  });

  it('keeps a line on which 100 of 100,000 runs were handled (the detector wants more than 99,900 unhandled)', () => {
    const s = setup();
    // 100 handled runs in the first window, after its first unhandled one; none after
    const runs = s.request((n) => (n <= 100_000 && n % 1000 === 500 ? IRQ_HANDLED : IRQ_NONE));
    s.dev.assert(0);
    s.engine.runUntil(() => runs() === 100_001, 'the first run of the second window');
    expect(s.desc.istate & IRQS_SPURIOUS_DISABLED).toBe(0);
    expect(s.desc.depth).toBe(0);
    expect(s.genirq.log).toEqual([]);
    // the window closed with its counters reset: the run after it opened the next one
    expect(s.desc.irqCount).toBe(1);
    expect(s.desc.irqsUnhandled).toBe(1);
  });

  it('ages irqs_unhandled back to 1 after HZ/10 without an unhandled run', () => {
    const s = setup();
    const edge = s.genirq.createMapping(EDGE, 'edge');
    s.gic.distributor.setConfig(EDGE, 'edge');
    s.thread(function* () {
      yield* requestIrq(
        s.genirq,
        edge.irq,
        function* (): TaskGen<IrqReturn> {
          return IRQ_NONE;
        },
        0,
        'pulse',
        null,
      );
    });
    /** One pulse, one unhandled run, at the start of jiffy `j` (plus the delivery's few cycles). */
    const tick = s.engine.clock.hz / HZ;
    const pulseAt = (j: number) => {
      s.engine.run(j * tick - s.engine.now);
      s.dev.assert(1);
      s.engine.settle();
      expect(jiffies(s.engine)).toBe(j);
    };
    pulseAt(1);
    pulseAt(2);
    pulseAt(3);
    expect(edge.irqsUnhandled).toBe(3);
    expect(edge.lastUnhandled).toBe(3);
    // time_after(jiffies, last_unhandled + HZ/10) is strict: HZ/10 = 25 jiffies later still counts on
    pulseAt(3 + 25);
    expect(edge.irqsUnhandled).toBe(4);
    pulseAt(28 + 26);
    expect(edge.irqsUnhandled).toBe(1);
    expect(edge.irqCount).toBe(5);
  });

  it('gives a new handler a fresh count and re-enables a spurious-disabled line for a shared action (__setup_irq)', () => {
    const s = setup();
    let n = 0;
    const handler = function* (): TaskGen<IrqReturn> {
      n++;
      return IRQ_NONE;
    };
    s.thread(function* () {
      yield* requestIrq(s.genirq, s.desc.irq, handler, 0x80, 'a', 'a');
    });
    s.dev.assert(0);
    s.engine.settle(2_000_000);
    expect(s.desc.istate & IRQS_SPURIOUS_DISABLED).toBe(IRQS_SPURIOUS_DISABLED);
    expect(s.desc.depth).toBe(1);
    s.dev.writeReg(0x4, 1);
    s.thread(function* () {
      yield* requestIrq(
        s.genirq,
        s.desc.irq,
        function* (): TaskGen<IrqReturn> {
          return IRQ_HANDLED;
        },
        0x80,
        'b',
        'b',
      );
    });
    expect(s.desc.istate & IRQS_SPURIOUS_DISABLED).toBe(0);
    expect(s.desc.depth).toBe(0);
    expect(s.desc.masked).toBe(false);
    expect(s.desc.irqCount).toBe(0);
    expect(s.desc.irqsUnhandled).toBe(0);
    s.thread(function* () {
      yield* freeIrq(s.genirq, s.desc.irq, 'b');
      yield* freeIrq(s.genirq, s.desc.irq, 'a');
    });
    expect(n).toBe(100_000);
  });
});
