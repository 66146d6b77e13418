/**
 * The reference model of the MSI flavour of the ABI fuzzer (msiCommands.ts): a GICv3 VM with its vGIC-v3 and vITS
 * devices, GSI routing, KVM_SIGNAL_MSI, irqfds, and a vfio-pci function's MSI / MSI-X indexes. It predicts each call's
 * errno from the order of the kernel's checks (Linux 6.1: kvm_ioctl_create_device, kvm_vgic_create, vgic_its_create,
 * vgic_v3_{set,get,has}_attr, kvm_vgic_addr, vgic_v3_alloc_redist_region, vgic_its_{set,get,has}_attr,
 * kvm_vm_ioctl's KVM_SET_GSI_ROUTING → kvm_set_irq_routing → kvm_set_routing_entry, kvm_send_userspace_msi →
 * vgic_its_inject_msi, kvm_irqfd, vfio_set_irqs_validate_and_prepare → vfio_pci_set_irqs_ioctl), written from those
 * functions and docs/ABI.md, not from the model under test.
 *
 * KVM_RUN is entered only where it succeeds (kvm_vgic_map_resources maps the vGIC-v3: a failure there would
 * __kvm_vgic_destroy it, which the fuzzer leaves out); the vCPU thread then stays in the guest — the default idle
 * guest, which maps no ITS device: every MSI that reaches an enabled vITS misses its translation
 * (E_ITS_INT_UNMAPPED_INTERRUPT), and KVM_SIGNAL_MSI's outcome stays exact with vCPUs running.
 */
import { type Expect, fail, ok } from './abiModel.js';

/** A prediction, and for a get the u64/u32 the kernel writes to attr.addr when the model follows it. */
export type MsiExpect = Expect & { readonly read?: bigint };

const okRead = (read: bigint): MsiExpect => ({ ok: true, value: 0, read });

export type MsiFdKind = 'kvm' | 'vm' | 'vcpu' | 'container' | 'group' | 'device' | 'vgic' | 'its' | 'eventfd';

/** An fd chosen by a command: the i-th fd of a kind, or a raw number. */
export type MsiFdSel =
  | { readonly t: 'kind'; readonly kind: MsiFdKind; readonly i: number }
  | { readonly t: 'raw'; readonly fd: number };

export function msiSelToString(s: MsiFdSel): string {
  return s.t === 'kind' ? `${s.kind}#${s.i}` : `fd${s.fd}`;
}

/** ~0: an unset vGIC / ITS base (VGIC_ADDR_UNDEF). */
export const ADDR_UNDEF = 0xffff_ffff_ffff_ffffn;
/** The VM's IPA size (kvm_phys_size of the default 40-bit VM). */
const IPA_SIZE = 1n << 40n;
const SZ_64K = 0x1_0000n;
/** KVM_VGIC_V3_DIST_SIZE, KVM_VGIC_V3_REDIST_SIZE, KVM_VGIC_V3_ITS_SIZE. */
const DIST_SIZE = 0x1_0000n;
const REDIST_SIZE = 0x2_0000n;
export const ITS_SIZE = 0x2_0000n;
/** The vGIC-v3 default nr_spis when NR_IRQS was not set (VGIC_NR_IRQS_LEGACY - VGIC_NR_PRIVATE_IRQS). */
const DEFAULT_NR_SPIS = 224;
const VALID = 1n << 63n;

/** A redistributor region (struct vgic_redist_region): count 0 = the legacy single region. */
interface RdistRegion {
  readonly base: bigint;
  readonly count: number;
  readonly index: number;
}

interface VgicState {
  initialized: boolean;
  nrSpis: number;
  dist: bigint;
  regions: RdistRegion[];
}

/** What the fuzzer can change of a vITS through its attributes. */
export interface ItsState {
  base: bigint;
  enabled: boolean;
  baser: [bigint, bigint];
  cbaser: bigint;
}

/** The vfio-pci function's interrupt state (vdev->irq_type, num_ctx, ctx[].trigger as eventfd ids). */
interface PciState {
  irqType: 0 | 1 | 2;
  triggers: (number | null)[];
  /** vdev->req_trigger. */
  req: number | null;
}

