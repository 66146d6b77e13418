/**
 * The vGIC-v3 KVM device (KVM_DEV_TYPE_ARM_VGIC_V3), after arch/arm64/kvm/vgic/vgic-kvm-device.c of Linux 6.1
 * (vgic_create, vgic_v3_{set,get,has}_attr, vgic_{set,get}_common_attr, kvm_vgic_addr, vgic_v3_parse_attr,
 * vgic_v3_attr_regs_access) and vgic-init.c (kvm_vgic_create, vgic_init).
 *
 * Groups: ADDR (DIST, the legacy REDIST base, REDIST_REGION), NR_IRQS, CTRL (INIT; SAVE_PENDING_TABLES, the LPIs'
 * pending bits into their pending tables; the ITS's own SAVE/RESTORE_TABLES belong to the ITS device: ENXIO here),
 * DIST_REGS / REDIST_REGS (32-bit registers; the vCPU named by the MPIDR affinity in attr[63:32]), CPU_SYSREGS (the
 * ICC_* registers, 64-bit, by sysreg encoding) and LEVEL_INFO. Errnos and their order follow Linux 6.1.
 *
 * Attribute accesses that take kvm->lock run across steps: they are frames (sim/frame.ts). The ITS is its own device
 * (vgicItsDevice.ts).
 */
import { errno } from '../abi/errno.js';
import {
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  KVM_VGIC_V3_DIST_SIZE,
  KVM_VGIC_V3_RDIST_BASE_MASK,
  KVM_VGIC_V3_RDIST_COUNT_MASK,
  KVM_VGIC_V3_RDIST_COUNT_SHIFT,
  KVM_VGIC_V3_RDIST_FLAGS_MASK,
  KVM_VGIC_V3_RDIST_INDEX_MASK,
  type KvmDeviceAttr,
  kvmDevArmVgicAttrOffset,
  kvmDevArmVgicV3AttrMpidr,
  VGIC_LEVEL_INFO_LINE_LEVEL,
} from '../abi/kvm.js';
import { errnoFromReturn } from '../host/file.js';
import { type Boundary, Frame, returnNow } from '../sim/frame.js';
import { mutexLock } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { op } from '../sim/task.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { C_VGIC_MMIO, VGIC_V3_MAX_CPUS, Vgic, type VgicCpu } from './vgic/vgic.js';
import { vgicCheckIorange } from './vgic/vgicIorange.js';
import { vgicV3SavePendingTables } from './vgic/vgicLpi.js';
import { vgicV3HasRegister } from './vgic/vgicMmioV3.js';
import {
  vgicV3CpuSysregGet,
  vgicV3CpuSysregSet,
  vgicV3HasCpuSysreg,
  vgicV3LineLevelInfo,
  vgicV3RegsUaccess,
} from './vgic/vgicUaccessV3.js';
import { vgicV3LegacyRedistBase, vgicV3RdistRegionFromIndex, vgicV3SetRedistBase } from './vgic/vgicV3Redist.js';
import { VgicV4Init, vgicSupportsDirectMsis } from './vgic/vgicV4.js';
import { vgicV4FlushOps } from './vgic/vgicV4Ops.js';
import { type KvmVm, VGIC_ADDR_UNDEF } from './vm.js';

const SZ_64K = 0x1_0000n;
const PC_PREPARE = 0;
const PC_LOCKED = 1;
const PC_ACCESS = 2;
/** vgic_init's vgic_v4_init returned (still under kvm->lock). */
const PC_V4_INIT = 3;
/** A register write's host calls on forwarded vLPIs returned (GICR_INVLPIR / INVALLR: vgicV4Ops.ts), under kvm->lock. */
const PC_V4_OPS = 4;

const isRegsGroup = (g: number): boolean =>
  g === KVM_DEV_ARM_VGIC_GRP_DIST_REGS ||
  g === KVM_DEV_ARM_VGIC_GRP_REDIST_REGS ||
  g === KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS ||
  g === KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;

