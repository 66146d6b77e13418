// The default scenario on a GICv3 host, run as `irqfwd run scenarios/gicv3-default.yaml` runs it: the VMM builds a
// KVM_DEV_TYPE_ARM_VGIC_V3 with one redistributor region (hw/intc/arm_gicv3_kvm.c kvm_arm_gicv3_realize), the guest
// runs irq-gic-v3.c over ICV_*, and the forwarded SPI goes through an ICH_LR_EL2 with HW=1.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/loader.js';
import { runScenario } from '../../src/scenario/runner.js';

const DIR = join(import.meta.dirname, '../../scenarios');

describe('scenarios/gicv3-default.yaml: normal vs forwarded on a GICv3 host', () => {
  const v3 = runScenario(loadScenarioFile(join(DIR, 'gicv3-default.yaml')), { modes: ['normal', 'forwarded'] });
  const v2 = runScenario(loadScenarioFile(join(DIR, 'default.yaml')), { modes: ['normal', 'forwarded'] });

  it('delivers every IRQ on both paths with no invariant violated', () => {
    for (const run of v3.runs) {
      expect(run.violations).toEqual([]);
      expect(run.metrics.irqs).toMatchObject({ raised: 1000, delivered: 1000, lost: 0, leftActive: 0, leftMasked: 0 });
    }
  });

  it('forwarding removes the maintenance exit and the VFIO round trip, as on GICv2', () => {
    const [normal, fwd] = v3.runs;
    expect(normal!.metrics.exits.perIrq.total).toBe(2);
    expect(normal!.metrics.counters).toMatchObject({ unmasks: 1000, maintenanceIrqs: 1000 });
    expect(fwd!.metrics.exits.perIrq.total).toBe(1);
    expect(fwd!.metrics.counters).toMatchObject({ unmasks: 0, resamples: 0, maintenanceIrqs: 0 });
  });

  it('runs a different machine than the GICv2 default: other host cycles per IRQ on both paths', () => {
    for (let i = 0; i < 2; i++) {
      expect(v3.runs[i]!.metrics.hostCycles.perIrq).not.toBe(v2.runs[i]!.metrics.hostCycles.perIrq);
    }
  });
});
