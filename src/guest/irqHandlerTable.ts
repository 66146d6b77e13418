/**
 * The guest GIC drivers' request_irq table: the handler of each INTID and how often it returned IRQ_HANDLED. Every
 * IRQ the vector takes reads one handler and bumps one count, so INTIDs below 1020 (SGIs, PPIs, SPIs) are dense
 * slots indexed by INTID — one load each, no hashing through a table shared by all lines; they grow to the highest
 * INTID registered (the checker copies and hashes them with the machine). LPIs (sparse, up to 2^16) keep a map.
 */
import { ModelError } from '../sim/errors.js';
import type { GuestIrqHandler } from './gicDriver.js';

const NR_DENSE = 1020;

export class GuestIrqHandlerTable {
  private readonly dense: (GuestIrqHandler | null)[] = [];
  private readonly denseHandled: number[] = [];
  private readonly lpis = new Map<number, { handler: GuestIrqHandler; handled: number }>();
  /** INTIDs in registration order (what handledByIntid lists). */
  private readonly order: number[] = [];

  register(intid: number, handler: GuestIrqHandler): void {
    if (this.handlerOf(intid) !== undefined) {
      throw new ModelError(`guest INTID ${intid} already has handler ${this.handlerOf(intid)!.name}`);
    }
    if (intid < NR_DENSE) {
      while (this.dense.length <= intid) {
        this.dense.push(null);
        this.denseHandled.push(0);
      }
      this.dense[intid] = handler;
    } else this.lpis.set(intid, { handler, handled: 0 });
    this.order.push(intid);
  }

  handlerOf(intid: number): GuestIrqHandler | undefined {
    if (intid < NR_DENSE) return this.dense[intid] ?? undefined;
    return this.lpis.get(intid)?.handler;
  }

  /** The handler of `intid` returned IRQ_HANDLED. */
  countHandled(intid: number): void {
    if (intid < NR_DENSE) this.denseHandled[intid]!++;
    else this.lpis.get(intid)!.handled++;
  }

  /** Handled interrupts per registered INTID, in registration order. */
  handledByIntid(): Map<number, number> {
    return new Map(this.order.map((i) => [i, i < NR_DENSE ? this.denseHandled[i]! : this.lpis.get(i)!.handled]));
  }
}
