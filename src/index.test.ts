/**
 * The public API (src/index.ts) fails cleanly: whatever a caller passes — negative, 2^53, 2^64 or bigint addresses,
 * null paths, NaN cycles, a blocking read nobody will satisfy — each call returns, or throws an ErrnoError with a
 * Linux errno or a TypeError naming the argument; never a ModelError (a bug of the model), and never a thread left
 * stuck in a syscall that poisons the next call.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as api from './index.js';

const { ERRNO, ErrnoError, ModelError } = api;

/** Values a careless or hostile caller passes where numbers are expected. */
const HOSTILE: readonly unknown[] = [
  -1,
  -(2 ** 31),
  2 ** 31,
  2 ** 32,
  2 ** 48,
  2 ** 53,
  2 ** 64,
  -(2 ** 64),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0.5,
  -0,
  5n,
  -1n,
  2n ** 64n,
  null,
  undefined,
  '',
  '/dev/kvm',
  {},
  [],
];

const hostile = fc.constantFrom(...HOSTILE);
/** A small integer, a hostile value, or (by index) one of the live fds / user addresses of the run. */
const num = fc.oneof(fc.integer({ min: -2, max: 64 }), hostile);
const ref = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 15 }).map((i) => ({ ref: i })) },
  { weight: 2, arbitrary: num.map((v) => ({ v })) },
);
type Ref = { ref: number } | { v: unknown };

const REQUESTS = [
  api.KVM_GET_API_VERSION,
  api.KVM_CREATE_VM,
  api.KVM_CHECK_EXTENSION,
  api.KVM_GET_VCPU_MMAP_SIZE,
  api.KVM_CREATE_VCPU,
  api.KVM_CREATE_IRQCHIP,
  api.KVM_IRQ_LINE,
  api.KVM_IRQFD,
  api.KVM_ARM_PREFERRED_TARGET,
  api.KVM_CREATE_DEVICE,
  api.KVM_SET_DEVICE_ATTR,
  api.KVM_GET_DEVICE_ATTR,
  api.KVM_HAS_DEVICE_ATTR,
  api.KVM_ARM_VCPU_INIT,
  api.VFIO_GET_API_VERSION,
  api.VFIO_CHECK_EXTENSION,
  api.VFIO_SET_IOMMU,
  api.VFIO_GROUP_GET_STATUS,
  api.VFIO_GROUP_SET_CONTAINER,
  api.VFIO_GROUP_UNSET_CONTAINER,
  api.VFIO_GROUP_GET_DEVICE_FD,
  api.VFIO_DEVICE_GET_INFO,
  api.VFIO_DEVICE_GET_IRQ_INFO,
  api.VFIO_DEVICE_SET_IRQS,
  api.VFIO_DEVICE_RESET,
  // KVM_RUN is left out: a vCPU entered synchronously runs its guest until the step limit, which is slow, not wrong
];
const request = fc.oneof(fc.constantFrom(...REQUESTS), num);
const path = fc.oneof(
  fc.constantFrom('/dev/kvm', '/dev/vfio/vfio', '/dev/vfio/7', '/dev/vfio/8', '/nonexistent', ''),
  hostile,
);

interface World {
  host: api.Host;
  p: api.Process;
  fds: number[];
  addrs: number[];
}

type Op = (w: World) => unknown;
const show = (v: unknown): string => fc.stringify(v);
const pick = (xs: readonly number[], r: Ref): unknown => ('ref' in r ? (xs[r.ref % Math.max(1, xs.length)] ?? 0) : r.v);
// the API's own argument types, which a caller from plain JavaScript (or `as never` in TypeScript) does not respect
const N = (v: unknown) => v as number;