export class MsiModel {
  private readonly fds: ({ kind: MsiFdKind; obj: number } | undefined)[] = [];
  /** Eventfd ids (an eventfd's identity is its file, not its fd number). */
  private eventfdSeq = 0;
  readonly nrVcpus: number;
  vgic: VgicState | null = null;
  readonly its: ItsState[] = [];
  /** The vCPUs (by index) whose thread is in KVM_RUN: it stays in the guest until the process exits. */
  readonly running = new Set<number>();
  /** The VM's irqfds: (eventfd id, gsi). */
  irqfds: { efd: number; gsi: number }[] = [];
  readonly pci: PciState = { irqType: 0, triggers: [], req: null };

  /** The prologue's fds: /dev/kvm, the VM, `nrVcpus` vCPUs, container, group, the pci device. */
  constructor(
    nrVcpus: number,
    readonly nrVectors: number,
  ) {
    this.nrVcpus = nrVcpus;
    this.install('kvm', 0);
    this.install('vm', 0);
    for (let i = 0; i < nrVcpus; i++) this.install('vcpu', i);
    this.install('container', 0);
    this.install('group', 0);
    this.install('device', 0);
  }

  // ---- fds ------------------------------------------------------------------------------------------------------

  openFds(): number[] {
    const out: number[] = [];
    this.fds.forEach((e, fd) => {
      if (e !== undefined) out.push(fd);
    });
    return out;
  }

  kindOf(fd: number): MsiFdKind | undefined {
    return Number.isInteger(fd) && fd >= 0 ? this.fds[fd]?.kind : undefined;
  }

  private objOf(fd: number): number {
    return this.fds[fd]!.obj;
  }

  fdsOf(kind: MsiFdKind): number[] {
    return this.openFds().filter((fd) => this.fds[fd]!.kind === kind);
  }

  /** The fd a selector names now; a kind with no open fd names a closed one (EBADF). */
  resolve(s: MsiFdSel): number {
    if (s.t === 'raw') return s.fd;
    const list = this.fdsOf(s.kind);
    return list.length === 0 ? this.nextFd() + 5 : list[s.i % list.length]!;
  }

  /** alloc_fd: the lowest free number. */
  nextFd(): number {
    let fd = 0;
    while (this.fds[fd] !== undefined) fd++;
    return fd;
  }

  private install(kind: MsiFdKind, obj: number): number {
    const fd = this.nextFd();
    this.fds[fd] = { kind, obj };
    return fd;
  }

  /** An ioctl on an fd: EBADF closed; ENOTTY a file without that ioctl. */
  private target(fd: number, kind: MsiFdKind): Expect | null {
    const k = this.kindOf(fd);
    if (k === undefined) return fail('EBADF');
    return k === kind ? null : fail('ENOTTY');
  }

  eventfd(): Expect {
    return ok(this.install('eventfd', this.eventfdSeq++));
  }

  /** write(2) of 8 bytes holding 1: the counter never nears its limit in a sequence. */
  write(fd: number): Expect {
    const k = this.kindOf(fd);
    if (k === undefined) return fail('EBADF');
    return k === 'eventfd' ? ok(8) : fail('EINVAL');
  }

  /** close of an eventfd: its irqfds shut down (irqfd_wakeup's EPOLLHUP); a vfio trigger keeps its eventfd_ctx. */
  close(fd: number): Expect {
    const k = this.kindOf(fd);
    if (k === undefined) return fail('EBADF');
    if (k === 'eventfd') {
      const id = this.objOf(fd);
      this.irqfds = this.irqfds.filter((x) => x.efd !== id);
    }
    this.fds[fd] = undefined;
    return ok(0);
  }

  // ---- KVM_CREATE_DEVICE ------------------------------------------------------------------------------------------

  /** kvm_ioctl_create_device → kvm_vgic_create (7) / vgic_its_create (8); the fd is written back. */
  createDevice(vmfd: number, type: number, flags: number, bad: boolean): Expect {
    const t = this.target(vmfd, 'vm');
    if (t !== null) return t;
    if (bad) return fail('EFAULT');
    if (type !== 7 && type !== 8) return fail('ENODEV'); // the fuzzer asks for no other registered type
    if ((flags & 1) !== 0) return ok(0); // KVM_CREATE_DEVICE_TEST: nothing created, fd stays 0
    if (type === 7) {
      if (this.vgic !== null) return fail('EEXIST'); // irqchip_in_kernel
      this.vgic = { initialized: false, nrSpis: 0, dist: ADDR_UNDEF, regions: [] };
      return ok(this.install('vgic', 0));
    }
    // the model needs the vGIC before an ITS (vgicItsDevice.ts, ABI.md §9)
    if (this.vgic === null) return fail('ENODEV');
    this.its.push({ base: ADDR_UNDEF, enabled: false, baser: [0n, 0n], cbaser: 0n });
    return ok(this.install('its', this.its.length - 1));
  }

