import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stateHash } from '../../sim/snapshot.js';
import { VGIC_CONFIG_EDGE, VGIC_CONFIG_LEVEL, VgicIrq } from './vgicIrq.js';

// struct vgic_irq's fields packed into one integer: each accessor keeps its own value, whatever the others are written.
const FLAGS = ['lineLevel', 'pendingLatch', 'active', 'enabled', 'onLr', 'hw'] as const;
const BYTES = ['priority', 'targets', 'activeSource'] as const;

type Write =
  | { kind: 'flag'; field: (typeof FLAGS)[number]; value: boolean }
  | { kind: 'byte'; field: (typeof BYTES)[number]; value: number }
  | { kind: 'group'; value: number }
  | { kind: 'config'; value: typeof VGIC_CONFIG_EDGE | typeof VGIC_CONFIG_LEVEL };

const write: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant('flag' as const), field: fc.constantFrom(...FLAGS), value: fc.boolean() }),
  fc.record({
    kind: fc.constant('byte' as const),
    field: fc.constantFrom(...BYTES),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant('group' as const), value: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('config' as const), value: fc.constantFrom(VGIC_CONFIG_EDGE, VGIC_CONFIG_LEVEL) }),
);

describe('VgicIrq (struct vgic_irq)', () => {
  it('starts as kvm_vgic_dist_init leaves an SPI: every flag clear, priority 0, group 0, the config given', () => {
    const irq = new VgicIrq(40, 7, null, VGIC_CONFIG_LEVEL);
    expect(FLAGS.map((f) => irq[f])).toEqual([false, false, false, false, false, false]);
    expect([irq.config, irq.group, irq.priority, irq.targets, irq.activeSource, irq.source]).toEqual([
      VGIC_CONFIG_LEVEL,
      0,
      0,
      0,
      0,
      0,
    ]);
  });

  it('every packed field reads back the last value written to it, whatever was written to the others', () => {
    fc.assert(
      fc.property(fc.array(write, { maxLength: 80 }), (writes) => {
        const irq = new VgicIrq(33, 1, null, VGIC_CONFIG_EDGE);
        const want: Record<string, number | boolean> = { config: VGIC_CONFIG_EDGE, group: 0 };
        for (const f of FLAGS) want[f] = false;
        for (const f of BYTES) want[f] = 0;
        for (const w of writes) {
          if (w.kind === 'flag') irq[w.field] = w.value;
          else if (w.kind === 'byte') irq[w.field] = w.value;
          else if (w.kind === 'group') irq.group = w.value;
          else irq.config = w.value;
          want[w.kind === 'flag' || w.kind === 'byte' ? w.field : w.kind] = w.value;
        }
        const got: Record<string, number | boolean> = { config: irq.config, group: irq.group };
        for (const f of FLAGS) got[f] = irq[f];
        for (const f of BYTES) got[f] = irq[f];
        expect(got).toEqual(want);
      }),
    );
  });

  it('a vIRQ mapped and owned, then unmapped and released, keys as one never bound (kvm_vgic_unmap_phys_irq, kvm_vgic_release_owner)', () => {
    const fresh = new VgicIrq(48, 3, null, VGIC_CONFIG_LEVEL);
    const irq = new VgicIrq(48, 3, null, VGIC_CONFIG_LEVEL);
    const owner = {};
    irq.owner = owner;
    irq.hostIrq = 25;
    irq.hwintid = 80;
    irq.ops = { getInputLevel: () => true };
    expect([irq.owner, irq.hostIrq, irq.hwintid, irq.ops?.getInputLevel?.(48)]).toEqual([owner, 25, 80, true]);
    expect(stateHash(irq)).not.toBe(stateHash(fresh));
    irq.hwintid = 0;
    irq.ops = null;
    irq.owner = null;
    expect(stateHash(irq)).not.toBe(stateHash(fresh)); // host_irq is still set
    irq.hostIrq = 0;
    expect([irq.owner, irq.hostIrq, irq.hwintid, irq.ops]).toEqual([null, 0, 0, null]);
    expect(stateHash(irq)).toBe(stateHash(fresh));
  });
});