const ops: fc.Arbitrary<[string, Op]>[] = [
  fc
    .tuple(path, num)
    .map(([pa, fl]) => [`open(${show(pa)}, ${show(fl)})`, (w) => w.fds.push(w.p.open(pa as string, N(fl)))]),
  fc
    .tuple(ref, request, ref)
    .map(([fd, rq, arg]) => ['ioctl', (w) => w.p.ioctl(N(pick(w.fds, fd)), N(rq), N(pick(w.addrs, arg)))]),
  fc
    .tuple(num, fc.oneof(fc.constantFrom(0, api.EFD_NONBLOCK, api.EFD_SEMAPHORE), num))
    .map(([init, fl]) => ['eventfd', (w) => w.fds.push(w.p.eventfd(N(init), N(fl)))]),
  fc
    .tuple(ref, ref, fc.oneof(fc.constant(8), num))
    .map(([fd, a, len]) => ['read', (w) => w.p.read(N(pick(w.fds, fd)), N(pick(w.addrs, a)), N(len))]),
  fc
    .tuple(ref, ref, fc.oneof(fc.constant(8), num))
    .map(([fd, a, len]) => ['write', (w) => w.p.write(N(pick(w.fds, fd)), N(pick(w.addrs, a)), N(len))]),
  fc
    .tuple(ref, ref, fc.oneof(fc.constant(8), num))
    .map(([fd, a, len]) => [
      `main.readAsync(${show(fd)}, ${show(a)}, ${show(len)}).result()`,
      (w) => w.p.main.readAsync(N(pick(w.fds, fd)), N(pick(w.addrs, a)), N(len)).result(),
    ]),
  ref.map((fd) => [`close(${show(fd)})`, (w) => w.p.close(N(pick(w.fds, fd)))]),
  fc
    .tuple(num, fc.oneof(fc.constant(8), num))
    .map(([len, al]) => ['mem.alloc', (w) => w.addrs.push(w.p.mem.alloc(N(len), N(al)))]),
  ref.map((a) => [`mem.free(${show(a)})`, (w) => w.p.mem.free(N(pick(w.addrs, a)))]),
  fc
    .tuple(ref, fc.oneof(num, fc.bigInt()))
    .map(([a, v]) => ['mem.writeU64', (w) => w.p.mem.writeU64(N(pick(w.addrs, a)), v as bigint)]),
  fc
    .tuple(ref, num)
    .map(([a, v]) => [`mem.writeU32(${show(a)}, ${show(v)})`, (w) => w.p.mem.writeU32(N(pick(w.addrs, a)), N(v))]),
  ref.map((a) => [`mem.readU64(${show(a)})`, (w) => w.p.mem.readU64(N(pick(w.addrs, a)))]),
  fc
    .tuple(ref, num)
    .map(([a, len]) => [
      `mem.copyFromUser(${show(a)}, ${show(len)})`,
      (w) => w.p.mem.copyFromUser(N(pick(w.addrs, a)), N(len)),
    ]),
  hostile.map((s) => [`mem.writeString(${show(s)})`, (w) => w.addrs.push(w.p.mem.writeString(s as string))]),
  fc.oneof(fc.nat({ max: 100_000 }), hostile).map((c) => [`host.run(${show(c)})`, (w) => w.host.run(N(c))]),
  hostile.map((m) => [`host.settle(${show(m)})`, (w) => w.host.settle(N(m))]),
  fc
    .oneof(fc.constant('fff51000.ethernet'), hostile)
    .map((d) => [`host.device(${show(d)})`, (w) => w.host.device(d as string)]),
  fc
    .tuple(hostile, num)
    .map(([name, cpu]) => [`thread(${show(name)}, ${show(cpu)})`, (w) => w.p.thread(name as string, N(cpu))]),
  fc
    .tuple(num, num, num, num)
    .map(([d, t, n, s]) => [
      `_IOC(${show(d)}, ${show(t)}, ${show(n)}, ${show(s)})`,
      () => api._IOC(N(d), N(t), N(n), N(s)),
    ]),
  fc
    .record({ cpus: num, seed: num, hz: num, nrIrqs: num, nrLrs: num, nrEspis: num }, { requiredKeys: [] })
    .map((o) => [`createHost(${show(o)})`, () => api.createHost(o as api.HostOptions)]),
];

function newWorld(): World {
  const host = api.createHost({
    cpus: 2,
    devices: [{ name: 'fff51000.ethernet', iommuGroup: 7, irqs: [{ intid: 80, trigger: 'level' }] }],
  });
  const p = host.process();
  return { host, p, fds: [], addrs: [p.mem.alloc(64)] };
}

/** The main thread still makes syscalls: an eventfd write and read round trip on a fresh eventfd. */
function healthy(w: World): void {
  const fd = w.p.eventfd(0, api.EFD_NONBLOCK);
  const buf = w.p.mem.alloc(8);
  w.p.mem.writeU64(buf, 5n);
  expect(w.p.write(fd, buf, 8)).toBe(8);
  expect(w.p.read(fd, buf, 8)).toBe(8);
  expect(w.p.mem.readU64(buf)).toBe(5n);
  w.p.close(fd);
  // simulated time is still a time, and the machine still runs
  w.host.run(1000);
  expect(Number.isSafeInteger(w.host.engine.now)).toBe(true);
}

