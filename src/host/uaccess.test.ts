import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ErrnoError, isErrnoError } from '../abi/errno.js';
import { kvmDeviceAttr } from '../abi/kvmStructs.js';
import { REDZONE, TASK_SIZE, USER_BASE, UserMemory } from './uaccess.js';

/** Runs `f` and returns the ErrnoError it throws (failing the test if it throws anything else or nothing). */
function errnoOf(f: () => unknown): ErrnoError {
  try {
    f();
  } catch (e) {
    if (isErrnoError(e)) return e;
    throw e;
  }
  throw new Error('expected an ErrnoError');
}

describe('UserMemory.alloc', () => {
  it('never hands out NULL, starts at USER_BASE and honours alignment', () => {
    const m = new UserMemory();
    const a = m.alloc(3);
    expect(a).toBe(USER_BASE);
    const b = m.alloc(16, 64);
    expect(b % 64).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 3 + REDZONE);
    expect(m.allocationCount).toBe(2);
  });

  it('zero-fills; a bad length or alignment is a TypeError naming it, a huge one ENOMEM', () => {
    const m = new UserMemory();
    expect(Array.from(m.copyFromUser(m.alloc(4), 4))).toEqual([0, 0, 0, 0]);
    expect(() => m.alloc(-1)).toThrow(/alloc: len must be a non-negative integer, got -1/);
    expect(() => m.alloc(4, 3)).toThrow(/alloc: align must be a power of two/);
    expect(errnoOf(() => m.alloc(2 ** 40)).errno).toBe('ENOMEM');
  });

  it('keeps allocations disjoint and separated by a redzone', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.constantFrom(1, 2, 4, 8, 4096)), { maxLength: 30 }),
        (reqs) => {
          const m = new UserMemory();
          let prevEnd = 0;
          for (const [len, align] of reqs) {
            const a = m.alloc(len, align);
            expect(a).toBeGreaterThanOrEqual(Math.max(prevEnd + REDZONE, USER_BASE));
            expect(a % align).toBe(0);
            prevEnd = a + len;
            if (len > 0) expect(m.isMapped(a + len)).toBe(false);
          }
        },
      ),
    );
  });
});

describe('UserMemory accessors', () => {
  it('copies to and from user memory, and a view writes through', () => {
    const m = new UserMemory();
    const a = m.alloc(8);
    m.copyToUser(a + 2, Uint8Array.from([1, 2, 3]));
    expect(Array.from(m.copyFromUser(a, 8))).toEqual([0, 0, 1, 2, 3, 0, 0, 0]);
    m.view(a, 8).setUint16(6, 0xbeef, true);
    expect(Array.from(m.copyFromUser(a + 6, 2))).toEqual([0xef, 0xbe]);
  });

  it('copyFromUser returns a copy, not an alias', () => {
    const m = new UserMemory();
    const a = m.allocBytes(Uint8Array.from([9]));
    const copy = m.copyFromUser(a, 1);
    copy[0] = 1;
    expect(m.copyFromUser(a, 1)[0]).toBe(9);
  });

  it('reads and writes __u32, __s32 and __u64 little-endian', () => {
    const m = new UserMemory();
    const a = m.alloc(16);
    m.writeU32(a, 0xdeadbeef);
    expect(Array.from(m.copyFromUser(a, 4))).toEqual([0xef, 0xbe, 0xad, 0xde]);
    expect(m.readU32(a)).toBe(0xdeadbeef);
    expect(m.readS32(a)).toBe(0xdeadbeef | 0);
    m.writeS32(a + 4, -1);
    expect(m.readU32(a + 4)).toBe(0xffffffff);
    m.writeU64(a + 8, 0x0102_0304_0506_0708n);
    expect(m.readU64(a + 8)).toBe(0x0102_0304_0506_0708n);
    expect(m.copyFromUser(a + 8, 1)[0]).toBe(8);
    m.writeU64(a + 8, 5);
    expect(m.readU64(a + 8)).toBe(5n);
    expect(m.getUserS32(a + 4)).toBe(-1);
    m.putUserU32(a, 7);
    expect(m.getUserU32(a)).toBe(7);
    expect(() => m.writeU32(a, 2 ** 32)).toThrow(TypeError);
    expect(() => m.writeS32(a, 0x8000_0000)).toThrow(TypeError);
    expect(() => m.writeU64(a, -1)).toThrow(/put_user: value -1 is not a __u64/);
  });

  it('round-trips random bytes at random offsets inside an allocation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 0, max: 64 }), (bytes, off) => {
        const m = new UserMemory();
        const a = m.alloc(128);
        m.copyToUser(a + off, bytes);
        expect(m.copyFromUser(a + off, bytes.length)).toEqual(bytes);
      }),
    );
  });

  it('reads a NUL-terminated string (strndup_user)', () => {
    const m = new UserMemory();
    const s = m.writeString('fff51000.ethernet');
    expect(m.readCString(s, 4096)).toBe('fff51000.ethernet');
    expect(errnoOf(() => m.readCString(s, 5)).errno).toBe('EINVAL');
    const noNul = m.allocBytes(Uint8Array.from([0x41, 0x42]));
    expect(errnoOf(() => m.readCString(noNul, 100)).message).toMatch(/runs into 0x[0-9a-f]+ is not mapped/);
  });
});

