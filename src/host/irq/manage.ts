/**
 * The IRQ management API of kernel/irq/manage.c and the startup/shutdown helpers of kernel/irq/chip.c, as model
 * code calls them: generators (they take locks and touch chip registers), throwing ErrnoError where the kernel
 * returns -errno. A kernel WARN is recorded on the descriptor and, with panicOnWarn (the default), stops the run.
 */
import { errno } from '../../abi/errno.js';
import { defineCost } from '../../sim/costs.js';
import { ModelError } from '../../sim/errors.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { mutexLock, spinLockIrqsave, spinUnlockIrqrestore } from '../../sim/locks.js';
import { cpuRelax, type TaskGen } from '../../sim/task.js';
import { maskIrq, unmaskIrq } from './chip.js';
import type { Genirq } from './genirq.js';
import {
  IRQ_NOAUTOEN,
  IRQF_NO_AUTOEN,
  IRQF_ONESHOT,
  IRQF_SHARED,
  IRQF_TRIGGER_FALLING,
  IRQF_TRIGGER_HIGH,
  IRQF_TRIGGER_LOW,
  IRQF_TRIGGER_RISING,
  IRQS_ONESHOT,
  IRQS_PENDING,
  IRQS_REPLAY,
  IRQS_SPURIOUS_DISABLED,
  IRQS_WAITING,
  type IrqAction,
  type IrqchipState,
  type IrqDesc,
  type IrqHandler,
  type IrqTrigger,
} from './irqDesc.js';

export const C_CPU_RELAX = defineCost('cpu_relax', 20, 'one iteration of a busy-wait loop (yield/isb); estimate');

const IRQF_TRIGGER_MASK = IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING | IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW;

let panicOnWarn = true;

/** The panic_on_warn sysctl of the model: when false, WARNs are only recorded (the checker collects them). */
export function setPanicOnWarn(on: boolean): void {
  panicOnWarn = on;
}

function warn(desc: IrqDesc, message: string): void {
  desc.warnings.push(message);
  if (panicOnWarn) throw new ModelError(`WARNING: ${message}`);
}

function lookup(g: Genirq, irq: number, who: string): IrqDesc {
  const d = g.domain.irqToDesc(irq);
  if (d === undefined) throw errno('EINVAL', `${who}: Linux IRQ ${irq} has no descriptor`);
  return d;
}

/** kernel/irq/chip.c irq_enable: clear the disabled state and unmask (the GIC has no irq_enable callback). */
function* irqEnable(desc: IrqDesc): TaskGen<void> {
  desc.disabled = false;
  yield* unmaskIrq(desc);
}

/** kernel/irq/resend.c check_irq_resend: level lines are not replayed (the line itself re-asserts); edges are. */
function* checkIrqResend(desc: IrqDesc): TaskGen<void> {
  if (desc.trigger === 'level') {
    desc.istate &= ~IRQS_PENDING;
    return;
  }
  if ((desc.istate & IRQS_REPLAY) !== 0) return;
  if ((desc.istate & IRQS_PENDING) === 0) return;
  desc.istate &= ~IRQS_PENDING;
  // try_retrigger: the GIC re-pends the INTID in the distributor (gic_retrigger); no software resend needed.
  if (yield* desc.chip.irqRetrigger(desc)) desc.istate |= IRQS_REPLAY;
}

/** kernel/irq/chip.c irq_startup with IRQ_RESEND. */
function* irqStartup(desc: IrqDesc): TaskGen<void> {
  desc.depth = 0;
  yield* irqEnable(desc);
  desc.started = true;
  yield* checkIrqResend(desc);
}

/** kernel/irq/chip.c irq_shutdown: depth back to 1, disabled and masked (for a forwarded IRQ, also deactivated). */
function* irqShutdown(desc: IrqDesc): TaskGen<void> {
  if (!desc.started) return;
  desc.depth = 1;
  desc.disabled = true;
  yield* maskIrq(desc);
  desc.started = false;
}

/** kernel/irq/manage.c __disable_irq: only the first disable changes the line (lazily: no mask yet). */
function disableDesc(desc: IrqDesc): void {
  if (desc.depth++ === 0) desc.disabled = true;
}

