/**
 * Every uapi struct codec: sizeof / offsetof / minsz as gcc computes them on the uapi headers, encode→decode round trips,
 * and decoding arbitrary bytes never throws (any bit pattern userspace can write is a value a handler must judge).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../sim/errors.js';
import {
  KVM_RUN_EXIT_UNION_OFFSET,
  kvmArchForwardedIrq,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmIrqLevel,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmMsi,
  kvmRun,
  kvmRunSystemEvent,
  kvmVcpuInit,
} from './kvmStructs.js';
import type { Field, Fields, StructCodec, StructInit } from './struct.js';
import {
  decodeVfioIrqSetBools,
  decodeVfioIrqSetEventfds,
  VFIO_IRQ_SET_MINSZ,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioInfoCapHeader,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIommuType1InfoCapIovaRange,
  vfioIommuType1InfoCapMigration,
  vfioIommuType1InfoDmaAvail,
  vfioIovaRange,
  vfioIrqInfo,
  vfioIrqSet,
  vfioIrqSetBoolData,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
  vfioRegionInfo,
} from './vfioStructs.js';

/** A codec with its member types erased, so that one table can hold them all. */
interface AnyCodec {
  readonly name: string;
  readonly size: number;
  readonly minsz: number;
  readonly fields: Fields;
  offsetof(key: string): number;
  offsetofend(key: string): number;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): Record<string, unknown>;
}

function erase<F extends Fields>(c: StructCodec<F>): AnyCodec {
  return {
    name: c.name,
    size: c.size,
    minsz: c.minsz,
    fields: c.fields,
    offsetof: (key) => c.offsetof(key as keyof F & string),
    offsetofend: (key) => c.offsetofend(key as keyof F & string),
    encode: (value) => c.encode(value as StructInit<F>),
    decode: (bytes) => c.decode(bytes) as Record<string, unknown>,
  };
}

/** [codec, sizeof, minsz, { member: offsetof }] — numbers from gcc offsetof/sizeof on the 6.1 uapi headers. */
const table: ReadonlyArray<readonly [AnyCodec, number, number, Readonly<Record<string, number>>]> = [
  [erase(vfioGroupStatus), 8, 8, { argsz: 0, flags: 4 }],
  [erase(vfioDeviceInfo), 20, 16, { argsz: 0, flags: 4, num_regions: 8, num_irqs: 12, cap_offset: 16 }],
  [erase(vfioRegionInfo), 32, 32, { argsz: 0, flags: 4, index: 8, cap_offset: 12, size: 16, offset: 24 }],
  [erase(vfioIrqInfo), 16, 16, { argsz: 0, flags: 4, index: 8, count: 12 }],
  [erase(vfioIrqSet), 20, 20, { argsz: 0, flags: 4, index: 8, start: 12, count: 16 }],
  [erase(vfioIommuType1Info), 24, 16, { argsz: 0, flags: 4, iova_pgsizes: 8, cap_offset: 16 }],
  [erase(vfioInfoCapHeader), 8, 8, { id: 0, version: 2, next: 4 }],
  [erase(vfioIommuType1InfoCapIovaRange), 16, 16, { id: 0, version: 2, next: 4, nr_iovas: 8 }],
  [erase(vfioIovaRange), 16, 16, { start: 0, end: 8 }],
  [
    erase(vfioIommuType1InfoCapMigration),
    32,
    32,
    { id: 0, version: 2, next: 4, flags: 8, pgsize_bitmap: 16, max_dirty_bitmap_size: 24 },
  ],
  [erase(vfioIommuType1InfoDmaAvail), 12, 12, { id: 0, version: 2, next: 4, avail: 8 }],
  [erase(vfioIommuType1DmaMap), 32, 32, { argsz: 0, flags: 4, vaddr: 8, iova: 16, size: 24 }],
  [erase(vfioIommuType1DmaUnmap), 24, 24, { argsz: 0, flags: 4, iova: 8, size: 16 }],
  [erase(kvmIrqLevel), 8, 8, { irq: 0, level: 4 }],
  [erase(kvmIrqfd), 32, 32, { fd: 0, gsi: 4, flags: 8, resamplefd: 12, pad: 16 }],
  [erase(kvmCreateDevice), 12, 12, { type: 0, fd: 4, flags: 8 }],
  [erase(kvmDeviceAttr), 24, 24, { flags: 0, group: 4, attr: 8, addr: 16 }],
  [erase(kvmVcpuInit), 32, 32, { target: 0, features: 4 }],
  [
    erase(kvmRun),
    2352,
    2352,
    {
      request_interrupt_window: 0,
      immediate_exit: 1,
      exit_reason: 8,
      ready_for_interrupt_injection: 12,
      if_flag: 13,
      flags: 14,
      mmio_phys_addr: 32,
      mmio_data: 40,
      mmio_len: 48,
      mmio_is_write: 52,
    },
  ],
  [erase(kvmRunSystemEvent), 136, 136, { type: 0, ndata: 4, flags: 8 }],
  [erase(kvmArchForwardedIrq), 12, 12, { fd: 0, irq_index: 4, guest_irq: 8 }],
  [erase(kvmMsi), 32, 32, { address_lo: 0, address_hi: 4, data: 8, flags: 12, devid: 16, pad: 20 }],
  [erase(kvmIrqRouting), 8, 8, { nr: 0, flags: 4 }],
  [erase(kvmIrqRoutingEntry), 48, 48, { gsi: 0, type: 4, flags: 8, pad: 12, u0: 16, u1: 20, u2: 24, u3: 28, upad: 32 }],
];