/**
 * vgic_v3_parse_attr: the vCPU whose affinity attr[63:32] names (kvm_mpidr_to_vcpu) — vCPU 0 for DIST_REGS, whose attr
 * need not hold one — else EINVAL.
 */
function parseRegAttr(vgic: Vgic, attr: KvmDeviceAttr): { vc: VgicCpu; offset: number } {
  let vc: VgicCpu | undefined;
  if (attr.group === KVM_DEV_ARM_VGIC_GRP_DIST_REGS) {
    vc = vgic.vcpus[0];
  } else {
    const aff = kvmDevArmVgicV3AttrMpidr(attr.attr) & 0x00ff_ffff; // VGIC_TO_MPIDR keeps Aff2.Aff1.Aff0 here
    vc = vgic.vcpus.find((c) => c.mpidrAff === aff);
  }
  if (vc === undefined)
    throw errno('EINVAL', `vGIC-v3 regs: no vCPU with affinity 0x${kvmDevArmVgicV3AttrMpidr(attr.attr).toString(16)}`);
  return { vc, offset: kvmDevArmVgicAttrOffset(attr.attr) };
}

/** vgic_init under kvm->lock: 0 if done; EBUSY while a vCPU is still being created. */
function vgicInitLocked(vm: KvmVm, vgic: Vgic): void {
  if (vgic.initialized) return;
  if (vm.createdVcpus !== vm.vcpus.length) throw errno('EBUSY', 'a vCPU is still being created');
  const r = vgic.vgicInit();
  if (r < 0) throw errnoFromReturn(r, 'vgic_init');
}

/** The REDIST_REGION value kvm_vgic_addr reads back: index | base | count << 52. */
function regionValue(vgic: Vgic, index: number): bigint {
  const r = vgicV3RdistRegionFromIndex(vgic, index);
  if (r === null) throw errno('ENOENT', `no vGIC-v3 redistributor region ${index}`);
  return BigInt(index) | r.base | (BigInt(r.count) << BigInt(KVM_VGIC_V3_RDIST_COUNT_SHIFT));
}

/**
 * A device attribute access in kernel order: copy in and parse (prepare), then — for the groups that need it — the
 * work under kvm->lock, possibly an emulated register access charged as one (C_VGIC_MMIO), then copy out (finish).
 */
abstract class VgicV3AttrFrame extends Frame<number> {
  protected readonly vm: KvmVm;
  protected readonly vgic: Vgic;
  private held = false;
  /** vgic_init ran and the VM supports direct MSIs: vgic_v4_init follows. */
  protected v4Init = false;

  constructor(
    dev: KvmDevice,
    protected readonly attr: KvmDeviceAttr,
  ) {
    super();
    this.vm = dev.vm;
    this.vgic = dev.privateAs(Vgic);
  }

  /** Before kvm->lock; returns whether the access takes it. */
  protected abstract prepare(): boolean;
  /** Under kvm->lock; returns whether a register access follows (still under the lock). */
  protected abstract locked(): boolean;
  protected abstract access(): void;
  protected abstract finish(): void;

  protected step(sent: unknown): Boundary {
    switch (this.pc) {
      case PC_PREPARE:
        if (!this.prepare()) {
          this.finish();
          return this.return_(0);
        }
        this.pc = PC_LOCKED;
        return this.call(mutexLock(this.vm.lock));
      case PC_LOCKED:
        this.held = true;
        if (this.locked()) {
          this.pc = PC_ACCESS;
          return this.yield_(op(C_VGIC_MMIO, this.vm.oid));
        }
        if (this.v4Init) {
          this.pc = PC_V4_INIT;
          return this.call(new VgicV4Init(this.vm));
        }
        return this.finishLocked();
      case PC_V4_INIT:
        if ((sent as number) < 0) throw errnoFromReturn(sent as number, 'vgic_v4_init');
        return this.finishLocked();
      case PC_V4_OPS:
        return this.finishLocked();
      default: {
        this.access();
        const ops = vgicV4FlushOps(this.vm);
        if (ops === null) return this.finishLocked();
        this.pc = PC_V4_OPS;
        return this.call(ops);
      }
    }
  }

