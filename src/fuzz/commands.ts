/**
 * The fuzzer's fast-check commands: each issues one syscall (or a short QEMU-like chain of them) on the real
 * machine, asks the reference model for its prediction, and fails on the first difference — errno name, success,
 * or a result field — or on a broken invariant. toString shows the arguments and, once run, the fds they resolved to.
 */
import fc from 'fast-check';
import {
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_HAS_DEVICE_ATTR,
  KVM_IRQFD,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  kvmArchForwardedIrq,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmVcpuInit,
} from '../abi/kvm.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIrqInfo,
  vfioIrqSet,
} from '../abi/vfio.js';
import { AbiModel, type Expect, type FdKind, type FdSel, fdSelToString } from './abiModel.js';
import { BAD_PTR, FUZZ_DEVICES, type FuzzFlavour, FuzzMachine, type Outcome } from './fuzzMachine.js';

/** The real outcome differs from the model's prediction, or an invariant broke. */
export class FuzzMismatch extends Error {
  override readonly name = 'FuzzMismatch';
}

/** How often each call ran and how it ended ('ok' or the errno), plus how deep the sequences got. */
export class FuzzStats {
  readonly calls = new Map<string, Map<string, number>>();
  sequences = 0;
  forwardAssigned = 0;
  delivered = 0;
  raised = 0;
  maxFds = 0;
  /** MSI flavour: messages the pci function sent from a vector the model has bound to an eventfd. */
  msiSent = 0;
  /** Of those, sent while a vCPU of the VM was in KVM_RUN. */
  msiSentRunning = 0;
  /** Lines left enabled with no action after exit (6.1's unmask of a freed index): predicted alone, or as possible. */
  readonly strayEnabled = { exact: 0, either: 0 };

  /** `onSequence` runs before each sequence (the CLI prints progress from it). */
  constructor(private readonly onSequence: () => void = () => {}) {}

  startSequence(): void {
    this.sequences++;
    this.onSequence();
  }

  count(call: string, out: Outcome): void {
    let m = this.calls.get(call);
    if (m === undefined) {
      m = new Map();
      this.calls.set(call, m);
    }
    const k = out.ok ? 'ok' : out.errno;
    m.set(k, (m.get(k) ?? 0) + 1);
  }

  /** One line per call: total, ok, then each errno, sorted by name. */
  histogram(): string[] {
    const names = [...this.calls.keys()].sort();
    return names.map((n) => {
      const m = this.calls.get(n)!;
      const total = [...m.values()].reduce((a, b) => a + b, 0);
      const parts = [...m.entries()].sort((a, b) => (a[0] === 'ok' ? -1 : b[0] === 'ok' ? 1 : a[0] < b[0] ? -1 : 1));
      return `${n.padEnd(22)} ${String(total).padStart(8)}  ${parts.map(([k, v]) => `${k} ${v}`).join(', ')}`;
    });
  }
}

/** The real machine of one sequence, with the counters it feeds. */
export class FuzzReal extends FuzzMachine {
  constructor(
    readonly stats: FuzzStats,
    flavour: FuzzFlavour = 'gicv2',
  ) {
    super(flavour);
  }
}

function fmt(e: Expect | Outcome): string {
  if (e.ok === 'either') return `success or ${e.errno}`;
  if (e.ok) return 'value' in e && e.value !== undefined ? `success ${e.value}` : 'success';
  return e.errno;
}

function matches(exp: Expect, out: Outcome): boolean {
  if (exp.ok === 'either') return out.ok || out.errno === exp.errno;
  if (!exp.ok) return !out.ok && out.errno === exp.errno;
  return out.ok && (exp.value === undefined || exp.value === out.value);
}

/** Compare one call, count it, settle, and check the invariants; returns the real outcome. */
export function expectStep(r: FuzzReal, call: string, what: string, exp: Expect, out: Outcome): Outcome {
  r.stats.count(call, out);
  if (!matches(exp, out))
    throw new FuzzMismatch(`${what}: the model predicts ${fmt(exp)}, the kernel model gave ${fmt(out)}`);
  r.settle();
  const bad = r.host.checkInvariants();
  if (bad.length > 0) throw new FuzzMismatch(`${what}: invariants broken: ${bad.join('; ')}`);
  const n = r.p.files.count;
  if (n > r.stats.maxFds) r.stats.maxFds = n;
  return out;
}

type Body<M> = (m: M, r: FuzzReal) => string;

/** One fuzz command: `body` runs it and returns the resolved arguments for toString. */
export class AbiCommand<M extends object = AbiModel> implements fc.Command<M, FuzzReal> {
  private resolved = '';
  constructor(
    readonly label: string,
    private readonly body: Body<M>,
    private readonly guard: (m: M) => boolean = () => true,
  ) {}
  check(m: Readonly<M>): boolean {
    this.resolved = '';
    return this.guard(m as M);
  }
  run(m: M, r: FuzzReal): void {
    this.resolved = '';
    this.resolved = this.body(m, r);
  }
  toString(): string {
    return this.resolved === '' ? this.label : `${this.label} [${this.resolved}]`;
  }
}

// ---- building blocks ----------------------------------------------------------------------------------------

const u32 = (v: number) => v >>> 0;

function s32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v | 0, true);
  return b;
}

export function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/** open(2) of `path`; the model predicts the fd. */
function doOpen(m: AbiModel, r: FuzzReal, path: string): Outcome {
  let exp: Expect;
  if (path === '/dev/vfio/vfio') exp = m.openContainer();
  else if (path === '/dev/kvm') exp = m.openKvm();
  else exp = m.openGroup(Number(path.slice('/dev/vfio/'.length)));
  return expectStep(
    r,
    'open',
    `open(${path})`,
    exp,
    r.attempt(() => r.p.open(path)),
  );
}

function doSetContainer(m: AbiModel, r: FuzzReal, gfd: number, cfd: number, bad: boolean): Outcome {
  const exp = m.setContainer(gfd, cfd, bad);
  const out = r.ioctlStruct(gfd, VFIO_GROUP_SET_CONTAINER, s32Bytes(cfd), bad);
  return expectStep(r, 'GROUP_SET_CONTAINER', `GROUP_SET_CONTAINER(fd${gfd}, container fd${cfd})`, exp, out);
}

