/**
 * The fuzzer's reference model of the ABI (docs/ABI.md): which fds exist and what they are, and the state of the
 * objects behind them, small enough to predict every call's errno — or its success and result — before the real
 * model runs it. Methods named after a call predict it and, on success (or a failure with side effects), update the
 * state the way the kernel would.
 */
import { FUZZ_DEVICES } from './fuzzMachine.js';
import {
  closure,
  dedupe,
  delivers,
  fire,
  fireWhileAsserted,
  forward,
  freeIrq,
  LINE_AT_BOOT,
  type LineState,
  type LineUse,
  requestTrigger,
  unforward,
  vfioMask,
  vfioUnmask,
} from './lineModel.js';

export type FdKind = 'container' | 'group' | 'device' | 'eventfd' | 'kvm' | 'vm' | 'vcpu' | 'vgic' | 'kvfio';

/**
 * A prediction: success (with the result value, unless undefined), an errno, or — where the counter of an eventfd
 * the kernel also signals is unknown — either success or one errno.
 */
export type Expect =
  | { readonly ok: true; readonly value?: number }
  | { readonly ok: false; readonly errno: string }
  | { readonly ok: 'either'; readonly errno: string };

export const ok = (value?: number): Expect => ({ ok: true, value });
export const fail = (errno: string): Expect => ({ ok: false, errno });

/** An fd chosen by a command: the i-th fd of a kind, the i-th open fd, or a raw number. */
export type FdSel =
  | { readonly t: 'kind'; readonly kind: FdKind; readonly i: number }
  | { readonly t: 'open'; readonly i: number }
  | { readonly t: 'raw'; readonly fd: number };

export function fdSelToString(s: FdSel): string {
  if (s.t === 'kind') return `${s.kind}#${s.i}`;
  if (s.t === 'open') return `open#${s.i}`;
  return `fd${s.fd}`;
}

interface FdEntry {
  readonly kind: FdKind;
  readonly obj: number;
}

export interface ContainerState {
  fdOpen: boolean;
  groups: number[];
  iommu: number;
  /** Type1 DMA mappings [iova, size), sorted by iova; dropped with the IOMMU driver. */
  dmas: { iova: bigint; size: bigint }[];
}

export interface GroupState {
  readonly iommuGroup: number;
  fdOpen: boolean;
  deviceFiles: number;
  /** kvm-vfio devices holding the group file. */
  kvHolders: number;
  container: number | null;
}

export interface FwdState {
  readonly kv: number;
  readonly dev: number;
  readonly index: number;
  readonly gsi: number;
}

export interface DeviceState {
  readonly numIrqs: number;
  readonly level: readonly boolean[];
  openCount: number;
  trigger: (number | null)[];
  maskVirqfd: (number | null)[];
  unmaskVirqfd: (number | null)[];
  fwd: (FwdState | null)[];
  /** Per index, every genirq/VFIO state the line can be in (lineModel.ts). */
  line: LineState[][];
}

export interface EventfdState {
  fdOpen: boolean;
  /** The counter, or null once the kernel uses the eventfd (IRQs signal and consume it). */
  count: bigint | null;
  semaphore: boolean;
}

export interface VcpuState {
  readonly id: number;
  readonly vm: number;
  initialized: boolean;
  running: boolean;
  hasRun: boolean;
}

export interface VgicState {
  initialized: boolean;
  ready: boolean;
  dist: bigint | null;
  cpu: bigint | null;
  nrSpis: number;
}

export interface VmState {
  fdOpen: boolean;
  readonly ipaBits: number;
  vcpus: number[];
  vgic: VgicState | null;
  irqfds: { efd: number; gsi: number; resample: number | null }[];
  /** The live kvm-vfio device, or null. */
  kvfio: number | null;
}

export interface KvmDevState {
  readonly vm: number;
  readonly type: 'vgic' | 'kvfio';
  fdOpen: boolean;
  groups: number[];
  fwd: FwdState[];
}

export const VGIC_V2_DIST_SIZE = 0x1000n;
export const VGIC_V2_CPU_SIZE = 0x2000n;
const MAX_VCPUS = 8;
const KVM_MAX_VCPU_IDS = 512;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** The type1 backend's reserved software MSI window (src/vfio/containerType1.ts). */
const MSI_IOVA_BASE = 0x800_0000n;
const MSI_IOVA_LENGTH = 0x10_0000n;
const EVENTFD_MAX = U64_MAX - 1n;

/** The kinds that answer an ioctl of the other subsystem or an unknown number with ENOTTY (VFIO, eventfd, devices). */
const ENOTTY_KINDS: readonly FdKind[] = ['container', 'group', 'device', 'eventfd', 'vgic', 'kvfio'];

export class AbiModel {
  readonly fds: (FdEntry | undefined)[] = [];
  readonly containers: ContainerState[] = [];
  readonly groups: GroupState[];
  readonly devices: DeviceState[];
  /** Device files: the device they open and whether their fd is open. */
  readonly deviceFiles: { dev: number; fdOpen: boolean }[] = [];
  readonly eventfds: EventfdState[] = [];
  readonly vms: VmState[] = [];
  readonly vcpus: VcpuState[] = [];
  readonly kvmDevs: KvmDevState[] = [];

  constructor() {
    this.groups = FUZZ_DEVICES.map((d) => ({
      iommuGroup: d.iommuGroup,
      fdOpen: false,
      deviceFiles: 0,
      kvHolders: 0,
      container: null,
    }));
    this.devices = FUZZ_DEVICES.map((d) => ({
      numIrqs: d.irqs.length,
      level: d.irqs.map((l) => l.trigger === 'level'),
      openCount: 0,
      trigger: d.irqs.map(() => null),
      maskVirqfd: d.irqs.map(() => null),
      unmaskVirqfd: d.irqs.map(() => null),
      fwd: d.irqs.map(() => null),
      line: d.irqs.map(() => [LINE_AT_BOOT]),
    }));
  }

