/**
 * Flow handlers and the irq_chip wrappers of kernel/irq/chip.c. The flow runs in hardirq context on the CPU
 * that acknowledged the interrupt, under desc->lock except while the actions run (handle.ts).
 */
import { spinLockContended, spinLockStep, spinLockTake } from '../../sim/locks.js';
import { current, op, type TaskGen } from '../../sim/task.js';
import type { Genirq } from './genirq.js';
import { C_HANDLE_IRQ_EVENT, handleIrqEventBegin } from './handle.js';
import {
  IRQ_HANDLED,
  IRQ_NONE,
  IRQS_ONESHOT,
  IRQS_PENDING,
  IRQS_REPLAY,
  IRQS_WAITING,
  type IrqDesc,
  type IrqReturn,
} from './irqDesc.js';
import { disableStuckIrq, noteInterrupt } from './spurious.js';

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
  // spin_lock(&desc->lock) and handle_irq_event are inlined (locks.ts, handle.ts): the action handler's steps are
  // the hottest of the host path, and each generator frame between them and the vector is resumed at every step.
  yield spinLockStep(desc.lock);
  if (!spinLockTake(desc.lock)) yield* spinLockContended(desc.lock);
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
  handleIrqEventBegin(desc);
  yield op(C_HANDLE_IRQ_EVENT, desc.oid);
  let ret: IrqReturn = IRQ_NONE;
  // __handle_irq_event_percpu: every action of a shared line runs.
  for (let i = 0; i < desc.actions.length; i++) {
    const action = desc.actions[i]!;
    g.trace?.handlerEntry(desc, action.name);
    const r = yield* action.handler(desc.irq, action.devId);
    g.trace?.handlerExit(desc, r);
    if (r === IRQ_HANDLED) ret = IRQ_HANDLED;
  }
  // note_interrupt, still outside desc->lock (handle_irq_event_percpu); a stuck line is disabled in a step of its own
  if (noteInterrupt(g.engine, desc, ret)) {
    yield op(C_HANDLE_IRQ_EVENT, desc.oid);
    disableStuckIrq(g, desc);
  }
  yield spinLockStep(desc.lock);
  if (!spinLockTake(desc.lock)) yield* spinLockContended(desc.lock);
  desc.inprogress = false;
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

/** generic_handle_domain_irq: the descriptor's flow (returned, not delegated to: one generator frame fewer). */
export function handleDomainIrq(g: Genirq, desc: IrqDesc): TaskGen<void> {
  return desc.flow === 'fasteoi' ? handleFasteoiIrq(g, desc) : handlePercpuDevidIrq(g, desc);
}