function triggerFromFlags(flags: number): IrqTrigger | null {
  const t = flags & IRQF_TRIGGER_MASK;
  if (t === 0) return null;
  if (t === IRQF_TRIGGER_HIGH) return 'level';
  if (t === IRQF_TRIGGER_RISING) return 'edge';
  // drivers/irqchip/irq-gic.c gic_set_type: only active-high level and rising edge exist on a GIC.
  throw errno(
    'EINVAL',
    `the GIC supports only IRQF_TRIGGER_HIGH or IRQF_TRIGGER_RISING, got flags 0x${t.toString(16)}`,
  );
}

/**
 * request_irq → request_threaded_irq → __setup_irq. IRQF_NO_AUTOEN leaves only this request's line off (depth 1);
 * the IRQ_NOAUTOEN status flag (irq_set_status_flags) is the descriptor's and stays until cleared.
 */
export function* requestIrq(
  g: Genirq,
  irq: number,
  handler: IrqHandler,
  flags: number,
  name: string,
  devId: unknown,
): TaskGen<void> {
  // request_threaded_irq: a shared IRQ needs a dev_id to free it by, and cannot be requested off (its sharers could
  // wait forever for an IRQ nobody enables)
  if ((flags & IRQF_SHARED) !== 0 && devId == null) {
    throw errno('EINVAL', `request_irq(${irq}): IRQF_SHARED needs a dev_id`);
  }
  if ((flags & IRQF_SHARED) !== 0 && (flags & IRQF_NO_AUTOEN) !== 0) {
    throw errno('EINVAL', `request_irq(${irq}): IRQF_SHARED cannot be combined with IRQF_NO_AUTOEN`);
  }
  const desc = lookup(g, irq, 'request_irq');
  if (desc.flow === 'percpu_devid') {
    throw errno('EINVAL', `request_irq(${irq}): INTID ${desc.hwirq} is per-CPU; use request_percpu_irq`);
  }
  const trigger = triggerFromFlags(flags);
  yield* mutexLock(desc.requestMutex);
  try {
    const saved = yield* spinLockIrqsave(desc.lock);
    try {
      const old = desc.actions[0];
      if (old !== undefined) {
        // both IRQF_SHARED, the same trigger type, and agreeing on IRQF_ONESHOT, or it is a mismatch
        const shared = (old.flags & flags & IRQF_SHARED) !== 0;
        const why = !shared
          ? `already requested by '${old.name}' without IRQF_SHARED`
          : trigger !== null && trigger !== desc.trigger
            ? 'trigger type mismatch'
            : `IRQF_ONESHOT mismatch with '${old.name}'`;
        if (!shared || (trigger !== null && trigger !== desc.trigger) || ((old.flags ^ flags) & IRQF_ONESHOT) !== 0) {
          throw errno('EBUSY', `request_irq(${irq}, '${name}'): ${why}`);
        }
      }
      if (old === undefined && trigger !== null && trigger !== desc.trigger) {
        if (!(yield* desc.chip.irqSetType(desc, trigger))) {
          throw errno('EINVAL', `request_irq(${irq}): the chip refused trigger ${trigger}`);
        }
        desc.trigger = trigger;
      }
      const action: IrqAction = { handler, devId, name, flags };
      desc.actions.push(action);
      if (old === undefined) {
        desc.istate &= ~(IRQS_SPURIOUS_DISABLED | IRQS_ONESHOT | IRQS_WAITING);
        desc.inprogress = false;
        if ((flags & IRQF_ONESHOT) !== 0) desc.istate |= IRQS_ONESHOT;
        if ((flags & IRQF_NO_AUTOEN) === 0 && (desc.settings & IRQ_NOAUTOEN) === 0) {
          yield* irqStartup(desc);
        } else {
          if ((flags & IRQF_SHARED) !== 0) warn(desc, `IRQ ${irq}: shared request '${name}' on an IRQ_NOAUTOEN line`);
          desc.depth = 1; // the driver enables it later with enable_irq
        }
      }
      // a new handler resets the stuck-line detector, and a line note_interrupt disabled gets another chance
      desc.irqCount = 0;
      desc.irqsUnhandled = 0;
      if (old !== undefined && (desc.istate & IRQS_SPURIOUS_DISABLED) !== 0) {
        desc.istate &= ~IRQS_SPURIOUS_DISABLED;
        yield* enableDesc(desc);
      }
    } finally {
      spinUnlockIrqrestore(desc.lock, saved);
    }
  } finally {
    desc.requestMutex.unlock();
  }
}