  // ---- fds --------------------------------------------------------------------------------------------------

  entry(fd: number): FdEntry | undefined {
    return fd >= 0 ? this.fds[fd] : undefined;
  }

  kindOf(fd: number): FdKind | undefined {
    return this.entry(fd)?.kind;
  }

  openFds(): number[] {
    const out: number[] = [];
    for (let fd = 0; fd < this.fds.length; fd++) if (this.fds[fd] !== undefined) out.push(fd);
    return out;
  }

  fdsOf(kind: FdKind): number[] {
    return this.openFds().filter((fd) => this.fds[fd]!.kind === kind);
  }

  /** The fd a selector names now; a kind with no open fd names a closed fd (EBADF). */
  resolve(s: FdSel): number {
    if (s.t === 'raw') return s.fd;
    const list = s.t === 'kind' ? this.fdsOf(s.kind) : this.openFds();
    if (list.length === 0) return this.nextFd() + 7;
    return list[s.i % list.length]!;
  }

  /** alloc_fd: the lowest free number. */
  nextFd(): number {
    let fd = 0;
    while (this.fds[fd] !== undefined) fd++;
    return fd;
  }

  private install(kind: FdKind, obj: number): number {
    const fd = this.nextFd();
    this.fds[fd] = { kind, obj };
    return fd;
  }

  /** The errno of an ioctl this fd's file does not handle (fs/ioctl.c and each file's default branch). */
  foreignIoctl(fd: number): Expect {
    const e = this.entry(fd);
    if (e === undefined) return fail('EBADF');
    // a container passes unknown ioctls to its IOMMU driver (ENOTTY there); without one it says EINVAL
    if (e.kind === 'container' && this.containers[e.obj]!.iommu === 0) return fail('EINVAL');
    // VFIO files, eventfds and KVM devices say ENOTTY; /dev/kvm, VM and vCPU fds say EINVAL (kvm_*_ioctl defaults).
    return fail(ENOTTY_KINDS.includes(e.kind) ? 'ENOTTY' : 'EINVAL');
  }

  // ---- files ------------------------------------------------------------------------------------------------

  openContainer(): Expect {
    this.containers.push({ fdOpen: true, groups: [], iommu: 0, dmas: [] });
    return ok(this.install('container', this.containers.length - 1));
  }

  groupFileAlive(g: GroupState): boolean {
    return g.fdOpen || g.deviceFiles > 0 || g.kvHolders > 0;
  }

  /** open('/dev/vfio/<n>'): ENOENT for a group with no device, EBUSY while its file lives. */
  openGroup(iommuGroup: number): Expect {
    const gi = this.groups.findIndex((g) => g.iommuGroup === iommuGroup);
    if (gi < 0) return fail('ENOENT');
    const g = this.groups[gi]!;
    if (this.groupFileAlive(g)) return fail('EBUSY');
    g.fdOpen = true;
    return ok(this.install('group', gi));
  }

  openKvm(): Expect {
    return ok(this.install('kvm', 0));
  }

  /** eventfd(2): EINVAL outside EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK. */
  eventfd(initval: number, flags: number): Expect {
    if ((flags & ~(1 | 0o4000 | 0o2000000)) !== 0) return fail('EINVAL');
    this.eventfds.push({ fdOpen: true, count: BigInt(initval), semaphore: (flags & 1) !== 0 });
    return ok(this.install('eventfd', this.eventfds.length - 1));
  }

  /** The kernel took the eventfd: from now on IRQs signal and consume its counter. */
  private wild(efd: number): void {
    this.eventfds[efd]!.count = null;
  }

  /** read(2) of 8 (or `len`) bytes; the value read when the model knows the counter. */
  read(fd: number, len: number): Expect {
    const e = this.entry(fd);
    if (e === undefined) return fail('EBADF');
    if (e.kind !== 'eventfd') return fail('EINVAL'); // no read method: vfs_read's !FMODE_CAN_READ
    if (len < 8) return fail('EINVAL');
    const st = this.eventfds[e.obj]!;
    if (st.count === null) return { ok: 'either', errno: 'EAGAIN' };
    if (st.count === 0n) return fail('EAGAIN');
    st.count = st.semaphore ? st.count - 1n : 0n;
    return ok(8);
  }

  write(fd: number, len: number, value: bigint): Expect {
    const e = this.entry(fd);
    if (e === undefined) return fail('EBADF');
    if (e.kind !== 'eventfd') return fail('EINVAL');
    if (len < 8) return fail('EINVAL');
    if (value === U64_MAX) return fail('EINVAL');
    const st = this.eventfds[e.obj]!;
    if (st.count === null) {
      this.signal(e.obj, value === 0n);
      return value === 0n ? ok(8) : { ok: 'either', errno: 'EAGAIN' };
    }
    if (st.count + value > EVENTFD_MAX) return fail('EAGAIN');
    st.count += value;
    this.signal(e.obj, true);
    return ok(8);
  }

  // ---- the lines (lineModel.ts) ---------------------------------------------------------------------------------

  private lineUse(dev: number, i: number): LineUse {
    const d = this.devices[dev]!;
    return { requested: d.trigger[i] !== null, forwarded: d.fwd[i] !== null, level: d.level[i]! };
  }

  private lineApply(dev: number, i: number, op: (s: LineState) => LineState | LineState[]): void {
    const d = this.devices[dev]!;
    d.line[i] = dedupe(d.line[i]!.flatMap(op));
  }

