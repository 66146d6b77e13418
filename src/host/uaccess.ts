/**
 * The user memory of one modelled process, and the kernel's accessors for it (copy_from_user, copy_to_user,
 * get_user, put_user, strndup_user).
 *
 * Sparse: only what was allocated exists. Each allocation is backed by its own zero-filled buffer, so any range inside
 * one allocation is contiguous and a DataView over it writes through. Access is checked per allocation rather than per
 * 4 KiB page: a byte outside every live allocation faults even where a real MMU would find the page mapped. That is
 * deliberate and stricter than Linux: a handler that reads past the struct userspace handed it gets EFAULT instead of
 * whatever lay beyond. Allocations sit at or above USER_BASE (NULL and the first 64 KiB stay unmapped), grow upward,
 * are separated by a redzone so that running off the end of one never lands in the next, and addresses are never
 * reused after free, so a stale pointer faults (and the message says it was freed).
 *
 * Addresses are numbers, or bigints as they come out of a __u64 struct member (kvm_device_attr.addr). The kernel sees
 * every user pointer as an unsigned long: a negative one is a huge address, so anything at or above TASK_SIZE,
 * negative or past 2^53, is a user pointer access_ok refuses — EFAULT, not a model bug. A length that is not a
 * non-negative integer, or a value that does not fit the field it is put into, is a TypeError naming it.
 */
import { errno } from '../abi/errno.js';
import { markImmutable } from '../sim/snapshot.js';

export const PAGE_SIZE = 4096;
/** The lowest address alloc hands out (the first 64 KiB stay unmapped, as mmap_min_addr keeps them). */
export const USER_BASE = 0x1_0000;
/** arm64 with 48-bit VAs: TASK_SIZE_64 = 1 << 48. access_ok fails at or above it. */
export const TASK_SIZE = 2 ** 48;
/** The largest single allocation the model backs with memory (bigger ones are ENOMEM, as mmap without overcommit). */
export const MAX_ALLOC = 256 * 1024 * 1024;
/** Unmapped bytes left after every allocation. */
export const REDZONE = 16;

/** A user virtual address: a number, or the bigint a __u64 member decodes to. */
export type UserAddr = number | bigint;

// Classes rather than object literals: the checker's state key reads a class's objects with one reader (literals
// of many shapes share Object's readers, tried one after the other).
class Range {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}
}

class Allocation extends Range {
  readonly bytes: Uint8Array;
  constructor(start: number, end: number) {
    super(start, end);
    this.bytes = new Uint8Array(end - start);
  }
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

function checkLen(len: number, verb: string): void {
  if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 0)
    throw new TypeError(`${verb}: len must be a non-negative integer, got ${String(len)}`);
}

/** The index of the last range starting at or below addr, or -1 (ranges sorted by start). */
function lastAtOrBelow(ranges: readonly Range[], addr: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid];
    if (r === undefined) break;
    if (r.start <= addr) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

export class UserMemory {
  /** Live allocations, sorted by start (addresses only grow, so appends keep the order). */
  private readonly allocations: Allocation[] = [];
  /** Freed allocations, sorted by start, kept only to say "freed" in EFAULT messages. */
  private readonly freed: Range[] = [];
  private next = USER_BASE;

  /** Maps `len` zero-filled bytes at a fresh address (never 0) aligned to `align` (a power of two up to 64 KiB). */
  alloc(len: number, align = 8): number {
    checkLen(len, 'alloc');
    if (
      typeof align !== 'number' ||
      !Number.isSafeInteger(align) ||
      align < 1 ||
      (align & (align - 1)) !== 0 ||
      align > PAGE_SIZE * 16
    ) {
      throw new TypeError(`alloc: align must be a power of two up to 64 KiB, got ${String(align)}`);
    }
    if (len > MAX_ALLOC) throw errno('ENOMEM', `alloc of ${len} bytes: the model maps at most ${MAX_ALLOC} at once`);
    const start = Math.ceil(this.next / align) * align;
    const end = start + len;
    if (end + REDZONE > TASK_SIZE) {
      throw errno('ENOMEM', `no room for ${len} bytes below TASK_SIZE ${hex(TASK_SIZE)}`);
    }
    this.allocations.push(new Allocation(start, end));
    this.next = end + REDZONE;
    return start;
  }