  // ---- the vGIC-v3 device -----------------------------------------------------------------------------------------

  /** vgic_init: EBUSY would need a vCPU being created; the default table replaces the routing (no model state). */
  private vgicInit(v: VgicState): void {
    if (v.initialized) return;
    if (v.nrSpis === 0) v.nrSpis = DEFAULT_NR_SPIS;
    v.initialized = true;
  }

  /** The vCPU an attr's affinity (attr[63:32]) names: vcpuMpidrAff's inverse for the prologue's vCPUs. */
  private vcpuOfAffinity(aff: number): number | null {
    const id = (aff & 0xf) | (((aff >>> 8) & 0xff) << 4);
    if (aff >>> 24 !== 0 || ((aff >>> 16) & 0xff) !== 0 || (aff & 0xf0) !== 0) return null;
    return id < this.nrVcpus ? id : null;
  }

  /**
   * kvm_vgic_map_resources → vgic_v3_map_resources on a VM's first KVM_RUN: ENXIO for a vCPU with no redistributor
   * (the regions hold fewer) or no distributor address, EINVAL when vgic_v3_check_base finds the distributor over a
   * region, EBUSY before vgic_init; 0 once mapped.
   */
  mapResources(): Expect {
    const v = this.vgic;
    if (v === null) return fail('ENXIO');
    const slots = v.regions.reduce((n, r) => n + (r.count === 0 ? this.nrVcpus : r.count), 0);
    if (slots < this.nrVcpus || v.dist === ADDR_UNDEF) return fail('ENXIO');
    const size = (r: RdistRegion) => BigInt(r.count === 0 ? this.nrVcpus : r.count) * REDIST_SIZE;
    if (v.regions.some((r) => overlaps(r.base, size(r), v.dist, DIST_SIZE))) return fail('EINVAL');
    return v.initialized ? ok(0) : fail('EBUSY');
  }

  /** A KVM_RUN the fuzzer makes: a vCPU not in KVM_RUN, on a VM whose vGIC-v3 maps. */
  mayRun(fd: number): boolean {
    return this.kindOf(fd) === 'vcpu' && !this.running.has(this.objOf(fd)) && this.mapResources().ok === true;
  }

  /** KVM_RUN (mayRun): -1 = the vCPU thread stays in the guest. */
  run(fd: number): MsiExpect {
    this.running.add(this.objOf(fd));
    return ok(-1);
  }

  /**
   * vgic_v3_set_attr / vgic_v3_get_attr / vgic_v3_has_attr (or the vITS's, on an ITS fd). `payload`: whether attr.addr
   * is readable and writable. A get carries the value it writes in `read` where the model follows it (addresses,
   * NR_IRQS; not the registers).
   */
  vgicAttr(fd: number, op: AttrOp, a: AttrArgs, payload: boolean, bad: boolean): MsiExpect {
    const k = this.kindOf(fd);
    if (k === undefined) return fail('EBADF');
    if (k === 'its') return this.itsAttr(fd, op, a, payload, bad);
    // arm64 kvm_arch_vm_ioctl has no device attributes in 6.1: EINVAL; other files have no such ioctl
    if (k !== 'vgic') return fail(k === 'vm' ? 'EINVAL' : 'ENOTTY');
    if (bad) return fail('EFAULT');
    const v = this.vgic!;
    const { group, attr } = a;
    if (op === 'has') return vgicV3HasAttr(group, attr, (aff) => this.vcpuOfAffinity(aff));
    const write = op === 'set';
    switch (group) {
      case 1:
      case 5:
      case 6:
      case 7: {
        // vgic_v3_attr_regs_access: vgic_v3_parse_attr (DIST_REGS use vCPU 0), the u32 copy-in, then under kvm->lock
        if (group !== 1 && this.vcpuOfAffinity(Number(attr >> 32n)) === null) return fail('EINVAL');
        if (group !== 6 && write && !payload) return fail('EFAULT');
        if (!v.initialized) return fail('EBUSY');
        if (this.running.size > 0) return fail('EBUSY'); // lock_all_vcpus: a vCPU in KVM_RUN holds its vcpu->mutex
        const off = Number(attr & 0xffff_ffffn);
        if (group === 6) return this.sysreg(off, write, a.value, payload);
        if (group === 7) {
          if (off >>> 10 !== 0 || off % 32 !== 0) return fail('EINVAL');
        } else if (!regsOffsets(group).includes(off)) return fail('ENXIO');
        return write || payload ? ok(undefined) : fail('EFAULT');
      }
      case 0:
        return this.addr(v, write, attr, a.value, payload);
      case 3:
        if (!write) return payload ? okRead(BigInt(v.nrSpis + 32)) : fail('EFAULT');
        if (!payload) return fail('EFAULT');
        {
          const n = Number(a.value & 0xffff_ffffn);
          if (n < 64 || n > 1023 || n % 32 !== 0) return fail('EINVAL');
          if (v.initialized || v.nrSpis !== 0) return fail('EBUSY');
          v.nrSpis = n - 32;
        }
        return ok(0);
      case 4:
        if (!write) return fail('ENXIO');
        if (attr === 0n) {
          this.vgicInit(v);
          return ok(0);
        }
        // SAVE_PENDING_TABLES: lock_all_vcpus first; no LPI is pending, nothing to write
        if (attr === 3n) return this.running.size > 0 ? fail('EBUSY') : v.initialized ? ok(0) : fail('ENXIO');
        return fail('ENXIO');
      default:
        return fail('ENXIO');
    }
  }

