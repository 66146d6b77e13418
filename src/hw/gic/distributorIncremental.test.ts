import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GicDistributor } from './distributor.js';

// The distributor keeps each CPU's best candidate up to date incrementally: a change re-evaluates only the SPI word
// it touched and only the CPUs the changed INTIDs target. GICD_CTLR rewritten with its own value recomputes every
// word and every CPU from scratch, so it is the oracle.

const NR_CPUS = 4;
const INTIDS = [0, 3, 15, 16, 27, 31, 32, 33, 63, 64, 100, 127, 200, 255];

const opArb = fc.record({
  kind: fc.constantFrom('line', 'pend', 'unpend', 'enable', 'disable', 'active', 'inactive', 'ack', 'eoi', 'target'),
  intid: fc.constantFrom(...INTIDS),
  cpu: fc.integer({ min: 0, max: NR_CPUS - 1 }),
  level: fc.boolean(),
  mask: fc.integer({ min: 0, max: (1 << NR_CPUS) - 1 }),
});

describe('distributor incremental best candidate', () => {
  it('after every operation each CPU sees what a from-scratch recompute gives', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const d = new GicDistributor({ nrCpus: NR_CPUS, nrIrqs: 256 });
        d.setCtlr(1);
        for (const intid of INTIDS) {
          d.setPriority(intid, (intid * 37) & 0xf8, NR_CPUS - 1);
          if (intid >= 32) d.setTargets(intid, 1 << (intid % NR_CPUS));
          if (intid >= 16 && intid % 2 === 0) d.setConfig(intid, 'edge', 0);
        }
        for (const o of ops) {
          const sgi = o.intid < 16;
          const cpu = o.intid < 32 ? o.cpu : undefined;
          switch (o.kind) {
            case 'line':
              if (!sgi) d.setLine(o.intid, o.level, cpu);
              break;
            case 'pend':
              d.setPending(o.intid, cpu);
              break;
            case 'unpend':
              d.clearPending(o.intid, cpu);
              break;
            case 'enable':
              d.enable(o.intid, cpu);
              break;
            case 'disable':
              d.disable(o.intid, cpu);
              break;
            case 'active':
            case 'inactive':
              d.setActive(o.intid, o.kind === 'active', cpu);
              break;
            case 'ack':
              d.acknowledge(o.cpu);
              break;
            case 'eoi':
              d.deactivate(o.intid, o.cpu);
              break;
            case 'target':
              if (!sgi && o.intid >= 32) d.setTargets(o.intid, o.mask);
              break;
          }
          const incremental = Array.from({ length: NR_CPUS }, (_, c) => d.highestPending(c));
          d.setCtlr(d.ctlrValue);
          const scratch = Array.from({ length: NR_CPUS }, (_, c) => d.highestPending(c));
          expect(incremental).toEqual(scratch);
        }
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  it('a pending, enabled SPI reaches exactly its target CPUs', () => {
    const d = new GicDistributor({ nrCpus: NR_CPUS, nrIrqs: 256 });
    d.setCtlr(1);
    d.setTargets(100, 0b0110);
    d.enable(100);
    d.setLine(100, true);
    expect(Array.from({ length: NR_CPUS }, (_, c) => d.highestPending(c))).toEqual([1023, 100, 100, 1023]);
  });
});
