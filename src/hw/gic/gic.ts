// The host's GICv2 with virtualization extensions: one distributor, and per physical CPU one CPU interface and
// one virtual interface (GICH + GICV). Synchronous and deterministic: the engine calls these methods at its
// atomic steps and hears about output changes through the callbacks (which fire synchronously, inside the call
// that changed the output). Hot paths (setLine, IAR, EOIR, DIR, LR writes) work on typed arrays and allocate nothing.
//
// Deliberately not modelled (ARM IHI 0048B): Security Extensions and interrupt groups on the physical side (GICD_IGROUPR
// is RAZ/WI, everything is Group 0 signalled as IRQ; no FIQ, no bypass), GICC_ABPR/AIAR/AEOIR/AHPPIR, the 1-N vs N-N
// ICFGR bit, GICD_CTLR.EnableGrp1, wake-up/power signals, IMPLEMENTATION DEFINED PPI config lock (PPIs are
// programmable here), vFIQ (GICV Group 0 with FIQEn is still signalled on the virtual IRQ output), and the UNPREDICTABLE
// cases, which are absorbed and counted in `unpredictableCount` on each CPU and virtual interface for checkers.
import { ModelError } from '../../sim/errors.js';
import { GicCpuInterface, type IrqLineSink, type VirqLineSink } from './cpuInterface.js';
import { GicDistributor } from './distributor.js';
import { GicVirtualInterface } from './virtualInterface.js';

export interface GicOptions {
  nrCpus: number;
  /** INTIDs (multiple of 32, up to 1024 with 1020-1023 reserved). */
  nrIrqs: number;
  /** List registers per virtual interface (default 4). */
  nrLrs?: number;
  /** Implemented physical priority bits (default 5). */
  priorityBits?: number;
  /** The physical IRQ output of a CPU interface changed. */
  irqSink?: IrqLineSink;
  /** The virtual IRQ output of a virtual interface changed. */
  virqSink?: VirqLineSink;
  /** Allocates the checker's object ids of the distributor's INTIDs and CPU interfaces (GicDistributorOptions). */
  newOid?: (name: string) => number;
}

export class Gic {
  readonly distributor: GicDistributor;
  readonly cpuInterfaces: readonly GicCpuInterface[];
  readonly virtualInterfaces: readonly GicVirtualInterface[];

  constructor(opts: GicOptions) {
    const distributor = new GicDistributor({
      nrCpus: opts.nrCpus,
      nrIrqs: opts.nrIrqs,
      priorityBits: opts.priorityBits,
      newOid: opts.newOid,
    });
    const cpus: GicCpuInterface[] = [];
    const vifs: GicVirtualInterface[] = [];
    for (let cpu = 0; cpu < distributor.nrCpus; cpu++) {
      cpus.push(new GicCpuInterface({ cpu, distributor, irqSink: opts.irqSink }));
      vifs.push(new GicVirtualInterface({ cpu, distributor, nrLrs: opts.nrLrs, virqSink: opts.virqSink }));
    }
    this.distributor = distributor;
    this.cpuInterfaces = cpus;
    this.virtualInterfaces = vifs;
  }

  get nrCpus(): number {
    return this.distributor.nrCpus;
  }

  /** The physical CPU interface (GICC) of `cpu`. */
  cpu(cpu: number): GicCpuInterface {
    const c = this.cpuInterfaces[cpu];
    if (c === undefined) throw new ModelError(`bad CPU ${cpu} (nrCpus ${this.nrCpus})`);
    return c;
  }

  /** The virtual interface (GICH + GICV) of physical CPU `cpu`. */
  vif(cpu: number): GicVirtualInterface {
    const v = this.virtualInterfaces[cpu];
    if (v === undefined) throw new ModelError(`bad CPU ${cpu} (nrCpus ${this.nrCpus})`);
    return v;
  }
}
