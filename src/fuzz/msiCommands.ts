/**
 * The MSI flavour of the ABI fuzzer: a GICv3 host with an ITS, a vfio-pci function with 4 MSI / MSI-X vectors and
 * one platform device, one VMM process that has opened /dev/kvm, a VM with two vCPUs (KVM_ARM_VCPU_INIT) and the pci
 * function's device fd. Commands create the vGIC-v3 and the vITS (either order), poke every attribute group with
 * hostile values, set GSI routes, signal MSIs, assign irqfds on routed and unrouted GSIs, enable / rebind / trigger /
 * disable the MSI and MSI-X indexes, and make the function fire; msiModel.ts predicts every outcome.
 *
 * A separate run from the GICv2 one (commands.ts): the two machines share no state worth mixing, and folding these
 * commands into one pool would thin the GICv2 sequences that reach forwarded IRQs (their weights were tuned for depth).
 */
import fc from 'fast-check';
import {
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_IRQFD,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_GSI_ROUTING,
  KVM_SIGNAL_MSI,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmMsi,
  kvmVcpuInit,
} from '../abi/kvm.js';
import { VFIO_DEVICE_SET_IRQS, vfioIrqSet } from '../abi/vfio.js';
import { openVfioDevice } from '../scenario/vmm.js';
import type { Expect } from './abiModel.js';
import { AbiCommand, expectStep, FuzzMismatch, FuzzReal, type FuzzStats, u64Bytes } from './commands.js';
import { BAD_PTR, FUZZ_MSI_DEVICE, type Outcome } from './fuzzMachine.js';
import {
  type AttrOp,
  type MsiExpect,
  type MsiFdKind,
  type MsiFdSel,
  MsiModel,
  msiSelToString,
  type RouteEntry,
  SYS_ICC_PMR_EL1,
  SYS_ICC_SRE_EL1,
} from './msiModel.js';

const NR_VCPUS = 2;
/** The vITS frames the fuzzer registers (128 KiB apart from each other and from the redistributors at 0x080a0000). */
const ITS0 = 0x0808_0000n;
const ITS1 = 0x0810_0000n;
/** GITS_TRANSLATER of each. */
const DOORBELLS = [ITS0 + 0x1_0040n, ITS1 + 0x1_0040n];
const VALID = 1n << 63n;

type Body = (m: MsiModel, r: FuzzReal) => string;
function cmd(label: string, body: Body, guard?: (m: MsiModel) => boolean): AbiCommand<MsiModel> {
  return new AbiCommand<MsiModel>(label, body, guard);
}

/**
 * A selector worth running now: a kind with an open fd, else one selector in four (EBADF on a closed fd stays
 * covered without crowding out the calls that reach the device: a dead fd used to fail a third of the attributes).
 */
function live(m: MsiModel, s: MsiFdSel): boolean {
  return s.t === 'raw' || m.fdsOf(s.kind).length > 0 || s.i === 0;
}

const bad = fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

function sel(kind: MsiFdKind): fc.Arbitrary<MsiFdSel> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.nat(3).map((i): MsiFdSel => ({ t: 'kind', kind, i })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<MsiFdKind>('vm', 'vgic', 'its', 'eventfd', 'device')
        .map((k): MsiFdSel => ({ t: 'kind', kind: k, i: 0 })),
    },
    { weight: 1, arbitrary: fc.constantFrom(-1, 63).map((fd): MsiFdSel => ({ t: 'raw', fd })) },
  );
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function matchesRead(exp: MsiExpect, got: bigint | null): boolean {
  return exp.read === undefined || got === exp.read;
}

// ---- the calls -----------------------------------------------------------------------------------------------------

function doCreateDevice(m: MsiModel, r: FuzzReal, type: number, flags: number, isBad: boolean): Outcome {
  const vmfd = m.fdsOf('vm')[0]!;
  const exp = m.createDevice(vmfd, type, flags, isBad);
  let fd = -1;
  const out = r.ioctlStruct(vmfd, KVM_CREATE_DEVICE, kvmCreateDevice.encode({ type, fd: 0, flags }), isBad, (a) => {
    fd = kvmCreateDevice.read(r.p.mem.view(a, kvmCreateDevice.size)).fd;
  });
  return expectStep(
    r,
    'KVM_CREATE_DEVICE',
    `KVM_CREATE_DEVICE(type ${type}, flags ${flags})`,
    exp,
    out.ok ? { ok: true, value: fd } : out,
  );
}

