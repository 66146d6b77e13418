/**
 * Flow handlers and the irq_chip wrappers of kernel/irq/chip.c, as frames (sim/frame.ts). The flow runs in hardirq
 * context on the CPU that acknowledged the interrupt, under desc->lock except while the actions run (handle.ts).
 */
import { type Boundary, Frame } from '../../sim/frame.js';
import { type Spinlock, spinLockRetry, spinLockStep, spinLockTake } from '../../sim/locks.js';
import { current, op } from '../../sim/task.js';
import type { Genirq } from './genirq.js';
import { C_HANDLE_IRQ_EVENT, handleIrqEventBegin } from './handle.js';
import {
  IRQ_HANDLED,
  IRQ_NONE,
  IRQS_ONESHOT,
  IRQS_PENDING,
  IRQS_REPLAY,
  IRQS_WAITING,
  type IrqAction,
  type IrqDesc,
  type IrqReturn,
} from './irqDesc.js';
import { disableStuckIrq, noteInterrupt } from './spurious.js';

const PC_CALL = 0;
const PC_DONE = 1;

/** kernel/irq/chip.c mask_irq: only touches the chip when the line is not already masked. */
class MaskIrq extends Frame {
  constructor(private readonly desc: IrqDesc) {
    super();
  }

  protected step(): Boundary {
    const desc = this.desc;
    if (this.pc === PC_CALL) {
      if (desc.masked) return this.return_(undefined);
      this.pc = PC_DONE;
      return this.call(desc.chip.irqMask(desc));
    }
    desc.masked = true; // irq_state_set_masked
    return this.return_(undefined);
  }
}

export function maskIrq(desc: IrqDesc): Frame {
  return new MaskIrq(desc);
}

/** kernel/irq/chip.c unmask_irq. */
class UnmaskIrq extends Frame {
  constructor(private readonly desc: IrqDesc) {
    super();
  }

  protected step(): Boundary {
    const desc = this.desc;
    if (this.pc === PC_CALL) {
      if (!desc.masked) return this.return_(undefined);
      this.pc = PC_DONE;
      return this.call(desc.chip.irqUnmask(desc));
    }
    desc.masked = false; // irq_state_clr_masked
    return this.return_(undefined);
  }
}

export function unmaskIrq(desc: IrqDesc): Frame {
  return new UnmaskIrq(desc);
}

// handle_fasteoi_irq's resume points, named after the statement each resumes at
const FE_LOCK = 0; // raw_spin_lock(&desc->lock)
const FE_LOCK_SPIN = 1; // spinning on desc->lock
const FE_LOCKED = 2; // lock held: irq_can_handle / the disabled test
const FE_BUSY_EOI = 3; // the busy path's irq_eoi done: unlock
const FE_DISABLED_MASKED = 4; // the disabled path's mask_irq done: EOI
const FE_DISABLED_EOI = 5; // the disabled path's irq_eoi done: unlock
const FE_ONESHOT_MASKED = 6; // mask_irq of a oneshot line done: handle_irq_event
const FE_EVENT = 7; // handle_irq_event's step: run the actions
const FE_ACTION = 8; // the next action of __handle_irq_event_percpu
const FE_ACTION_RET = 9; // action->handler returned
const FE_STUCK = 10; // note_interrupt found the line stuck: disable it
const FE_RELOCK = 11; // raw_spin_lock(&desc->lock) after the actions
const FE_RELOCK_SPIN = 12; // spinning on it
const FE_COND_EOI = 13; // cond_unmask_eoi_irq's irq_eoi done: unmask a oneshot line
const FE_COND_UNMASKED = 14; // its unmask_irq done: unlock

/**
 * kernel/irq/chip.c handle_fasteoi_irq. The lazy-disable rule lives here: a disabled (or action-less) IRQ that
 * still fires is marked IRQS_PENDING and masked at the chip, then EOI'd; enable_irq replays it later.
 * spin_lock(&desc->lock), handle_irq_event and cond_unmask_eoi_irq are inlined (locks.ts, handle.ts): the action
 * handler's steps are the hottest of the host path.
 */
class HandleFasteoiIrq extends Frame {
  private ret: IrqReturn = IRQ_NONE;
  /** The action running (for_each_action_of_desc's cursor). */
  private action: IrqAction | null = null;
  /** Spinning on desc->lock (the acquisition step found it held). */
  private spinning = false;
  /** cond_unmask_eoi_irq: unmask a oneshot line after the EOI — decided before the EOI, as the kernel tests it. */
  private unmask = false;