  /** Unmaps the allocation that starts at `addr`. Freeing anything else is a bug in the modelled program. */
  free(addr: number): void {
    const i = this.allocations.findIndex((a) => a.start === addr);
    const a = this.allocations[i];
    if (a === undefined) throw errno('EINVAL', `free(${String(addr)}): no live allocation starts there`);
    this.allocations.splice(i, 1);
    const at = lastAtOrBelow(this.freed, a.start) + 1;
    // never changed once freed: immutable, so copies of a state share it and the checker's state key hashes it once
    this.freed.splice(at, 0, markImmutable(new Range(a.start, a.end)));
  }

  /** Maps a copy of `bytes` and returns its address. */
  allocBytes(bytes: Uint8Array, align = 8): number {
    const addr = this.alloc(bytes.length, align);
    this.copyToUser(addr, bytes);
    return addr;
  }

  /** Maps `str` as UTF-8 followed by a NUL, and returns its address. */
  writeString(str: string): number {
    if (typeof str !== 'string') throw new TypeError(`writeString: str must be a string, got ${String(str)}`);
    const utf8 = new TextEncoder().encode(str);
    const addr = this.alloc(utf8.length + 1, 1);
    this.copyToUser(addr, utf8);
    return addr;
  }

  /** True if every byte of [addr, addr + len) is inside one live allocation. */
  isMapped(addr: UserAddr, len = 1): boolean {
    checkLen(len, 'isMapped');
    if (typeof addr !== 'number' && typeof addr !== 'bigint')
      throw new TypeError(`isMapped: addr must be an integer, got ${String(addr)}`);
    const a = typeof addr === 'bigint' ? (addr < BigInt(TASK_SIZE) ? Number(addr) : undefined) : addr;
    if (a === undefined || !Number.isSafeInteger(a) || a < 0) return false;
    const hit = this.find(a);
    return hit !== undefined && a + len <= hit.end;
  }

  /** Number of live allocations. */
  get allocationCount(): number {
    return this.allocations.length;
  }