  private finishLocked(): Boundary {
    this.unlock();
    this.finish();
    return this.return_(0);
  }

  private unlock(): void {
    if (!this.held) return;
    this.held = false;
    this.vm.lock.unlock();
  }

  /** An errno leaves the access: mutex_unlock(&kvm->lock) if it is held. */
  protected override unwind(): void {
    this.unlock();
  }

  /**
   * vgic_v3_attr_regs_access under kvm->lock: lock_all_vcpus (EBUSY while one is in KVM_RUN), then EBUSY unless the
   * vGIC is initialised.
   */
  protected regsLocked(): boolean {
    if (this.vm.vcpus.some((v) => v.inRun)) throw errno('EBUSY', 'vGIC-v3 regs: a vCPU is running');
    if (!this.vgic.initialized) throw errno('EBUSY', 'vGIC-v3 regs before the vGIC is initialised');
    return true;
  }
}

/** vgic_v3_set_attr. */
class VgicV3SetAttr extends VgicV3AttrFrame {
  private vc: VgicCpu | null = null;
  private offset = 0;
  private val = 0n;

  protected prepare(): boolean {
    const { group, attr: a, addr } = this.attr;
    const mem = this.vm.kernel.currentUser().mem;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        this.val = mem.readU64(addr); // kvm_vgic_addr: get_user (EFAULT)
        return true;
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        this.val = BigInt(mem.readU32(addr));
        return true;
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        if (a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT) || a === BigInt(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)) return true;
        throw errno(
          'ENXIO',
          `vGIC-v3 has no control attribute ${a} (ITS table save/restore belongs to the ITS device)`,
        );
      default: {
        if (!isRegsGroup(group)) throw errno('ENXIO', `vGIC-v3 has no attribute group ${group}`);
        const p = parseRegAttr(this.vgic, this.attr);
        this.vc = p.vc;
        this.offset = p.offset;
        // CPU_SYSREGS copies its u64 in the sysreg code, under the lock; the others copy a u32 now
        if (group !== KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) this.val = BigInt(mem.readU32(addr));
        return true;
      }
    }
  }

  protected locked(): boolean {
    const { group, attr: a } = this.attr;
    const vm = this.vm;
    const vgic = this.vgic;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        setAddr(vm, vgic, a, this.val);
        return false;
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS: {
        const r = vgic.kvmVgicSetNrIrqs(Number(this.val));
        if (r < 0) throw errnoFromReturn(r, 'KVM_DEV_ARM_VGIC_GRP_NR_IRQS');
        return false;
      }
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        if (a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) {
          const first = !vgic.initialized;
          vgicInitLocked(vm, vgic);
          this.v4Init = first && vgicSupportsDirectMsis(vm);
          return false;
        }
        // vgic_v3_save_pending_tables: lock_all_vcpus, then ENXIO before init; each LPI's pending bit to guest memory
        if (vm.vcpus.some((v) => v.inRun)) throw errno('EBUSY', 'SAVE_PENDING_TABLES: a vCPU is running');
        if (!vgic.initialized) throw errno('ENXIO', 'SAVE_PENDING_TABLES before the vGIC is initialised');
        {
          const r = vgicV3SavePendingTables(vgic);
          if (r < 0) throw errnoFromReturn(r, 'vgic_v3_save_pending_tables');
        }
        return false;
      default:
        return this.regsLocked();
    }
  }

  protected access(): void {
    const vc = this.vc!;
    const { group, attr: a, addr } = this.attr;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS: {
        const v = this.vm.kernel.currentUser().mem.readU64(addr);
        vgicV3CpuSysregSet(vc, Number(a) & KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK, v);
        return;
      }
      case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
        vgicV3LineLevelInfo(vc, levelInfoIntid(a), true, Number(this.val));
        return;
      default:
        vgicV3RegsUaccess(vc, group === KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, this.offset, true, Number(this.val));
    }
  }

  protected finish(): void {}
}