  /** vgic_v3_cpu_sysregs_uaccess: EFAULT reading the u64 (a set), ENOENT unknown, set_gic_sre's check, EFAULT out. */
  private sysreg(reg: number, write: boolean, value: bigint, payload: boolean): Expect {
    if (write && !payload) return fail('EFAULT');
    if (reg !== SYS_ICC_PMR_EL1 && reg !== SYS_ICC_SRE_EL1) return fail('ENOENT');
    if (write) return reg === SYS_ICC_SRE_EL1 && (value & 1n) === 0n ? fail('EINVAL') : ok(0);
    return payload ? ok(undefined) : fail('EFAULT');
  }

  /** kvm_vgic_addr on a GICv3 (V2 types: vgic_check_type's ENODEV, which vgic_set_common_attr makes ENXIO). */
  private addr(v: VgicState, write: boolean, type: bigint, value: bigint, payload: boolean): MsiExpect {
    if ((write || type === 5n) && !payload) return fail('EFAULT');
    let r: Expect;
    if (type === 2n) {
      if (!write) return payload ? okRead(v.dist) : fail('EFAULT');
      r = checkIorange(v.dist, value, SZ_64K, DIST_SIZE);
      if (r.ok) v.dist = value;
      return r;
    }
    if (type === 3n) {
      if (!write) return payload ? okRead(v.regions[0]?.base ?? ADDR_UNDEF) : fail('EFAULT');
      return this.allocRedistRegion(v, 0, value, 0);
    }
    if (type === 5n) {
      const index = Number(value & 0xfffn) & 0xff; // u8 index
      if (!write) {
        const reg = v.regions.find((x) => x.index === index);
        if (reg === undefined) return fail('ENOENT');
        return okRead((BigInt(reg.count) << 52n) | reg.base | BigInt(index));
      }
      const count = Number(value >> 52n);
      const flags = Number((value >> 12n) & 0xfn);
      if (count === 0 || flags !== 0) return fail('EINVAL');
      return this.allocRedistRegion(v, index, value & 0x000f_ffff_ffff_0000n, count);
    }
    return fail('ENXIO');
  }

  /** vgic_v3_alloc_redist_region, then vgic_register_all_redist_iodevs (no failure on the fuzzer's addresses). */
  private allocRedistRegion(v: VgicState, index: number, base: bigint, count: number): Expect {
    const size = BigInt(count === 0 ? this.nrVcpus : count) * REDIST_SIZE;
    if (base + size > 0xffff_ffff_ffff_ffffn) return fail('EINVAL');
    const last = v.regions[v.regions.length - 1];
    if (last === undefined) {
      if (index !== 0) return fail('EINVAL');
    } else {
      if (count === 0 && last.count !== 0) return fail('EINVAL');
      if (count === 0) return fail('EEXIST');
      if (index !== last.index + 1) return fail('EINVAL');
    }
    if (count === 0 && v.dist !== ADDR_UNDEF && overlaps(base, size, v.dist, DIST_SIZE)) return fail('EINVAL');
    for (const r of v.regions) {
      const rs = BigInt(r.count === 0 ? this.nrVcpus : r.count) * REDIST_SIZE;
      if (overlaps(base, size, r.base, rs)) return fail('EINVAL');
    }
    const io = checkIorange(ADDR_UNDEF, base, SZ_64K, size);
    if (!io.ok) return io;
    v.regions.push({ base, count, index });
    return ok(0);
  }

