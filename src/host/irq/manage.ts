/**
 * The IRQ management API of kernel/irq/manage.c and the startup/shutdown helpers of kernel/irq/chip.c, as model
 * code calls them: frames (they take locks and touch chip registers), throwing ErrnoError where the kernel
 * returns -errno. A kernel WARN is recorded on the descriptor and, with panicOnWarn (the default), stops the run.
 */
import { errno } from '../../abi/errno.js';
import { defineCost } from '../../sim/costs.js';
import { ModelError } from '../../sim/errors.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { mutexLock, spinLockIrqsave, spinUnlockIrqrestore } from '../../sim/locks.js';
import { type Call, cpuRelax } from '../../sim/task.js';
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
  IrqAction,
  type IrqchipState,
  type IrqDesc,
  type IrqHandler,
  type IrqTrigger,
} from './irqDesc.js';
import { irqDomainActivateIrq, irqDomainDeactivateIrq } from './irqDomainActivate.js';

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
function irqEnable(desc: IrqDesc): Frame {
  desc.disabled = false;
  return unmaskIrq(desc);
}

/** kernel/irq/resend.c check_irq_resend: level lines are not replayed (the line itself re-asserts); edges are. */
class CheckIrqResend extends Frame {
  constructor(private readonly desc: IrqDesc) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    if (this.pc === 1) {
      if (sent === true) desc.istate |= IRQS_REPLAY;
      return this.return_(undefined);
    }
    if (desc.trigger === 'level') {
      desc.istate &= ~IRQS_PENDING;
      return this.return_(undefined);
    }
    if ((desc.istate & IRQS_REPLAY) !== 0) return this.return_(undefined);
    if ((desc.istate & IRQS_PENDING) === 0) return this.return_(undefined);
    desc.istate &= ~IRQS_PENDING;
    // try_retrigger: the GIC re-pends the INTID in the distributor (gic_retrigger); no software resend needed.
    this.pc = 1;
    return this.call(desc.chip.irqRetrigger(desc));
  }
}

const SU_ACTIVATED = 1; // irq_domain_activate_irq done (an IRQ of a hierarchical domain only)
const SU_ENABLED = 2; // irq_enable done
const SU_RESENT = 3; // check_irq_resend done

/**
 * kernel/irq/chip.c irq_startup with IRQ_RESEND: __irq_startup activates an IRQ of a hierarchical domain first (the
 * ITS: MAPTI), then enables it. irq_setup_affinity is left out: LPIs are the only lines it would move, and with the
 * default affinity its_set_affinity picks the CPU activation just chose.
 */
class IrqStartup extends Frame {
  constructor(private readonly desc: IrqDesc) {
    super();
  }

  protected step(): Boundary {
    const desc = this.desc;
    switch (this.pc) {
      case 0:
        this.pc = SU_ACTIVATED;
        if (desc.domainOps !== null) return this.call(irqDomainActivateIrq(desc));
        return this.step();
      case SU_ACTIVATED:
        desc.depth = 0;
        this.pc = SU_ENABLED;
        return this.call(irqEnable(desc));
      case SU_ENABLED:
        desc.started = true;
        this.pc = SU_RESENT;
        return this.call(new CheckIrqResend(desc));
      default:
        return this.return_(undefined);
    }
  }
}

/** kernel/irq/chip.c irq_shutdown: depth back to 1, disabled and masked (for a forwarded IRQ, also deactivated). */
class IrqShutdown extends Frame {
  constructor(private readonly desc: IrqDesc) {
    super();
  }

