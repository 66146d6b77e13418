/**
 * Flow handlers and the irq_chip wrappers of kernel/irq/chip.c. The flow runs in hardirq context on the CPU
 * that acknowledged the interrupt, under desc->lock except while the actions run (handle.ts).
 */
import { spinLock } from '../../sim/locks.js';
import { current, type TaskGen } from '../../sim/task.js';
import type { Genirq } from './genirq.js';
import { handleIrqEvent } from './handle.js';
import { IRQS_ONESHOT, IRQS_PENDING, IRQS_REPLAY, IRQS_WAITING, type IrqDesc } from './irqDesc.js';

/** kernel/irq/chip.c mask_irq: only touches the chip when the line is not already masked. */
export function* maskIrq(desc: IrqDesc): TaskGen<void> {
  if (desc.masked) return;
  yield* desc.chip.irqMask(desc);
  desc.masked = true;
}

/** kernel/irq/chip.c unmask_irq. */
export function* unmaskIrq(desc: IrqDesc): TaskGen<void> {
  if (!desc.masked) return;
  yield* desc.chip.irqUnmask(desc);
  desc.masked = false;
}

/** kernel/irq/chip.c cond_unmask_eoi_irq: EOI, and unmask a oneshot line unless it was disabled meanwhile. */
function* condUnmaskEoiIrq(desc: IrqDesc): TaskGen<void> {
  if ((desc.istate & IRQS_ONESHOT) === 0) {
    yield* desc.chip.irqEoi(desc);
    return;
  }
  if (!desc.disabled && desc.masked) {
    yield* desc.chip.irqEoi(desc);
    yield* unmaskIrq(desc);
  } else {
    yield* desc.chip.irqEoi(desc);
  }
}

/**
 * kernel/irq/chip.c handle_fasteoi_irq. The lazy-disable rule lives here: a disabled (or action-less) IRQ that
 * still fires is marked IRQS_PENDING and masked at the chip, then EOI'd; enable_irq replays it later.
 */
export function* handleFasteoiIrq(g: Genirq, desc: IrqDesc): TaskGen<void> {
  yield* spinLock(desc.lock);
  // irq_can_handle_pm/irq_may_run: another CPU is still running the handler.
  if (desc.inprogress) {
    if (!desc.chip.eoiIfHandled) yield* desc.chip.irqEoi(desc);
    desc.lock.unlock();
    return;
  }
  desc.istate &= ~(IRQS_REPLAY | IRQS_WAITING);
  if (desc.actions.length === 0 || desc.disabled) {
    desc.istate |= IRQS_PENDING;
    yield* maskIrq(desc);
    if (!desc.chip.eoiIfHandled) yield* desc.chip.irqEoi(desc);
    desc.lock.unlock();
    return;
  }
  desc.kstat[current().cpu]!++;
  desc.count++;
  if ((desc.istate & IRQS_ONESHOT) !== 0) yield* maskIrq(desc);
  yield* handleIrqEvent(g, desc);
  yield* condUnmaskEoiIrq(desc);
  desc.lock.unlock();
}

/** kernel/irq/chip.c handle_percpu_devid_irq: PPIs; no desc lock, no disable depth, always EOI. */
export function* handlePercpuDevidIrq(g: Genirq, desc: IrqDesc): TaskGen<void> {
  desc.kstat[current().cpu]!++;
  desc.count++;
  const action = desc.actions[0];
  if (action !== undefined) {
    g.trace?.handlerEntry(desc, action.name);
    const ret = yield* action.handler(desc.irq, action.devId);
    g.trace?.handlerExit(desc, ret);
  } else {
    desc.warnings.push(`Spurious percpu IRQ ${desc.irq} on CPU ${current().cpu}`);
  }
  yield* desc.chip.irqEoi(desc);
}

/** generic_handle_domain_irq: run the descriptor's flow. */
export function* handleDomainIrq(g: Genirq, desc: IrqDesc): TaskGen<void> {
  if (desc.flow === 'fasteoi') yield* handleFasteoiIrq(g, desc);
  else yield* handlePercpuDevidIrq(g, desc);
}