const ATTR_REQ = { set: KVM_SET_DEVICE_ATTR, get: KVM_GET_DEVICE_ATTR, has: KVM_HAS_DEVICE_ATTR };

/** A device attribute call; attr.addr holds `size` bytes of `value` (or is unmapped); a get's result is read back. */
function doAttr(
  m: MsiModel,
  r: FuzzReal,
  call: string,
  fd: number,
  op: AttrOp,
  a: { group: number; attr: bigint; value: bigint; size: 4 | 8 },
  payloadBad: boolean,
  isBad: boolean,
): Outcome {
  const exp = m.vgicAttr(fd, op, a, !payloadBad, isBad);
  const addr = payloadBad ? BAD_PTR : r.place(a.size === 8 ? u64Bytes(a.value) : u64Bytes(a.value).slice(0, 4));
  try {
    const st = kvmDeviceAttr.encode({ flags: 0, group: a.group, attr: a.attr, addr: BigInt(addr) });
    const out = r.ioctlStruct(fd, ATTR_REQ[op], st, isBad);
    const what = `${op}_attr(fd${fd}, group ${a.group}, attr ${hex(a.attr)}, ${hex(a.value)}/${a.size}B)`;
    const res = expectStep(r, call, what, exp, out);
    if (res.ok && op === 'get' && !payloadBad) {
      const got = a.size === 8 ? r.p.mem.readU64(addr) : BigInt(r.p.mem.readU32(addr));
      if (!matchesRead(exp, got))
        throw new FuzzMismatch(
          `${what}: the model predicts it reads ${hex(exp.read!)}, the kernel model wrote ${hex(got)}`,
        );
    }
    return res;
  } finally {
    r.free(addr);
  }
}

function doRouting(
  m: MsiModel,
  r: FuzzReal,
  nr: number,
  flags: number,
  entries: readonly RouteEntry[],
  isBad: boolean,
): Outcome {
  const vmfd = m.fdsOf('vm')[0]!;
  const exp = m.setGsiRouting(vmfd, { nr, flags, entriesReadable: true }, entries, isBad);
  const bytes = new Uint8Array(kvmIrqRouting.size + entries.length * kvmIrqRoutingEntry.size);
  bytes.set(kvmIrqRouting.encode({ nr, flags }));
  entries.forEach((e, i) => {
    bytes.set(
      kvmIrqRoutingEntry.encode({ ...e, upad: Array<number>(16).fill(0) }),
      kvmIrqRouting.size + i * kvmIrqRoutingEntry.size,
    );
  });
  const out = r.ioctlStruct(vmfd, KVM_SET_GSI_ROUTING, bytes, isBad);
  const what = `KVM_SET_GSI_ROUTING(nr ${nr}, flags ${flags}, [${entries.map((e) => `{gsi ${e.gsi} type ${e.type} flags ${e.flags} ${hex(e.u0)} ${hex(e.u1)} ${e.u2} ${e.u3}}`).join(' ')}])`;
  return expectStep(r, 'KVM_SET_GSI_ROUTING', what, exp, out);
}

function doIrqfd(
  m: MsiModel,
  r: FuzzReal,
  a: { efd: number; gsi: number; flags: number; resamplefd: number },
  isBad: boolean,
): Outcome {
  const vmfd = m.fdsOf('vm')[0]!;
  const exp = m.irqfd(vmfd, a, isBad);
  const st = kvmIrqfd.encode({ fd: a.efd >>> 0, gsi: a.gsi >>> 0, flags: a.flags, resamplefd: a.resamplefd >>> 0 });
  const out = r.ioctlStruct(vmfd, KVM_IRQFD, st, isBad);
  return expectStep(
    r,
    'KVM_IRQFD',
    `KVM_IRQFD(eventfd ${a.efd}, gsi ${a.gsi}, flags ${a.flags}, resamplefd ${a.resamplefd})`,
    exp,
    out,
  );
}

interface SetIrqsArgs {
  readonly index: number;
  readonly flags: number;
  readonly start: number;
  readonly count: number;
  readonly argszDelta: number;
}

