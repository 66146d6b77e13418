/**
 * Engine benchmarks: timer events per second, task steps per second, and the full host IRQ path (device edge →
 * GIC → gic_handle_irq → fasteoi flow → handler → DIR) in simulated IRQs per second. Each reports the heap growth
 * across the measured run, after a warm-up and a forced GC, as the check that the hot path allocates nothing.
 */
import { bootHostIrq } from '../src/host/irq/boot.js';
import { IRQ_HANDLED, type IrqReturn } from '../src/host/irq/irqDesc.js';
import { requestIrq } from '../src/host/irq/manage.js';
import { PlatformDevice } from '../src/hw/platformDevice.js';
import { defineCost } from '../src/sim/costs.js';
import { Engine, type TimerHandler } from '../src/sim/engine.js';
import { type Boundary, Frame } from '../src/sim/frame.js';
import { op, type TaskGen } from '../src/sim/task.js';

export interface BenchResult {
  name: string;
  unit: string;
  count: number;
  seconds: number;
  perSecond: number;
  heapGrowthBytes: number;
  bytesPerUnit: number;
}

const C_BENCH_STEP = defineCost('bench_step', 50, 'benchmark step');

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

/** Measure `run(n)` after a warm-up of the same size; heap growth is measured around the timed run. */
function measure(name: string, unit: string, n: number, setup: () => (n: number) => number): BenchResult {
  setup()(Math.min(n, 200_000));
  const run = setup();
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const count = run(n);
  const seconds = (performance.now() - t0) / 1000;
  const growth = process.memoryUsage().heapUsed - before;
  return {
    name,
    unit,
    count,
    seconds,
    perSecond: count / seconds,
    heapGrowthBytes: growth,
    bytesPerUnit: growth / count,
  };
}

/** 64 self-re-arming hardware timers: the heap and the timer pool, no CPU work. */
function timerEvents(n: number): BenchResult {
  return measure('timer events', 'events', n, () => {
    const engine = new Engine({ cpus: 1, seed: 1 });
    let fired = 0;
    const handlers: TimerHandler[] = [];
    for (let i = 0; i < 64; i++) {
      const h: TimerHandler = {
        name: `t${i}`,
        fire: () => {
          fired++;
          if (fired < n) engine.after(97 + i, h);
        },
      };
      handlers.push(h);
    }
    return () => {
      for (const h of handlers) engine.at(h.name.length, h);
      engine.settle(n * 2 + 1000);
      return engine.steps;
    };
  });
}

/** 4 CPUs each running one thread that does op() steps: generator resumes through the engine. */
function taskSteps(n: number): BenchResult {
  return measure('task steps', 'steps', n, () => {
    const engine = new Engine({ cpus: 4, seed: 1 });
    const per = Math.ceil(n / 4);
    for (let c = 0; c < 4; c++) {
      engine.spawn(
        `worker/${c}`,
        c,
        (function* (): TaskGen<void> {
          for (let i = 0; i < per; i++) yield op(C_BENCH_STEP);
        })(),
      );
    }
    return () => {
      engine.settle(n * 2 + 1000);
      return engine.steps;
    };
  });
}

/** A frame that calls a chain of `depth - 1` more and, innermost, yields `per` plain steps. */
class BenchFrame extends Frame {
  private i = 0;

  constructor(
    private readonly depth: number,
    private readonly per: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.depth > 1) {
      if (this.pc === 1) return this.return_();
      this.pc = 1;
      return this.call(new BenchFrame(this.depth - 1, this.per));
    }
    if (this.i === this.per) return this.return_();
    this.i++;
    return this.yield_(op(C_BENCH_STEP));
  }
}

/**
 * One CPU, one thread whose body is a chain of `depth` frames, the innermost yielding plain steps: what the engine and
 * the frame machinery cost per step with no model code (a forwarded IRQ is 38 such steps, its chains 1–4 deep).
 */
function frameSteps(n: number, depth: number): BenchResult {
  return measure(`frame steps (chain of ${depth})`, 'steps', n, () => {
    const engine = new Engine({ cpus: 1, seed: 1 });
    engine.spawn('worker', 0, new BenchFrame(depth, n));
    return () => {
      engine.settle(n * 2 + 1000);
      return engine.steps;
    };
  });
}

/** Edge IRQs through the whole host path, one every 5000 cycles. */
function hostIrqPath(n: number): BenchResult {
  return measure('host IRQ path (edge SPI → handler → DIR)', 'irqs', n, () => {
    const engine = new Engine({ cpus: 2, seed: 1 });
    const hi = bootHostIrq(engine);
    const dev = new PlatformDevice('bench', [{ intid: 40, trigger: 'edge' }], hi.gic.distributor);
    const desc = hi.genirq.createMapping(40, 'edge');
    hi.gic.distributor.setConfig(40, 'edge');
    let handled = 0;
    engine.spawn(
      'setup',
      1,
      requestIrq(
        hi.genirq,
        desc.irq,
        function* (): TaskGen<IrqReturn> {
          handled++;
          yield op(C_BENCH_STEP);
          return IRQ_HANDLED;
        },
        0,
        'bench',
        null,
      ),
    );
    engine.settle();
    let sent = 0;
    const pulse: TimerHandler = {
      name: 'pulse',
      fire: () => {
        dev.pulse(0);
        if (++sent < n) engine.after(5000, pulse);
      },
    };
    return () => {
      engine.after(5000, pulse);
      engine.settle(n * 100 + 1000);
      return handled;
    };
  });
}

export function engineBenchmarks(scale = 1): BenchResult[] {
  return [
    timerEvents(2_000_000 * scale),
    taskSteps(2_000_000 * scale),
    frameSteps(2_000_000 * scale, 1),
    frameSteps(2_000_000 * scale, 3),
    hostIrqPath(200_000 * scale),
  ];
}
