import { describe, expect, it } from 'vitest';
import { ModelError } from '../sim/errors.js';
import { PhysicalMemory } from './physMem.js';

describe('PhysicalMemory', () => {
  it('reads zero where nothing was written, little-endian words, and allocates only written pages', () => {
    const m = new PhysicalMemory();
    expect(m.readU32(0x1000_0000)).toBe(0);
    m.writeU32(0x2_0000_1000, 0xdeadbeef);
    expect(m.readU8(0x2_0000_1000)).toBe(0xef);
    expect(m.readU8(0x2_0000_1003)).toBe(0xde);
    m.writeU64(0x2_0000_1008, 1, 0x80000000);
    const out = new Uint32Array(2);
    m.readU64(0x2_0000_1008, out, 0);
    expect([...out]).toEqual([1, 0x80000000]);
    expect(m.pageCount).toBe(1);
  });

  it('refuses a misaligned, negative or beyond-52-bit address', () => {
    const m = new PhysicalMemory();
    expect(() => m.readU32(2)).toThrow(ModelError);
    expect(() => m.writeU8(-1, 0)).toThrow(ModelError);
    expect(() => m.readU8(2 ** 52)).toThrow(ModelError);
  });
});