function doSetIrqs(
  m: MsiModel,
  r: FuzzReal,
  dfd: number,
  a: SetIrqsArgs,
  fds: readonly number[],
  isBad: boolean,
): Outcome {
  const dt = a.flags & 7;
  const size = dt === 4 ? 4 : dt === 2 ? 1 : 0;
  // huge counts fail validation before the data is read: lay out at most 8 elements
  const n = Math.min(a.count, 8);
  const argsz = Math.max(0, 20 + n * size + a.argszDelta);
  const hdr = { argsz, flags: a.flags, index: a.index, start: a.start, count: a.count };
  const bytes = new Uint8Array(20 + n * size);
  bytes.set(vfioIrqSet.encode(hdr));
  const view = new DataView(bytes.buffer);
  const eventfds = Array.from({ length: n }, (_, i) => fds[i % fds.length]!);
  for (let i = 0; i < n && size > 0; i++) {
    if (size === 4) view.setInt32(20 + 4 * i, eventfds[i]!, true);
    else bytes[20 + i] = i & 1;
  }
  const exp = m.setIrqs(dfd, hdr, eventfds, true, isBad);
  const out = r.ioctlStruct(dfd, VFIO_DEVICE_SET_IRQS, bytes, isBad);
  const what = `SET_IRQS(fd${dfd}, flags ${hex(a.flags)}, index ${a.index}, start ${a.start}, count ${a.count}, argsz ${argsz}${size === 4 ? `, fds [${eventfds.join(',')}]` : ''})`;
  return expectStep(r, 'PCI_SET_IRQS', what, exp, out);
}

// ---- the commands ----------------------------------------------------------------------------------------------------

