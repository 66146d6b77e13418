/**
 * irq_set_affinity (kernel/irq/manage.c): move an interrupt to a CPU of a mask. __irq_set_affinity takes desc->lock
 * and irq_do_set_affinity hands the online CPUs of the mask to the chip's irq_set_affinity, which programs the
 * hardware and says which CPU it chose. A chip without the callback, an empty online mask and a chip refusal are all
 * -EINVAL.
 */
import { errno } from '../../abi/errno.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../sim/locks.js';
import type { Genirq } from './genirq.js';
import type { IrqDesc } from './irqDesc.js';

const PC_LOCK = 0;
const PC_LOCKED = 1;
const PC_CHIP = 2;
const PC_DONE = 3;

class IrqSetAffinity extends Frame<number> {
  private saved = false;
  private desc: IrqDesc | null = null;

  constructor(
    private readonly g: Genirq,
    private readonly irq: number,
    private readonly cpuMask: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    switch (this.pc) {
      case PC_LOCK: {
        const desc = this.g.domain.irqToDesc(this.irq);
        if (desc === undefined) throw errno('EINVAL', `irq_set_affinity: Linux IRQ ${this.irq} has no descriptor`);
        this.desc = desc;
        this.pc = PC_LOCKED;
        return this.call(spinLockIrqsave(desc.lock));
      }
      case PC_LOCKED: {
        const desc = this.desc!;
        this.saved = sent as boolean;
        const chip = desc.chip;
        // irq_do_set_affinity: cpumask_and(&tmp_mask, mask, cpu_online_mask); every CPU of the model is online
        const online = this.cpuMask & ((1 << this.g.engine.cpus.length) - 1);
        if (chip.irqSetAffinity === undefined || online === 0) {
          this.unlock();
          const why =
            chip.irqSetAffinity === undefined
              ? `${chip.name} cannot route`
              : `no online CPU in 0x${this.cpuMask.toString(16)}`;
          throw errno('EINVAL', `irq_set_affinity(${this.irq}): ${why}`);
        }
        this.pc = PC_CHIP;
        return this.call(chip.irqSetAffinity(desc, online, false));
      }
      default: {
        // PC_CHIP: the chip answered the CPU it routed to, or -1
        this.unlock();
        const cpu = sent as number;
        if (cpu < 0)
          throw errno(
            'EINVAL',
            `irq_set_affinity(${this.irq}): ${this.desc!.chip.name} refused INTID ${this.desc!.hwirq}`,
          );
        return this.return_(cpu);
      }
    }
  }

  private unlock(): void {
    this.pc = PC_DONE;
    spinUnlockIrqrestore(this.desc!.lock, this.saved);
  }

  /** The chip threw with desc->lock held. */
  protected override unwind(): void {
    if (this.pc === PC_CHIP) this.unlock();
  }
}

/** irq_set_affinity(irq, mask): the CPU the chip routed the interrupt to (EINVAL as above). */
export function irqSetAffinity(g: Genirq, irq: number, cpuMask: number): Frame<number> {
  return new IrqSetAffinity(g, irq, cpuMask);
}
