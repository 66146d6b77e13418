/**
 * kernel/irq/spurious.c note_interrupt: the stuck-line detector every flow runs after the actions
 * (handle_irq_event_percpu, desc->lock dropped, IRQD_IRQ_INPROGRESS set). A line on which more than 99,900 of
 * 100,000 counted runs found no action to claim it is reported ("irq N: nobody cared") and disabled for good,
 * marked IRQS_SPURIOUS_DISABLED; only a new action installed on it (__setup_irq) gives it another chance.
 *
 * Modelled: the irqs_unhandled / irq_count window (irq_count only counts while irqs_unhandled is non-zero, as since
 * Linux 5.13), the HZ/10 aging of irqs_unhandled on virtual-time jiffies, the report and the lazy irq_disable. Not
 * modelled: irqfixup/irqpoll (off by default) and the poll_spurious_irqs timer, which re-polls the handlers of a
 * spurious-disabled line only when it is IRQF_SHARED (try_one_irq) — no model line is shared.
 */
import type { Engine } from '../../sim/engine.js';
import type { Genirq } from './genirq.js';
import { IRQ_NONE, IRQS_SPURIOUS_DISABLED, type IrqDesc, type IrqReturn } from './irqDesc.js';

/** CONFIG_HZ of the model host: the arm64 default (kernel/Kconfig.hz, HZ_250). */
export const HZ = 250;
/** The aging interval of irqs_unhandled, in jiffies (HZ/10: 100 ms). */
const UNHANDLED_AGING = Math.trunc(HZ / 10);
/** The detector's window and threshold. */
const IRQ_COUNT_WINDOW = 100_000;
const STUCK_THRESHOLD = 99_900;

/**
 * jiffies at the engine's time. Linux starts jiffies at INITIAL_JIFFIES (5 minutes before a wrap), the model at 0;
 * note_interrupt cannot tell them apart: its first unhandled run sets irqs_unhandled to 1 either way.
 */
export function jiffies(engine: Engine): number {
  return Math.floor((engine.now * HZ) / engine.clock.hz);
}

/**
 * note_interrupt's accounting of one run with result `ret`. True when this run closed a window with the line stuck:
 * the caller then disables it (disableStuckIrq) in a step of its own. Allocation-free: it runs for every IRQ.
 */
export function noteInterrupt(engine: Engine, desc: IrqDesc, ret: IrqReturn): boolean {
  if (ret === IRQ_NONE) {
    const now = jiffies(engine);
    // time_after(jiffies, last_unhandled + HZ/10): an odd unhandled run long after the last one starts afresh
    desc.irqsUnhandled = now > desc.lastUnhandled + UNHANDLED_AGING ? 1 : desc.irqsUnhandled + 1;
    desc.lastUnhandled = now;
  }
  if (desc.irqsUnhandled === 0) return false;
  if (++desc.irqCount < IRQ_COUNT_WINDOW) return false;
  desc.irqCount = 0;
  const stuck = desc.irqsUnhandled > STUCK_THRESHOLD;
  desc.irqsUnhandled = 0;
  return stuck;
}

/**
 * The end of note_interrupt for a stuck line: __report_bad_irq's lines into the kernel log, then depth++ and
 * irq_disable. The GIC has no irq_disable callback and the line is not IRQ_DISABLE_UNLAZY, so the disable is lazy:
 * the flow masks the line the next time it fires.
 */
export function disableStuckIrq(g: Genirq, desc: IrqDesc): void {
  g.log.push(`irq ${desc.irq}: nobody cared (try booting with the "irqpoll" option)`);
  g.log.push('handlers:');
  // the kernel prints each handler's address and symbol; the model names the action
  for (let a = desc.action; a !== null; a = a.next) g.log.push(`[<${a.name}>]`);
  g.log.push(`Disabling IRQ #${desc.irq}`);
  desc.istate |= IRQS_SPURIOUS_DISABLED;
  desc.depth++;
  desc.disabled = true;
}