/** vgic_v3_get_attr. */
class VgicV3GetAttr extends VgicV3AttrFrame {
  private vc: VgicCpu | null = null;
  private offset = 0;
  private val = 0n;

  protected prepare(): boolean {
    const { group, attr: a, addr } = this.attr;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        // kvm_vgic_addr reads a REDIST_REGION value first: it holds the index asked for
        if (a === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION))
          this.val = this.vm.kernel.currentUser().mem.readU64(addr);
        return true;
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        this.val = BigInt(this.vgic.nrSpis + 32);
        return false;
      default: {
        if (!isRegsGroup(group)) throw errno('ENXIO', `vGIC-v3 cannot get attribute group ${group}`);
        const p = parseRegAttr(this.vgic, this.attr);
        this.vc = p.vc;
        this.offset = p.offset;
        return true;
      }
    }
  }

  protected locked(): boolean {
    if (this.attr.group === KVM_DEV_ARM_VGIC_GRP_ADDR) {
      this.val = getAddr(this.vgic, this.vm, this.attr.attr, this.val);
      return false;
    }
    return this.regsLocked();
  }

  protected access(): void {
    const vc = this.vc!;
    const { group, attr: a, addr } = this.attr;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
        // kvm_sys_reg_get_user: the register (ENOENT), then put_user of its u64 (EFAULT)
        this.vm.kernel
          .currentUser()
          .mem.writeU64(addr, vgicV3CpuSysregGet(vc, Number(a) & KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK));
        return;
      case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
        this.val = BigInt(vgicV3LineLevelInfo(vc, levelInfoIntid(a), false, 0));
        return;
      default:
        this.val = BigInt(vgicV3RegsUaccess(vc, group === KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, this.offset, false, 0));
    }
  }

  protected finish(): void {
    const { group, addr } = this.attr;
    const mem = this.vm.kernel.currentUser().mem;
    if (group === KVM_DEV_ARM_VGIC_GRP_ADDR) mem.writeU64(addr, this.val);
    else if (group !== KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) mem.writeU32(addr, Number(this.val));
  }
}

/** GRP_LEVEL_INFO's attr: info[31:10] must be VGIC_LEVEL_INFO_LINE_LEVEL (else EINVAL), INTID in [9:0]. */
function levelInfoIntid(a: bigint): number {
  const info = Number((a & KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK) >> BigInt(KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT));
  if (info !== VGIC_LEVEL_INFO_LINE_LEVEL) throw errno('EINVAL', `LEVEL_INFO type ${info} is not LINE_LEVEL`);
  return Number(a) & KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK;
}

/**
 * kvm_vgic_addr, write: DIST (64 KiB aligned, vgic_check_iorange), the legacy REDIST base (vgic_v3_set_redist_base
 * with count 0), a REDIST_REGION (count 0 or flags → EINVAL; its u8 index is the value's low byte); V2 address types
 * fail vgic_check_type (ENODEV, reported as ENXIO).
 */
function setAddr(vm: KvmVm, vgic: Vgic, type: bigint, addr: bigint): void {
  if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_DIST)) {
    vgicCheckIorange(
      vm.ipaBits,
      vm.vgicDistBase !== VGIC_ADDR_UNDEF,
      addr,
      SZ_64K,
      BigInt(KVM_VGIC_V3_DIST_SIZE),
      'dist',
    );
    vm.vgicDistBase = addr;
  } else if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST)) {
    vgicV3SetRedistBase(vm, vgic, 0, addr, 0);
  } else if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)) {
    const index = Number(addr & KVM_VGIC_V3_RDIST_INDEX_MASK) & 0xff;
    const count = Number((addr & KVM_VGIC_V3_RDIST_COUNT_MASK) >> BigInt(KVM_VGIC_V3_RDIST_COUNT_SHIFT));
    if (count === 0 || (addr & KVM_VGIC_V3_RDIST_FLAGS_MASK) !== 0n) {
      throw errno('EINVAL', 'a redistributor region needs a count and no flags');
    }
    vgicV3SetRedistBase(vm, vgic, index, addr & KVM_VGIC_V3_RDIST_BASE_MASK, count);
  } else {
    throw errno('ENXIO', `vGIC-v3 has no address type ${type}`);
  }
}