describe('UserMemory faults (EFAULT)', () => {
  it('NULL and the low 64 KiB are never mapped', () => {
    const m = new UserMemory();
    m.alloc(16);
    const e = errnoOf(() => m.copyFromUser(0, 4));
    expect(e.errno).toBe('EFAULT');
    expect(e.code).toBe(14);
    expect(e.message).toContain('0x0');
    expect(e.message).toContain('NULL');
    expect(errnoOf(() => m.readU32(USER_BASE - 4)).errno).toBe('EFAULT');
  });

  it('a never-allocated address faults, naming it', () => {
    const m = new UserMemory();
    m.alloc(16);
    const e = errnoOf(() => m.view(0x4000_0000, 4));
    expect(e.errno).toBe('EFAULT');
    expect(e.message).toContain('0x40000000');
    expect(e.message).toContain('never allocated');
  });

  it('a freed address faults, naming it and saying it was freed', () => {
    const m = new UserMemory();
    const a = m.alloc(32);
    m.readU32(a + 8);
    m.free(a);
    expect(m.allocationCount).toBe(0);
    const e = errnoOf(() => m.readU32(a + 8));
    expect(e.errno).toBe('EFAULT');
    expect(e.message).toContain(`0x${(a + 8).toString(16)}`);
    expect(e.message).toContain('freed');
    expect(errnoOf(() => m.copyToUser(a, Uint8Array.of(1))).errno).toBe('EFAULT');
  });

  it('addresses are not reused after free', () => {
    const m = new UserMemory();
    const a = m.alloc(32);
    m.free(a);
    expect(m.alloc(32)).not.toBe(a);
  });

  it('a range that runs off the end of its allocation faults, and nothing is written', () => {
    const m = new UserMemory();
    const a = m.alloc(8);
    const e = errnoOf(() => m.copyToUser(a + 4, Uint8Array.from([1, 2, 3, 4, 5])));
    expect(e.errno).toBe('EFAULT');
    expect(e.message).toContain('past the end');
    expect(Array.from(m.copyFromUser(a, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(errnoOf(() => m.readU64(a + 4)).errno).toBe('EFAULT');
  });

  it('a zero-length copy never faults, even at NULL', () => {
    const m = new UserMemory();
    expect(m.copyFromUser(0, 0).length).toBe(0);
    expect(() => m.copyToUser(0, new Uint8Array(0))).not.toThrow();
  });

  it('a __u64 user pointer beyond TASK_SIZE faults when dereferenced, not when decoded', () => {
    const m = new UserMemory();
    const bytes = kvmDeviceAttr.encode({ flags: 0, group: 1, attr: 1, addr: 0xffff_ffff_ffff_fff0n });
    const attr = kvmDeviceAttr.decode(bytes);
    const e = errnoOf(() => m.readS32(attr.addr));
    expect(e.errno).toBe('EFAULT');
    expect(e.message).toContain('0xfffffffffffffff0');
    expect(m.isMapped(attr.addr)).toBe(false);
    expect(errnoOf(() => m.view(BigInt(TASK_SIZE) - 2n, 4)).errno).toBe('EFAULT');
    const a = m.alloc(4);
    m.writeS32(BigInt(a), 42);
    expect(m.readS32(BigInt(a))).toBe(42);
  });

  it('free of an address that does not start a live allocation is EINVAL (munmap of nothing of ours)', () => {
    const m = new UserMemory();
    const a = m.alloc(8);
    expect(errnoOf(() => m.free(a + 1)).errno).toBe('EINVAL');
    m.free(a);
    expect(errnoOf(() => m.free(a)).errno).toBe('EINVAL');
  });

  it('any access is either inside one live allocation or EFAULT', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 0x400 }),
        fc.integer({ min: 1, max: 16 }),
        (lens, frees, off, len) => {
          const m = new UserMemory();
          const addrs = lens.map((l) => m.alloc(l));
          addrs.forEach((a, i) => {
            if (frees[i]) m.free(a);
          });
          const addr = USER_BASE + off;
          const live = addrs.some((a, i) => !frees[i] && addr >= a && addr + len <= a + (lens[i] ?? 0));
          if (live) expect(m.copyFromUser(addr, len).length).toBe(len);
          else expect(errnoOf(() => m.copyFromUser(addr, len)).errno).toBe('EFAULT');
        },
      ),
    );
  });
});