const createDevice = fc
  .record({ type: fc.constantFrom(7, 7, 8, 8, 8, 99), flags: fc.constantFrom(0, 0, 0, 1), bad })
  .map(({ type, flags, bad }) =>
    cmd(`CreateDevice(type ${type}, flags ${flags}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const o = doCreateDevice(m, r, type, flags, bad);
      return o.ok ? `fd ${o.value}` : o.errno;
    }),
  );

const aff = (a: number, off: number) => (BigInt(a) << 32n) | BigInt(off);

/** vGIC-v3 attributes: [group, attr, value, size] — valid, hostile and misplaced ones. */
const VGIC_V3_ATTRS: readonly [number, bigint, bigint, 4 | 8][] = [
  [0, 2n, 0x0800_0000n, 8], // DIST
  [0, 2n, 0x0800_8000n, 8], // DIST misaligned
  [0, 2n, 1n << 40n, 8], // DIST past the IPA size
  [0, 2n, 0xffff_ffff_ffff_0000n, 8], // DIST wraps
  [0, 3n, 0x080a_0000n, 8], // legacy REDIST
  [0, 3n, 0x0800_0000n, 8], // legacy REDIST on the distributor
  [0, 3n, 0x080a_8000n, 8], // legacy REDIST misaligned
  [0, 5n, (2n << 52n) | 0x080a_0000n, 8], // REDIST_REGION 0, 2 redistributors
  [0, 5n, (1n << 52n) | 0x080e_0000n | 1n, 8], // REDIST_REGION 1
  [0, 5n, 0x080a_0000n, 8], // REDIST_REGION count 0
  [0, 5n, (1n << 52n) | 0x080e_0000n | 0x1000n | 1n, 8], // REDIST_REGION with flags
  [0, 5n, (1n << 52n) | 0x080e_0000n | 7n, 8], // REDIST_REGION index 7
  [0, 0n, 0x0800_0000n, 8], // a GICv2 type
  [0, 9n, 0n, 8],
  [3, 0n, 128n, 4], // NR_IRQS
  [3, 0n, 100n, 4],
  [3, 0n, 2048n, 4],
  [4, 0n, 0n, 8], // CTRL_INIT
  [4, 0n, 0n, 8],
  [4, 3n, 0n, 8], // SAVE_PENDING_TABLES
  [4, 1n, 0n, 8], // an ITS control on the vGIC
  [1, aff(0, 0x0), 0x12n, 4], // GICD_CTLR
  [1, aff(5, 0x4), 0n, 4], // GICD_TYPER (DIST_REGS ignore the affinity)
  [1, aff(0, 0x3), 0n, 4],
  [1, aff(0, 0x1_0000), 0n, 4],
  [5, aff(0, 0x0), 1n, 4], // GICR_CTLR.EnableLPIs of vCPU 0
  [5, aff(1, 0x14), 0n, 4], // GICR_WAKER of vCPU 1
  [5, aff(1, 0x1_0080), 0xffff_ffffn, 4], // GICR_IGROUPR0
  [5, aff(2, 0x0), 0n, 4], // no vCPU with Aff0 2
  [5, aff(0x100, 0x0), 0n, 4], // Aff1 1
  [5, aff(0, 0x2), 0n, 4],
  [6, aff(0, SYS_ICC_PMR_EL1), 0xf0n, 8],
  [6, aff(1, SYS_ICC_SRE_EL1), 0x7n, 8],
  [6, aff(0, SYS_ICC_SRE_EL1), 0x6n, 8], // SRE clear
  [6, aff(0, 0), 0n, 8], // no such sysreg
  [6, aff(3, SYS_ICC_PMR_EL1), 0n, 8],
  [7, aff(0, 32), 0xffn, 4], // LEVEL_INFO of SPIs 32..63
  [7, aff(1, 33), 0n, 4],
  [7, aff(0, (1 << 10) | 32), 0n, 4], // info 1
  [2, 0n, 0n, 4], // GRP_CPU_REGS: a GICv2 group
  [8, 0n, 0n, 8],
];

/** vITS attributes. */
const ITS_ATTRS: readonly [number, bigint, bigint, 4 | 8][] = [
  [0, 4n, ITS0, 8],
  [0, 4n, ITS1, 8],
  [0, 4n, ITS0 + 0x8000n, 8], // misaligned
  [0, 4n, (1n << 40n) - 0x1_0000n, 8], // the frame's end past the IPA size
  [0, 4n, 0xffff_ffff_ffff_0000n, 8], // wraps
  [0, 2n, ITS0, 8], // not the ITS type
  [4, 0n, 0n, 8], // INIT
  [4, 1n, 0n, 8], // SAVE_TABLES
  [4, 2n, 0n, 8], // RESTORE_TABLES
  [4, 4n, 0n, 8], // RESET
  [4, 3n, 0n, 8], // unknown: 0
  [8, 0x0n, 1n, 8], // GITS_CTLR.Enabled
  [8, 0x0n, 1n, 8],
  [8, 0x0n, 0n, 8],
  [8, 0x4n, 0n, 8], // GITS_IIDR revision 0
  [8, 0x4n, 0x1000n, 8], // revision 1
  [8, 0x8n, 0n, 8], // GITS_TYPER (read-only)
  [8, 0x80n, VALID | 0x1000_0000n, 8], // GITS_CBASER valid, 4 KiB
  [8, 0x80n, VALID | 0x1000_0000n | 3n, 8], // 16 KiB
  [8, 0x80n, VALID | (0xffffn << 32n), 8], // valid, outside guest RAM
  [8, 0x90n, 0x20n, 8], // GITS_CREADR
  [8, 0x88n, 0x40n, 8], // GITS_CWRITER: the queue (zeros in guest RAM: unknown commands, dropped) runs if enabled
  [8, 0x90n, 0x2000n, 8], // past a 4 KiB queue
  [8, 0x100n, VALID | 0x1001_0000n, 8], // GITS_BASER0 (devices) valid
  [8, 0x108n, VALID | 0x1002_0000n, 8], // GITS_BASER1 (collections) valid
  [8, 0x108n, VALID | (0xffffn << 32n), 8], // outside guest RAM
  [8, 0x100n, 0n, 8], // invalid
  [8, 0x2n, 0n, 8], // misaligned
  [8, 0x84n, 0n, 8], // misaligned 64-bit
  [8, 0x200n, 0n, 8], // no register
  [8, 0x1_0040n, 0n, 8], // GITS_TRANSLATER
  [8, 0xffe8n, 0n, 8], // GITS_PIDR2
  [1, 0n, 0n, 8], // a vGIC group
];

function attrCmd(name: string, table: readonly [number, bigint, bigint, 4 | 8][], kind: MsiFdKind) {
  return fc
    .record({
      d: fc.oneof({ weight: 8, arbitrary: sel(kind) }, { weight: 1, arbitrary: sel(kind === 'its' ? 'vgic' : 'its') }),
      op: fc.constantFrom<AttrOp>('set', 'set', 'set', 'get', 'has'),
      i: fc.nat(table.length - 1),
      payloadBad: bad,
      bad,
    })
    .map(({ d, op, i, payloadBad, bad }) => {
      const [group, attr, value, size] = table[i]!;
      return cmd(
        `${name}(${msiSelToString(d)}, ${op}, group ${group}, attr ${hex(attr)}, ${hex(value)}${payloadBad ? ', bad addr' : ''}${bad ? ', EFAULT' : ''})`,
        (m, r) => {
          const fd = m.resolve(d);
          doAttr(m, r, `${name}:${op}`, fd, op, { group, attr, value, size }, payloadBad, bad);
          return `fd${fd}`;
        },
        (m) => live(m, d),
      );
    });
}

const routeEntry: fc.Arbitrary<RouteEntry> = fc
  .record({
    gsi: fc.constantFrom(40, 40, 41, 41, 0, 1, 4095, 4096, 0xffff_ffff),
    type: fc.constantFrom(2, 2, 2, 1, 1, 0, 3),
    flags: fc.constantFrom(1, 1, 0, 2),
    pad: fc.constantFrom(0, 0, 0xdead),
    irqchip: fc.constantFrom(0, 0, 0, 1),
    pin: fc.constantFrom(0, 8, 987, 988),
    address: fc.constantFrom(...DOORBELLS, ...DOORBELLS, ITS0, 0x080a_0000n, 0n, (1n << 32n) | DOORBELLS[0]!),
    data: fc.constantFrom(0, 1, 3, 0xffff_ffff),
    devid: fc.constantFrom(9, 9, 0, 0xffff_ffff),
  })
  .map((e) =>
    e.type === 1
      ? { gsi: e.gsi, type: e.type, flags: e.flags, pad: e.pad, u0: e.irqchip, u1: e.pin, u2: 0, u3: 0 }
      : {
          gsi: e.gsi,
          type: e.type,
          flags: e.flags,
          pad: e.pad,
          u0: Number(e.address & 0xffff_ffffn),
          u1: Number(e.address >> 32n),
          u2: e.data,
          u3: e.devid,
        },
  );

const setGsiRouting = fc
  .record({
    entries: fc.array(routeEntry, { maxLength: 4 }),
    nr: fc.constantFrom<'len' | number>('len', 'len', 'len', 'len', 4097, 0),
    flags: fc.constantFrom(0, 0, 0, 0, 0, 1),
    bad,
  })
  .map(({ entries, nr, flags, bad }) =>
    cmd(`SetGsiRouting(${entries.length} entries, nr ${nr}, flags ${flags}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const n = nr === 'len' ? entries.length : nr;
      return routeOutcome(doRouting(m, r, n, flags, entries, bad));
    }),
  );