function doSetIommu(m: AbiModel, r: FuzzReal, cfd: number, type: number): Outcome {
  const exp = m.setIommu(cfd, type);
  const out = r.attempt(() => r.p.ioctl(cfd, VFIO_SET_IOMMU, type));
  return expectStep(r, 'SET_IOMMU', `SET_IOMMU(fd${cfd}, ${type})`, exp, out);
}

function doGetDeviceFd(m: AbiModel, r: FuzzReal, gfd: number, name: string, bad: boolean): Outcome {
  const exp = m.getDeviceFd(gfd, name, bad);
  const bytes = new TextEncoder().encode(`${name}\0`);
  const out = r.ioctlStruct(gfd, VFIO_GROUP_GET_DEVICE_FD, bytes, bad);
  return expectStep(r, 'GROUP_GET_DEVICE_FD', `GET_DEVICE_FD(fd${gfd}, '${name}')`, exp, out);
}

function doEventfd(m: AbiModel, r: FuzzReal, initval: number, flags: number): Outcome {
  const exp = m.eventfd(initval, flags);
  return expectStep(
    r,
    'eventfd',
    `eventfd(${initval}, 0x${flags.toString(16)})`,
    exp,
    r.attempt(() => r.p.eventfd(initval, flags)),
  );
}

interface IrqSetArgs {
  flags: number;
  index: number;
  start: number;
  count: number;
  argszDelta: number;
  boolByte: number;
}

function doSetIrqs(m: AbiModel, r: FuzzReal, dfd: number, a: IrqSetArgs, efd: number, bad: boolean): Outcome {
  const dt = a.flags & 7;
  const size = dt === 4 ? 4 : dt === 2 ? 1 : 0;
  const dataLen = size === 0 ? 0 : a.count * size;
  const argsz = Math.max(0, 20 + dataLen + a.argszDelta);
  const hdr = { argsz, flags: a.flags, index: a.index, start: a.start, count: a.count };
  const bytes = new Uint8Array(20 + dataLen);
  bytes.set(vfioIrqSet.encode(hdr));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < a.count && size > 0; i++) {
    if (size === 4) view.setInt32(20 + 4 * i, efd, true);
    else bytes[20 + i] = a.boolByte;
  }
  const exp = m.setIrqs(dfd, hdr, efd, bad, a.boolByte);
  const out = r.ioctlStruct(dfd, VFIO_DEVICE_SET_IRQS, bytes, bad);
  const what = `SET_IRQS(fd${dfd}, flags 0x${a.flags.toString(16)}, index ${a.index}, start ${a.start}, count ${a.count}, argsz ${argsz}${size === 4 ? `, eventfd ${efd}` : ''})`;
  return expectStep(r, 'DEVICE_SET_IRQS', what, exp, out);
}

function doCreateVm(m: AbiModel, r: FuzzReal, kfd: number, type: number): Outcome {
  const exp = m.createVm(kfd, type);
  const out = r.attempt(() => r.p.ioctl(kfd, KVM_CREATE_VM, type));
  return expectStep(r, 'KVM_CREATE_VM', `KVM_CREATE_VM(fd${kfd}, ${type})`, exp, out);
}

function doCreateVcpu(m: AbiModel, r: FuzzReal, vmfd: number, id: number): Outcome {
  const exp = m.createVcpu(vmfd, id);
  const out = r.attempt(() => r.p.ioctl(vmfd, KVM_CREATE_VCPU, id));
  return expectStep(r, 'KVM_CREATE_VCPU', `KVM_CREATE_VCPU(fd${vmfd}, ${id})`, exp, out);
}

function doCreateDevice(m: AbiModel, r: FuzzReal, vmfd: number, type: number, flags: number, bad: boolean): Outcome {
  const exp = m.createDevice(vmfd, type, flags, bad);
  let fd = -1;
  const out = r.ioctlStruct(vmfd, KVM_CREATE_DEVICE, kvmCreateDevice.encode({ type, fd: 0, flags }), bad, (addr) => {
    fd = kvmCreateDevice.read(r.p.mem.view(addr, kvmCreateDevice.size)).fd;
  });
  // the result is in the struct: compare the fd written back (TEST writes nothing: 0 stays)
  const got: Outcome = out.ok ? { ok: true, value: fd } : out;
  return expectStep(r, 'KVM_CREATE_DEVICE', `KVM_CREATE_DEVICE(fd${vmfd}, type ${type}, flags ${flags})`, exp, got);
}

/** A device attribute call with `payload` at addr (null: addr 0; 'bad': an unmapped pointer). */
function doDeviceAttr(
  m: AbiModel,
  r: FuzzReal,
  call: string,
  fd: number,
  op: 'set' | 'has',
  a: { group: number; attr: number; bad: boolean },
  payload: Uint8Array | null | 'bad',
  value: bigint,
  fwd?: { fd: number; index: number; gsi: number },
): Outcome {
  const readable = payload === null || payload === 'bad' ? 0 : payload.length;
  const exp = m.deviceAttr(fd, op, { ...a, payload: readable, value }, fwd);
  const addr = payload === null ? 0 : payload === 'bad' ? BAD_PTR : r.place(payload);
  try {
    const st = kvmDeviceAttr.encode({ flags: 0, group: a.group, attr: BigInt(a.attr), addr: BigInt(addr) });
    const out = r.ioctlStruct(fd, op === 'set' ? KVM_SET_DEVICE_ATTR : KVM_HAS_DEVICE_ATTR, st, a.bad);
    const what = `${op === 'set' ? 'KVM_SET_DEVICE_ATTR' : 'KVM_HAS_DEVICE_ATTR'}(fd${fd}, group ${a.group}, attr ${a.attr}${fwd ? `, {fd ${fwd.fd}, index ${fwd.index}, guest_irq ${fwd.gsi}}` : ''})`;
    return expectStep(r, call, what, exp, out);
  } finally {
    if (payload !== null && payload !== 'bad') r.free(addr);
  }
}