  // ---- the vITS device ----------------------------------------------------------------------------------------------

  /** vgic_its_set_attr / vgic_its_get_attr / vgic_its_has_attr. */
  private itsAttr(fd: number, op: AttrOp, a: AttrArgs, payload: boolean, bad: boolean): MsiExpect {
    if (bad) return fail('EFAULT');
    const its = this.its[this.objOf(fd)]!;
    const { group, attr } = a;
    if (op === 'has') {
      if (group === 0) return attr === 4n ? ok(0) : fail('ENXIO');
      if (group === 4) return [0n, 1n, 2n, 4n].includes(attr) ? ok(0) : fail('ENXIO');
      if (group === 8) {
        if ((attr & itsAlign(attr)) !== 0n) return fail('EINVAL');
        return isItsRegister(attr) ? ok(0) : fail('ENXIO');
      }
      return fail('ENXIO');
    }
    const write = op === 'set';
    if (group === 0) {
      if (attr !== 4n) return fail('ENODEV');
      if (!write) return payload ? okRead(its.base) : fail('EFAULT');
      if (!payload) return fail('EFAULT');
      const r = checkIorange(its.base, a.value, SZ_64K, ITS_SIZE);
      if (r.ok) its.base = a.value;
      return r;
    }
    if (group === 4) {
      if (!write) return fail('ENXIO');
      if (attr !== 0n && this.running.size > 0) return fail('EBUSY'); // vgic_its_ctrl: lock_all_vcpus after INIT
      if (attr === 4n)
        Object.assign(its, { enabled: false, baser: [its.baser[0] & ~VALID, its.baser[1] & ~VALID], cbaser: 0n });
      if (attr === 1n || attr === 2n) return this.itsTables(its, attr === 1n);
      return ok(0); // INIT does nothing; an unknown control attribute falls out of the switch with 0
    }
    if (group !== 8) return fail('ENXIO');
    if (write && !payload) return fail('EFAULT');
    if ((attr & itsAlign(attr)) !== 0n) return fail('EINVAL');
    if (its.base === ADDR_UNDEF) return fail('ENXIO');
    if (!isItsRegister(attr)) return fail('ENXIO');
    if (this.running.size > 0) return fail('EBUSY'); // vgic_its_attr_regs_access: lock_all_vcpus
    if (!write) return payload ? ok(undefined) : fail('EFAULT');
    return this.itsRegWrite(its, attr, a.value);
  }

  /**
   * SAVE_TABLES / RESTORE_TABLES with no device or collection ever mapped: each valid table is touched at its base —
   * SAVE writes the collection table's terminating entry, RESTORE reads the first entry of each (zero: the end) —
   * so the outcome is EFAULT exactly when a valid table's base is outside guest RAM (every IPA below the IPA size).
   */
  private itsTables(its: ItsState, save: boolean): Expect {
    const tables = save ? [its.baser[1]] : [its.baser[1], its.baser[0]];
    for (const b of tables) {
      if ((b & VALID) === 0n) continue;
      const base = b & 0x0000_ffff_ffff_f000n;
      if (base + 8n > IPA_SIZE) return fail('EFAULT');
    }
    return ok(0);
  }

  /** The ITS registers' uaccess writes (vgic_mmio_write_its_*, vgic_mmio_uaccess_write_its_{iidr,creadr}). */
  private itsRegWrite(its: ItsState, off: bigint, value: bigint): Expect {
    switch (off) {
      case 0x0n: // vgic_mmio_write_its_ctlr: enabling needs valid device, collection and command tables
        if (
          !its.enabled &&
          (value & 1n) !== 0n &&
          (its.baser.some((b) => (b & VALID) === 0n) || (its.cbaser & VALID) === 0n)
        )
          return ok(0);
        its.enabled = (value & 1n) !== 0n;
        return ok(0);
      case 0x4n:
        return ((value >> 12n) & 0xfn) !== 0n ? fail('EINVAL') : ok(0);
      case 0x80n:
        if (!its.enabled) its.cbaser = value & (VALID | 0x0000_ffff_ffff_f0ffn);
        return ok(0);
      case 0x90n: {
        if (its.enabled) return fail('EBUSY');
        const size = ((its.cbaser & 0xffn) + 1n) << 12n;
        return (value & 0xf_ffe0n) >= size ? fail('EINVAL') : ok(0);
      }
      case 0x100n:
      case 0x108n:
        if (!its.enabled) its.baser[off === 0x100n ? 0 : 1] = value & (VALID | 0x0000_ffff_ffff_f000n);
        return ok(0);
      default:
        return ok(0);
    }
  }