  /** `op` may or may not have run (a signal whose delivery the model does not know). */
  private lineMaybe(dev: number, i: number, op: (s: LineState) => LineState): void {
    const d = this.devices[dev]!;
    d.line[i] = dedupe([...d.line[i]!, ...d.line[i]!.map(op)]);
  }

  /**
   * An IRQ went to a guest (an irqfd, a forwarded line): its EOI may be resampled into any resamplefd, which may be
   * any index's mask or unmask virqfd — every such index may have been masked and unmasked any number of times.
   */
  private chain(asserted?: { dev: number; index: number }): void {
    this.devices.forEach((d, dev) => {
      for (let i = 0; i < d.numIrqs; i++) {
        const ops: ((s: LineState) => LineState)[] = [];
        if (d.maskVirqfd[i] !== null) ops.push(vfioMask);
        if (d.unmaskVirqfd[i] !== null) ops.push(vfioUnmask);
        if (asserted?.dev === dev && asserted.index === i && d.level[i]) {
          const u = this.lineUse(dev, i);
          ops.push((s) => fireWhileAsserted(s, u));
        }
        if (ops.length > 0) d.line[i] = closure(d.line[i]!, ops);
      }
    });
  }

  /**
   * eventfd object `efd` is signalled (`certain`: it surely is): an irqfd takes it alone (exclusive waiter), else
   * every virqfd on it runs its handler in the wakeup (virqfd_wakeup).
   */
  private signal(efd: number, certain: boolean): void {
    if (this.vms.some((vm) => vm.irqfds.some((x) => x.efd === efd))) {
      this.chain();
      return;
    }
    this.devices.forEach((d, dev) => {
      for (let i = 0; i < d.numIrqs; i++) {
        const m = d.maskVirqfd[i] === efd;
        const u = d.unmaskVirqfd[i] === efd;
        // both on one eventfd: the wait-queue order decides which runs last
        if (m && u) d.line[i] = closure(d.line[i]!, [vfioMask, vfioUnmask]);
        else if (m || u) {
          const op = m ? vfioMask : vfioUnmask;
          if (certain) this.lineApply(dev, i, op);
          else this.lineMaybe(dev, i, op);
        }
      }
    });
  }

  /** SET_IRQS TRIGGER with DATA_NONE / BOOL 1: the handler runs in the ioctl (vfio_platform_set_irq_trigger). */
  private loopback(dev: number, i: number): void {
    const d = this.devices[dev]!;
    if (d.fwd[i] !== null) {
      // re-posted at the GIC, delivered to the guest by the forwarded path
      this.chain();
      return;
    }
    const trigger = d.trigger[i] ?? null;
    if (!d.level[i]) {
      if (trigger !== null) this.signal(trigger, true);
      return;
    }
    // vfio_automasked_irq_handler: masks and signals only an unmasked index
    const unmasked = d.line[i]!.map((s) => !s.masked);
    this.lineApply(dev, i, vfioMask);
    if (trigger !== null && unmasked.includes(true)) this.signal(trigger, !unmasked.includes(false));
  }

  /** The device asserts line `index` (FuzzMachine.raise): a level line for a while, an edge line once. */
  raise(dev: number, index: number): void {
    const u = this.lineUse(dev, index);
    const d = this.devices[dev]!;
    const delivered = d.line[index]!.some((s) => delivers(s, u));
    this.lineApply(dev, index, (s) => (u.level ? fireWhileAsserted(s, u) : fire(s, u)));
    if (!delivered) return;
    if (u.forwarded) this.chain({ dev, index });
    else if (d.trigger[index] !== null) {
      this.signal(d.trigger[index]!, d.line[index]!.length === 1);
      this.chain({ dev, index });
    }
  }

  /**
   * After the process exits every trigger is freed (irq_shutdown): a line is left enabled at the GIC only if it was
   * started with no action — `[false]`, `[true]`, or both where the model does not know.
   */
  enabledAfterExit(dev: number, index: number): boolean[] {
    const d = this.devices[dev]!;
    if (d.trigger[index] !== null) return [false];
    return [...new Set(d.line[index]!.map((s) => s.started && s.chipOn))].sort();
  }

  /** close(2), with the releases the last reference to each file runs. */
  close(fd: number): Expect {
    const e = this.entry(fd);
    if (e === undefined) return fail('EBADF');
    this.fds[fd] = undefined;
    switch (e.kind) {
      case 'container': {
        this.containers[e.obj]!.fdOpen = false;
        break;
      }
      case 'group': {
        this.groups[e.obj]!.fdOpen = false;
        this.maybeReleaseGroup(e.obj);
        break;
      }
      case 'device':
        this.releaseDeviceFile(e.obj);
        break;
      case 'eventfd':
        this.releaseEventfd(e.obj);
        break;
      case 'vm': {
        // kvm_vm_release: the irqfds go with the VM fd, even while vCPU and device fds keep the VM
        const vm = this.vms[e.obj]!;
        vm.fdOpen = false;
        vm.irqfds = [];
        break;
      }
      case 'vgic':
      case 'kvfio': {
        const d = this.kvmDevs[e.obj]!;
        d.fdOpen = false;
        if (d.type === 'kvfio') this.releaseKvfio(e.obj);
        break;
      }
      default:
        break;
    }
    return ok(0);
  }

  private maybeReleaseGroup(gi: number): void {
    const g = this.groups[gi]!;
    if (this.groupFileAlive(g)) return;
    if (g.container !== null) this.detachContainer(gi);
  }

  private detachContainer(gi: number): void {
    const g = this.groups[gi]!;
    const c = this.containers[g.container!]!;
    c.groups.splice(c.groups.indexOf(gi), 1);
    if (c.groups.length === 0) {
      c.iommu = 0;
      c.dmas = [];
    }
    g.container = null;
  }