function doVcpuInit(m: AbiModel, r: FuzzReal, fd: number, target: number, features: number, bad: boolean): Outcome {
  const exp = m.vcpuInit(fd, target, features, bad);
  const out = r.ioctlStruct(
    fd,
    KVM_ARM_VCPU_INIT,
    kvmVcpuInit.encode({ target, features: [features, 0, 0, 0, 0, 0, 0] }),
    bad,
  );
  return expectStep(
    r,
    'KVM_ARM_VCPU_INIT',
    `KVM_ARM_VCPU_INIT(fd${fd}, target ${target}, features 0x${features.toString(16)})`,
    exp,
    out,
  );
}

function doRun(m: AbiModel, r: FuzzReal, fd: number): Outcome {
  const exp = m.run(fd);
  return expectStep(r, 'KVM_RUN', `KVM_RUN(fd${fd})`, exp, r.startRun(fd, KVM_RUN));
}

function doKvfioGroup(
  m: AbiModel,
  r: FuzzReal,
  dfd: number,
  attr: number,
  gfd: number,
  payloadBad: boolean,
  bad: boolean,
): Outcome {
  return doDeviceAttr(
    m,
    r,
    'KVFIO_GROUP',
    dfd,
    'set',
    { group: 1, attr, bad },
    payloadBad ? 'bad' : s32Bytes(gfd),
    BigInt(gfd),
  );
}

function doKvfioIrq(
  m: AbiModel,
  r: FuzzReal,
  dfd: number,
  attr: number,
  fwd: { fd: number; index: number; gsi: number },
  payloadBad: boolean,
  bad: boolean,
): Outcome {
  const bytes = kvmArchForwardedIrq.encode({ fd: u32(fwd.fd), irq_index: fwd.index, guest_irq: u32(fwd.gsi) });
  const out = doDeviceAttr(
    m,
    r,
    'KVFIO_DEVICE_IRQ',
    dfd,
    'set',
    { group: 2, attr, bad },
    payloadBad ? 'bad' : bytes,
    0n,
    {
      ...fwd,
      gsi: u32(fwd.gsi),
    },
  );
  if (out.ok && attr === 1) r.stats.forwardAssigned++;
  return out;
}

/** The level vINTID's gsi (FuzzMachine's guest): its irqfds always have a resampler, else the guest storms. */
export const LEVEL_GSI = 48;

function doIrqfd(
  m: AbiModel,
  r: FuzzReal,
  vmfd: number,
  a0: { efd: number; gsi: number; flags: number; resamplefd: number },
  bad: boolean,
): Outcome {
  const a = a0.gsi === LEVEL_GSI && (a0.flags & 1) === 0 ? { ...a0, flags: a0.flags | 2 } : a0;
  const exp = m.irqfd(vmfd, { ...a, gsi: u32(a.gsi) }, bad);
  const st = kvmIrqfd.encode({ fd: u32(a.efd), gsi: u32(a.gsi), flags: a.flags, resamplefd: u32(a.resamplefd) });
  const out = r.ioctlStruct(vmfd, KVM_IRQFD, st, bad);
  return expectStep(
    r,
    'KVM_IRQFD',
    `KVM_IRQFD(fd${vmfd}, eventfd ${a.efd}, gsi ${u32(a.gsi)}, flags ${a.flags}, resamplefd ${a.resamplefd})`,
    exp,
    out,
  );
}

// ---- arbitraries ----------------------------------------------------------------------------------------------

const bad = fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

function sel(kind: FdKind): fc.Arbitrary<FdSel> {
  return fc.oneof(
    { weight: 16, arbitrary: fc.nat(7).map((i): FdSel => ({ t: 'kind', kind, i })) },
    { weight: 2, arbitrary: fc.nat(15).map((i): FdSel => ({ t: 'open', i })) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 63, 1000).map((fd): FdSel => ({ t: 'raw', fd })) },
  );
}

const GSIS = [48, 49, 50, 51, 48, 49, 50, 51, 0, 223, 224, 500, -1];

function cmd(label: string, body: Body<AbiModel>, guard?: (m: AbiModel) => boolean): AbiCommand {
  return new AbiCommand(label, body, guard);
}

const openContainer = fc
  .constant(null)
  .map(() => cmd('OpenContainer', (m, r) => `fd ${fdOf(doOpen(m, r, '/dev/vfio/vfio'))}`));
const openGroup = fc
  .constantFrom(7, 8, 7, 8, 99)
  .map((g) => cmd(`OpenGroup(${g})`, (m, r) => `fd ${fdOf(doOpen(m, r, `/dev/vfio/${g}`))}`));
const openKvm = fc.constant(null).map(() => cmd('OpenKvm', (m, r) => `fd ${fdOf(doOpen(m, r, '/dev/kvm'))}`));

function fdOf(o: Outcome): string {
  return o.ok ? String(o.value) : o.errno;
}

const eventfdCmd = fc
  .record({ initval: fc.constantFrom(0, 0, 1), flags: fc.constantFrom(0o4000, 0o4000, 0o4001, 0o2004000, 0o4010) })
  .map(({ initval, flags }) =>
    cmd(`Eventfd(${initval}, 0x${flags.toString(16)})`, (m, r) => fdOf(doEventfd(m, r, initval, flags))),
  );

const eventfdWrite = fc
  .record({
    s: sel('eventfd'),
    value: fc.constantFrom(1n, 1n, 2n, 0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn),
    len: fc.constantFrom(8, 8, 8, 4),
  })
  .map(({ s, value, len }) =>
    cmd(`EventfdWrite(${fdSelToString(s)}, ${value}, len ${len})`, (m, r) => {
      const fd = m.resolve(s);
      const exp = m.write(fd, len, value);
      const a = r.place(u64Bytes(value));
      try {
        expectStep(
          r,
          'write',
          `write(fd${fd}, ${value})`,
          exp,
          r.attempt(() => r.p.write(fd, a, len)),
        );
      } finally {
        r.free(a);
      }
      return `fd${fd}`;
    }),
  );

