import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../sim/errors.js';
import { KVM_ARM_IRQ_TYPE_PPI, KVM_ARM_IRQ_TYPE_SPI, kvmArmIrqLineDecode, kvmArmIrqLineEncode } from './kvmArm64.js';

describe('KVM_IRQ_LINE irq field (arch/arm64/kvm/arm.c kvm_vm_ioctl_irq_line)', () => {
  it('packs vcpu2 | type | vcpu | num into 4 | 4 | 8 | 16 bits', () => {
    expect(kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_SPI, vcpu: 0, num: 80 })).toBe(0x0100_0050);
    expect(kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_PPI, vcpu: 3, num: 27 })).toBe(0x0203_001b);
    // vcpu 0x123: vcpu_index 0x23, vcpu2_index 1 (KVM_CAP_ARM_IRQ_LINE_LAYOUT_2)
    expect(kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_PPI, vcpu: 0x123, num: 16 })).toBe(0x1223_0010);
    expect(kvmArmIrqLineDecode(0xf2ff_ffff)).toEqual({ type: 2, vcpu: 0xfff, num: 0xffff });
  });

  it('round-trips every field combination', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xf }),
        fc.integer({ min: 0, max: 0xfff }),
        fc.integer({ min: 0, max: 0xffff }),
        (type, vcpu, num) => {
          const irq = kvmArmIrqLineEncode({ type, vcpu, num });
          expect(irq).toBeGreaterThanOrEqual(0);
          expect(irq).toBeLessThanOrEqual(0xffffffff);
          expect(kvmArmIrqLineDecode(irq)).toEqual({ type, vcpu, num });
        },
      ),
    );
  });

  it('decodes every 32-bit value and re-encodes it exactly (no bit is ignored)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (irq) => {
        expect(kvmArmIrqLineEncode(kvmArmIrqLineDecode(irq))).toBe(irq);
      }),
    );
  });

  it('rejects fields that do not fit as model bugs', () => {
    expect(() => kvmArmIrqLineEncode({ type: 16, vcpu: 0, num: 0 })).toThrow(ModelError);
    expect(() => kvmArmIrqLineEncode({ type: 1, vcpu: 0x1000, num: 0 })).toThrow(ModelError);
    expect(() => kvmArmIrqLineEncode({ type: 1, vcpu: 0, num: 0x10000 })).toThrow(ModelError);
  });
});