  // ---- VM ioctls ---------------------------------------------------------------------------------------------------

  /**
   * KVM_SET_GSI_ROUTING: EFAULT the header; EINVAL nr > KVM_MAX_IRQ_ROUTES or flags; EFAULT the entries; then
   * kvm_set_irq_routing: every gsi < 4096 first, then per entry its flags, a second entry on a gsi, the type, the
   * irqchip/pin. The table itself changes no later call's outcome in this flavour (irqfds accept any gsi).
   */
  setGsiRouting(
    vmfd: number,
    r: { nr: number; flags: number; entriesReadable: boolean },
    entries: readonly RouteEntry[],
    bad: boolean,
  ): Expect {
    const t = this.target(vmfd, 'vm');
    if (t !== null) return t;
    if (bad) return fail('EFAULT');
    if (r.nr > 4096 || r.flags !== 0) return fail('EINVAL');
    if (r.nr > 0 && !r.entriesReadable) return fail('EFAULT');
    const ue = entries.slice(0, r.nr);
    if (ue.some((e) => e.gsi >= 4096)) return fail('EINVAL');
    const seen = new Set<number>();
    for (const e of ue) {
      if ((e.flags & ~(e.type === 2 ? 1 : 0)) !== 0) return fail('EINVAL');
      if (seen.has(e.gsi)) return fail('EINVAL');
      if (e.type === 1) {
        if (e.u1 >= 988 || e.u0 >= 1) return fail('EINVAL');
      } else if (e.type !== 2) return fail('EINVAL');
      seen.add(e.gsi);
    }
    return ok(0);
  }

  /**
   * KVM_SIGNAL_MSI: kvm_send_userspace_msi (EINVAL no irqchip, flags), kvm_set_msi (ENODEV no ITS),
   * vgic_its_inject_msi: no cached translation exists; vgic_msi_to_its (EINVAL no VALID_DEVID, no ITS frame at the
   * address: the first registered ITS whose 128 KiB frame holds it), vgic_its_resolve_lpi (EBUSY disabled), then no
   * mapping: 0.
   */
  signalMsi(vmfd: number, m: { address: bigint; flags: number }, bad: boolean): Expect {
    const t = this.target(vmfd, 'vm');
    if (t !== null) return t;
    if (bad) return fail('EFAULT');
    if (this.vgic === null) return fail('EINVAL');
    if ((m.flags & ~1) !== 0) return fail('EINVAL');
    if (this.its.length === 0) return fail('ENODEV');
    if ((m.flags & 1) === 0) return fail('EINVAL');
    const its = this.itsAt(m.address);
    if (its === undefined) return fail('EINVAL');
    return its.enabled ? ok(0) : fail('EBUSY');
  }

  private itsAt(address: bigint): ItsState | undefined {
    return this.its.find((x) => x.base !== ADDR_UNDEF && address >= x.base && address < x.base + ITS_SIZE);
  }

  /** kvm_irqfd: EFAULT, EINVAL flags; deassign (EBADF/EINVAL its fd, 0); assign: EAGAIN uninitialised vGIC, fds, EBUSY. */
  irqfd(vmfd: number, a: { efd: number; gsi: number; flags: number; resamplefd: number }, bad: boolean): Expect {
    const t = this.target(vmfd, 'vm');
    if (t !== null) return t;
    if (bad) return fail('EFAULT');
    if ((a.flags & ~3) !== 0) return fail('EINVAL');
    const deassign = (a.flags & 1) !== 0;
    if (!deassign && this.vgic?.initialized !== true) return fail('EAGAIN');
    const ek = this.kindOf(a.efd);
    if (ek === undefined) return fail('EBADF');
    if (ek !== 'eventfd') return fail('EINVAL');
    const id = this.objOf(a.efd);
    if (deassign) {
      this.irqfds = this.irqfds.filter((x) => !(x.efd === id && x.gsi === a.gsi));
      return ok(0);
    }
    if ((a.flags & 2) !== 0) {
      const rk = this.kindOf(a.resamplefd);
      if (rk === undefined) return fail('EBADF');
      if (rk !== 'eventfd') return fail('EINVAL');
    }
    if (this.irqfds.some((x) => x.efd === id)) return fail('EBUSY');
    this.irqfds.push({ efd: id, gsi: a.gsi });
    return ok(0);
  }

