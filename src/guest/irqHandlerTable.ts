/**
 * The guest GIC drivers' request_irq table: the handler of each INTID and how often it returned IRQ_HANDLED on each
 * vCPU (the guest's kstat_irqs, what /proc/interrupts lists per CPU). Every IRQ the vector takes reads one handler
 * and bumps one count, so INTIDs below 1020 (SGIs, PPIs, SPIs) are dense slots indexed by INTID less the lowest one
 * registered — one load each, no hashing through a table shared by all lines — and their counts one array for the
 * guest, a block of a counter per vCPU for each slot, not an array per line; the slots span the INTIDs registered,
 * lowest to highest (the checker copies and hashes them with the machine: a guest with one device line keys one
 * slot, not a slot per INTID below it). LPIs (sparse, up to 2^16) keep a map and a total count.
 */
import { ModelError } from '../sim/errors.js';
import { declareStatistics } from '../sim/statistics.js';
import type { GuestIrqHandler } from './gicDriver.js';

const NR_DENSE = 1020;

/** An LPI's handler and its total handled count (LPIs keep no per-vCPU kstat_irqs here). */
class GuestLpiSlot {
  handled = 0;
  constructor(readonly handler: GuestIrqHandler) {}
}
declareStatistics(GuestLpiSlot, ['handled']);

export class GuestIrqHandlerTable {
  /** The INTID of dense slot 0 (the lowest dense INTID registered). */
  private base = 0;
  private readonly dense: (GuestIrqHandler | null)[] = [];
  /** kstat_irqs of the dense slots: kstat[slot * nrVcpus + vcpu]. */
  private kstat = new Int32Array(0);
  private readonly lpis = new Map<number, GuestLpiSlot>();
  /** INTIDs in registration order (what handledByIntid lists). */
  private readonly order: number[] = [];

  constructor(private readonly nrVcpus: number) {}

  register(intid: number, handler: GuestIrqHandler): void {
    if (this.handlerOf(intid) !== undefined) {
      throw new ModelError(`guest INTID ${intid} already has handler ${this.handlerOf(intid)!.name}`);
    }
    if (intid < NR_DENSE) {
      const empty = this.dense.length === 0;
      const lo = empty ? intid : Math.min(this.base, intid);
      const hi = empty ? intid + 1 : Math.max(this.base + this.dense.length, intid + 1);
      if (lo !== this.base || hi - lo !== this.dense.length) this.relayout(lo, hi);
      this.dense[intid - this.base] = handler;
    } else this.lpis.set(intid, new GuestLpiSlot(handler));
    this.order.push(intid);
  }

  /** The dense slots span INTIDs lo..hi−1: the existing slots and their counts move to their new place. */
  private relayout(lo: number, hi: number): void {
    const front = this.dense.length === 0 ? 0 : this.base - lo;
    const kstat = new Int32Array((hi - lo) * this.nrVcpus);
    kstat.set(this.kstat, front * this.nrVcpus);
    this.kstat = kstat;
    for (let i = 0; i < front; i++) this.dense.unshift(null);
    while (this.dense.length < hi - lo) this.dense.push(null);
    this.base = lo;
  }

  handlerOf(intid: number): GuestIrqHandler | undefined {
    if (intid < NR_DENSE) return this.dense[intid - this.base] ?? undefined;
    return this.lpis.get(intid)?.handler;
  }

  /** The handler of `intid` returned IRQ_HANDLED on `vcpu` (kstat_incr_irqs_this_cpu). */
  countHandled(intid: number, vcpu: number): void {
    if (intid < NR_DENSE) this.kstat[(intid - this.base) * this.nrVcpus + vcpu]!++;
    else this.lpis.get(intid)!.handled++;
  }

  /** kstat_irqs_cpu: how often the handler of `intid` (below 1020; LPIs keep a total only) handled it on `vcpu`. */
  kstatIrqsCpu(intid: number, vcpu: number): number {
    const slot = intid - this.base;
    if (intid >= NR_DENSE || slot < 0 || slot >= this.dense.length || this.dense[slot] === null) {
      throw new ModelError(`guest INTID ${intid} has no per-vCPU count (not a registered INTID below ${NR_DENSE})`);
    }
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.nrVcpus) throw new ModelError(`no guest vCPU ${vcpu}`);
    return this.kstat[slot * this.nrVcpus + vcpu]!;
  }

  /** Handled interrupts per registered INTID (over all vCPUs), in registration order. */
  handledByIntid(): Map<number, number> {
    return new Map(this.order.map((i) => [i, i < NR_DENSE ? this.denseHandled(i) : this.lpis.get(i)!.handled]));
  }

  private denseHandled(intid: number): number {
    const at = (intid - this.base) * this.nrVcpus;
    let n = 0;
    for (let v = 0; v < this.nrVcpus; v++) n += this.kstat[at + v]!;
    return n;
  }
}
declareStatistics(GuestIrqHandlerTable, ['kstat']);