/**
 * free_irq → __free_irq. Shutting the last action down masks the line (gic_eoimode1_mask_irq also deactivates a
 * forwarded INTID), then waits until no handler runs and the chip no longer holds the INTID active.
 */
export function* freeIrq(g: Genirq, irq: number, devId: unknown): TaskGen<void> {
  const desc = lookup(g, irq, 'free_irq');
  yield* mutexLock(desc.requestMutex);
  try {
    const saved = yield* spinLockIrqsave(desc.lock);
    const i = desc.actions.findIndex((a) => a.devId === devId);
    if (i < 0) {
      spinUnlockIrqrestore(desc.lock, saved);
      warn(desc, `Trying to free already-free IRQ ${irq}`);
      return;
    }
    desc.actions.splice(i, 1);
    try {
      // the IRQ_NOAUTOEN setting survives: it is the descriptor's, not the action's
      if (desc.actions.length === 0) yield* irqShutdown(desc);
    } finally {
      spinUnlockIrqrestore(desc.lock, saved);
    }
    // kernel/irq/manage.c __free_irq: __synchronize_hardirq(desc, true) — the chip must not hold it active either.
    yield* synchronizeHardirq(desc, true);
  } finally {
    desc.requestMutex.unlock();
  }
}

/** irq_set_status_flags / irq_clear_status_flags (IRQ_NOAUTOEN is the one the model uses). */
export function* irqModifyStatus(g: Genirq, irq: number, clear: number, set: number): TaskGen<void> {
  const desc = lookup(g, irq, 'irq_modify_status');
  const saved = yield* spinLockIrqsave(desc.lock);
  desc.settings = (desc.settings & ~clear) | set;
  spinUnlockIrqrestore(desc.lock, saved);
}

/** disable_irq_nosync: depth++; callable from any context, including the IRQ's own handler. */
export function* disableIrqNosync(g: Genirq, irq: number): TaskGen<void> {
  const desc = lookup(g, irq, 'disable_irq_nosync');
  const saved = yield* spinLockIrqsave(desc.lock);
  disableDesc(desc);
  spinUnlockIrqrestore(desc.lock, saved);
}

/** disable_irq: disable_irq_nosync, then wait for running handlers (and, via synchronize_irq, the chip). */
export function* disableIrq(g: Genirq, irq: number): TaskGen<void> {
  yield* disableIrqNosync(g, irq);
  yield* synchronizeIrq(g, irq);
}

/** __enable_irq, with desc->lock held: depth 0 is an unbalanced enable (WARN); 1 → 0 starts the line. */
function* enableDesc(desc: IrqDesc): TaskGen<void> {
  if (desc.depth === 0) warn(desc, `Unbalanced enable for IRQ ${desc.irq}`);
  else if (desc.depth === 1) yield* irqStartup(desc);
  else desc.depth--;
}

/** enable_irq → __enable_irq; irq_startup replays an edge that came while the line was disabled. */
export function* enableIrq(g: Genirq, irq: number): TaskGen<void> {
  const desc = lookup(g, irq, 'enable_irq');
  const saved = yield* spinLockIrqsave(desc.lock);
  try {
    yield* enableDesc(desc);
  } finally {
    spinUnlockIrqrestore(desc.lock, saved);
  }
}

const PC_POLL = 0;
const PC_LOCKED = 1;
const PC_CHIP = 2;

/**
 * kernel/irq/manage.c __synchronize_hardirq: spin while a handler runs; then, under desc->lock, re-check and (with
 * sync_chip) ask the chip whether the INTID is still active. A forwarded INTID a guest holds active keeps this
 * spinning until the guest deactivates it. A frame (sim/frame.ts): its state is `pc`, `saved` and `busy`.
 */
class SynchronizeHardirq extends Frame {
  private saved = false;
  private busy = false;