/** What a failing call may throw: the kernel's errno, or a TypeError that names what was wrong. */
function assertClean(name: string, e: unknown): void {
  if (e instanceof ModelError) throw new Error(`${name} threw a ModelError: ${e.message}`);
  if (e instanceof ErrnoError) {
    expect(Object.keys(ERRNO)).toContain(e.errno);
    return;
  }
  if (e instanceof TypeError) {
    expect(e.message).toMatch(/^[\w.[\]]+(\(.*?\))?: /); // "read: addr must be …", "createHost: opts.cpus must be …"
    return;
  }
  throw new Error(`${name} threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
}

describe('the public API under hostile arguments (property)', () => {
  it('every call returns, or throws an ErrnoError or a TypeError; the process keeps working after each', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(...ops), { maxLength: 25 }), (program) => {
        const w = newWorld();
        for (const [name, op] of program) {
          try {
            op(w);
          } catch (e) {
            assertClean(name, e);
          }
          healthy(w);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('the public API: the cases of issue #15', () => {
  const w = newWorld();
  const errnoOf = (f: () => unknown) => api.errnoOf(f);

  it('addresses: negative, 2^53, 2^64 → EFAULT (access_ok); a bigint → TypeError naming addr', () => {
    const efd = w.p.eventfd(1, 0);
    for (const addr of [-1, -(2 ** 31), 2 ** 53, 2 ** 64]) expect(errnoOf(() => w.p.read(efd, addr, 8))).toBe('EFAULT');
    expect(() => w.p.read(efd, N(5n), 8)).toThrow(/read: addr must be an integer \(a number\), got the bigint 5n/);
    expect(errnoOf(() => w.p.mem.readU64(-8))).toBe('EFAULT');
    expect(errnoOf(() => w.p.mem.readU64(2n ** 64n))).toBe('EFAULT');
  });

  it('a null path → TypeError naming path', () => {
    expect(() => w.p.open(null as never)).toThrow(new TypeError('open: path must be a string, got null'));
  });

  it('NaN, negative or infinite cycles to host.run → TypeError naming cycles; time does not move', () => {
    const now = w.host.engine.now;
    for (const c of [Number.NaN, -1, Number.POSITIVE_INFINITY, 2 ** 64])
      expect(() => w.host.run(c)).toThrow(/^host\.run: cycles must be a non-negative safe integer/);
    expect(w.host.engine.now).toBe(now);
  });

  it('a blocking read on an empty eventfd from the synchronous API → EAGAIN, and the thread is free again', () => {
    const efd = w.p.eventfd(0, 0);
    const buf = w.p.mem.alloc(8);
    expect(errnoOf(() => w.p.read(efd, buf, 8))).toBe('EAGAIN');
    healthy(w);
  });

  it('a thread still in an async syscall → EBUSY; a process that has exited → ESRCH', () => {
    const v = newWorld();
    const efd = v.p.eventfd(0, 0);
    const buf = v.p.mem.alloc(8);
    const t = v.p.thread('reader', 1);
    const h = t.readAsync(efd, buf, 8);
    expect(errnoOf(() => t.close(efd))).toBe('EBUSY');
    expect(errnoOf(() => h.result())).toBe('EAGAIN'); // nobody writes: interrupted, the thread is free again
    expect(t.close(efd)).toBe(0);
    v.p.exit();
    expect(errnoOf(() => v.p.eventfd(0, 0))).toBe('ESRCH');
  });

  it('createHost with bad options → TypeError naming the option', () => {
    expect(() => api.createHost({ cpus: -1 })).toThrow(/^createHost: opts\.cpus must be an integer 1\.\.8/);
    expect(() => api.createHost({ hz: Number.NaN })).toThrow(/^createHost: opts\.hz must be a positive number/);
    expect(() =>
      api.createHost({ devices: [{ name: 'd', iommuGroup: 1, irqs: [{ intid: 20, trigger: 'level' }] }] }),
    ).toThrow(/^createHost: opts\.devices: device d: INTID 20 is not an SPI/);
    expect(() => api.createHost({ nrEspis: 32 })).toThrow(/^createHost: opts\.nrEspis must be .* 0 unless gic is v3/);
    expect(() => api.createHost({ gic: 'v3', nrEspis: 40 })).toThrow(/^createHost: opts\.nrEspis must be/);
    const irqs = [{ intid: 4096, trigger: 'level' as const }];
    expect(() => api.createHost({ gic: 'v3', devices: [{ name: 'd', iommuGroup: 1, irqs }] })).toThrow(
      /INTID 4096 is not an SPI/,
    );
    // a GICv3.1 host with Extended SPIs takes one as a device line (a DT GIC_ESPI cell)
    const h = api.createHost({ gic: 'v3', nrEspis: 32, devices: [{ name: 'd', iommuGroup: 1, irqs }] });
    expect(h.irq.gic.distributor.isEspi(4096)).toBe(true);
  });
});