  private releaseDeviceFile(dfi: number): void {
    const df = this.deviceFiles[dfi]!;
    df.fdOpen = false;
    const d = this.devices[df.dev]!;
    d.openCount--;
    if (d.openCount === 0) {
      // vfio_platform_irq_cleanup: virqfds off, triggers freed (which unforwards)
      for (let i = 0; i < d.numIrqs; i++) {
        d.maskVirqfd[i] = null;
        d.unmaskVirqfd[i] = null;
        this.dropTrigger(df.dev, i);
      }
    }
    const gi = this.groupOfDevice(df.dev);
    this.groups[gi]!.deviceFiles--;
    this.maybeReleaseGroup(gi);
  }

  /** The eventfd file's release wakes its pollers with EPOLLHUP: virqfds and irqfds on it go away. */
  private releaseEventfd(efd: number): void {
    this.eventfds[efd]!.fdOpen = false;
    for (const d of this.devices) {
      for (let i = 0; i < d.numIrqs; i++) {
        if (d.maskVirqfd[i] === efd) d.maskVirqfd[i] = null;
        if (d.unmaskVirqfd[i] === efd) d.unmaskVirqfd[i] = null;
      }
    }
    for (const vm of this.vms) vm.irqfds = vm.irqfds.filter((x) => x.efd !== efd);
  }

  /** kvm_vfio_release: everything forwarded goes back to normal, the groups are released. */
  private releaseKvfio(kvi: number): void {
    const kv = this.kvmDevs[kvi]!;
    for (const f of [...kv.fwd]) this.unforward(f);
    const vm = this.vms[kv.vm]!;
    if (vm.kvfio === kvi) vm.kvfio = null;
    for (const gi of kv.groups.splice(0)) {
      this.groups[gi]!.kvHolders--;
      this.maybeReleaseGroup(gi);
    }
  }

  private unforward(f: FwdState): void {
    const kv = this.kvmDevs[f.kv]!;
    kv.fwd.splice(kv.fwd.indexOf(f), 1);
    this.devices[f.dev]!.fwd[f.index] = null;
    this.lineApply(f.dev, f.index, unforward);
    this.chain();
  }

  /** vfio_set_trigger's first half: the old trigger is freed (and unforwarded). */
  private dropTrigger(dev: number, index: number): void {
    const d = this.devices[dev]!;
    const f = d.fwd[index];
    if (d.trigger[index] !== null && f !== null && f !== undefined) this.unforward(f);
    if (d.trigger[index] !== null) this.lineApply(dev, index, freeIrq);
    d.trigger[index] = null;
  }

  groupOfDevice(dev: number): number {
    return this.groups.findIndex((g) => g.iommuGroup === FUZZ_DEVICES[dev]!.iommuGroup);
  }

  // ---- VFIO -------------------------------------------------------------------------------------------------