  /** A DataView whose writes land in user memory. The range must lie inside one allocation, else EFAULT. */
  view(addr: UserAddr, len: number): DataView {
    const bytes = this.span(addr, len, 'access');
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** copy_from_user: a copy of [addr, addr + len). A zero-length copy never faults. */
  copyFromUser(addr: UserAddr, len: number): Uint8Array {
    return this.span(addr, len, 'copy_from_user').slice();
  }

  /** copy_to_user: writes all of `bytes` at `addr`, or nothing and EFAULT. */
  copyToUser(addr: UserAddr, bytes: Uint8Array): void {
    this.span(addr, bytes.length, 'copy_to_user').set(bytes);
  }

  /** A little-endian __u32 at `addr` (get_user). */
  readU32(addr: UserAddr): number {
    const b = this.span(addr, 4, 'get_user');
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  /** A little-endian __s32 (an int, e.g. a file descriptor) at `addr` (get_user). */
  readS32(addr: UserAddr): number {
    return this.readU32(addr) | 0;
  }

  /** A little-endian __u64 at `addr` (get_user), as a bigint. */
  readU64(addr: UserAddr): bigint {
    const b = this.span(addr, 8, 'get_user');
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  /** Writes a little-endian __u32 (put_user); negative ints down to -2^31 wrap as in C. */
  writeU32(addr: UserAddr, value: number): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
      throw new TypeError(`put_user: value ${String(value)} does not fit 32 bits`);
    }
    const b = this.span(addr, 4, 'put_user');
    new DataView(b.buffer, b.byteOffset, 4).setUint32(0, value >>> 0, true);
  }

  /** Writes a little-endian __s32 (put_user). */
  writeS32(addr: UserAddr, value: number): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x8000_0000 || value > 0x7fff_ffff) {
      throw new TypeError(`put_user: value ${String(value)} does not fit an __s32`);
    }
    this.writeU32(addr, value);
  }

  /** Writes a little-endian __u64 (put_user) from a bigint or a non-negative safe integer. */
  writeU64(addr: UserAddr, value: bigint | number): void {
    const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
    if (big < 0n || big >= 1n << 64n) throw new TypeError(`put_user: value ${String(value)} is not a __u64`);
    const b = this.span(addr, 8, 'put_user');
    new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, big, true);
  }

  /** Kernel-flavoured aliases: get_user / put_user of an int-sized value. */
  getUserU32(addr: UserAddr): number {
    return this.readU32(addr);
  }
  getUserS32(addr: UserAddr): number {
    return this.readS32(addr);
  }
  putUserU32(addr: UserAddr, value: number): void {
    this.writeU32(addr, value);
  }
  putUserS32(addr: UserAddr, value: number): void {
    this.writeS32(addr, value);
  }

  /**
   * strndup_user(addr, max): the NUL-terminated string at `addr`, decoded as UTF-8. EFAULT if a byte before the NUL
   * is unmapped, EINVAL if no NUL lies within `max` bytes (mm/util.c strndup_user via strnlen_user).
   */
  readCString(addr: UserAddr, max: number): string {
    checkLen(max, 'strndup_user');
    const base = this.toAddr(addr, 'strndup_user', max);
    const out: number[] = [];
    for (let i = 0; i < max; i++) {
      const a = this.find(base + i);
      if (a === undefined) {
        throw errno('EFAULT', `user string at ${hex(base)} runs into ${this.describeUnmapped(base + i)}`);
      }
      const byte = a.bytes[base + i - a.start] ?? 0;
      if (byte === 0) return new TextDecoder().decode(Uint8Array.from(out));
      out.push(byte);
    }
    throw errno('EINVAL', `user string at ${hex(base)} has no NUL within ${max} bytes`);
  }

  /**
   * A number address, or EFAULT for one access_ok refuses (negative — a huge unsigned long —, at or past TASK_SIZE).
   * An address that is not an integer at all is a TypeError.
   */
  private toAddr(addr: UserAddr, verb: string, len: number): number {
    if (typeof addr === 'bigint') {
      if (addr < 0n || addr + BigInt(len) > BigInt(TASK_SIZE)) {
        throw errno('EFAULT', `${verb} of ${len} bytes at ${hex(addr)} fails access_ok (TASK_SIZE ${hex(TASK_SIZE)})`);
      }
      return Number(addr);
    }
    if (typeof addr !== 'number' || !Number.isInteger(addr))
      throw new TypeError(`${verb}: addr must be an integer, got ${String(addr)}`);
    if (addr < 0 || addr + len > TASK_SIZE)
      throw errno(
        'EFAULT',
        `${verb} of ${len} bytes at ${addr < 0 ? String(addr) : hex(addr)} fails access_ok (TASK_SIZE ${hex(TASK_SIZE)})`,
      );
    return addr;
  }

  /** The live bytes of [addr, addr + len), or EFAULT naming the first byte that is not mapped. */
  private span(addr: UserAddr, len: number, verb: string): Uint8Array {
    checkLen(len, verb);
    const at = this.toAddr(addr, verb, len);
    if (len === 0) return new Uint8Array(0);
    const what = `${verb} of ${len} bytes at ${hex(at)}`;
    if (at + len > TASK_SIZE) throw errno('EFAULT', `${what} reaches past TASK_SIZE ${hex(TASK_SIZE)}`);
    const a = this.find(at);
    if (a === undefined) throw errno('EFAULT', `${what}: ${this.describeUnmapped(at)}`);
    if (at + len > a.end) {
      throw errno('EFAULT', `${what}: ${hex(a.end)}, past the end of the allocation at ${hex(a.start)}, is not mapped`);
    }
    return a.bytes.subarray(at - a.start, at - a.start + len);
  }

  /** Says why `addr` is unmapped: NULL page, freed, or never allocated. */
  private describeUnmapped(addr: number): string {
    if (addr < USER_BASE) return `${hex(addr)} is in the unmapped NULL region below ${hex(USER_BASE)}`;
    const f = this.freed[lastAtOrBelow(this.freed, addr)];
    if (f !== undefined && addr < f.end) return `${hex(addr)} is not mapped (allocation ${hex(f.start)} was freed)`;
    return `${hex(addr)} is not mapped (never allocated)`;
  }

  /** The live allocation containing `addr`. */
  private find(addr: number): Allocation | undefined {
    const a = this.allocations[lastAtOrBelow(this.allocations, addr)];
    return a !== undefined && addr < a.end ? a : undefined;
  }
}
