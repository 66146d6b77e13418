// The host's GICv3 (ARM IHI 0069): one distributor, and per PE one redistributor, one system-register CPU interface
// (ICC_*) and one virtual interface (ICH_* + ICV_*). Synchronous and deterministic like the GICv2 model (../gic): the
// engine calls these methods at its atomic steps and hears about output changes through the callbacks, which fire
// inside the call that changed the output. Hot paths (setLine, IAR1, EOIR1, DIR, LR writes) work on typed arrays and
// allocate nothing.
//
// Deliberately not modelled: Security (one Security state, GICD_CTLR.DS = 1) and Group 0 (IGROUPR RAO/WI, IGRPMODR
// RAZ/WI, no ICC_IAR0/EOIR0/BPR0/AP0R/IGRPEN0, no FIQ, no vFIQ: a Group 0 LR is never signalled), legacy operation
// (GICD_CTLR.ARE RAO/WI, no GICv2 MMIO CPU interface), GICv4.0 (GICv4.1 direct injection of vLPIs exists with
// `nrVpes`: itsVirtual.ts, redistributorVpe.ts, vpeTable.ts; vSGIs do not),
// the extended PPI range of GICv3.1 (its Extended SPIs are modelled: nrEspis), range selector SGIs (RSS = 0: Aff0 ≤ 15), NMIs, SEIs, ICH_HCR_EL2 traps
// (TC/TALL/TDIR: KVM's sysreg-trap machinery), GICR_CTLR.DPG bits, wake requests to a power controller for a sleeping
// PE, and the UNPREDICTABLE cases, which are absorbed and counted in `unpredictableCount` on each CPU and virtual
// interface for checkers. LPIs and one ITS exist when the GIC is built with `nrLpis` (lpi.ts, its.ts).
import { ModelError } from '../../sim/errors.js';
import type { PhysicalMemory } from '../physMem.js';
import { Gicv3CpuInterface, type IrqLineSink, type VirqLineSink } from './cpuInterface.js';
import { Gicv3Distributor } from './distributor.js';
import { Gicv3Its } from './its.js';
import { Gicv3ItsVirtual } from './itsVirtual.js';
import { Gicv3Redistributor } from './redistributor.js';
import { Gicv3Vlpis } from './redistributorVpe.js';
import { Gicv3VirtualInterface } from './virtualInterface.js';
import { Gicv3VpeTable } from './vpeTable.js';

export interface Gicv3Options {
  nrPes: number;
  /** INTIDs below 1024 (multiple of 32; 1020-1023 reserved). */
  nrIrqs: number;
  /** GICv3.1 Extended SPIs (INTIDs 4096..; Gicv3DistributorOptions.nrEspis). Default 0. */
  nrEspis?: number;
  /** List registers per virtual interface (default 4). */
  nrLrs?: number;
  /** Implemented physical priority bits (default 5). */
  priorityBits?: number;
  /** INTID width, 16 or 24 (default 16). */
  idBits?: 16 | 24;
  /** PE affinities (Gicv3DistributorOptions.affinities). */
  affinities?: readonly number[];
  irqSink?: IrqLineSink;
  virqSink?: VirqLineSink;
  /** Allocates the checker's object ids of the INTIDs and CPU interfaces (Gicv3DistributorOptions). */
  newOid?: (name: string) => number;
  /** LPIs implemented (Gicv3DistributorOptions.nrLpis); with LPIs the GIC has one ITS. Default 0: no LPIs, no ITS. */
  nrLpis?: number;
  /** The memory the redistributors and the ITS read their tables and command queue from (required with nrLpis). */
  memory?: PhysicalMemory;
  /** GICv4.1: vPEs the vPE table holds (vPEIDs 0 .. nrVpes - 1); needs nrLpis. Default 0: no GICv4. */
  nrVpes?: number;
}

export class Gicv3 {
  readonly distributor: Gicv3Distributor;
  readonly redistributors: readonly Gicv3Redistributor[];
  readonly cpuInterfaces: readonly Gicv3CpuInterface[];
  readonly virtualInterfaces: readonly Gicv3VirtualInterface[];
  /** The ITS, present when the GIC implements LPIs. */
  readonly its: Gicv3Its | null;
  /** The redistributors' GICv4.1 vPE state, present with nrVpes. */
  readonly vlpis: Gicv3Vlpis | null;

  constructor(opts: Gicv3Options) {
    const distributor = new Gicv3Distributor({
      nrPes: opts.nrPes,
      nrIrqs: opts.nrIrqs,
      nrEspis: opts.nrEspis,
      priorityBits: opts.priorityBits,
      idBits: opts.idBits,
      affinities: opts.affinities,
      newOid: opts.newOid,
      nrLpis: opts.nrLpis,
      memory: opts.memory,
    });
    const lpis = distributor.lpis;
    const nrVpes = opts.nrVpes ?? 0;
    if (nrVpes > 0 && lpis === null) throw new ModelError('GICv4 (nrVpes) needs LPIs (nrLpis)');
    this.vlpis =
      nrVpes > 0
        ? new Gicv3Vlpis(distributor.nrPes, new Gicv3VpeTable(nrVpes, lpis!.nrLpis, opts.memory!), lpis!, opts.newOid)
        : null;
    const virtual = this.vlpis !== null ? new Gicv3ItsVirtual(this.vlpis, lpis!) : undefined;
    this.its = lpis !== null ? new Gicv3Its({ lpis, memory: opts.memory!, newOid: opts.newOid, virtual }) : null;
    const rds: Gicv3Redistributor[] = [];
    const cpus: Gicv3CpuInterface[] = [];
    const vifs: Gicv3VirtualInterface[] = [];
    for (let pe = 0; pe < distributor.nrPes; pe++) {
      rds.push(new Gicv3Redistributor(distributor, pe, this.vlpis));
      cpus.push(new Gicv3CpuInterface({ pe, distributor, irqSink: opts.irqSink }));
      vifs.push(
        new Gicv3VirtualInterface({
          pe,
          distributor,
          nrLrs: opts.nrLrs,
          virqSink: opts.virqSink,
          vlpis: this.vlpis ?? undefined,
        }),
      );
    }
    this.distributor = distributor;
    this.redistributors = rds;
    this.cpuInterfaces = cpus;
    this.virtualInterfaces = vifs;
  }

  get nrPes(): number {
    return this.distributor.nrPes;
  }
  redistributor(pe: number): Gicv3Redistributor {
    return this.at(this.redistributors, pe);
  }
  cpu(pe: number): Gicv3CpuInterface {
    return this.at(this.cpuInterfaces, pe);
  }
  vif(pe: number): Gicv3VirtualInterface {
    return this.at(this.virtualInterfaces, pe);
  }
  private at<T>(list: readonly T[], pe: number): T {
    const x = list[pe];
    if (x === undefined) throw new ModelError(`bad PE ${pe} (nrPes ${this.nrPes})`);
    return x;
  }
}