  constructor(
    private readonly desc: IrqDesc,
    private readonly syncChip: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    switch (this.pc) {
      case PC_POLL: // while (irqd_irq_inprogress(&desc->irq_data)) cpu_relax();
        if (desc.inprogress) return this.yield_(cpuRelax(C_CPU_RELAX, desc.oid));
        this.pc = PC_LOCKED;
        return this.call(spinLockIrqsave(desc.lock));
      case PC_LOCKED: // raw_spin_lock_irqsave(&desc->lock, flags) taken: re-check, then ask the chip
        this.saved = sent as boolean;
        this.busy = desc.inprogress;
        if (!this.busy && this.syncChip) {
          this.pc = PC_CHIP;
          return this.call(desc.chip.irqGetIrqchipState(desc, 'ACTIVE'));
        }
        return this.unlockAndRetry();
      default: // PC_CHIP: __irq_get_irqchip_state(irqd, IRQCHIP_STATE_ACTIVE, &inprogress) answered
        this.busy = sent === true;
        return this.unlockAndRetry();
    }
  }

  /** raw_spin_unlock_irqrestore; `if (!inprogress) return;`, else cpu_relax() and start over. */
  private unlockAndRetry(): Boundary {
    this.pc = PC_POLL;
    spinUnlockIrqrestore(this.desc.lock, this.saved);
    if (!this.busy) return this.return_(undefined);
    return this.yield_(cpuRelax(C_CPU_RELAX, this.desc.oid));
  }

  /** The chip query threw with desc->lock held. */
  protected override unwind(): void {
    if (this.pc === PC_CHIP) spinUnlockIrqrestore(this.desc.lock, this.saved);
  }
}

export function synchronizeHardirq(desc: IrqDesc, syncChip: boolean): Frame {
  return new SynchronizeHardirq(desc, syncChip);
}

/** synchronize_irq (no threaded handlers in the model, so only the hardirq part). */
export function* synchronizeIrq(g: Genirq, irq: number): TaskGen<void> {
  const desc = g.domain.irqToDesc(irq);
  if (desc !== undefined) yield* synchronizeHardirq(desc, true);
}

/** irq_get_irqchip_state: EINVAL without a descriptor or when the chip cannot report `which`. */
export function* irqGetIrqchipState(g: Genirq, irq: number, which: IrqchipState): TaskGen<boolean> {
  const desc = lookup(g, irq, 'irq_get_irqchip_state');
  const saved = yield* spinLockIrqsave(desc.lock);
  let v: boolean | null;
  try {
    v = yield* desc.chip.irqGetIrqchipState(desc, which);
  } finally {
    spinUnlockIrqrestore(desc.lock, saved);
  }
  if (v === null) throw errno('EINVAL', `irq_get_irqchip_state(${irq}): ${desc.chip.name} cannot report ${which}`);
  return v;
}

/** irq_set_irqchip_state. */
export function* irqSetIrqchipState(g: Genirq, irq: number, which: IrqchipState, val: boolean): TaskGen<void> {
  const desc = lookup(g, irq, 'irq_set_irqchip_state');
  const saved = yield* spinLockIrqsave(desc.lock);
  let ok: boolean;
  try {
    ok = yield* desc.chip.irqSetIrqchipState(desc, which, val);
  } finally {
    spinUnlockIrqrestore(desc.lock, saved);
  }
  if (!ok) throw errno('EINVAL', `irq_set_irqchip_state(${irq}): ${desc.chip.name} cannot set ${which}`);
}

/** irq_set_vcpu_affinity: mark (vcpu != null) or unmark the IRQ as forwarded to a vCPU. */
export function* irqSetVcpuAffinity(g: Genirq, irq: number, vcpu: unknown): TaskGen<void> {
  const desc = lookup(g, irq, 'irq_set_vcpu_affinity');
  const saved = yield* spinLockIrqsave(desc.lock);
  const ok = desc.chip.irqSetVcpuAffinity(desc, vcpu);
  spinUnlockIrqrestore(desc.lock, saved);
  if (!ok) throw errno('EINVAL', `irq_set_vcpu_affinity(${irq}): ${desc.chip.name} cannot forward INTID ${desc.hwirq}`);
}
