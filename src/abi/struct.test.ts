import { describe, expect, it } from 'vitest';
import { ModelError } from '../sim/errors.js';
import { defineStruct, s32, u8, u8Array, u16, u32, u32Array, u64 } from './struct.js';

const demo = defineStruct(
  'demo',
  32,
  { a: u8(0), b: u16(2), c: s32(4), d: u64(8), e: u32Array(16, 2), f: u32(24) },
  { minszField: 'e' },
);

describe('defineStruct', () => {
  it('computes offsetof, offsetofend and minsz like the kernel', () => {
    expect(demo.size).toBe(32);
    expect(demo.offsetof('d')).toBe(8);
    expect(demo.offsetofend('d')).toBe(16);
    expect(demo.offsetofend('e')).toBe(24);
    expect(demo.minsz).toBe(24);
  });

  it('encodes little-endian at the declared offsets and zeroes padding', () => {
    const bytes = demo.encode({ a: 0x12, b: 0x3456, c: -2, d: 0x1_0000_0002n, e: [7, 8], f: 0xdeadbeef });
    expect(bytes.length).toBe(32);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0x12, 0, 0x56, 0x34]);
    expect(Array.from(bytes.subarray(4, 8))).toEqual([0xfe, 0xff, 0xff, 0xff]);
    expect(Array.from(bytes.subarray(8, 16))).toEqual([2, 0, 0, 0, 1, 0, 0, 0]);
    expect(Array.from(bytes.subarray(16, 24))).toEqual([7, 0, 0, 0, 8, 0, 0, 0]);
    expect(Array.from(bytes.subarray(24, 32))).toEqual([0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0]);
  });

  it('round-trips through a DataView at an offset', () => {
    const value = { a: 1, b: 2, c: -3, d: 0xffff_ffff_ffff_ffffn, e: [0xffffffff, 0], f: 5 };
    const view = new DataView(new ArrayBuffer(40));
    demo.write(view, value, 8);
    expect(demo.read(view, 8)).toEqual(value);
  });

  it('reads a minsz prefix with later members as zero, and writes only the prefix', () => {
    const full = demo.encode({ a: 1, b: 2, c: 3, d: 4, e: [5, 6], f: 7 });
    expect(demo.decode(full.subarray(0, 24))).toEqual({ a: 1, b: 2, c: 3, d: 4n, e: [5, 6], f: 0 });
    const prefix = new Uint8Array(24);
    demo.write(new DataView(prefix.buffer), { a: 1, b: 2, c: 3, d: 4, e: [5, 6], f: 7 });
    expect(Array.from(prefix)).toEqual(Array.from(full.subarray(0, 24)));
    expect(() => demo.decode(full.subarray(0, 23))).toThrow(ModelError);
  });

  it('wraps a negative int into a u32 member as C does', () => {
    const bytes = demo.encode({ a: 0, b: 0, c: 0, d: 0, e: [-1, 0], f: -1 });
    expect(demo.decode(bytes).f).toBe(0xffffffff);
    expect(demo.decode(bytes).e).toEqual([0xffffffff, 0]);
  });

  it('decodes a __u64 losslessly as a bigint, whatever its bits', () => {
    const bytes = new Uint8Array(32);
    new DataView(bytes.buffer).setBigUint64(8, 0xfedc_ba98_7654_3210n, true);
    expect(demo.decode(bytes).d).toBe(0xfedc_ba98_7654_3210n);
  });

  it('accepts a __u64 as a bigint or a safe non-negative number, and leaves out arrays as zeros', () => {
    expect(demo.encode({ a: 0, b: 0, c: 0, d: 5, f: 0 })).toEqual(
      demo.encode({ a: 0, b: 0, c: 0, d: 5n, e: [0, 0], f: 0 }),
    );
  });

  it('encodes and decodes __u8 arrays', () => {
    const bytesDemo = defineStruct('bytes', 8, { v: u8Array(0, 8) });
    const bytes = bytesDemo.encode({ v: [1, 2, 3, 4, 5, 6, 7, 0xff] });
    expect(Array.from(bytes)).toEqual([1, 2, 3, 4, 5, 6, 7, 0xff]);
    expect(bytesDemo.decode(bytes).v).toEqual([1, 2, 3, 4, 5, 6, 7, 0xff]);
    expect(() => bytesDemo.encode({ v: [256, 0, 0, 0, 0, 0, 0, 0] })).toThrow(ModelError);
  });

  it('treats out-of-range values as model bugs', () => {
    const ok = { a: 0, b: 0, c: 0, d: 0, e: [0, 0], f: 0 };
    expect(() => demo.encode({ ...ok, a: 256 })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, c: 0x80000000 })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, d: -1 })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, d: 2 ** 53 })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, d: 1n << 64n })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, d: -1n })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, f: 1.5 })).toThrow(ModelError);
    expect(() => demo.encode({ ...ok, e: [1] })).toThrow(ModelError);
  });

  it('refuses layouts that overlap, overrun or misalign', () => {
    expect(() => defineStruct('x', 8, { a: u32(0), b: u32(2) })).toThrow(ModelError);
    expect(() => defineStruct('x', 8, { a: u64(4) })).toThrow(ModelError);
    expect(() => defineStruct('x', 8, { a: u32Array(2, 1) })).toThrow(ModelError);
    expect(() => defineStruct('x', 8, { a: u32(8) })).toThrow(ModelError);
  });
});