  protected step(): Boundary {
    const desc = this.desc;
    if (this.pc === 0) {
      if (!desc.started) return this.return_(undefined);
      desc.depth = 1;
      desc.disabled = true;
      this.pc = 1;
      return this.call(maskIrq(desc));
    }
    desc.started = false;
    return this.return_(undefined);
  }
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
export function requestIrq(
  g: Genirq,
  irq: number,
  handler: IrqHandler,
  flags: number,
  name: string,
  devId: unknown,
): Frame {
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
  return new SetupIrq(desc, triggerFromFlags(flags), new IrqAction(handler, devId, name, flags));
}

// __setup_irq's resume points; from SI_LOCKED on it holds desc->lock, from SI_SPIN on desc->request_mutex
const SI_MUTEX = 1; // mutex_lock(&desc->request_mutex) returned
const SI_SPIN = 2; // raw_spin_lock_irqsave(&desc->lock, flags) returned
const SI_LOCKED = 3; // check a shared line's compatibility, set the trigger type
const SI_SET_TYPE = 4; // __irq_set_trigger returned
const SI_ADD = 5; // add the action; irq_startup a first one
const SI_STARTED = 6; // irq_startup returned (or was not needed)
const SI_ENABLED = 7; // a spurious-disabled line re-enabled: unlock

/** kernel/irq/manage.c __setup_irq (request_irq's body once the arguments are checked). */
class SetupIrq extends Frame {
  private saved = false;
  /** The line had no action: this one starts it. */
  private first = false;

  constructor(
    private readonly desc: IrqDesc,
    private readonly trigger: IrqTrigger | null,
    private readonly action: IrqAction,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    const { flags, name } = this.action;
    const irq = desc.irq;
    const trigger = this.trigger;
    for (;;) {
      switch (this.pc) {
        case 0:
          this.pc = SI_MUTEX;
          return this.call(mutexLock(desc.requestMutex));
        case SI_MUTEX:
          this.pc = SI_SPIN;
          return this.call(spinLockIrqsave(desc.lock));
        case SI_SPIN:
          this.saved = sent as boolean;
          this.pc = SI_LOCKED;
          continue;
        case SI_LOCKED: {
          const old = desc.action;
          if (old !== null) {
            // both IRQF_SHARED, the same trigger type, and agreeing on IRQF_ONESHOT, or it is a mismatch
            const shared = (old.flags & flags & IRQF_SHARED) !== 0;
            const why = !shared
              ? `already requested by '${old.name}' without IRQF_SHARED`
              : trigger !== null && trigger !== desc.trigger
                ? 'trigger type mismatch'
                : `IRQF_ONESHOT mismatch with '${old.name}'`;
            if (
              !shared ||
              (trigger !== null && trigger !== desc.trigger) ||
              ((old.flags ^ flags) & IRQF_ONESHOT) !== 0
            ) {
              throw errno('EBUSY', `request_irq(${irq}, '${name}'): ${why}`);
            }
          }
          if (old === null && trigger !== null && trigger !== desc.trigger) {
            this.pc = SI_SET_TYPE;
            return this.call(desc.chip.irqSetType(desc, trigger));
          }
          this.pc = SI_ADD;
          continue;
        }
        case SI_SET_TYPE:
          if (sent !== true) throw errno('EINVAL', `request_irq(${irq}): the chip refused trigger ${trigger}`);
          desc.trigger = trigger!;
          this.pc = SI_ADD;
          continue;
        case SI_ADD: {
          // the new action goes at the end of the chain
          this.first = desc.action === null;
          if (this.first) desc.action = this.action;
          else {
            let last = desc.action!;
            while (last.next !== null) last = last.next;
            last.next = this.action;
          }
          this.pc = SI_STARTED;
          if (this.first) {
            desc.istate &= ~(IRQS_SPURIOUS_DISABLED | IRQS_ONESHOT | IRQS_WAITING);
            desc.inprogress = false;
            if ((flags & IRQF_ONESHOT) !== 0) desc.istate |= IRQS_ONESHOT;
            if ((flags & IRQF_NO_AUTOEN) === 0 && (desc.settings & IRQ_NOAUTOEN) === 0) {
              return this.call(new IrqStartup(desc));
            }
            if ((flags & IRQF_SHARED) !== 0) warn(desc, `IRQ ${irq}: shared request '${name}' on an IRQ_NOAUTOEN line`);
            desc.depth = 1; // the driver enables it later with enable_irq
          }
          continue;
        }
        case SI_STARTED: {
          // a new handler resets the stuck-line detector, and a line note_interrupt disabled gets another chance
          desc.irqCount = 0;
          desc.irqsUnhandled = 0;
          this.pc = SI_ENABLED;
          if (!this.first && (desc.istate & IRQS_SPURIOUS_DISABLED) !== 0) {
            desc.istate &= ~IRQS_SPURIOUS_DISABLED;
            const startup = enableDesc(desc);
            if (startup !== null) return this.call(startup);
          }
          continue;
        }
        default: // SI_ENABLED
          spinUnlockIrqrestore(desc.lock, this.saved);
          desc.requestMutex.unlock();
          return this.return_(undefined);
      }
    }
  }