function routeOutcome(o: Outcome): string {
  return o.ok ? `ok ${o.value}` : o.errno;
}

const signalMsi = fc
  .record({
    address: fc.constantFrom(...DOORBELLS, ...DOORBELLS, ITS0, 0x080a_0000n, 0n, (1n << 32n) | DOORBELLS[0]!),
    data: fc.constantFrom(0, 1, 0xffff_ffff),
    flags: fc.constantFrom(1, 1, 1, 1, 0, 2, 3),
    devid: fc.constantFrom(9, 9, 0, 0xffff_ffff),
    bad,
  })
  .map(({ address, data, flags, devid, bad }) =>
    cmd(`SignalMsi(${hex(address)}, data ${data}, flags ${flags}, devid ${devid}${bad ? ', EFAULT' : ''})`, (m, r) => {
      const vmfd = m.fdsOf('vm')[0]!;
      const exp: Expect = m.signalMsi(vmfd, { address, flags }, bad);
      const st = kvmMsi.encode({
        address_lo: Number(address & 0xffff_ffffn),
        address_hi: Number(address >> 32n),
        data,
        flags,
        devid,
        pad: Array<number>(12).fill(0),
      });
      return routeOutcome(
        expectStep(
          r,
          'KVM_SIGNAL_MSI',
          `KVM_SIGNAL_MSI(${hex(address)}, ${data}, ${flags}, ${devid})`,
          exp,
          r.ioctlStruct(vmfd, KVM_SIGNAL_MSI, st, bad),
        ),
      );
    }),
  );

