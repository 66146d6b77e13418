/**
 * The guest GIC drivers' request_irq table: the handler of each INTID and how often it returned IRQ_HANDLED. Every
 * IRQ the vector takes reads one handler and bumps one count, so INTIDs below 1020 (SGIs, PPIs, SPIs) are dense
 * slots indexed by INTID less the lowest one registered — one load each, no hashing through a table shared by all
 * lines; they span the INTIDs registered, lowest to highest (the checker copies and hashes them with the machine: a
 * guest with one device line keys two slots, not a slot per INTID below it). LPIs (sparse, up to 2^16) keep a map.
 */
import { ModelError } from '../sim/errors.js';
import type { GuestIrqHandler } from './gicDriver.js';

const NR_DENSE = 1020;

export class GuestIrqHandlerTable {
  /** The INTID of dense slot 0 (the lowest dense INTID registered). */
  private base = 0;
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
      if (this.dense.length === 0) this.base = intid;
      for (; this.base > intid; this.base--) {
        this.dense.unshift(null);
        this.denseHandled.unshift(0);
      }
      while (this.dense.length <= intid - this.base) {
        this.dense.push(null);
        this.denseHandled.push(0);
      }
      this.dense[intid - this.base] = handler;
    } else this.lpis.set(intid, { handler, handled: 0 });
    this.order.push(intid);
  }

  handlerOf(intid: number): GuestIrqHandler | undefined {
    if (intid < NR_DENSE) return this.dense[intid - this.base] ?? undefined;
    return this.lpis.get(intid)?.handler;
  }

  /** The handler of `intid` returned IRQ_HANDLED. */
  countHandled(intid: number): void {
    if (intid < NR_DENSE) this.denseHandled[intid - this.base]!++;
    else this.lpis.get(intid)!.handled++;
  }

  /** Handled interrupts per registered INTID, in registration order. */
  handledByIntid(): Map<number, number> {
    return new Map(
      this.order.map((i) => [i, i < NR_DENSE ? this.denseHandled[i - this.base]! : this.lpis.get(i)!.handled]),
    );
  }
}