  protected override unwind(): void {
    if (this.pc >= SI_LOCKED) spinUnlockIrqrestore(this.desc.lock, this.saved);
    if (this.pc >= SI_SPIN) this.desc.requestMutex.unlock();
  }
}

// __free_irq's resume points
const FI_MUTEX = 1; // mutex_lock(&desc->request_mutex) returned
const FI_SPIN = 2; // raw_spin_lock_irqsave(&desc->lock, flags) returned
const FI_LOCKED = 3; // find and remove the action
const FI_SHUTDOWN = 4; // irq_shutdown returned: unlock, then synchronize
const FI_UNLOCKED = 5; // desc->lock dropped (the WARN, or __synchronize_hardirq running)
const FI_DEACT_LOCK = 6; // the last action gone: raw_spin_lock_irqsave(&desc->lock) for irq_domain_deactivate_irq
const FI_DEACTIVATED = 7; // irq_domain_deactivate_irq returned: unlock

/**
 * free_irq → __free_irq. Shutting the last action down masks the line (gic_eoimode1_mask_irq also deactivates a
 * forwarded INTID), then waits until no handler runs and the chip no longer holds the INTID active; only then is an
 * IRQ of a hierarchical domain deactivated (the ITS: DISCARD), under desc->lock again ("Only shutdown. Deactivate
 * after synchronize_hardirq()", Linux 6.1).
 */
class FreeIrq extends Frame {
  private saved = false;

  constructor(
    private readonly desc: IrqDesc,
    private readonly devId: unknown,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    switch (this.pc) {
      case 0:
        this.pc = FI_MUTEX;
        return this.call(mutexLock(desc.requestMutex));
      case FI_MUTEX:
        this.pc = FI_SPIN;
        return this.call(spinLockIrqsave(desc.lock));
      case FI_SPIN: {
        this.saved = sent as boolean;
        this.pc = FI_LOCKED;
        // __free_irq: find the action by dev_id and unlink it; it keeps its next, so a handler walk still on it goes on
        let prev: IrqAction | null = null;
        let action = desc.action;
        while (action !== null && action.devId !== this.devId) {
          prev = action;
          action = action.next;
        }
        if (action === null) {
          spinUnlockIrqrestore(desc.lock, this.saved);
          this.pc = FI_UNLOCKED;
          warn(desc, `Trying to free already-free IRQ ${desc.irq}`);
          desc.requestMutex.unlock();
          return this.return_(undefined);
        }
        if (prev === null) desc.action = action.next;
        else prev.next = action.next;
        this.pc = FI_SHUTDOWN;
        // the IRQ_NOAUTOEN setting survives: it is the descriptor's, not the action's
        if (desc.action === null) return this.call(new IrqShutdown(desc));
        return this.unlockAndSynchronize();
      }
      case FI_SHUTDOWN:
        return this.unlockAndSynchronize();
      case FI_UNLOCKED:
        if (desc.action === null && desc.activated) {
          this.pc = FI_DEACT_LOCK;
          return this.call(spinLockIrqsave(desc.lock));
        }
        desc.requestMutex.unlock();
        return this.return_(undefined);
      case FI_DEACT_LOCK:
        this.saved = sent as boolean;
        this.pc = FI_DEACTIVATED;
        return this.call(irqDomainDeactivateIrq(desc));
      default: // FI_DEACTIVATED
        spinUnlockIrqrestore(desc.lock, this.saved);
        desc.requestMutex.unlock();
        return this.return_(undefined);
    }
  }

  private unlockAndSynchronize(): Boundary {
    spinUnlockIrqrestore(this.desc.lock, this.saved);
    this.pc = FI_UNLOCKED;
    // kernel/irq/manage.c __free_irq: __synchronize_hardirq(desc, true) — the chip must not hold it active either.
    return this.call(synchronizeHardirq(this.desc, true));
  }