const eventfdRead = fc.record({ s: sel('eventfd'), len: fc.constantFrom(8, 8, 8, 4) }).map(({ s, len }) =>
  cmd(`EventfdRead(${fdSelToString(s)}, len ${len})`, (m, r) => {
    const fd = m.resolve(s);
    const exp = m.read(fd, len);
    const a = r.p.mem.alloc(8);
    try {
      expectStep(
        r,
        'read',
        `read(fd${fd})`,
        exp,
        r.attempt(() => r.p.read(fd, a, len)),
      );
    } finally {
      r.free(a);
    }
    return `fd${fd}`;
  }),
);

const setContainer = fc.record({ g: sel('group'), c: sel('container'), bad }).map(({ g, c, bad }) =>
  cmd(`SetContainer(${fdSelToString(g)}, ${fdSelToString(c)}${bad ? ', EFAULT' : ''})`, (m, r) => {
    const gfd = m.resolve(g);
    const cfd = m.resolve(c);
    doSetContainer(m, r, gfd, cfd, bad);
    return `fd${gfd}, fd${cfd}`;
  }),
);

const unsetContainer = sel('group').map((g) =>
  cmd(`UnsetContainer(${fdSelToString(g)})`, (m, r) => {
    const fd = m.resolve(g);
    const exp = m.unsetContainer(fd);
    expectStep(
      r,
      'GROUP_UNSET_CONTAINER',
      `UNSET_CONTAINER(fd${fd})`,
      exp,
      r.attempt(() => r.p.ioctl(fd, VFIO_GROUP_UNSET_CONTAINER, 0)),
    );
    return `fd${fd}`;
  }),
);

const groupStatus = fc.record({ g: sel('group'), argsz: fc.constantFrom(8, 8, 4), bad }).map(({ g, argsz, bad }) =>
  cmd(`GroupStatus(${fdSelToString(g)}, argsz ${argsz}${bad ? ', EFAULT' : ''})`, (m, r) => {
    const fd = m.resolve(g);
    const exp = m.groupStatus(fd, argsz, bad);
    let flags = -1;
    const out = r.ioctlStruct(fd, VFIO_GROUP_GET_STATUS, vfioGroupStatus.encode({ argsz, flags: 0 }), bad, (a) => {
      flags = vfioGroupStatus.read(r.p.mem.view(a, 8)).flags;
    });
    expectStep(r, 'GROUP_GET_STATUS', `GROUP_GET_STATUS(fd${fd})`, exp, out.ok ? { ok: true, value: flags } : out);
    return `fd${fd}`;
  }),
);

const setIommu = fc.record({ c: sel('container'), type: fc.constantFrom(1, 1, 3, 2, 0) }).map(({ c, type }) =>
  cmd(`SetIommu(${fdSelToString(c)}, ${type})`, (m, r) => {
    const fd = m.resolve(c);
    doSetIommu(m, r, fd, type);
    return `fd${fd}`;
  }),
);

/** IOVAs: two adjacent pages, one inside the MSI window, one unaligned; sizes: one page, two, none. */
const DMA_IOVAS = [0x4000_0000n, 0x4000_1000n, 0x800_0000n, 0x4000_0800n] as const;
const DMA_SIZES = [0x1000n, 0x2000n, 0n] as const;

const dmaMap = fc
  .record({
    c: sel('container'),
    iova: fc.constantFrom(...DMA_IOVAS),
    size: fc.constantFrom(...DMA_SIZES),
    unmapped: fc.boolean(),
    unmap: fc.boolean(),
    bad,
  })
  .map(({ c, iova, size, unmapped, unmap, bad }) =>
    cmd(
      `${unmap ? 'UnmapDma' : 'MapDma'}(${fdSelToString(c)}, 0x${iova.toString(16)}+0x${size.toString(16)}${unmapped && !unmap ? ', unmapped vaddr' : ''}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(c);
        if (unmap) {
          const exp = m.unmapDma(fd, iova, size, bad);
          const bytes = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: 0, iova, size });
          expectStep(
            r,
            'IOMMU_UNMAP_DMA',
            `UNMAP_DMA(fd${fd})`,
            exp,
            r.ioctlStruct(fd, VFIO_IOMMU_UNMAP_DMA, bytes, bad),
          );
          return `fd${fd}`;
        }
        const buf = unmapped ? 0x1000 : r.p.mem.alloc(0x2000, 0x1000);
        const exp = m.mapDma(fd, iova, size, !unmapped, bad);
        const flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
        const bytes = vfioIommuType1DmaMap.encode({ argsz: 32, flags, vaddr: buf, iova, size });
        expectStep(r, 'IOMMU_MAP_DMA', `MAP_DMA(fd${fd})`, exp, r.ioctlStruct(fd, VFIO_IOMMU_MAP_DMA, bytes, bad));
        return `fd${fd}`;
      },
    ),
  );

const NAMES = [FUZZ_DEVICES[0]!.name, FUZZ_DEVICES[1]!.name, 'fff59000.nothing'];
const getDeviceFd = fc.record({ g: sel('group'), name: fc.constantFrom(...NAMES), bad }).map(({ g, name, bad }) =>
  cmd(`GetDeviceFd(${fdSelToString(g)}, '${name}'${bad ? ', EFAULT' : ''})`, (m, r) => {
    const fd = m.resolve(g);
    return `fd${fd} → ${fdOf(doGetDeviceFd(m, r, fd, name, bad))}`;
  }),
);

const deviceInfo = fc.record({ d: sel('device'), argsz: fc.constantFrom(20, 16, 8), bad }).map(({ d, argsz, bad }) =>
  cmd(`DeviceGetInfo(${fdSelToString(d)}, argsz ${argsz}${bad ? ', EFAULT' : ''})`, (m, r) => {
    const fd = m.resolve(d);
    const exp = m.deviceInfo(fd, argsz, bad);
    let n = -1;
    let flags = -1;
    const out = r.ioctlStruct(
      fd,
      VFIO_DEVICE_GET_INFO,
      vfioDeviceInfo.encode({ argsz, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0 }),
      bad,
      (a) => {
        const info = vfioDeviceInfo.read(r.p.mem.view(a, vfioDeviceInfo.size));
        n = info.num_irqs;
        flags = info.flags;
      },
    );
    // flags: PLATFORM | RESET (every fuzz device has a reset)
    const got: Outcome = out.ok ? { ok: true, value: flags === 5 ? n : -100 - flags } : out;
    expectStep(r, 'DEVICE_GET_INFO', `DEVICE_GET_INFO(fd${fd})`, exp, got);
    return `fd${fd}`;
  }),
);

const irqInfo = fc
  .record({ d: sel('device'), index: fc.constantFrom(0, 1, 2), argsz: fc.constantFrom(16, 16, 8), bad })
  .map(({ d, index, argsz, bad }) =>
    cmd(`GetIrqInfo(${fdSelToString(d)}, index ${index}, argsz ${argsz}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const fd = m.resolve(d);
      const exp = m.irqInfo(fd, index, argsz, bad);
      let flags = -1;
      let count = -1;
      const out = r.ioctlStruct(
        fd,
        VFIO_DEVICE_GET_IRQ_INFO,
        vfioIrqInfo.encode({ argsz, flags: 0, index, count: 0 }),
        bad,
        (a) => {
          const info = vfioIrqInfo.read(r.p.mem.view(a, vfioIrqInfo.size));
          flags = info.flags;
          count = info.count;
        },
      );
      expectStep(
        r,
        'DEVICE_GET_IRQ_INFO',
        `DEVICE_GET_IRQ_INFO(fd${fd}, ${index})`,
        exp,
        out.ok ? { ok: true, value: count === 1 ? flags : -1 } : out,
      );
      return `fd${fd}`;
    }),
  );

