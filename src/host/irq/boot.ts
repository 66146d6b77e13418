/**
 * Boot the host's interrupt path on an engine: the GICv2 wired to the CPUs' nIRQ/nVIRQ inputs, the GIC driver
 * initialised as Linux does it, the generic IRQ layer, and gic_handle_irq installed as every CPU's IRQ vector.
 */
import { Gic } from '../../hw/gic/gic.js';
import type { Engine } from '../../sim/engine.js';
import { Genirq } from './genirq.js';
import { GicV2Chip, gicHandleIrq, gicV2Init } from './irqGicV2.js';

export interface HostIrqOptions {
  /** INTIDs the distributor implements (a multiple of 32; default 256). */
  nrIrqs?: number;
  /** List registers per virtual interface (default 4). */
  nrLrs?: number;
}

export interface HostIrq {
  readonly gic: Gic;
  readonly chip: GicV2Chip;
  readonly genirq: Genirq;
}

export function bootHostIrq(engine: Engine, opts: HostIrqOptions = {}): HostIrq {
  const gic = new Gic({
    nrCpus: engine.cpus.length,
    nrIrqs: opts.nrIrqs ?? 256,
    nrLrs: opts.nrLrs,
    onIrqLineChange: (cpu, level) => engine.setIrqLine(cpu, level),
    onVirqLineChange: (cpu, level) => engine.setVirqLine(cpu, level),
    newOid: (name) => engine.newOid(name),
  });
  gicV2Init(gic);
  const chip = new GicV2Chip(gic);
  const genirq = new Genirq(engine, chip);
  for (let cpu = 0; cpu < engine.cpus.length; cpu++) {
    engine.setIrqVector(cpu, `irq/${cpu}`, gicHandleIrq(genirq, chip, cpu));
  }
  return { gic, chip, genirq };
}