  // ---- vfio-pci SET_IRQS ---------------------------------------------------------------------------------------------

  /**
   * VFIO_DEVICE_SET_IRQS on the pci function: EFAULT the header; vfio_set_irqs_validate_and_prepare with the index's
   * count (INTx 0, MSI / MSI-X nrVectors, ERR 0, REQ 1); EFAULT the data; vfio_pci_set_irqs_ioctl: MSI / MSI-X MASK and
   * UNMASK (and several actions at once) ENOTTY, TRIGGER vfio_pci_set_msi_trigger / vfio_pci_set_req_trigger. `fds` are the eventfd array's fds.
   */
  setIrqs(
    dfd: number,
    h: { argsz: number; flags: number; index: number; start: number; count: number },
    fds: readonly number[],
    dataReadable: boolean,
    bad: boolean,
  ): Expect {
    const t = this.target(dfd, 'device');
    if (t !== null) return t;
    if (bad) return fail('EFAULT');
    const { flags, index, start, count } = h;
    if (h.argsz < 20 || index >= 5 || count >= 0xffff_ffff - start || (flags & ~0x3f) !== 0) return fail('EINVAL');
    const num = index === 1 || index === 2 ? this.nrVectors : index === 4 ? 1 : 0;
    if (start >= num || start + count > num) return fail('EINVAL');
    const dt = flags & 7;
    if (dt !== 1 && dt !== 2 && dt !== 4) return fail('EINVAL');
    const size = dt === 4 ? 4 : dt === 2 ? 1 : 0;
    if (size > 0 && h.argsz - 20 < count * size) return fail('EINVAL');
    if (size > 0 && count > 0 && !dataReadable) return fail('EFAULT');
    if ((flags & 0x38) !== 0x20) return fail('ENOTTY');
    return index === 4
      ? this.reqTrigger(dt, start, count, fds[0])
      : this.msiTrigger(index as 1 | 2, dt, start, count, fds);
  }

  /** vfio_pci_set_req_trigger → vfio_pci_set_ctx_trigger_single (DATA_NONE with no eventfd falls to its EINVAL). */
  private reqTrigger(dt: number, start: number, count: number, fd: number | undefined): Expect {
    const p = this.pci;
    if (start !== 0 || count > 1) return fail('EINVAL');
    if (dt === 1) {
      if (p.req === null) return fail('EINVAL');
      if (count === 0) p.req = null;
      return ok(0);
    }
    if (count === 0) return fail('EINVAL');
    if (dt === 2) return ok(0);
    if (fd === -1) p.req = null;
    else if (fd! >= 0) {
      const k = this.kindOf(fd!);
      if (k === undefined) return fail('EBADF');
      if (k !== 'eventfd') return fail('EINVAL');
      p.req = this.objOf(fd!);
    }
    return ok(0);
  }

  private msiTrigger(index: 1 | 2, dt: number, start: number, count: number, fds: readonly number[]): Expect {
    const p = this.pci;
    if (p.irqType === index && count === 0 && dt === 1) {
      p.irqType = 0;
      p.triggers = [];
      return ok(0);
    }
    if (p.irqType !== index && p.irqType !== 0) return fail('EINVAL');
    if (dt === 4) {
      if (p.irqType === index) return this.setBlock(start, count, fds);
      // vfio_msi_enable: pci_alloc_irq_vectors(1, nvec) is -ERANGE for nvec 0
      if (start + count === 0) return fail('ERANGE');
      p.irqType = index;
      p.triggers = Array.from({ length: start + count }, () => null);
      const r = this.setBlock(start, count, fds);
      if (!r.ok) {
        p.irqType = 0;
        p.triggers = [];
      }
      return r;
    }
    if (p.irqType !== index || start + count > p.triggers.length) return fail('EINVAL');
    return ok(0);
  }

  /** vfio_msi_set_block: each vector unbound, then bound to its fd (≥ 0); a failure unbinds start .. the failed one. */
  private setBlock(start: number, count: number, fds: readonly number[]): Expect {
    const tr = this.pci.triggers;
    if (start >= tr.length || start + count > tr.length) return fail('EINVAL');
    for (let i = 0; i < count; i++) {
      const j = start + i;
      tr[j] = null;
      const fd = fds[i]!;
      if (fd < 0) continue;
      const k = this.kindOf(fd);
      const err = k === undefined ? 'EBADF' : k !== 'eventfd' ? 'EINVAL' : null;
      if (err !== null) {
        for (let u = start; u < j; u++) tr[u] = null;
        return fail(err);
      }
      tr[j] = this.objOf(fd);
    }
    return ok(0);
  }
}

