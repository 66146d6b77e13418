/**
 * Boot the host's interrupt path on an engine: the GIC (v2 or v3) wired to the CPUs' nIRQ/nVIRQ inputs, its driver
 * initialised as Linux does it, the generic IRQ layer, and gic_handle_irq installed as every CPU's IRQ vector.
 *
 * The rest of the host reaches the GIC through `HostIrq`: what both versions share (the distributor's per-INTID
 * state, each CPU's physical and virtual interface) through `gic`, and the two things that differ in kind through
 * the functions below — an IPI (`gicIpiSend`: GICD_SGIR or ICC_SGI1R_EL1) and an SPI's CPU (`gicRouteSpi`:
 * GICD_ITARGETSR or GICD_IROUTER). Code that needs one version's hardware narrows on `version`.
 */
import { errno } from '../../abi/errno.js';
import { Gic } from '../../hw/gic/gic.js';
import { Gicv3 } from '../../hw/gicv3/gicv3.js';
import { PhysicalMemory } from '../../hw/physMem.js';
import type { Engine } from '../../sim/engine.js';
import { Genirq } from './genirq.js';
import { GicV2Chip, gicHandleIrq, gicV2Init } from './irqGicV2.js';
import { GicHandleIrq, GicV3Chip, gicV3Init } from './irqGicV3.js';
import { type HostIts, itsInit } from './its/itsInit.js';
import { ItsMsiDomain } from './its/itsMsiDomain.js';
import { HostGicV4, itsInitVpeTables } from './its/itsVpe.js';

export type GicVersion = 'v2' | 'v3';

export interface HostIrqOptions {
  /** The GIC architecture version (default 'v2'). */
  gic?: GicVersion;
  /** INTIDs the distributor implements (a multiple of 32; default 256). */
  nrIrqs?: number;
  /** List registers per virtual interface (default 4). */
  nrLrs?: number;
  /** GICv3 only: the GICv3.1 Extended SPIs the distributor implements (INTIDs 4096..; default 0). */
  nrEspis?: number;
  /**
   * GICv3 only: LPIs the GIC implements (a multiple of 32; default 0). With LPIs the GIC has an ITS and the host
   * boots its ITS driver (its/itsInit.ts); without, the host boots as before, with no LPI state at all.
   */
  nrLpis?: number;
  /** GICv3 with LPIs only: GICv4.1, with vPEIDs 0 .. nrVpes - 1 (Gicv3Options.nrVpes), and the host's GICv4 layer. */
  nrVpes?: number;
}

export interface HostIrqV2 {
  readonly version: 'v2';
  readonly gic: Gic;
  readonly chip: GicV2Chip;
  readonly genirq: Genirq;
}

export interface HostIrqV3 {
  readonly version: 'v3';
  readonly gic: Gicv3;
  readonly chip: GicV3Chip;
  readonly genirq: Genirq;
  /** The host's ITS driver state and its MSI irq domain, when the GIC has LPIs. */
  readonly its: HostIts | null;
  readonly msiDomain: ItsMsiDomain | null;
  /** The host's GICv4.1 layer (irq-gic-v4.c over its/itsVpe.ts, its/itsVlpi.ts), when the GIC has vPEs. */
  readonly v4: HostGicV4 | null;
}

export type HostIrq = HostIrqV2 | HostIrqV3;

export function bootHostIrq(engine: Engine, opts: HostIrqOptions = {}): HostIrq {
  const nrCpus = engine.cpus.length;
  const common = {
    nrIrqs: opts.nrIrqs ?? 256,
    nrLrs: opts.nrLrs,
    irqSink: engine,
    virqSink: engine,
    newOid: (name: string) => engine.newOid(name),
  };
  if (opts.gic === 'v3') {
    const nrLpis = opts.nrLpis ?? 0;
    const memory = nrLpis > 0 ? new PhysicalMemory() : undefined;
    const gic = new Gicv3({ nrPes: nrCpus, nrEspis: opts.nrEspis, ...common, nrLpis, memory, nrVpes: opts.nrVpes });
    gicV3Init(gic);
    const its = memory !== undefined ? itsInit(engine, gic, memory) : null;
    const chip = new GicV3Chip(gic);
    const genirq = new Genirq(engine, chip, 'GICv3');
    for (let cpu = 0; cpu < nrCpus; cpu++) engine.setIrqVector(cpu, `irq/${cpu}`, new GicHandleIrq(genirq, chip, cpu));
    const msiDomain = its !== null ? new ItsMsiDomain(its, genirq) : null;
    let v4: HostGicV4 | null = null;
    if (its !== null && msiDomain !== null && gic.vlpis !== null) {
      itsInitVpeTables(its, gic);
      v4 = new HostGicV4(its, gic, genirq);
      msiDomain.chip.vcpuAffinity = v4.vlpi;
    }
    return { version: 'v3', gic, chip, genirq, its, msiDomain, v4 };
  }
  const gic = new Gic({ nrCpus, ...common });
  gicV2Init(gic);
  const chip = new GicV2Chip(gic);
  const genirq = new Genirq(engine, chip);
  for (let cpu = 0; cpu < nrCpus; cpu++) engine.setIrqVector(cpu, `irq/${cpu}`, gicHandleIrq(genirq, chip, cpu));
  return { version: 'v2', gic, chip, genirq };
}

/**
 * smp_cross_call → the chip's ipi_send_mask: SGI `sgi` from CPU `from` to every CPU of `cpuMask`. GICv2: one
 * GICD_SGIR write with that target list (gic_ipi_send_mask, irq-gic.c); GICv3: ICC_SGI1R_EL1 per cluster.
 */
export function gicIpiSend(irq: HostIrq, from: number, sgi: number, cpuMask: number): void {
  if (irq.version === 'v2') irq.gic.distributor.sendSgi(from, sgi, 0, cpuMask);
  else irq.chip.ipiSendMask(from, sgi, cpuMask);
}

/**
 * An SPI's delivery CPUs as set up outside any task (an administrator's /proc/irq/N/smp_affinity at boot). GICv2:
 * GICD_ITARGETSR takes the mask. GICv3: GICD_IROUTER names one CPU — the first of the mask, as gic_set_affinity
 * picks it (irq-gic-v3.c; SPIs are irqd_set_single_target).
 */
export function gicRouteSpi(irq: HostIrq, intid: number, cpuMask: number): void {
  if (irq.version === 'v2') irq.gic.distributor.setTargets(intid, cpuMask);
  else irq.gic.distributor.setRoute(intid, 31 - Math.clz32(cpuMask & -cpuMask));
}

/**
 * The GICv2 the vGIC-v2 and a GICv2 guest run on. The GICv3 of this model has no GICv2 compatibility (no GICV
 * frame), so, as vgic_v3_probe does on such a host, KVM registers no KVM_DEV_TYPE_ARM_VGIC_V2 there, and a GICv2
 * guest's virtual CPU interface does not exist: ENODEV.
 */
export function hostGicV2(irq: HostIrq): Gic {
  if (irq.version === 'v2') return irq.gic;
  throw errno('ENODEV', 'this GICv3 host has no GICv2-compatible virtual CPU interface (no GICV frame)');
}