/** kvm_vgic_addr, read: the DIST base, the first region's base for REDIST, or a region's value (ENOENT). */
function getAddr(vgic: Vgic, vm: KvmVm, type: bigint, val: bigint): bigint {
  if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_DIST)) return vm.vgicDistBase;
  if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST)) return vgicV3LegacyRedistBase(vgic);
  if (type === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)) {
    return regionValue(vgic, Number(val & KVM_VGIC_V3_RDIST_INDEX_MASK) & 0xff);
  }
  throw errno('ENXIO', `vGIC-v3 has no address type ${type}`);
}

/** vgic_v3_has_attr (synchronous: it takes no lock). */
function hasAttr(dev: KvmDevice, attr: KvmDeviceAttr): Frame<number> {
  const vgic = dev.privateAs(Vgic);
  const a = attr.attr;
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR:
      if (
        a === BigInt(KVM_VGIC_V3_ADDR_TYPE_DIST) ||
        a === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST) ||
        a === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)
      ) {
        return returnNow(0);
      }
      break;
    case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS: {
      // vgic_v3_has_attr_regs: parse (EINVAL), then an aligned 32-bit register, or a known ICC_* sysreg
      const { offset } = parseRegAttr(vgic, attr);
      if (attr.group === KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) {
        if (vgicV3HasCpuSysreg(Number(a) & KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK)) return returnNow(0);
      } else if (
        (offset & 3) === 0 &&
        vgicV3HasRegister(vgic, attr.group === KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, offset)
      ) {
        return returnNow(0);
      }
      break;
    }
    case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
      return returnNow(0);
    case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
      if (Number((a & KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK) >> BigInt(KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT)) === 0)
        return returnNow(0);
      break;
    case KVM_DEV_ARM_VGIC_GRP_CTRL:
      if (a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT) || a === BigInt(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES))
        return returnNow(0);
      break;
  }
  throw errno('ENXIO', `vGIC-v3 does not have attribute ${attr.group}/${attr.attr}`);
}

export const vgicV3DeviceOps: KvmDeviceOps = markShared({
  name: 'kvm-arm-vgic-v3',
  /** vgic_create → kvm_vgic_create (called with kvm->lock held). */
  create(dev: KvmDevice, _type: number): Frame {
    const vm = dev.vm;
    if (vm.vgic !== null) throw errno('EEXIST', 'the VM already has an in-kernel irqchip');
    if (vm.vcpus.some((v) => v.hasRunOnce)) throw errno('EBUSY', 'a vCPU has already run');
    vm.maxVcpus = VGIC_V3_MAX_CPUS;
    if (vm.vcpus.length > vm.maxVcpus) throw errno('E2BIG', `a GICv3 VM has at most ${VGIC_V3_MAX_CPUS} vCPUs`);
    dev.private_ = vm.createVgic(KVM_DEV_TYPE_ARM_VGIC_V3);
    return returnNow(undefined);
  },
  /** vgic_destroy: kfree(dev); the vGIC state itself goes with kvm_arch_destroy_vm. */
  destroy(_dev: KvmDevice): Frame {
    return returnNow(undefined);
  },
  setAttr: (dev, attr) => new VgicV3SetAttr(dev, attr),
  getAttr: (dev, attr) => new VgicV3GetAttr(dev, attr),
  hasAttr,
});
