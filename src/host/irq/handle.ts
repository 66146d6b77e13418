/** kernel/irq/handle.c: running the actions of a descriptor with desc->lock dropped. */
import { defineCost } from '../../sim/costs.js';
import { spinLock } from '../../sim/locks.js';
import { op, type TaskGen } from '../../sim/task.js';
import type { Genirq } from './genirq.js';
import { IRQ_HANDLED, IRQ_NONE, IRQS_PENDING, type IrqDesc, type IrqReturn } from './irqDesc.js';

export const C_HANDLE_IRQ_EVENT = defineCost(
  'handle_irq_event',
  60,
  'genirq bookkeeping around the actions (kstat, trace, note_interrupt); estimate',
);

/** kernel/irq/handle.c handle_irq_event: called and returns with desc->lock held. */
export function* handleIrqEvent(g: Genirq, desc: IrqDesc): TaskGen<IrqReturn> {
  desc.istate &= ~IRQS_PENDING;
  desc.inprogress = true;
  desc.lock.unlock();
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
  if (ret === IRQ_NONE) desc.unhandled++;
  yield* spinLock(desc.lock);
  desc.inprogress = false;
  return ret;
}