const irqfdCmd = fc
  .record({
    e: sel('eventfd'),
    gsi: fc.constantFrom(40, 40, 41, 0, 100, 4095, 5000),
    flags: fc.constantFrom(0, 0, 0, 1, 2, 4),
    rs: sel('eventfd'),
    bad,
  })
  .map(({ e, gsi, flags, rs, bad }) =>
    cmd(
      `Irqfd(${msiSelToString(e)}, gsi ${gsi}, flags ${flags}, resample ${msiSelToString(rs)}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const efd = m.resolve(e);
        const rfd = m.resolve(rs);
        return routeOutcome(doIrqfd(m, r, { efd, gsi, flags, resamplefd: rfd }, bad));
      },
    ),
  );

const pciSetIrqs = fc
  .record({
    index: fc.constantFrom(1, 1, 1, 2, 2, 2, 0, 3, 4, 5),
    flags: fc.constantFrom(0x24, 0x24, 0x24, 0x24, 0x21, 0x21, 0x22, 0x09, 0x11, 0x27, 0x64, 0x2c, 0x28),
    start: fc.constantFrom(0, 0, 0, 1, 3, 4, 0xffff_ffff),
    count: fc.constantFrom(0, 1, 1, 1, 2, 4, 5, 0x8000_0000),
    fds: fc.array(
      fc.oneof(
        { weight: 6, arbitrary: sel('eventfd') },
        { weight: 1, arbitrary: fc.constant<MsiFdSel>({ t: 'raw', fd: -1 }) },
      ),
      {
        minLength: 1,
        maxLength: 4,
      },
    ),
    argszDelta: fc.constantFrom(0, 0, 0, 0, -1, 4),
    bad,
  })
  .map(({ index, flags, start, count, fds, argszDelta, bad }) =>
    cmd(
      `PciSetIrqs(index ${index}, flags ${hex(flags)}, start ${start}, count ${count}, fds ${fds.map(msiSelToString).join('/')}${argszDelta !== 0 ? `, argsz ${argszDelta > 0 ? '+' : ''}${argszDelta}` : ''}${bad ? ', EFAULT' : ''})`,
      (m, r) => {
        const dfd = m.fdsOf('device')[0]!;
        const resolved = fds.map((s) => m.resolve(s));
        return routeOutcome(doSetIrqs(m, r, dfd, { index, flags, start, count, argszDelta }, resolved, bad));
      },
    ),
  );

const eventfdCmd = fc.constant(null).map(() =>
  cmd('Eventfd', (m, r) => {
    const o = expectStep(
      r,
      'eventfd',
      'eventfd(0, EFD_NONBLOCK)',
      m.eventfd(),
      r.attempt(() => r.p.eventfd(0, 0o4000)),
    );
    return routeOutcome(o);
  }),
);

const eventfdWrite = sel('eventfd').map((s) =>
  cmd(`EventfdWrite(${msiSelToString(s)})`, (m, r) => {
    const fd = m.resolve(s);
    const a = r.place(u64Bytes(1n));
    try {
      return routeOutcome(
        expectStep(
          r,
          'write',
          `write(fd${fd}, 1)`,
          m.write(fd),
          r.attempt(() => r.p.write(fd, a, 8)),
        ),
      );
    } finally {
      r.free(a);
    }
  }),
);

const closeEventfd = sel('eventfd').map((s) =>
  cmd(`Close(${msiSelToString(s)})`, (m, r) => {
    const fd = m.resolve(s);
    if (m.kindOf(fd) !== undefined && m.kindOf(fd) !== 'eventfd') return `fd${fd}: not an eventfd, kept`;
    return routeOutcome(
      expectStep(
        r,
        'close',
        `close(fd${fd})`,
        m.close(fd),
        r.attempt(() => r.p.close(fd)),
      ),
    );
  }),
);

/**
 * The pci function interrupts on vector k. The model's vector state is checked against the function: a vector bound
 * to an eventfd (request_irq unmasked it) sends its message; with no index enabled the function may not signal (a
 * drop). An enabled vector with no eventfd is masked (free_irq's shutdown) and latches: neither is counted.
 */
const fire = fc.nat(3).map((k) =>
  cmd(`Fire(vector ${k})`, (m, r) => {
    const hw = r.host.msiDevices[0]!.hw;
    const [sent, dropped] = [hw.sent[k]!, hw.dropped[k]!];
    hw.fire(k);
    r.settle();
    const bound = m.pci.irqType !== 0 && (m.pci.triggers[k] ?? null) !== null;
    const what = bound ? 'sent' : m.pci.irqType === 0 ? 'dropped' : 'latched or dropped';
    if (bound && hw.sent[k] !== sent + 1)
      throw new FuzzMismatch(`vector ${k} is bound to an eventfd in the model, the function sent no message`);
    if (m.pci.irqType === 0 && hw.dropped[k] !== dropped + 1)
      throw new FuzzMismatch(`vector ${k}: no MSI index is enabled in the model, the function did not drop the raise`);
    if (bound) r.stats.msiSent++;
    if (bound && m.running.size > 0) r.stats.msiSentRunning++;
    r.stats.count('fire', { ok: true, value: 0 });
    const broken = r.host.checkInvariants();
    if (broken.length > 0) throw new FuzzMismatch(`after vector ${k} fired: invariants broken: ${broken.join('; ')}`);
    return what;
  }),
);

/** A vCPU enters KVM_RUN (a new thread, which stays in the idle guest) where the vGIC maps: MSIs then fire at a running VM. */
const vcpuRun = fc.nat(1).map((i) =>
  cmd(
    `VcpuRun(vcpu#${i})`,
    (m, r) => {
      const fd = m.fdsOf('vcpu')[i]!;
      expectStep(r, 'KVM_RUN', `KVM_RUN(fd${fd})`, m.run(fd), r.startRun(fd, KVM_RUN));
      return `fd${fd}`;
    },
    (m) => {
      const fd = m.fdsOf('vcpu')[i];
      return fd !== undefined && m.mayRun(fd);
    },
  ),
);

/**
 * QEMU's MSI-X wiring for one vector: the vGIC-v3 (if the VM has none) initialised, a vITS (if none) at ITS0 with
 * valid tables and enabled, a trigger eventfd, an MSI route for gsi 40 + k to the function's DeviceID, an irqfd on it,
 * and SET_IRQS binding vector k to the eventfd. Every call is predicted; the chain goes on past failures.
 */
const wireMsi = fc.record({ k: fc.nat(3), index: fc.constantFrom(2, 2, 1) }).map(({ k, index }) =>
  cmd(`WireMsi(vector ${k}, index ${index})`, (m, r) => {
    if (m.vgic === null) {
      const v = doCreateDevice(m, r, 7, 0, false);
      if (v.ok) {
        // QEMU virt: the distributor, one legacy redistributor region for every vCPU, then CTRL_INIT
        const set = (group: number, attr: bigint, value: bigint) =>
          doAttr(m, r, 'VGIC_V3:set', v.value, 'set', { group, attr, value, size: 8 }, false, false);
        set(0, 2n, 0x0800_0000n);
        set(0, 3n, 0x080a_0000n);
        set(4, 0n, 0n);
      }
    }
    if (m.vgic !== null && m.its.length === 0) {
      const i = doCreateDevice(m, r, 8, 0, false);
      if (i.ok) {
        const set = (group: number, attr: bigint, value: bigint) =>
          doAttr(m, r, 'VITS:set', i.value, 'set', { group, attr, value, size: 8 }, false, false);
        set(0, 4n, ITS0);
        set(8, 0x100n, VALID | 0x1001_0000n);
        set(8, 0x108n, VALID | 0x1002_0000n);
        set(8, 0x80n, VALID | 0x1000_0000n);
        set(8, 0x0n, 1n);
      }
    }
    const e = expectStep(
      r,
      'eventfd',
      'eventfd',
      m.eventfd(),
      r.attempt(() => r.p.eventfd(0, 0o4000)),
    );
    if (!e.ok) return 'eventfd failed';
    const gsi = 40 + k;
    const [lo, hi] = [Number(DOORBELLS[0]! & 0xffff_ffffn), 0];
    doRouting(
      m,
      r,
      1,
      0,
      [{ gsi, type: 2, flags: 1, pad: 0, u0: lo, u1: hi, u2: k, u3: FUZZ_MSI_DEVICE.deviceId }],
      false,
    );
    const f = doIrqfd(m, r, { efd: e.value, gsi, flags: 0, resamplefd: 0 }, false);
    const dfd = m.fdsOf('device')[0]!;
    const s = doSetIrqs(m, r, dfd, { index, flags: 0x24, start: k, count: 1, argszDelta: 0 }, [e.value], false);
    return `eventfd ${e.value}, irqfd ${routeOutcome(f)}, SET_IRQS ${routeOutcome(s)}`;
  }),
);

export function msiCommands(maxCommands = 40, replayPath?: string) {
  const w = (weight: number, arbitrary: fc.Arbitrary<AbiCommand<MsiModel>>) => ({ weight, arbitrary });
  return fc.commands(
    [
      fc.oneof(
        w(3, createDevice),
        w(5, attrCmd('VGIC_V3', VGIC_V3_ATTRS, 'vgic')),
        w(5, attrCmd('VITS', ITS_ATTRS, 'its')),
        w(3, setGsiRouting),
        w(3, signalMsi),
        w(3, irqfdCmd),
        w(5, pciSetIrqs),
        w(3, eventfdCmd),
        w(2, eventfdWrite),
        w(1, closeEventfd),
        w(3, fire),
        w(3, wireMsi),
        w(2, vcpuRun),
      ),
    ],
    { maxCommands, size: '+1', replayPath },
  );
}

/** The prologue both sides start from: /dev/kvm, a VM, NR_VCPUS initialised vCPUs, the pci function's device fd. */
function prologue(r: FuzzReal): void {
  const { p } = r;
  const kvm = p.open('/dev/kvm');
  const vm = p.ioctl(kvm, KVM_CREATE_VM, 0);
  for (let i = 0; i < NR_VCPUS; i++) {
    const v = p.ioctl(vm, KVM_CREATE_VCPU, i);
    const init = p.mem.allocBytes(kvmVcpuInit.encode({ target: 5, features: [0, 0, 0, 0, 0, 0, 0] }));
    p.ioctl(v, KVM_ARM_VCPU_INIT, init);
    p.mem.free(init);
  }
  openVfioDevice(p, FUZZ_MSI_DEVICE.iommuGroup, FUZZ_MSI_DEVICE.name);
}

/** Process exit: no invariant broken, no fd or reference left, the function's MSI disabled and its LPIs freed. */
export function msiTeardown(r: FuzzReal): void {
  r.stats.delivered += r.delivered;
  r.p.exit();
  r.settle();
  const broken = r.host.checkInvariants({ teardown: true });
  if (broken.length > 0) throw new FuzzMismatch(`teardown: ${broken.join('; ')}`);
  if (r.p.files.count !== 0) throw new FuzzMismatch(`teardown: ${r.p.files.count} fd(s) still open after exit`);
  const d = r.host.msiDevices[0]!;
  if (d.hw.enabled) throw new FuzzMismatch('teardown: the pci function still has MSI enabled after exit');
}

/** A fresh machine and model after the prologue; the model's fds must be the real ones. */
export function msiStart(stats: FuzzStats): { model: MsiModel; real: FuzzReal } {
  const real = new FuzzReal(stats, 'msi');
  prologue(real);
  const model = new MsiModel(NR_VCPUS, FUZZ_MSI_DEVICE.vectors);
  if (real.p.files.count !== model.openFds().length)
    throw new FuzzMismatch(`prologue: ${real.p.files.count} fds open, the model has ${model.openFds().length}`);
  return { model, real };
}

/** The property of the MSI flavour. */
export function msiProperty(stats: FuzzStats, maxCommands = 40, replayPath?: string) {
  return fc.property(msiCommands(maxCommands, replayPath), (cmds) => {
    stats.startSequence();
    const { model, real } = msiStart(stats);
    fc.modelRun(() => ({ model, real }), cmds);
    msiTeardown(real);
  });
}
