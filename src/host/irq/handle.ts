/**
 * kernel/irq/handle.c: handle_irq_event, running the actions of a descriptor with desc->lock dropped. The flow
 * handler (chip.ts HandleFasteoiIrq) inlines it around its action loop, so that every step of an action handler
 * goes through one frame fewer; this is its part before the actions (note_interrupt, after them, is spurious.ts).
 */
import { defineCost } from '../../sim/costs.js';
import { IRQS_PENDING, type IrqDesc } from './irqDesc.js';

export const C_HANDLE_IRQ_EVENT = defineCost(
  'handle_irq_event',
  60,
  'genirq bookkeeping around the actions (kstat, trace, note_interrupt); estimate',
);

/** handle_irq_event up to the actions: called with desc->lock held, returns with it dropped. */
export function handleIrqEventBegin(desc: IrqDesc): void {
  desc.istate &= ~IRQS_PENDING;
  desc.inprogress = true;
  desc.lock.unlock();
}