function arbField(f: Field): fc.Arbitrary<unknown> {
  switch (f.kind) {
    case 'u8':
      return fc.integer({ min: 0, max: 0xff });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'u32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 's32':
      return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'u64':
      return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    case 'u8[]':
      return fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: f.length, maxLength: f.length });
    case 'u32[]':
      return fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: f.length, maxLength: f.length });
  }
}

function arbValue(codec: AnyCodec): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, f] of Object.entries(codec.fields)) model[key] = arbField(f);
  return fc.record(model);
}

/** Which bytes of sizeof some member covers. */
function coverage(codec: AnyCodec): Uint8Array {
  const covered = new Uint8Array(codec.size);
  for (const key of Object.keys(codec.fields)) covered.fill(1, codec.offsetof(key), codec.offsetofend(key));
  return covered;
}

const layouts = table.map(([c, size, minsz, offsets]) => [c.name, c, size, minsz, offsets] as const);

describe.each(layouts)('%s', (_name, codec, size, minsz, offsets) => {
  it(`has the kernel layout: sizeof ${size}, minsz ${minsz}`, () => {
    expect(codec.size).toBe(size);
    expect(codec.minsz).toBe(minsz);
    expect(Object.keys(codec.fields).sort()).toEqual(Object.keys(offsets).sort());
    for (const [key, off] of Object.entries(offsets)) expect(codec.offsetof(key)).toBe(off);
  });

  it('round-trips encode → decode', () => {
    fc.assert(
      fc.property(arbValue(codec), (value) => {
        const bytes = codec.encode(value);
        expect(bytes.length).toBe(size);
        expect(codec.decode(bytes)).toEqual(value);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes any bytes without throwing, and re-encodes the bytes its members cover', () => {
    const covered = coverage(codec);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: size, maxLength: size }), (bytes) => {
        const again = codec.encode(codec.decode(bytes));
        expect(Array.from(again)).toEqual(Array.from(bytes, (b, i) => (covered[i] ? b : 0)));
      }),
      { numRuns: 200 },
    );
  });

  it('decodes a prefix of at least minsz bytes, members past it reading as zero', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: minsz, max: size }),
        fc.uint8Array({ minLength: size, maxLength: size }),
        (n, b) => {
          const decoded = codec.decode(b.subarray(0, n));
          for (const key of Object.keys(codec.fields)) {
            if (codec.offsetofend(key) > n) expect(decoded[key]).toEqual(codec.decode(new Uint8Array(size))[key]);
          }
        },
      ),
      { numRuns: 50 },
    );
    if (minsz > 0) expect(() => codec.decode(new Uint8Array(minsz - 1))).toThrow(ModelError);
  });
});

describe('struct bytes', () => {
  it('kvm_arch_forwarded_irq is three little-endian __u32s', () => {
    const bytes = kvmArchForwardedIrq.encode({ fd: 5, irq_index: 1, guest_irq: 48 });
    expect(Array.from(bytes)).toEqual([5, 0, 0, 0, 1, 0, 0, 0, 48, 0, 0, 0]);
  });

  it('kvm_device_attr keeps a 64-bit attr and addr exactly', () => {
    const bytes = kvmDeviceAttr.encode({ flags: 0, group: 2, attr: 1, addr: 0xffff_0000_0000_1000n });
    expect(kvmDeviceAttr.decode(bytes)).toEqual({ flags: 0, group: 2, attr: 1n, addr: 0xffff_0000_0000_1000n });
  });

  it('kvm_irqfd wraps fd -1 into 0xffffffff and zeroes pad when left out', () => {
    const bytes = kvmIrqfd.encode({ fd: -1, gsi: 48, flags: 2, resamplefd: 7 });
    expect(kvmIrqfd.decode(bytes)).toEqual({
      fd: 0xffffffff,
      gsi: 48,
      flags: 2,
      resamplefd: 7,
      pad: Array(16).fill(0),
    });
  });

  it('kvm_run reads an MMIO exit and a system event from the same union', () => {
    const run = new DataView(new ArrayBuffer(kvmRun.size));
    kvmRun.write(run, {
      request_interrupt_window: 0,
      immediate_exit: 0,
      exit_reason: 6,
      ready_for_interrupt_injection: 0,
      if_flag: 0,
      flags: 0,
      mmio_phys_addr: 0x0900_0000n,
      mmio_data: [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0],
      mmio_len: 4,
      mmio_is_write: 1,
    });
    expect(run.getUint32(8, true)).toBe(6);
    expect(run.getUint32(40, true)).toBe(0x12345678);
    const ev = kvmRunSystemEvent.read(run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(ev.type).toBe(0x0900_0000);
  });

  it('vfio_irq_set with eventfd data: argsz = 20 + 4 per fd', () => {
    const data = vfioIrqSetEventfdData([7, -1]);
    const bytes = vfioIrqSetWithData({ flags: 0x24, index: 0, start: 0, count: 2 }, data);
    expect(bytes.length).toBe(28);
    expect(vfioIrqSet.decode(bytes)).toEqual({ argsz: 28, flags: 0x24, index: 0, start: 0, count: 2 });
    expect(decodeVfioIrqSetEventfds(bytes.subarray(VFIO_IRQ_SET_MINSZ), 2)).toEqual([7, -1]);
    expect(() => decodeVfioIrqSetEventfds(bytes.subarray(VFIO_IRQ_SET_MINSZ), 3)).toThrow(ModelError);
  });

  it('vfio_irq_set with bool data: one byte each, any non-zero is true', () => {
    expect(Array.from(vfioIrqSetBoolData([true, false]))).toEqual([1, 0]);
    expect(decodeVfioIrqSetBools(Uint8Array.from([0, 2, 0xff]), 3)).toEqual([false, true, true]);
  });
});