  protected override unwind(): void {
    if (this.pc === FI_LOCKED || this.pc === FI_SHUTDOWN || this.pc === FI_DEACTIVATED) {
      spinUnlockIrqrestore(this.desc.lock, this.saved);
    }
    if (this.pc >= FI_SPIN) this.desc.requestMutex.unlock();
  }
}

export function freeIrq(g: Genirq, irq: number, devId: unknown): Frame {
  return new FreeIrq(lookup(g, irq, 'free_irq'), devId);
}

const DL_LOCKED = 1; // raw_spin_lock_irqsave(&desc->lock, flags) returned: the body
const DL_BODY = 2; // the body's call returned: unlock
const DL_UNLOCKED = 3;

/**
 * The shape of the small management calls: irq_get_desc_buslock / raw_spin_lock_irqsave(&desc->lock), a body that
 * may call the chip, then the unlock, and a check of what the body found after it.
 */
abstract class DescLockedFrame<R = void> extends Frame<R> {
  private saved = false;

  constructor(protected readonly desc: IrqDesc) {
    super();
  }

  /** Under desc->lock: return what to call (its result goes to `unlocked`), or null. */
  protected abstract locked(desc: IrqDesc): Call<unknown> | null;

  /** After the unlock: the function's result (or its error) from what the body's call returned. */
  protected abstract unlocked(result: unknown): R;

  protected step(sent: unknown): Boundary {
    const desc = this.desc;
    switch (this.pc) {
      case 0:
        this.pc = DL_LOCKED;
        return this.call(spinLockIrqsave(desc.lock));
      case DL_LOCKED: {
        this.saved = sent as boolean;
        this.pc = DL_BODY;
        const c = this.locked(desc);
        if (c !== null) return this.call(c);
        return this.unlock(undefined);
      }
      default:
        return this.unlock(sent);
    }
  }

  private unlock(result: unknown): Boundary {
    this.pc = DL_UNLOCKED;
    spinUnlockIrqrestore(this.desc.lock, this.saved);
    return this.return_(this.unlocked(result));
  }

  protected override unwind(): void {
    if (this.pc === DL_BODY) spinUnlockIrqrestore(this.desc.lock, this.saved);
  }
}

/** irq_set_status_flags / irq_clear_status_flags (IRQ_NOAUTOEN is the one the model uses). */
class IrqModifyStatus extends DescLockedFrame {
  constructor(
    desc: IrqDesc,
    private readonly clear: number,
    private readonly set: number,
  ) {
    super(desc);
  }

  protected locked(desc: IrqDesc): null {
    desc.settings = (desc.settings & ~this.clear) | this.set;
    return null;
  }

  protected unlocked(): void {}
}

export function irqModifyStatus(g: Genirq, irq: number, clear: number, set: number): Frame {
  return new IrqModifyStatus(lookup(g, irq, 'irq_modify_status'), clear, set);
}

/** disable_irq_nosync: depth++; callable from any context, including the IRQ's own handler. */
class DisableIrqNosync extends DescLockedFrame {
  protected locked(desc: IrqDesc): null {
    disableDesc(desc);
    return null;
  }

  protected unlocked(): void {}
}

export function disableIrqNosync(g: Genirq, irq: number): Frame {
  return new DisableIrqNosync(lookup(g, irq, 'disable_irq_nosync'));
}

/** disable_irq: disable_irq_nosync, then wait for running handlers (and, via synchronize_irq, the chip). */
class DisableIrq extends Frame {
  constructor(
    private readonly g: Genirq,
    private readonly irq: number,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.call(disableIrqNosync(this.g, this.irq));
      case 1:
        this.pc = 2;
        return this.call(synchronizeIrq(this.g, this.irq));
      default:
        return this.return_(undefined);
    }
  }
}

export function disableIrq(g: Genirq, irq: number): Frame {
  return new DisableIrq(g, irq);
}

/**
 * __enable_irq, with desc->lock held: depth 0 is an unbalanced enable (WARN); 1 → 0 starts the line. Returns the
 * irq_startup to call, or null.
 */