const irqSetArgs: fc.Arbitrary<IrqSetArgs> = fc.record({
  flags: fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(0x24, 0x24, 0x24, 0x21, 0x22, 0x14, 0x11, 0x09, 0x0c, 0x12, 0x0a) },
    { weight: 1, arbitrary: fc.constantFrom(0x04, 0x2c, 0x23, 0x20, 0x64, 0x01) },
  ),
  index: fc.constantFrom(0, 0, 1, 1, 2),
  start: fc.constantFrom(0, 0, 0, 0, 1),
  count: fc.constantFrom(1, 1, 1, 1, 0, 2),
  argszDelta: fc.constantFrom(0, 0, 0, 0, 4, -1, -20),
  boolByte: fc.constantFrom(0, 1),
});

const setIrqs = fc
  .record({ d: sel('device'), a: irqSetArgs, e: sel('eventfd'), off: fc.boolean(), bad })
  .map(({ d, a, e, off, bad }) =>
    cmd(
      `SetIrqs(${fdSelToString(d)}, flags 0x${a.flags.toString(16)}, index ${a.index}, start ${a.start}, count ${a.count}, argsz ${a.argszDelta >= 0 ? '+' : ''}${a.argszDelta}, ${off && (a.flags & 4) !== 0 ? 'fd -1' : fdSelToString(e)}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(d);
        const efd = off ? -1 : m.resolve(e);
        doSetIrqs(m, r, fd, a, efd, bad);
        return `fd${fd}, eventfd ${efd}`;
      },
    ),
  );

const createVm = fc
  .record({ k: sel('kvm'), type: fc.constantFrom(0, 0, 0, 36, 31, 0x100, 2 ** 32) })
  .map(({ k, type }) =>
    cmd(`CreateVm(${fdSelToString(k)}, ${type})`, (m, r) => {
      const fd = m.resolve(k);
      return `fd${fd} → ${fdOf(doCreateVm(m, r, fd, type))}`;
    }),
  );

const createVcpu = fc.record({ v: sel('vm'), id: fc.constantFrom(0, 0, 1, 2, 7, 8, 600) }).map(({ v, id }) =>
  cmd(`CreateVcpu(${fdSelToString(v)}, ${id})`, (m, r) => {
    const fd = m.resolve(v);
    return `fd${fd} → ${fdOf(doCreateVcpu(m, r, fd, id))}`;
  }),
);

const createDevice = fc
  .record({ v: sel('vm'), type: fc.constantFrom(5, 5, 4, 4, 7, 99), flags: fc.constantFrom(0, 0, 0, 1), bad })
  .map(({ v, type, flags, bad }) =>
    cmd(`CreateDevice(${fdSelToString(v)}, type ${type}, flags ${flags}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const fd = m.resolve(v);
      return `fd${fd} → ${fdOf(doCreateDevice(m, r, fd, type, flags, bad))}`;
    }),
  );

/** vGIC attributes: group 0 addresses, 3 NR_IRQS, 4 CTRL_INIT, and a few that do not exist. */
const VGIC_ATTRS: readonly { group: number; attr: number; value: bigint; size: 0 | 4 | 8 }[] = [
  { group: 0, attr: 0, value: 0x0800_0000n, size: 8 },
  { group: 0, attr: 1, value: 0x0801_0000n, size: 8 },
  { group: 0, attr: 0, value: 0x0800_0000n, size: 8 },
  { group: 0, attr: 1, value: 0x0801_0000n, size: 8 },
  { group: 0, attr: 1, value: 0x0800_0000n, size: 8 },
  { group: 0, attr: 0, value: 0x0800_0800n, size: 8 },
  { group: 0, attr: 0, value: 1n << 40n, size: 8 },
  { group: 0, attr: 2, value: 0x0900_0000n, size: 8 },
  { group: 0, attr: 0, value: 0x0800_0000n, size: 4 },
  { group: 3, attr: 0, value: 128n, size: 4 },
  { group: 3, attr: 0, value: 100n, size: 4 },
  { group: 3, attr: 0, value: 2048n, size: 4 },
  { group: 3, attr: 0, value: 1024n, size: 4 },
  { group: 3, attr: 0, value: 992n, size: 4 },
  { group: 4, attr: 0, value: 0n, size: 0 },
  { group: 4, attr: 0, value: 0n, size: 0 },
  { group: 4, attr: 0, value: 0n, size: 0 },
  { group: 4, attr: 1, value: 0n, size: 0 },
  { group: 9, attr: 0, value: 0n, size: 0 },
];