  /** VFIO_SET_IOMMU on a container fd. */
  setIommu(fd: number, type: number): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'container') return this.foreignIoctl(fd);
    const c = this.containers[e.obj]!;
    if (c.groups.length === 0) return fail('EINVAL');
    if (c.iommu !== 0) return fail('EINVAL');
    if (type !== 1 && type !== 3) return fail('ENODEV');
    c.iommu = type;
    return ok(0);
  }

  /**
   * VFIO_IOMMU_MAP_DMA (READ|WRITE) of [iova, iova + size) from a mapped 4K-aligned buffer, or from an unmapped
   * address (`vaddrMapped` false): vfio_dma_do_map's checks with the model's IOVA ranges (the MSI window excluded).
   */
  mapDma(fd: number, iova: bigint, size: bigint, vaddrMapped: boolean, bad: boolean): Expect {
    const c = this.type1(fd);
    if (!('dmas' in c)) return c;
    if (bad) return fail('EFAULT');
    if (size === 0n || ((size | iova) & 0xfffn) !== 0n) return fail('EINVAL');
    if (c.dmas.some((d) => iova < d.iova + d.size && d.iova < iova + size)) return fail('EEXIST');
    const msiEnd = MSI_IOVA_BASE + MSI_IOVA_LENGTH;
    if (iova < msiEnd && MSI_IOVA_BASE < iova + size) return fail('EINVAL');
    if (!vaddrMapped) return fail('EFAULT');
    c.dmas.push({ iova, size });
    c.dmas.sort((a, b) => (a.iova < b.iova ? -1 : 1));
    return ok(0);
  }

  /** VFIO_IOMMU_UNMAP_DMA of [iova, iova + size): alignment, type1v2's no-bisect rule, then every mapping inside goes. */
  unmapDma(fd: number, iova: bigint, size: bigint, bad: boolean): Expect {
    const c = this.type1(fd);
    if (!('dmas' in c)) return c;
    if (bad) return fail('EFAULT');
    if ((iova & 0xfffn) !== 0n || size === 0n || (size & 0xfffn) !== 0n) return fail('EINVAL');
    const end = iova + size;
    const inside = (d: { iova: bigint; size: bigint }) => d.iova < end && iova < d.iova + d.size;
    if (c.iommu === 3 && c.dmas.some((d) => inside(d) && (d.iova < iova || d.iova + d.size > end))) {
      return fail('EINVAL');
    }
    // type1 v1 stops at a first overlapping mapping that starts below iova
    const first = c.dmas.find(inside);
    if (first !== undefined && !(c.iommu === 1 && first.iova < iova)) c.dmas = c.dmas.filter((d) => !inside(d));
    return ok(0);
  }

  /** The container behind `fd` with its type1 driver set, or the errno of a type1 ioctl on it. */
  private type1(fd: number): ContainerState | Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'container') return this.foreignIoctl(fd);
    const c = this.containers[e.obj]!;
    return c.iommu === 0 ? fail('EINVAL') : c;
  }

  /** VFIO_GROUP_SET_CONTAINER with `cfd` in a readable __s32 (or not). */
  setContainer(fd: number, cfd: number, bad: boolean): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'group') return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    const ce = this.entry(cfd);
    if (ce === undefined) return fail('EBADF');
    const g = this.groups[e.obj]!;
    if (g.container !== null) return fail('EINVAL');
    if (ce.kind !== 'container') return fail('EBADFD');
    this.containers[ce.obj]!.groups.push(e.obj);
    g.container = ce.obj;
    return ok(0);
  }

  unsetContainer(fd: number): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'group') return this.foreignIoctl(fd);
    const g = this.groups[e.obj]!;
    if (g.container === null) return fail('EINVAL');
    if (g.deviceFiles > 0) return fail('EBUSY');
    this.detachContainer(e.obj);
    return ok(0);
  }

  /** VFIO_GROUP_GET_STATUS: the flags it writes (CONTAINER_SET 2 | VIABLE 1). */
  groupStatus(fd: number, argsz: number, bad: boolean): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'group') return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if (argsz < 8) return fail('EINVAL');
    return ok(this.groups[e.obj]!.container !== null ? 3 : 1);
  }

  getDeviceFd(fd: number, name: string, bad: boolean): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'group') return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    const g = this.groups[e.obj]!;
    const dev = FUZZ_DEVICES.findIndex((d) => d.name === name && d.iommuGroup === g.iommuGroup);
    if (dev < 0) return fail('ENODEV');
    if (g.container === null || this.containers[g.container]!.iommu === 0) return fail('EINVAL');
    const d = this.devices[dev]!;
    // vfio_platform_open_device → vfio_platform_irq_init: every index starts unmasked (the descriptors keep their state)
    if (d.openCount++ === 0) d.line = d.line.map((ls) => dedupe(ls.map((x) => ({ ...x, masked: false }))));
    g.deviceFiles++;
    this.deviceFiles.push({ dev, fdOpen: true });
    return ok(this.install('device', this.deviceFiles.length - 1));
  }

  deviceOf(fd: number): number | undefined {
    const e = this.entry(fd);
    return e?.kind === 'device' ? this.deviceFiles[e.obj]!.dev : undefined;
  }

  /** VFIO_DEVICE_GET_INFO: num_irqs. */
  deviceInfo(fd: number, argsz: number, bad: boolean): Expect {
    const dev = this.deviceOf(fd);
    if (dev === undefined) return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if (argsz < 16) return fail('EINVAL');
    return ok(this.devices[dev]!.numIrqs);
  }

  /** VFIO_DEVICE_GET_IRQ_INFO: the flags (EVENTFD, and MASKABLE | AUTOMASKED for level). */
  irqInfo(fd: number, index: number, argsz: number, bad: boolean): Expect {
    const dev = this.deviceOf(fd);
    if (dev === undefined) return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if (argsz < 16) return fail('EINVAL');
    const d = this.devices[dev]!;
    if (index >= d.numIrqs) return fail('EINVAL');
    return ok(d.level[index] ? 7 : 1);
  }

  /**
   * VFIO_DEVICE_SET_IRQS (docs/ABI.md §4.1). `fdData` is the eventfd the data holds (DATA_EVENTFD), `boolData` the
   * byte (DATA_BOOL); `dataBytes` how many data bytes follow the header in memory.
   */
  setIrqs(
    fd: number,
    h: { argsz: number; flags: number; index: number; start: number; count: number },
    fdData: number,
    bad: boolean,
    boolData = 1,
  ): Expect {
    const dev = this.deviceOf(fd);
    if (dev === undefined) return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    const d = this.devices[dev]!;
    const n = d.numIrqs;
    if (h.argsz < 20 || h.index >= n) return fail('EINVAL');
    if ((h.flags & ~0x3f) !== 0) return fail('EINVAL');
    if (h.start >= n || h.start + h.count > n) return fail('EINVAL');
    const dt = h.flags & 7;
    if (dt !== 1 && dt !== 2 && dt !== 4) return fail('EINVAL');
    const size = dt === 4 ? 4 : dt === 2 ? 1 : 0;
    if (size > 0 && h.argsz - 20 < h.count * size) return fail('EINVAL');
    const action = h.flags & 0x38;
    const i = h.index;
    if (action === 8 || action === 16) {
      if (h.start !== 0 || h.count !== 1) return fail('EINVAL');
      if (!d.level[i]) return fail('EINVAL');
      const op = action === 16 ? vfioUnmask : vfioMask;
      if (dt !== 4) {
        if (dt === 1 || boolData !== 0) this.lineApply(dev, i, op);
        return ok(0);
      }
      const slot = action === 16 ? d.unmaskVirqfd : d.maskVirqfd;
      if (fdData < 0) {
        slot[i] = null;
        return ok(0);
      }
      const e = this.entry(fdData);
      if (e === undefined) return fail('EBADF');
      if (e.kind !== 'eventfd') return fail('EINVAL');
      if (slot[i] !== null) return fail('EBUSY');
      slot[i] = e.obj;
      // vfio_virqfd_enable: an eventfd already signalled runs the handler now
      const count = this.eventfds[e.obj]!.count;
      if (count === null) this.lineMaybe(dev, i, op);
      else if (count > 0n) this.lineApply(dev, i, op);
      this.wild(e.obj);
      return ok(0);
    }
    if (action !== 32) return fail('ENOTTY');
    if (h.count === 0 && dt === 1) {
      this.dropTrigger(dev, i);
      return ok(0);
    }
    if (h.start !== 0 || h.count !== 1) return fail('EINVAL');
    if (dt !== 4) {
      if (dt === 1 || boolData !== 0) this.loopback(dev, i);
      return ok(0);
    }
    this.dropTrigger(dev, i);
    if (fdData < 0) return ok(0);
    const e = this.entry(fdData);
    if (e === undefined) return fail('EBADF');
    if (e.kind !== 'eventfd') return fail('EINVAL');
    d.trigger[i] = e.obj;
    this.lineApply(dev, i, requestTrigger);
    this.wild(e.obj);
    return ok(0);
  }

  // ---- KVM --------------------------------------------------------------------------------------------------

  /** KVM_CREATE_VM with machine type `type` (IPA size in bits 0..7 of an unsigned long). */
  createVm(fd: number, type: number): Expect {
    if (this.kindOf(fd) !== 'kvm') return this.foreignIoctl(fd);
    if (type < 0 || type > 0xff) return fail('EINVAL');
    const ipa = type === 0 ? 40 : type;
    if (ipa > 40 || ipa < 32) return fail('EINVAL');
    this.vms.push({ fdOpen: true, ipaBits: ipa, vcpus: [], vgic: null, irqfds: [], kvfio: null });
    return ok(this.install('vm', this.vms.length - 1));
  }

  vmOf(fd: number): VmState | undefined {
    const e = this.entry(fd);
    return e?.kind === 'vm' ? this.vms[e.obj] : undefined;
  }

  createVcpu(fd: number, id: number): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'vm') return this.foreignIoctl(fd);
    const vm = this.vms[e.obj]!;
    if (id < 0 || id >= KVM_MAX_VCPU_IDS) return fail('EINVAL');
    if (vm.vcpus.length >= MAX_VCPUS) return fail('EINVAL');
    if (vm.vgic?.initialized === true) return fail('EBUSY');
    if (id >= MAX_VCPUS) return fail('EINVAL');
    if (vm.vcpus.some((v) => this.vcpus[v]!.id === id)) return fail('EEXIST');
    this.vcpus.push({ id, vm: e.obj, initialized: false, running: false, hasRun: false });
    vm.vcpus.push(this.vcpus.length - 1);
    return ok(this.install('vcpu', this.vcpus.length - 1));
  }

  /** KVM_CREATE_DEVICE: type 5 vGIC-v2, 4 kvm-vfio; flags bit 0 = TEST. The fd written back. */
  createDevice(fd: number, type: number, flags: number, bad: boolean): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'vm') return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if (type !== 4 && type !== 5) return fail('ENODEV');
    if ((flags & 1) !== 0) return ok(0);
    const vm = this.vms[e.obj]!;
    if (type === 5) {
      if (vm.vgic !== null) return fail('EEXIST');
      if (vm.vcpus.some((v) => this.vcpus[v]!.hasRun)) return fail('EBUSY');
      vm.vgic = { initialized: false, ready: false, dist: null, cpu: null, nrSpis: 0 };
    } else {
      if (vm.kvfio !== null) return fail('EBUSY');
    }
    this.kvmDevs.push({ vm: e.obj, type: type === 5 ? 'vgic' : 'kvfio', fdOpen: true, groups: [], fwd: [] });
    const di = this.kvmDevs.length - 1;
    if (type === 4) vm.kvfio = di;
    return ok(this.install(type === 5 ? 'vgic' : 'kvfio', di));
  }

  /** vgic_init; EBUSY with no vCPU (the model's kvm_vgic_dist_init needs vcpu0). */
  private vgicInit(vm: VmState): Expect {
    const v = vm.vgic!;
    if (v.initialized) return ok(0);
    if (vm.vcpus.length === 0) return fail('EBUSY');
    if (v.nrSpis === 0) v.nrSpis = 224;
    v.initialized = true;
    return ok(0);
  }

  /**
   * KVM_SET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR on `fd` with {group, attr} and `payload` bytes readable at addr
   * (0 bytes: the pointer faults). `value` is what those bytes hold for the calls that read a number; `fwd` the
   * kvm_arch_forwarded_irq they hold for KVM_DEV_VFIO_DEVICE.
   */
  deviceAttr(
    fd: number,
    op: 'set' | 'has',
    a: { group: number; attr: number; bad: boolean; payload: number; value: bigint },
    fwd?: { fd: number; index: number; gsi: number },
  ): Expect {
    const e = this.entry(fd);
    if (e === undefined) return fail('EBADF');
    if (e.kind === 'vcpu') return a.bad ? fail('EFAULT') : fail('ENXIO');
    if (e.kind !== 'vgic' && e.kind !== 'kvfio') return this.foreignIoctl(fd);
    if (a.bad) return fail('EFAULT');
    const dev = this.kvmDevs[e.obj]!;
    if (op === 'has') return this.hasAttr(dev, a.group, a.attr);
    return dev.type === 'vgic' ? this.vgicSetAttr(dev, a) : this.kvfioSetAttr(e.obj, a, fwd);
  }

  private hasAttr(dev: KvmDevState, group: number, attr: number): Expect {
    if (dev.type === 'kvfio') return (group === 1 || group === 2) && (attr === 1 || attr === 2) ? ok(0) : fail('ENXIO');
    switch (group) {
      case 0:
        return attr === 0 || attr === 1 ? ok(0) : fail('ENXIO');
      case 1:
      case 2:
        // vgic_v2_parse_attr: cpuid 0 needs a vCPU; offset 0 (GICD_CTLR / GICC_CTLR) is a register, unaligned is not
        if (this.vms[dev.vm]!.vcpus.length === 0) return fail('EINVAL');
        return attr === 0 ? ok(0) : fail('ENXIO');
      case 3:
        return ok(0);
      case 4:
        return attr === 0 ? ok(0) : fail('ENXIO');
      default:
        return fail('ENXIO');
    }
  }

  private vgicSetAttr(dev: KvmDevState, a: { group: number; attr: number; payload: number; value: bigint }): Expect {
    const vm = this.vms[dev.vm]!;
    const v = vm.vgic!;
    switch (a.group) {
      case 0: {
        if (a.payload < 8) return fail('EFAULT');
        if (a.attr !== 0 && a.attr !== 1) return fail('ENXIO');
        const cur = a.attr === 0 ? v.dist : v.cpu;
        const size = a.attr === 0 ? VGIC_V2_DIST_SIZE : VGIC_V2_CPU_SIZE;
        if (cur !== null) return fail('EEXIST');
        if (a.value % 0x1000n !== 0n) return fail('EINVAL');
        if (a.value + size > U64_MAX) return fail('EINVAL');
        const phys = 1n << BigInt(vm.ipaBits);
        if (a.value >= phys || a.value + size > phys) return fail('E2BIG');
        if (a.attr === 0) v.dist = a.value;
        else v.cpu = a.value;
        return ok(0);
      }
      case 1:
      case 2: {
        // vgic_v2_attr_regs_access: the cpuid (attr bits 32..39) names a vCPU, the value is read, vgic_init runs,
        // no vCPU may run
        if (vm.vcpus.length === 0) return fail('EINVAL');
        if (a.payload < 4) return fail('EFAULT');
        const r = this.vgicInit(vm);
        if (!r.ok) return r;
        if (vm.vcpus.some((x) => this.vcpus[x]!.running)) return fail('EBUSY');
        return (a.attr & 3) !== 0 ? fail('ENXIO') : ok(0);
      }
      case 3: {
        if (a.payload < 4) return fail('EFAULT');
        const n = Number(a.value & 0xffff_ffffn);
        if (n < 64 || n > 1023 || n % 32 !== 0) return fail('EINVAL');
        if (v.initialized || v.nrSpis !== 0) return fail('EBUSY');
        v.nrSpis = n - 32;
        return ok(0);
      }
      case 4:
        if (a.attr !== 0) return fail('ENXIO');
        return this.vgicInit(vm);
      default:
        return fail('ENXIO');
    }
  }

  private kvfioSetAttr(
    kvi: number,
    a: { group: number; attr: number; payload: number; value: bigint },
    fwd?: { fd: number; index: number; gsi: number },
  ): Expect {
    const kv = this.kvmDevs[kvi]!;
    if (a.group === 1) {
      if (a.attr !== 1 && a.attr !== 2) return fail('ENXIO');
      if (a.payload < 4) return fail('EFAULT');
      const gfd = Number(BigInt.asIntN(32, a.value));
      const e = this.entry(gfd);
      if (e === undefined) return fail('EBADF');
      // divergence from Linux (vfio_file_is_valid also accepts device files): the model takes group files only
      if (e.kind !== 'group') return fail('EINVAL');
      const has = kv.groups.includes(e.obj);
      if (a.attr === 1) {
        if (has) return fail('EEXIST');
        kv.groups.push(e.obj);
        this.groups[e.obj]!.kvHolders++;
        return ok(0);
      }
      if (!has) return fail('ENOENT');
      for (const f of [...kv.fwd]) if (this.groupOfDevice(f.dev) === e.obj) this.unforward(f);
      kv.groups.splice(kv.groups.indexOf(e.obj), 1);
      this.groups[e.obj]!.kvHolders--;
      this.maybeReleaseGroup(e.obj);
      return ok(0);
    }
    if (a.group !== 2) return fail('ENXIO');
    if (a.attr !== 1 && a.attr !== 2) return fail('ENXIO');
    if (a.payload < 12 || fwd === undefined) return fail('EFAULT');
    const e = this.entry(fwd.fd);
    if (e === undefined) return fail('EBADF');
    if (e.kind !== 'device') return fail('EINVAL');
    const dev = this.deviceFiles[e.obj]!.dev;
    const d = this.devices[dev]!;
    if (fwd.index >= d.numIrqs) return fail('EINVAL');
    const vm = this.vms[kv.vm]!;
    if (vm.vgic === null || !vm.vgic.initialized || fwd.gsi >= vm.vgic.nrSpis) return fail('EINVAL');
    if (!kv.groups.includes(this.groupOfDevice(dev))) return fail('EPERM');
    const existing = kv.fwd.find((f) => f.dev === dev && f.index === fwd.index);
    if (a.attr === 2) {
      // the model matches (device, index) only: guest_irq is not compared (docs/ABI.md §8.3 says "with that guest_irq")
      if (existing === undefined) return fail('ENOENT');
      this.unforward(existing);
      return ok(0);
    }
    if (existing !== undefined) return fail('EEXIST');
    if (kv.fwd.some((f) => f.gsi === fwd.gsi)) return fail('EEXIST');
    if (d.trigger[fwd.index] === null) return fail('EINVAL');
    if (d.fwd[fwd.index] !== null) return fail('EEXIST');
    const f: FwdState = { kv: kvi, dev, index: fwd.index, gsi: fwd.gsi };
    kv.fwd.push(f);
    d.fwd[fwd.index] = f;
    this.lineApply(dev, fwd.index, forward);
    // the switch re-queues a pending or active vIRQ, which the guest may EOI into a resamplefd
    this.chain();
    return ok(0);
  }

  /** KVM_IRQFD (flags: 1 DEASSIGN, 2 RESAMPLE). */
  irqfd(fd: number, a: { efd: number; gsi: number; flags: number; resamplefd: number }, bad: boolean): Expect {
    const e = this.entry(fd);
    if (e?.kind !== 'vm') return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if ((a.flags & ~3) !== 0) return fail('EINVAL');
    const vm = this.vms[e.obj]!;
    // kvm_irqfd_assign: kvm_arch_intc_initialized before anything else
    if ((a.flags & 1) === 0 && vm.vgic?.initialized !== true) return fail('EAGAIN');
    const ee = this.entry(a.efd);
    if (ee === undefined) return fail('EBADF');
    if (ee.kind !== 'eventfd') return fail('EINVAL');
    if ((a.flags & 1) !== 0) {
      vm.irqfds = vm.irqfds.filter((x) => !(x.efd === ee.obj && x.gsi === a.gsi));
      return ok(0);
    }
    if ((a.flags & 2) !== 0) {
      const re = this.entry(a.resamplefd);
      if (re === undefined) return fail('EBADF');
      if (re.kind !== 'eventfd') return fail('EINVAL');
      if (vm.irqfds.some((x) => x.efd === ee.obj)) return fail('EBUSY');
      this.wild(re.obj);
      vm.irqfds.push({ efd: ee.obj, gsi: a.gsi, resample: re.obj });
      // kvm_irqfd_assign polls: an eventfd already signalled injects now
      if (this.eventfds[ee.obj]!.count !== 0n) this.chain();
      this.wild(ee.obj);
      return ok(0);
    }
    if (vm.irqfds.some((x) => x.efd === ee.obj)) return fail('EBUSY');
    vm.irqfds.push({ efd: ee.obj, gsi: a.gsi, resample: null });
    if (this.eventfds[ee.obj]!.count !== 0n) this.chain();
    this.wild(ee.obj);
    return ok(0);
  }

  /**
   * Whether an irqfd on eventfd `efdFd` for `gsi`, resampled through `rfdFd`, would close a loop: the guest's EOI of
   * a level SPI signals every resamplefd of that SPI (one resampler per GSI, virt/kvm/eventfd.c), and a resamplefd
   * that is itself an irqfd's eventfd injects again — an interrupt storm, on Linux too.
   */
  resampleLoop(vmFd: number, efdFd: number, gsi: number, rfdFd: number): boolean {
    const vm = this.vmOf(vmFd);
    const e = this.entry(efdFd);
    const r = this.entry(rfdFd);
    if (vm === undefined || e?.kind !== 'eventfd' || r?.kind !== 'eventfd') return false;
    // over every VM: an eventfd may be an irqfd of one VM and a resamplefd of another
    const lists = this.vms.map((v) => (v === vm ? [...v.irqfds, { efd: e.obj, gsi, resample: r.obj }] : v.irqfds));
    const next = (x: number): number[] => {
      const out: number[] = [];
      for (const irqfds of lists) {
        for (const i of irqfds) {
          if (i.efd !== x) continue;
          for (const j of irqfds) if (j.gsi === i.gsi && j.resample !== null) out.push(j.resample);
        }
      }
      return out;
    };
    // any cycle (the graph had none before the new irqfd): not only through the new irqfd's own eventfd — its
    // resamplefd can be another irqfd's eventfd on the same GSI, which then re-injects itself
    const starts = new Set<number>();
    for (const irqfds of lists) for (const i of irqfds) starts.add(i.efd);
    for (const start of starts) {
      const seen = new Set<number>();
      const stack = next(start);
      while (stack.length > 0) {
        const x = stack.pop()!;
        if (x === start) return true;
        if (seen.has(x)) continue;
        seen.add(x);
        stack.push(...next(x));
      }
    }
    return false;
  }

  vcpuOf(fd: number): VcpuState | undefined {
    const e = this.entry(fd);
    return e?.kind === 'vcpu' ? this.vcpus[e.obj] : undefined;
  }

  /** KVM_ARM_VCPU_INIT: target 5 (GENERIC_V8) only; feature bits 0 and 2 known. */
  vcpuInit(fd: number, target: number, features: number, bad: boolean): Expect {
    const v = this.vcpuOf(fd);
    if (v === undefined) return this.foreignIoctl(fd);
    if (bad) return fail('EFAULT');
    if (target !== 5) return fail('EINVAL');
    if ((features & ~0x7f) !== 0) return fail('ENOENT');
    if (v.initialized) return ok(0); // the fuzzer always passes the same features to one vCPU
    v.initialized = true;
    return ok(0);
  }

  /** KVM_RUN: -1 = still in the guest (the vCPU thread stays in KVM_RUN). */
  run(fd: number): Expect {
    const v = this.vcpuOf(fd);
    if (v === undefined) return this.foreignIoctl(fd);
    if (!v.initialized) return fail('ENOEXEC');
    const vm = this.vms[v.vm]!;
    if (!v.hasRun && vm.vgic !== null && !vm.vgic.ready) {
      const g = vm.vgic;
      if (g.dist === null || g.cpu === null) return fail('ENXIO');
      if (!(g.dist + VGIC_V2_DIST_SIZE <= g.cpu || g.cpu + VGIC_V2_CPU_SIZE <= g.dist)) return fail('EINVAL');
      this.vgicInit(vm);
      g.ready = true;
    }
    v.hasRun = true;
    // a guest that starts running may EOI a vIRQ injected meanwhile (resampled into a virqfd)
    if (!v.running) this.chain();
    v.running = true;
    return ok(-1);
  }

  /** Resources the model expects live (for the counters): forwarded IRQs, irqfds, open fds. */
  get forwarded(): number {
    return this.devices.reduce((n, d) => n + d.fwd.filter((f) => f !== null).length, 0);
  }
}