function enableDesc(desc: IrqDesc): Frame | null {
  if (desc.depth === 0) warn(desc, `Unbalanced enable for IRQ ${desc.irq}`);
  else if (desc.depth === 1) return new IrqStartup(desc);
  else desc.depth--;
  return null;
}

/** enable_irq → __enable_irq; irq_startup replays an edge that came while the line was disabled. */
class EnableIrq extends DescLockedFrame {
  protected locked(desc: IrqDesc): Frame | null {
    return enableDesc(desc);
  }

  protected unlocked(): void {}
}

export function enableIrq(g: Genirq, irq: number): Frame {
  return new EnableIrq(lookup(g, irq, 'enable_irq'));
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
class SynchronizeIrq extends Frame {
  constructor(
    private readonly g: Genirq,
    private readonly irq: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const desc = this.pc === 0 ? this.g.domain.irqToDesc(this.irq) : undefined;
    if (desc === undefined) return this.return_(undefined);
    this.pc = 1;
    return this.call(synchronizeHardirq(desc, true));
  }
}

export function synchronizeIrq(g: Genirq, irq: number): Frame {
  return new SynchronizeIrq(g, irq);
}

/** irq_get_irqchip_state: EINVAL without a descriptor or when the chip cannot report `which`. */
class IrqGetIrqchipState extends DescLockedFrame<boolean> {
  constructor(
    desc: IrqDesc,
    private readonly which: IrqchipState,
  ) {
    super(desc);
  }

  protected locked(desc: IrqDesc): Call<boolean | null> {
    return desc.chip.irqGetIrqchipState(desc, this.which);
  }

  protected unlocked(v: unknown): boolean {
    const desc = this.desc;
    if (v === null)
      throw errno('EINVAL', `irq_get_irqchip_state(${desc.irq}): ${desc.chip.name} cannot report ${this.which}`);
    return v as boolean;
  }
}

export function irqGetIrqchipState(g: Genirq, irq: number, which: IrqchipState): Frame<boolean> {
  return new IrqGetIrqchipState(lookup(g, irq, 'irq_get_irqchip_state'), which);
}

/** irq_set_irqchip_state. */
class IrqSetIrqchipState extends DescLockedFrame {
  constructor(
    desc: IrqDesc,
    private readonly which: IrqchipState,
    private readonly val: boolean,
  ) {
    super(desc);
  }

  protected locked(desc: IrqDesc): Call<boolean> {
    return desc.chip.irqSetIrqchipState(desc, this.which, this.val);
  }

  protected unlocked(ok: unknown): void {
    const desc = this.desc;
    if (ok !== true)
      throw errno('EINVAL', `irq_set_irqchip_state(${desc.irq}): ${desc.chip.name} cannot set ${this.which}`);
  }
}

export function irqSetIrqchipState(g: Genirq, irq: number, which: IrqchipState, val: boolean): Frame {
  return new IrqSetIrqchipState(lookup(g, irq, 'irq_set_irqchip_state'), which, val);
}

/** irq_set_vcpu_affinity: mark (vcpu != null) or unmark the IRQ as forwarded to a vCPU. */
class IrqSetVcpuAffinity extends DescLockedFrame {
  private ok = false;

  constructor(
    desc: IrqDesc,
    private readonly vcpu: unknown,
  ) {
    super(desc);
  }

  protected locked(desc: IrqDesc): Call<boolean> | null {
    const r = desc.chip.irqSetVcpuAffinity(desc, this.vcpu);
    if (typeof r !== 'boolean') return r;
    this.ok = r;
    return null;
  }

  protected unlocked(result: unknown): void {
    const desc = this.desc;
    if (result !== undefined) this.ok = result === true;
    if (!this.ok) {
      throw errno('EINVAL', `irq_set_vcpu_affinity(${desc.irq}): ${desc.chip.name} cannot forward INTID ${desc.hwirq}`);
    }
  }
}

export function irqSetVcpuAffinity(g: Genirq, irq: number, vcpu: unknown): Frame {
  return new IrqSetVcpuAffinity(lookup(g, irq, 'irq_set_vcpu_affinity'), vcpu);
}