  constructor(
    private readonly g: Genirq,
    private readonly desc: IrqDesc,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    const lock = desc.lock;
    for (;;) {
      switch (this.pc) {
        case FE_LOCK:
          this.pc = FE_LOCK_SPIN;
          return this.yield_(spinLockStep(lock));
        case FE_LOCK_SPIN:
          if (!this.take(lock)) return this.yield_(lock.spinOn(current()));
          this.pc = FE_LOCKED;
          continue;
        case FE_LOCKED:
          // irq_can_handle_pm/irq_may_run: another CPU is still running the handler.
          if (desc.inprogress) {
            if (desc.chip.eoiIfHandled) {
              lock.unlock();
              return this.return_(undefined);
            }
            this.pc = FE_BUSY_EOI;
            return this.call(desc.chip.irqEoi(desc));
          }
          desc.istate &= ~(IRQS_REPLAY | IRQS_WAITING);
          if (desc.action === null || desc.disabled) {
            desc.istate |= IRQS_PENDING;
            this.pc = FE_DISABLED_MASKED;
            return this.call(maskIrq(desc));
          }
          desc.countRun(current().cpu);
          this.pc = FE_ONESHOT_MASKED;
          if ((desc.istate & IRQS_ONESHOT) !== 0) return this.call(maskIrq(desc));
          continue;
        case FE_BUSY_EOI:
        case FE_DISABLED_EOI:
          lock.unlock();
          return this.return_(undefined);
        case FE_DISABLED_MASKED:
          if (desc.chip.eoiIfHandled) {
            lock.unlock();
            return this.return_(undefined);
          }
          this.pc = FE_DISABLED_EOI;
          return this.call(desc.chip.irqEoi(desc));
        case FE_ONESHOT_MASKED:
          handleIrqEventBegin(desc);
          this.pc = FE_EVENT;
          return this.yield_(op(C_HANDLE_IRQ_EVENT, desc.oid));
        case FE_EVENT:
          this.ret = IRQ_NONE;
          this.action = desc.action;
          this.pc = FE_ACTION;
          continue;
        case FE_ACTION: {
          // __handle_irq_event_percpu: every action of a shared line runs, along the action->next chain.
          const action = this.action;
          if (action !== null) {
            this.g.trace?.handlerEntry(desc, action.name);
            this.pc = FE_ACTION_RET;
            const h = action.handler(desc.irq, action.devId);
            if (typeof h !== 'number') return this.call(h);
            sent = h;
            continue;
          }
          // note_interrupt, still outside desc->lock (handle_irq_event_percpu); a stuck line is disabled in a step of
          // its own
          if (noteInterrupt(this.g.engine, desc, this.ret)) {
            this.pc = FE_STUCK;
            return this.yield_(op(C_HANDLE_IRQ_EVENT, desc.oid));
          }
          this.pc = FE_RELOCK;
          continue;
        }
        case FE_ACTION_RET: {
          const r = sent as IrqReturn;
          this.g.trace?.handlerExit(desc, r);
          if (r === IRQ_HANDLED) this.ret = IRQ_HANDLED;
          this.action = this.action!.next;
          this.pc = FE_ACTION;
          continue;
        }
        case FE_STUCK:
          disableStuckIrq(this.g, desc);
          this.pc = FE_RELOCK;
          continue;
        case FE_RELOCK:
          this.pc = FE_RELOCK_SPIN;
          return this.yield_(spinLockStep(lock));
        case FE_RELOCK_SPIN:
          if (!this.take(lock)) return this.yield_(lock.spinOn(current()));
          desc.inprogress = false;
          // cond_unmask_eoi_irq
          this.unmask = (desc.istate & IRQS_ONESHOT) !== 0 && !desc.disabled && desc.masked;
          this.pc = FE_COND_EOI;
          return this.call(desc.chip.irqEoi(desc));
        case FE_COND_EOI:
          this.pc = FE_COND_UNMASKED;
          if (this.unmask) return this.call(unmaskIrq(desc));
          continue;
        default: // FE_COND_UNMASKED
          lock.unlock();
          return this.return_(undefined);
      }
    }
  }

  /** The acquisition step's take (with lockdep), or after a spin a retry; false: spin (again). */
  private take(lock: Spinlock): boolean {
    this.spinning = !(this.spinning ? spinLockRetry(lock) : spinLockTake(lock));
    return !this.spinning;
  }
}

const PD_ACTION_RET = 1;
const PD_EOI = 2;

/** kernel/irq/chip.c handle_percpu_devid_irq: PPIs; no desc lock, no disable depth, always EOI. */
class HandlePercpuDevidIrq extends Frame {
  constructor(
    private readonly g: Genirq,
    private readonly desc: IrqDesc,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    switch (this.pc) {
      case 0: {
        desc.countRun(current().cpu);
        const action = desc.action;
        if (action !== null) {
          this.g.trace?.handlerEntry(desc, action.name);
          const h = action.handler(desc.irq, action.devId);
          if (typeof h !== 'number') {
            this.pc = PD_ACTION_RET;
            return this.call(h);
          }
          this.g.trace?.handlerExit(desc, h);
          this.pc = PD_EOI;
          return this.call(desc.chip.irqEoi(desc));
        }
        desc.warnings.push(`Spurious percpu IRQ ${desc.irq} on CPU ${current().cpu}`);
        this.pc = PD_EOI;
        return this.call(desc.chip.irqEoi(desc));
      }
      case PD_ACTION_RET:
        this.g.trace?.handlerExit(desc, sent as IrqReturn);
        this.pc = PD_EOI;
        return this.call(desc.chip.irqEoi(desc));
      default:
        return this.return_(undefined);
    }
  }
}

/** generic_handle_domain_irq: the descriptor's flow handler. */
export function handleDomainIrq(g: Genirq, desc: IrqDesc): Frame {
  return desc.flow === 'fasteoi' ? new HandleFasteoiIrq(g, desc) : new HandlePercpuDevidIrq(g, desc);
}