export type AttrOp = 'set' | 'get' | 'has';
/** A device attribute call: kvm_device_attr's group and attr, and the value at attr.addr (a set's input). */
export interface AttrArgs {
  readonly group: number;
  readonly attr: bigint;
  readonly value: bigint;
}

/** One kvm_irq_routing_entry as the fuzzer lays it out. */
export interface RouteEntry {
  readonly gsi: number;
  readonly type: number;
  readonly flags: number;
  readonly pad: number;
  readonly u0: number;
  readonly u1: number;
  readonly u2: number;
  readonly u3: number;
}

/** SYS_ICC_PMR_EL1 and SYS_ICC_SRE_EL1 as KVM_DEV_ARM_VGIC_SYSREG encodings (op0:op1:CRn:CRm:op2). */
export const SYS_ICC_PMR_EL1 = (3 << 14) | (0 << 11) | (4 << 7) | (6 << 3) | 0;
export const SYS_ICC_SRE_EL1 = (3 << 14) | (0 << 11) | (12 << 7) | (12 << 3) | 5;

/** The distributor / redistributor offsets the fuzzer uses that name an aligned 32-bit register. */
function regsOffsets(group: number): number[] {
  // GICD_CTLR, GICD_TYPER; GICR_CTLR, GICR_WAKER, GICR_IGROUPR0 (SGI_base + 0x80)
  return group === 1 ? [0x0, 0x4] : [0x0, 0x14, 0x1_0080];
}

/** vgic_v3_has_attr (vgic_v3_has_attr_regs for the register groups). */
function vgicV3HasAttr(group: number, attr: bigint, vcpu: (aff: number) => number | null): Expect {
  switch (group) {
    case 0:
      return attr === 2n || attr === 3n || attr === 5n ? ok(0) : fail('ENXIO');
    case 1:
    case 5:
    case 6: {
      if (group !== 1 && vcpu(Number(attr >> 32n)) === null) return fail('EINVAL');
      const off = Number(attr & 0xffff_ffffn);
      if (group === 6) return off === SYS_ICC_PMR_EL1 || off === SYS_ICC_SRE_EL1 ? ok(0) : fail('ENXIO');
      return regsOffsets(group).includes(off) ? ok(0) : fail('ENXIO');
    }
    case 3:
      return ok(0);
    case 7:
      return Number(attr & 0xffff_ffffn) >>> 10 === 0 ? ok(0) : fail('ENXIO');
    case 4:
      return attr === 0n || attr === 3n ? ok(0) : fail('ENXIO');
    default:
      return fail('ENXIO');
  }
}

/** vgic_check_iorange: EEXIST set, EINVAL misaligned or wrapping, E2BIG past the IPA size. */
function checkIorange(cur: bigint, addr: bigint, align: bigint, size: bigint): Expect {
  if (cur !== ADDR_UNDEF) return fail('EEXIST');
  if (addr % align !== 0n || size % align !== 0n) return fail('EINVAL');
  if (addr + size > 0xffff_ffff_ffff_ffffn) return fail('EINVAL');
  if (addr >= IPA_SIZE || addr + size > IPA_SIZE) return fail('E2BIG');
  return ok(0);
}

function overlaps(a: bigint, as: bigint, b: bigint, bs: bigint): boolean {
  return a < b + bs && b < a + as;
}

/** vgic_its_has_attr_regs' alignment: 32-bit below GITS_TYPER and from GITS_PIDR4, else 64-bit. */
function itsAlign(off: bigint): bigint {
  return off < 0x8n || off >= 0xffd0n ? 3n : 7n;
}

/** Whether a GITS_* register sits at an offset (its_registers: CTLR, IIDR, TYPER, CBASER, CWRITER, CREADR, BASER0..7, the ID registers). */
function isItsRegister(off: bigint): boolean {
  return (
    [0x0n, 0x4n, 0x8n, 0x80n, 0x88n, 0x90n].includes(off) ||
    (off >= 0x100n && off < 0x140n) ||
    (off >= 0xffd0n && off < 0x1_0000n)
  );
}