const vgicAttr = fc
  .record({ d: sel('vgic'), i: fc.nat(VGIC_ATTRS.length - 1), payloadBad: bad, bad })
  .map(({ d, i, payloadBad, bad }) => {
    const v = VGIC_ATTRS[i]!;
    return cmd(
      `VgicSetAttr(${fdSelToString(d)}, group ${v.group}, attr ${v.attr}, 0x${v.value.toString(16)}/${v.size}B${payloadBad ? ', bad addr' : ''}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(d);
        const payload = payloadBad
          ? 'bad'
          : v.size === 0
            ? null
            : v.size === 8
              ? u64Bytes(v.value)
              : u64Bytes(v.value).slice(0, 4);
        doDeviceAttr(m, r, 'VGIC_SET_ATTR', fd, 'set', { group: v.group, attr: v.attr, bad }, payload, v.value);
        return `fd${fd}`;
      },
    );
  });

const hasAttr = fc
  .record({
    d: fc.oneof(sel('vgic'), sel('kvfio'), sel('vcpu')),
    group: fc.constantFrom(0, 1, 2, 3, 4, 7),
    attr: fc.constantFrom(0, 1, 2, 3),
    bad,
  })
  .map(({ d, group, attr, bad }) =>
    cmd(`HasAttr(${fdSelToString(d)}, group ${group}, attr ${attr}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const fd = m.resolve(d);
      doDeviceAttr(m, r, 'KVM_HAS_DEVICE_ATTR', fd, 'has', { group, attr, bad }, null, 0n);
      return `fd${fd}`;
    }),
  );

const vcpuInit = fc
  .record({ v: sel('vcpu'), target: fc.constantFrom(5, 5, 5, 0), features: fc.constantFrom(0, 0, 0, 0x100), bad })
  .map(({ v, target, features, bad }) =>
    cmd(
      `VcpuInit(${fdSelToString(v)}, target ${target}, features 0x${features.toString(16)}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(v);
        doVcpuInit(m, r, fd, target, features, bad);
        return `fd${fd}`;
      },
    ),
  );

/** At most two vCPU threads stay in KVM_RUN; a vCPU runs on one thread at a time (vcpu->mutex). */
function mayRun(m: AbiModel, fd: number): boolean {
  const running = m.vcpus.filter((v) => v.running).length;
  return running < 2 && m.vcpuOf(fd)?.running !== true;
}

const vcpuRun = sel('vcpu').map((v) =>
  cmd(
    `VcpuRun(${fdSelToString(v)})`,
    (m, r) => {
      const fd = m.resolve(v);
      doRun(m, r, fd);
      return `fd${fd}`;
    },
    (m) => mayRun(m, m.resolve(v)),
  ),
);

const irqfdCmd = fc
  .record({
    v: sel('vm'),
    e: sel('eventfd'),
    gsi: fc.constantFrom(...GSIS),
    flags: fc.constantFrom(0, 0, 2, 2, 1, 4),
    rs: sel('eventfd'),
    bad,
  })
  .map(({ v, e, gsi, flags, rs, bad }) =>
    cmd(
      `Irqfd(${fdSelToString(v)}, ${fdSelToString(e)}, gsi ${gsi}, flags ${flags}, resample ${fdSelToString(rs)}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const vmfd = m.resolve(v);
        const efd = m.resolve(e);
        const rfd = m.resolve(rs);
        doIrqfd(m, r, vmfd, { efd, gsi, flags, resamplefd: rfd }, bad);
        return `fd${vmfd}, eventfd ${efd}, resample ${rfd}`;
      },
      // no resample loop (the guest would take the same interrupt forever)
      (m) =>
        (flags & 1) !== 0 ||
        ((flags & 2) === 0 && gsi !== LEVEL_GSI) ||
        !m.resampleLoop(m.resolve(v), m.resolve(e), u32(gsi), m.resolve(rs)),
    ),
  );

const kvfioGroup = fc
  .record({
    d: fc.oneof({ weight: 6, arbitrary: sel('kvfio') }, { weight: 1, arbitrary: sel('vgic') }),
    attr: fc.constantFrom(1, 1, 2, 3),
    g: sel('group'),
    payloadBad: bad,
    bad,
  })
  .map(({ d, attr, g, payloadBad, bad }) =>
    cmd(
      `KvfioGroup(${fdSelToString(d)}, ${attr === 1 ? 'ADD' : attr === 2 ? 'DEL' : `attr ${attr}`}, ${fdSelToString(g)}${payloadBad ? ', bad addr' : ''}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(d);
        const gfd = m.resolve(g);
        doKvfioGroup(m, r, fd, attr, gfd, payloadBad, bad);
        return `fd${fd}, group fd${gfd}`;
      },
    ),
  );

const kvfioIrq = fc
  .record({
    d: fc.oneof({ weight: 6, arbitrary: sel('kvfio') }, { weight: 1, arbitrary: sel('vgic') }),
    attr: fc.constantFrom(1, 1, 1, 2, 2, 3),
    dev: sel('device'),
    index: fc.constantFrom(0, 0, 1, 1, 2),
    gsi: fc.constantFrom(...GSIS),
    payloadBad: bad,
    bad,
  })
  .map(({ d, attr, dev, index, gsi, payloadBad, bad }) =>
    cmd(
      `KvfioIrq(${fdSelToString(d)}, ${attr === 1 ? 'ASSIGN' : attr === 2 ? 'DEASSIGN' : `attr ${attr}`}, ${fdSelToString(dev)}, index ${index}, guest_irq ${gsi}${payloadBad ? ', bad addr' : ''}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const fd = m.resolve(d);
        const dfd = m.resolve(dev);
        doKvfioIrq(m, r, fd, attr, { fd: dfd, index, gsi }, payloadBad, bad);
        return `fd${fd}, device fd${dfd}`;
      },
    ),
  );

const raise = fc.constantFrom([0, 0], [0, 1], [1, 0]).map(([dev, line]) =>
  cmd(`Raise(${FUZZ_DEVICES[dev!]!.name}, line ${line})`, (m, r) => {
    const before = r.delivered;
    m.raise(dev!, line!);
    r.raise(dev!, line!);
    r.stats.raised++;
    r.stats.count('raise', { ok: true, value: 0 });
    const bad = r.host.checkInvariants();
    if (bad.length > 0)
      throw new FuzzMismatch(`after the device raised line ${line}: invariants broken: ${bad.join('; ')}`);
    return `${r.delivered - before} IRQ(s) reached the guest`;
  }),
);

const close = fc
  .oneof(
    { weight: 8, arbitrary: fc.nat(15).map((i): FdSel => ({ t: 'open', i })) },
    { weight: 1, arbitrary: fc.constant<FdSel>({ t: 'raw', fd: 77 }) },
  )
  .map((s) =>
    cmd(`Close(${fdSelToString(s)})`, (m, r) => {
      const fd = m.resolve(s);
      const kind = m.kindOf(fd) ?? 'none';
      const exp = m.close(fd);
      expectStep(
        r,
        'close',
        `close(fd${fd})`,
        exp,
        r.attempt(() => r.p.close(fd)),
      );
      return `fd${fd} (${kind})`;
    }),
  );

// ---- chains: the calls a VMM makes, so that random sequences reach deep states ----------------------------------

/** QEMU vfio_get_device: container, group, SET_CONTAINER, SET_IOMMU(type1), GET_DEVICE_FD; stops at the first error. */
const setupVfio = fc.constantFrom(0, 1, 0).map((dev) =>
  cmd(`SetupVfio(${FUZZ_DEVICES[dev]!.name})`, (m, r) => {
    const c = doOpen(m, r, '/dev/vfio/vfio');
    const g = doOpen(m, r, `/dev/vfio/${FUZZ_DEVICES[dev]!.iommuGroup}`);
    if (!c.ok || !g.ok) return `container ${fdOf(c)}, group ${fdOf(g)}`;
    if (!doSetContainer(m, r, g.value, c.value, false).ok) return 'SET_CONTAINER failed';
    if (!doSetIommu(m, r, c.value, 1).ok) return 'SET_IOMMU failed';
    const d = doGetDeviceFd(m, r, g.value, FUZZ_DEVICES[dev]!.name, false);
    return `container fd${c.value}, group fd${g.value}, device ${fdOf(d)}`;
  }),
);

/** A QEMU-like VM: /dev/kvm, VM, vCPUs, vGIC-v2 with its addresses, vCPU init, CTRL_INIT, and maybe KVM_RUN. */
const buildVm = fc
  .record({ vcpus: fc.constantFrom(1, 1, 2), run: fc.constantFrom(true, true, false) })
  .map(({ vcpus, run }) =>
    cmd(`BuildVm(${vcpus} vCPU(s)${run ? ', run' : ''})`, (m, r) => {
      const k = doOpen(m, r, '/dev/kvm');
      if (!k.ok) return 'open /dev/kvm failed';
      const vm = doCreateVm(m, r, k.value, 0);
      if (!vm.ok) return 'KVM_CREATE_VM failed';
      const fds: number[] = [];
      for (let i = 0; i < vcpus; i++) {
        const v = doCreateVcpu(m, r, vm.value, i);
        if (v.ok) fds.push(v.value);
      }
      const vg = doCreateDevice(m, r, vm.value, 5, 0, false);
      if (!vg.ok) return `vm fd${vm.value}: vGIC failed`;
      doDeviceAttr(
        m,
        r,
        'VGIC_SET_ATTR',
        vg.value,
        'set',
        { group: 0, attr: 0, bad: false },
        u64Bytes(0x0800_0000n),
        0x0800_0000n,
      );
      doDeviceAttr(
        m,
        r,
        'VGIC_SET_ATTR',
        vg.value,
        'set',
        { group: 0, attr: 1, bad: false },
        u64Bytes(0x0801_0000n),
        0x0801_0000n,
      );
      for (const fd of fds) doVcpuInit(m, r, fd, 5, 0, false);
      doDeviceAttr(m, r, 'VGIC_SET_ATTR', vg.value, 'set', { group: 4, attr: 0, bad: false }, null, 0n);
      if (run && fds.length > 0 && mayRun(m, fds[0]!)) doRun(m, r, fds[0]!);
      return `kvm fd${k.value}, vm fd${vm.value}, vcpus ${fds.map((f) => `fd${f}`).join('/')}, vgic fd${vg.value}`;
    }),
  );

/**
 * Wire a device IRQ the way QEMU does: a trigger eventfd; then either an irqfd (with a resamplefd as the unmask
 * eventfd for a level IRQ) or forwarding (kvm-vfio created if the VM has none, the group added, ASSIGN_IRQ).
 */
const wireIrq = fc
  .record({
    d: sel('device'),
    vm: sel('vm'),
    index: fc.constantFrom(0, 1),
    gsi: fc.constantFrom(48, 49, 50, 51),
    forward: fc.boolean(),
  })
  .map(({ d, vm, index, gsi, forward }) =>
    cmd(
      `WireIrq(${fdSelToString(d)}, index ${index}, ${fdSelToString(vm)}, gsi ${gsi}, ${forward ? 'forwarded' : 'irqfd'})`,
      (m, r) => {
        const dfd = m.resolve(d);
        const vmfd = m.resolve(vm);
        const dev = m.deviceOf(dfd);
        const vmState = m.vmOf(vmfd);
        if (dev === undefined || vmState === undefined) return `device fd${dfd}, vm fd${vmfd}: nothing to wire`;
        const t = doEventfd(m, r, 0, 0o4000);
        if (!t.ok) return 'eventfd failed';
        const trig = { flags: 0x24, index, start: 0, count: 1, argszDelta: 0, boolByte: 0 };
        const level = m.devices[dev]!.level[index] === true;
        const rs = level || gsi === LEVEL_GSI ? doEventfd(m, r, 0, 0o4000) : null;
        doIrqfd(m, r, vmfd, { efd: t.value, gsi, flags: rs?.ok ? 2 : 0, resamplefd: rs?.ok ? rs.value : 0 }, false);
        if (rs?.ok && level) doSetIrqs(m, r, dfd, { ...trig, flags: 0x14 }, rs.value, false);
        doSetIrqs(m, r, dfd, trig, t.value, false);
        if (!forward)
          return `device fd${dfd}, vm fd${vmfd}, trigger fd${t.value}${rs?.ok ? `, resample fd${rs.value}` : ''}`;
        let kv = vmState.kvfio;
        let kvfd =
          kv === null ? -1 : (m.openFds().find((fd) => m.entry(fd)?.kind === 'kvfio' && m.entry(fd)?.obj === kv) ?? -1);
        if (kvfd < 0) {
          const c = doCreateDevice(m, r, vmfd, 4, 0, false);
          if (!c.ok) return 'kvm-vfio create failed';
          kvfd = c.value;
          kv = vmState.kvfio;
        }
        const gi = m.groupOfDevice(dev);
        const gfd = m.openFds().find((fd) => m.entry(fd)?.kind === 'group' && m.entry(fd)?.obj === gi);
        if (gfd !== undefined && !m.kvmDevs[kv!]!.groups.includes(gi)) doKvfioGroup(m, r, kvfd, 1, gfd, false, false);
        const a = doKvfioIrq(m, r, kvfd, 1, { fd: dfd, index, gsi }, false, false);
        return `device fd${dfd}, vm fd${vmfd}, trigger fd${t.value}, kvm-vfio fd${kvfd}: ASSIGN ${fdOf(a)}`;
      },
    ),
  );

/**
 * A VMM stops an IRQ while its EOI path still unmasks it: MASK (or not), TRIGGER with DATA_NONE and count 0 (the
 * trigger freed), then UNMASK — on 6.1 the unmask starts the freed line again (vfio_platform_unmask → enable_irq).
 */
const releaseIrq = fc
  .record({ d: sel('device'), index: fc.constantFrom(0, 0, 1), mask: fc.boolean() })
  .map(({ d, index, mask }) =>
    cmd(`ReleaseIrq(${fdSelToString(d)}, index ${index}${mask ? ', masked first' : ''})`, (m, r) => {
      const dfd = m.resolve(d);
      const a = { index, start: 0, count: 1, argszDelta: 0, boolByte: 1 };
      const outs = [
        ...(mask ? [doSetIrqs(m, r, dfd, { ...a, flags: 0x09 }, -1, false)] : []),
        doSetIrqs(m, r, dfd, { ...a, flags: 0x21, count: 0 }, -1, false),
        doSetIrqs(m, r, dfd, { ...a, flags: 0x11 }, -1, false),
      ];
      return `device fd${dfd}: ${outs.map(fdOf).join(', ')}`;
    }),
  );

/** Every command, weighted towards the calls that build state. */
export function fuzzCommands(maxCommands = 40, replayPath?: string) {
  const w = (weight: number, arbitrary: fc.Arbitrary<AbiCommand>) => ({ weight, arbitrary });
  return fc.commands(
    [
      fc.oneof(
        w(2, openContainer),
        w(2, openGroup),
        w(1, openKvm),
        w(3, eventfdCmd),
        w(2, eventfdWrite),
        w(2, eventfdRead),
        w(2, setContainer),
        w(1, unsetContainer),
        w(1, groupStatus),
        w(2, setIommu),
        w(2, dmaMap),
        w(2, getDeviceFd),
        w(1, deviceInfo),
        w(1, irqInfo),
        w(6, setIrqs),
        w(1, createVm),
        w(2, createVcpu),
        w(2, createDevice),
        w(3, vgicAttr),
        w(1, hasAttr),
        w(2, vcpuInit),
        w(3, vcpuRun),
        w(3, irqfdCmd),
        w(3, kvfioGroup),
        w(5, kvfioIrq),
        w(6, raise),
        w(3, close),
        w(4, setupVfio),
        w(4, buildVm),
        w(8, wireIrq),
        w(2, releaseIrq),
      ),
    ],
    { maxCommands, size: '+1', replayPath },
  );
}

/**
 * Process exit and the teardown checks: no invariant broken, no leaked reference, fd or file, and every line enabled
 * at the GIC exactly where the reference model says 6.1 leaves it enabled (an unmask after the trigger was freed).
 */
export function teardown(r: FuzzReal, m: AbiModel): void {
  r.stats.delivered += r.delivered;
  r.p.exit();
  r.settle();
  const bad = r.host.checkInvariants({ teardown: true });
  if (bad.length > 0) throw new FuzzMismatch(`teardown: ${bad.join('; ')}`);
  if (r.p.files.count !== 0) throw new FuzzMismatch(`teardown: ${r.p.files.count} fd(s) still open after exit`);
  for (const h of r.runs) if (!h.done) throw new FuzzMismatch(`teardown: ${h.what} still running after exit`);
  const dist = r.host.irq.gic.distributor;
  FUZZ_DEVICES.forEach((spec, dev) => {
    spec.irqs.forEach((l, i) => {
      const on = dist.isEnabled(l.intid);
      const predicted = m.enabledAfterExit(dev, i);
      if (!predicted.includes(on))
        throw new FuzzMismatch(
          `teardown: INTID ${l.intid} is ${on ? 'enabled' : 'disabled'} at the GIC, the model predicts ${on ? 'disabled' : 'enabled'}`,
        );
      if (on) r.stats.strayEnabled[predicted.length === 1 ? 'exact' : 'either']++;
    });
  });
}

/** The property: every command agrees with the model, and the machine tears down clean. */
export function abiProperty(stats: FuzzStats, maxCommands = 40, replayPath?: string) {
  return fc.property(fuzzCommands(maxCommands, replayPath), (cmds) => {
    stats.startSequence();
    const real = new FuzzReal(stats);
    const model = new AbiModel();
    fc.modelRun(() => ({ model, real }), cmds);
    teardown(real, model);
  });
}
